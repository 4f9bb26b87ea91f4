//! The daemon: answers [`Action`]s on the object model and starts and stops round loops.
//!
//! State lives behind one `std::sync::Mutex`, taken only for synchronous work: an action
//! checks and changes the objects atomically, aborts the round loops it stops, releases the
//! lock, and only then awaits their end. No lock is ever held across an await, and a stop
//! never waits for a round's sleep. It must not know about sockets or frames.

use crate::action::{Action, ActionError, ActionHandler, Reply};
use crate::add::plan;
use crate::engine::{CommandRequest, EngineRegistry};
use crate::model::{EngineObj, Project, State, TaskObj};
use etmem_config::ConfigFile;
use etmem_kernel::Kernel;
use etmem_proto::OptResult;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::task::JoinHandle;

/// The etmemd core. Build it with [`Daemon::start`]; use it through the [`DaemonHandle`].
#[derive(Debug)]
pub struct Daemon {
    kernel: Arc<dyn Kernel>,
    registry: EngineRegistry,
    state: Mutex<State>,
}

/// A cheap, clonable handle on the daemon: what the RPC layer serves actions through.
#[derive(Debug, Clone)]
pub struct DaemonHandle {
    daemon: Arc<Daemon>,
}

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

impl Daemon {
    /// A daemon with no objects, reaching the system through `kernel` and building engines
    /// from `registry`. Round loops are spawned on the tokio runtime current when a project
    /// starts.
    pub fn start(kernel: Arc<dyn Kernel>, registry: EngineRegistry) -> DaemonHandle {
        DaemonHandle {
            daemon: Arc::new(Daemon {
                kernel,
                registry,
                state: Mutex::new(State::default()),
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

/// The `project show` text (spec §5.1), byte for byte.
fn show_text(state: &State, name: Option<&str>) -> String {
    let mut out = String::new();
    let mut matched = false;
    for p in state
        .projects
        .iter()
        .filter(|p| name.is_none_or(|n| p.conf.name == n))
    {
        matched = true;
        let _ = writeln!(out, "project: {}", p.conf.name);
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<16} {:<16} {:<16} {:<8}",
            "number", "type", "value", "name", "engine", "started"
        );
        for e in &p.engines {
            for (i, t) in e.tasks.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:<8} {:<8} {:<16} {:<16} {:<16} {:<8}",
                    i + 1,
                    t.info.target.type_name(),
                    t.info.target.value(),
                    t.info.name,
                    e.name,
                    if t.started { "true" } else { "false" }
                );
            }
        }
    }
    if !matched {
        match name {
            None => out.push_str("no project exists\n\n"),
            Some(n) => {
                let _ = write!(out, "project: project {n} is not existed\n\n");
            }
        }
    }
    out
}

/// Deletes task `task` of `engine` in `project`, stopping it first.
fn delete_task(
    state: &mut State,
    project: &str,
    engine: &str,
    task: &str,
    handles: &mut Vec<JoinHandle<()>>,
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
    e.stop_task(idx, handles);
    e.tasks.remove(idx);
    Ok(())
}

/// Deletes `engine` of `project` with its tasks, stopping them first.
fn delete_engine(
    state: &mut State,
    project: &str,
    engine: &str,
    handles: &mut Vec<JoinHandle<()>>,
) -> Result<(), ActionError> {
    let p = state
        .project_mut(project)
        .ok_or_else(|| pro_no_exist(project))?;
    let idx = p
        .engines
        .iter()
        .position(|e| e.name == engine)
        .ok_or_else(|| eng_no_exist(project, engine))?;
    p.engines[idx].stop_all(handles);
    p.engines.remove(idx);
    Ok(())
}

/// Deletes `project` with everything in it, stopping it first.
fn delete_project(
    state: &mut State,
    project: &str,
    handles: &mut Vec<JoinHandle<()>>,
) -> Result<(), ActionError> {
    let idx = state
        .projects
        .iter()
        .position(|p| p.conf.name == project)
        .ok_or_else(|| pro_no_exist(project))?;
    state.projects[idx].stop_all(handles);
    state.projects.remove(idx);
    Ok(())
}

/// Starts every task of `p` (engines newest first, tasks newest first). On the first
/// failure every task started here is stopped again (B6 fixed) and the reason returned.
fn start_project(
    p: &mut Project,
    kernel: &Arc<dyn Kernel>,
    handles: &mut Vec<JoinHandle<()>>,
) -> Result<(), ActionError> {
    let conf = p.conf.clone();
    let mut failure = None;
    'engines: for e in &mut p.engines {
        for idx in 0..e.tasks.len() {
            if let Err(err) = e.start_task(idx, kernel, &conf) {
                failure = Some(format!(
                    "project `{}`: task `{}` of engine `{}` cannot start: {err}",
                    conf.name, e.tasks[idx].info.name, e.name
                ));
                break 'engines;
            }
        }
    }
    match failure {
        None => {
            p.started = true;
            Ok(())
        }
        Some(why) => {
            p.stop_all(handles);
            p.started = false;
            Err(ActionError::new(
                OptResult::InterErr,
                format!("{why}; the tasks started before it were stopped again"),
            ))
        }
    }
}

impl DaemonHandle {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.daemon
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `obj add` of an already parsed file: all-or-nothing (see `add.rs`). Tasks added to a
    /// started project start at once; if one cannot start, the whole file is taken back.
    pub async fn add_config(&self, file: &ConfigFile) -> Result<Reply, ActionError> {
        let d = &self.daemon;
        for w in &file.warnings {
            tracing::warn!("{}: {w}", file.path.display());
        }
        let mut handles = Vec::new();
        let result = {
            let mut state = self.lock();
            let plan = plan(file, &state, &d.registry, d.kernel.as_ref())?;
            for p in plan.projects {
                state.projects.insert(
                    0,
                    Project {
                        conf: p,
                        started: false,
                        engines: Vec::new(),
                    },
                );
            }
            let new_engines: Vec<(String, String)> = plan
                .engines
                .iter()
                .map(|e| (e.project.clone(), e.name.clone()))
                .collect();
            for e in plan.engines {
                if let Some(p) = state.project_mut(&e.project) {
                    p.engines.insert(
                        0,
                        EngineObj {
                            name: e.name,
                            conf: e.conf,
                            scheduling: e.scheduling,
                            imp: e.imp,
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
                .map(|t| (t.project.clone(), t.engine.clone(), t.name.clone()))
                .collect();
            let mut failure = None;
            for t in plan.tasks {
                let Some(p) = state.project_mut(&t.project) else {
                    continue;
                };
                let started = p.started;
                let conf = p.conf.clone();
                let Some(e) = p.engine_mut(&t.engine) else {
                    continue;
                };
                let name = t.name.clone();
                e.tasks.insert(
                    0,
                    TaskObj {
                        info: Arc::new(t),
                        started: false,
                        runner: None,
                    },
                );
                if started
                    && failure.is_none()
                    && let Err(err) = e.start_task(0, &d.kernel, &conf)
                {
                    failure = Some(format!(
                        "{}: task `{name}` of engine `{}` in started project `{}` cannot \
                         start: {err}; nothing of this file was added",
                        file.path.display(),
                        e.name,
                        conf.name
                    ));
                }
            }
            match failure {
                None => Ok(Reply::empty()),
                Some(why) => {
                    for (p, e, t) in &new_tasks {
                        let _ = delete_task(&mut state, p, e, t, &mut handles);
                    }
                    for (p, e) in &new_engines {
                        let _ = delete_engine(&mut state, p, e, &mut handles);
                    }
                    for p in &file.projects {
                        let _ = delete_project(&mut state, &p.name, &mut handles);
                    }
                    Err(ActionError::new(OptResult::InterErr, why))
                }
            }
        };
        join_all(handles).await;
        result
    }

    /// `obj del` of already parsed object names: tasks, then engines, then projects; goes on
    /// past failures and reports the last one. Started objects are stopped first.
    pub async fn del_objects(&self, targets: &DelTargets) -> Result<Reply, ActionError> {
        let mut handles = Vec::new();
        let mut last = None;
        {
            let mut state = self.lock();
            for (p, e, t) in &targets.tasks {
                if let Err(err) = delete_task(&mut state, p, e, t, &mut handles) {
                    last = Some(err);
                }
            }
            for (p, e) in &targets.engines {
                if let Err(err) = delete_engine(&mut state, p, e, &mut handles) {
                    last = Some(err);
                }
            }
            for p in &targets.projects {
                if let Err(err) = delete_project(&mut state, p, &mut handles) {
                    last = Some(err);
                }
            }
        }
        join_all(handles).await;
        match last {
            None => Ok(Reply::empty()),
            Some(err) => Err(err),
        }
    }

    /// `project start`.
    pub async fn start_project(&self, project: &str) -> Result<Reply, ActionError> {
        let mut handles = Vec::new();
        let result = {
            let mut state = self.lock();
            match state.project_mut(project) {
                None => Err(pro_no_exist(project)),
                Some(p) if p.started => Err(ActionError::new(
                    OptResult::ProStarted,
                    format!("project `{project}` is already started"),
                )),
                Some(p) => start_project(p, &self.daemon.kernel, &mut handles),
            }
        };
        join_all(handles).await;
        result.map(|()| Reply::empty())
    }

    /// `project stop`.
    pub async fn stop_project(&self, project: &str) -> Result<Reply, ActionError> {
        let mut handles = Vec::new();
        let result = {
            let mut state = self.lock();
            match state.project_mut(project) {
                None => Err(pro_no_exist(project)),
                Some(p) if !p.started => Err(ActionError::new(
                    OptResult::ProStopped,
                    format!("project `{project}` is not started"),
                )),
                Some(p) => {
                    p.stop_all(&mut handles);
                    p.started = false;
                    Ok(Reply::empty())
                }
            }
        };
        join_all(handles).await;
        result
    }

    /// `project show`: always succeeds.
    pub fn show(&self, project: Option<&str>) -> Reply {
        Reply {
            output: show_text(&self.lock(), project),
        }
    }

    /// `engine <cmd>`: the checks of spec §5.1 in order, then the engine's command.
    pub fn engine_command(
        &self,
        project: &str,
        engine: &str,
        cmd: &str,
        task: Option<&str>,
    ) -> Result<Reply, ActionError> {
        for (what, value) in [("project", project), ("engine", engine), ("command", cmd)] {
            if value.is_empty() {
                return Err(ActionError::new(
                    OptResult::Inval,
                    format!("engine command: no {what} given"),
                ));
            }
        }
        let (imp, task_info, working) = {
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
            let task_info = match task {
                None => None,
                Some(t) => {
                    let idx = e
                        .task_index(t)
                        .ok_or_else(|| task_no_exist(project, engine, t))?;
                    Some(e.tasks[idx].info.clone())
                }
            };
            (e.imp.clone(), task_info, e.working())
        };
        let req = CommandRequest {
            project,
            engine,
            cmd,
            task: task_info.as_deref(),
            working: &working,
        };
        // C: a NULL `eng_mgt_func` or a failing command both give OPT_INVAL.
        imp.command(&req)
            .map(|output| Reply { output })
            .map_err(|err| ActionError::new(OptResult::Inval, err.to_string()))
    }

    /// Stops every task of every project and deletes every project (C's
    /// `etmemd_stop_all_projects`); used on SIGINT/SIGTERM. Returns once every round loop
    /// has ended.
    pub async fn shutdown(&self) {
        let mut handles = Vec::new();
        {
            let mut state = self.lock();
            for p in &mut state.projects {
                p.stop_all(&mut handles);
                p.started = false;
            }
            state.projects.clear();
        }
        join_all(handles).await;
    }
}

impl ActionHandler for DaemonHandle {
    async fn handle(&self, action: Action) -> Result<Reply, ActionError> {
        match action {
            Action::ObjAdd { file } => {
                let parsed = etmem_config::load_for_add(&file)
                    .map_err(|e| ActionError::new(e.result(), e.to_string()))?;
                self.add_config(&parsed).await
            }
            Action::ObjDel { file } => {
                let ids = etmem_config::load_for_del(&file)
                    .map_err(|e| ActionError::new(e.result(), e.to_string()))?;
                self.del_objects(&DelTargets {
                    projects: ids.projects,
                    engines: ids.engines,
                    tasks: ids.tasks,
                })
                .await
            }
            Action::ProjectStart { project } => self.start_project(&project).await,
            Action::ProjectStop { project } => self.stop_project(&project).await,
            Action::ProjectShow { project } => Ok(self.show(project.as_deref())),
            Action::EngineCmd {
                project,
                engine,
                cmd,
                task,
            } => self.engine_command(&project, &engine, &cmd, task.as_deref()),
        }
    }
}
