//! Typed config values: the contract between the config parser and the daemon core.
//!
//! Everything here is already checked against the rules that depend on nothing but the
//! file itself (types, ranges, required keys, formats). Rules that need daemon state (the
//! parent project's `loop`, its `scan_type`, the machine's NUMA nodes and CPUs, whether a
//! pid exists) are checked by the core when it applies the file.
//!
//! Checks left to the core, because they need its state:
//! - slide `T ≤ loop*3` of the parent project ([`SlideTaskConf::t`]);
//! - cslide `hot_threshold` clamped to `loop*3+1` ([`CslideEngineConf::hot_threshold`]);
//! - cslide `node_pair` covering exactly the machine's NUMA nodes, an even count;
//! - the engine type against the project's `scan_type` (C does not check it, bug B7:
//!   slide, cslide and memdcd need `page`, damon needs `region`, psi needs `psi`);
//! - `max_threads` clamping against the number of CPUs;
//! - thirdparty `libname` resolution and permissions (root:root, 0500 or 0700);
//! - parents exist, duplicates (`*_NOEXIST`, `*_EXISTED`).
//!
//! Contract: fields and variants may be added; none are renamed or removed without
//! updating every user in the same commit.

use std::path::PathBuf;

/// One parsed config file: every `[project]`, `[engine]` and `[task]` section, each in file
/// order. Several sections of the same kind are separate objects (C merges them: we don't).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigFile {
    /// The resolved (realpath) file the sections came from.
    pub path: PathBuf,
    /// `[project]` sections.
    pub projects: Vec<ProjectConf>,
    /// `[engine]` sections.
    pub engines: Vec<EngineConf>,
    /// `[task]` sections.
    pub tasks: Vec<TaskConf>,
    /// What the parser ignored, one sentence each (unknown keys in known sections, unknown
    /// sections, keys C itself drops such as `dram_percent` outside 1..=100). C ignores
    /// them silently; the core should log them (and may show them to the user).
    pub warnings: Vec<String>,
}

/// What `obj del` needs from a file: only the identity keys (C's delete only identifies
/// objects; every other key is ignored). Each list is in file order; the core deletes
/// tasks, then engines, then projects (spec §4.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectIds {
    /// `[project]` `name`s.
    pub projects: Vec<String>,
    /// `[engine]`s as (project, engine name): the engine name is `name`, or `eng_name`
    /// when `name=thirdparty`. An unknown `name` is kept: the delete reports it missing.
    pub engines: Vec<(String, String)>,
    /// `[task]`s as (project, engine, task name).
    pub tasks: Vec<(String, String, String)>,
}

/// Where a section stands in its file, for error messages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionPos {
    /// 0-based index among the sections with the same name. Error messages show it
    /// 1-based (`[task] #1` is the first `[task]`).
    pub index: usize,
    /// 1-based line of the `[section]` header, when known.
    pub line: Option<usize>,
}

/// `[project]` (spec §4.5).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectConf {
    /// Position in the file.
    pub pos: SectionPos,
    /// `name`, 1..=64 chars.
    pub name: String,
    /// `scan_type` with its scan keys.
    pub scan: ScanConf,
    /// `sysmem_threshold`, 0..=100; `None` is C's −1 (off).
    pub sysmem_threshold: Option<u8>,
    /// `swapcache_high_wmark` / `swapcache_low_wmark`: both or neither, high > low.
    pub swapcache_wmark: Option<SwapcacheWmark>,
    /// `dry_run` (`yes`/`no`, default `no`; an etmem-rs key): engines plan as usual, the
    /// host checks their actions and moves nothing, and reports what would have moved.
    pub dry_run: bool,
    /// Every `key = value` of the section, in file order, values as written (the typed
    /// fields above are the checked view of the same keys).
    pub raw: RawParams,
}

/// The swap cache watermarks, in percent of RAM (1..=100 each, high > low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapcacheWmark {
    /// `swapcache_high_wmark`
    pub high: u8,
    /// `swapcache_low_wmark`
    pub low: u8,
}

/// `scan_type` and its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanConf {
    /// `scan_type=page` (the default).
    Page {
        /// `loop`: scan passes per round, 1..=120.
        loops: u32,
        /// `interval`: seconds between rounds (end of one to start of the next), 1..=1200.
        interval: u32,
        /// `sleep`: seconds after each scan pass, 1..=1200.
        sleep: u32,
    },
    /// `scan_type=region` (DAMON).
    Region {
        /// `sample_interval`, µs.
        sample_interval: u64,
        /// `aggr_interval`, µs.
        aggr_interval: u64,
        /// `update_interval`, µs.
        update_interval: u64,
        /// `min_nr_regions`, ≥ 3 and < max.
        min_nr_regions: u64,
        /// `max_nr_regions`, ≥ 3.
        max_nr_regions: u64,
    },
    /// `scan_type=psi`.
    Psi {
        /// `interval`: seconds between rounds, 1..=1200.
        interval: u32,
    },
}

impl ScanConf {
    /// The `scan_type` word.
    pub fn type_name(&self) -> &'static str {
        match self {
            ScanConf::Page { .. } => "page",
            ScanConf::Region { .. } => "region",
            ScanConf::Psi { .. } => "psi",
        }
    }
}

/// Keys this crate does not interpret, kept for an engine (thirdparty private keys), in file
/// order, values exactly as written.
pub type RawParams = Vec<(String, String)>;

/// `[engine]` (spec §4.6).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConf {
    /// Position in the file.
    pub pos: SectionPos,
    /// `project`, 1..=64 chars.
    pub project: String,
    /// `name` and the keys of that engine type.
    pub kind: EngineKind,
    /// `round_quota_bytes` (any engine type, ≥ 1): the most bytes the host swaps out or
    /// migrates for one round of this engine; `None`: no quota of its own (an etmem-rs key,
    /// not in C).
    pub round_quota_bytes: Option<u64>,
    /// Every `key = value` of the section, in file order, values as written; what the core
    /// hands an engine as its params (minus the identity keys).
    pub raw: RawParams,
}

impl EngineConf {
    /// The engine's identity inside its project: the type name, or `eng_name` for
    /// thirdparty.
    pub fn name(&self) -> &str {
        match &self.kind {
            EngineKind::Thirdparty(t) => &t.eng_name,
            other => other.type_name(),
        }
    }
}

/// The engine types C etmem knows, with their engine keys.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineKind {
    /// `slide`: no engine keys.
    Slide,
    /// `cslide`.
    Cslide(CslideEngineConf),
    /// `memdcd`: no engine keys.
    Memdcd,
    /// `damon`.
    Damon(DamonEngineConf),
    /// `psi`: no engine keys.
    Psi,
    /// `thirdparty`.
    Thirdparty(ThirdpartyEngineConf),
}

impl EngineKind {
    /// The `name=` value of this engine type.
    pub fn type_name(&self) -> &'static str {
        match self {
            EngineKind::Slide => "slide",
            EngineKind::Cslide(_) => "cslide",
            EngineKind::Memdcd => "memdcd",
            EngineKind::Damon(_) => "damon",
            EngineKind::Psi => "psi",
            EngineKind::Thirdparty(_) => "thirdparty",
        }
    }
}

/// A NUMA node number.
pub type NodeId = u32;

/// cslide engine keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CslideEngineConf {
    /// `node_pair`: (hot, cold) pairs in file order. Each node appears once; whether they
    /// cover the machine's nodes is checked by the core.
    pub node_pairs: Vec<(NodeId, NodeId)>,
    /// `hot_threshold` ≥ 0 (the core clamps it to `loop*3+1`).
    pub hot_threshold: u64,
    /// `node_mig_quota`, MiB per pair per round, ≥ 0.
    pub node_mig_quota_mb: u64,
    /// `node_hot_reserve`, MiB, ≥ 0.
    pub node_hot_reserve_mb: u64,
}

/// DAMON scheme action (`action` key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamonAction {
    /// `willneed` (0)
    Willneed,
    /// `cold` (1)
    Cold,
    /// `pageout` (2)
    Pageout,
    /// `hugepage` (3)
    Hugepage,
    /// `nohugepage` (4)
    Nohugepage,
    /// `stat` (5)
    Stat,
}

/// damon engine keys (not range-checked by C; stored as given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DamonEngineConf {
    /// `min_size`
    pub min_size: u64,
    /// `max_size`
    pub max_size: u64,
    /// `min_acc`
    pub min_acc: u32,
    /// `max_acc`
    pub max_acc: u32,
    /// `min_age`
    pub min_age: u32,
    /// `max_age`
    pub max_age: u32,
    /// `action`
    pub action: DamonAction,
}

/// thirdparty engine keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThirdpartyEngineConf {
    /// `eng_name`: the engine's identity.
    pub eng_name: String,
    /// `libname`, as written (resolved and permission-checked by the loader).
    pub libname: String,
    /// `ops_name`: the exported engine to use.
    pub ops_name: String,
    /// Every other key of the section, for the engine.
    pub params: RawParams,
}

/// `[task]` (spec §4.7).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConf {
    /// Position in the file.
    pub pos: SectionPos,
    /// `project`, 1..=64 chars.
    pub project: String,
    /// `engine`: a built-in engine name or a thirdparty `eng_name`, 1..=64 chars.
    pub engine: String,
    /// `name`, 1..=64 chars.
    pub name: String,
    /// `type` + `value`.
    pub target: TaskTarget,
    /// `swap_flag` (`yes`/`no`, default no).
    pub swap_flag: bool,
    /// `max_threads` as written (default 1). The core clamps it: ≤ 0 → 1,
    /// > 2·nprocs+1 → 2·nprocs+1, each with a warning, as C does.
    pub max_threads: i64,
    /// `record_scans` + `record_rounds` (our keys): record the task's rounds to a file.
    pub record: Option<RecordScans>,
    /// The keys of the task's engine.
    pub engine_keys: TaskEngineConf,
    /// Every `key = value` of the section, in file order, values as written; what the core
    /// hands the engine as the task's params (minus the generic task keys).
    pub raw: RawParams,
}

/// Where and how long a task's rounds are recorded (`record_scans`, `record_rounds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordScans {
    /// `record_scans`: an absolute path; the host creates or appends to it.
    pub path: PathBuf,
    /// `record_rounds`: rounds recorded, 1..=100000 (default 10).
    pub rounds: u32,
}

/// `type` and `value` of a task: which processes it targets. `value` is 1..=15 chars of
/// `[A-Za-z0-9._%/-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskTarget {
    /// `type=pid`: the value is used verbatim as a pid.
    Pid(String),
    /// `type=name`: the lowest pid whose comm equals the value.
    Name(String),
}

impl TaskTarget {
    /// `pid` or `name`.
    pub fn type_name(&self) -> &'static str {
        match self {
            TaskTarget::Pid(_) => "pid",
            TaskTarget::Name(_) => "name",
        }
    }
    /// The `value` string.
    pub fn value(&self) -> &str {
        match self {
            TaskTarget::Pid(v) | TaskTarget::Name(v) => v,
        }
    }
}

/// The engine-specific keys of a task, chosen by the task's `engine` key.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEngineConf {
    /// `engine=slide`.
    Slide(SlideTaskConf),
    /// `engine=cslide`.
    Cslide(CslideTaskConf),
    /// `engine=memdcd`.
    Memdcd(MemdcdTaskConf),
    /// `engine=psi`.
    Psi(PsiTaskConf),
    /// `engine=damon`: no task keys.
    Damon,
    /// Any other engine name: a thirdparty engine's private task keys.
    Thirdparty(RawParams),
}

/// slide task keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlideTaskConf {
    /// `T` ≥ 0 (the core checks `T ≤ loop*3`).
    pub t: u32,
    /// `swap_threshold` in KiB (`<digits>g`, converted); `None` when absent or `g` (0: off).
    pub swap_threshold_kb: Option<u64>,
    /// `dram_percent` in 1..=100; `None` when absent or outside (0,100] (C warns and
    /// disables it, never an error).
    pub dram_percent: Option<u8>,
}

/// cslide task keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CslideTaskConf {
    /// `anon_only`
    pub anon_only: bool,
    /// `ign_host`
    pub ign_host: bool,
    // `vm_flags` must be exactly `ht`: nothing to store.
}

/// memdcd task keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemdcdTaskConf {
    /// `Sock`, with `-` already replaced by `@_memdcd.server`; < 108 bytes.
    pub sock: String,
}

/// psi task keys (defaults per spec §4.7).
#[derive(Debug, Clone, PartialEq)]
pub struct PsiTaskConf {
    /// `pressure` > 0 (0.1)
    pub pressure: f64,
    /// `reclaim_rate` > 0 (0.05)
    pub reclaim_rate: f64,
    /// `reclaim_rate_max` > 0 (0.5)
    pub reclaim_rate_max: f64,
    /// `reclaim_rate_min` > 0 (0.01)
    pub reclaim_rate_min: f64,
    /// `limit_min_ratio` > 0 (0.1)
    pub limit_min_ratio: f64,
    /// `limit_min_bytes` (0)
    pub limit_min_bytes: u64,
    /// `reclaim_max_bytes` (1 GiB)
    pub reclaim_max_bytes: u64,
    /// `cg_dir`, 1..=63 chars, a glob under `/sys/fs/cgroup/cpuacct/`.
    pub cg_dir: String,
}
