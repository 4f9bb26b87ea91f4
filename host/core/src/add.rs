//! `obj add` validation: the whole file is checked against the daemon's objects plus the
//! file's own new objects before anything is applied (all-or-nothing, a deliberate
//! difference from C).
//!
//! Checks run in C's processing order, `[project]` → `[engine]` → `[task]`, each group in
//! file order, and the first failure is the answer. These are the checks that need
//! context (parent objects, the project's `loop` and `scan_type`, the machine's CPUs and
//! NUMA nodes, whether a pid exists); everything that depends on the file alone was checked
//! by `etmem-config`. This module changes nothing: it returns a [`Plan`].

use crate::action::ActionError;
use crate::engine::{
    BuiltinFactory, EngineRegistry, Scheduling, TaskInfo, engine_params, task_params,
};
use crate::model::State;
use crate::plugin::{EngineLoader, LoadError, Params, check_library};
use crate::record::Recorder;
use crate::scheduler::process_target;
use etmem_config::{
    ConfigFile, EngineConf, EngineKind, ProjectConf, ScanConf, SectionPos, TaskConf, TaskEngineConf,
};
use etmem_kernel::Kernel;
use etmem_proto::OptResult;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a new engine's instance comes from.
#[derive(Clone)]
pub(crate) enum Source {
    /// a registered built-in type
    Builtin(BuiltinFactory),
    /// a third-party file, checked, with the loader for its extension
    Library {
        path: PathBuf,
        ops_name: String,
        loader: Arc<dyn EngineLoader>,
    },
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin(_) => f.write_str("Builtin"),
            Source::Library { path, ops_name, .. } => f
                .debug_struct("Library")
                .field("path", path)
                .field("ops_name", ops_name)
                .finish(),
        }
    }
}

/// A checked engine, ready to build (its `configure` is called by the daemon).
#[derive(Debug)]
pub(crate) struct NewEngine {
    pub project: String,
    pub name: String,
    pub conf: EngineConf,
    pub scheduling: Scheduling,
    pub source: Source,
    pub params: Params,
    /// the project's `dry_run`: the host moves nothing this engine decides
    pub dry_run: bool,
    /// where the section is, for errors
    pub at: String,
}

/// A checked task, ready to hand to its engine (`new-task`).
#[derive(Debug)]
pub(crate) struct NewTask {
    pub info: TaskInfo,
    /// where the section is, for errors
    pub at: String,
}

/// Everything a file adds, checked.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub projects: Vec<ProjectConf>,
    pub engines: Vec<NewEngine>,
    pub tasks: Vec<NewTask>,
}

/// Where a section is, for error details: ``/etc/etmem/a.ini: [task] #1 (line 12)``.
fn loc(file: &ConfigFile, kind: &str, pos: &SectionPos) -> String {
    let line = pos.line.map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("{}: [{kind}] #{}{line}", file.path.display(), pos.index)
}

/// The `scan_type` an engine type needs (spec B7), `None` when any will do.
fn required_scan(kind: &EngineKind) -> Option<&'static str> {
    match kind {
        EngineKind::Slide | EngineKind::Cslide(_) | EngineKind::Memdcd => Some("page"),
        EngineKind::Psi => Some("psi"),
        EngineKind::Damon(_) => Some("region"),
        EngineKind::Thirdparty(_) => None,
    }
}

/// Checks `file` against `state`; see the module docs.
pub(crate) fn plan(
    file: &ConfigFile,
    state: &State,
    registry: &EngineRegistry,
    kernel: &dyn Kernel,
) -> Result<Plan, ActionError> {
    if file.projects.is_empty() && file.engines.is_empty() && file.tasks.is_empty() {
        return Err(ActionError::new(
            OptResult::Inval,
            format!(
                "{}: no [project], [engine] or [task] section",
                file.path.display()
            ),
        ));
    }
    let mut plan = Plan::default();

    for p in &file.projects {
        if state.project(&p.name).is_some() {
            return Err(ActionError::new(
                OptResult::ProExisted,
                format!(
                    "{}: project `{}` already exists",
                    loc(file, "project", &p.pos),
                    p.name
                ),
            ));
        }
        if plan.projects.iter().any(|q| q.name == p.name) {
            return Err(ActionError::new(
                OptResult::ProExisted,
                format!(
                    "{}: project `{}` is defined twice in this file",
                    loc(file, "project", &p.pos),
                    p.name
                ),
            ));
        }
        plan.projects.push(p.clone());
    }

    let mut numa_nodes: Option<Vec<u32>> = None;
    for e in &file.engines {
        let at = loc(file, "engine", &e.pos);
        let name = e.name();
        let project = state
            .project(&e.project)
            .map(|p| &p.conf)
            .or_else(|| plan.projects.iter().find(|p| p.name == e.project))
            .ok_or_else(|| {
                ActionError::new(
                    OptResult::ProNoExist,
                    format!(
                        "{at}: engine `{name}`: project `{}` does not exist",
                        e.project
                    ),
                )
            })?;
        let exists = state
            .project(&e.project)
            .is_some_and(|p| p.engine(name).is_some());
        if exists {
            return Err(ActionError::new(
                OptResult::EngExisted,
                format!(
                    "{at}: engine `{name}` already exists in project `{}`",
                    e.project
                ),
            ));
        }
        if plan
            .engines
            .iter()
            .any(|n| n.project == e.project && n.name == name)
        {
            return Err(ActionError::new(
                OptResult::EngExisted,
                format!(
                    "{at}: engine `{name}` of project `{}` is defined twice in this file",
                    e.project
                ),
            ));
        }
        let inter = |msg: String| ActionError::new(OptResult::InterErr, format!("{at}: {msg}"));
        let load_err =
            |err: LoadError| inter(format!("engine `{name}` in project `{}`: {err}", e.project));
        if let EngineKind::Thirdparty(t) = &e.kind {
            if let ScanConf::Region { .. } = project.scan {
                // C starts a region project only when every engine is damon (spec §5.5)
                return Err(inter(format!(
                    "engine `{name}` in project `{}`: a project with scan_type=region takes \
                     only the damon engine",
                    e.project
                )));
            }
            let (path, ext) = check_library(&t.libname, registry.fetch_dir()).map_err(load_err)?;
            let loader = registry.loader(ext).ok_or_else(|| {
                let have = registry.loader_extensions();
                load_err(LoadError::Unsupported {
                    path: path.display().to_string(),
                    reason: format!(
                        "this daemon has no loader for `.{ext}` engines (loaders: {})",
                        if have.is_empty() {
                            "none".to_string()
                        } else {
                            have.join(", ")
                        }
                    ),
                })
            })?;
            plan.engines.push(NewEngine {
                project: e.project.clone(),
                name: name.to_string(),
                conf: e.clone(),
                scheduling: Scheduling::PerTask,
                source: Source::Library {
                    path,
                    ops_name: t.ops_name.clone(),
                    loader,
                },
                params: engine_params(e, project),
                dry_run: project.dry_run,
                at: at.clone(),
            });
            continue;
        }
        let type_name = e.kind.type_name();
        if let Some(needed) = required_scan(&e.kind)
            && needed != project.scan.type_name()
        {
            return Err(inter(format!(
                "engine `{name}` in project `{}`: a {type_name} engine needs a project with \
                 scan_type={needed}, found scan_type={}",
                e.project,
                project.scan.type_name()
            )));
        }
        let Some((scheduling, factory)) = registry.get(type_name) else {
            return Err(inter(format!(
                "engine `{name}` in project `{}`: the {type_name} engine is not implemented yet",
                e.project
            )));
        };
        if let EngineKind::Psi = e.kind {
            // C: engine add fails when /proc/pressure/memory cannot be opened
            kernel.psi_availability().map_err(|why| {
                inter(format!("engine `{name}` in project `{}`: {why}", e.project))
            })?;
        }
        let mut conf = e.clone();
        if let EngineKind::Cslide(c) = &mut conf.kind {
            let nodes = match &numa_nodes {
                Some(n) => n.clone(),
                None => {
                    let n = kernel.numa_nodes().map_err(|err| {
                        inter(format!(
                            "engine `{name}` in project `{}`: cannot read the machine's NUMA \
                             nodes: {err}",
                            e.project
                        ))
                    })?;
                    numa_nodes = Some(n.clone());
                    n
                }
            };
            check_node_pairs(&c.node_pairs, &nodes).map_err(|why| {
                inter(format!(
                    "engine `{name}` in project `{}`: key `node_pair`: {why}",
                    e.project
                ))
            })?;
            if let ScanConf::Page { loops, .. } = project.scan {
                let max = u64::from(loops) * 3 + 1;
                if c.hot_threshold > max {
                    tracing::info!(
                        "engine `{name}` in project `{}`: hot_threshold {} is above loop*3+1, \
                         using {max}",
                        e.project,
                        c.hot_threshold
                    );
                    c.hot_threshold = max;
                }
            }
        }
        let params = engine_params(&conf, project);
        plan.engines.push(NewEngine {
            project: e.project.clone(),
            name: name.to_string(),
            conf,
            scheduling,
            source: Source::Builtin(factory),
            params,
            dry_run: project.dry_run,
            at: at.clone(),
        });
    }

    let mut nr_cpus: Option<usize> = None;
    for t in &file.tasks {
        let at = loc(file, "task", &t.pos);
        let project = state
            .project(&t.project)
            .map(|p| &p.conf)
            .or_else(|| plan.projects.iter().find(|p| p.name == t.project))
            .ok_or_else(|| {
                ActionError::new(
                    OptResult::ProNoExist,
                    format!(
                        "{at}: task `{}`: project `{}` does not exist",
                        t.name, t.project
                    ),
                )
            })?;
        let existing = state.project(&t.project).and_then(|p| p.engine(&t.engine));
        let (engine_kind, scheduling) = match existing {
            Some(e) => (&e.conf.kind, e.scheduling),
            None => match plan
                .engines
                .iter()
                .find(|e| e.project == t.project && e.name == t.engine)
            {
                Some(e) => (&e.conf.kind, e.scheduling),
                None => {
                    return Err(ActionError::new(
                        OptResult::EngNoExist,
                        format!(
                            "{at}: task `{}`: engine `{}` does not exist in project `{}`",
                            t.name, t.engine, t.project
                        ),
                    ));
                }
            },
        };
        let duplicate_in_daemon = existing.is_some_and(|e| e.task_index(&t.name).is_some());
        let duplicate_in_file = plan.tasks.iter().any(|o| {
            o.info.project == t.project && o.info.engine == t.engine && o.info.name == t.name
        });
        if duplicate_in_daemon || duplicate_in_file {
            let how = if duplicate_in_daemon {
                "already exists in"
            } else {
                "is defined twice in this file for"
            };
            return Err(ActionError::new(
                OptResult::TaskExisted,
                format!(
                    "{at}: task `{}` {how} engine `{}` of project `{}`",
                    t.name, t.engine, t.project
                ),
            ));
        }
        let inter = |msg: String| {
            ActionError::new(
                OptResult::InterErr,
                format!("{at}: task `{}` in project `{}`: {msg}", t.name, t.project),
            )
        };
        if let Some(why) = existing.and_then(|e| e.cell.failure()) {
            let cell = existing.map(|e| e.cell.clone());
            if let Some(cell) = cell {
                return Err(ActionError::new(
                    OptResult::InterErr,
                    format!("{at}: task `{}`: {}", t.name, cell.failed_text(&why)),
                ));
            }
        }
        check_task_keys(t, engine_kind, &project.scan).map_err(inter)?;
        let max_threads = clamp_threads(t, kernel, &mut nr_cpus).map_err(inter)?;
        let fixed_pid = match scheduling {
            Scheduling::PerTask | Scheduling::Region | Scheduling::Cgroup => None,
            Scheduling::PerEngine => {
                let pids = kernel
                    .resolve(&process_target(&t.target), false)
                    .map_err(|err| {
                        inter(format!(
                            "cannot resolve type={} value={} at add time: {err}",
                            t.target.type_name(),
                            t.target.value()
                        ))
                    })?;
                pids.first().copied()
            }
        };
        plan.tasks.push(NewTask {
            info: TaskInfo {
                project: t.project.clone(),
                engine: t.engine.clone(),
                name: t.name.clone(),
                target: t.target.clone(),
                swap_flag: t.swap_flag,
                max_threads,
                keys: t.engine_keys.clone(),
                params: task_params(t),
                fixed_pid,
                record: t
                    .record
                    .as_ref()
                    .map(|r| Arc::new(Recorder::new(&r.path, r.rounds))),
            },
            at: at.clone(),
        });
    }
    Ok(plan)
}

/// Every node of the machine exactly once, and no other node.
fn check_node_pairs(pairs: &[(u32, u32)], nodes: &[u32]) -> Result<(), String> {
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let mut seen: Vec<u32> = Vec::new();
    for &(hot, cold) in pairs {
        for n in [hot, cold] {
            if !nodes.contains(&n) {
                return Err(format!(
                    "node {n} is not a NUMA node of this machine (nodes {})",
                    list(nodes)
                ));
            }
            if seen.contains(&n) {
                return Err(format!("node {n} appears more than once"));
            }
            seen.push(n);
        }
    }
    if let Some(missing) = nodes.iter().find(|n| !seen.contains(n)) {
        return Err(format!(
            "node {missing} of this machine is in no pair (every node of {} must appear \
             exactly once)",
            list(nodes)
        ));
    }
    Ok(())
}

/// The task's keys against its engine's type and its project.
fn check_task_keys(t: &TaskConf, kind: &EngineKind, scan: &ScanConf) -> Result<(), String> {
    match (kind, &t.engine_keys) {
        (EngineKind::Slide, TaskEngineConf::Slide(s)) => {
            let loops = match *scan {
                ScanConf::Page { loops, .. } => loops,
                _ => 0,
            };
            let max = u64::from(loops) * 3;
            if u64::from(s.t) > max {
                return Err(format!(
                    "key `T`: expected 0..={max} (loop*3), found {}",
                    s.t
                ));
            }
            Ok(())
        }
        (EngineKind::Memdcd, TaskEngineConf::Memdcd(m)) => crate::engine::parse_sock(&m.sock)
            .map(|_| ())
            .map_err(|e| format!("key `Sock`: {e}")),
        (EngineKind::Cslide(_), TaskEngineConf::Cslide(_))
        | (EngineKind::Damon(_), TaskEngineConf::Damon)
        | (EngineKind::Psi, TaskEngineConf::Psi(_))
        | (EngineKind::Thirdparty(_), TaskEngineConf::Thirdparty(_)) => Ok(()),
        (kind, keys) => {
            let keys_type = match keys {
                TaskEngineConf::Slide(_) => "slide",
                TaskEngineConf::Cslide(_) => "cslide",
                TaskEngineConf::Memdcd(_) => "memdcd",
                TaskEngineConf::Psi(_) => "psi",
                TaskEngineConf::Damon => "damon",
                TaskEngineConf::Thirdparty(_) => "thirdparty",
            };
            Err(format!(
                "its keys are those of a {keys_type} task, but engine `{}` is of type {}",
                t.engine,
                kind.type_name()
            ))
        }
    }
}

/// `max_threads`: ≤ 0 → 1, above 2·nprocs+1 → 2·nprocs+1, each with a warning (as C).
fn clamp_threads(
    t: &TaskConf,
    kernel: &dyn Kernel,
    nr_cpus: &mut Option<usize>,
) -> Result<usize, String> {
    if t.max_threads <= 0 {
        tracing::warn!(
            "task `{}` in project `{}`: max_threads {} is below 1, using 1",
            t.name,
            t.project,
            t.max_threads
        );
        return Ok(1);
    }
    if t.max_threads <= 3 {
        return Ok(t.max_threads as usize);
    }
    let cpus = match nr_cpus {
        Some(n) => *n,
        None => {
            let n = kernel
                .nr_cpus()
                .map_err(|e| format!("cannot read the number of CPUs for max_threads: {e}"))?;
            *nr_cpus = Some(n);
            n
        }
    };
    let cap = 2 * cpus + 1;
    let wanted = usize::try_from(t.max_threads).unwrap_or(usize::MAX);
    if wanted > cap {
        tracing::warn!(
            "task `{}` in project `{}`: max_threads {} is above 2*nprocs+1 ({cap}), using {cap}",
            t.name,
            t.project,
            t.max_threads
        );
        return Ok(cap);
    }
    Ok(wanted)
}
