//! The traits an engine author implements ([`Engine`], [`Task`]) and the capabilities the
//! host offers ([`Host`]), name for name with the `engine` and `host` interfaces of
//! `wit/engine.wit`.
//!
//! | WIT (`engine` export) | here |
//! | --- | --- |
//! | `configure` | [`Engine::configure`] |
//! | `new-task` | [`Engine::new_task`] |
//! | `plan` | [`Task::plan`] |
//! | `stop-task` | [`Task::stop_task`] |
//! | `drop-task` | dropping the [`Engine::Task`] value |
//! | `command` | [`Engine::command`] |
//!
//! An engine decides; it must not sleep, spawn threads or touch the kernel.

use crate::{
    Action, Cgroup, CgroupMemory, CgroupReclaimed, EngineError, LogLevel, Params, Pid,
    ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo, Vma,
};

/// One engine instance: one per `[engine]` object of a project.
pub trait Engine: Sized + Send + 'static {
    /// The per-task state; dropped on task delete (`drop-task`).
    type Task: Task;

    /// Engine add (`configure`): builds the engine from the `[engine]` section's own keys.
    /// Reject every key you do not understand (see [`Params::deny_unknown`]).
    fn configure(params: &Params, host: &dyn Host) -> Result<Self, EngineError>;

    /// Task add (`new-task`): builds the task's state from the `[task]` section's engine
    /// keys.
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        host: &dyn Host,
    ) -> Result<Self::Task, EngineError>;

    /// A private command (`etmem engine <cmd> [-t <task>]`, C `eng_mgt_func`). The text
    /// returned goes to the client; it must not contain the bytes 0xFF or 0xFE. `task` is the
    /// task named with `-t`, if any. The default knows no command.
    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut Self::Task)>,
        host: &dyn Host,
    ) -> Result<String, EngineError> {
        let _ = (task, host);
        Err(EngineError::UnknownCommand(cmd.to_string()))
    }
}

/// The state of one task of an engine.
pub trait Task: Send + 'static {
    /// One round (`plan`): the scan results of the task's processes in, actions out. The
    /// host checks every action before acting on it.
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError>;

    /// The host stopped scheduling the task (`stop-task`, project stop); it may start again
    /// later with the same state. The default does nothing.
    fn stop_task(&mut self, host: &dyn Host) {
        let _ = host;
    }
}

/// What the host offers an engine (the WIT `host` interface). Every call concerns the
/// engine's own tasks only; the host refuses anything else with [`EngineError::Host`].
pub trait Host {
    /// Writes a line to the daemon's log, prefixed with the engine's name.
    fn log(&self, level: LogLevel, message: &str);
    /// The VMAs of one of the task's processes.
    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, EngineError>;
    /// The task's scan results of its latest round (empty before its first round).
    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, EngineError>;
    /// Memory use of one of the task's processes.
    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, EngineError>;
    /// WIT `task-page-nodes`: the NUMA node of each page in `addrs` of one of the task's
    /// processes, or a negative errno for a page that is not present (as move_pages(2)).
    fn task_page_nodes(&self, task: &str, pid: Pid, addrs: &[u64])
    -> Result<Vec<i32>, EngineError>;
    /// Requests a swap-out now (outside `plan`); returns the pages accepted.
    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, EngineError>;
    /// Requests a migration now (outside `plan`); returns the pages accepted.
    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, EngineError>;
    /// Memory of the machine and of each node.
    fn system_facts(&self) -> SystemFacts;
    /// WIT `reclaim-swapcache`: sets the swap cache watermarks (percent of RAM,
    /// `1 <= low < high <= 100`) of the openEuler etmem_swap module and wakes its swap cache
    /// reclaim, through one of the task's processes. [`EngineError::Host`] names what is
    /// missing on kernels without the module (upstream kernels have no such interface).
    fn reclaim_swapcache(&self, task: &str, pid: Pid, low: u8, high: u8)
    -> Result<(), EngineError>;

    /// WIT `cgroup-glob`: the memory cgroups the task's `cg_dir` pattern matches now
    /// (the host globs inside its cgroup mount), sorted by path. The default (a host
    /// without cgroup capabilities) refuses.
    fn cgroup_glob(&self, task: &str) -> Result<Vec<Cgroup>, EngineError> {
        let _ = task;
        Err(EngineError::Host(
            "this host offers no cgroup capabilities".into(),
        ))
    }
    /// WIT `cgroup-memory`: memory figures and pressure of one of the task's cgroups (a
    /// path `cgroup-glob` returned).
    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<CgroupMemory, EngineError> {
        let _ = (task, cgroup);
        Err(EngineError::Host(
            "this host offers no cgroup capabilities".into(),
        ))
    }
    /// WIT `cgroup-reclaim`: asks the kernel to reclaim `bytes` from one of the task's
    /// cgroups (`memory.reclaim`). The host bounds `bytes` (the cgroup's usage, the task's
    /// `reclaim_max_bytes`) and writes nothing in a dry run.
    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, EngineError> {
        let _ = (task, cgroup, bytes);
        Err(EngineError::Host(
            "this host offers no cgroup capabilities".into(),
        ))
    }
}
