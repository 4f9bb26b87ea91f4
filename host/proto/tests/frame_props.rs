//! Property tests of the request frame (issue 12): what the client encodes, the daemon
//! decodes to the same request, and a decoded frame encodes and decodes again unchanged.
//! The fuzz target `fuzz/fuzz_targets/frame.rs` checks the second property on mutated
//! frames; these run in `cargo test`.

use etmem_proto::frame::{MAX_REQUEST_LEN, Request};
use proptest::prelude::*;

/// A value as the C client can send one: not empty, no space or NUL, not starting with `-`
/// (which the daemon reads as absent).
fn value() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[^ \\x00-][^ \\x00]{0,24}")
}

fn request() -> impl Strategy<Value = Request> {
    (value(), value(), 0..=i64::MAX, value(), value(), value()).prop_map(
        |(proj_name, file_name, cmd, eng_name, eng_cmd, task_name)| Request {
            proj_name,
            file_name,
            cmd,
            eng_name,
            eng_cmd,
            task_name,
        },
    )
}

proptest! {
    #[test]
    fn encode_then_decode_gives_the_request(r in request()) {
        let frame = r.encode();
        prop_assume!(frame.len() <= MAX_REQUEST_LEN);
        prop_assert_eq!(Request::decode(frame.as_bytes()), Ok(r));
    }

    #[test]
    fn a_decoded_frame_encodes_to_itself(bytes in proptest::collection::vec(any::<u8>(), 0..96),
                                         r in request()) {
        // arbitrary bytes, and a valid frame with arbitrary bytes after it
        let mut framed = r.encode().into_bytes();
        framed.push(b' ');
        framed.extend_from_slice(&bytes);
        for input in [&bytes[..], &framed[..]] {
            if let Ok(req) = Request::decode(input) {
                let again = req.encode();
                prop_assert!(again.len() <= input.len());
                prop_assert_eq!(Request::decode(again.as_bytes()), Ok(req));
            }
        }
    }
}

/// A negative `cmd` is the one value `encode` writes that `decode` refuses (C reads a value
/// starting with `-` as absent); the client never sends one.
#[test]
fn a_negative_command_does_not_round_trip() {
    let r = Request {
        cmd: -1,
        ..Request::default()
    };
    assert!(Request::decode(r.encode().as_bytes()).is_err());
}
