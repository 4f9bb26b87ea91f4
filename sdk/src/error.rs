//! [`EngineError`]: an engine's expected failure, as a value.
//!
//! Mirrors `engine-error` in `wit/engine.wit` case for case, plus [`EngineError::Panicked`],
//! which only the native boundary produces (a wasm panic is a trap). This module formats
//! errors; it must not log or decide what the host does with them.

use thiserror::Error;

/// An engine's expected failure. The host reports it with the object it concerns
/// (project, engine, task) and keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// A key's value cannot be parsed or is out of range.
    #[error("key `{key}`: expected {expected}, found `{value}`")]
    InvalidParam {
        /// the key
        key: String,
        /// the value as written
        value: String,
        /// what was expected, e.g. `an integer in 1..=255`
        expected: String,
    },
    /// A required key is absent.
    #[error("missing key `{0}`")]
    MissingParam(String),
    /// A key this engine does not know.
    #[error("unknown key `{0}`")]
    UnknownParam(String),
    /// No task of that name in this engine.
    #[error("no task `{0}`")]
    UnknownTask(String),
    /// A private command this engine does not know.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// A command that needs `-t <task>` was given none.
    #[error("command `{0}` needs a task (-t)")]
    TaskRequired(String),
    /// The host refused a capability call.
    #[error("host refused: {0}")]
    Host(String),
    /// Anything else, with its precise reason.
    #[error("{0}")]
    Failed(String),
    /// The engine panicked; caught at the native boundary. The host must treat the engine
    /// as failed (every later call on the same instance returns this too).
    #[error("engine panicked: {0}")]
    Panicked(String),
}

impl EngineError {
    /// A [`EngineError::InvalidParam`] for `key`, whose `value` is not `expected`.
    pub fn invalid_param(
        key: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> EngineError {
        EngineError::InvalidParam {
            key: key.into(),
            value: value.into(),
            expected: expected.into(),
        }
    }

    /// A [`EngineError::Failed`] with `reason`.
    pub fn failed(reason: impl Into<String>) -> EngineError {
        EngineError::Failed(reason.into())
    }

    /// True for a fault ([`EngineError::Panicked`]) rather than an expected failure.
    pub fn is_fault(&self) -> bool {
        matches!(self, EngineError::Panicked(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_key_and_value() {
        let e = EngineError::invalid_param("idle_rounds", "abc", "an integer in 1..=255");
        assert_eq!(
            e.to_string(),
            "key `idle_rounds`: expected an integer in 1..=255, found `abc`"
        );
        assert_eq!(
            EngineError::MissingParam("node".into()).to_string(),
            "missing key `node`"
        );
        assert_eq!(
            EngineError::UnknownTask("db".into()).to_string(),
            "no task `db`"
        );
        assert_eq!(
            EngineError::TaskRequired("showtaskpages".into()).to_string(),
            "command `showtaskpages` needs a task (-t)"
        );
        assert_eq!(
            EngineError::Panicked("boom".into()).to_string(),
            "engine panicked: boom"
        );
    }

    #[test]
    fn only_panics_are_faults() {
        assert!(EngineError::Panicked("x".into()).is_fault());
        assert!(!EngineError::failed("x").is_fault());
        assert!(!EngineError::UnknownCommand("x".into()).is_fault());
    }
}
