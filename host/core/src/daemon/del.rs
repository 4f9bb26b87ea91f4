//! `obj del` and everything that takes objects out of the daemon's state: the
//! [`DelTargets`] an `obj del` names, and the deletion of a task, an engine or a project
//! under the state lock, which stops what is started and collects in an [`Aftermath`]
//! what the engines must be told once the lock is released.
//!
//! It must not await, call engines or take locks: the caller holds the state lock and
//! hands the [`Aftermath`] to `DaemonHandle::finish` after releasing it.

use super::{eng_no_exist, pro_no_exist, task_no_exist};
use crate::action::ActionError;
use crate::model::{EngineObj, State, Stopped};
use tokio::task::JoinHandle;

/// The objects an `obj del` names, in the order the file gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelTargets {
    /// project names
    pub projects: Vec<String>,
    /// (project, engine)
    pub engines: Vec<(String, String)>,
    /// (project, engine, task)
    pub tasks: Vec<(String, String, String)>,
}

/// Engines to tell, once the lock is released: `stop-task` for stopped tasks, then
/// `drop-task` (and the host forgets the task) for deleted ones.
#[derive(Default)]
pub(super) struct Aftermath {
    pub(super) handles: Vec<JoinHandle<()>>,
    pub(super) stopped: Vec<Stopped>,
    pub(super) dropped: Vec<Stopped>,
}

/// Deletes task `task` of `engine` in `project`, stopping it first.
pub(super) fn delete_task(
    state: &mut State,
    project: &str,
    engine: &str,
    task: &str,
    after: &mut Aftermath,
) -> Result<(), ActionError> {
    let p = state
        .project_mut(project)
        .ok_or_else(|| pro_no_exist(project))?;
    let e = p
        .engine_mut(engine)
        .ok_or_else(|| eng_no_exist(project, engine))?;
    let idx = e
        .task_index(task)
        .ok_or_else(|| task_no_exist(project, engine, task))?;
    if let Some(s) = e.stop_task(idx, &mut after.handles) {
        after.stopped.push(s);
    }
    e.tasks.remove(idx);
    after.dropped.push((e.cell.clone(), task.to_string()));
    Ok(())
}

/// Deletes every task of `e` and stops its worker.
fn clear_engine(e: &mut EngineObj, after: &mut Aftermath) {
    for idx in 0..e.tasks.len() {
        if let Some(s) = e.stop_task(idx, &mut after.handles) {
            after.stopped.push(s);
        }
    }
    e.stop_all(&mut after.handles);
    for t in e.tasks.drain(..) {
        after.dropped.push((e.cell.clone(), t.info.name.clone()));
    }
}

/// Deletes `engine` of `project` with its tasks, stopping them first.
pub(super) fn delete_engine(
    state: &mut State,
    project: &str,
    engine: &str,
    after: &mut Aftermath,
) -> Result<(), ActionError> {
    let p = state
        .project_mut(project)
        .ok_or_else(|| pro_no_exist(project))?;
    let idx = p
        .engines
        .iter()
        .position(|e| e.name == engine)
        .ok_or_else(|| eng_no_exist(project, engine))?;
    let mut e = p.engines.remove(idx);
    clear_engine(&mut e, after);
    Ok(())
}

/// Deletes `project` with everything in it, stopping it first.
pub(super) fn delete_project(
    state: &mut State,
    project: &str,
    after: &mut Aftermath,
) -> Result<(), ActionError> {
    let idx = state
        .projects
        .iter()
        .position(|p| p.conf.name == project)
        .ok_or_else(|| pro_no_exist(project))?;
    let mut p = state.projects.remove(idx);
    for e in &mut p.engines {
        clear_engine(e, after);
    }
    Ok(())
}
