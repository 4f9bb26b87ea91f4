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
    Action, Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, EngineError, LogLevel,
    Params, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo, Vma,
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
///
/// An engine calls it from its hooks, naming its own task; a test answers with
/// [`FakeHost`](crate::testing::FakeHost):
///
/// ```
/// use etmem_sdk::testing::FakeHost;
/// use etmem_sdk::{EngineError, Host, LogLevel, ProcessMemory};
///
/// /// Swaps out `addrs` of `pid` now when the process has more than `limit_kb` resident.
/// fn trim(host: &dyn Host, task: &str, pid: u32, addrs: &[u64], limit_kb: u64)
///     -> Result<u64, EngineError> {
///     let mem = host.task_memory(task, pid)?;
///     if mem.rss_kb <= limit_kb {
///         return Ok(0);
///     }
///     host.log(LogLevel::Info, &format!("task `{task}`: pid {pid} has {} KiB", mem.rss_kb));
///     host.request_swap_out(task, pid, addrs)
/// }
///
/// # fn main() -> Result<(), EngineError> {
/// let host = FakeHost::new()
///     .with_task_memory("db", 42, ProcessMemory { rss_kb: 4096, swap_kb: 0 });
/// assert_eq!(trim(&host, "db", 42, &[0x1000, 0x2000], 1024)?, 2);
/// assert_eq!(host.calls(), ["task-memory", "log", "request-swap-out"]);
/// // not the engine's own process: refused
/// assert!(matches!(trim(&host, "db", 7, &[0x1000], 1024), Err(EngineError::Host(_))));
/// # Ok(())
/// # }
/// ```
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
    /// WIT `task-smaps-vmas`: the VMAs of one of the task's processes as smaps lists them,
    /// with their [`Vma::vm_flags`], keeping those whose flags hold every one of `flags` (all
    /// when empty). Costlier than [`Host::task_vmas`] (the kernel walks the page tables).
    fn task_smaps_vmas(
        &self,
        task: &str,
        pid: Pid,
        flags: &[&str],
    ) -> Result<Vec<Vma>, EngineError>;
    /// WIT `send-page-list`: hands the pages of `pages` (one of the task's processes, hot
    /// and cold, with their counts) to the memRouter daemon `memdcd` on `sock`, which must
    /// be the task's own `Sock` (`@name`: abstract socket; else a socket file). The host
    /// checks the pages, builds memdcd's messages (one connection each) and checks the
    /// replies. Returns the messages sent (a dry run: those it would have sent).
    fn send_page_list(
        &self,
        task: &str,
        sock: &str,
        pages: &ScanResult,
    ) -> Result<u64, EngineError>;
    /// WIT `damon-apply-scheme`: has the kernel's DAMON apply `scheme` to one of the
    /// task's processes, monitored with `attrs` (a region project's). The host checks the
    /// pid, the values and the action name, and does the DAMON writes on its one kdamond;
    /// applying the same again does nothing, other values replace the earlier ones. The
    /// host removes it when the task stops or the process exits. A dry-run project applies
    /// nothing (the host logs what it would apply). The default refuses (a host that does
    /// not offer DAMON).
    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &DamonAttrs,
        scheme: &DamonScheme,
    ) -> Result<(), EngineError> {
        let _ = (task, attrs, scheme);
        Err(EngineError::Host(format!(
            "pid {pid}: this host does not offer damon-apply-scheme"
        )))
    }
    /// WIT `damon-remove-scheme`: takes the scheme of one of the task's processes away
    /// (nothing when none is applied). The default refuses.
    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), EngineError> {
        let _ = task;
        Err(EngineError::Host(format!(
            "pid {pid}: this host does not offer damon-remove-scheme"
        )))
    }

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
