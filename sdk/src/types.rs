//! The values exchanged between the host and an engine, mirroring `types` in
//! `wit/engine.wit`.
//!
//! Page data is dense ([`ScanResult`] holds parallel vectors), never one value per call.
//! This module holds plain data; it must not do I/O.

use crate::EngineError;

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
}

impl Vma {
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

/// One page of a [`ScanResult`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// start address
    pub addr: u64,
    /// weighted access count (idle 0, accessed 1, dirty 3, summed over the passes)
    pub count: u8,
    /// page size
    pub size: PageSize,
}

/// The merged scan passes of one pid in one round, dense: index `i` of
/// [`addrs`](ScanResult::addrs), [`counts`](ScanResult::counts) and
/// [`sizes`](ScanResult::sizes) describe the same page. Addresses ascend strictly; pages
/// never present are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanResult {
    pid: Pid,
    passes: u32,
    addrs: Vec<u64>,
    counts: Vec<u8>,
    sizes: Vec<PageSize>,
}

impl ScanResult {
    /// A scan result from its parallel vectors. Rejects vectors of different lengths and
    /// addresses that do not strictly ascend.
    pub fn new(
        pid: Pid,
        passes: u32,
        addrs: Vec<u64>,
        counts: Vec<u8>,
        sizes: Vec<PageSize>,
    ) -> Result<ScanResult, EngineError> {
        if addrs.len() != counts.len() || addrs.len() != sizes.len() {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: {} addresses, {} counts and {} sizes differ in length",
                addrs.len(),
                counts.len(),
                sizes.len()
            )));
        }
        if let Some(w) = addrs.windows(2).find(|w| w[0] >= w[1]) {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: address {:#x} follows {:#x}: not ascending",
                w[1], w[0]
            )));
        }
        Ok(ScanResult {
            pid,
            passes,
            addrs,
            counts,
            sizes,
        })
    }

    /// Like [`ScanResult::new`], with sizes as wire codes (0, 1, 2); an unknown code is an
    /// error naming it.
    pub fn from_codes(
        pid: Pid,
        passes: u32,
        addrs: Vec<u64>,
        counts: Vec<u8>,
        size_codes: &[u8],
    ) -> Result<ScanResult, EngineError> {
        let sizes = size_codes
            .iter()
            .map(|&c| {
                PageSize::from_code(c).ok_or_else(|| {
                    EngineError::failed(format!("scan of pid {pid}: unknown page size code {c}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        ScanResult::new(pid, passes, addrs, counts, sizes)
    }

    /// A scan result from pages in any order (sorted here); a repeated address is an error.
    pub fn from_pages(
        pid: Pid,
        passes: u32,
        pages: impl IntoIterator<Item = Page>,
    ) -> Result<ScanResult, EngineError> {
        let mut pages: Vec<Page> = pages.into_iter().collect();
        pages.sort_by_key(|p| p.addr);
        ScanResult::new(
            pid,
            passes,
            pages.iter().map(|p| p.addr).collect(),
            pages.iter().map(|p| p.count).collect(),
            pages.iter().map(|p| p.size).collect(),
        )
    }

    /// The scanned process.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Scan passes merged into the counts (the project's `loop`).
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Page start addresses, ascending.
    pub fn addrs(&self) -> &[u64] {
        &self.addrs
    }

    /// Weighted access count per page.
    pub fn counts(&self) -> &[u8] {
        &self.counts
    }

    /// Page size per page.
    pub fn sizes(&self) -> &[PageSize] {
        &self.sizes
    }

    /// Page sizes as wire codes.
    pub fn size_codes(&self) -> Vec<u8> {
        self.sizes.iter().map(|s| s.code()).collect()
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// True when no page was present.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The pages, ascending.
    pub fn pages(&self) -> impl ExactSizeIterator<Item = Page> + '_ {
        (0..self.addrs.len()).map(|i| Page {
            addr: self.addrs[i],
            count: self.counts[i],
            size: self.sizes[i],
        })
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
        /// page start addresses
        addrs: Vec<u64>,
    },
    /// Migrate pages to another NUMA node.
    Migrate {
        /// the process
        pid: Pid,
        /// page start addresses
        addrs: Vec<u64>,
        /// destination node
        node: u32,
    },
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

/// Memory of one process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessMemory {
    /// `VmRSS`
    pub rss_kb: u64,
    /// `VmSwap`
    pub swap_kb: u64,
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
    }

    #[test]
    fn scan_result_checks_shape_and_order() {
        let ok = ScanResult::new(
            1,
            2,
            vec![0x1000, 0x2000],
            vec![0, 2],
            vec![PageSize::Size4K; 2],
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok.pages().nth(1),
            Some(Page {
                addr: 0x2000,
                count: 2,
                size: PageSize::Size4K
            })
        );
        let e = ScanResult::new(
            1,
            2,
            vec![0x2000, 0x1000],
            vec![0, 0],
            vec![PageSize::Size4K; 2],
        )
        .expect_err("must fail");
        assert_eq!(
            e.to_string(),
            "scan of pid 1: address 0x1000 follows 0x2000: not ascending"
        );
        assert!(ScanResult::new(1, 2, vec![1], vec![], vec![]).is_err());
        assert_eq!(
            ScanResult::from_codes(7, 1, vec![0], vec![0], &[9])
                .expect_err("must fail")
                .to_string(),
            "scan of pid 7: unknown page size code 9"
        );
    }
}
