//! Engines as the host sees them: the [`BuiltinEngine`] trait, the values handed to an
//! engine each round ([`RoundContext`]), and the [`EngineRegistry`] that maps an
//! `[engine] name=` to an implementation and to the way the host schedules it.
//!
//! An engine decides; it never sleeps, never spawns and never touches the kernel. The host
//! (the scheduler in `scheduler.rs`) owns the clock, resolves the pids, runs the scan passes
//! and calls [`BuiltinEngine::round`] once per round. The plug-in SDK will later provide
//! engines behind this same trait.

use etmem_config::{EngineConf, ProjectConf, TaskEngineConf, TaskTarget};
use etmem_kernel::Pid;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// An engine's expected failure: a value, reported with the object it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// The engine has no private commands at all (C: `eng_mgt_func` is NULL).
    #[error("engine `{engine}` has no private commands")]
    NoCommands {
        /// engine name
        engine: String,
    },
    /// Anything else, with its precise reason.
    #[error("{0}")]
    Failed(String),
}

/// A task as the engine and the scheduler see it: the `[task]` values after the core's
/// contextual checks (clamped `max_threads`, pid resolved at add time when the engine needs
/// it). Immutable once added.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    /// project name
    pub project: String,
    /// engine name (type name, or `eng_name`)
    pub engine: String,
    /// task name
    pub name: String,
    /// `type` + `value`
    pub target: TaskTarget,
    /// `swap_flag`
    pub swap_flag: bool,
    /// `max_threads` after clamping to 1..=2·nprocs+1
    pub max_threads: usize,
    /// the engine-specific task keys
    pub keys: TaskEngineConf,
    /// the pid resolved once at add time (cslide); `None` when the engine re-resolves every
    /// round
    pub fixed_pid: Option<Pid>,
}

/// The page-scan timing of a project (`scan_type=page`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanParams {
    /// `loop`: scan passes per round
    pub loops: u32,
    /// `interval`: from the end of one round to the start of the next
    pub interval: Duration,
    /// `sleep`: pause after each scan pass
    pub sleep: Duration,
}

/// One task's share of a round: the task and the pids the host resolved for it.
#[derive(Debug, Clone)]
pub struct RoundTarget {
    /// the task
    pub task: Arc<TaskInfo>,
    /// the pids scanned this round (main pid first, then direct children for slide)
    pub pids: Vec<Pid>,
}

/// What the host hands an engine at the end of a round's scan passes.
///
/// This is the seam where scan results (and later the swap/migrate capabilities) arrive;
/// today the scan passes gather nothing, so an engine only sees who was scanned.
#[derive(Debug, Clone)]
pub struct RoundContext {
    /// project name
    pub project: String,
    /// engine name
    pub engine: String,
    /// 1-based round number (per task for slide, per engine for cslide)
    pub round: u64,
    /// when this round began (after the `interval` wait), on tokio's clock
    pub started_at: tokio::time::Instant,
    /// the project's scan timing
    pub scan: ScanParams,
    /// the tasks of this round with their pids (one for slide, every working task for cslide)
    pub targets: Vec<RoundTarget>,
}

/// An `etmem engine <cmd>` request, after the core's checks (project started, engine and
/// task exist).
#[derive(Debug, Clone)]
pub struct CommandRequest<'a> {
    /// project name
    pub project: &'a str,
    /// engine name
    pub engine: &'a str,
    /// the private command
    pub cmd: &'a str,
    /// the task named with `-t`
    pub task: Option<&'a TaskInfo>,
    /// the engine's started tasks, newest first
    pub working: &'a [Arc<TaskInfo>],
}

/// How the host schedules an engine's rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// One round loop per started task, pids re-resolved with direct children every round
    /// (slide, memdcd).
    PerTask,
    /// One worker per engine running while any of its tasks is started, on the pids fixed at
    /// task add (cslide).
    PerEngine,
}

/// A built-in (or, later, plug-in) engine instance: one per `[engine]` object.
pub trait BuiltinEngine: Send + Sync + fmt::Debug {
    /// Called when a task starts (project start, or task add into a started project).
    /// An error fails that start.
    fn start_task(&self, _task: &TaskInfo) -> Result<(), EngineError> {
        Ok(())
    }

    /// Called when a started task stops (project stop, delete, rollback).
    fn stop_task(&self, _task: &TaskInfo) {}

    /// The decision step of one round, after the scan passes.
    fn round(&self, ctx: &RoundContext) -> Result<(), EngineError>;

    /// A private command (`etmem engine <cmd>`); the text returned is sent to the client.
    fn command(&self, req: &CommandRequest<'_>) -> Result<String, EngineError> {
        Err(EngineError::NoCommands {
            engine: req.engine.to_string(),
        })
    }
}

/// Builds an engine instance from its `[engine]` section (already checked by the core;
/// cslide's `hot_threshold` already clamped) and its project.
pub type EngineFactory = Arc<
    dyn Fn(&EngineConf, &ProjectConf) -> Result<Arc<dyn BuiltinEngine>, EngineError> + Send + Sync,
>;

#[derive(Clone)]
struct Entry {
    scheduling: Scheduling,
    factory: EngineFactory,
}

/// The engine types the daemon can instantiate, by `[engine] name=` value.
#[derive(Clone, Default)]
pub struct EngineRegistry {
    entries: BTreeMap<String, Entry>,
}

impl fmt::Debug for EngineRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineRegistry")
            .field("types", &self.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl EngineRegistry {
    /// A registry with no engine type.
    pub fn empty() -> EngineRegistry {
        EngineRegistry::default()
    }

    /// The built-in engines: `slide` (per task) and `cslide` (per engine).
    pub fn builtin() -> EngineRegistry {
        let mut r = EngineRegistry::empty();
        r.register(
            "slide",
            Scheduling::PerTask,
            Arc::new(|_: &EngineConf, _: &ProjectConf| {
                Ok(Arc::new(SlideEngine) as Arc<dyn BuiltinEngine>)
            }),
        );
        r.register(
            "cslide",
            Scheduling::PerEngine,
            Arc::new(|_: &EngineConf, _: &ProjectConf| {
                Ok(Arc::new(CslideEngine) as Arc<dyn BuiltinEngine>)
            }),
        );
        r
    }

    /// Registers (or replaces) the engine type `type_name`.
    pub fn register(
        &mut self,
        type_name: impl Into<String>,
        scheduling: Scheduling,
        factory: EngineFactory,
    ) {
        self.entries.insert(
            type_name.into(),
            Entry {
                scheduling,
                factory,
            },
        );
    }

    /// The scheduling and factory of `type_name`, if registered.
    pub(crate) fn get(&self, type_name: &str) -> Option<(Scheduling, EngineFactory)> {
        self.entries
            .get(type_name)
            .map(|e| (e.scheduling, e.factory.clone()))
    }
}

/// The `slide` engine until the scan capability and the slide policy plug-in arrive: its
/// round reports that nothing was scanned.
#[derive(Debug)]
pub struct SlideEngine;

impl BuiltinEngine for SlideEngine {
    fn round(&self, ctx: &RoundContext) -> Result<(), EngineError> {
        for t in &ctx.targets {
            tracing::info!(
                "project `{}` task `{}`: round {} (slide, pids {:?}): no scan capability yet",
                ctx.project,
                t.task.name,
                ctx.round,
                t.pids
            );
        }
        Ok(())
    }
}

/// The `cslide` engine until the scan and migrate capabilities arrive: its round reports
/// that nothing was scanned, and its commands say why they have nothing to show.
#[derive(Debug)]
pub struct CslideEngine;

impl BuiltinEngine for CslideEngine {
    fn round(&self, ctx: &RoundContext) -> Result<(), EngineError> {
        let tasks: Vec<&str> = ctx.targets.iter().map(|t| t.task.name.as_str()).collect();
        tracing::info!(
            "project `{}` engine `{}`: round {} (cslide, tasks {:?}): no scan capability yet",
            ctx.project,
            ctx.engine,
            ctx.round,
            tasks
        );
        Ok(())
    }

    fn command(&self, req: &CommandRequest<'_>) -> Result<String, EngineError> {
        let what = match req.cmd {
            "showhostpages" => "host page statistics".to_string(),
            "showtaskpages" => match req.task {
                None => {
                    return Err(EngineError::Failed(format!(
                        "engine `{}` in project `{}`: `showtaskpages` needs a task (-t)",
                        req.engine, req.project
                    )));
                }
                Some(t) => format!("page statistics of task `{}`", t.name),
            },
            other => {
                return Err(EngineError::Failed(format!(
                    "engine `{}` in project `{}`: unknown command `{other}` \
                     (known: showtaskpages, showhostpages)",
                    req.engine, req.project
                )));
            }
        };
        if req.working.is_empty() {
            return Err(EngineError::Failed(format!(
                "engine `{}` in project `{}`: no task is working",
                req.engine, req.project
            )));
        }
        Err(EngineError::Failed(format!(
            "engine `{}` in project `{}`: `{}`: no {what} yet: cslide scanning is not \
             implemented yet",
            req.engine, req.project, req.cmd
        )))
    }
}
