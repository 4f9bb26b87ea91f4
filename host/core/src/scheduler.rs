//! The round loops (tokio tasks) of started tasks and engines.
//!
//! A slide-like task (per-task scheduling) runs its first round `interval` after its start,
//! then `interval` after the END of each round (spec §5.2, B19 end-to-start). A round
//! resolves the pids (main pid plus direct children), runs `loop` scan passes each followed
//! by `sleep`, then calls the engine's decision step. A cslide-like engine (per-engine
//! scheduling) has one worker that does the same for all its working tasks on their fixed
//! pids, then waits `interval` (spec §5.3).
//!
//! Stopping is aborting the tokio task: every wait is an await point, so a stop never waits
//! for a sleep to end. This module holds no object state and takes no lock of the daemon.

use crate::engine::{BuiltinEngine, RoundContext, RoundTarget, ScanParams, TaskInfo};
use etmem_config::TaskTarget;
use etmem_kernel::{Kernel, ProcessTarget};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

/// The started tasks of a per-engine worker, shared between the daemon (which changes it
/// on start/stop) and the worker (which reads it at the start of every round).
pub(crate) type WorkingSet = Arc<Mutex<Vec<Arc<TaskInfo>>>>;

/// What a target means to the kernel layer.
pub(crate) fn process_target(t: &TaskTarget) -> ProcessTarget {
    match t {
        TaskTarget::Pid(v) => ProcessTarget::Pid(v.clone()),
        TaskTarget::Name(v) => ProcessTarget::Comm(v.clone()),
    }
}

/// The scan passes of one round: `loop` passes, each followed by `sleep`.
///
/// The seam where the scan capability will gather page accesses for `targets`; today a
/// pass reads nothing.
async fn scan_passes(project: &str, engine: &str, scan: &ScanParams, targets: &[RoundTarget]) {
    for pass in 1..=scan.loops {
        tracing::debug!(
            "project `{project}` engine `{engine}`: scan pass {pass}/{} over {} task(s): \
             no scan capability yet",
            scan.loops,
            targets.len()
        );
        sleep(scan.sleep).await;
    }
}

/// Spawns the round loop of one started per-task task.
pub(crate) fn spawn_task_rounds(
    kernel: Arc<dyn Kernel>,
    engine: Arc<dyn BuiltinEngine>,
    scan: ScanParams,
    task: Arc<TaskInfo>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let target = process_target(&task.target);
        let mut round = 0u64;
        loop {
            sleep(scan.interval).await;
            round += 1;
            let started_at = Instant::now();
            let pids = match kernel.resolve(&target, true) {
                Ok(pids) => pids,
                Err(e) => {
                    tracing::info!(
                        "project `{}` task `{}`: round {round} skipped: {e}",
                        task.project,
                        task.name
                    );
                    continue;
                }
            };
            let targets = vec![RoundTarget {
                task: task.clone(),
                pids,
            }];
            scan_passes(&task.project, &task.engine, &scan, &targets).await;
            let ctx = RoundContext {
                project: task.project.clone(),
                engine: task.engine.clone(),
                round,
                started_at,
                scan,
                targets,
            };
            if let Err(e) = engine.round(&ctx) {
                tracing::warn!(
                    "project `{}` task `{}`: round {round} failed: {e}",
                    task.project,
                    task.name
                );
            }
        }
    })
}

/// Spawns the worker of a per-engine engine; it runs until aborted (when its last task
/// stops or the engine is deleted).
pub(crate) fn spawn_engine_worker(
    engine: Arc<dyn BuiltinEngine>,
    project: String,
    engine_name: String,
    scan: ScanParams,
    working: WorkingSet,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut round = 0u64;
        loop {
            sleep(scan.interval).await;
            let targets: Vec<RoundTarget> = working
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .map(|t| RoundTarget {
                    task: t.clone(),
                    pids: t.fixed_pid.into_iter().collect(),
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            round += 1;
            let started_at = Instant::now();
            scan_passes(&project, &engine_name, &scan, &targets).await;
            let ctx = RoundContext {
                project: project.clone(),
                engine: engine_name.clone(),
                round,
                started_at,
                scan,
                targets,
            };
            if let Err(e) = engine.round(&ctx) {
                tracing::warn!(
                    "project `{project}` engine `{engine_name}`: round {round} failed: {e}"
                );
            }
        }
    })
}
