//! The object model: projects, their engines, their tasks, newest first (C inserts at the
//! head of each list, and `project show` prints in that order), with the start and stop of
//! tasks, and the shared [`EngineCell`] through which every engine call goes.
//!
//! Every function on [`State`] is synchronous and runs under the daemon's state lock;
//! stopping only aborts round loops and hands their join handles back so the caller can
//! await them (and call the engine's `stop-task`) after releasing the lock. Nothing here
//! reads config files or answers actions.

use crate::caps::EngineHost;
use crate::engine::{ScanParams, Scheduling, TaskInfo};
use crate::heat::HeatHistory;
use crate::plugin::ScanResult;
use crate::plugin::{CallError, EngineInstance, HostRef, Params};
use crate::round_cost::Moved;
use crate::scheduler::{
    RoundEnv, WorkingSet, spawn_cgroup_rounds, spawn_engine_worker, spawn_region_rounds,
    spawn_task_rounds,
};
use etmem_config::{EngineConf, ProjectConf, ScanConf};
use etmem_kernel::track::{SCAN_IGN_HOST, SWAP_FLAG_NEEDS_IDLE_PAGES, VMA_SCAN_FLAG};
use etmem_kernel::{Kernel, TrackerKind};
use etmem_proto::heatmap::Heatmap;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The daemon's objects, shared with the round loops (which only use it to quarantine).
pub(crate) type SharedState = Arc<Mutex<State>>;

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
    /// the access tracker chosen at start (while started with tasks)
    pub tracker: Option<TrackerKind>,
    /// newest first
    pub engines: Vec<EngineObj>,
}

/// One engine instance with its host capabilities and its failure state; shared by the
/// model and the round loops.
#[derive(Debug)]
pub(crate) struct EngineCell {
    pub project: String,
    pub name: String,
    instance: Mutex<Box<dyn EngineInstance>>,
    failed: Mutex<Option<String>>,
    pub host: Arc<EngineHost>,
    /// what the engine's `configure` received (recorded with `record_scans`)
    pub params: Params,
    /// per task: what its rounds did
    stats: Mutex<BTreeMap<String, TaskStats>>,
    /// per task: its recent rounds' accesses (`project heatmap`)
    heat: Mutex<BTreeMap<String, HeatHistory>>,
}

/// What the rounds of one task did, kept by the daemon (our addition; C keeps nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TaskStats {
    /// rounds planned
    pub rounds: u64,
    /// the number of the last round
    pub last_round: u64,
    /// what the last round moved (or would have, in a dry run)
    pub last: Moved,
    /// what every round moved, summed
    pub total: Moved,
    /// the last round's plan failure, if it failed
    pub last_error: Option<String>,
}

impl EngineCell {
    pub fn new(
        project: &str,
        name: &str,
        instance: Box<dyn EngineInstance>,
        host: Arc<EngineHost>,
        params: Params,
    ) -> Arc<EngineCell> {
        Arc::new(EngineCell {
            project: project.to_string(),
            name: name.to_string(),
            instance: Mutex::new(instance),
            failed: Mutex::new(None),
            host,
            params,
            stats: Mutex::new(BTreeMap::new()),
            heat: Mutex::new(BTreeMap::new()),
        })
    }

    fn stats_lock(&self) -> MutexGuard<'_, BTreeMap<String, TaskStats>> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records round `number` of `task`: what it moved, or why its plan failed.
    pub(crate) fn record_round(&self, task: &str, number: u64, outcome: Result<&Moved, String>) {
        let mut all = self.stats_lock();
        let s = all.entry(task.to_string()).or_default();
        s.rounds += 1;
        s.last_round = number;
        match outcome {
            Ok(moved) => {
                s.last = moved.clone();
                s.total.add(moved);
                s.total.dry_run = moved.dry_run;
                s.last_error = None;
            }
            Err(why) => {
                s.last = Moved {
                    dry_run: self.host.dry_run(),
                    ..Moved::default()
                };
                s.last_error = Some(why);
            }
        }
    }

    /// The statistics of every task of this engine that planned a round, by task name.
    pub fn task_stats(&self) -> BTreeMap<String, TaskStats> {
        self.stats_lock().clone()
    }

    /// Forgets a deleted task's statistics and access history.
    pub(crate) fn forget_task(&self, task: &str) {
        self.stats_lock().remove(task);
        self.heat_lock().remove(task);
    }

    fn heat_lock(&self) -> MutexGuard<'_, BTreeMap<String, HeatHistory>> {
        self.heat.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds round `number` of `task`, whose scan results are `scans`, to its access history.
    pub(crate) fn record_heat(&self, task: &str, number: u64, scans: &[ScanResult]) {
        self.heat_lock()
            .entry(task.to_string())
            .or_default()
            .record(number, scans);
    }

    /// The access history of `task` as a heatmap (no row before its first round).
    pub fn task_heatmap(&self, task: &str) -> Heatmap {
        self.heat_lock()
            .get(task)
            .map(|h| h.heatmap(&self.project, &self.name, task))
            .unwrap_or_else(|| HeatHistory::default().heatmap(&self.project, &self.name, task))
    }

    fn failed_lock(&self) -> MutexGuard<'_, Option<String>> {
        self.failed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why the engine failed, if it did.
    pub fn failure(&self) -> Option<String> {
        self.failed_lock().clone()
    }

    /// Marks the engine failed; true the first time.
    pub fn mark_failed(&self, why: &str) -> bool {
        let mut f = self.failed_lock();
        if f.is_some() {
            return false;
        }
        *f = Some(why.to_string());
        true
    }

    /// The text every action touching a failed engine answers.
    pub fn failed_text(&self, why: &str) -> String {
        format!(
            "engine `{}` of project `{}` failed: {why}; delete it with obj del and add it again",
            self.name, self.project
        )
    }

    /// The host capabilities as engines receive them.
    pub fn host_ref(&self) -> HostRef {
        self.host.clone()
    }

    /// Calls the engine on a blocking thread (engine calls may take long). A failed engine
    /// is not called: the call answers its fault. A panic escaping the instance is a fault.
    pub async fn call<T, F>(self: &Arc<Self>, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn EngineInstance, &HostRef) -> Result<T, CallError> + Send + 'static,
    {
        let cell = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            if let Some(why) = cell.failure() {
                return Err(CallError::Fault(why));
            }
            let host = cell.host_ref();
            let mut inst = cell.instance.lock().unwrap_or_else(PoisonError::into_inner);
            match catch_unwind(AssertUnwindSafe(|| f(&mut **inst, &host))) {
                Ok(r) => r,
                Err(p) => Err(CallError::Fault(format!(
                    "panicked: {}",
                    etmem_sdk::runtime::panic_message(p.as_ref())
                ))),
            }
        })
        .await;
        match r {
            Ok(r) => r,
            Err(e) => Err(CallError::Fault(format!(
                "engine call did not complete: {e}"
            ))),
        }
    }
}

/// Marks `cell` failed for `why`, logs it, and stops its tasks without calling the engine
/// again (their round loops are aborted, not awaited: the caller may be one of them).
pub(crate) fn quarantine(state: &Weak<Mutex<State>>, cell: &Arc<EngineCell>, why: &str) {
    if !cell.mark_failed(why) {
        return;
    }
    tracing::error!("{}; its tasks are stopped", cell.failed_text(why));
    let Some(state) = state.upgrade() else {
        return;
    };
    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
    for p in &mut st.projects {
        for e in &mut p.engines {
            if Arc::ptr_eq(&e.cell, cell) {
                let mut handles = Vec::new();
                e.stop_all(&mut handles);
                // aborted; nobody awaits them (one may be the caller itself)
                drop(handles);
            }
        }
    }
}

/// An engine object of a project.
#[derive(Debug)]
pub(crate) struct EngineObj {
    /// type name, or `eng_name`
    pub name: String,
    pub conf: EngineConf,
    pub scheduling: Scheduling,
    pub cell: Arc<EngineCell>,
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

/// A started task the engine must be told about (`stop-task`) once the lock is released.
pub(crate) type Stopped = (Arc<EngineCell>, String);

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
        // a round every `interval`, no scan pass
        ScanConf::Psi { interval } => Some(ScanParams {
            loops: 0,
            interval: Duration::from_secs(interval.into()),
            sleep: Duration::ZERO,
        }),
        ScanConf::Region { .. } => None,
    }
}

impl State {
    /// Gives back what lists grown for many objects keep when most of them are deleted
    /// (10,000 projects held 2.5 MiB of list after `obj del`).
    pub fn shrink(&mut self) {
        fn shrink<T>(v: &mut Vec<T>) {
            if v.len() * 4 < v.capacity() {
                v.shrink_to_fit();
            }
        }
        shrink(&mut self.projects);
        for p in &mut self.projects {
            shrink(&mut p.engines);
            for e in &mut p.engines {
                shrink(&mut e.tasks);
            }
        }
    }

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

    /// True when any engine has a task.
    pub fn has_tasks(&self) -> bool {
        self.engines.iter().any(|e| !e.tasks.is_empty())
    }

    /// Stops every started task of the project (it stays `started` as it was: the caller
    /// decides).
    pub fn stop_all(&mut self, handles: &mut Vec<JoinHandle<()>>, stopped: &mut Vec<Stopped>) {
        for e in &mut self.engines {
            for idx in 0..e.tasks.len() {
                if let Some(s) = e.stop_task(idx, handles) {
                    stopped.push(s);
                }
            }
            e.stop_all(handles);
        }
    }
}

/// What a task start needs besides the engine object.
pub(crate) struct StartCtx<'a> {
    pub kernel: &'a Arc<dyn Kernel>,
    pub state: &'a Weak<Mutex<State>>,
    pub project: &'a ProjectConf,
    /// the project's access tracker (page projects; region and psi projects have none)
    pub tracker: Option<TrackerKind>,
}

impl EngineObj {
    pub fn task_index(&self, name: &str) -> Option<usize> {
        self.tasks.iter().position(|t| t.info.name == name)
    }

    /// Starts task `idx`: its round loop (per task) or a place in the engine worker's set
    /// (per engine). Starting a started task does nothing.
    pub fn start_task(&mut self, idx: usize, ctx: &StartCtx<'_>) -> Result<(), String> {
        let Some(task) = self.tasks.get(idx) else {
            return Ok(());
        };
        if task.started {
            return Ok(());
        }
        if let Some(why) = self.cell.failure() {
            return Err(self.cell.failed_text(&why));
        }
        let info = task.info.clone();
        if self.scheduling == Scheduling::Region {
            if !matches!(ctx.project.scan, ScanConf::Region { .. }) {
                return Err(format!(
                    "project `{}` has scan_type={}: engine `{}` needs scan_type=region",
                    ctx.project.name,
                    ctx.project.scan.type_name(),
                    self.name
                ));
            }
            let runner = spawn_region_rounds(
                ctx.kernel.clone(),
                ctx.state.clone(),
                self.cell.clone(),
                info,
            );
            if let Some(task) = self.tasks.get_mut(idx) {
                task.started = true;
                task.runner = Some(runner);
            }
            return Ok(());
        }
        if self.scheduling == Scheduling::Cgroup
            && !matches!(ctx.project.scan, ScanConf::Psi { .. })
        {
            return Err(format!(
                "project `{}` has scan_type={}: engine `{}` needs scan_type=psi",
                ctx.project.name,
                ctx.project.scan.type_name(),
                self.name
            ));
        }
        let scan = scan_params(&ctx.project.scan).ok_or_else(|| {
            format!(
                "project `{}` has scan_type={}: it has no page-scan rounds to run task `{}`",
                ctx.project.name,
                ctx.project.scan.type_name(),
                info.name
            )
        })?;
        let tracker = match (self.scheduling, ctx.tracker) {
            // a psi task scans nothing: no tracker
            (Scheduling::Cgroup, _) => None,
            (_, Some(t)) => Some(t),
            (_, None) => {
                return Err(format!(
                    "project `{}` has no access tracker to run task `{}`",
                    ctx.project.name, info.name
                ));
            }
        };
        // the etmem_scan flags: what the project's tracker cannot honour is said now
        let flags = crate::scheduler::scan_flags(&info);
        if let Some(t) = tracker
            && t != TrackerKind::IdlePages
        {
            if flags.vma & VMA_SCAN_FLAG != 0 {
                return Err(format!(
                    "the access tracker is {t}: {SWAP_FLAG_NEEDS_IDLE_PAGES}"
                ));
            }
            if flags.scan & SCAN_IGN_HOST != 0 {
                tracing::info!(
                    "project `{}` task `{}`: ign_host=yes leaves host-side accesses out only \
                     with the idle_pages tracker; with {} they count as accesses (pages look \
                     hotter, none colder)",
                    ctx.project.name,
                    info.name,
                    t
                );
            }
        }
        let env = RoundEnv {
            kernel: ctx.kernel.clone(),
            state: ctx.state.clone(),
            cell: self.cell.clone(),
            scan,
            tracker,
            scheduling: self.scheduling,
        };
        let runner = match self.scheduling {
            Scheduling::PerTask | Scheduling::Region => Some(spawn_task_rounds(env, info.clone())),
            Scheduling::Cgroup => Some(spawn_cgroup_rounds(env, info.clone())),
            Scheduling::PerEngine => {
                self.working
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(info.clone());
                if self.worker.is_none() {
                    self.worker = Some(spawn_engine_worker(env, self.working.clone()));
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

    /// Stops task `idx` if it is started: aborts its round loop, or removes it from the
    /// worker's set and aborts the worker when the set is empty. Returns what the engine
    /// must be told (`stop-task`) after the lock is released.
    pub fn stop_task(&mut self, idx: usize, handles: &mut Vec<JoinHandle<()>>) -> Option<Stopped> {
        let task = self.tasks.get_mut(idx)?;
        if !task.started {
            return None;
        }
        task.started = false;
        if let Some(runner) = task.runner.take() {
            runner.abort();
            handles.push(runner);
        }
        let info = task.info.clone();
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
        Some((self.cell.clone(), info.name.clone()))
    }

    /// Stops every task (without telling the engine) and the worker.
    pub fn stop_all(&mut self, handles: &mut Vec<JoinHandle<()>>) {
        for idx in 0..self.tasks.len() {
            let _ = self.stop_task(idx, handles);
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
            handles.push(worker);
        }
    }
}
