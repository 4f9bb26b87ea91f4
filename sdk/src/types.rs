//! The values exchanged between the host and an engine, mirroring `types` in
//! `wit/engine.wit`.
//!
//! Page data is dense ([`ScanResult`](crate::ScanResult), in `scan.rs`, holds parallel
//! vectors), never one value per call.
//! This module holds plain data; it must not do I/O.

/// A process id.
pub type Pid = u32;

/// The size of a mapped page. The discriminants are the codes used on the wire
/// (`scan-result.sizes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PageSize {
    /// 4 KiB (PTE)
    Size4K = 0,
    /// 2 MiB (PMD)
    Size2M = 1,
    /// 1 GiB (PUD)
    Size1G = 2,
}

impl PageSize {
    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Size4K => 4 << 10,
            PageSize::Size2M => 2 << 20,
            PageSize::Size1G => 1 << 30,
        }
    }

    /// log2 of the size (12, 21, 30): `bytes() == 1 << shift()`.
    pub const fn shift(self) -> u32 {
        match self {
            PageSize::Size4K => 12,
            PageSize::Size2M => 21,
            PageSize::Size1G => 30,
        }
    }

    /// The wire code (0, 1, 2).
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The size for a wire code; `None` for an unknown code.
    pub const fn from_code(code: u8) -> Option<PageSize> {
        match code {
            0 => Some(PageSize::Size4K),
            1 => Some(PageSize::Size2M),
            2 => Some(PageSize::Size1G),
            _ => None,
        }
    }
}

/// One virtual memory area of a process (a line of `/proc/<pid>/maps`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vma {
    /// first byte
    pub start: u64,
    /// one past the last byte
    pub end: u64,
    /// `r`
    pub readable: bool,
    /// `w`
    pub writable: bool,
    /// `x`
    pub executable: bool,
    /// `s` (shared) rather than `p` (private)
    pub shared: bool,
    /// file offset
    pub offset: u64,
    /// inode of the backing file, 0 when anonymous
    pub inode: u64,
    /// the path column, empty when anonymous
    pub path: String,
    /// the `VmFlags` of smaps (two-letter flags, e.g. `rd`, `us`): filled by
    /// [`Host::task_smaps_vmas`](crate::Host::task_smaps_vmas), empty from
    /// [`Host::task_vmas`](crate::Host::task_vmas) (maps has no flags)
    pub vm_flags: Vec<String>,
}

impl Vma {
    /// True when `flag` is one of the area's `VmFlags`.
    pub fn has_vm_flag(&self, flag: &str) -> bool {
        self.vm_flags.iter().any(|f| f == flag)
    }

    /// Length in bytes (0 for a malformed area whose end is below its start).
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the area covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `addr` lies in the area.
    pub fn contains(&self, addr: u64) -> bool {
        (self.start..self.end).contains(&addr)
    }
}

/// One page of a [`ScanResult`](crate::ScanResult).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// start address
    pub addr: u64,
    /// weighted access count (idle 0, accessed 1, dirty 3, summed over the passes)
    pub count: u8,
    /// page size
    pub size: PageSize,
}

/// Pages of one size, back to back: `pages` pages from `addr`. The unit of an
/// [`Action`]: a swap-out or migration names runs, so a mapping's cold gigabytes cost one
/// value, not one per page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRun {
    /// start address of the first page
    pub addr: u64,
    /// number of pages
    pub pages: u32,
    /// size of each page
    pub size: PageSize,
}

impl PageRun {
    /// One page.
    pub const fn single(addr: u64, size: PageSize) -> PageRun {
        PageRun {
            addr,
            pages: 1,
            size,
        }
    }

    /// Bytes covered.
    pub const fn bytes(&self) -> u64 {
        self.pages as u64 * self.size.bytes()
    }

    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.addr.saturating_add(self.bytes())
    }

    /// The start address of each page.
    pub fn addrs(&self) -> impl ExactSizeIterator<Item = u64> + use<> {
        let (addr, step) = (self.addr, self.size.bytes());
        (0..self.pages).map(move |i| addr.wrapping_add(u64::from(i) * step))
    }

    /// Base (4 KiB) pages at `addrs`, in address order, as runs.
    pub fn of_base_pages(addrs: &[u64]) -> Vec<PageRun> {
        PageRun::coalesce(addrs.iter().map(|&a| (a, PageSize::Size4K)))
    }

    /// Pages in address order as runs: a page that starts where the previous run ends,
    /// with its size, extends it.
    pub fn coalesce(pages: impl IntoIterator<Item = (u64, PageSize)>) -> Vec<PageRun> {
        let mut out: Vec<PageRun> = Vec::new();
        for (addr, size) in pages {
            match out.last_mut() {
                Some(r) if r.size == size && r.end() == addr && r.pages < u32::MAX => {
                    r.pages += 1;
                }
                _ => out.push(PageRun::single(addr, size)),
            }
        }
        out
    }
}

/// A decision returned by [`Task::plan`](crate::Task::plan); the host validates it against
/// the task's own address space and quotas before acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Swap pages out.
    SwapOut {
        /// the process
        pid: Pid,
        /// the pages, as runs
        runs: Vec<PageRun>,
    },
    /// Migrate pages to another NUMA node.
    Migrate {
        /// the process
        pid: Pid,
        /// the pages, as runs
        runs: Vec<PageRun>,
        /// destination node
        node: u32,
    },
}

impl Action {
    /// The process acted on.
    pub fn pid(&self) -> Pid {
        match self {
            Action::SwapOut { pid, .. } | Action::Migrate { pid, .. } => *pid,
        }
    }

    /// The pages, as runs.
    pub fn runs(&self) -> &[PageRun] {
        match self {
            Action::SwapOut { runs, .. } | Action::Migrate { runs, .. } => runs,
        }
    }

    /// Number of pages named (of any size).
    pub fn page_count(&self) -> u64 {
        self.runs().iter().map(|r| u64::from(r.pages)).sum()
    }
}

/// The task being added, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskInfo {
    /// project name
    pub project: String,
    /// task name (unique in the engine)
    pub name: String,
    /// `type` of the task (`pid` or `name`)
    pub target_type: String,
    /// `value` of the task
    pub target_value: String,
}

impl TaskInfo {
    /// A task `name` of `project` targeting the process named `value` (handy in tests).
    pub fn named(project: &str, name: &str, value: &str) -> TaskInfo {
        TaskInfo {
            project: project.to_string(),
            name: name.to_string(),
            target_type: "name".to_string(),
            target_value: value.to_string(),
        }
    }
}

/// The round being planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Round {
    /// 1-based round number of this task
    pub number: u64,
    /// the project's scan passes per round (`loop`)
    pub passes: u32,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// error
    Error,
    /// warning
    Warn,
    /// information
    Info,
    /// debug
    Debug,
}

/// System-wide memory, from `/proc/meminfo`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// `MemTotal`
    pub mem_total_kb: u64,
    /// `MemFree`
    pub mem_free_kb: u64,
    /// `MemAvailable`
    pub mem_available_kb: u64,
    /// `SwapTotal`
    pub swap_total_kb: u64,
    /// `SwapFree`
    pub swap_free_kb: u64,
    /// `SwapCached`
    pub swap_cached_kb: u64,
}

/// Memory of one NUMA node, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeMemory {
    /// node number
    pub node: u32,
    /// `MemTotal` of the node
    pub total_kb: u64,
    /// `MemFree` of the node
    pub free_kb: u64,
    /// 2 MiB huge pages configured on the node, in KiB
    pub huge_total_kb: u64,
    /// 2 MiB huge pages free on the node, in KiB
    pub huge_free_kb: u64,
}

/// Facts about the machine at the time of the call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemFacts {
    /// system-wide memory
    pub meminfo: MemInfo,
    /// every online node
    pub nodes: Vec<NodeMemory>,
}

/// DAMON monitoring attributes (WIT `damon-attrs`): a region project's
/// `sample_interval`, `aggr_interval`, `update_interval` (µs), `min_nr_regions`,
/// `max_nr_regions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DamonAttrs {
    /// sampling interval, µs
    pub sample_us: u64,
    /// aggregation interval, µs (the unit of a scheme's ages)
    pub aggr_us: u64,
    /// target (VMA) update interval, µs
    pub update_us: u64,
    /// at least this many regions (3 or more)
    pub min_nr_regions: u64,
    /// at most this many regions (above the minimum)
    pub max_nr_regions: u64,
}

/// A DAMOS scheme (WIT `damon-scheme`): regions of `min_size..=max_size` bytes, accessed
/// `min_acc..=max_acc` times per aggregation interval, for `min_age..=max_age` aggregation
/// intervals, get `action`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DamonScheme {
    /// smallest region, bytes
    pub min_size: u64,
    /// largest region, bytes
    pub max_size: u64,
    /// fewest accesses per aggregation
    pub min_acc: u32,
    /// most accesses per aggregation
    pub max_acc: u32,
    /// youngest, in aggregation intervals
    pub min_age: u32,
    /// oldest, in aggregation intervals
    pub max_age: u32,
    /// the DAMOS action by its DAMON sysfs name: `willneed`, `cold`, `pageout`,
    /// `hugepage`, `nohugepage` or `stat` (the host refuses any other)
    pub action: String,
}

/// Memory of one process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessMemory {
    /// `VmRSS`
    pub rss_kb: u64,
    /// `VmSwap`
    pub swap_kb: u64,
}

/// A memory cgroup matched by a task's `cg_dir` pattern (WIT `cgroup`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cgroup {
    /// its path below the cgroup hierarchy's root, `/`-separated; what the other cgroup
    /// calls take
    pub path: String,
    /// the inode of its directory: a cgroup deleted and made again gets another
    pub id: u64,
}

/// Memory of one cgroup at the time of the call, in bytes (WIT `cgroup-memory`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CgroupMemory {
    /// read from the unified (v2) hierarchy, else from cgroup v1
    pub v2: bool,
    /// memory in use (`memory.current`; v1 `memory.usage_in_bytes`)
    pub usage: u64,
    /// its limit (`memory.max`; v1 `memory.limit_in_bytes`); `u64::MAX` for none
    pub limit: u64,
    /// `memory.min` (0 when the kernel has none)
    pub min: u64,
    /// `memory.low` (0 when the kernel has none)
    pub low: u64,
    /// file pages (page cache)
    pub file: u64,
    /// anonymous pages
    pub anon: u64,
    /// swap limit (`memory.swap.max`; v1 `memory.memsw.limit_in_bytes`, memory plus swap);
    /// `u64::MAX` for none, 0 when the kernel does not account swap
    pub swap_limit: u64,
    /// swap in use (`memory.swap.current`; v1 `memory.memsw.usage_in_bytes`)
    pub swap_usage: u64,
    /// memory pressure, `some avg10` of `memory.pressure`, percent
    pub pressure_avg10: f64,
    /// `some avg60`, percent
    pub pressure_avg60: f64,
}

/// What a `cgroup-reclaim` call did (WIT `cgroup-reclaimed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CgroupReclaimed {
    /// bytes written to `memory.reclaim` (after the host's bounds; 0 in a dry run)
    pub requested: u64,
    /// how much the cgroup's usage fell meanwhile (an estimate: others allocate too)
    pub reclaimed: u64,
    /// false when the kernel reclaimed less than asked (EAGAIN), or in a dry run
    pub complete: bool,
    /// the project is a dry run: nothing was written
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_codes_round_trip() {
        for s in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
            assert_eq!(PageSize::from_code(s.code()), Some(s));
        }
        assert_eq!(PageSize::from_code(3), None);
        assert_eq!(PageSize::Size2M.bytes(), 2 * 1024 * 1024);
        for s in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
            assert_eq!(1u64 << s.shift(), s.bytes());
        }
    }

    #[test]
    fn page_runs_coalesce_adjacent_pages_of_one_size() {
        let runs = PageRun::coalesce([
            (0x1000, PageSize::Size4K),
            (0x2000, PageSize::Size4K),
            (0x4000, PageSize::Size4K),
            (0x20_0000, PageSize::Size2M),
            (0x40_0000, PageSize::Size2M),
        ]);
        assert_eq!(
            runs,
            [
                PageRun {
                    addr: 0x1000,
                    pages: 2,
                    size: PageSize::Size4K
                },
                PageRun::single(0x4000, PageSize::Size4K),
                PageRun {
                    addr: 0x20_0000,
                    pages: 2,
                    size: PageSize::Size2M
                },
            ]
        );
        assert_eq!(runs[2].bytes(), 4 << 20);
        assert_eq!(runs[0].addrs().collect::<Vec<_>>(), [0x1000, 0x2000]);
        let a = Action::SwapOut { pid: 3, runs };
        assert_eq!((a.pid(), a.page_count()), (3, 5));
    }
}
