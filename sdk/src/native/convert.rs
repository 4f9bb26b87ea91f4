//! Conversions between the abi_stable boundary types ([`super::types`]) and the SDK's own
//! types, both ways, plus the param list forms.
//!
//! Values only: every conversion is field for field; this module must not hold policy
//! (no defaults, no validation beyond what the SDK constructors already do).

use super::types::{
    RAction, RCgroup, RCgroupMemory, RCgroupReclaimed, RDamonAttrs, RDamonScheme, REngineError,
    RLogLevel, RMemInfo, RNodeMemory, RPageRun, RParam, RScanResult, RSystemFacts, RTaskInfo, RVma,
    RVmaFlags,
};
use crate::{
    Action, Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, EngineError, LogLevel,
    MemInfo, NodeMemory, PageRun, PageSize, Params, ScanResult, SystemFacts, TaskInfo, Vma,
};
use abi_stable::std_types::{RSlice, RString, RVec, Tuple2};

impl From<EngineError> for REngineError {
    fn from(e: EngineError) -> REngineError {
        match e {
            EngineError::InvalidParam {
                key,
                value,
                expected,
            } => REngineError::InvalidParam {
                key: key.into(),
                value: value.into(),
                expected: expected.into(),
            },
            EngineError::MissingParam(s) => REngineError::MissingParam(s.into()),
            EngineError::UnknownParam(s) => REngineError::UnknownParam(s.into()),
            EngineError::UnknownTask(s) => REngineError::UnknownTask(s.into()),
            EngineError::UnknownCommand(s) => REngineError::UnknownCommand(s.into()),
            EngineError::TaskRequired(s) => REngineError::TaskRequired(s.into()),
            EngineError::Host(s) => REngineError::Host(s.into()),
            EngineError::Failed(s) => REngineError::Failed(s.into()),
            EngineError::Panicked(s) => REngineError::Panicked(s.into()),
        }
    }
}

impl From<REngineError> for EngineError {
    fn from(e: REngineError) -> EngineError {
        match e {
            REngineError::InvalidParam {
                key,
                value,
                expected,
            } => EngineError::InvalidParam {
                key: key.into(),
                value: value.into(),
                expected: expected.into(),
            },
            REngineError::MissingParam(s) => EngineError::MissingParam(s.into()),
            REngineError::UnknownParam(s) => EngineError::UnknownParam(s.into()),
            REngineError::UnknownTask(s) => EngineError::UnknownTask(s.into()),
            REngineError::UnknownCommand(s) => EngineError::UnknownCommand(s.into()),
            REngineError::TaskRequired(s) => EngineError::TaskRequired(s.into()),
            REngineError::Host(s) => EngineError::Host(s.into()),
            REngineError::Failed(s) => EngineError::Failed(s.into()),
            REngineError::Panicked(s) => EngineError::Panicked(s.into()),
        }
    }
}

impl From<&Vma> for RVma {
    fn from(v: &Vma) -> RVma {
        RVma {
            start: v.start,
            end: v.end,
            readable: v.readable,
            writable: v.writable,
            executable: v.executable,
            shared: v.shared,
            offset: v.offset,
            inode: v.inode,
            path: v.path.as_str().into(),
        }
    }
}

impl From<RVma> for Vma {
    fn from(v: RVma) -> Vma {
        Vma {
            start: v.start,
            end: v.end,
            readable: v.readable,
            writable: v.writable,
            executable: v.executable,
            shared: v.shared,
            offset: v.offset,
            inode: v.inode,
            path: v.path.into(),
            vm_flags: Vec::new(),
        }
    }
}

/// A `task-smaps-vmas` entry: the VMA and its `VmFlags`.
impl From<&Vma> for RVmaFlags {
    fn from(v: &Vma) -> RVmaFlags {
        Tuple2(
            RVma::from(v),
            v.vm_flags
                .iter()
                .map(|f| RString::from(f.as_str()))
                .collect(),
        )
    }
}

/// A `task-smaps-vmas` entry back: the VMA with its `VmFlags`.
pub fn vma_with_flags(v: RVmaFlags) -> Vma {
    let Tuple2(vma, flags) = v;
    Vma {
        vm_flags: flags.into_iter().map(String::from).collect(),
        ..Vma::from(vma)
    }
}

impl From<&ScanResult> for RScanResult {
    fn from(s: &ScanResult) -> RScanResult {
        let (addrs, lens, counts, sizes) = s.columns();
        RScanResult {
            pid: s.pid(),
            passes: s.passes(),
            addrs: RVec::from_slice(addrs),
            lens: RVec::from_slice(lens),
            counts: RVec::from_slice(counts),
            sizes: RVec::from_slice(sizes),
        }
    }
}

impl TryFrom<&RScanResult> for ScanResult {
    type Error = EngineError;
    fn try_from(s: &RScanResult) -> Result<ScanResult, EngineError> {
        ScanResult::from_columns(s.pid, s.passes, &s.addrs, &s.lens, &s.counts, &s.sizes)
    }
}

fn runs_to(runs: Vec<PageRun>) -> RVec<RPageRun> {
    runs.into_iter()
        .map(|r| RPageRun {
            addr: r.addr,
            pages: r.pages,
            size: r.size.code(),
        })
        .collect()
}

/// Runs from the boundary; an unknown size code is an error naming it.
fn runs_from(runs: &[RPageRun]) -> Result<Vec<PageRun>, EngineError> {
    runs.iter()
        .map(|r| {
            let size = PageSize::from_code(r.size).ok_or_else(|| {
                EngineError::failed(format!(
                    "a run of {} page(s) at {:#x} has an unknown page size code {}",
                    r.pages, r.addr, r.size
                ))
            })?;
            Ok(PageRun {
                addr: r.addr,
                pages: r.pages,
                size,
            })
        })
        .collect()
}

impl From<Action> for RAction {
    fn from(a: Action) -> RAction {
        match a {
            Action::SwapOut { pid, runs } => RAction::SwapOut {
                pid,
                runs: runs_to(runs),
            },
            Action::Migrate { pid, runs, node } => RAction::Migrate {
                pid,
                runs: runs_to(runs),
                node,
            },
        }
    }
}

impl TryFrom<&RAction> for Action {
    type Error = EngineError;
    fn try_from(a: &RAction) -> Result<Action, EngineError> {
        Ok(match a {
            RAction::SwapOut { pid, runs } => Action::SwapOut {
                pid: *pid,
                runs: runs_from(runs)?,
            },
            RAction::Migrate { pid, runs, node } => Action::Migrate {
                pid: *pid,
                runs: runs_from(runs)?,
                node: *node,
            },
        })
    }
}

impl From<&TaskInfo> for RTaskInfo {
    fn from(t: &TaskInfo) -> RTaskInfo {
        RTaskInfo {
            project: t.project.as_str().into(),
            name: t.name.as_str().into(),
            target_type: t.target_type.as_str().into(),
            target_value: t.target_value.as_str().into(),
        }
    }
}

impl From<&RTaskInfo> for TaskInfo {
    fn from(t: &RTaskInfo) -> TaskInfo {
        TaskInfo {
            project: t.project.to_string(),
            name: t.name.to_string(),
            target_type: t.target_type.to_string(),
            target_value: t.target_value.to_string(),
        }
    }
}

impl From<&DamonAttrs> for RDamonAttrs {
    fn from(a: &DamonAttrs) -> RDamonAttrs {
        RDamonAttrs {
            sample_us: a.sample_us,
            aggr_us: a.aggr_us,
            update_us: a.update_us,
            min_nr_regions: a.min_nr_regions,
            max_nr_regions: a.max_nr_regions,
        }
    }
}

impl From<RDamonAttrs> for DamonAttrs {
    fn from(a: RDamonAttrs) -> DamonAttrs {
        DamonAttrs {
            sample_us: a.sample_us,
            aggr_us: a.aggr_us,
            update_us: a.update_us,
            min_nr_regions: a.min_nr_regions,
            max_nr_regions: a.max_nr_regions,
        }
    }
}

impl From<&DamonScheme> for RDamonScheme {
    fn from(s: &DamonScheme) -> RDamonScheme {
        RDamonScheme {
            min_size: s.min_size,
            max_size: s.max_size,
            min_acc: s.min_acc,
            max_acc: s.max_acc,
            min_age: s.min_age,
            max_age: s.max_age,
            action: s.action.as_str().into(),
        }
    }
}

impl From<&RDamonScheme> for DamonScheme {
    fn from(s: &RDamonScheme) -> DamonScheme {
        DamonScheme {
            min_size: s.min_size,
            max_size: s.max_size,
            min_acc: s.min_acc,
            max_acc: s.max_acc,
            min_age: s.min_age,
            max_age: s.max_age,
            action: s.action.to_string(),
        }
    }
}

impl From<LogLevel> for RLogLevel {
    fn from(l: LogLevel) -> RLogLevel {
        match l {
            LogLevel::Error => RLogLevel::Error,
            LogLevel::Warn => RLogLevel::Warn,
            LogLevel::Info => RLogLevel::Info,
            LogLevel::Debug => RLogLevel::Debug,
        }
    }
}

impl From<RLogLevel> for LogLevel {
    fn from(l: RLogLevel) -> LogLevel {
        match l {
            RLogLevel::Error => LogLevel::Error,
            RLogLevel::Warn => LogLevel::Warn,
            RLogLevel::Info => LogLevel::Info,
            RLogLevel::Debug => LogLevel::Debug,
        }
    }
}

impl From<&SystemFacts> for RSystemFacts {
    fn from(f: &SystemFacts) -> RSystemFacts {
        let m = f.meminfo;
        RSystemFacts {
            meminfo: RMemInfo {
                mem_total_kb: m.mem_total_kb,
                mem_free_kb: m.mem_free_kb,
                mem_available_kb: m.mem_available_kb,
                swap_total_kb: m.swap_total_kb,
                swap_free_kb: m.swap_free_kb,
                swap_cached_kb: m.swap_cached_kb,
            },
            nodes: f
                .nodes
                .iter()
                .map(|n| RNodeMemory {
                    node: n.node,
                    total_kb: n.total_kb,
                    free_kb: n.free_kb,
                    huge_total_kb: n.huge_total_kb,
                    huge_free_kb: n.huge_free_kb,
                })
                .collect(),
        }
    }
}

impl From<RSystemFacts> for SystemFacts {
    fn from(f: RSystemFacts) -> SystemFacts {
        let m = f.meminfo;
        SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: m.mem_total_kb,
                mem_free_kb: m.mem_free_kb,
                mem_available_kb: m.mem_available_kb,
                swap_total_kb: m.swap_total_kb,
                swap_free_kb: m.swap_free_kb,
                swap_cached_kb: m.swap_cached_kb,
            },
            nodes: f
                .nodes
                .iter()
                .map(|n| NodeMemory {
                    node: n.node,
                    total_kb: n.total_kb,
                    free_kb: n.free_kb,
                    huge_total_kb: n.huge_total_kb,
                    huge_free_kb: n.huge_free_kb,
                })
                .collect(),
        }
    }
}

/// Converts a native param list.
pub fn params_from(params: RSlice<'_, RParam>) -> Params {
    Params::from_pairs(params.iter().map(|t| (t.0.to_string(), t.1.to_string())))
}

/// Converts params to the native form.
pub fn params_to(params: &Params) -> RVec<RParam> {
    params
        .pairs()
        .iter()
        .map(|(k, v)| Tuple2(k.as_str().into(), v.as_str().into()))
        .collect()
}

impl From<&Cgroup> for RCgroup {
    fn from(c: &Cgroup) -> RCgroup {
        RCgroup {
            path: c.path.as_str().into(),
            id: c.id,
        }
    }
}

impl From<RCgroup> for Cgroup {
    fn from(c: RCgroup) -> Cgroup {
        Cgroup {
            path: c.path.into(),
            id: c.id,
        }
    }
}

impl From<CgroupMemory> for RCgroupMemory {
    fn from(m: CgroupMemory) -> RCgroupMemory {
        RCgroupMemory {
            v2: m.v2,
            usage: m.usage,
            limit: m.limit,
            min: m.min,
            low: m.low,
            file: m.file,
            anon: m.anon,
            swap_limit: m.swap_limit,
            swap_usage: m.swap_usage,
            pressure_avg10: m.pressure_avg10,
            pressure_avg60: m.pressure_avg60,
        }
    }
}

impl From<RCgroupMemory> for CgroupMemory {
    fn from(m: RCgroupMemory) -> CgroupMemory {
        CgroupMemory {
            v2: m.v2,
            usage: m.usage,
            limit: m.limit,
            min: m.min,
            low: m.low,
            file: m.file,
            anon: m.anon,
            swap_limit: m.swap_limit,
            swap_usage: m.swap_usage,
            pressure_avg10: m.pressure_avg10,
            pressure_avg60: m.pressure_avg60,
        }
    }
}

impl From<CgroupReclaimed> for RCgroupReclaimed {
    fn from(r: CgroupReclaimed) -> RCgroupReclaimed {
        RCgroupReclaimed {
            requested: r.requested,
            reclaimed: r.reclaimed,
            complete: r.complete,
            dry_run: r.dry_run,
        }
    }
}

impl From<RCgroupReclaimed> for CgroupReclaimed {
    fn from(r: RCgroupReclaimed) -> CgroupReclaimed {
        CgroupReclaimed {
            requested: r.requested,
            reclaimed: r.reclaimed,
            complete: r.complete,
            dry_run: r.dry_run,
        }
    }
}
