//! The `damon` engine of etmem (spec §5.5): the kernel's DAMON applies one DAMOS scheme
//! (an access pattern and an action, e.g. `pageout`) to every process of the project's
//! tasks.
//!
//! The engine reads the `[engine]` keys (`min_size`, `max_size`, `min_acc`, `max_acc`,
//! `min_age`, `max_age`, `action`) and the region project's monitoring attributes the host
//! adds (`sample_interval`, `aggr_interval`, `update_interval`, `min_nr_regions`,
//! `max_nr_regions`). A region project has no scan: each round the host hands [`Task::plan`]
//! the task's pids as scan results without pages, and the engine asks the host, once per
//! pid, to apply the scheme to it (`damon-apply-scheme`); a pid that left the task is
//! removed (`damon-remove-scheme`), and every pid at `stop-task`. The host checks the values
//! and the action name, does the DAMON writes on its one kdamond, and removes what is left
//! when the task stops whatever the engine did.
//!
//! C takes only the first engine's pids on DAMON sysfs, the first pid at that; here every
//! task and every pid gets its own DAMON target with the scheme. No engine command (C's
//! damon engine has none). Written only against `etmem-sdk`; it must not touch the machine.

use etmem_sdk::{
    Action, DamonAttrs, DamonScheme, Engine, EngineError, Host, LogLevel, Params, Pid, Round,
    ScanResult, Task, TaskInfo,
};
use std::collections::BTreeSet;

/// The engine keys (spec §4.6), all required.
pub const ENGINE_KEYS: &[&str] = &[
    "min_size", "max_size", "min_acc", "max_acc", "min_age", "max_age", "action",
];

/// The actions C accepts, in its numbering.
pub const ACTIONS: &[&str] = &[
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "stat",
];

/// The engine: the scheme and the monitoring attributes of its project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damon {
    attrs: DamonAttrs,
    scheme: DamonScheme,
}

/// One task: the pids its scheme is applied to.
#[derive(Debug)]
pub struct DamonTask {
    name: String,
    attrs: DamonAttrs,
    scheme: DamonScheme,
    applied: BTreeSet<Pid>,
}

impl Engine for Damon {
    type Task = DamonTask;

    /// Reads the seven engine keys and the five region keys; other keys are refused.
    fn configure(params: &Params, _host: &dyn Host) -> Result<Damon, EngineError> {
        params.deny_unknown(ENGINE_KEYS)?;
        let region = |key: &str| -> Result<u64, EngineError> {
            params.get::<u64>(key)?.ok_or_else(|| {
                EngineError::failed(format!(
                    "no `{key}`: the damon engine needs a project with scan_type=region"
                ))
            })
        };
        let attrs = DamonAttrs {
            sample_us: region("sample_interval")?,
            aggr_us: region("aggr_interval")?,
            update_us: region("update_interval")?,
            min_nr_regions: region("min_nr_regions")?,
            max_nr_regions: region("max_nr_regions")?,
        };
        let action: String = params.require("action")?;
        if !ACTIONS.contains(&action.as_str()) {
            return Err(EngineError::invalid_param(
                "action",
                &action,
                "one of willneed, cold, pageout, hugepage, nohugepage, stat",
            ));
        }
        let scheme = DamonScheme {
            min_size: params.require("min_size")?,
            max_size: params.require("max_size")?,
            min_acc: params.require("min_acc")?,
            max_acc: params.require("max_acc")?,
            min_age: params.require("min_age")?,
            max_age: params.require("max_age")?,
            action,
        };
        Ok(Damon { attrs, scheme })
    }

    /// A damon task has no keys of its own.
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<DamonTask, EngineError> {
        params.deny_unknown(&[])?;
        Ok(DamonTask {
            name: task.name.clone(),
            attrs: self.attrs,
            scheme: self.scheme.clone(),
            applied: BTreeSet::new(),
        })
    }
}

impl Task for DamonTask {
    /// Applies the scheme to each pid of `scans` not yet applied, removes it from the
    /// pids that left. Returns no action: DAMON acts. The first refusal is the error.
    fn plan(
        &mut self,
        _round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let now: BTreeSet<Pid> = scans.iter().map(ScanResult::pid).collect();
        for pid in self.applied.difference(&now).copied().collect::<Vec<_>>() {
            self.applied.remove(&pid);
            if let Err(e) = host.damon_remove_scheme(&self.name, pid) {
                host.log(
                    LogLevel::Debug,
                    &format!("damon task `{}`: pid {pid} left: {e}", self.name),
                );
            }
        }
        let mut first_err = None;
        for pid in now {
            if self.applied.contains(&pid) {
                continue;
            }
            match host.damon_apply_scheme(&self.name, pid, &self.attrs, &self.scheme) {
                Ok(()) => {
                    self.applied.insert(pid);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(Vec::new()),
        }
    }

    /// Removes the scheme from every pid (the host would anyway).
    fn stop_task(&mut self, host: &dyn Host) {
        for pid in std::mem::take(&mut self.applied) {
            let _ = host.damon_remove_scheme(&self.name, pid);
        }
    }
}

// The plug-in export; left out when etmemd compiles this engine in (feature `builtin`).
#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Damon);

#[cfg(test)]
mod tests;
