//! The object model: projects, their engines, their tasks, newest first (C inserts at the
//! head of each list, and `project show` prints in that order), with the start and stop of
//! tasks.
//!
//! Every function here is synchronous and runs under the daemon's state lock; stopping only
//! aborts round loops and hands their join handles back so the caller can await them after
//! releasing the lock. Nothing here reads config files or answers actions.

use crate::engine::{BuiltinEngine, EngineError, ScanParams, Scheduling, TaskInfo};
use crate::scheduler::{WorkingSet, spawn_engine_worker, spawn_task_rounds};
use etmem_config::{EngineConf, ProjectConf, ScanConf};
use etmem_kernel::Kernel;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Every object of the daemon.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// newest first
    pub projects: Vec<Project>,
}

/// A project.
#[derive(Debug)]
pub(crate) struct Project {
    pub conf: ProjectConf,
    pub started: bool,
    /// newest first
    pub engines: Vec<EngineObj>,
}

/// An engine object of a project.
#[derive(Debug)]
pub(crate) struct EngineObj {
    /// type name, or `eng_name`
    pub name: String,
    pub conf: EngineConf,
    pub scheduling: Scheduling,
    pub imp: Arc<dyn BuiltinEngine>,
    /// newest first
    pub tasks: Vec<TaskObj>,
    /// per-engine scheduling: the started tasks the worker scans
    pub working: WorkingSet,
    /// per-engine scheduling: the worker, while any task is started
    pub worker: Option<JoinHandle<()>>,
}

/// A task object of an engine.
#[derive(Debug)]
pub(crate) struct TaskObj {
    pub info: Arc<TaskInfo>,
    pub started: bool,
    /// per-task scheduling: the round loop while started
    pub runner: Option<JoinHandle<()>>,
}

/// The page-scan timing of a project, when it has one.
pub(crate) fn scan_params(scan: &ScanConf) -> Option<ScanParams> {
    match *scan {
        ScanConf::Page {
            loops,
            interval,
            sleep,
        } => Some(ScanParams {
            loops,
            interval: Duration::from_secs(interval.into()),
            sleep: Duration::from_secs(sleep.into()),
        }),
        ScanConf::Region { .. } | ScanConf::Psi { .. } => None,
    }
}

impl State {
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.conf.name == name)
    }

    pub fn project_mut(&mut self, name: &str) -> Option<&mut Project> {
        self.projects.iter_mut().find(|p| p.conf.name == name)
    }
}

impl Project {
    pub fn engine(&self, name: &str) -> Option<&EngineObj> {
        self.engines.iter().find(|e| e.name == name)
    }

    pub fn engine_mut(&mut self, name: &str) -> Option<&mut EngineObj> {
        self.engines.iter_mut().find(|e| e.name == name)
    }

    /// Stops every started task of the project (it stays `started` as it was: the caller
    /// decides).
    pub fn stop_all(&mut self, handles: &mut Vec<JoinHandle<()>>) {
        for e in &mut self.engines {
            e.stop_all(handles);
        }
    }
}

impl EngineObj {
    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.info.name == name)
    }

    /// The started tasks, newest first.
    pub fn working(&self) -> Vec<Arc<TaskInfo>> {
        self.tasks
            .iter()
            .filter(|t| t.started)
            .map(|t| t.info.clone())
            .collect()
    }

    /// Starts task `idx`: the engine's hook, then its round loop (per task) or a place in
    /// the engine worker's set (per engine). Starting a started task does nothing.
    pub fn start_task(
        &mut self,
        idx: usize,
        kernel: &Arc<dyn Kernel>,
        project: &ProjectConf,
    ) -> Result<(), EngineError> {
        let Some(task) = self.tasks.get(idx) else {
            return Ok(());
        };
        if task.started {
            return Ok(());
        }
        let info = task.info.clone();
        let scan = scan_params(&project.scan).ok_or_else(|| {
            EngineError::Failed(format!(
                "project `{}` has scan_type={}: it has no page-scan rounds to run task `{}`",
                project.name,
                project.scan.type_name(),
                info.name
            ))
        })?;
        self.imp.start_task(&info)?;
        let runner = match self.scheduling {
            Scheduling::PerTask => Some(spawn_task_rounds(
                kernel.clone(),
                self.imp.clone(),
                scan,
                info.clone(),
            )),
            Scheduling::PerEngine => {
                self.working
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(info.clone());
                if self.worker.is_none() {
                    self.worker = Some(spawn_engine_worker(
                        self.imp.clone(),
                        project.name.clone(),
                        self.name.clone(),
                        scan,
                        self.working.clone(),
                    ));
                }
                None
            }
        };
        if let Some(task) = self.tasks.get_mut(idx) {
            task.started = true;
            task.runner = runner;
        }
        Ok(())
    }

    /// Stops task `idx` if it is started: the engine's hook, then aborts its round loop, or
    /// removes it from the worker's set and aborts the worker when the set is empty.
    pub fn stop_task(&mut self, idx: usize, handles: &mut Vec<JoinHandle<()>>) {
        let Some(task) = self.tasks.get_mut(idx) else {
            return;
        };
        if !task.started {
            return;
        }
        task.started = false;
        if let Some(runner) = task.runner.take() {
            runner.abort();
            handles.push(runner);
        }
        let info = task.info.clone();
        self.imp.stop_task(&info);
        if self.scheduling == Scheduling::PerEngine {
            let mut working = self.working.lock().unwrap_or_else(PoisonError::into_inner);
            working.retain(|t| !Arc::ptr_eq(t, &info));
            if working.is_empty()
                && let Some(worker) = self.worker.take()
            {
                worker.abort();
                handles.push(worker);
            }
        }
    }

    pub fn stop_all(&mut self, handles: &mut Vec<JoinHandle<()>>) {
        for idx in 0..self.tasks.len() {
            self.stop_task(idx, handles);
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
            handles.push(worker);
        }
    }
}
