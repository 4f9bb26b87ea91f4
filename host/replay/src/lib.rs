//! etmem-replay: the rounds etmemd recorded for a task (`[task] record_scans=/abs/file`,
//! `record_rounds=N`; format in [`etmem_host::record`]) run again through an engine, offline:
//! the built-in `slide` or `cslide`, a native `.so` (host/core's loader) or a `.wasm`
//! component (host/wasm's, feature `wasm`). Each round prints the actions the engine would
//! take and whether they are the ones recorded.
//!
//! The engine sees what it saw in the daemon: the recorded params (plus `--engine-key` and
//! `--task-key` overrides, which win), the rounds in order, the scans, and the answers the
//! host gave it (`system-facts`, `task-memory`, `task-page-nodes`). Requests (`request-*`,
//! `reclaim-swapcache`) are accepted and printed, never carried out. This crate must not
//! touch processes or the kernel.

use etmem_host::plugin::native::NativeLoader;
use etmem_host::plugin::{CallError, EngineInstance, EngineLoader, HostRef, LoadError, Params};
use etmem_host::record::{HostAnswer, RecordError, RecordedRound};
use etmem_sdk::{
    Action, EngineError as SdkError, Host, LogLevel, Pid, ProcessMemory, Round, ScanResult,
    SystemFacts, TaskInfo, Vma,
};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// Which engine replays the rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineChoice {
    /// the built-in slide
    Slide,
    /// the built-in cslide
    Cslide,
    /// a native `.so` or a `.wasm` component, with the engine it exports (`None`: from the
    /// file name, `libidle_swap.so` and `idle_swap.wasm` export `idle_swap`)
    File {
        /// the file
        path: PathBuf,
        /// `--ops-name`
        ops_name: Option<String>,
    },
}

impl EngineChoice {
    /// `slide`, `cslide`, or a path ending in `.so` or `.wasm`.
    pub fn parse(text: &str, ops_name: Option<String>) -> Result<EngineChoice, ReplayError> {
        match text {
            "slide" if ops_name.is_none() => Ok(EngineChoice::Slide),
            "cslide" if ops_name.is_none() => Ok(EngineChoice::Cslide),
            "slide" | "cslide" => Err(ReplayError::Usage(format!(
                "--ops-name names the engine of a .so or .wasm file, not of the built-in `{text}`"
            ))),
            _ if text.ends_with(".so") || text.ends_with(".wasm") => Ok(EngineChoice::File {
                path: PathBuf::from(text),
                ops_name,
            }),
            _ => Err(ReplayError::Usage(format!(
                "--engine `{text}`: expected slide, cslide, or a file ending in .so or .wasm"
            ))),
        }
    }
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// A bad command line.
    #[error("{0}")]
    Usage(String),
    /// The record file.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The engine could not be loaded or configured.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The engine refused a task or faulted.
    #[error("engine `{engine}`: {what}: {error}")]
    Engine {
        /// the engine as given
        engine: String,
        /// the call, e.g. `task `web`: new-task`
        what: String,
        /// what the engine said
        error: CallError,
    },
}

/// One replayed round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayedRound {
    /// the record's round number
    pub round: u64,
    /// the task
    pub task: String,
    /// scans and runs the engine received
    pub scans: usize,
    /// runs over all scans
    pub runs: usize,
    /// what the engine returned now
    pub actions: Result<Vec<Action>, String>,
    /// what it returned when recorded
    pub recorded: Vec<Action>,
    /// requests it made through the host (accepted, not carried out), as text
    pub requests: Vec<String>,
    /// its log lines, as text
    pub logs: Vec<String>,
}

impl ReplayedRound {
    /// True when the engine returned what it returned when recorded.
    pub fn same_as_recorded(&self) -> bool {
        self.actions.as_ref().is_ok_and(|a| *a == self.recorded)
    }
}

/// What the replay host answers within one round.
#[derive(Debug, Default)]
struct RoundData {
    task: String,
    scans: Vec<ScanResult>,
    answers: VecDeque<HostAnswer>,
    requests: Vec<String>,
    logs: Vec<String>,
}

/// The [`Host`] of a replay: answers from the round's record, keeps requests and logs.
#[derive(Debug, Default)]
pub struct ReplayHost {
    round: Mutex<RoundData>,
}

impl ReplayHost {
    fn data(&self) -> std::sync::MutexGuard<'_, RoundData> {
        self.round.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, task: &str, scans: Vec<ScanResult>, answers: Vec<HostAnswer>) {
        *self.data() = RoundData {
            task: task.to_string(),
            scans,
            answers: answers.into(),
            ..RoundData::default()
        };
    }

    /// The first recorded answer `pick` accepts, taken from the round's queue.
    fn answer<T>(&self, pick: impl Fn(&HostAnswer) -> Option<T>) -> Option<T> {
        let mut d = self.data();
        let i = d.answers.iter().position(|a| pick(a).is_some())?;
        d.answers.remove(i).and_then(|a| pick(&a))
    }
}

fn not_recorded(what: &str) -> SdkError {
    SdkError::Host(format!("{what}: not in the record of this round"))
}

impl Host for ReplayHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.data().logs.push(format!("{level:?}: {message}"));
    }
    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, SdkError> {
        Err(not_recorded(&format!(
            "task-vmas of pid {pid} of task `{task}`"
        )))
    }
    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, SdkError> {
        let d = self.data();
        if d.task == task {
            Ok(d.scans.clone())
        } else {
            Err(not_recorded(&format!("task-scan of task `{task}`")))
        }
    }
    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, SdkError> {
        self.answer(|a| match a {
            HostAnswer::TaskMemory { pid: p, answer } if *p == pid => Some(answer.clone()),
            _ => None,
        })
        .ok_or_else(|| not_recorded(&format!("task-memory of pid {pid} of task `{task}`")))?
        .map(|(rss_kb, swap_kb)| ProcessMemory { rss_kb, swap_kb })
        .map_err(SdkError::Host)
    }
    fn task_page_nodes(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<Vec<i32>, SdkError> {
        self.answer(|a| match a {
            HostAnswer::TaskPageNodes {
                pid: p,
                addrs: asked,
                answer,
            } if *p == pid && asked == addrs => Some(answer.clone()),
            _ => None,
        })
        .ok_or_else(|| not_recorded(&format!("task-page-nodes of pid {pid} of task `{task}`")))?
        .map_err(SdkError::Host)
    }
    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, SdkError> {
        self.data().requests.push(format!(
            "request-swap-out task `{task}` pid {pid}: {} page(s)",
            addrs.len()
        ));
        Ok(addrs.len() as u64)
    }
    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, SdkError> {
        self.data().requests.push(format!(
            "request-migrate task `{task}` pid {pid} to node {node}: {} page(s)",
            addrs.len()
        ));
        Ok(addrs.len() as u64)
    }
    fn system_facts(&self) -> SystemFacts {
        self.answer(|a| match a {
            HostAnswer::SystemFacts { meminfo, nodes } => {
                Some(HostAnswer::system_facts(meminfo, nodes))
            }
            _ => None,
        })
        .unwrap_or_default()
    }
    fn reclaim_swapcache(&self, task: &str, pid: Pid, low: u8, high: u8) -> Result<(), SdkError> {
        self.data().requests.push(format!(
            "reclaim-swapcache task `{task}` pid {pid}: low {low}% high {high}%"
        ));
        Ok(())
    }
    fn task_smaps_vmas(&self, task: &str, pid: Pid, _flags: &[&str]) -> Result<Vec<Vma>, SdkError> {
        Err(not_recorded(&format!(
            "task-smaps-vmas of pid {pid} of task `{task}`"
        )))
    }
    fn send_page_list(&self, task: &str, sock: &str, pages: &ScanResult) -> Result<u64, SdkError> {
        self.data().requests.push(format!(
            "send-page-list task `{task}` pid {} to `{sock}`: {} page(s)",
            pages.pid(),
            pages.len()
        ));
        Ok(pages.len().div_ceil(512) as u64)
    }
    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        _attrs: &etmem_sdk::DamonAttrs,
        scheme: &etmem_sdk::DamonScheme,
    ) -> Result<(), SdkError> {
        self.data().requests.push(format!(
            "damon-apply-scheme task `{task}` pid {pid}: {scheme:?}"
        ));
        Ok(())
    }
    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), SdkError> {
        self.data()
            .requests
            .push(format!("damon-remove-scheme task `{task}` pid {pid}"));
        Ok(())
    }
    fn cgroup_glob(&self, task: &str) -> Result<Vec<etmem_sdk::Cgroup>, SdkError> {
        Err(not_recorded(&format!("cgroup-glob of task `{task}`")))
    }
    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<etmem_sdk::CgroupMemory, SdkError> {
        Err(not_recorded(&format!(
            "cgroup-memory of cgroup `{cgroup}` of task `{task}`"
        )))
    }
    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<etmem_sdk::CgroupReclaimed, SdkError> {
        self.data().requests.push(format!(
            "cgroup-reclaim task `{task}` cgroup `{cgroup}`: {bytes} byte(s)"
        ));
        Ok(etmem_sdk::CgroupReclaimed {
            requested: bytes,
            reclaimed: 0,
            complete: false,
            dry_run: true,
        })
    }
}

/// The engine's name in messages and its `ops_name` for a file.
fn file_ops_name(path: &Path, given: Option<&str>) -> String {
    if let Some(n) = given {
        return n.to_string();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    match path.extension().and_then(|e| e.to_str()) {
        Some("so") => stem.strip_prefix("lib").unwrap_or(stem).to_string(),
        _ => stem.to_string(),
    }
}

fn load(
    choice: &EngineChoice,
    params: &Params,
    host: &HostRef,
) -> Result<Box<dyn EngineInstance>, ReplayError> {
    let configure = |engine: &str, error: CallError| {
        ReplayError::Load(LoadError::Configure {
            engine: engine.to_string(),
            error,
        })
    };
    match choice {
        EngineChoice::Slide => {
            etmem_host::plugin::load_builtin::<etmem_plugin_slide::Slide>("slide", params, host)
                .map_err(|e| configure("slide", e))
        }
        EngineChoice::Cslide => {
            etmem_host::plugin::load_builtin::<etmem_plugin_cslide::Cslide>("cslide", params, host)
                .map_err(|e| configure("cslide", e))
        }
        EngineChoice::File { path, ops_name } => {
            let ops = file_ops_name(path, ops_name.as_deref());
            let real = std::fs::canonicalize(path).map_err(|e| LoadError::File {
                path: path.display().to_string(),
                reason: format!("cannot resolve it: {e}"),
            })?;
            let loader: Box<dyn EngineLoader> = match real.extension().and_then(|e| e.to_str()) {
                Some("so") => Box::new(NativeLoader::new()),
                #[cfg(feature = "wasm")]
                Some("wasm") => Box::new(
                    etmem_host_wasm::WasmLoader::new(etmem_host_wasm::WasmOptions::default())
                        .map_err(|e| {
                            ReplayError::Usage(format!("wasm engines are unavailable: {e}"))
                        })?,
                ),
                _ => {
                    return Err(ReplayError::Load(LoadError::Unsupported {
                        path: real.display().to_string(),
                        reason: format!(
                            "this etmem-replay loads {}",
                            if cfg!(feature = "wasm") {
                                "`.so` and `.wasm` files"
                            } else {
                                "`.so` files (built without feature `wasm`)"
                            }
                        ),
                    }));
                }
            };
            Ok(loader.load(&real, &ops, &ops, params, host)?)
        }
    }
}

fn with_overrides(recorded: &[(String, String)], extra: &[(String, String)]) -> Params {
    recorded.iter().chain(extra).cloned().collect()
}

/// `--engine-key`/`--task-key` overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// appended to the recorded `[engine]` params (so they win)
    pub engine: Vec<(String, String)>,
    /// appended to every task's recorded params
    pub task: Vec<(String, String)>,
}

/// Replays `rounds` (in order) through `choice`: one engine configured with the first
/// line's engine params, each task added at its first line with that line's task params.
pub fn replay(
    choice: &EngineChoice,
    rounds: &[RecordedRound],
    overrides: &Overrides,
    file: &Path,
) -> Result<Vec<ReplayedRound>, ReplayError> {
    let Some(first) = rounds.first() else {
        return Ok(Vec::new());
    };
    let host = Arc::new(ReplayHost::default());
    let href: HostRef = host.clone();
    let shown = match choice {
        EngineChoice::Slide => "slide".to_string(),
        EngineChoice::Cslide => "cslide".to_string(),
        EngineChoice::File { path, .. } => path.display().to_string(),
    };
    let mut engine = load(
        choice,
        &with_overrides(&first.engine_params, &overrides.engine),
        &href,
    )?;
    let mut tasks: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        let line_err = |reason: String| {
            ReplayError::Record(RecordError::Line {
                path: file.to_path_buf(),
                line: i + 1,
                reason,
            })
        };
        if !tasks.contains(&r.task) {
            let info = TaskInfo {
                project: r.project.clone(),
                name: r.task.clone(),
                target_type: r.target_type.clone(),
                target_value: r.target_value.clone(),
            };
            let params = with_overrides(&r.task_params, &overrides.task);
            engine
                .new_task(&info, &params, &href)
                .map_err(|error| ReplayError::Engine {
                    engine: shown.clone(),
                    what: format!("task `{}`: new-task", r.task),
                    error,
                })?;
            tasks.push(r.task.clone());
        }
        let scans = r
            .scans
            .iter()
            .map(|s| s.to_scan())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| line_err(e.to_string()))?;
        let recorded = r
            .actions
            .iter()
            .map(|a| a.to_action())
            .collect::<Result<Vec<_>, _>>()
            .map_err(line_err)?;
        let runs = scans.iter().map(ScanResult::run_count).sum();
        host.set(&r.task, scans.clone(), r.host.clone());
        let round = Round {
            number: r.round,
            passes: r.passes,
        };
        let actions = match engine.plan(&r.task, &round, &scans, &href) {
            Ok(a) => Ok(a),
            Err(CallError::Engine(e)) => Err(e.to_string()),
            Err(error @ CallError::Fault(_)) => {
                return Err(ReplayError::Engine {
                    engine: shown,
                    what: format!("task `{}`: round {}: plan", r.task, r.round),
                    error,
                });
            }
        };
        let mut d = host.data();
        out.push(ReplayedRound {
            round: r.round,
            task: r.task.clone(),
            scans: scans.len(),
            runs,
            actions,
            recorded,
            requests: std::mem::take(&mut d.requests),
            logs: std::mem::take(&mut d.logs),
        });
    }
    Ok(out)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Ranges printed per action before `... and N more`.
const RANGES_SHOWN: usize = 8;

fn action_text(a: &Action) -> String {
    let bytes: u64 = a.runs().iter().map(|r| r.bytes()).sum();
    let mut s = match a {
        Action::SwapOut { pid, runs } => {
            format!("swap out pid {pid}: {} run(s), {}", runs.len(), mib(bytes))
        }
        Action::Migrate { pid, runs, node } => format!(
            "migrate pid {pid} to node {node}: {} run(s), {}",
            runs.len(),
            mib(bytes)
        ),
    };
    for r in a.runs().iter().take(RANGES_SHOWN) {
        let _ = write!(s, " {:#x}-{:#x}", r.addr, r.end());
    }
    if a.runs().len() > RANGES_SHOWN {
        let _ = write!(s, " ... and {} more", a.runs().len() - RANGES_SHOWN);
    }
    s
}

/// The text of one replayed round: a heading line, then one line per action, request and
/// log line.
pub fn round_text(r: &ReplayedRound) -> String {
    let mut s = format!(
        "round {} task `{}`: {} scan(s), {} run(s): ",
        r.round, r.task, r.scans, r.runs
    );
    match &r.actions {
        Ok(actions) => {
            let swap: u64 = actions
                .iter()
                .filter(|a| matches!(a, Action::SwapOut { .. }))
                .flat_map(|a| a.runs().iter().map(|r| r.bytes()))
                .sum();
            let migrate: u64 = actions
                .iter()
                .filter(|a| matches!(a, Action::Migrate { .. }))
                .flat_map(|a| a.runs().iter().map(|r| r.bytes()))
                .sum();
            let _ = write!(
                s,
                "{} action(s), swap out {}, migrate {}; {}",
                actions.len(),
                mib(swap),
                mib(migrate),
                if r.same_as_recorded() {
                    "as recorded".to_string()
                } else {
                    format!("recorded: {} action(s), different", r.recorded.len())
                }
            );
            for a in actions {
                let _ = write!(s, "\n  {}", action_text(a));
            }
        }
        Err(e) => {
            let _ = write!(s, "plan failed: {e}");
        }
    }
    for q in &r.requests {
        let _ = write!(s, "\n  {q} (not carried out)");
    }
    for l in &r.logs {
        let _ = write!(s, "\n  log {l}");
    }
    s
}

/// Parses a `k=v` of `--engine-key`/`--task-key`.
pub fn key_value(flag: &str, text: &str) -> Result<(String, String), ReplayError> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(ReplayError::Usage(format!(
            "{flag} `{text}`: expected key=value"
        ))),
    }
}
