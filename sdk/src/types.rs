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

/// A run of a [`ScanResult`]: `pages` pages of `size` from `addr`, each with access count
/// `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRun {
    /// start address of the first page
    pub addr: u64,
    /// number of pages (at least 1)
    pub pages: u32,
    /// weighted access count of every page of the run
    pub count: u8,
    /// size of each page
    pub size: PageSize,
}

impl ScanRun {
    /// The run's pages without their count.
    pub const fn page_run(&self) -> PageRun {
        PageRun {
            addr: self.addr,
            pages: self.pages,
            size: self.size,
        }
    }

    /// One past the last byte (saturating).
    pub const fn end(&self) -> u64 {
        self.page_run().end()
    }

    /// Base (4 KiB) pages covered.
    pub const fn base_pages(&self) -> u64 {
        self.page_run().bytes() / PageSize::Size4K.bytes()
    }
}

/// The merged scan passes of one pid in one round, run-length: pages that follow each
/// other with the same size and count form one [`ScanRun`], so a mapping costs per run of
/// equal pages, not per page. Runs ascend and do not overlap; adjacent runs that could be
/// one are merged (the form is canonical); pages never present are absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanResult {
    pid: Pid,
    passes: u32,
    runs: Vec<ScanRun>,
    pages: usize,
}

impl ScanResult {
    /// A scan result from one entry per page (parallel vectors). Rejects vectors of
    /// different lengths and addresses that do not strictly ascend.
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
        let runs = addrs
            .iter()
            .zip(&counts)
            .zip(&sizes)
            .map(|((&addr, &count), &size)| ScanRun {
                addr,
                pages: 1,
                count,
                size,
            });
        ScanResult::from_runs(pid, passes, runs)
    }

    /// A scan result from its runs, in address order. Rejects a run of 0 pages, a run
    /// that ends past the address space, and runs that overlap or do not ascend; merges
    /// adjacent runs of the same size and count.
    pub fn from_runs(
        pid: Pid,
        passes: u32,
        runs: impl IntoIterator<Item = ScanRun>,
    ) -> Result<ScanResult, EngineError> {
        // checked and merged in place: a `Vec` given here is not copied (a VM-sized scan
        // is millions of runs)
        let mut runs: Vec<ScanRun> = runs.into_iter().collect();
        let mut pages = 0usize;
        let mut kept = 0usize;
        for i in 0..runs.len() {
            let r = runs[i];
            if r.pages == 0 {
                return Err(EngineError::failed(format!(
                    "scan of pid {pid}: a run of 0 pages at {:#x}",
                    r.addr
                )));
            }
            if r.addr.checked_add(r.page_run().bytes()).is_none() {
                return Err(EngineError::failed(format!(
                    "scan of pid {pid}: {} page(s) from {:#x} end past the address space",
                    r.pages, r.addr
                )));
            }
            pages = pages.saturating_add(r.pages as usize);
            match kept.checked_sub(1).map(|j| &mut runs[j]) {
                Some(last) if r.addr < last.end() => {
                    return Err(EngineError::failed(format!(
                        "scan of pid {pid}: address {:#x} follows {:#x}: not ascending",
                        r.addr,
                        last.end() - last.size.bytes()
                    )));
                }
                Some(last)
                    if last.end() == r.addr
                        && last.size == r.size
                        && last.count == r.count
                        && last.pages.checked_add(r.pages).is_some() =>
                {
                    last.pages += r.pages;
                }
                _ => {
                    runs[kept] = r;
                    kept += 1;
                }
            }
        }
        runs.truncate(kept);
        Ok(ScanResult {
            pid,
            passes,
            runs,
            pages,
        })
    }

    /// Like [`ScanResult::from_runs`], from the wire's parallel lists (sizes as codes
    /// 0, 1, 2); lists of different lengths or an unknown size code are an error naming
    /// them.
    pub fn from_columns(
        pid: Pid,
        passes: u32,
        addrs: &[u64],
        lens: &[u32],
        counts: &[u8],
        size_codes: &[u8],
    ) -> Result<ScanResult, EngineError> {
        if addrs.len() != lens.len()
            || addrs.len() != counts.len()
            || addrs.len() != size_codes.len()
        {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: {} addresses, {} lengths, {} counts and {} sizes differ in length",
                addrs.len(),
                lens.len(),
                counts.len(),
                size_codes.len()
            )));
        }
        let mut runs = Vec::with_capacity(addrs.len());
        for i in 0..addrs.len() {
            let size = PageSize::from_code(size_codes[i]).ok_or_else(|| {
                EngineError::failed(format!(
                    "scan of pid {pid}: unknown page size code {}",
                    size_codes[i]
                ))
            })?;
            runs.push(ScanRun {
                addr: addrs[i],
                pages: lens[i],
                count: counts[i],
                size,
            });
        }
        ScanResult::from_runs(pid, passes, runs)
    }

    /// The wire's parallel lists: start addresses, lengths in pages, counts, size codes.
    pub fn columns(&self) -> (Vec<u64>, Vec<u32>, Vec<u8>, Vec<u8>) {
        (
            self.runs.iter().map(|r| r.addr).collect(),
            self.runs.iter().map(|r| r.pages).collect(),
            self.runs.iter().map(|r| r.count).collect(),
            self.runs.iter().map(|r| r.size.code()).collect(),
        )
    }

    /// A scan result from pages in any order (sorted here); a repeated address is an error.
    pub fn from_pages(
        pid: Pid,
        passes: u32,
        pages: impl IntoIterator<Item = Page>,
    ) -> Result<ScanResult, EngineError> {
        let mut pages: Vec<Page> = pages.into_iter().collect();
        pages.sort_by_key(|p| p.addr);
        ScanResult::from_runs(
            pid,
            passes,
            pages.iter().map(|p| ScanRun {
                addr: p.addr,
                pages: 1,
                count: p.count,
                size: p.size,
            }),
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

    /// The runs, ascending.
    pub fn runs(&self) -> &[ScanRun] {
        &self.runs
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.pages
    }

    /// True when no page was present.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The pages, ascending (one value per page: prefer [`runs`](ScanResult::runs) where
    /// a run will do).
    pub fn pages(&self) -> impl Iterator<Item = Page> + '_ {
        self.runs.iter().flat_map(|r| {
            r.page_run().addrs().map(move |addr| Page {
                addr,
                count: r.count,
                size: r.size,
            })
        })
    }

    /// The size of the page that starts at `addr`, if the scan saw one there.
    pub fn page_size_at(&self, addr: u64) -> Option<PageSize> {
        let i = self.runs.partition_point(|r| r.addr <= addr);
        let r = self.runs.get(i.checked_sub(1)?)?;
        (addr < r.end() && (addr - r.addr).is_multiple_of(r.size.bytes())).then_some(r.size)
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
            ScanResult::from_columns(7, 1, &[0], &[1], &[0], &[9])
                .expect_err("must fail")
                .to_string(),
            "scan of pid 7: unknown page size code 9"
        );
    }

    fn run(addr: u64, pages: u32, count: u8, size: PageSize) -> ScanRun {
        ScanRun {
            addr,
            pages,
            count,
            size,
        }
    }

    #[test]
    fn runs_merge_into_the_canonical_form_and_expand_to_pages() {
        const K4: PageSize = PageSize::Size4K;
        let s = ScanResult::from_runs(
            1,
            3,
            [
                run(0x1000, 2, 0, K4),
                run(0x3000, 1, 0, K4), // follows with the same count: merged
                run(0x4000, 1, 1, K4), // another count: a new run
                run(0x20_0000, 1, 1, PageSize::Size2M), // another size: a new run
                run(0x40_0000, 1, 1, K4), // a gap: a new run
            ],
        )
        .expect("valid");
        assert_eq!(s.runs().len(), 4);
        assert_eq!(s.runs()[0], run(0x1000, 3, 0, K4));
        assert_eq!(s.len(), 6);
        let dense = ScanResult::new(
            1,
            3,
            s.pages().map(|p| p.addr).collect(),
            s.pages().map(|p| p.count).collect(),
            s.pages().map(|p| p.size).collect(),
        )
        .expect("valid");
        assert_eq!(dense, s, "per-page input gives the same runs");
        let (a, l, c, z) = s.columns();
        assert_eq!(
            ScanResult::from_columns(1, 3, &a, &l, &c, &z).expect("valid"),
            s
        );
        assert_eq!(s.page_size_at(0x2000), Some(K4));
        assert_eq!(s.page_size_at(0x20_0000), Some(PageSize::Size2M));
        assert_eq!(s.page_size_at(0x20_1000), None, "inside a huge page");
        assert_eq!(s.page_size_at(0x5000), None, "not scanned");
        assert_eq!(s.page_size_at(0), None);
    }

    #[test]
    fn bad_runs_are_refused_with_the_reason() {
        const K4: PageSize = PageSize::Size4K;
        let e = |runs: Vec<ScanRun>| {
            ScanResult::from_runs(5, 1, runs)
                .expect_err("must fail")
                .to_string()
        };
        assert_eq!(
            e(vec![run(0x1000, 0, 0, K4)]),
            "scan of pid 5: a run of 0 pages at 0x1000"
        );
        assert_eq!(
            e(vec![run(0x1000, 2, 0, K4), run(0x2000, 1, 1, K4)]),
            "scan of pid 5: address 0x2000 follows 0x2000: not ascending"
        );
        assert_eq!(
            e(vec![run(u64::MAX - 0xfff, 2, 0, K4)]),
            format!(
                "scan of pid 5: 2 page(s) from {:#x} end past the address space",
                u64::MAX - 0xfff
            )
        );
        assert!(ScanResult::from_columns(5, 1, &[0], &[], &[0], &[0]).is_err());
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
