//! Private commands and their output form: how an engine tells `etmem engine <cmd>` from
//! `etmem engine <cmd> -o json`, and small helpers to answer in JSON.
//!
//! The request crosses the plug-in boundary in the existing command string (no change to
//! the WIT or the native ABI): for `-o json` the host passes `<cmd> -o json`
//! ([`JSON_SUFFIX`]). An engine that predates JSON output answers that string as an
//! unknown command, and the host reports `engine X gives no JSON for command Y`; an engine
//! that knows the command but has no JSON for it returns [`no_json`], which reads the same.
//!
//! ```
//! use etmem_sdk::command::{CommandRequest, Output, json_string, no_json};
//!
//! fn answer(cmd: &str) -> Result<String, etmem_sdk::EngineError> {
//!     let req = CommandRequest::parse(cmd);
//!     match (req.name, req.output) {
//!         ("hello", Output::Text) => Ok("hello\n".to_string()),
//!         ("hello", Output::Json) => Ok(format!("{{\"greeting\":{}}}\n", json_string("hello"))),
//!         _ => Err(req.unknown()),
//!     }
//! }
//! assert_eq!(answer("hello -o json").unwrap(), "{\"greeting\":\"hello\"}\n");
//! assert_eq!(answer("hello").unwrap(), "hello\n");
//! ```
//!
//! Plain text handling; no I/O.

use crate::EngineError;

/// What the host appends to a command for `-o json`.
pub const JSON_SUFFIX: &str = " -o json";

/// The output form a command is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// the engine's text, as C etmem prints it
    Text,
    /// one JSON value
    Json,
}

/// A private command as the engine receives it: its name and the form asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandRequest<'a> {
    /// the command word (`showtaskpages`)
    pub name: &'a str,
    /// the form asked for
    pub output: Output,
}

impl<'a> CommandRequest<'a> {
    /// Reads the command string the host passed to [`crate::Engine::command`].
    pub fn parse(cmd: &'a str) -> CommandRequest<'a> {
        match cmd.strip_suffix(JSON_SUFFIX) {
            Some(name) => CommandRequest {
                name,
                output: Output::Json,
            },
            None => CommandRequest {
                name: cmd,
                output: Output::Text,
            },
        }
    }

    /// The command string the host passes for `name` in the form `output`.
    pub fn encode(name: &str, output: Output) -> String {
        match output {
            Output::Text => name.to_string(),
            Output::Json => format!("{name}{JSON_SUFFIX}"),
        }
    }

    /// True when JSON was asked for.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    /// The error for a command this engine does not know (in this form): an unknown
    /// command, named as the host sent it, so that the host can tell "no JSON" apart.
    pub fn unknown(&self) -> EngineError {
        EngineError::UnknownCommand(CommandRequest::encode(self.name, self.output))
    }
}

/// The error of an engine that knows `name` but gives no JSON for it.
pub fn no_json(name: &str) -> EngineError {
    EngineError::UnknownCommand(CommandRequest::encode(name, Output::Json))
}

/// True when `error`, answered to the JSON request for `name`, means the engine gives no
/// JSON for it (an engine that predates JSON output, or [`no_json`]).
pub fn is_no_json(error: &EngineError, name: &str) -> bool {
    matches!(error, EngineError::UnknownCommand(c) if *c == CommandRequest::encode(name, Output::Json))
}

/// `s` as a JSON string, quotes included (`"`, `\` and control characters escaped).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_encode_agree() {
        for (name, output) in [("showtaskpages", Output::Json), ("x", Output::Text)] {
            let s = CommandRequest::encode(name, output);
            assert_eq!(CommandRequest::parse(&s), CommandRequest { name, output });
        }
        assert_eq!(
            CommandRequest::parse("showhostpages -o json"),
            CommandRequest {
                name: "showhostpages",
                output: Output::Json
            }
        );
        // only the exact suffix asks for JSON
        assert_eq!(CommandRequest::parse("a -o jsonx").output, Output::Text);
        assert_eq!(CommandRequest::parse("a-o json").output, Output::Text);
    }

    #[test]
    fn no_json_is_what_an_old_engine_answers() {
        // the default `Engine::command` answers UnknownCommand(cmd) with the whole string
        let old = EngineError::UnknownCommand("showtaskpages -o json".to_string());
        assert!(is_no_json(&old, "showtaskpages"));
        assert!(is_no_json(&no_json("showtaskpages"), "showtaskpages"));
        assert!(!is_no_json(&no_json("a"), "b"));
        assert!(!is_no_json(
            &EngineError::failed("showtaskpages -o json"),
            "showtaskpages"
        ));
        let req = CommandRequest::parse("zap -o json");
        assert!(is_no_json(&req.unknown(), "zap"));
        assert_eq!(
            CommandRequest::parse("zap").unknown(),
            EngineError::UnknownCommand("zap".into())
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\nd\u{7}"), r#""a\"b\\c\nd\u0007""#);
        assert_eq!(json_string("né"), "\"né\"");
    }
}
