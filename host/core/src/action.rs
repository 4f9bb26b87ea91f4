//! The actions the daemon core handles, and what it answers.
//!
//! The RPC layer decodes a request frame into an [`Action`], hands it to an
//! [`ActionHandler`] (the daemon), and encodes the [`Reply`] or [`ActionError`] back. The
//! core never sees a socket; the RPC layer never sees a project.

use etmem_proto::OptResult;
pub use etmem_proto::heatmap::Format as HeatmapFormat;
use std::future::Future;
use thiserror::Error;

/// One request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `etmem obj add -f FILE`: FILE exactly as the client sent it (resolved against the
    /// daemon's working directory).
    ObjAdd {
        /// config path, verbatim
        file: String,
    },
    /// `etmem obj del -f FILE`.
    ObjDel {
        /// config path, verbatim
        file: String,
    },
    /// `etmem project start -n NAME`.
    ProjectStart {
        /// project name
        project: String,
    },
    /// `etmem project stop -n NAME`.
    ProjectStop {
        /// project name
        project: String,
    },
    /// `etmem project show [-n NAME]`.
    ProjectShow {
        /// project name; `None` lists every project
        project: Option<String>,
    },
    /// `etmem project show [-n NAME] -o json` (our addition): the same as JSON, with the
    /// project's state; a named project that does not exist is an error.
    ProjectShowJson {
        /// project name; `None` lists every project
        project: Option<String>,
    },
    /// `etmem project stats -n NAME` (our addition): what the rounds of each task did.
    ProjectStats {
        /// project name
        project: String,
        /// `-o json`: one JSON object instead of lines of text
        json: bool,
    },
    /// `etmem engine CMD -n PROJECT -e ENGINE [-t TASK]`.
    EngineCmd {
        /// project name
        project: String,
        /// engine name (type name, or `eng_name` for thirdparty)
        engine: String,
        /// the engine's private command
        cmd: String,
        /// task name, when `-t` was given
        task: Option<String>,
        /// `-o json` (our addition, wire command 8): the engine is asked for JSON
        json: bool,
    },
    /// `etmem project heatmap -n NAME -t TASK [-e ENGINE]` (our addition): the task's
    /// access history of its recent rounds.
    TaskHeatmap {
        /// project name
        project: String,
        /// engine name; `None` when the task's name is unique in the project
        engine: Option<String>,
        /// task name
        task: String,
        /// the output form
        format: HeatmapFormat,
    },
}

/// A successful answer: the text the client prints (often empty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// handler output, sent before the success tag
    pub output: String,
}

impl Reply {
    /// A reply with no output.
    pub fn empty() -> Reply {
        Reply::default()
    }
}

/// A failed answer: the C result class (its fixed text goes first on the wire) and the
/// precise reason (the line we add after it). `output` is handler text already produced
/// before the failure (rare; engine commands).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {detail}", result.text())]
pub struct ActionError {
    /// which of the ten fixed C texts the client sees
    pub result: OptResult,
    /// the precise reason: object, key, value, allowed range
    pub detail: String,
    /// output produced before the failure
    pub output: String,
}

impl ActionError {
    /// An error of class `result` with reason `detail`.
    pub fn new(result: OptResult, detail: impl Into<String>) -> ActionError {
        ActionError {
            result,
            detail: detail.into(),
            output: String::new(),
        }
    }
}

/// Anything that answers actions: the daemon, or a stand-in in RPC tests.
pub trait ActionHandler: Send + Sync + 'static {
    /// Handles one action. Must not block the caller's executor thread for long: slow work
    /// (stopping rounds) is awaited, not spun.
    fn handle(&self, action: Action) -> impl Future<Output = Result<Reply, ActionError>> + Send;
}
