//! The `slide` engine of etmem (spec §5.2): swap out the cold pages of a task's processes.
//!
//! Each round the host runs `loop` scan passes and calls [`Task::plan`] with one
//! [`ScanResult`] per pid (counts summed over the passes). For every pid this engine:
//! 1. applies the `sysmem_threshold` gate (`MemFree*100/MemTotal` below the threshold),
//!    then the per-process gate (`swap_threshold`, or the VmSwap share);
//! 2. classifies pages: `count >= T` is hot, the rest cold; with `dram_percent`, only as
//!    many cold pages as the budget needs, lowest counts first;
//! 3. returns one [`Action::SwapOut`] with the cold pages in address order.
//!
//! The swapcache watermarks (`swapcache_high_wmark`/`swapcache_low_wmark`) need the
//! openEuler `etmem_swap` ioctls, which the engine interface does not offer: the engine
//! logs once that they are not supported and goes on without them.
//!
//! Written only against `etmem-sdk`: the same source is the built-in engine
//! ([`Slide`]), a native `.so` and a wasm component. It must not touch the machine.

pub mod policy;
pub mod testdata;

use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, Params, Round, ScanResult, Task, TaskInfo,
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
}

impl Engine for Slide {
    type Task = SlideTask;

    /// Reads the project keys the host adds (`loop`, `sysmem_threshold`, the swapcache
    /// pair); slide has no engine key of its own. Unknown keys are ignored: the host's
    /// config layer already decided about them.
    fn configure(params: &Params, host: &dyn Host) -> Result<Slide, EngineError> {
        let loops = params
            .get_in::<u32>("loop", 1..=MAX_LOOP)?
            .unwrap_or(DEFAULT_LOOP);
        let sysmem_threshold = params.get_in::<i64>("sysmem_threshold", -1..=100)?;
        let sysmem_threshold = sysmem_threshold.and_then(|v| u64::try_from(v).ok());
        let high = params.get_in::<i64>("swapcache_high_wmark", -1..=100)?;
        let low = params.get_in::<i64>("swapcache_low_wmark", -1..=100)?;
        if let (Some(h), Some(l)) = (high, low)
            && h > 0
            && l > 0
        {
            host.log(
                LogLevel::Warn,
                &format!(
                    "slide: swapcache_high_wmark={h} and swapcache_low_wmark={l} are not \
                     supported on this host: swapcache reclaim needs the openEuler \
                     etmem_swap ioctls (SET_SWAPCACHE_WMARK, RECLAIM_SWAPCACHE_ON), which the \
                     engine interface does not offer; the watermarks are ignored"
                ),
            );
        }
        Ok(Slide {
            loops,
            sysmem_threshold,
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
    fn cold(&self, scan: &ScanResult, round: &Round, host: &dyn Host) -> Option<Vec<u64>> {
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
        let meminfo_open = match self.sysmem_threshold {
            Some(threshold) => policy::sysmem_gate_open(&host.system_facts().meminfo, threshold),
            None => true,
        };
        let mut actions = Vec::new();
        for scan in scans {
            if !self.gate(scan, meminfo_open, host) {
                continue;
            }
            let Some(addrs) = self.cold(scan, round, host) else {
                continue;
            };
            host.log(
                LogLevel::Debug,
                &format!(
                    "slide task `{}` round {} pid {}: {} pages, {} cold",
                    self.name,
                    round.number,
                    scan.pid(),
                    scan.len(),
                    addrs.len()
                ),
            );
            if !addrs.is_empty() {
                actions.push(Action::SwapOut {
                    pid: scan.pid(),
                    addrs,
                });
            }
        }
        Ok(actions)
    }
}

// The plug-in export (an abi_stable root module, or the wasm component's exports). Left out
// when etmemd compiles this engine in (feature `builtin`): two engines' root-module symbols
// would clash in one binary, and a built-in engine needs no export.
#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Slide);

#[cfg(test)]
mod tests;
