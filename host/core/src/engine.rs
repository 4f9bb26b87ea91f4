//! Engines as the daemon registers them: the [`EngineRegistry`] (built-in engine types by
//! `[engine] name=`, loaders for third-party files by extension, the fetch directory), the
//! host-side [`TaskInfo`], and how the params of an engine and a task are built from their
//! config sections (see [`crate::plugin`] for the rules).
//!
//! An engine decides; it never sleeps, never spawns and never touches the kernel. The host
//! (`scheduler.rs`) owns the clock, resolves the pids, runs the scan passes, calls `plan`
//! and checks every action. This module builds nothing at run time but engine instances.

use crate::plugin::builtin::BuiltinInstance;
use crate::plugin::{CallError, DEFAULT_FETCH_DIR, EngineInstance, EngineLoader, HostRef, Params};
use crate::record::Recorder;
use etmem_config::{
    EngineConf, EngineKind, ProjectConf, ScanConf, TaskConf, TaskEngineConf, TaskTarget,
};
use etmem_kernel::{Pid, UnixAddr, UnixError};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// A failure of the core around an engine (not the engine's own error).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// Anything, with its precise reason.
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
    /// `max_threads` after clamping to 1..=2·nprocs+1: how many of the task's processes
    /// are scanned or acted on at once
    pub max_threads: usize,
    /// the engine-specific task keys, typed (built-in engine types)
    pub keys: TaskEngineConf,
    /// the task's params, as the engine received them in `new-task`
    pub params: Params,
    /// the pid resolved once at add time (per-engine scheduling); `None` when the host
    /// re-resolves every round
    pub fixed_pid: Option<Pid>,
    /// `record_scans` / `record_rounds`: where the task's rounds are recorded
    pub record: Option<Arc<Recorder>>,
}

impl TaskInfo {
    /// The memdcd socket the task may hand page lists to (`send-page-list`): the `Sock` key
    /// of a memdcd task, or of a third-party task that has one; `None` without one.
    pub fn memdcd_sock(&self) -> Option<Result<UnixAddr, UnixError>> {
        let raw = match &self.keys {
            TaskEngineConf::Memdcd(m) => m.sock.as_str(),
            TaskEngineConf::Thirdparty(_) => self.params.raw("Sock")?,
            _ => return None,
        };
        Some(parse_sock(raw))
    }

    /// The task as the SDK describes it to an engine.
    pub fn sdk(&self) -> etmem_sdk::TaskInfo {
        etmem_sdk::TaskInfo {
            project: self.project.clone(),
            name: self.name.clone(),
            target_type: self.target.type_name().to_string(),
            target_value: self.target.value().to_string(),
        }
    }
}

/// A `Sock` value as a socket address: `-` is `@_memdcd.server`, `@name` the abstract
/// socket `name`, anything else a socket file's path, used in full. (C drops the first
/// character of every value, B15; `@_memdcd.server` names the same socket either way.)
pub fn parse_sock(value: &str) -> Result<UnixAddr, UnixError> {
    let value = if value == "-" {
        etmem_config::parse::MEMDCD_DEFAULT_SOCK
    } else {
        value
    };
    UnixAddr::parse(value)
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

/// How the host schedules an engine's rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduling {
    /// One round loop per started task, pids re-resolved with direct children every round
    /// (slide, memdcd, third-party engines).
    PerTask,
    /// One worker per engine running while any of its tasks is started, on the pids fixed at
    /// task add; each round scans every working task, then plans them in turn (cslide).
    PerEngine,
    /// A region project's task (damon, spec §5.5): no scan; the first round at start, then
    /// one every [`crate::scheduler::REGION_PERIOD`], each handing `plan` the task's pids
    /// (main pid, no children, as C) as scan results without pages. The kernel's DAMON does
    /// the work, through `damon-apply-scheme`.
    Region,
    /// One round loop per started task, every `interval`, with no process and no scan: the
    /// engine works through the cgroup capabilities (psi).
    Cgroup,
}

/// Builds a built-in engine instance from its params (already composed by the core) and
/// the host capabilities of that engine; calls the engine's `configure`.
pub type BuiltinFactory =
    Arc<dyn Fn(&Params, &HostRef) -> Result<Box<dyn EngineInstance>, CallError> + Send + Sync>;

#[derive(Clone)]
struct Entry {
    scheduling: Scheduling,
    factory: BuiltinFactory,
}

/// The engine types the daemon can instantiate: built-in types by `[engine] name=` value,
/// and loaders for third-party engine files by extension.
#[derive(Clone)]
pub struct EngineRegistry {
    entries: BTreeMap<String, Entry>,
    loaders: Vec<Arc<dyn EngineLoader>>,
    fetch_dir: PathBuf,
}

impl Default for EngineRegistry {
    fn default() -> Self {
        EngineRegistry {
            entries: BTreeMap::new(),
            loaders: Vec::new(),
            fetch_dir: PathBuf::from(DEFAULT_FETCH_DIR),
        }
    }
}

impl fmt::Debug for EngineRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineRegistry")
            .field("types", &self.entries.keys().collect::<Vec<_>>())
            .field(
                "loaders",
                &self
                    .loaders
                    .iter()
                    .map(|l| l.extension())
                    .collect::<Vec<_>>(),
            )
            .field("fetch_dir", &self.fetch_dir)
            .finish()
    }
}

impl EngineRegistry {
    /// A registry with no engine type and no loader.
    pub fn empty() -> EngineRegistry {
        EngineRegistry::default()
    }

    /// The engines compiled into this crate: none. The first-party engines live in their
    /// own crates and are registered by the `etmemd` binary:
    ///
    /// ```text
    /// let mut r = EngineRegistry::builtin();
    /// r.register_builtin::<etmem_plugin_slide::Slide>("slide", Scheduling::PerTask);
    /// r.register_builtin::<etmem_plugin_cslide::Cslide>("cslide", Scheduling::PerEngine);
    /// r.add_loader(Arc::new(NativeLoader::default()));
    /// ```
    pub fn builtin() -> EngineRegistry {
        EngineRegistry::empty()
    }

    /// Registers (or replaces) the built-in engine type `type_name` (an `[engine] name=`
    /// value the config accepts: `slide`, `cslide`, `memdcd`, `damon`, `psi`), implemented
    /// by the SDK engine `E` and scheduled as `scheduling`. Its calls run through
    /// [`etmem_sdk::runtime::Runner`]; a panic is caught and quarantines the engine.
    pub fn register_builtin<E: etmem_sdk::Engine>(
        &mut self,
        type_name: impl Into<String>,
        scheduling: Scheduling,
    ) {
        let name: String = type_name.into();
        let shown = name.clone();
        self.register_factory(
            name,
            scheduling,
            Arc::new(move |params: &Params, host: &HostRef| {
                BuiltinInstance::<E>::configure(&shown, params, host)
                    .map(|i| Box::new(i) as Box<dyn EngineInstance>)
            }),
        );
    }

    /// Registers (or replaces) `type_name` with any factory of [`EngineInstance`]s (tests
    /// use it for engines that fault in ways the SDK runner cannot).
    pub fn register_factory(
        &mut self,
        type_name: impl Into<String>,
        scheduling: Scheduling,
        factory: BuiltinFactory,
    ) {
        self.entries.insert(
            type_name.into(),
            Entry {
                scheduling,
                factory,
            },
        );
    }

    /// Adds a loader for third-party engine files; the file's extension picks the loader
    /// (a later loader for the same extension replaces the earlier one).
    pub fn add_loader(&mut self, loader: Arc<dyn EngineLoader>) {
        self.loaders.retain(|l| l.extension() != loader.extension());
        self.loaders.push(loader);
    }

    /// Where relative `libname`s are looked up (default `/usr/lib/etmem_fetch`).
    pub fn set_fetch_dir(&mut self, dir: impl Into<PathBuf>) {
        self.fetch_dir = dir.into();
    }

    /// The fetch directory.
    pub fn fetch_dir(&self) -> &Path {
        &self.fetch_dir
    }

    /// The scheduling and factory of built-in `type_name`, if registered.
    pub(crate) fn get(&self, type_name: &str) -> Option<(Scheduling, BuiltinFactory)> {
        self.entries
            .get(type_name)
            .map(|e| (e.scheduling, e.factory.clone()))
    }

    /// The loader for files ending in `.ext`.
    pub(crate) fn loader(&self, ext: &str) -> Option<Arc<dyn EngineLoader>> {
        self.loaders.iter().find(|l| l.extension() == ext).cloned()
    }

    /// The extensions some loader handles.
    pub(crate) fn loader_extensions(&self) -> Vec<&'static str> {
        self.loaders.iter().map(|l| l.extension()).collect()
    }
}

/// `[engine]` keys the host keeps for itself.
pub const ENGINE_HOST_KEYS: &[&str] = &[
    "name",
    "project",
    "eng_name",
    "libname",
    "ops_name",
    etmem_config::parse::ROUND_QUOTA_KEY,
];

/// `[task]` keys the host keeps for itself.
pub const TASK_HOST_KEYS: &[&str] = &[
    "name",
    "project",
    "engine",
    "type",
    "value",
    "max_threads",
    "swap_flag",
    etmem_config::parse::RECORD_SCANS_KEY,
    etmem_config::parse::RECORD_ROUNDS_KEY,
];

/// The `configure` params of an engine (see [`crate::plugin`]): its section's own keys,
/// then the project keys engines need.
pub fn engine_params(conf: &EngineConf, project: &ProjectConf) -> Params {
    let mut pairs: Vec<(String, String)> = conf
        .raw
        .iter()
        .filter(|(k, _)| !ENGINE_HOST_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if let EngineKind::Cslide(c) = &conf.kind {
        for (k, v) in &mut pairs {
            if k == "hot_threshold" {
                *v = c.hot_threshold.to_string();
            }
        }
    }
    // the damon keys as the config read them (C's strtoul: `-1` is the maximum, B25)
    if let EngineKind::Damon(d) = &conf.kind {
        for (k, v) in &mut pairs {
            let parsed = match k.as_str() {
                "min_size" => d.min_size.to_string(),
                "max_size" => d.max_size.to_string(),
                "min_acc" => d.min_acc.to_string(),
                "max_acc" => d.max_acc.to_string(),
                "min_age" => d.min_age.to_string(),
                "max_age" => d.max_age.to_string(),
                _ => continue,
            };
            *v = parsed;
        }
    }
    if let ScanConf::Page {
        loops,
        interval,
        sleep,
    } = project.scan
    {
        pairs.push(("loop".into(), loops.to_string()));
        pairs.push(("interval".into(), interval.to_string()));
        pairs.push(("sleep".into(), sleep.to_string()));
    }
    if let ScanConf::Region {
        sample_interval,
        aggr_interval,
        update_interval,
        min_nr_regions,
        max_nr_regions,
    } = project.scan
    {
        pairs.push(("sample_interval".into(), sample_interval.to_string()));
        pairs.push(("aggr_interval".into(), aggr_interval.to_string()));
        pairs.push(("update_interval".into(), update_interval.to_string()));
        pairs.push(("min_nr_regions".into(), min_nr_regions.to_string()));
        pairs.push(("max_nr_regions".into(), max_nr_regions.to_string()));
    }
    if let Some(t) = project.sysmem_threshold {
        pairs.push(("sysmem_threshold".into(), t.to_string()));
    }
    if let Some(w) = project.swapcache_wmark {
        pairs.push(("swapcache_high_wmark".into(), w.high.to_string()));
        pairs.push(("swapcache_low_wmark".into(), w.low.to_string()));
    }
    Params::from_pairs(pairs)
}

/// The `new-task` params of a task (see [`crate::plugin`]). A psi task's keys go as the
/// config layer read them (C's `strtoul` forms written in decimal, defaults filled in).
pub fn task_params(conf: &TaskConf) -> Params {
    if let TaskEngineConf::Psi(p) = &conf.engine_keys {
        return Params::from_pairs([
            ("pressure", p.pressure.to_string()),
            ("reclaim_rate", p.reclaim_rate.to_string()),
            ("reclaim_rate_max", p.reclaim_rate_max.to_string()),
            ("reclaim_rate_min", p.reclaim_rate_min.to_string()),
            ("limit_min_ratio", p.limit_min_ratio.to_string()),
            ("limit_min_bytes", p.limit_min_bytes.to_string()),
            ("reclaim_max_bytes", p.reclaim_max_bytes.to_string()),
            ("cg_dir", p.cg_dir.clone()),
        ]);
    }
    conf.raw
        .iter()
        .filter(|(k, _)| !TASK_HOST_KEYS.contains(&k.as_str()))
        .cloned()
        .collect()
}
