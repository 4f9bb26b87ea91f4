//! The request frame: one text line sent with a single `send()` (spec §3.1, §3.2).
//!
//! `proj_name <P> file_name <F> cmd <C> eng_name <E> eng_cmd <X> task_name <T>`, one space
//! between tokens, `-` for an absent value, no terminator. Decoding follows the C daemon's
//! field walk exactly (including its quirk that a value starting with `-` reads as absent),
//! so that a frame C etmemd accepts is accepted here and one it drops is dropped here.

use thiserror::Error;

/// Longest request the C client sends and the C daemon receives, in bytes.
pub const MAX_REQUEST_LEN: usize = 512;

/// The command numbers of the wire protocol (`cmd` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `etmem obj add` (0).
    ObjAdd,
    /// `etmem obj del` (1).
    ObjDel,
    /// `etmem project start` (2).
    ProjectStart,
    /// `etmem project stop` (3).
    ProjectStop,
    /// `etmem project show` (4).
    ProjectShow,
    /// `etmem engine <eng_cmd>` (5).
    EngineCmd,
    /// `etmem project stats` (6): an etmem-rs request; a C etmemd answers it as an unknown
    /// command (`error: invalid parameters`).
    ProjectStats,
    /// `etmem project show -o json` (7): an etmem-rs request, refused by a C etmemd as
    /// invalid parameters.
    ProjectShowJson,
    /// `etmem engine <eng_cmd> -o json` (8): an etmem-rs request, the engine's answer as
    /// JSON; refused by a C etmemd as invalid parameters.
    EngineCmdJson,
    /// `etmem project heatmap` (9): an etmem-rs request, a task's access heatmap in the form
    /// named by `eng_cmd` (`text`, `svg`, `json`); refused by a C etmemd as invalid
    /// parameters.
    TaskHeatmap,
}

impl Command {
    /// The number sent on the wire.
    pub fn code(self) -> i64 {
        match self {
            Command::ObjAdd => 0,
            Command::ObjDel => 1,
            Command::ProjectStart => 2,
            Command::ProjectStop => 3,
            Command::ProjectShow => 4,
            Command::EngineCmd => 5,
            Command::ProjectStats => 6,
            Command::ProjectShowJson => 7,
            Command::EngineCmdJson => 8,
            Command::TaskHeatmap => 9,
        }
    }

    /// The command for a wire number; `None` for a number C etmemd answers with
    /// `error: invalid parameters`.
    pub fn from_code(code: i64) -> Option<Command> {
        Some(match code {
            0 => Command::ObjAdd,
            1 => Command::ObjDel,
            2 => Command::ProjectStart,
            3 => Command::ProjectStop,
            4 => Command::ProjectShow,
            5 => Command::EngineCmd,
            6 => Command::ProjectStats,
            7 => Command::ProjectShowJson,
            8 => Command::EngineCmdJson,
            9 => Command::TaskHeatmap,
            _ => return None,
        })
    }
}

/// One decoded request. `None` is a value sent as `-`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `proj_name`
    pub proj_name: Option<String>,
    /// `file_name`: the config path, verbatim as the user typed it.
    pub file_name: Option<String>,
    /// `cmd`: the raw number (unknown numbers are valid frames, answered with OPT_INVAL).
    pub cmd: i64,
    /// `eng_name`
    pub eng_name: Option<String>,
    /// `eng_cmd`
    pub eng_cmd: Option<String>,
    /// `task_name`
    pub task_name: Option<String>,
}

/// Why a frame could not be decoded. C etmemd closes such a connection without a reply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The frame is longer than [`MAX_REQUEST_LEN`].
    #[error("request of {len} bytes is longer than {MAX_REQUEST_LEN}")]
    TooLong {
        /// length of the offending frame
        len: usize,
    },
    /// A key is not where the fixed field order puts it.
    #[error("expected key `{key}` at byte {offset}")]
    MissingKey {
        /// the key that was expected
        key: &'static str,
        /// byte offset in the frame
        offset: usize,
    },
    /// A key is followed by an empty value.
    #[error("key `{key}` has an empty value")]
    EmptyValue {
        /// the key whose value is empty
        key: &'static str,
    },
    /// `cmd` is absent or not a decimal number.
    #[error("key `cmd`: expected a decimal number, found `{found}`")]
    BadCommand {
        /// what was found instead
        found: String,
    },
    /// A value is not UTF-8.
    #[error("key `{key}`: value is not valid UTF-8")]
    NotUtf8 {
        /// the key whose value is not UTF-8
        key: &'static str,
    },
}

const KEYS: [&str; 6] = [
    "proj_name",
    "file_name",
    "cmd",
    "eng_name",
    "eng_cmd",
    "task_name",
];

impl Request {
    /// A request for `cmd` with every other field absent.
    pub fn new(cmd: Command) -> Request {
        Request {
            cmd: cmd.code(),
            ..Request::default()
        }
    }

    /// The command, if the number is a known one.
    pub fn command(&self) -> Option<Command> {
        Command::from_code(self.cmd)
    }

    /// The frame as the C client formats it (no terminator). The caller checks the length
    /// against [`MAX_REQUEST_LEN`], as the client must print its own message for it.
    pub fn encode(&self) -> String {
        fn v(s: &Option<String>) -> &str {
            s.as_deref().unwrap_or("-")
        }
        format!(
            "proj_name {} file_name {} cmd {} eng_name {} eng_cmd {} task_name {}",
            v(&self.proj_name),
            v(&self.file_name),
            self.cmd,
            v(&self.eng_name),
            v(&self.eng_cmd),
            v(&self.task_name)
        )
    }

    /// Decodes a frame the way C etmemd walks it (spec §3.2). Bytes after a NUL are ignored,
    /// as the C daemon works on a C string; bytes after the `task_name` value are ignored.
    pub fn decode(frame: &[u8]) -> Result<Request, FrameError> {
        if frame.len() > MAX_REQUEST_LEN {
            return Err(FrameError::TooLong { len: frame.len() });
        }
        let buf = match frame.iter().position(|&b| b == 0) {
            Some(nul) => &frame[..nul],
            None => frame,
        };
        let mut idx = 0usize;
        let mut values: [Option<&[u8]>; 6] = [None; 6];
        for (slot, key) in values.iter_mut().zip(KEYS) {
            let rest = buf.get(idx..).unwrap_or_default();
            if !rest.starts_with(key.as_bytes()) {
                return Err(FrameError::MissingKey { key, offset: idx });
            }
            idx += key.len() + 1;
            let rest = buf.get(idx..).unwrap_or_default();
            if rest.first() == Some(&b'-') {
                idx += 2;
                continue;
            }
            let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            if len == 0 {
                return Err(FrameError::EmptyValue { key });
            }
            *slot = Some(&rest[..len]);
            idx += len + 1;
        }
        let text = |i: usize| -> Result<Option<String>, FrameError> {
            values[i]
                .map(|v| {
                    std::str::from_utf8(v)
                        .map(str::to_owned)
                        .map_err(|_| FrameError::NotUtf8 { key: KEYS[i] })
                })
                .transpose()
        };
        let cmd_text = text(2)?.ok_or(FrameError::BadCommand {
            found: "-".to_owned(),
        })?;
        let cmd = parse_strtol(&cmd_text).ok_or(FrameError::BadCommand { found: cmd_text })?;
        Ok(Request {
            proj_name: text(0)?,
            file_name: text(1)?,
            cmd,
            eng_name: text(3)?,
            eng_cmd: text(4)?,
            task_name: text(5)?,
        })
    }
}

/// `strtol(s, &end, 10)` that must consume the whole string, as the C daemon requires.
/// Values never contain spaces on the wire, so only an optional sign and digits remain.
fn parse_strtol(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_the_c_client() {
        let mut r = Request::new(Command::ProjectStart);
        r.proj_name = Some("test".into());
        assert_eq!(
            r.encode(),
            "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -"
        );
        let mut r = Request::new(Command::EngineCmd);
        r.proj_name = Some("test".into());
        r.eng_name = Some("cslide".into());
        r.eng_cmd = Some("showtaskpages".into());
        r.task_name = Some("t1".into());
        assert_eq!(
            r.encode(),
            "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name t1"
        );
    }

    #[test]
    fn decode_round_trips() {
        let mut r = Request::new(Command::ObjAdd);
        r.file_name = Some("/etc/etmem/slide_conf.yaml".into());
        assert_eq!(Request::decode(r.encode().as_bytes()), Ok(r));
    }

    #[test]
    fn decode_ignores_after_nul_and_after_last_value() {
        let f = b"proj_name p file_name - cmd 3 eng_name - eng_cmd - task_name t extra\0junk";
        let r = Request::decode(f).expect("valid frame");
        assert_eq!(r.task_name.as_deref(), Some("t"));
        assert_eq!(r.command(), Some(Command::ProjectStop));
    }

    #[test]
    fn value_starting_with_dash_breaks_the_walk_as_in_c() {
        let f = b"proj_name -x file_name - cmd 2 eng_name - eng_cmd - task_name -";
        assert!(matches!(
            Request::decode(f),
            Err(FrameError::MissingKey {
                key: "file_name",
                ..
            })
        ));
    }

    #[test]
    fn rejects_malformed_frames() {
        assert!(Request::decode(b"").is_err());
        assert!(Request::decode(b"hello").is_err());
        assert!(matches!(
            Request::decode(b"proj_name  file_name - cmd 2 eng_name - eng_cmd - task_name -"),
            Err(FrameError::EmptyValue { key: "proj_name" })
        ));
        assert!(matches!(
            Request::decode(b"proj_name p file_name - cmd 2x eng_name - eng_cmd - task_name -"),
            Err(FrameError::BadCommand { .. })
        ));
        assert!(matches!(
            Request::decode(b"proj_name p file_name - cmd - eng_name - eng_cmd - task_name -"),
            Err(FrameError::BadCommand { .. })
        ));
        assert!(matches!(
            Request::decode(&[b'a'; 513]),
            Err(FrameError::TooLong { len: 513 })
        ));
        // truncated after a key
        assert!(
            Request::decode(b"proj_name p file_name - cmd 2 eng_name - eng_cmd - task_name")
                .is_err()
        );
    }

    #[test]
    fn unknown_command_numbers_are_valid_frames() {
        let r =
            Request::decode(b"proj_name p file_name - cmd +19 eng_name - eng_cmd - task_name -")
                .expect("valid frame");
        assert_eq!(r.cmd, 19);
        assert_eq!(r.command(), None);
    }
}
