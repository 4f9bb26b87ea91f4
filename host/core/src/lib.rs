//! The etmemd core: the object model (projects, engines, tasks), the handling of
//! [`Action`]s, the scheduler of rounds and the engine registry.
//!
//! It must not know about sockets or frames (that is the RPC layer in `etmemd`), and it
//! reaches the system only through [`etmem_kernel::Kernel`].

pub mod action;
pub mod plugin;
mod add;
mod daemon;
pub mod engine;
mod model;
mod scheduler;

pub use action::{Action, ActionError, ActionHandler, Reply};
pub use daemon::{Daemon, DaemonHandle, DelTargets};
pub use engine::{
    BuiltinEngine, CommandRequest, EngineError, EngineFactory, EngineRegistry, RoundContext,
    RoundTarget, ScanParams, Scheduling, TaskInfo,
};
