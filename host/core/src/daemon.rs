//! The daemon: answers [`Action`]s on the object model and starts and stops round loops.
//!
//! State lives behind one `std::sync::Mutex`, taken only for synchronous work: an action
//! checks and changes the objects atomically, aborts the round loops it stops, releases the
//! lock, and only then awaits their end and calls the engines (`stop-task`, `drop-task`,
//! `new-task`, `command`, on blocking threads). No lock is ever held across an await, and a
//! stop never waits for a round's sleep. Actions that change objects are serialised by an
//! async admin lock, so an `obj add` checked against the state still holds once its engines
//! are configured. It must not know about sockets or frames.
//!
//! The free functions the actions use live in submodules: `del` (deleting objects and
//! the [`Aftermath`] of a stop), `run` (`project start`, tracker choice, engine call
//! failures), `show` (the `project show` text) and `build` (a new engine's instance).

use crate::action::{Action, ActionError, ActionHandler, Reply};
use crate::add::{NewEngine, plan};
use crate::engine::{EngineRegistry, TaskInfo};
use crate::model::{
    EngineCell, EngineObj, Project, SharedState, StartCtx, State, Stopped, TaskObj, TaskStats,
};
use crate::plugin::CallError;
use crate::round_cost::Moved;
use etmem_config::ConfigFile;
use etmem_kernel::Kernel;
use etmem_proto::OptResult;
use etmem_proto::heatmap::{self, Heatmap};
use etmem_sdk::command::{CommandRequest, Output, is_no_json};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::task::JoinHandle;

mod build;
mod del;
mod run;
mod show;
mod stats;
use stats::counted;
pub use stats::{ProjectStats, metrics_text, stats_json, stats_text};

use build::build_engine;
pub use del::DelTargets;
use del::{Aftermath, delete_engine, delete_project, delete_task};
use run::{call_failure, choose_tracker, needs_tracker, start_project};
use show::show_text;

/// Host-wide settings of the daemon core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonOptions {
    /// The byte quota of one task's round for engines whose `[engine]` section sets no
    /// `round_quota_bytes`; `None`: only the VMA rules limit actions.
    pub round_quota_bytes: Option<u64>,
}

/// The etmemd core. Build it with [`Daemon::start`]; use it through the [`DaemonHandle`].
#[derive(Debug)]
pub struct Daemon {
    kernel: Arc<dyn Kernel>,
    registry: EngineRegistry,
    options: DaemonOptions,
    state: SharedState,
    admin: tokio::sync::Mutex<()>,
}

/// A cheap, clonable handle on the daemon: what the RPC layer serves actions through.
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    daemon: Arc<Daemon>,
}

impl Daemon {
    /// A daemon with no objects, reaching the system through `kernel` and building engines
    /// from `registry`. Round loops are spawned on the tokio runtime current when a project
    /// starts.
    pub fn start(kernel: Arc<dyn Kernel>, registry: EngineRegistry) -> DaemonHandle {
        Daemon::start_with(kernel, registry, DaemonOptions::default())
    }

    /// [`Daemon::start`] with host-wide settings.
    pub fn start_with(
        kernel: Arc<dyn Kernel>,
        registry: EngineRegistry,
        options: DaemonOptions,
    ) -> DaemonHandle {
        DaemonHandle {
            daemon: Arc::new(Daemon {
                kernel,
                registry,
                options,
                state: Arc::new(Mutex::new(State::default())),
                admin: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// Awaits the end of aborted round loops (prompt: they are aborted at an await point).
async fn join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        if let Err(e) = h.await
            && e.is_panic()
        {
            tracing::error!("a round loop panicked: {e}");
        }
    }
}

fn pro_no_exist(project: &str) -> ActionError {
    ActionError::new(
        OptResult::ProNoExist,
        format!("project `{project}` does not exist"),
    )
}

fn eng_no_exist(project: &str, engine: &str) -> ActionError {
    ActionError::new(
        OptResult::EngNoExist,
        format!("engine `{engine}` does not exist in project `{project}`"),
    )
}

fn task_no_exist(project: &str, engine: &str, task: &str) -> ActionError {
    ActionError::new(
        OptResult::TaskNoExist,
        format!("task `{task}` does not exist in engine `{engine}` of project `{project}`"),
    )
}

impl DaemonHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.daemon
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Awaits the stopped round loops, then tells the engines (`stop-task`, `drop-task`).
    async fn finish(&self, after: Aftermath) {
        join_all(after.handles).await;
        for (cell, task) in after.stopped {
            let name = task.clone();
            if let Err(err) = cell.call(move |e, h| e.stop_task(&name, h)).await
                && cell.failure().is_none()
            {
                let why = call_failure(&self.daemon, &cell, err);
                tracing::warn!(
                    "engine `{}` of project `{}`: stop-task `{task}`: {why}",
                    cell.name,
                    cell.project
                );
            }
            // whatever the engine did: its DAMON schemes go with the stop (B13 on delete)
            let host = cell.host.clone();
            let _ = tokio::task::spawn_blocking(move || host.release_damon(&task)).await;
        }
        for (cell, task) in after.dropped {
            let host = cell.host.clone();
            let name = task.clone();
            let _ = tokio::task::spawn_blocking(move || host.remove_task(&name)).await;
            cell.forget_task(&task);
            let name = task.clone();
            if let Err(err) = cell.call(move |e, _| e.drop_task(&name)).await
                && cell.failure().is_none()
            {
                let why = call_failure(&self.daemon, &cell, err);
                tracing::warn!(
                    "engine `{}` of project `{}`: drop-task `{task}`: {why}",
                    cell.name,
                    cell.project
                );
            }
        }
    }

    /// `obj add` of an already parsed file: all-or-nothing (see `add.rs`). New engines are
    /// configured and new tasks handed to their engines before anything is inserted; tasks
    /// added to a started project start at once; if anything fails, the whole file is
    /// taken back.
    pub async fn add_config(&self, file: &ConfigFile) -> Result<Reply, ActionError> {
        let d = &self.daemon;
        let _admin = d.admin.lock().await;
        for w in &file.warnings {
            tracing::warn!("{}: {w}", file.path.display());
        }
        let plan = {
            let state = self.lock();
            plan(file, &state, &d.registry, d.kernel.as_ref())?
        };
        let mut built: Vec<(NewEngine, Arc<EngineCell>)> = Vec::new();
        for e in plan.engines {
            let cell = build_engine(d, &e).await?;
            built.push((e, cell));
        }
        // new-task for every new task, newest engines' cells or existing ones
        let mut told: Vec<Stopped> = Vec::new();
        let mut failure = None;
        for t in &plan.tasks {
            let info = &t.info;
            let cell = built
                .iter()
                .find(|(e, _)| e.project == info.project && e.name == info.engine)
                .map(|(_, c)| c.clone())
                .or_else(|| {
                    self.lock()
                        .project(&info.project)
                        .and_then(|p| p.engine(&info.engine))
                        .map(|e| e.cell.clone())
                });
            let Some(cell) = cell else {
                continue;
            };
            let sock = info.memdcd_sock().map(|r| r.map_err(|e| e.to_string()));
            cell.host.add_task(&info.name, sock);
            if let etmem_config::TaskEngineConf::Psi(p) = &info.keys {
                cell.host
                    .set_task_cgroups(&info.name, &p.cg_dir, p.reclaim_max_bytes);
            }
            let sdk = info.sdk();
            let params = info.params.clone();
            match cell.call(move |e, h| e.new_task(&sdk, &params, h)).await {
                Ok(()) => told.push((cell, info.name.clone())),
                Err(err) => {
                    cell.host.remove_task(&info.name);
                    let why = call_failure(d, &cell, err);
                    failure = Some(format!(
                        "{}: task `{}` in project `{}`: {why}",
                        t.at, info.name, info.project
                    ));
                    break;
                }
            }
        }
        if let Some(why) = failure {
            self.finish(Aftermath {
                dropped: told,
                ..Aftermath::default()
            })
            .await;
            return Err(ActionError::new(OptResult::InterErr, why));
        }

        let mut after = Aftermath::default();
        let result = {
            let mut state = self.lock();
            for p in plan.projects {
                state.projects.insert(
                    0,
                    Project {
                        conf: p,
                        started: false,
                        tracker: None,
                        engines: Vec::new(),
                    },
                );
            }
            let new_engines: Vec<(String, String)> = built
                .iter()
                .map(|(e, _)| (e.project.clone(), e.name.clone()))
                .collect();
            for (e, cell) in built {
                if let Some(p) = state.project_mut(&e.project) {
                    p.engines.insert(
                        0,
                        EngineObj {
                            name: e.name,
                            conf: e.conf,
                            scheduling: e.scheduling,
                            cell,
                            tasks: Vec::new(),
                            working: Arc::default(),
                            worker: None,
                        },
                    );
                }
            }
            let new_tasks: Vec<(String, String, String)> = plan
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.info.project.clone(),
                        t.info.engine.clone(),
                        t.info.name.clone(),
                    )
                })
                .collect();
            let weak = Arc::downgrade(&d.state);
            let mut failure = None;
            for t in plan.tasks {
                let info = t.info;
                let Some(p) = state.project_mut(&info.project) else {
                    continue;
                };
                let started = p.started;
                let conf = p.conf.clone();
                if started && failure.is_none() && p.tracker.is_none() && needs_tracker(&conf) {
                    match choose_tracker(d.kernel.as_ref(), &conf.name) {
                        Ok(k) => p.tracker = Some(k),
                        Err(err) => failure = Some(format!("{}: {}", t.at, err.detail)),
                    }
                }
                let tracker = p.tracker;
                let Some(e) = p.engine_mut(&info.engine) else {
                    continue;
                };
                let name = info.name.clone();
                e.tasks.insert(
                    0,
                    TaskObj {
                        info: Arc::new(info),
                        started: false,
                        runner: None,
                    },
                );
                if started && failure.is_none() {
                    let ctx = StartCtx {
                        kernel: &d.kernel,
                        state: &weak,
                        project: &conf,
                        tracker,
                    };
                    if let Err(err) = e.start_task(0, &ctx) {
                        failure = Some(format!(
                            "{}: task `{name}` of engine `{}` in started project `{}` cannot \
                             start: {err}; nothing of this file was added",
                            file.path.display(),
                            e.name,
                            conf.name
                        ));
                    }
                }
            }
            match failure {
                None => Ok(Reply::empty()),
                Some(why) => {
                    for (p, e, t) in &new_tasks {
                        let _ = delete_task(&mut state, p, e, t, &mut after);
                    }
                    for (p, e) in &new_engines {
                        let _ = delete_engine(&mut state, p, e, &mut after);
                    }
                    for p in &file.projects {
                        let _ = delete_project(&mut state, &p.name, &mut after);
                    }
                    Err(ActionError::new(OptResult::InterErr, why))
                }
            }
        };
        self.finish(after).await;
        result
    }

    /// `obj del` of already parsed object names: tasks, then engines, then projects; goes on
    /// past failures and reports the last one. Started objects are stopped first.
    pub async fn del_objects(&self, targets: &DelTargets) -> Result<Reply, ActionError> {
        let _admin = self.daemon.admin.lock().await;
        let mut after = Aftermath::default();
        let mut last = None;
        {
            let mut state = self.lock();
            for (p, e, t) in &targets.tasks {
                if let Err(err) = delete_task(&mut state, p, e, t, &mut after) {
                    last = Some(err);
                }
            }
            for (p, e) in &targets.engines {
                if let Err(err) = delete_engine(&mut state, p, e, &mut after) {
                    last = Some(err);
                }
            }
            for p in &targets.projects {
                if let Err(err) = delete_project(&mut state, p, &mut after) {
                    last = Some(err);
                }
            }
            state.shrink();
        }
        self.finish(after).await;
        match last {
            None => Ok(Reply::empty()),
            Some(err) => Err(err),
        }
    }

    /// `project start`.
    pub async fn start_project(&self, project: &str) -> Result<Reply, ActionError> {
        let _admin = self.daemon.admin.lock().await;
        let mut after = Aftermath::default();
        let result = {
            let mut state = self.lock();
            match state.project_mut(project) {
                None => Err(pro_no_exist(project)),
                Some(p) if p.started => Err(ActionError::new(
                    OptResult::ProStarted,
                    format!("project `{project}` is already started"),
                )),
                Some(p) => start_project(p, &self.daemon, &mut after),
            }
        };
        self.finish(after).await;
        result.map(|()| Reply::empty())
    }

    /// `project stop`.
    pub async fn stop_project(&self, project: &str) -> Result<Reply, ActionError> {
        let _admin = self.daemon.admin.lock().await;
        let mut after = Aftermath::default();
        let result = {
            let mut state = self.lock();
            match state.project_mut(project) {
                None => Err(pro_no_exist(project)),
                Some(p) if !p.started => Err(ActionError::new(
                    OptResult::ProStopped,
                    format!("project `{project}` is not started"),
                )),
                Some(p) => {
                    p.stop_all(&mut after.handles, &mut after.stopped);
                    p.started = false;
                    p.tracker = None;
                    Ok(Reply::empty())
                }
            }
        };
        self.finish(after).await;
        result
    }

    /// `project show`: always succeeds.
    pub fn show(&self, project: Option<&str>) -> Reply {
        Reply {
            output: show_text(&self.lock(), project),
        }
    }

    /// What the rounds of every task of `project` did (our addition): `(engine, task,
    /// statistics)` in the order of `project show`, tasks that have not planned a round
    /// with zeros. `Err` names a project that does not exist.
    pub fn stats(&self, project: &str) -> Result<Vec<(String, String, TaskStats)>, ActionError> {
        let state = self.lock();
        let p = state.project(project).ok_or_else(|| {
            ActionError::new(
                OptResult::ProNoExist,
                format!("project `{project}` does not exist"),
            )
        })?;
        let mut out = Vec::new();
        for e in &p.engines {
            let stats = e.cell.task_stats();
            for t in &e.tasks {
                let s = stats
                    .get(&t.info.name)
                    .cloned()
                    .unwrap_or_else(|| TaskStats {
                        last: Moved {
                            dry_run: p.conf.dry_run,
                            ..Moved::default()
                        },
                        total: Moved {
                            dry_run: p.conf.dry_run,
                            ..Moved::default()
                        },
                        ..TaskStats::default()
                    });
                out.push((e.name.clone(), t.info.name.clone(), s));
            }
        }
        Ok(out)
    }

    /// The statistics of every project, in `project show` order: `(project, started,
    /// dry_run, tasks)` with the tasks as [`stats`](DaemonHandle::stats) gives them.
    pub fn all_stats(&self) -> Vec<ProjectStats> {
        let names: Vec<(String, bool, bool)> = {
            let state = self.lock();
            state
                .projects
                .iter()
                .map(|p| (p.conf.name.clone(), p.started, p.conf.dry_run))
                .collect()
        };
        names
            .into_iter()
            .filter_map(|(project, started, dry_run)| {
                // a project deleted meanwhile is left out
                let tasks = self.stats(&project).ok()?;
                Some(ProjectStats {
                    project,
                    started,
                    dry_run,
                    tasks,
                })
            })
            .collect()
    }

    /// `project heatmap` (our addition): the access history of task `task` of `project`,
    /// in `engine` when given, else in the one engine of the project that has a task of
    /// that name. The project need not be started: a stopped task keeps its history.
    pub fn heatmap(
        &self,
        project: &str,
        engine: Option<&str>,
        task: &str,
    ) -> Result<Heatmap, ActionError> {
        let state = self.lock();
        let p = state
            .project(project)
            .ok_or_else(|| pro_no_exist(project))?;
        let cell = match engine {
            Some(name) => {
                let e = p.engine(name).ok_or_else(|| eng_no_exist(project, name))?;
                if e.task_index(task).is_none() {
                    return Err(task_no_exist(project, name, task));
                }
                e.cell.clone()
            }
            None => {
                let holders: Vec<&EngineObj> = p
                    .engines
                    .iter()
                    .filter(|e| e.task_index(task).is_some())
                    .collect();
                match holders.as_slice() {
                    [] => {
                        return Err(ActionError::new(
                            OptResult::TaskNoExist,
                            format!("task `{task}` does not exist in project `{project}`"),
                        ));
                    }
                    [e] => e.cell.clone(),
                    many => {
                        let names: Vec<String> =
                            many.iter().map(|e| format!("`{}`", e.name)).collect();
                        return Err(ActionError::new(
                            OptResult::Inval,
                            format!(
                                "task `{task}` is in engines {} of project `{project}`: name one with -e",
                                names.join(", ")
                            ),
                        ));
                    }
                }
            }
        };
        drop(state);
        Ok(cell.task_heatmap(task))
    }

    /// The task `task` of `engine` in `project` as the core holds it (after add-time checks:
    /// clamped `max_threads`, pid fixed at add for per-engine engines), for diagnostics and
    /// tests; engines do not see these host-side values.
    pub fn task_info(&self, project: &str, engine: &str, task: &str) -> Option<TaskInfo> {
        let state = self.lock();
        let e = state.project(project)?.engine(engine)?;
        let i = e.task_index(task)?;
        e.tasks.get(i).map(|t| (*t.info).clone())
    }

    /// `engine <cmd>`: the checks of spec §5.1 in order, then the engine's failure state,
    /// then the engine's `command`, whose text is the reply. With `json` (`-o json`, our
    /// addition) the engine gets `<cmd> -o json` ([`etmem_sdk::command`]); an engine that
    /// answers it as an unknown command gives no JSON for `cmd`, and the error says so.
    pub async fn engine_command(
        &self,
        project: &str,
        engine: &str,
        cmd: &str,
        task: Option<&str>,
        json: bool,
    ) -> Result<Reply, ActionError> {
        for (what, value) in [("project", project), ("engine", engine), ("command", cmd)] {
            if value.is_empty() {
                return Err(ActionError::new(
                    OptResult::Inval,
                    format!("engine command: no {what} given"),
                ));
            }
        }
        let cell = {
            let state = self.lock();
            let p = state
                .project(project)
                .ok_or_else(|| pro_no_exist(project))?;
            if !p.started {
                return Err(ActionError::new(
                    OptResult::Inval,
                    format!(
                        "project `{project}` is not started: engine commands need a started project"
                    ),
                ));
            }
            let e = p
                .engine(engine)
                .ok_or_else(|| eng_no_exist(project, engine))?;
            if let Some(t) = task
                && e.task_index(t).is_none()
            {
                return Err(task_no_exist(project, engine, t));
            }
            e.cell.clone()
        };
        if let Some(why) = cell.failure() {
            return Err(ActionError::new(
                OptResult::InterErr,
                cell.failed_text(&why),
            ));
        }
        let output = if json { Output::Json } else { Output::Text };
        let c = CommandRequest::encode(cmd, output);
        let t = task.map(str::to_string);
        match cell.call(move |e, h| e.command(&c, t.as_deref(), h)).await {
            Ok(output) => Ok(Reply { output }),
            Err(CallError::Engine(e)) if json && is_no_json(&e, cmd) => Err(ActionError::new(
                OptResult::Inval,
                format!(
                    "engine `{engine}` of project `{project}` gives no JSON for command `{cmd}`"
                ),
            )),
            // C: a NULL `eng_mgt_func` or a failing command both give OPT_INVAL.
            Err(CallError::Engine(e)) => Err(ActionError::new(
                OptResult::Inval,
                format!("engine `{engine}` of project `{project}`: {e}"),
            )),
            Err(fault) => Err(ActionError::new(
                OptResult::InterErr,
                call_failure(&self.daemon, &cell, fault),
            )),
        }
    }

    /// Stops every task of every project and deletes every project (C's
    /// `etmemd_stop_all_projects`); used on SIGINT/SIGTERM. Returns once every round loop
    /// has ended and the engines were told.
    pub async fn shutdown(&self) {
        let _admin = self.daemon.admin.lock().await;
        let mut after = Aftermath::default();
        {
            let mut state = self.lock();
            let names: Vec<String> = state.projects.iter().map(|p| p.conf.name.clone()).collect();
            for n in names {
                let _ = delete_project(&mut state, &n, &mut after);
            }
        }
        self.finish(after).await;
    }
}

impl DaemonHandle {
    /// `obj add -f FILE`: reads and checks the file, then adds it.
    async fn obj_add(&self, file: &str) -> Result<Reply, ActionError> {
        let parsed = etmem_config::load_for_add(file)
            .map_err(|e| ActionError::new(e.result(), e.to_string()))?;
        let reply = self.add_config(&parsed).await?;
        tracing::info!(
            "obj add `{file}` ({}): added {}, {}, {}",
            parsed.path.display(),
            counted("project", parsed.projects.iter().map(|p| p.name.as_str())),
            counted("engine", parsed.engines.iter().map(|e| e.name())),
            counted("task", parsed.tasks.iter().map(|t| t.name.as_str())),
        );
        Ok(reply)
    }

    /// `obj del -f FILE`: reads the names in the file, then deletes those objects.
    async fn obj_del(&self, file: &str) -> Result<Reply, ActionError> {
        let ids = etmem_config::load_for_del(file)
            .map_err(|e| ActionError::new(e.result(), e.to_string()))?;
        let targets = DelTargets {
            projects: ids.projects,
            engines: ids.engines,
            tasks: ids.tasks,
        };
        let reply = self.del_objects(&targets).await?;
        tracing::info!(
            "obj del `{file}`: deleted {}, {}, {}",
            counted("project", targets.projects.iter().map(String::as_str)),
            counted("engine", targets.engines.iter().map(|(_, e)| e.as_str())),
            counted("task", targets.tasks.iter().map(|(_, _, t)| t.as_str())),
        );
        Ok(reply)
    }
}

impl ActionHandler for DaemonHandle {
    async fn handle(&self, action: Action) -> Result<Reply, ActionError> {
        match action {
            // A large file leaves much freed memory behind (its text, its parsed sections,
            // the deleted objects): it is given back to the kernel once all of it is free,
            // the file's own values included (freed after a trim, they would stay resident
            // until the next one).
            Action::ObjAdd { file } => {
                let r = self.obj_add(&file).await;
                crate::alloc::release_free_memory();
                r
            }
            Action::ObjDel { file } => {
                let r = self.obj_del(&file).await;
                crate::alloc::release_free_memory();
                r
            }
            Action::ProjectStart { project } => self.start_project(&project).await,
            Action::ProjectStop { project } => self.stop_project(&project).await,
            Action::ProjectShow { project } => Ok(self.show(project.as_deref())),
            Action::ProjectShowJson { project } => Ok(Reply {
                output: show::show_json(&self.lock(), project.as_deref())?,
            }),
            Action::ProjectStats { project, json } => {
                let stats = self.stats(&project)?;
                Ok(Reply {
                    output: if json {
                        stats_json(&project, &stats)
                    } else {
                        stats_text(&project, &stats)
                    },
                })
            }
            Action::EngineCmd {
                project,
                engine,
                cmd,
                task,
                json,
            } => {
                self.engine_command(&project, &engine, &cmd, task.as_deref(), json)
                    .await
            }
            Action::TaskHeatmap {
                project,
                engine,
                task,
                format,
            } => {
                let map = self.heatmap(&project, engine.as_deref(), &task)?;
                Ok(Reply {
                    output: heatmap::render(&map, format),
                })
            }
        }
    }
}
