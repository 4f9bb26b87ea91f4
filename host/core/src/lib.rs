//! The etmemd core: the object model (projects, engines, tasks), the handling of
//! [`Action`]s, the scheduler of rounds, the engine registry and plug-in boundary, and the
//! host capabilities through which engines see processes and act on them.
//!
//! It must not know about sockets or frames (that is the RPC layer in `etmemd`), and it
//! reaches the system only through [`etmem_kernel::Kernel`].

pub mod action;
mod add;
pub mod alloc;
mod caps;
mod daemon;
pub mod engine;
pub mod heat;
mod model;
pub mod record;
pub use model::TaskStats;
pub mod plugin;
mod round_cost;
pub use round_cost::Moved;
pub mod runtime;
mod scheduler;

pub use action::{Action, ActionError, ActionHandler, Reply};
pub use daemon::{
    Daemon, DaemonHandle, DaemonOptions, DelTargets, ProjectStats, metrics_text, stats_json,
    stats_text,
};
pub use engine::{
    BuiltinFactory, EngineError, EngineRegistry, ScanParams, Scheduling, TaskInfo, engine_params,
    task_params,
};
pub use scheduler::scan_result_of;
