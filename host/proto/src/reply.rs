//! The reply: handler output, then for a failure the fixed C text, then one tag byte
//! (spec §3.3, §3.4).
//!
//! The C client stops reading when the last byte of a received chunk is 0xFF (success) or
//! 0xFE (failure). Handler output must therefore never contain those bytes; valid UTF-8
//! never does, and [`encode_reply`] replaces them (and NUL, which the C client's `%s`
//! would cut at) in any output it is given.

/// Tag byte that ends a successful reply.
pub const TAG_SUCCESS: u8 = 0xFF;
/// Tag byte that ends a failed reply.
pub const TAG_FAILURE: u8 = 0xFE;

/// The result of one request, as C etmemd's `enum opt_result` (never sent as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptResult {
    /// Success: no text, tag 0xFF.
    Success,
    /// `error: invalid parameters`
    Inval,
    /// `error: project has been existed`
    ProExisted,
    /// `error: project is not exist`
    ProNoExist,
    /// `error: project has been started`
    ProStarted,
    /// `error: project has been stopped`
    ProStopped,
    /// `error: engine has been existed`
    EngExisted,
    /// `error: engine is not exist`
    EngNoExist,
    /// `error: task has been existed`
    TaskExisted,
    /// `error: task is not exist`
    TaskNoExist,
    /// `error: etmemd has internal error, see reason details in messages`
    InterErr,
}

impl OptResult {
    /// The fixed C text of this result; empty for success.
    pub fn text(self) -> &'static str {
        match self {
            OptResult::Success => "",
            OptResult::Inval => "error: invalid parameters",
            OptResult::ProExisted => "error: project has been existed",
            OptResult::ProNoExist => "error: project is not exist",
            OptResult::ProStarted => "error: project has been started",
            OptResult::ProStopped => "error: project has been stopped",
            OptResult::EngExisted => "error: engine has been existed",
            OptResult::EngNoExist => "error: engine is not exist",
            OptResult::TaskExisted => "error: task has been existed",
            OptResult::TaskNoExist => "error: task is not exist",
            OptResult::InterErr => {
                "error: etmemd has internal error, see reason details in messages"
            }
        }
    }
}

/// Replaces the bytes that would end or truncate a reply early in the C client.
pub fn sanitize_output(out: &mut [u8]) {
    for b in out.iter_mut() {
        if matches!(*b, TAG_SUCCESS | TAG_FAILURE | 0) {
            *b = b'?';
        }
    }
}

/// The whole reply for `result`: `output`, then (on failure) the fixed text and, when given,
/// a newline and `detail` (our addition: the precise reason), then the tag byte.
pub fn encode_reply(output: &[u8], result: OptResult, detail: Option<&str>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(output.len() + 128);
    buf.extend_from_slice(output);
    if result != OptResult::Success {
        buf.extend_from_slice(result.text().as_bytes());
        if let Some(detail) = detail.filter(|d| !d.is_empty()) {
            buf.push(b'\n');
            buf.extend_from_slice(detail.as_bytes());
        }
    }
    sanitize_output(&mut buf);
    buf.push(if result == OptResult::Success {
        TAG_SUCCESS
    } else {
        TAG_FAILURE
    });
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_is_output_then_ff() {
        assert_eq!(encode_reply(b"abc", OptResult::Success, None), b"abc\xff");
        assert_eq!(encode_reply(b"", OptResult::Success, Some("x")), b"\xff");
    }

    #[test]
    fn failure_is_text_detail_then_fe() {
        assert_eq!(
            encode_reply(b"", OptResult::ProNoExist, None),
            b"error: project is not exist\xfe"
        );
        assert_eq!(
            encode_reply(b"", OptResult::Inval, Some("file `/x`: no such file")),
            b"error: invalid parameters\nfile `/x`: no such file\xfe".to_vec()
        );
    }

    #[test]
    fn tag_bytes_in_output_are_neutralised() {
        let r = encode_reply(b"a\xffb\xfe\0", OptResult::Success, None);
        assert_eq!(r, b"a?b??\xff");
    }
}
