//! The `psi` engine of etmem (spec §5.7): proactive reclaim of memory cgroups while their
//! memory pressure (PSI) stays low.
//!
//! A task names its cgroups with `cg_dir`, a glob pattern the host matches inside its
//! cgroup mount (cgroup v1 as openEuler has it, or the unified v2 hierarchy: the host
//! detects which). Every round (the project's `interval`) [`Task::plan`], for each cgroup
//! the pattern matches now:
//! 1. reads its memory figures and pressure (`cgroup-memory`);
//! 2. pressure `max(avg10, avg60)` at or over the task's `pressure`: lowers the cgroup's
//!    adaptive rate ([`formula::Rate::pressure_skip`]) and leaves it alone this round;
//! 3. else computes the amount ([`formula::amount`], C's formula with B1 and B2 fixed) at
//!    the cgroup's own rate and asks the host to reclaim it (`cgroup-reclaim`); a reclaim
//!    the kernel did in full counts towards raising the rate.
//!
//! A cgroup no longer matched is forgotten (and its rate with it); one that cannot be read
//! is logged and skipped, the others go on (C drops the whole task's round: B33). The
//! engine returns no page actions: the host does the reclaim, checks the cgroup belongs to
//! the task, bounds the bytes, and writes nothing in a dry run.
//!
//! Written only against `etmem-sdk`: the same source is the built-in engine ([`Psi`]), a
//! native `.so` and a wasm component. It must not touch the machine.

pub mod formula;
pub mod testdata;

use etmem_sdk::{
    Action, CgroupMemory, Engine, EngineError, Host, LogLevel, Params, Round, ScanResult, Task,
    TaskInfo,
};
use formula::{Keys, Rate};
use std::collections::BTreeMap;

/// The engine: psi has no engine keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Psi;

/// The task keys (defaults per spec §4.7).
#[derive(Debug, Clone, PartialEq)]
pub struct PsiKeys {
    /// `pressure`: the PSI (percent) at or over which a cgroup is left alone
    pub pressure: f64,
    /// `reclaim_rate`: every cgroup's starting rate
    pub reclaim_rate: f64,
    /// `reclaim_rate_max`
    pub reclaim_rate_max: f64,
    /// `reclaim_rate_min`
    pub reclaim_rate_min: f64,
    /// `limit_min_ratio`, `limit_min_bytes`, `reclaim_max_bytes`
    pub formula: Keys,
    /// `cg_dir`, as configured (the host matches it)
    pub cg_dir: String,
}

/// The keys a psi task reads.
pub const TASK_KEYS: &[&str] = &[
    "pressure",
    "reclaim_rate",
    "reclaim_rate_max",
    "reclaim_rate_min",
    "limit_min_ratio",
    "limit_min_bytes",
    "reclaim_max_bytes",
    "cg_dir",
];

fn positive(params: &Params, key: &str, default: f64) -> Result<f64, EngineError> {
    match params.get::<f64>(key)? {
        None => Ok(default),
        Some(v) if v > 0.0 => Ok(v),
        Some(v) => Err(EngineError::invalid_param(
            key,
            v.to_string(),
            "a decimal number > 0",
        )),
    }
}

impl PsiKeys {
    /// Reads the keys; `cg_dir` is required, the others have C's defaults.
    pub fn from_params(params: &Params) -> Result<PsiKeys, EngineError> {
        let cg_dir: String = params.require("cg_dir")?;
        Ok(PsiKeys {
            pressure: positive(params, "pressure", 0.1)?,
            reclaim_rate: positive(params, "reclaim_rate", 0.05)?,
            reclaim_rate_max: positive(params, "reclaim_rate_max", 0.5)?,
            reclaim_rate_min: positive(params, "reclaim_rate_min", 0.01)?,
            formula: Keys {
                limit_min_ratio: positive(params, "limit_min_ratio", 0.1)?,
                limit_min_bytes: params.get_or::<u64>("limit_min_bytes", 0)?,
                reclaim_max_bytes: params.get_or::<u64>("reclaim_max_bytes", 1 << 30)?,
            },
            cg_dir,
        })
    }
}

/// What the engine keeps of one cgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct CgState {
    /// the inode the cgroup had when first seen (another one is another cgroup)
    pub id: u64,
    /// its adaptive rate
    pub rate: Rate,
    /// bytes reclaimed so far (as the host measured)
    pub reclaimed: u64,
    /// rounds it was skipped for pressure
    pub pressure_skips: u64,
}

/// One task.
#[derive(Debug, Clone, PartialEq)]
pub struct PsiTask {
    name: String,
    keys: PsiKeys,
    cgroups: BTreeMap<String, CgState>,
}

impl PsiTask {
    /// The state of every cgroup seen in the latest round, by path.
    pub fn cgroups(&self) -> &BTreeMap<String, CgState> {
        &self.cgroups
    }

    fn report(&self) -> String {
        let mut out = format!(
            "task {} cg_dir {} pressure {}\n",
            self.name, self.keys.cg_dir, self.keys.pressure
        );
        for (path, c) in &self.cgroups {
            out.push_str(&format!(
                "cgroup {path} rate {:.2} reclaimed {} pressure_skips {}\n",
                c.rate.value, c.reclaimed, c.pressure_skips
            ));
        }
        out
    }

    /// One cgroup's round (module docs, steps 2 and 3).
    fn reclaim_one(
        &mut self,
        path: &str,
        m: &CgroupMemory,
        swap_free: Option<u64>,
        host: &dyn Host,
    ) {
        let k = &self.keys;
        let Some(st) = self.cgroups.get_mut(path) else {
            return;
        };
        if formula::under_pressure(m, k.pressure) {
            st.rate.pressure_skip();
            st.pressure_skips += 1;
            host.log(
                LogLevel::Info,
                &format!(
                    "task `{}` cgroup `{path}`: pressure avg10 {:.2} avg60 {:.2} is at or over \
                     {}: left alone, rate now {:.2}",
                    self.name, m.pressure_avg10, m.pressure_avg60, k.pressure, st.rate.value
                ),
            );
            return;
        }
        let bytes = formula::amount(m, &k.formula, st.rate.value, swap_free);
        if bytes == 0 {
            host.log(
                LogLevel::Debug,
                &format!(
                    "task `{}` cgroup `{path}`: usage {} at its floor {}: nothing to reclaim",
                    self.name,
                    m.usage,
                    formula::floor(m, &k.formula, swap_free)
                ),
            );
            return;
        }
        match host.cgroup_reclaim(&self.name, path, bytes) {
            Ok(r) => {
                st.reclaimed += r.reclaimed;
                if r.complete || r.dry_run {
                    st.rate.success();
                }
                host.log(
                    LogLevel::Info,
                    &format!(
                        "task `{}` cgroup `{path}`: {}reclaim {} of usage {} (floor {}, rate \
                         {:.2}, avg10 {:.2}): usage fell {}{}",
                        self.name,
                        if r.dry_run { "dry run: would " } else { "" },
                        r.requested,
                        m.usage,
                        formula::floor(m, &k.formula, swap_free),
                        st.rate.value,
                        m.pressure_avg10,
                        r.reclaimed,
                        if r.complete || r.dry_run {
                            ""
                        } else {
                            " (the kernel reclaimed less than asked)"
                        }
                    ),
                );
            }
            Err(e) => host.log(
                LogLevel::Warn,
                &format!("task `{}` cgroup `{path}`: reclaim refused: {e}", self.name),
            ),
        }
    }
}

impl Engine for Psi {
    type Task = PsiTask;

    /// psi has no engine keys; the project keys the host adds are ignored.
    fn configure(_params: &Params, _host: &dyn Host) -> Result<Psi, EngineError> {
        Ok(Psi)
    }

    /// Reads the psi keys (unknown keys are refused).
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<PsiTask, EngineError> {
        params.deny_unknown(TASK_KEYS)?;
        Ok(PsiTask {
            name: task.name.clone(),
            keys: PsiKeys::from_params(params)?,
            cgroups: BTreeMap::new(),
        })
    }

    /// `showcg -t <task>`: each cgroup's rate, bytes reclaimed and pressure skips.
    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut PsiTask)>,
        _host: &dyn Host,
    ) -> Result<String, EngineError> {
        match (cmd, task) {
            ("showcg", Some((_, t))) => Ok(t.report()),
            ("showcg", None) => Err(EngineError::TaskRequired(cmd.into())),
            _ => Err(EngineError::UnknownCommand(cmd.into())),
        }
    }
}

impl Task for PsiTask {
    fn plan(
        &mut self,
        _round: &Round,
        _scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let matched = host.cgroup_glob(&self.name)?;
        // forget what is gone, or was deleted and made again under the same path
        self.cgroups
            .retain(|p, s| matched.iter().any(|c| &c.path == p && c.id == s.id));
        let k = &self.keys;
        for c in &matched {
            self.cgroups
                .entry(c.path.clone())
                .or_insert_with(|| CgState {
                    id: c.id,
                    rate: Rate::new(k.reclaim_rate, k.reclaim_rate_min, k.reclaim_rate_max),
                    reclaimed: 0,
                    pressure_skips: 0,
                });
        }
        // anonymous pages need swap to go to: the machine's free swap bounds them
        let mi = host.system_facts().meminfo;
        let swap_free = (mi.swap_total_kb > 0 || mi.mem_total_kb > 0)
            .then_some(mi.swap_free_kb.saturating_mul(1024));
        for c in &matched {
            match host.cgroup_memory(&self.name, &c.path) {
                Ok(m) => self.reclaim_one(&c.path, &m, swap_free, host),
                Err(e) => host.log(
                    LogLevel::Warn,
                    &format!(
                        "task `{}` cgroup `{}`: skipped this round: {e}",
                        self.name, c.path
                    ),
                ),
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Psi);

#[cfg(test)]
mod tests;
