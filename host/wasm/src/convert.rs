//! Conversions between the SDK's values and the host bindings' WIT types. Pure: it must not
//! hold policy or call anything.

use crate::bindings::etmem::engine::types as wit;
use etmem_sdk::{Action, EngineError, LogLevel, PageRun, PageSize, ScanResult, SystemFacts, Vma};

pub(crate) fn log_level(l: wit::LogLevel) -> LogLevel {
    match l {
        wit::LogLevel::Error => LogLevel::Error,
        wit::LogLevel::Warn => LogLevel::Warn,
        wit::LogLevel::Info => LogLevel::Info,
        wit::LogLevel::Debug => LogLevel::Debug,
    }
}

pub(crate) fn vma(v: Vma) -> wit::Vma {
    wit::Vma {
        start: v.start,
        end: v.end,
        readable: v.readable,
        writable: v.writable,
        executable: v.executable,
        shared: v.shared,
        offset: v.offset,
        inode: v.inode,
        path: v.path,
    }
}

/// A `task-smaps-vmas` entry: the VMA and its `VmFlags`.
pub(crate) fn vma_with_flags(mut v: Vma) -> (wit::Vma, Vec<String>) {
    let flags = std::mem::take(&mut v.vm_flags);
    (vma(v), flags)
}

/// A `scan-result` from an engine: checked as the SDK checks one (ascending runs, known
/// size codes).
pub(crate) fn scan_from(s: wit::ScanResult) -> Result<ScanResult, EngineError> {
    ScanResult::from_column_vecs(s.pid, s.passes, s.addrs, s.lens, s.counts, s.sizes)
}

pub(crate) fn scan_to(s: &ScanResult) -> wit::ScanResult {
    let (addrs, lens, counts, sizes) = s.columns();
    wit::ScanResult {
        pid: s.pid(),
        passes: s.passes(),
        addrs: addrs.to_vec(),
        lens: lens.to_vec(),
        counts: counts.to_vec(),
        sizes: sizes.to_vec(),
    }
}

fn page_size(s: wit::PageSize) -> PageSize {
    match s {
        wit::PageSize::Size4k => PageSize::Size4K,
        wit::PageSize::Size2m => PageSize::Size2M,
        wit::PageSize::Size1g => PageSize::Size1G,
    }
}

fn runs_from(runs: Vec<wit::PageRun>) -> Vec<PageRun> {
    runs.into_iter()
        .map(|r| PageRun {
            addr: r.addr,
            pages: r.pages,
            size: page_size(r.size),
        })
        .collect()
}

pub(crate) fn action_from(a: wit::Action) -> Action {
    match a {
        wit::Action::SwapOut(s) => Action::SwapOut {
            pid: s.pid,
            runs: runs_from(s.runs),
        },
        wit::Action::Migrate(m) => Action::Migrate {
            pid: m.pid,
            runs: runs_from(m.runs),
            node: m.node,
        },
    }
}

/// `damon-attrs` and `damon-scheme` as the SDK's.
pub(crate) fn damon(
    a: wit::DamonAttrs,
    s: wit::DamonScheme,
) -> (etmem_sdk::DamonAttrs, etmem_sdk::DamonScheme) {
    (
        etmem_sdk::DamonAttrs {
            sample_us: a.sample_us,
            aggr_us: a.aggr_us,
            update_us: a.update_us,
            min_nr_regions: a.min_nr_regions,
            max_nr_regions: a.max_nr_regions,
        },
        etmem_sdk::DamonScheme {
            min_size: s.min_size,
            max_size: s.max_size,
            min_acc: s.min_acc,
            max_acc: s.max_acc,
            min_age: s.min_age,
            max_age: s.max_age,
            action: s.action,
        },
    )
}

pub(crate) fn facts(f: &SystemFacts) -> wit::Facts {
    let m = &f.meminfo;
    wit::Facts {
        meminfo: wit::Meminfo {
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
            .map(|n| wit::NodeMemory {
                node: n.node,
                total_kb: n.total_kb,
                free_kb: n.free_kb,
                huge_total_kb: n.huge_total_kb,
                huge_free_kb: n.huge_free_kb,
            })
            .collect(),
    }
}

impl From<wit::EngineError> for EngineError {
    fn from(e: wit::EngineError) -> EngineError {
        match e {
            wit::EngineError::InvalidParam(p) => EngineError::InvalidParam {
                key: p.key,
                value: p.value,
                expected: p.expected,
            },
            wit::EngineError::MissingParam(s) => EngineError::MissingParam(s),
            wit::EngineError::UnknownParam(s) => EngineError::UnknownParam(s),
            wit::EngineError::UnknownTask(s) => EngineError::UnknownTask(s),
            wit::EngineError::UnknownCommand(s) => EngineError::UnknownCommand(s),
            wit::EngineError::TaskRequired(s) => EngineError::TaskRequired(s),
            wit::EngineError::Host(s) => EngineError::Host(s),
            wit::EngineError::Failed(s) => EngineError::Failed(s),
        }
    }
}

impl From<EngineError> for wit::EngineError {
    fn from(e: EngineError) -> wit::EngineError {
        match e {
            EngineError::InvalidParam {
                key,
                value,
                expected,
            } => wit::EngineError::InvalidParam(wit::ParamError {
                key,
                value,
                expected,
            }),
            EngineError::MissingParam(s) => wit::EngineError::MissingParam(s),
            EngineError::UnknownParam(s) => wit::EngineError::UnknownParam(s),
            EngineError::UnknownTask(s) => wit::EngineError::UnknownTask(s),
            EngineError::UnknownCommand(s) => wit::EngineError::UnknownCommand(s),
            EngineError::TaskRequired(s) => wit::EngineError::TaskRequired(s),
            EngineError::Host(s) => wit::EngineError::Host(s),
            EngineError::Failed(s) => wit::EngineError::Failed(s),
            EngineError::Panicked(s) => wit::EngineError::Failed(format!("host panicked: {s}")),
        }
    }
}

pub(crate) fn cgroup(c: etmem_sdk::Cgroup) -> wit::Cgroup {
    wit::Cgroup {
        path: c.path,
        id: c.id,
    }
}

pub(crate) fn cgroup_memory(m: etmem_sdk::CgroupMemory) -> wit::CgroupStats {
    wit::CgroupStats {
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

pub(crate) fn cgroup_reclaimed(r: etmem_sdk::CgroupReclaimed) -> wit::CgroupReclaimed {
    wit::CgroupReclaimed {
        requested: r.requested,
        reclaimed: r.reclaimed,
        complete: r.complete,
        dry_run: r.dry_run,
    }
}
