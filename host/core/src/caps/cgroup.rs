//! The cgroup capabilities of the psi engine (`cgroup-glob`, `cgroup-memory`,
//! `cgroup-reclaim`): a task may name only the cgroups its `cg_dir` matched at its latest
//! glob, and one reclaim asks at most the task's `reclaim_max_bytes`, in whole pages, never
//! more than the cgroup uses; a dry run writes nothing.

use super::EngineHost;
use crate::plugin::SdkEngineError;
use etmem_sdk::{Cgroup as SdkCgroup, CgroupMemory as SdkCgroupMemory, CgroupReclaimed};

/// What the host knows of a task's cgroups.
#[derive(Debug, Default)]
pub(super) struct CgroupView {
    /// `cg_dir`, matched inside the cgroup mount
    pattern: String,
    /// `reclaim_max_bytes`: the most one `cgroup-reclaim` may ask for
    max_bytes: u64,
    /// the paths the latest `cgroup-glob` answered: the only ones the task may name
    matched: Vec<String>,
}

/// Reclaims are asked in whole base pages.
const RECLAIM_GRANULE: u64 = 4096;

impl EngineHost {
    /// The task's cgroups are those `pattern` (its `cg_dir`) matches; one reclaim asks for
    /// at most `max_bytes`.
    pub(crate) fn set_task_cgroups(&self, task: &str, pattern: &str, max_bytes: u64) {
        self.lock().entry(task.to_string()).or_default().cgroups = Some(CgroupView {
            pattern: pattern.to_string(),
            max_bytes,
            matched: Vec::new(),
        });
    }

    /// Runs `f` on the task's cgroup view; an error names a task that is not there or has
    /// no `cg_dir`.
    fn with_cgroups<T>(
        &self,
        task: &str,
        f: impl FnOnce(&mut CgroupView) -> T,
    ) -> Result<T, SdkEngineError> {
        let mut t = self.lock();
        let v = t
            .get_mut(task)
            .ok_or_else(|| SdkEngineError::Host(format!("no task `{task}`")))?;
        let cg = v.cgroups.as_mut().ok_or_else(|| {
            SdkEngineError::Host(format!("task `{task}` has no cgroups (no cg_dir)"))
        })?;
        Ok(f(cg))
    }

    /// `cgroup` if it is one the task's latest glob matched: the most one reclaim may ask.
    fn task_cgroup(&self, task: &str, cgroup: &str) -> Result<u64, SdkEngineError> {
        self.with_cgroups(task, |cg| {
            if cg.matched.iter().any(|p| p == cgroup) {
                Ok(cg.max_bytes)
            } else {
                Err(SdkEngineError::Host(format!(
                    "cgroup `{cgroup}` is not one task `{task}`'s cg_dir `{}` matched",
                    cg.pattern
                )))
            }
        })?
    }

    /// Matches the task's `cg_dir` inside the cgroup mount; what it answers is what the
    /// task may name in the other cgroup calls until the next glob.
    pub(super) fn glob_cgroups(&self, task: &str) -> Result<Vec<SdkCgroup>, SdkEngineError> {
        let pattern = self.with_cgroups(task, |c| c.pattern.clone())?;
        let found = self
            .kernel
            .cgroup_glob(&pattern)
            .map_err(|e| SdkEngineError::Host(format!("task `{task}`: cg_dir `{pattern}`: {e}")))?;
        let matched = found.iter().map(|c| c.path.clone()).collect();
        // a task deleted meanwhile has nothing to remember it in
        let _ = self.with_cgroups(task, |c| c.matched = matched);
        Ok(found
            .into_iter()
            .map(|c| SdkCgroup {
                path: c.path,
                id: c.id,
            })
            .collect())
    }

    pub(super) fn cgroup_figures(
        &self,
        task: &str,
        cgroup: &str,
    ) -> Result<SdkCgroupMemory, SdkEngineError> {
        self.task_cgroup(task, cgroup)?;
        let m = self
            .kernel
            .cgroup_memory(cgroup)
            .map_err(|e| SdkEngineError::Host(format!("cgroup `{cgroup}`: {e}")))?;
        Ok(SdkCgroupMemory {
            v2: m.v2,
            usage: m.usage,
            limit: m.limit,
            min: m.min,
            low: m.low,
            file: m.file,
            anon: m.anon,
            swap_limit: m.swap_limit,
            swap_usage: m.swap_usage,
            pressure_avg10: m.pressure_avg10,
            pressure_avg60: m.pressure_avg60,
        })
    }

    /// Checks the cgroup is the task's, bounds `bytes` (the task's `reclaim_max_bytes`, the
    /// cgroup's usage, whole pages), then writes `memory.reclaim` — not in a dry run.
    pub(super) fn reclaim_cgroup(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, SdkEngineError> {
        let who = self.who(task);
        let refused = |e: String| {
            tracing::warn!("{who}: cgroup-reclaim `{cgroup}`: refused: {e}");
            SdkEngineError::Host(e)
        };
        let max = self
            .task_cgroup(task, cgroup)
            .map_err(|e| refused(e.to_string()))?;
        let before = self
            .kernel
            .cgroup_memory(cgroup)
            .map_err(|e| refused(format!("cgroup `{cgroup}`: {e}")))?;
        let bytes = bytes.min(max).min(before.usage) / RECLAIM_GRANULE * RECLAIM_GRANULE;
        if bytes == 0 {
            return Ok(CgroupReclaimed {
                complete: true,
                ..CgroupReclaimed::default()
            });
        }
        if self.dry_run {
            tracing::info!(
                "{who}: dry run: would reclaim {bytes} bytes from cgroup `{cgroup}` (usage {})",
                before.usage
            );
            return Ok(CgroupReclaimed {
                requested: bytes,
                reclaimed: 0,
                complete: false,
                dry_run: true,
            });
        }
        let complete = self
            .kernel
            .cgroup_reclaim(cgroup, bytes)
            .map_err(|e| refused(format!("cgroup `{cgroup}`: {e}")))?;
        let after = self.kernel.cgroup_memory(cgroup).map(|m| m.usage);
        let reclaimed = after.map_or(0, |a| before.usage.saturating_sub(a));
        tracing::info!(
            "{who}: reclaimed from cgroup `{cgroup}`: asked {bytes} bytes, usage {} -> {}{}",
            before.usage,
            before.usage - reclaimed,
            if complete {
                ""
            } else {
                " (the kernel reclaimed less than asked)"
            }
        );
        Ok(CgroupReclaimed {
            requested: bytes,
            reclaimed,
            complete,
            dry_run: false,
        })
    }
}
