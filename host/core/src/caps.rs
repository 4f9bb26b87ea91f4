//! The host capabilities of one engine ([`EngineHost`], handed to it as a
//! [`HostRef`](crate::plugin::HostRef)), and the one place where an engine's decisions are
//! checked and carried out.
//!
//! Every decision — an action returned by `plan` or a `request-*` call — goes through
//! [`EngineHost::act`]: only the task's own current processes, every address aligned to
//! its page size and inside one of that process's VMAs, within the round's byte quota
//! (per task, when the engine's `round_quota_bytes` or the daemon's default sets one).
//! Refused addresses are logged (warn) and never acted on; the rest goes to the kernel.
//!
//! This module must not call the engine (it is called from inside engine calls) nor take
//! the daemon's state lock.

use crate::plugin::{Action, SdkEngineError};
use etmem_kernel::track::{DamonAttrs, DamonScheme, DamosAction, DamosScheme};
use etmem_kernel::{
    ActionReport, FailReason, Kernel, PageRef, PageSizes, ProcessHandle, SwapMethod,
    SwapcacheWmark, UnixAddr, VmaFilter,
};
use etmem_sdk::{
    Cgroup as SdkCgroup, CgroupMemory as SdkCgroupMemory, CgroupReclaimed,
    DamonAttrs as SdkDamonAttrs, DamonScheme as SdkDamonScheme, Host, LogLevel,
    MemInfo as SdkMemInfo, NodeMemory, PageRun, PageSize, Pid, ProcessMemory, ScanResult,
    SystemFacts, Vma as SdkVma,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// How many refused addresses of one action are logged one by one.
const REFUSALS_LOGGED: usize = 8;

/// What the host knows of one task of the engine.
#[derive(Debug, Default)]
struct TaskView {
    /// the processes of the current round, main first
    procs: Vec<Arc<ProcessHandle>>,
    /// the scan results of the latest round
    scans: Vec<ScanResult>,
    /// bytes still allowed this round (`None`: no quota)
    budget: Option<u64>,
    /// the memdcd socket the task may send page lists to (its `Sock`), or why it has none
    sock: Option<Result<UnixAddr, String>>,
    /// the task's cgroups (psi tasks)
    cgroups: Option<cgroup::CgroupView>,
}

/// The capabilities of one engine of one project.
#[derive(Debug)]
pub(crate) struct EngineHost {
    project: String,
    engine: String,
    kernel: Arc<dyn Kernel>,
    quota: Option<u64>,
    /// the project's `dry_run`: check actions, carry out none, report what would move
    dry_run: bool,
    tasks: Mutex<BTreeMap<String, TaskView>>,
    /// DAMON schemes applied for the engine (`damon-apply-scheme`), by task and pid;
    /// dropping one removes it from the kernel
    damon: Mutex<BTreeMap<(String, Pid), Applied>>,
}

/// A DAMON scheme of one process of a task.
#[derive(Debug)]
enum Applied {
    /// on our kdamond
    Kernel(DamonScheme),
    /// a dry run: what would be applied (logged once)
    Dry(DamonAttrs, DamosScheme),
}

impl Applied {
    fn values(&self) -> (DamonAttrs, DamosScheme) {
        match self {
            Applied::Kernel(s) => (s.attrs(), s.scheme()),
            Applied::Dry(a, s) => (*a, *s),
        }
    }
}

/// What a dry run reports for checked `pages`: every one done, as if the kernel had
/// taken them all.
fn dry_run_report(pages: &[PageRef]) -> ActionReport {
    let n = pages.len() as u64;
    let bytes = pages.iter().map(|p| p.size).sum();
    ActionReport {
        method: "dry run",
        requested_pages: n,
        requested_bytes: bytes,
        done_pages: n,
        done_bytes: bytes,
        failed: BTreeMap::new(),
    }
}

/// Which action, for logs and the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Swap,
    Migrate(u32),
}

impl EngineHost {
    pub(crate) fn new(
        project: &str,
        engine: &str,
        kernel: Arc<dyn Kernel>,
        quota: Option<u64>,
        dry_run: bool,
    ) -> EngineHost {
        EngineHost {
            project: project.to_string(),
            engine: engine.to_string(),
            kernel,
            quota,
            dry_run,
            tasks: Mutex::new(BTreeMap::new()),
            damon: Mutex::new(BTreeMap::new()),
        }
    }

    /// True when this engine's project is a dry run.
    pub(crate) fn dry_run(&self) -> bool {
        self.dry_run
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, TaskView>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn who(&self, task: &str) -> String {
        format!(
            "engine `{}` of project `{}`, task `{task}`",
            self.engine, self.project
        )
    }

    /// A task was added, with its memdcd socket (`Sock`) if it has one.
    pub(crate) fn add_task(&self, task: &str, sock: Option<Result<UnixAddr, String>>) {
        self.lock().entry(task.to_string()).or_default().sock = sock;
    }

    /// A task was deleted.
    pub(crate) fn remove_task(&self, task: &str) {
        self.lock().remove(task);
        self.release_damon(task);
    }

    fn damon_lock(&self) -> MutexGuard<'_, BTreeMap<(String, Pid), Applied>> {
        self.damon.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes every DAMON scheme of `task` from the kernel (task stop or delete, whatever
    /// the engine did: spec B13). Writes sysfs: call it off the async runtime.
    pub(crate) fn release_damon(&self, task: &str) {
        let gone: Vec<((String, Pid), Applied)> = {
            let mut d = self.damon_lock();
            let keys: Vec<(String, Pid)> = d.keys().filter(|k| k.0 == task).cloned().collect();
            keys.into_iter()
                .filter_map(|k| d.remove(&k).map(|v| (k, v)))
                .collect()
        };
        for ((_, pid), a) in gone {
            if let Applied::Kernel(s) = a {
                match s.remove() {
                    Ok(()) => {
                        tracing::info!("{}: DAMON scheme of pid {pid} removed", self.who(task))
                    }
                    Err(e) => tracing::warn!(
                        "{}: DAMON scheme of pid {pid}: removal failed: {e}",
                        self.who(task)
                    ),
                }
            }
        }
    }

    /// A round of `task` begins on `procs`: they become its current processes, and the
    /// round's quota is reset.
    pub(crate) fn begin_round(&self, task: &str, procs: Vec<Arc<ProcessHandle>>) {
        let quota = self.quota;
        let mut t = self.lock();
        let v = t.entry(task.to_string()).or_default();
        v.procs = procs;
        v.budget = quota;
    }

    /// The scan results of `task`'s round (what `task-scan` answers from now on).
    pub(crate) fn set_scans(&self, task: &str, scans: Vec<ScanResult>) {
        if let Some(v) = self.lock().get_mut(task) {
            v.scans = scans;
        }
    }

    /// The handle of `pid` if it is one of `task`'s current processes.
    fn process(&self, task: &str, pid: Pid) -> Result<Arc<ProcessHandle>, SdkEngineError> {
        let t = self.lock();
        let v = t.get(task).ok_or_else(|| {
            SdkEngineError::Host(format!(
                "no task `{task}` in engine `{}` of project `{}`",
                self.engine, self.project
            ))
        })?;
        v.procs
            .iter()
            .find(|p| p.pid() == pid)
            .cloned()
            .ok_or_else(|| {
                SdkEngineError::Host(format!(
                    "pid {pid} is not a current process of task `{task}`"
                ))
            })
    }

    /// The addresses of a `request-*` call as runs in the order given, each page of the
    /// size the latest scan of `pid` saw at its address, else a base page.
    fn runs_of_addrs(&self, task: &str, pid: Pid, addrs: &[u64]) -> Vec<PageRun> {
        let t = self.lock();
        let scan = t
            .get(task)
            .and_then(|v| v.scans.iter().find(|s| s.pid() == pid));
        PageRun::coalesce(addrs.iter().map(|&a| {
            let size = scan
                .and_then(|s| s.page_size_at(a))
                .unwrap_or(PageSize::Size4K);
            (a, size)
        }))
    }

    /// Checks `action` for `task` and carries out what passes (module docs). `Ok(None)`
    /// when nothing passed; `Err` when the action as a whole is refused (foreign pid) or
    /// the kernel failed.
    pub(crate) fn act(
        &self,
        task: &str,
        action: &Action,
        origin: &str,
    ) -> Result<Option<ActionReport>, SdkEngineError> {
        let (pid, runs, kind) = match action {
            Action::SwapOut { pid, runs } => (*pid, runs.as_slice(), Kind::Swap),
            Action::Migrate { pid, runs, node } => (*pid, runs.as_slice(), Kind::Migrate(*node)),
        };
        let who = self.who(task);
        let handle = match self.process(task, pid) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(
                    "{who}: {origin}: refused {} page(s) of pid {pid}: {e}",
                    action.page_count()
                );
                return Err(e);
            }
        };
        let vmas = match self.kernel.vmas(&handle, &VmaFilter::default()) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    "{who}: {origin}: refused {} page(s) of pid {pid}: its VMAs are unknown: {e}",
                    action.page_count()
                );
                return Err(SdkEngineError::Host(format!("pid {pid}: {e}")));
            }
        };
        let mut checker = PageChecker::new(runs, &vmas);
        let what = match kind {
            Kind::Swap => "swap out".to_string(),
            Kind::Migrate(n) => format!("migrate to node {n}"),
        };
        let what = if self.dry_run {
            format!("dry run: would {what}")
        } else {
            what
        };
        let mut total: Option<ActionReport> = None;
        let r = loop {
            let pages = {
                let mut t = self.lock();
                let Some(v) = t.get_mut(task) else {
                    return Err(SdkEngineError::Host(format!("no task `{task}`")));
                };
                checker.next_chunk(&mut v.budget)
            };
            if pages.is_empty() {
                break Ok(total.take());
            }
            let r = match kind {
                // checked like the real thing (VMAs, quota), carried out by nobody
                _ if self.dry_run => Ok(dry_run_report(&pages)),
                Kind::Swap => self
                    .kernel
                    .swap_out(&handle, &pages, u64::MAX, SwapMethod::Auto),
                Kind::Migrate(node) => self.kernel.migrate(&handle, &pages, node, u64::MAX),
            };
            match r {
                Ok(rep) => match &mut total {
                    Some(t) => t.absorb(rep),
                    None => total = Some(rep),
                },
                Err(e) => break Err(e),
            }
        };
        let refusals = &checker.refusals;
        for (addr, why) in &refusals.first {
            tracing::warn!("{who}: {origin}: refused pid {pid} address {addr:#x}: {why}");
        }
        let more = refusals.total() - refusals.first.len() as u64;
        if more > 0 {
            let reasons: Vec<String> = refusals
                .by_reason
                .iter()
                .map(|(why, n)| format!("{why}: {n}"))
                .collect();
            tracing::warn!(
                "{who}: {origin}: refused {more} more page(s) of pid {pid} ({})",
                reasons.join(", ")
            );
        }
        match r {
            Ok(None) => Ok(None),
            Ok(Some(rep)) => {
                tracing::info!("{who}: {what} pid {pid}: {rep}");
                Ok(Some(rep))
            }
            Err(e) if e.is_gone() => {
                tracing::debug!("{who}: {what} pid {pid}: the process is gone: {e}");
                Err(SdkEngineError::Host(format!("pid {pid} is gone")))
            }
            Err(e) => {
                tracing::warn!("{who}: {what} pid {pid}: {e}");
                Err(SdkEngineError::Host(format!("{what} pid {pid}: {e}")))
            }
        }
    }
}

/// Pages handed to the kernel in one call: a chunk of [`PageRef`]s (16 bytes each) bounds
/// what an action of any size costs the host (1 MiB), however many pages its runs name.
const CHUNK_PAGES: usize = 1 << 16;

/// Refused pages of one action: counts by reason, and the first few with their address.
#[derive(Debug, Default)]
struct Refusals {
    by_reason: BTreeMap<&'static str, u64>,
    first: Vec<(u64, String)>,
}

impl Refusals {
    fn add(&mut self, addr: u64, why: &'static str, size: u64, pages: u64) {
        if pages == 0 {
            return;
        }
        *self.by_reason.entry(why).or_default() += pages;
        if self.first.len() < REFUSALS_LOGGED {
            let text = if why == NOT_ALIGNED {
                format!("{why} ({size} bytes)")
            } else {
                why.to_string()
            };
            self.first.push((addr, text));
        }
    }

    fn total(&self) -> u64 {
        self.by_reason.values().sum()
    }
}

const NOT_ALIGNED: &str = "not aligned to its page size";
const OUTSIDE: &str = "outside the process's VMAs";
const OVER_QUOTA: &str = "over the round's byte quota";

/// Walks the runs of an action and hands out its pages that pass the checks (aligned, inside
/// one VMA, within `budget`), at most [`CHUNK_PAGES`] at a time; a run inside one VMA costs
/// one lookup, not one per page.
struct PageChecker<'a> {
    runs: &'a [PageRun],
    vmas: Vec<&'a etmem_kernel::Vma>,
    /// the run and the pages of it already walked
    run: usize,
    done: u32,
    refusals: Refusals,
}

impl<'a> PageChecker<'a> {
    fn new(runs: &'a [PageRun], vmas: &'a [etmem_kernel::Vma]) -> PageChecker<'a> {
        let mut vmas: Vec<&etmem_kernel::Vma> = vmas.iter().collect();
        vmas.sort_by_key(|v| v.start);
        PageChecker {
            runs,
            vmas,
            run: 0,
            done: 0,
            refusals: Refusals::default(),
        }
    }

    /// The next pages to act on (empty when the runs are exhausted), spending `budget`.
    fn next_chunk(&mut self, budget: &mut Option<u64>) -> Vec<PageRef> {
        let mut out = Vec::new();
        while out.len() < CHUNK_PAGES {
            let Some(&r) = self.runs.get(self.run) else {
                break;
            };
            let size = r.size.bytes();
            let left = u64::from(r.pages - self.done);
            let whole_run = |me: &mut Self| {
                me.run += 1;
                me.done = 0;
            };
            let Some(start) = r.addr.checked_add(u64::from(self.done) * size) else {
                // the rest of the run lies past the address space
                self.refusals.add(r.addr, OUTSIDE, size, left);
                whole_run(self);
                continue;
            };
            if r.addr % size != 0 {
                // the pages that start past the address space count as outside
                let valid = ((u64::MAX - start) / size + 1).min(left);
                self.refusals.add(start, NOT_ALIGNED, size, valid);
                self.refusals.add(start, OUTSIDE, size, left - valid);
                whole_run(self);
                continue;
            }
            let i = self.vmas.partition_point(|v| v.start <= start);
            let fit = match i.checked_sub(1).map(|i| self.vmas[i]) {
                Some(v) if v.contains_range(start, size) => (v.end - start) / size,
                _ => 0,
            };
            if fit == 0 {
                // every page that starts before the next VMA is outside
                let n = self
                    .vmas
                    .get(i)
                    .map_or(left, |v| (v.start - start).div_ceil(size))
                    .clamp(1, left);
                self.refusals.add(start, OUTSIDE, size, n);
                self.done += u32::try_from(n).unwrap_or(u32::MAX);
            } else {
                let n = fit.min(left).min((CHUNK_PAGES - out.len()) as u64);
                let can = budget.map_or(n, |b| (b / size).min(n));
                if can == 0 {
                    self.refusals.add(start, OVER_QUOTA, size, n);
                } else {
                    if let Some(b) = budget {
                        *b -= can * size;
                    }
                    out.extend((0..can).map(|k| PageRef {
                        addr: start + k * size,
                        size,
                    }));
                }
                // both are at most `left`, a u32
                self.done += u32::try_from(if can == 0 { n } else { can }).unwrap_or(u32::MAX);
            }
            if self.done >= r.pages {
                whole_run(self);
            }
        }
        out
    }
}

fn sdk_mem(m: &etmem_kernel::MemInfo) -> SdkMemInfo {
    SdkMemInfo {
        mem_total_kb: m.mem_total_kb.unwrap_or(0),
        mem_free_kb: m.mem_free_kb.unwrap_or(0),
        mem_available_kb: m.mem_available_kb.unwrap_or(0),
        swap_total_kb: m.swap_total_kb.unwrap_or(0),
        swap_free_kb: m.swap_free_kb.unwrap_or(0),
        swap_cached_kb: m.swap_cached_kb.unwrap_or(0),
    }
}

/// A node of `move_pages` as the WIT says it: the node, or a negative errno.
fn node_code(n: &etmem_kernel::PageNode) -> i32 {
    match n {
        Ok(node) => i32::try_from(*node).unwrap_or(i32::MAX),
        Err(FailReason::NotPresent) => -2,  // ENOENT
        Err(FailReason::Gone) => -3,        // ESRCH
        Err(FailReason::NoMemory) => -12,   // ENOMEM
        Err(FailReason::Permission) => -13, // EACCES
        Err(FailReason::Busy) => -16,       // EBUSY
        Err(FailReason::Errno(e)) => -e.abs(),
        Err(_) => -22, // EINVAL
    }
}

impl Host for EngineHost {
    fn log(&self, level: LogLevel, message: &str) {
        let (e, p) = (&self.engine, &self.project);
        match level {
            LogLevel::Error => tracing::error!("engine `{e}` of project `{p}`: {message}"),
            LogLevel::Warn => tracing::warn!("engine `{e}` of project `{p}`: {message}"),
            LogLevel::Info => tracing::info!("engine `{e}` of project `{p}`: {message}"),
            LogLevel::Debug => tracing::debug!("engine `{e}` of project `{p}`: {message}"),
        }
    }

    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<SdkVma>, SdkEngineError> {
        let h = self.process(task, pid)?;
        let vmas = self
            .kernel
            .vmas(&h, &VmaFilter::default())
            .map_err(|e| SdkEngineError::Host(format!("pid {pid}: {e}")))?;
        Ok(vmas.into_iter().map(sdk_vma).collect())
    }

    /// The VMAs from smaps, each with its `VmFlags`, those with every flag of `flags`.
    fn task_smaps_vmas(
        &self,
        task: &str,
        pid: Pid,
        flags: &[&str],
    ) -> Result<Vec<SdkVma>, SdkEngineError> {
        if flags.len() > MAX_FLAGS || flags.iter().any(|f| f.len() > MAX_FLAG_LEN) {
            return Err(SdkEngineError::Host(format!(
                "task-smaps-vmas: at most {MAX_FLAGS} flags of at most {MAX_FLAG_LEN} bytes"
            )));
        }
        let h = self.process(task, pid)?;
        let filter = VmaFilter {
            vm_flags: flags.iter().map(|f| f.to_string()).collect(),
            smaps: true,
            ..VmaFilter::default()
        };
        let vmas = self
            .kernel
            .vmas(&h, &filter)
            .map_err(|e| SdkEngineError::Host(format!("pid {pid}: {e}")))?;
        Ok(vmas.into_iter().map(sdk_vma).collect())
    }

    /// Checks the socket is the task's `Sock`, the pid one of its processes and the pages
    /// inside that process's VMAs (pages outside are left out and logged, as for actions);
    /// then sends memdcd's messages, one connection each, and checks every reply. The first
    /// failed message ends the list (memdcd would hold an unfinished sequence either way).
    fn send_page_list(
        &self,
        task: &str,
        sock: &str,
        pages: &ScanResult,
    ) -> Result<u64, SdkEngineError> {
        let who = self.who(task);
        let pid = pages.pid();
        let refused = |e: String| {
            tracing::warn!("{who}: send-page-list pid {pid}: refused: {e}");
            SdkEngineError::Host(e)
        };
        let addr = crate::engine::parse_sock(sock).map_err(|e| refused(e.to_string()))?;
        let allowed = self.lock().get(task).map(|v| v.sock.clone());
        match allowed {
            None => return Err(refused(format!("no task `{task}`"))),
            Some(None) => {
                return Err(refused(format!(
                    "task `{task}` has no `Sock` key: it has no memdcd socket"
                )));
            }
            Some(Some(Err(why))) => return Err(refused(format!("key `Sock`: {why}"))),
            Some(Some(Ok(own))) if own != addr => {
                return Err(refused(format!(
                    "socket `{}` is not the task's `Sock` ({own})",
                    sock.escape_debug()
                )));
            }
            Some(Some(Ok(_))) => {}
        }
        if pages.len() as u64 > MAX_LIST_PAGES {
            return Err(refused(format!(
                "{} pages, at most {MAX_LIST_PAGES} in one list",
                pages.len()
            )));
        }
        let mpid = i32::try_from(pid).map_err(|_| refused(format!("pid {pid} out of range")))?;
        let handle = self
            .process(task, pid)
            .map_err(|e| refused(e.to_string()))?;
        let vmas = self
            .kernel
            .vmas(&handle, &VmaFilter::default())
            .map_err(|e| refused(format!("pid {pid}: its VMAs are unknown: {e}")))?;
        let (runs, refusals) = clip_to_vmas(pages, &vmas, self.kernel.page_sizes());
        for (a, why) in &refusals.first {
            tracing::warn!("{who}: send-page-list: left out pid {pid} address {a:#x}: {why}");
        }
        let more = refusals.total() - refusals.first.len() as u64;
        if more > 0 {
            tracing::warn!("{who}: send-page-list: left out {more} more page(s) of pid {pid}");
        }
        let total: u64 = runs.iter().map(|r| r.pages).sum();
        let entries = runs.into_iter().flat_map(|r| {
            (0..r.pages).map(move |k| memdcd::Entry {
                addr: r.addr + k * r.size,
                len: r.size,
                count: r.count,
            })
        });
        let messages = memdcd::Messages::new(mpid, total, entries);
        let count = messages.total_messages();
        if self.dry_run {
            tracing::info!(
                "{who}: dry run: would send {total} page(s) of pid {pid} to memdcd at {addr} \
                 in {count} message(s)"
            );
            return Ok(count);
        }
        for (i, m) in messages.enumerate() {
            let at = format!("memdcd at {addr}: message {} of {count} (pid {pid})", i + 1);
            let reply = self
                .kernel
                .unix_exchange(&addr, &m, memdcd::REPLY_MAX)
                .map_err(|e| format!("{at}: {e}"))
                .and_then(|r| {
                    memdcd::check_reply(&r)
                        .map_err(|r| format!("{at}: reply `{r}`, expected `success` or none"))
                });
            if let Err(e) = reply {
                tracing::warn!("{who}: send-page-list: {e}");
                return Err(SdkEngineError::Host(e));
            }
        }
        if count > 0 {
            tracing::info!(
                "{who}: sent {total} page(s) of pid {pid} to memdcd at {addr} in {count} \
                 message(s)"
            );
        }
        Ok(count)
    }

    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, SdkEngineError> {
        self.lock()
            .get(task)
            .map(|v| v.scans.clone())
            .ok_or_else(|| SdkEngineError::Host(format!("no task `{task}`")))
    }

    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, SdkEngineError> {
        let h = self.process(task, pid)?;
        let st = self
            .kernel
            .status(&h)
            .map_err(|e| SdkEngineError::Host(format!("pid {pid}: {e}")))?;
        Ok(ProcessMemory {
            rss_kb: st.vm_rss_kb.unwrap_or(0),
            swap_kb: st.vm_swap_kb.unwrap_or(0),
        })
    }

    fn task_page_nodes(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
    ) -> Result<Vec<i32>, SdkEngineError> {
        let h = self.process(task, pid)?;
        let nodes = self
            .kernel
            .page_nodes(&h, addrs)
            .map_err(|e| SdkEngineError::Host(format!("pid {pid}: {e}")))?;
        Ok(nodes.iter().map(node_code).collect())
    }

    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, SdkEngineError> {
        let a = Action::SwapOut {
            pid,
            runs: self.runs_of_addrs(task, pid, addrs),
        };
        Ok(self
            .act(task, &a, "request-swap-out")?
            .map_or(0, |r| r.done_pages))
    }

    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, SdkEngineError> {
        let a = Action::Migrate {
            pid,
            runs: self.runs_of_addrs(task, pid, addrs),
            node,
        };
        Ok(self
            .act(task, &a, "request-migrate")?
            .map_or(0, |r| r.done_pages))
    }

    fn system_facts(&self) -> SystemFacts {
        // an engine asks for these every round: what cannot be read is said, and left out
        let meminfo = self
            .kernel
            .meminfo()
            .map(|m| sdk_mem(&m))
            .unwrap_or_else(|e| {
                tracing::warn!("system facts: meminfo unknown, reported as 0: {e}");
                Default::default()
            });
        let nodes = self
            .kernel
            .numa_nodes()
            .unwrap_or_else(|e| {
                tracing::warn!("system facts: NUMA nodes unknown, none reported: {e}");
                Vec::new()
            })
            .into_iter()
            .filter_map(|n| {
                let m = self
                    .kernel
                    .node_meminfo(n)
                    .map_err(|e| tracing::warn!("system facts: node {n} left out: {e}"))
                    .ok()?;
                // every pool size counts, at its real size (not only 2 MiB: B21)
                let pools = self.kernel.node_hugepages(n).unwrap_or_else(|e| {
                    tracing::warn!("node {n}: huge pages unknown, reported as 0: {e}");
                    Vec::new()
                });
                Some(NodeMemory {
                    node: n,
                    total_kb: m.mem_total_kb.unwrap_or(0),
                    free_kb: m.mem_free_kb.unwrap_or(0),
                    huge_total_kb: pools.iter().map(|p| p.total_kb()).sum(),
                    huge_free_kb: pools.iter().map(|p| p.free_kb()).sum(),
                })
            })
            .collect();
        SystemFacts { meminfo, nodes }
    }

    /// Checks that `pid` is the task's and the watermarks valid, then asks the kernel;
    /// logged at info when done (as each action is), at warn when refused.
    fn reclaim_swapcache(
        &self,
        task: &str,
        pid: Pid,
        low: u8,
        high: u8,
    ) -> Result<(), SdkEngineError> {
        let who = self.who(task);
        let refused = |e: String| {
            tracing::warn!("{who}: reclaim-swapcache pid {pid}: refused: {e}");
            SdkEngineError::Host(e)
        };
        let h = self
            .process(task, pid)
            .map_err(|e| refused(e.to_string()))?;
        let wmark = SwapcacheWmark::new(low, high).map_err(&refused)?;
        if self.dry_run {
            tracing::info!(
                "{who}: dry run: would set the swap cache watermarks low {low} % high {high} % \
                 and wake reclaim through pid {pid}"
            );
            return Ok(());
        }
        match self.kernel.reclaim_swapcache(&h, wmark) {
            Ok(()) => {
                tracing::info!(
                    "{who}: swap cache watermarks low {low} % high {high} % set and reclaim \
                     woken through pid {pid}"
                );
                Ok(())
            }
            Err(e) if e.is_gone() => Err(SdkEngineError::Host(format!("pid {pid} is gone"))),
            Err(e) => Err(refused(format!("pid {pid}: {e}"))),
        }
    }

    /// Checks that `pid` is the task's, the action a name DAMON takes and the values
    /// consistent, then applies the scheme on our kdamond (the kernel layer refuses a
    /// kdamond not ours, and sharing with the access tracker); a dry run applies nothing
    /// and logs what it would, once.
    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &SdkDamonAttrs,
        scheme: &SdkDamonScheme,
    ) -> Result<(), SdkEngineError> {
        let who = self.who(task);
        let refused = |e: String| {
            tracing::warn!("{who}: damon-apply-scheme pid {pid}: refused: {e}");
            SdkEngineError::Host(e)
        };
        let h = self
            .process(task, pid)
            .map_err(|e| refused(e.to_string()))?;
        let action = DamosAction::from_name(&scheme.action).ok_or_else(|| {
            let names: Vec<&str> = DamosAction::ALL.iter().map(|a| a.name()).collect();
            refused(format!(
                "action `{}`: expected one of {}",
                scheme.action,
                names.join(", ")
            ))
        })?;
        let attrs = DamonAttrs {
            sample_us: attrs.sample_us,
            aggr_us: attrs.aggr_us,
            update_us: attrs.update_us,
            min_nr_regions: attrs.min_nr_regions,
            max_nr_regions: attrs.max_nr_regions,
        };
        let scheme = DamosScheme {
            min_size: scheme.min_size,
            max_size: scheme.max_size,
            min_acc: scheme.min_acc,
            max_acc: scheme.max_acc,
            min_age: scheme.min_age,
            max_age: scheme.max_age,
            action,
        };
        attrs.check().map_err(&refused)?;
        scheme.check().map_err(&refused)?;
        let key = (task.to_string(), pid);
        let old = {
            let mut d = self.damon_lock();
            match d.get(&key) {
                // the same again: nothing to do while it is still on our kdamond
                Some(a)
                    if a.values() == (attrs, scheme)
                        && !matches!(a, Applied::Kernel(s) if s.kdamond_index().is_none()) =>
                {
                    return Ok(());
                }
                _ => d.remove(&key),
            }
        };
        drop(old);
        if self.dry_run && action.acts() {
            tracing::info!(
                "{who}: dry run: would apply DAMON scheme ({scheme}; sample {} µs, aggr {} \
                 µs) to pid {pid}; nothing applied",
                attrs.sample_us,
                attrs.aggr_us
            );
            self.damon_lock().insert(key, Applied::Dry(attrs, scheme));
            return Ok(());
        }
        match self.kernel.damon_apply_scheme(&h, attrs, scheme) {
            Ok(s) => {
                tracing::info!(
                    "{who}: DAMON scheme ({scheme}) applied to pid {pid} on kdamond {}",
                    s.kdamond_index()
                        .map_or_else(|| "?".to_string(), |i| i.to_string())
                );
                self.damon_lock().insert(key, Applied::Kernel(s));
                Ok(())
            }
            Err(e) if e.is_gone() => Err(SdkEngineError::Host(format!("pid {pid} is gone"))),
            Err(e) => Err(refused(format!("pid {pid}: {e}"))),
        }
    }

    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), SdkEngineError> {
        let a = self.damon_lock().remove(&(task.to_string(), pid));
        match a {
            Some(Applied::Kernel(s)) => s.remove().map_err(|e| {
                let e = format!("pid {pid}: DAMON scheme removal: {e}");
                tracing::warn!("{}: {e}", self.who(task));
                SdkEngineError::Host(e)
            }),
            Some(Applied::Dry(..)) | None => Ok(()),
        }
    }

    /// Matches the task's `cg_dir` inside the cgroup mount; what it answers is what the
    /// task may name in the other cgroup calls until the next glob.
    fn cgroup_glob(&self, task: &str) -> Result<Vec<SdkCgroup>, SdkEngineError> {
        self.glob_cgroups(task)
    }

    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<SdkCgroupMemory, SdkEngineError> {
        self.cgroup_figures(task, cgroup)
    }

    /// Checks the cgroup is the task's, bounds `bytes`, then writes `memory.reclaim` (not
    /// in a dry run): [`EngineHost::reclaim_cgroup`].
    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, SdkEngineError> {
        self.reclaim_cgroup(task, cgroup, bytes)
    }
}

/// Pages one `send-page-list` may name: 2^24 (64 GiB of base pages, 32768 messages).
const MAX_LIST_PAGES: u64 = 1 << 24;
/// Flags one `task-smaps-vmas` may ask for, and their length (VmFlags are two letters).
const MAX_FLAGS: usize = 64;
const MAX_FLAG_LEN: usize = 16;

fn sdk_vma(v: etmem_kernel::Vma) -> SdkVma {
    SdkVma {
        start: v.start,
        end: v.end,
        readable: v.perms.read,
        writable: v.perms.write,
        executable: v.perms.exec,
        shared: v.perms.shared,
        offset: v.offset,
        inode: v.inode,
        path: v.path,
        vm_flags: v.vm_flags.unwrap_or_default(),
    }
}

/// Pages of one size and count, back to back, that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CountedRun {
    addr: u64,
    pages: u64,
    size: u64,
    count: i32,
}

/// The pages of `scan` that lie inside `vmas`, each aligned to its size (the kernel's
/// sizes for the scan's codes), as runs; the others refused.
fn clip_to_vmas(
    scan: &ScanResult,
    vmas: &[etmem_kernel::Vma],
    sizes: PageSizes,
) -> (Vec<CountedRun>, Refusals) {
    let mut vmas: Vec<&etmem_kernel::Vma> = vmas.iter().collect();
    vmas.sort_by_key(|v| v.start);
    let mut out = Vec::new();
    let mut refusals = Refusals::default();
    let (addrs, lens, counts, codes) = scan.columns();
    for i in 0..addrs.len() {
        let size = match codes[i] {
            0 => sizes.pte,
            1 => sizes.pmd,
            _ => sizes.pud,
        }
        .max(1);
        let (start, n, count) = (addrs[i], u64::from(lens[i]), i32::from(counts[i]));
        let Some(end) = n.checked_mul(size).and_then(|b| start.checked_add(b)) else {
            refusals.add(start, OUTSIDE, size, n);
            continue;
        };
        if start % size != 0 {
            refusals.add(start, NOT_ALIGNED, size, n);
            continue;
        }
        let mut a = start;
        while a < end {
            let left = (end - a) / size;
            let i = vmas.partition_point(|v| v.start <= a);
            let fit = match i.checked_sub(1).map(|i| vmas[i]) {
                Some(v) if v.contains_range(a, size) => ((v.end - a) / size).min(left),
                _ => 0,
            };
            if fit > 0 {
                match out.last_mut() {
                    Some(r @ &mut CountedRun { .. })
                        if r.addr + r.pages * r.size == a && r.size == size && r.count == count =>
                    {
                        r.pages += fit;
                    }
                    _ => out.push(CountedRun {
                        addr: a,
                        pages: fit,
                        size,
                        count,
                    }),
                }
                a += fit * size;
            } else {
                // every page that starts before the next VMA is outside
                let k = vmas
                    .get(i)
                    .map_or(left, |v| v.start.saturating_sub(a).div_ceil(size))
                    .clamp(1, left);
                refusals.add(a, OUTSIDE, size, k);
                a += k * size;
            }
        }
    }
    (out, refusals)
}

/// The SDK page size of a tracked page size, if it is one of the three.
pub(crate) fn sdk_page_size(bytes: u64, sizes: PageSizes) -> Option<PageSize> {
    if bytes == sizes.pte {
        Some(PageSize::Size4K)
    } else if bytes == sizes.pmd {
        Some(PageSize::Size2M)
    } else if bytes == sizes.pud {
        Some(PageSize::Size1G)
    } else {
        None
    }
}

mod cgroup;
pub(crate) mod memdcd;

#[cfg(test)]
mod tests;
