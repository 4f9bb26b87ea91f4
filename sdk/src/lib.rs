//! # etmem-sdk: write an etmem engine once, ship it as a native library or a wasm component
//!
//! An engine receives the scan results of its tasks' processes and returns decisions
//! ([`Action`]s); the daemon owns the clock, the processes and the kernel, checks every
//! decision and acts on it. Implement [`Engine`] and [`Task`], then call
//! [`export_engine!`] once:
//!
//! - built natively (`cargo build`, `crate-type = ["cdylib"]`) it exports an abi_stable root
//!   module ([`native::EngineMod`]) whose entry points catch panics;
//! - built for `wasm32` it exports the `etmem:engine/engine` interface of
//!   `wit/engine.wit` as a component.
//!
//! Shorter still: implement [`Policy`] (params in; scan results in, actions out) and call
//! [`export_policy!`] once; [`PolicyEngine`] and [`PolicyTask`] do the rest.
//!
//! Test an engine without a daemon with [`testing::FakeHost`] and [`testing::Harness`].
//!
//! ## From C `engine_ops`
//!
//! | C hook (`engine_ops`) | etmem-sdk |
//! | --- | --- |
//! | `fill_eng_params` | [`Engine::configure`] (typed [`Params`] instead of a `GKeyFile`) |
//! | `clear_eng_params` | dropping the engine |
//! | `fill_task_params` | [`Engine::new_task`] |
//! | `clear_task_params` | dropping the [`Engine::Task`] (`drop-task`) |
//! | `start_task` | nothing: the host schedules rounds and calls [`Task::plan`] (a region project's rounds carry pids only: see [`Host::damon_apply_scheme`]) |
//! | `stop_task` | the host stops scheduling, then calls [`Task::stop_task`] |
//! | `alloc_pid_params` / `free_pid_params` | nothing: the host resolves pids |
//! | `eng_mgt_func` | [`Engine::command`]: return the text instead of writing to a fd |
//!
//! This crate depends on no host crate; it must not do I/O on behalf of an engine.

#![warn(missing_docs)]

extern crate self as etmem_sdk;

pub mod command;
mod engine;
mod error;
mod params;
mod policy;
#[doc(hidden)]
pub mod runtime;
mod scan;
pub mod testing;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use engine::{Engine, Host, Task};
pub use error::EngineError;
pub use params::{FromParam, PROJECT_KEYS, Params};
pub use policy::{Policy, PolicyEngine, PolicyTask};
pub use scan::{ScanResult, ScanRun};

/// The Rust blocks of `sdk/README.md`, compiled (and run) as doctests, so that what the
/// README tells an engine author keeps building; its `ini` block is loaded by
/// `host/config/tests/conf.rs`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
pub use types::{
    Action, Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, LogLevel, MemInfo,
    NodeMemory, Page, PageRun, PageSize, Pid, ProcessMemory, Round, SystemFacts, TaskInfo, Vma,
};

/// The names of the plug-in contract as written in `wit/engine.wit`; a test checks the WIT
/// and this crate agree.
pub mod contract {
    /// The WIT package.
    pub const PACKAGE: &str = "etmem:engine@0.2.0";
    /// The WIT world an engine component targets.
    pub const WORLD: &str = "etmem-engine";
    /// The functions of the exported `engine` interface, in WIT order.
    pub const ENGINE_EXPORTS: &[&str] = &[
        "configure",
        "new-task",
        "plan",
        "stop-task",
        "drop-task",
        "command",
    ];
    /// The functions of the imported `host` interface, in WIT order.
    pub const HOST_IMPORTS: &[&str] = &[
        "log",
        "task-vmas",
        "task-scan",
        "task-memory",
        "task-page-nodes",
        "request-swap-out",
        "request-migrate",
        "system-facts",
        "reclaim-swapcache",
        "task-smaps-vmas",
        "send-page-list",
        "damon-apply-scheme",
        "damon-remove-scheme",
        "cgroup-glob",
        "cgroup-memory",
        "cgroup-reclaim",
    ];
    /// The cases of WIT `engine-error`, in order ([`crate::EngineError`] adds `panicked`,
    /// native only).
    pub const ENGINE_ERROR_CASES: &[&str] = &[
        "invalid-param",
        "missing-param",
        "unknown-param",
        "unknown-task",
        "unknown-command",
        "task-required",
        "host",
        "failed",
    ];
}

/// Exports `$engine` (a type implementing [`Engine`]) from this crate: as an abi_stable
/// root module when built natively (crate-type `cdylib`), as the WIT `engine` interface
/// when built for `wasm32`. Call it once, at the crate root.
///
/// The engine is exported under the crate's name with `-` written `_` (crate `idle-swap`
/// exports `idle_swap`): a config's `ops_name` names it. That is also the file stem
/// `scripts/build-engine` gives both forms (`libidle_swap.so`, `idle_swap.wasm`).
///
/// ```
/// use etmem_sdk::{Action, Engine, EngineError, Host, Params, Round, ScanResult, Task, TaskInfo};
///
/// struct Nothing;
/// struct NothingTask;
/// impl Engine for Nothing {
///     type Task = NothingTask;
///     fn configure(_: &Params, _: &dyn Host) -> Result<Nothing, EngineError> {
///         Ok(Nothing)
///     }
///     fn new_task(&mut self, _: &TaskInfo, _: &Params, _: &dyn Host)
///         -> Result<NothingTask, EngineError> {
///         Ok(NothingTask)
///     }
/// }
/// impl Task for NothingTask {
///     fn plan(&mut self, _: &Round, _: &[ScanResult], _: &dyn Host)
///         -> Result<Vec<Action>, EngineError> {
///         Ok(Vec::new())
///     }
/// }
///
/// etmem_sdk::export_engine!(Nothing);
/// ```
#[macro_export]
macro_rules! export_engine {
    ($engine:ty) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        pub struct __EtmemEngineName;
        #[cfg(not(target_arch = "wasm32"))]
        impl $crate::native::EngineName for __EtmemEngineName {
            const NAME: &'static str = match ::core::option_env!("CARGO_CRATE_NAME") {
                Some(name) => name,
                None => "",
            };
        }
        #[cfg(not(target_arch = "wasm32"))]
        #[doc(hidden)]
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static __ETMEM_ENGINE_LIB_HEADER: $crate::native::abi_stable::library::LibHeader =
            $crate::native::lib_header_named::<$engine, __EtmemEngineName>();

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        pub type __EtmemWasmEngine = $crate::wasm::Adapter<$engine>;
        #[cfg(target_arch = "wasm32")]
        $crate::wasm::bindings::export!(__EtmemWasmEngine with_types_in $crate::wasm::bindings);
    };
}

/// Exports the [`Policy`] `$policy` as an engine: [`export_engine!`] of
/// [`PolicyEngine<$policy>`](PolicyEngine). Call it once, at the crate root; the engine's
/// name is the crate's, as for [`export_engine!`].
///
/// ```
/// use etmem_sdk::{EngineError, Params, Policy};
///
/// struct Nothing;
/// impl Policy for Nothing {
///     fn new(_: &Params) -> Result<Nothing, EngineError> {
///         Ok(Nothing)
///     }
/// }
///
/// etmem_sdk::export_policy!(Nothing);
/// ```
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        $crate::export_engine!($crate::PolicyEngine<$policy>);
    };
}
