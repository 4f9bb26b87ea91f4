//! The `slide` engine of etmem (spec §5.2): swap out the cold pages of a task's processes.
//!
//! Each round the host runs `loop` scan passes and calls [`Task::plan`] with one
//! [`ScanResult`] per pid (counts summed over the passes). For every pid this engine:
//! 1. applies the `sysmem_threshold` gate (`MemFree*100/MemTotal` below the threshold),
//!    then the per-process gate (`swap_threshold`, or the VmSwap share);
//! 2. classifies pages: `count >= T` is hot, the rest cold; with `dram_percent`, only as
//!    many cold pages as the budget needs, lowest counts first;
//! 3. leaves out the pages it swapped out last round that are present again (read back:
//!    [`refault`], kept in memory for [`refault::KEEP_ROUNDS`] rounds);
//! 4. returns one [`Action::SwapOut`] with the cold pages in address order.
//!
//! With the swap cache watermarks (`swapcache_high_wmark`/`swapcache_low_wmark`), once a
//! round has a process that passed the gates and the swap cache is over the high mark
//! ([`policy::swapcache_reclaim_due`]), the engine asks the host to set the watermarks and
//! wake the openEuler `etmem_swap` module's reclaim (`reclaim-swapcache`) through that
//! process. C does this after each process's swap-out; here it happens when the round is
//! planned, so it sees the swap cache the earlier rounds' swap-outs left (the module's
//! reclaim is a kernel thread that runs on its own either way), and once a round: the
//! watermarks and the reclaim are the module's, for the whole machine. A kernel without the
//! module refuses: logged at warn once, then at debug while it keeps refusing.
//!
//! Written only against `etmem-sdk`: the same source is the built-in engine
//! ([`Slide`]), a native `.so` and a wasm component. It must not touch the machine.

pub mod policy;
pub mod refault;
pub mod testdata;

use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, PageRun, Params, Round, ScanResult, Task, TaskInfo,
};

/// `loop` when the host does not say (it always does for page projects).
const DEFAULT_LOOP: u32 = 1;
/// The largest `loop` (spec §4.5).
const MAX_LOOP: u32 = 120;

/// The engine: the project's keys it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slide {
    loops: u32,
    sysmem_threshold: Option<u64>,
    swapcache: Option<Wmarks>,
}

/// The swap cache watermarks, percent of RAM, `low < high`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wmarks {
    low: u8,
    high: u8,
}

/// One task: its `[task]` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlideTask {
    name: String,
    t: u32,
    swap_threshold_kb: u64,
    dram_percent: u64,
    loops: u32,
    sysmem_threshold: Option<u64>,
    swapcache: Option<Wmarks>,
    /// the host refused the last `reclaim-swapcache` (said at warn once)
    swapcache_refused: bool,
    /// what the last plans swapped out, and the pages read back since
    refaults: refault::Refaults,
}

impl Engine for Slide {
    type Task = SlideTask;

    /// Reads the project keys the host adds (`loop`, `sysmem_threshold`, the swapcache
    /// pair: both or neither, low below high); slide has no engine key of its own. Unknown keys are ignored: the host's
    /// config layer already decided about them.
    fn configure(params: &Params, _host: &dyn Host) -> Result<Slide, EngineError> {
        let loops = params
            .get_in::<u32>("loop", 1..=MAX_LOOP)?
            .unwrap_or(DEFAULT_LOOP);
        let sysmem_threshold = params.get_in::<i64>("sysmem_threshold", -1..=100)?;
        let sysmem_threshold = sysmem_threshold.and_then(|v| u64::try_from(v).ok());
        // -1 (or absent) is off; the host's config layer already insists on both or
        // neither, with high > low
        let high = params.get_in::<i64>("swapcache_high_wmark", -1..=100)?;
        let low = params.get_in::<i64>("swapcache_low_wmark", -1..=100)?;
        let on = |v: Option<i64>| v.and_then(|v| u8::try_from(v).ok()).filter(|v| *v > 0);
        let swapcache = match (on(low), on(high)) {
            (Some(low), Some(high)) if low < high => Some(Wmarks { low, high }),
            (Some(low), Some(high)) => {
                return Err(EngineError::invalid_param(
                    "swapcache_low_wmark",
                    low.to_string(),
                    format!("below swapcache_high_wmark ({high})"),
                ));
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(EngineError::MissingParam("swapcache_high_wmark".into()));
            }
            (None, Some(_)) => return Err(EngineError::MissingParam("swapcache_low_wmark".into())),
        };
        Ok(Slide {
            loops,
            sysmem_threshold,
            swapcache,
        })
    }

    /// Reads `T` (required, `0..=loop*3`), `swap_threshold` (`<digits>g`) and
    /// `dram_percent` (outside 1..=100: a warning, and off). Unknown keys are ignored.
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        host: &dyn Host,
    ) -> Result<SlideTask, EngineError> {
        let max_t = self.loops * 3;
        let t = params
            .get_in::<u32>("T", 0..=max_t)?
            .ok_or_else(|| EngineError::MissingParam("T".to_string()))?;
        let swap_threshold_kb = match params.raw("swap_threshold") {
            None => 0,
            Some(raw) => policy::parse_swap_threshold(raw).ok_or_else(|| {
                EngineError::invalid_param(
                    "swap_threshold",
                    raw,
                    "digits followed by `g` or `G`, at most 10 characters",
                )
            })?,
        };
        let dram_percent = match params.get::<i64>("dram_percent")? {
            Some(p) if (1..=100).contains(&p) => p.unsigned_abs(),
            Some(p) => {
                host.log(
                    LogLevel::Warn,
                    &format!(
                        "slide task `{}`: dram_percent={p} is outside 1..=100; dram_percent disabled",
                        task.name
                    ),
                );
                0
            }
            None => 0,
        };
        Ok(SlideTask {
            name: task.name.clone(),
            t,
            swap_threshold_kb,
            dram_percent,
            loops: self.loops,
            sysmem_threshold: self.sysmem_threshold,
            swapcache: self.swapcache,
            swapcache_refused: false,
            refaults: refault::Refaults::default(),
        })
    }
}

impl SlideTask {
    /// The gates of one pid (§5.2 step 1): true when the pid is to be processed.
    fn gate(&self, scan: &ScanResult, meminfo_open: bool, host: &dyn Host) -> bool {
        let Some(threshold) = self.sysmem_threshold else {
            return true;
        };
        if !meminfo_open {
            return false;
        }
        match host.task_memory(&self.name, scan.pid()) {
            Ok(mem) => policy::process_gate_open(&mem, threshold, self.swap_threshold_kb),
            Err(e) => {
                host.log(
                    LogLevel::Debug,
                    &format!(
                        "slide task `{}` pid {}: skipped: {e}",
                        self.name,
                        scan.pid()
                    ),
                );
                false
            }
        }
    }

    /// The cold pages of one pid (§5.2 step 3), or `None` to skip it.
    fn cold(&self, scan: &ScanResult, round: &Round, host: &dyn Host) -> Option<Vec<PageRun>> {
        if self.dram_percent == 0 {
            return Some(policy::cold_pages(scan, self.t));
        }
        let mem = match host.task_memory(&self.name, scan.pid()) {
            Ok(m) => m,
            Err(e) => {
                host.log(
                    LogLevel::Debug,
                    &format!(
                        "slide task `{}` pid {}: skipped: {e}",
                        self.name,
                        scan.pid()
                    ),
                );
                return None;
            }
        };
        let need = policy::dram_need_pages(&mem, self.dram_percent);
        let loops = if round.passes > 0 {
            round.passes
        } else {
            self.loops
        };
        // Counts reach loop*3 with the dirty weight: one bucket per possible count.
        Some(policy::cold_pages_budget(
            scan,
            self.t,
            loops.saturating_mul(3),
            need,
        ))
    }
}

impl Task for SlideTask {
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let meminfo = (self.sysmem_threshold.is_some() || self.swapcache.is_some())
            .then(|| host.system_facts().meminfo);
        let meminfo_open = match (self.sysmem_threshold, &meminfo) {
            (Some(threshold), Some(m)) => policy::sysmem_gate_open(m, threshold),
            _ => true,
        };
        let mut actions = Vec::new();
        let mut first_open = None;
        self.refaults
            .retain(|pid| scans.iter().any(|s| s.pid() == pid));
        for scan in scans {
            let back = self.refaults.observe(scan, round.number);
            if back > 0 {
                host.log(
                    LogLevel::Info,
                    &format!(
                        "slide task `{}` round {} pid {}: {back} page(s) swapped out last round \
                         are in memory again (read back, or not swapped): kept out of the cold \
                         pages for {} rounds",
                        self.name,
                        round.number,
                        scan.pid(),
                        refault::KEEP_ROUNDS
                    ),
                );
            }
            if !self.gate(scan, meminfo_open, host) {
                continue;
            }
            first_open.get_or_insert(scan.pid());
            let Some(runs) = self.cold(scan, round, host) else {
                continue;
            };
            let (runs, kept) = self.refaults.filter(scan.pid(), runs, round.number);
            self.refaults.swapped_out(scan.pid(), &runs);
            let cold: u64 = runs.iter().map(|r| u64::from(r.pages)).sum();
            host.log(
                LogLevel::Debug,
                &format!(
                    "slide task `{}` round {} pid {}: {} pages, {cold} cold in {} run(s), \
                     {kept} kept (read back)",
                    self.name,
                    round.number,
                    scan.pid(),
                    scan.len(),
                    runs.len()
                ),
            );
            if !runs.is_empty() {
                actions.push(Action::SwapOut {
                    pid: scan.pid(),
                    runs,
                });
            }
        }
        if let (Some(w), Some(m), Some(pid)) = (self.swapcache, &meminfo, first_open)
            && policy::swapcache_reclaim_due(m, w.high)
        {
            self.reclaim_swapcache(w, pid, host);
        }
        Ok(actions)
    }
}

impl SlideTask {
    /// Asks the host to set the watermarks and wake the swap cache reclaim through `pid`.
    fn reclaim_swapcache(&mut self, w: Wmarks, pid: u32, host: &dyn Host) {
        match host.reclaim_swapcache(&self.name, pid, w.low, w.high) {
            Ok(()) => self.swapcache_refused = false,
            Err(e) => {
                let level = if self.swapcache_refused {
                    LogLevel::Debug
                } else {
                    LogLevel::Warn
                };
                self.swapcache_refused = true;
                host.log(
                    level,
                    &format!(
                        "slide task `{}`: swap cache over swapcache_high_wmark={}, but reclaim \
                         was refused: {e}",
                        self.name, w.high
                    ),
                );
            }
        }
    }
}

// The plug-in export (an abi_stable root module, or the wasm component's exports). Left out
// when etmemd compiles this engine in (feature `builtin`): two engines' root-module symbols
// would clash in one binary, and a built-in engine needs no export.
#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Slide);

#[cfg(test)]
mod tests;
