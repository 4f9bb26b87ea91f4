//! The request frame a client sends etmemd (`etmem_proto::Request::decode`).
//!
//! Invariants: no panic; a decoded request encodes to a frame that decodes to the same
//! request (values never hold a space or a NUL, and never start with `-`).
#![no_main]

use etmem_proto::frame::{MAX_REQUEST_LEN, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = Request::decode(data) else {
        return;
    };
    for v in [
        &req.proj_name,
        &req.file_name,
        &req.eng_name,
        &req.eng_cmd,
        &req.task_name,
    ]
    .into_iter()
    .flatten()
    {
        assert!(!v.is_empty() && !v.starts_with('-'), "value {v:?}");
        assert!(!v.contains([' ', '\0']), "value {v:?}");
    }
    assert!(req.cmd >= 0, "cmd {}", req.cmd);
    let again = req.encode();
    // the C client's frame is never longer than the one it came from (`+9` becomes `9`,
    // trailing bytes go)
    assert!(again.len() <= data.len().min(MAX_REQUEST_LEN), "{again:?}");
    assert_eq!(Request::decode(again.as_bytes()), Ok(req));
});
