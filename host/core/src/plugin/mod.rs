//! Engines as the host sees them: one object-safe interface, [`EngineInstance`], over the
//! three ways an engine arrives — built in (first-party, compiled in), a native `.so`
//! (abi_stable) and a WebAssembly component (wasmtime, in the `etmem-host-wasm` crate).
//!
//! The host owns the clock, the processes and the kernel; an engine only receives task
//! descriptions and scan results and returns decisions ([`Action`]s) that the host checks
//! before acting. This module must not schedule, scan or act: it only carries calls.
//!
//! Two kinds of failure cross this boundary and are kept apart:
//! * [`CallError::Engine`]: the engine refused (bad parameter, unknown command...). A value:
//!   reported to the user, the engine stays usable.
//! * [`CallError::Fault`]: the engine broke (wasm trap, deadline, memory limit, a panic
//!   caught at the boundary). The host quarantines the engine: marks it failed, stops its
//!   tasks, and says why in the logs and in the reply to the next command.
//!
//! # The params an engine receives
//!
//! Built-in and loaded engines alike get [`Params`] built from the raw `key = value` pairs
//! of their config section, in file order, values as written:
//! * `configure`: the `[engine]` keys minus `name`, `project`, `eng_name`, `libname`,
//!   `ops_name` and `round_quota_bytes` (the host's own), followed by the project keys
//!   engines need, under their own names: `loop`, `interval`, `sleep` (page-scan projects),
//!   `sample_interval`, `aggr_interval`, `update_interval`, `min_nr_regions`,
//!   `max_nr_regions` (region projects), `sysmem_threshold`, `swapcache_high_wmark`,
//!   `swapcache_low_wmark` (when set). For cslide, `hot_threshold` carries the value after
//!   the host's clamp to `loop*3+1`; for damon, the six size/acc/age keys carry the values
//!   as the config read them (`-1` wraps to the maximum, as C's `strtoul`).
//! * `new-task`: the `[task]` keys minus `name`, `project`, `engine`, `type`, `value`,
//!   `max_threads`, `swap_flag` (the host's scheduling keys), `record_scans` and `record_rounds`.
//!
//! `Params::deny_unknown` accepts these project keys by itself (`etmem_sdk::PROJECT_KEYS`).

pub(crate) mod builtin;
pub mod native;
pub mod thirdparty;

pub use thirdparty::{DEFAULT_FETCH_DIR, check_library};

/// Configures a new instance of the SDK engine `E` as a built-in engine (what
/// `EngineRegistry::register_builtin` does for each `[engine]` of that type). For
/// factories that adjust the params first, such as test engines.
pub fn load_builtin<E: etmem_sdk::Engine>(
    type_name: &str,
    params: &Params,
    host: &HostRef,
) -> Result<Box<dyn EngineInstance>, CallError> {
    builtin::BuiltinInstance::<E>::configure(type_name, params, host)
        .map(|i| Box::new(i) as Box<dyn EngineInstance>)
}

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use thiserror::Error;

pub use etmem_sdk::{
    Action, EngineError as SdkEngineError, Host, Params, Round, ScanResult, TaskInfo as SdkTaskInfo,
};

/// The host capabilities handed to every engine call. Shared and `'static` so that a loader
/// may keep it for the duration of a call (the wasm store's data, for instance).
pub type HostRef = Arc<dyn Host + Send + Sync>;

/// Why an engine call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// The engine's expected failure, as a value. The engine stays usable.
    #[error("{0}")]
    Engine(SdkEngineError),
    /// The engine faulted; the engine must be quarantined. The text says what happened
    /// (`wasm trap: unreachable`, `deadline of 5s exceeded`, `panicked: ...`).
    #[error("engine fault: {0}")]
    Fault(String),
}

/// One loaded engine instance: one `[engine]` object with its tasks, addressed by task name.
/// Methods mirror the WIT `engine` interface (`wit/engine.wit`) name for name.
pub trait EngineInstance: Send + fmt::Debug {
    /// WIT `new-task`: a task was added (its private keys in `params`).
    fn new_task(
        &mut self,
        task: &SdkTaskInfo,
        params: &Params,
        host: &HostRef,
    ) -> Result<(), CallError>;

    /// WIT `plan`: decide a round of `task` from its scan results.
    fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &HostRef,
    ) -> Result<Vec<Action>, CallError>;

    /// WIT `stop-task`: the task's project was stopped (the task stays, and may start again).
    fn stop_task(&mut self, task: &str, host: &HostRef) -> Result<(), CallError>;

    /// WIT `drop-task`: the task was deleted.
    fn drop_task(&mut self, task: &str) -> Result<(), CallError>;

    /// WIT `command`: a private command (`etmem engine <cmd> ...`); returns the text sent to
    /// the client.
    fn command(
        &mut self,
        cmd: &str,
        task: Option<&str>,
        host: &HostRef,
    ) -> Result<String, CallError>;
}

/// Why a third-party engine file could not be loaded. Messages name the file and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// The file is missing, not a regular file, or cannot be read.
    #[error("engine library `{path}`: {reason}")]
    File {
        /// the file
        path: String,
        /// what is wrong with it
        reason: String,
    },
    /// The file is not owned by root or is writable by group or others.
    #[error("engine library `{path}`: {reason}")]
    Permissions {
        /// the file
        path: String,
        /// what is wrong with its owner or mode
        reason: String,
    },
    /// No loader handles this kind of file.
    #[error("engine library `{path}`: {reason}")]
    Unsupported {
        /// the file
        path: String,
        /// which kinds are supported
        reason: String,
    },
    /// The file is an engine of an incompatible version or layout, or not an engine.
    #[error("engine library `{path}`: {reason}")]
    Incompatible {
        /// the file
        path: String,
        /// the mismatch, summarised
        reason: String,
    },
    /// `ops_name` names no engine exported by the file.
    #[error("engine library `{path}` exports no engine `{ops_name}`{hint}")]
    NoSuchEngine {
        /// the file
        path: String,
        /// the name asked for
        ops_name: String,
        /// e.g. ` (it exports `idle_swap`)`
        hint: String,
    },
    /// The engine's `configure` refused its parameters or faulted.
    #[error("engine `{engine}`: configure: {error}")]
    Configure {
        /// the engine's `eng_name`
        engine: String,
        /// what the engine said
        error: CallError,
    },
}

/// A way to turn a file into an [`EngineInstance`]: native `.so`, `.wasm`.
pub trait EngineLoader: Send + Sync + fmt::Debug {
    /// The file name ending this loader handles, without the dot (`so`, `wasm`).
    fn extension(&self) -> &'static str;

    /// Loads `path` (already resolved, owner and mode checked), picks the engine named
    /// `ops_name`, and calls its `configure` with the engine's private `params`.
    fn load(
        &self,
        path: &Path,
        ops_name: &str,
        engine_name: &str,
        params: &Params,
        host: &HostRef,
    ) -> Result<Box<dyn EngineInstance>, LoadError>;
}
