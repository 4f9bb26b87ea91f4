//! The glue shared by both export forms: one engine plus its tasks by name, each call
//! guarded against panics. Used by [`export_engine!`](crate::export_engine) and by
//! [`testing::Harness`](crate::testing::Harness); engine authors do not call it directly.
//!
//! It must not know which boundary (native or wasm) it serves.

use crate::{Action, Engine, EngineError, Host, Params, Round, ScanResult, Task, TaskInfo};
use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An engine and its tasks, as one export instance holds them.
pub struct Runner<E: Engine> {
    engine: E,
    tasks: BTreeMap<String, (TaskInfo, E::Task)>,
}

impl<E: Engine> std::fmt::Debug for Runner<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<E: Engine> Runner<E> {
    /// `configure`.
    pub fn configure(params: &Params, host: &dyn Host) -> Result<Runner<E>, EngineError> {
        Ok(Runner {
            engine: E::configure(params, host)?,
            tasks: BTreeMap::new(),
        })
    }

    /// `new-task`; a second task of the same name is refused.
    pub fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        host: &dyn Host,
    ) -> Result<(), EngineError> {
        if self.tasks.contains_key(&task.name) {
            return Err(EngineError::failed(format!(
                "task `{}` already exists",
                task.name
            )));
        }
        let state = self.engine.new_task(task, params, host)?;
        self.tasks.insert(task.name.clone(), (task.clone(), state));
        Ok(())
    }

    /// `plan`.
    pub fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let (_, state) = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| EngineError::UnknownTask(task.to_string()))?;
        state.plan(round, scans, host)
    }

    /// `stop-task`; an unknown task is an error.
    pub fn stop_task(&mut self, task: &str, host: &dyn Host) -> Result<(), EngineError> {
        let (_, state) = self
            .tasks
            .get_mut(task)
            .ok_or_else(|| EngineError::UnknownTask(task.to_string()))?;
        state.stop_task(host);
        Ok(())
    }

    /// `drop-task`; an unknown task is an error.
    pub fn drop_task(&mut self, task: &str) -> Result<(), EngineError> {
        self.tasks
            .remove(task)
            .map(drop)
            .ok_or_else(|| EngineError::UnknownTask(task.to_string()))
    }

    /// `command`.
    pub fn command(
        &mut self,
        cmd: &str,
        task: Option<&str>,
        host: &dyn Host,
    ) -> Result<String, EngineError> {
        let task = match task {
            Some(name) => {
                let (info, state) = self
                    .tasks
                    .get_mut(name)
                    .ok_or_else(|| EngineError::UnknownTask(name.to_string()))?;
                Some((&*info, state))
            }
            None => None,
        };
        self.engine.command(cmd, task, host)
    }

    /// The names of the tasks, sorted.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }
}

/// Runs `f`, turning a panic into [`EngineError::Panicked`] with the panic's message.
pub fn guard<T>(f: impl FnOnce() -> Result<T, EngineError>) -> Result<T, EngineError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(EngineError::Panicked(panic_message(payload.as_ref()))),
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-text payload".to_string()
    }
}
