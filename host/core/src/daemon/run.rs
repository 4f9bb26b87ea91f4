//! `project start` under the state lock: the choice of a project's access tracker, the
//! start of its tasks with the roll-back on the first failure, and what an engine call's
//! failure means for an action.
//!
//! It must not await or call engines: what was stopped goes to the caller's
//! [`Aftermath`] for `DaemonHandle::finish`.

use super::Daemon;
use super::del::Aftermath;
use crate::action::ActionError;
use crate::model::{EngineCell, Project, StartCtx, quarantine};
use crate::plugin::CallError;
use etmem_kernel::{Kernel, TrackerChoice, TrackerKind};
use etmem_proto::OptResult;
use std::sync::Arc;

/// The access tracker of a project, chosen once (the best the kernel offers).
pub(super) fn choose_tracker(
    kernel: &dyn Kernel,
    project: &str,
) -> Result<TrackerKind, ActionError> {
    match kernel.tracker(TrackerChoice::Auto) {
        Ok(t) => {
            let kind = t.kind();
            tracing::info!("project `{project}`: access tracker {kind}");
            Ok(kind)
        }
        Err(e) => Err(ActionError::new(
            OptResult::InterErr,
            format!("project `{project}` cannot start: {e}"),
        )),
    }
}

/// Starts every task of `p` (engines newest first, tasks newest first). On the first
/// failure every task started here is stopped again (B6 fixed) and the reason returned.
pub(super) fn start_project(
    p: &mut Project,
    d: &Daemon,
    after: &mut Aftermath,
) -> Result<(), ActionError> {
    if let Some((cell, why)) = p
        .engines
        .iter()
        .find_map(|e| e.cell.failure().map(|w| (e.cell.clone(), w)))
    {
        return Err(ActionError::new(
            OptResult::InterErr,
            format!(
                "project `{}` cannot start: {}",
                p.conf.name,
                cell.failed_text(&why)
            ),
        ));
    }
    let tracker = if p.has_tasks() && crate::model::needs_tracker(&p.conf) {
        Some(choose_tracker(d.kernel.as_ref(), &p.conf.name)?)
    } else {
        None
    };
    let conf = p.conf.clone();
    let weak = Arc::downgrade(&d.state);
    let mut failure = None;
    if p.has_tasks() {
        let ctx = StartCtx {
            kernel: &d.kernel,
            state: &weak,
            project: &conf,
            tracker,
        };
        'engines: for e in &mut p.engines {
            for idx in 0..e.tasks.len() {
                if let Err(err) = e.start_task(idx, &ctx) {
                    failure = Some(format!(
                        "project `{}`: task `{}` of engine `{}` cannot start: {err}",
                        conf.name, e.tasks[idx].info.name, e.name
                    ));
                    break 'engines;
                }
            }
        }
    }
    match failure {
        None => {
            p.started = true;
            p.tracker = tracker;
            Ok(())
        }
        Some(why) => {
            p.stop_all(&mut after.handles, &mut after.stopped);
            p.started = false;
            Err(ActionError::new(
                OptResult::InterErr,
                format!("{why}; the tasks started before it were stopped again"),
            ))
        }
    }
}

/// What an engine call's failure means for an action: an engine error is a value; a fault
/// quarantines the engine.
pub(super) fn call_failure(d: &Daemon, cell: &Arc<EngineCell>, err: CallError) -> String {
    match err {
        CallError::Engine(e) => e.to_string(),
        CallError::Fault(why) => {
            quarantine(&Arc::downgrade(&d.state), cell, &why);
            cell.failed_text(&cell.failure().unwrap_or(why))
        }
    }
}
