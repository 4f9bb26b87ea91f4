//! [`FakeHost`]: a [`Host`] for unit tests, so an engine can be exercised without a daemon;
//! [`Harness`]: drives an engine by task name the way the daemon does; [`native`] (off
//! wasm32): the daemon's side of the native ABI over any [`Host`], to drive a `.so`;
//! [`fixture`]: recorded scan rounds an engine's parity tests drive through every form.
//!
//! The fake answers from values the test sets and records every call. It must not touch
//! the machine.

use crate::runtime::Runner;
use crate::{
    Action, Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, Engine, EngineError,
    Host, LogLevel, PageRun, Params, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo,
    Vma,
};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub mod fixture;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;

/// A request an engine made through [`Host::request_swap_out`] or
/// [`Host::request_migrate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// the task named in the call
    pub task: String,
    /// what was asked
    pub action: Action,
}

/// A call of [`Host::reclaim_swapcache`] the host accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapcacheReclaim {
    /// the task named in the call
    pub task: String,
    /// the process named
    pub pid: Pid,
    /// the watermarks asked for
    pub low: u8,
    /// the watermarks asked for
    pub high: u8,
}

/// A call of [`Host::send_page_list`] the host accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageList {
    /// the task named in the call
    pub task: String,
    /// the socket named
    pub sock: String,
    /// the pages
    pub pages: ScanResult,
}

/// Entries in one memdcd message (what [`FakeHost`] counts messages by).
const MEMDCD_ENTRIES: usize = 512;

/// A DAMON scheme the engine has applied through [`Host::damon_apply_scheme`] and not
/// removed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedScheme {
    /// the task named in the call
    pub task: String,
    /// the process named
    pub pid: Pid,
    /// the monitoring attributes asked for
    pub attrs: DamonAttrs,
    /// the scheme asked for
    pub scheme: DamonScheme,
}

/// A call of [`Host::cgroup_reclaim`] the host accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupReclaim {
    /// the task named in the call
    pub task: String,
    /// the cgroup's path
    pub cgroup: String,
    /// bytes asked for
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Recorded {
    damon: Vec<AppliedScheme>,
    cgroup_reclaims: Vec<CgroupReclaim>,
    calls: Vec<&'static str>,
    logs: Vec<(LogLevel, String)>,
    requests: Vec<Request>,
    swapcache: Vec<SwapcacheReclaim>,
    page_lists: Vec<PageList>,
}

/// A scripted [`Host`]: set what it answers, then inspect what the engine asked.
///
/// Unknown tasks or pids are refused with [`EngineError::Host`], as the daemon refuses an
/// engine that asks about something that is not its own.
///
/// ```
/// use etmem_sdk::testing::FakeHost;
/// use etmem_sdk::{EngineError, Host, MemInfo, SystemFacts, Vma};
///
/// let vma = Vma { start: 0x1000, end: 0x9000, readable: true, writable: true, ..Vma::default() };
/// let facts = SystemFacts {
///     meminfo: MemInfo { mem_total_kb: 8 << 20, mem_free_kb: 1 << 20, ..MemInfo::default() },
///     nodes: Vec::new(),
/// };
/// let host = FakeHost::new()
///     .with_vmas("web", 42, vec![vma.clone()])
///     .with_system_facts(facts)
///     .refusing_requests("swap is off");
/// assert_eq!(host.task_vmas("web", 42), Ok(vec![vma]));
/// assert_eq!(host.system_facts().meminfo.mem_free_kb, 1 << 20);
/// assert_eq!(
///     host.request_swap_out("web", 42, &[0x1000]),
///     Err(EngineError::Host("swap is off".into()))
/// );
/// assert!(host.requests().is_empty());
/// assert_eq!(host.calls(), ["task-vmas", "system-facts", "request-swap-out"]);
/// ```
#[derive(Debug, Default)]
pub struct FakeHost {
    vmas: BTreeMap<(String, Pid), Vec<Vma>>,
    scans: BTreeMap<String, Vec<ScanResult>>,
    memory: BTreeMap<(String, Pid), ProcessMemory>,
    page_nodes: BTreeMap<(String, Pid), BTreeMap<u64, i32>>,
    facts: SystemFacts,
    refuse_requests: Option<String>,
    refuse_swapcache: Option<String>,
    refuse_page_lists: Option<String>,
    refuse_damon: Option<String>,
    cgroups: BTreeMap<String, Vec<Cgroup>>,
    cgroup_memory: Mutex<BTreeMap<String, CgroupMemory>>,
    recorded: Mutex<Recorded>,
}

impl FakeHost {
    /// A host that knows nothing and accepts every request.
    pub fn new() -> FakeHost {
        FakeHost::default()
    }

    /// Answers `task-vmas(task, pid)` with `vmas`.
    pub fn with_vmas(mut self, task: &str, pid: Pid, vmas: Vec<Vma>) -> FakeHost {
        self.vmas.insert((task.to_string(), pid), vmas);
        self
    }

    /// Answers `task-scan(task)` with `scans`.
    pub fn with_scans(mut self, task: &str, scans: Vec<ScanResult>) -> FakeHost {
        self.scans.insert(task.to_string(), scans);
        self
    }

    /// Answers `task-memory(task, pid)` with `memory`.
    pub fn with_task_memory(mut self, task: &str, pid: Pid, memory: ProcessMemory) -> FakeHost {
        self.memory.insert((task.to_string(), pid), memory);
        self
    }

    /// Answers `task-page-nodes(task, pid, ..)`: each address in `nodes` is on that node;
    /// any other address answers `-ENOENT` (-2), as move_pages(2) does for an absent page.
    pub fn with_page_nodes(mut self, task: &str, pid: Pid, nodes: &[(u64, i32)]) -> FakeHost {
        self.page_nodes
            .entry((task.to_string(), pid))
            .or_default()
            .extend(nodes.iter().copied());
        self
    }

    /// Answers `system-facts()` with `facts`.
    pub fn with_system_facts(mut self, facts: SystemFacts) -> FakeHost {
        self.facts = facts;
        self
    }

    /// Refuses every swap/migrate request with `reason`.
    pub fn refusing_requests(mut self, reason: &str) -> FakeHost {
        self.refuse_requests = Some(reason.to_string());
        self
    }

    /// Refuses every `send-page-list` with `reason` (memdcd down, or a foreign socket).
    pub fn refusing_page_lists(mut self, reason: &str) -> FakeHost {
        self.refuse_page_lists = Some(reason.to_string());
        self
    }

    /// The `send-page-list` calls accepted so far.
    pub fn page_lists(&self) -> Vec<PageList> {
        self.record().page_lists.clone()
    }

    /// Refuses every `reclaim-swapcache` with `reason` (a kernel without etmem_swap).
    pub fn refusing_swapcache(mut self, reason: &str) -> FakeHost {
        self.refuse_swapcache = Some(reason.to_string());
        self
    }

    /// Refuses every `damon-apply-scheme` with `reason` (a kernel without DAMON sysfs).
    pub fn refusing_damon(mut self, reason: &str) -> FakeHost {
        self.refuse_damon = Some(reason.to_string());
        self
    }

    /// The DAMON schemes applied and not removed, in the order applied.
    pub fn damon_schemes(&self) -> Vec<AppliedScheme> {
        self.record().damon.clone()
    }

    /// Adds cgroup `path` with `memory` to what `cgroup-glob(task)` answers; a reclaim of
    /// it lowers its usage (file pages first, then anonymous ones) as if all were taken.
    pub fn with_cgroup(mut self, task: &str, path: &str, memory: CgroupMemory) -> FakeHost {
        let list = self.cgroups.entry(task.to_string()).or_default();
        list.push(Cgroup {
            path: path.to_string(),
            id: list.len() as u64 + 1,
        });
        list.sort();
        self.set_cgroup_memory(path, memory);
        self
    }

    /// Changes what `cgroup-memory(.., path)` answers from now on (pressure rising...).
    pub fn set_cgroup_memory(&self, path: &str, memory: CgroupMemory) {
        self.cgroup_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(path.to_string(), memory);
    }

    /// The `cgroup-reclaim` calls accepted so far.
    pub fn cgroup_reclaims(&self) -> Vec<CgroupReclaim> {
        self.record().cgroup_reclaims.clone()
    }

    fn record(&self) -> std::sync::MutexGuard<'_, Recorded> {
        // A test thread that panicked while holding the lock leaves valid data behind.
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The names (WIT spelling) of the host functions called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.record().calls.clone()
    }

    /// The log lines written so far.
    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.record().logs.clone()
    }

    /// The swap/migrate requests accepted so far.
    pub fn requests(&self) -> Vec<Request> {
        self.record().requests.clone()
    }

    /// The `reclaim-swapcache` calls accepted so far.
    pub fn swapcache_reclaims(&self) -> Vec<SwapcacheReclaim> {
        self.record().swapcache.clone()
    }

    fn request(&self, task: &str, action: Action, pages: usize) -> Result<u64, EngineError> {
        if let Some(reason) = &self.refuse_requests {
            return Err(EngineError::Host(reason.clone()));
        }
        self.record().requests.push(Request {
            task: task.to_string(),
            action,
        });
        Ok(pages as u64)
    }
}

fn refuse(what: &str) -> EngineError {
    EngineError::Host(format!("{what} is not known to this host"))
}

impl Host for FakeHost {
    fn log(&self, level: LogLevel, message: &str) {
        let mut r = self.record();
        r.calls.push("log");
        r.logs.push((level, message.to_string()));
    }

    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, EngineError> {
        self.record().calls.push("task-vmas");
        self.vmas
            .get(&(task.to_string(), pid))
            .cloned()
            .ok_or_else(|| refuse(&format!("pid {pid} of task `{task}`")))
    }

    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, EngineError> {
        self.record().calls.push("task-scan");
        self.scans
            .get(task)
            .cloned()
            .ok_or_else(|| refuse(&format!("task `{task}`")))
    }

    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, EngineError> {
        self.record().calls.push("task-memory");
        self.memory
            .get(&(task.to_string(), pid))
            .copied()
            .ok_or_else(|| refuse(&format!("pid {pid} of task `{task}`")))
    }

    fn task_page_nodes(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
    ) -> Result<Vec<i32>, EngineError> {
        self.record().calls.push("task-page-nodes");
        let known = self
            .page_nodes
            .get(&(task.to_string(), pid))
            .ok_or_else(|| refuse(&format!("pid {pid} of task `{task}`")))?;
        Ok(addrs
            .iter()
            .map(|a| known.get(a).copied().unwrap_or(-2))
            .collect())
    }

    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, EngineError> {
        self.record().calls.push("request-swap-out");
        let action = Action::SwapOut {
            pid,
            // the harness has no page table to tell huge pages: base pages
            runs: PageRun::of_base_pages(addrs),
        };
        self.request(task, action, addrs.len())
    }

    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, EngineError> {
        self.record().calls.push("request-migrate");
        let action = Action::Migrate {
            pid,
            // the harness has no page table to tell huge pages: base pages
            runs: PageRun::of_base_pages(addrs),
            node,
        };
        self.request(task, action, addrs.len())
    }

    fn system_facts(&self) -> SystemFacts {
        self.record().calls.push("system-facts");
        self.facts.clone()
    }

    /// Refused with [`FakeHost::refusing_swapcache`]'s reason; else recorded (like the
    /// requests, whatever the task and pid).
    fn reclaim_swapcache(
        &self,
        task: &str,
        pid: Pid,
        low: u8,
        high: u8,
    ) -> Result<(), EngineError> {
        self.record().calls.push("reclaim-swapcache");
        if let Some(reason) = &self.refuse_swapcache {
            return Err(EngineError::Host(reason.clone()));
        }
        self.record().swapcache.push(SwapcacheReclaim {
            task: task.to_string(),
            pid,
            low,
            high,
        });
        Ok(())
    }

    /// Answers from [`FakeHost::with_vmas`] (their `vm_flags` as set), keeping the VMAs
    /// whose flags hold every one of `flags`.
    fn task_smaps_vmas(
        &self,
        task: &str,
        pid: Pid,
        flags: &[&str],
    ) -> Result<Vec<Vma>, EngineError> {
        self.record().calls.push("task-smaps-vmas");
        let vmas = self
            .vmas
            .get(&(task.to_string(), pid))
            .ok_or_else(|| refuse(&format!("pid {pid} of task `{task}`")))?;
        Ok(vmas
            .iter()
            .filter(|v| flags.iter().all(|f| v.has_vm_flag(f)))
            .cloned()
            .collect())
    }

    /// Refused with [`FakeHost::refusing_page_lists`]'s reason; else recorded, answering
    /// the messages memdcd would get (512 pages each, none for no page).
    fn send_page_list(
        &self,
        task: &str,
        sock: &str,
        pages: &ScanResult,
    ) -> Result<u64, EngineError> {
        self.record().calls.push("send-page-list");
        if let Some(reason) = &self.refuse_page_lists {
            return Err(EngineError::Host(reason.clone()));
        }
        self.record().page_lists.push(PageList {
            task: task.to_string(),
            sock: sock.to_string(),
            pages: pages.clone(),
        });
        Ok(pages.len().div_ceil(MEMDCD_ENTRIES) as u64)
    }

    /// Refused with [`FakeHost::refusing_damon`]'s reason; else recorded (whatever the task
    /// and pid), replacing what the same task and pid had.
    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &DamonAttrs,
        scheme: &DamonScheme,
    ) -> Result<(), EngineError> {
        self.record().calls.push("damon-apply-scheme");
        if let Some(reason) = &self.refuse_damon {
            return Err(EngineError::Host(reason.clone()));
        }
        let mut r = self.record();
        r.damon.retain(|a| !(a.task == task && a.pid == pid));
        r.damon.push(AppliedScheme {
            task: task.to_string(),
            pid,
            attrs: *attrs,
            scheme: scheme.clone(),
        });
        Ok(())
    }

    /// Forgets the scheme of `task` and `pid`, if any.
    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), EngineError> {
        let mut r = self.record();
        r.calls.push("damon-remove-scheme");
        r.damon.retain(|a| !(a.task == task && a.pid == pid));
        Ok(())
    }

    fn cgroup_glob(&self, task: &str) -> Result<Vec<Cgroup>, EngineError> {
        self.record().calls.push("cgroup-glob");
        self.cgroups
            .get(task)
            .cloned()
            .ok_or_else(|| refuse(&format!("task `{task}`")))
    }

    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<CgroupMemory, EngineError> {
        self.record().calls.push("cgroup-memory");
        self.task_cgroup(task, cgroup)?;
        self.cgroup_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(cgroup)
            .copied()
            .ok_or_else(|| refuse(&format!("cgroup `{cgroup}`")))
    }

    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, EngineError> {
        self.record().calls.push("cgroup-reclaim");
        self.task_cgroup(task, cgroup)?;
        if let Some(m) = self
            .cgroup_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(cgroup)
        {
            let take = bytes.min(m.usage);
            let from_file = take.min(m.file);
            m.file -= from_file;
            m.anon -= (take - from_file).min(m.anon);
            m.usage -= take;
        }
        self.record().cgroup_reclaims.push(CgroupReclaim {
            task: task.to_string(),
            cgroup: cgroup.to_string(),
            bytes,
        });
        Ok(CgroupReclaimed {
            requested: bytes,
            reclaimed: bytes,
            complete: true,
            dry_run: false,
        })
    }
}

impl FakeHost {
    fn task_cgroup(&self, task: &str, cgroup: &str) -> Result<(), EngineError> {
        let ok = self
            .cgroups
            .get(task)
            .is_some_and(|l| l.iter().any(|c| c.path == cgroup));
        if ok {
            Ok(())
        } else {
            Err(refuse(&format!("cgroup `{cgroup}` of task `{task}`")))
        }
    }
}

/// Drives an engine through the same glue as [`export_engine!`](crate::export_engine):
/// tasks by name, duplicate and unknown names refused, panics caught.
///
/// ```
/// use etmem_sdk::testing::{FakeHost, Harness};
/// use etmem_sdk::{Action, EngineError, Params, Policy, PolicyEngine, Round, ScanResult, TaskInfo};
///
/// /// Swaps out every run no pass saw accessed.
/// struct Idle;
/// impl Policy for Idle {
///     fn new(_: &Params) -> Result<Idle, EngineError> {
///         Ok(Idle)
///     }
///     fn decide(&mut self, s: &ScanResult) -> Result<Vec<Action>, EngineError> {
///         let runs = s.runs().filter(|r| r.count == 0).map(|r| r.page_run()).collect();
///         Ok(vec![Action::SwapOut { pid: s.pid(), runs }])
///     }
/// }
///
/// # fn main() -> Result<(), EngineError> {
/// let mut h = Harness::<PolicyEngine<Idle>>::configure(&Params::new(), FakeHost::new())?;
/// let task = TaskInfo::named("proj", "web", "nginx");
/// h.new_task(&task, &Params::new())?;
/// // a second task of the same name is refused, as the daemon's glue refuses it
/// assert!(h.new_task(&task, &Params::new()).is_err());
/// let scan = ScanResult::from_columns(42, 3, &[0x1000, 0x4000], &[3, 1], &[0, 9], &[0, 0])?;
/// let actions = h.plan("web", &Round { number: 1, passes: 3 }, &[scan])?;
/// assert_eq!(actions[0].page_count(), 3);
/// assert_eq!(h.plan("nope", &Round::default(), &[]), Err(EngineError::UnknownTask("nope".into())));
/// h.drop_task("web")?;
/// assert!(h.task_names().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Harness<E: Engine> {
    runner: Runner<E>,
    /// the host every call is given
    pub host: FakeHost,
}

impl<E: Engine> Harness<E> {
    /// `configure` with `params` against `host`.
    pub fn configure(params: &Params, host: FakeHost) -> Result<Harness<E>, EngineError> {
        let runner = crate::runtime::guard(|| Runner::<E>::configure(params, &host))?;
        Ok(Harness { runner, host })
    }

    /// `new-task`.
    pub fn new_task(&mut self, task: &TaskInfo, params: &Params) -> Result<(), EngineError> {
        let (r, h) = (&mut self.runner, &self.host);
        crate::runtime::guard(|| r.new_task(task, params, h))
    }

    /// `plan`.
    pub fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
    ) -> Result<Vec<Action>, EngineError> {
        let (r, h) = (&mut self.runner, &self.host);
        crate::runtime::guard(|| r.plan(task, round, scans, h))
    }

    /// `stop-task`.
    pub fn stop_task(&mut self, task: &str) -> Result<(), EngineError> {
        let (r, h) = (&mut self.runner, &self.host);
        crate::runtime::guard(|| r.stop_task(task, h))
    }

    /// `drop-task`.
    pub fn drop_task(&mut self, task: &str) -> Result<(), EngineError> {
        let r = &mut self.runner;
        crate::runtime::guard(|| r.drop_task(task))
    }

    /// `command`.
    pub fn command(&mut self, cmd: &str, task: Option<&str>) -> Result<String, EngineError> {
        let (r, h) = (&mut self.runner, &self.host);
        crate::runtime::guard(|| r.command(cmd, task, h))
    }

    /// The tasks the engine holds, sorted.
    pub fn task_names(&self) -> Vec<String> {
        self.runner.task_names()
    }
}
