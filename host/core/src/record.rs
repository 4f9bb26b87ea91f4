//! Recorded rounds (`[task] record_scans=/abs/file`, `record_rounds=N`, our keys): the host
//! appends one JSON line per round of the task to the file, with what its engine saw (the
//! params, the round, the scan results, the answers of the host calls it made during
//! `plan`) and what it decided (the actions `plan` returned, before the host's checks), and
//! stops after N rounds. `etmem-replay` reads the file back and runs the rounds through an
//! engine offline.
//!
//! The line format is versioned ([`FORMAT`], [`VERSION`]): a reader refuses another
//! format or version rather than guess. This module writes and parses lines; it must not
//! decide anything about the rounds it records.

use crate::plugin::{HostRef, Params};
use etmem_sdk::{
    Action, EngineError as SdkError, Host, LogLevel, MemInfo, NodeMemory, PageRun, PageSize, Pid,
    ProcessMemory, ScanResult, SystemFacts, Vma,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// The `format` of every line.
pub const FORMAT: &str = "etmem-scans";
/// The `version` of the lines this build writes and reads.
pub const VERSION: u32 = 1;

/// One recorded round: one line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRound {
    /// always [`FORMAT`]
    pub format: String,
    /// [`VERSION`]
    pub version: u32,
    /// the task's project
    pub project: String,
    /// the engine's name in the project (type name or `eng_name`)
    pub engine: String,
    /// the task's name
    pub task: String,
    /// the task's `type` (`pid` or `name`)
    pub target_type: String,
    /// the task's `value`
    pub target_value: String,
    /// the round's number (1-based, the task's or the per-engine worker's)
    pub round: u64,
    /// the project's scan passes per round (`loop`)
    pub passes: u32,
    /// what the engine's `configure` received
    pub engine_params: Vec<(String, String)>,
    /// what the task's `new-task` received
    pub task_params: Vec<(String, String)>,
    /// the scan results `plan` received
    pub scans: Vec<RecordedScan>,
    /// the host calls the engine made during `plan`, with their answers, in order
    pub host: Vec<HostAnswer>,
    /// the actions `plan` returned (before the host's checks)
    pub actions: Vec<RecordedAction>,
}

/// A [`ScanResult`] as its wire columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedScan {
    /// the process
    pub pid: Pid,
    /// passes merged
    pub passes: u32,
    /// run starts
    pub addrs: Vec<u64>,
    /// run lengths in pages
    pub lens: Vec<u32>,
    /// run counts
    pub counts: Vec<u8>,
    /// run page size codes (0 4 KiB, 1 2 MiB, 2 1 GiB)
    pub sizes: Vec<u8>,
}

impl RecordedScan {
    /// The columns of `s`.
    pub fn of(s: &ScanResult) -> RecordedScan {
        let (addrs, lens, counts, sizes) = s.columns();
        RecordedScan {
            pid: s.pid(),
            passes: s.passes(),
            addrs: addrs.to_vec(),
            lens: lens.to_vec(),
            counts: counts.to_vec(),
            sizes: sizes.to_vec(),
        }
    }

    /// The scan result again; its checks (ascending runs, known sizes) apply.
    pub fn to_scan(&self) -> Result<ScanResult, SdkError> {
        ScanResult::from_columns(
            self.pid,
            self.passes,
            &self.addrs,
            &self.lens,
            &self.counts,
            &self.sizes,
        )
    }
}

/// An [`Action`] as recorded: runs as `[addr, pages, size code]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordedAction {
    /// [`Action::SwapOut`]
    SwapOut {
        /// the process
        pid: Pid,
        /// `[addr, pages, size code]` each
        runs: Vec<(u64, u32, u8)>,
    },
    /// [`Action::Migrate`]
    Migrate {
        /// the process
        pid: Pid,
        /// `[addr, pages, size code]` each
        runs: Vec<(u64, u32, u8)>,
        /// destination node
        node: u32,
    },
}

fn runs_of(runs: &[PageRun]) -> Vec<(u64, u32, u8)> {
    runs.iter()
        .map(|r| (r.addr, r.pages, r.size.code()))
        .collect()
}

fn runs_from(runs: &[(u64, u32, u8)]) -> Result<Vec<PageRun>, String> {
    runs.iter()
        .map(|&(addr, pages, code)| {
            PageSize::from_code(code)
                .map(|size| PageRun { addr, pages, size })
                .ok_or_else(|| format!("unknown page size code {code} in a run at {addr:#x}"))
        })
        .collect()
}

impl RecordedAction {
    /// The record of `a`.
    pub fn of(a: &Action) -> RecordedAction {
        match a {
            Action::SwapOut { pid, runs } => RecordedAction::SwapOut {
                pid: *pid,
                runs: runs_of(runs),
            },
            Action::Migrate { pid, runs, node } => RecordedAction::Migrate {
                pid: *pid,
                runs: runs_of(runs),
                node: *node,
            },
        }
    }

    /// The action again; an unknown page size code is an error naming it.
    pub fn to_action(&self) -> Result<Action, String> {
        Ok(match self {
            RecordedAction::SwapOut { pid, runs } => Action::SwapOut {
                pid: *pid,
                runs: runs_from(runs)?,
            },
            RecordedAction::Migrate { pid, runs, node } => Action::Migrate {
                pid: *pid,
                runs: runs_from(runs)?,
                node: *node,
            },
        })
    }
}

/// A host call an engine made during `plan`, and what it was answered (`Err`: the host's
/// refusal, as text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum HostAnswer {
    /// `system-facts`: `meminfo` as its six KiB figures in `MemInfo` order, `nodes` as
    /// `[node, total, free, huge total, huge free]` in KiB
    SystemFacts {
        /// MemTotal, MemFree, MemAvailable, SwapTotal, SwapFree, SwapCached
        meminfo: [u64; 6],
        /// per node
        nodes: Vec<(u32, u64, u64, u64, u64)>,
    },
    /// `task-memory`
    TaskMemory {
        /// the process asked about
        pid: Pid,
        /// `(rss_kb, swap_kb)` or the refusal
        answer: Result<(u64, u64), String>,
    },
    /// `task-page-nodes`
    TaskPageNodes {
        /// the process asked about
        pid: Pid,
        /// the pages asked about
        addrs: Vec<u64>,
        /// the nodes (negative errno for absent pages) or the refusal
        answer: Result<Vec<i32>, String>,
    },
}

impl HostAnswer {
    fn facts(f: &SystemFacts) -> HostAnswer {
        let m = &f.meminfo;
        HostAnswer::SystemFacts {
            meminfo: [
                m.mem_total_kb,
                m.mem_free_kb,
                m.mem_available_kb,
                m.swap_total_kb,
                m.swap_free_kb,
                m.swap_cached_kb,
            ],
            nodes: f
                .nodes
                .iter()
                .map(|n| {
                    (
                        n.node,
                        n.total_kb,
                        n.free_kb,
                        n.huge_total_kb,
                        n.huge_free_kb,
                    )
                })
                .collect(),
        }
    }

    /// The [`SystemFacts`] of a `system-facts` answer.
    pub fn system_facts(meminfo: &[u64; 6], nodes: &[(u32, u64, u64, u64, u64)]) -> SystemFacts {
        let [t, f, a, st, sf, sc] = *meminfo;
        SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: t,
                mem_free_kb: f,
                mem_available_kb: a,
                swap_total_kb: st,
                swap_free_kb: sf,
                swap_cached_kb: sc,
            },
            nodes: nodes
                .iter()
                .map(
                    |&(node, total_kb, free_kb, huge_total_kb, huge_free_kb)| NodeMemory {
                        node,
                        total_kb,
                        free_kb,
                        huge_total_kb,
                        huge_free_kb,
                    },
                )
                .collect(),
        }
    }
}

/// A [`Host`] that forwards every call and keeps the answers [`HostAnswer`] can hold.
pub struct RecordingHost {
    inner: HostRef,
    answers: Mutex<Vec<HostAnswer>>,
}

impl RecordingHost {
    /// Records the calls made through it to `inner`.
    pub fn new(inner: HostRef) -> RecordingHost {
        RecordingHost {
            inner,
            answers: Mutex::new(Vec::new()),
        }
    }

    /// The answers so far, in call order.
    pub fn take(&self) -> Vec<HostAnswer> {
        std::mem::take(&mut *self.answers.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn keep(&self, a: HostAnswer) {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(a);
    }
}

impl Host for RecordingHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(level, message)
    }
    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, SdkError> {
        self.inner.task_vmas(task, pid)
    }
    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, SdkError> {
        self.inner.task_scan(task)
    }
    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, SdkError> {
        let r = self.inner.task_memory(task, pid);
        self.keep(HostAnswer::TaskMemory {
            pid,
            answer: r
                .as_ref()
                .map(|m| (m.rss_kb, m.swap_kb))
                .map_err(|e| e.to_string()),
        });
        r
    }
    fn task_page_nodes(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<Vec<i32>, SdkError> {
        let r = self.inner.task_page_nodes(task, pid, addrs);
        self.keep(HostAnswer::TaskPageNodes {
            pid,
            addrs: addrs.to_vec(),
            answer: r.clone().map_err(|e| e.to_string()),
        });
        r
    }
    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, SdkError> {
        self.inner.request_swap_out(task, pid, addrs)
    }
    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, SdkError> {
        self.inner.request_migrate(task, pid, addrs, node)
    }
    fn system_facts(&self) -> SystemFacts {
        let f = self.inner.system_facts();
        self.keep(HostAnswer::facts(&f));
        f
    }
    fn reclaim_swapcache(&self, task: &str, pid: Pid, low: u8, high: u8) -> Result<(), SdkError> {
        self.inner.reclaim_swapcache(task, pid, low, high)
    }
    fn task_smaps_vmas(&self, task: &str, pid: Pid, flags: &[&str]) -> Result<Vec<Vma>, SdkError> {
        self.inner.task_smaps_vmas(task, pid, flags)
    }
    fn send_page_list(&self, task: &str, sock: &str, pages: &ScanResult) -> Result<u64, SdkError> {
        self.inner.send_page_list(task, sock, pages)
    }
    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &etmem_sdk::DamonAttrs,
        scheme: &etmem_sdk::DamonScheme,
    ) -> Result<(), SdkError> {
        self.inner.damon_apply_scheme(task, pid, attrs, scheme)
    }
    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), SdkError> {
        self.inner.damon_remove_scheme(task, pid)
    }
    fn cgroup_glob(&self, task: &str) -> Result<Vec<etmem_sdk::Cgroup>, SdkError> {
        self.inner.cgroup_glob(task)
    }
    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<etmem_sdk::CgroupMemory, SdkError> {
        self.inner.cgroup_memory(task, cgroup)
    }
    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<etmem_sdk::CgroupReclaimed, SdkError> {
        self.inner.cgroup_reclaim(task, cgroup, bytes)
    }
}

/// Appends the rounds of one task to its file, up to its number of rounds.
#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    limit: u32,
    /// rounds written; `None` once writing failed (nothing more is written)
    written: Mutex<Option<u32>>,
}

impl PartialEq for Recorder {
    fn eq(&self, other: &Recorder) -> bool {
        (&self.path, self.limit) == (&other.path, other.limit)
    }
}

impl Recorder {
    /// Records up to `rounds` rounds to `path` (created mode 0600 if absent, appended to).
    pub fn new(path: &Path, rounds: u32) -> Recorder {
        Recorder {
            path: path.to_path_buf(),
            limit: rounds,
            written: Mutex::new(Some(0)),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while rounds remain to be recorded.
    pub fn wants_more(&self) -> bool {
        matches!(
            *self.written.lock().unwrap_or_else(PoisonError::into_inner),
            Some(n) if n < self.limit
        )
    }

    /// Appends `round` as one line; returns how many rounds are now in the file from this
    /// recorder. After a write error, nothing more is written (the error says so).
    pub fn write(&self, round: &RecordedRound) -> Result<u32, RecordError> {
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(n) = *written else {
            return Ok(0);
        };
        if n >= self.limit {
            return Ok(n);
        }
        let mut line = serde_json::to_vec(round).map_err(|e| RecordError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        line.push(b'\n');
        let r = (|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.path)?;
            f.write_all(&line)
        })();
        match r {
            Ok(()) => {
                *written = Some(n + 1);
                Ok(n + 1)
            }
            Err(e) => {
                *written = None;
                Err(RecordError::Write {
                    path: self.path.clone(),
                    reason: format!("{e}; recording stopped"),
                })
            }
        }
    }
}

/// What a record file holds that cannot be used, naming the file and the line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The file cannot be read or written.
    #[error("record file `{}`: {reason}", path.display())]
    Write {
        /// the file
        path: PathBuf,
        /// why
        reason: String,
    },
    /// A line is not a recorded round of the format and version this build knows.
    #[error("record file `{}`: line {line}: {reason}", path.display())]
    Line {
        /// the file
        path: PathBuf,
        /// 1-based
        line: usize,
        /// what is wrong
        reason: String,
    },
}

/// Parses line `line` (1-based) of `path`: the format and version are checked first, so a
/// file of another version says so rather than which field it lacks.
pub fn parse_line(text: &str, path: &Path, line: usize) -> Result<RecordedRound, RecordError> {
    let err = |reason: String| RecordError::Line {
        path: path.to_path_buf(),
        line,
        reason,
    };
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u64>,
    }
    let head: Head = serde_json::from_str(text)
        .map_err(|e| err(format!("not a JSON object of a recorded round: {e}")))?;
    match (head.format.as_deref(), head.version) {
        (Some(FORMAT), Some(v)) if v == u64::from(VERSION) => {}
        (Some(FORMAT), Some(v)) => {
            return Err(err(format!(
                "format `{FORMAT}` version {v}: this etmem reads version {VERSION} only"
            )));
        }
        (f, _) => {
            return Err(err(format!(
                "expected `\"format\":\"{FORMAT}\"` with a `version`, found format {}",
                f.map_or("none".to_string(), |f| format!("`{f}`"))
            )));
        }
    }
    serde_json::from_str(text).map_err(|e| err(format!("a recorded round of version 1: {e}")))
}

/// Every round of a record file, in order; an empty file or an unusable line is an error.
pub fn read_file(path: &Path) -> Result<Vec<RecordedRound>, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|e| RecordError::Write {
        path: path.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    })?;
    let rounds = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, path, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    if rounds.is_empty() {
        return Err(RecordError::Line {
            path: path.to_path_buf(),
            line: 1,
            reason: "no recorded round in the file".to_string(),
        });
    }
    Ok(rounds)
}

/// The pairs of `p`.
pub(crate) fn pairs(p: &Params) -> Vec<(String, String)> {
    p.pairs().to_vec()
}

/// A recording host over `inner`, as the [`HostRef`] an engine call takes.
pub(crate) fn recording(inner: &HostRef) -> (Arc<RecordingHost>, HostRef) {
    let rec = Arc::new(RecordingHost::new(inner.clone()));
    let href: HostRef = rec.clone();
    (rec, href)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round() -> RecordedRound {
        let scan = ScanResult::from_columns(7, 3, &[0x1000, 0x5000], &[2, 1], &[0, 3], &[0, 1])
            .expect("scan");
        RecordedRound {
            format: FORMAT.into(),
            version: VERSION,
            project: "p".into(),
            engine: "slide".into(),
            task: "t".into(),
            target_type: "name".into(),
            target_value: "app".into(),
            round: 1,
            passes: 3,
            engine_params: vec![("loop".into(), "3".into())],
            task_params: vec![("T".into(), "1".into())],
            scans: vec![RecordedScan::of(&scan)],
            host: vec![
                HostAnswer::TaskMemory {
                    pid: 7,
                    answer: Err("gone".into()),
                },
                HostAnswer::facts(&SystemFacts::default()),
            ],
            actions: vec![RecordedAction::of(&Action::Migrate {
                pid: 7,
                runs: vec![PageRun::single(0x1000, PageSize::Size4K)],
                node: 1,
            })],
        }
    }

    #[test]
    fn a_round_survives_a_line_and_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.scans");
        let rec = Recorder::new(&path, 2);
        let r = round();
        assert_eq!(rec.write(&r), Ok(1));
        assert!(rec.wants_more());
        assert_eq!(rec.write(&r), Ok(2));
        assert!(!rec.wants_more());
        assert_eq!(rec.write(&r), Ok(2), "no third line");
        let back = read_file(&path).expect("read back");
        assert_eq!(back, [r.clone(), r.clone()]);
        assert_eq!(back[0].scans[0].to_scan().expect("scan").len(), 3);
        let a = back[0].actions[0].to_action().expect("action");
        assert_eq!(a.page_count(), 1);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(
            text.starts_with("{\"format\":\"etmem-scans\",\"version\":1,"),
            "{text}"
        );
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let p = Path::new("/r.scans");
        let line = serde_json::to_string(&round()).expect("json");
        let e = parse_line(&line[..line.len() / 2], p, 3).expect_err("truncated");
        assert!(
            e.to_string()
                .starts_with("record file `/r.scans`: line 3: not a JSON object"),
            "{e}"
        );
        let v2 = line.replace("\"version\":1", "\"version\":2");
        assert_eq!(
            parse_line(&v2, p, 1).expect_err("v2").to_string(),
            "record file `/r.scans`: line 1: format `etmem-scans` version 2: this etmem reads \
             version 1 only"
        );
        let other = parse_line("{\"format\":\"x\",\"version\":1}", p, 2).expect_err("other");
        assert!(other.to_string().contains("found format `x`"), "{other}");
        let missing = line.replace("\"passes\":3,", "");
        let e = parse_line(&missing, p, 4).expect_err("missing field");
        assert!(
            e.to_string().contains("line 4") && e.to_string().contains("passes"),
            "{e}"
        );
    }
}
