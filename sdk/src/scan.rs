//! [`ScanResult`]: the merged scan passes of one pid, run-length, kept as the wire's
//! parallel columns.
//!
//! The columns are what crosses every boundary (the WIT `scan-result`, the native ABI), so
//! an engine receives them as they are, checked once and never rebuilt into one value per
//! run: a VM-sized scan is millions of runs, and a wasm engine would otherwise write a
//! second copy of them into its linear memory each round. Plain data; no I/O.

use crate::EngineError;
use crate::types::{Page, PageRun, PageSize, Pid};

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
///
/// Held as parallel columns (start addresses, lengths in pages, counts, size codes): read
/// them directly ([`addrs`](ScanResult::addrs), [`lens`](ScanResult::lens),
/// [`counts`](ScanResult::counts), [`size_codes`](ScanResult::size_codes)) in a loop that
/// must be fast, or as [`ScanRun`] values through [`runs`](ScanResult::runs).
///
/// ```
/// use etmem_sdk::{EngineError, Page, PageSize, ScanResult};
///
/// # fn main() -> Result<(), EngineError> {
/// // pid 42 over 3 passes: two idle 4 KiB pages, one page accessed each pass, one 2 MiB page
/// let scan = ScanResult::from_pages(42, 3, [
///     Page { addr: 0x2000, count: 0, size: PageSize::Size4K },
///     Page { addr: 0x1000, count: 0, size: PageSize::Size4K }, // any order: sorted
///     Page { addr: 0x3000, count: 3, size: PageSize::Size4K },
///     Page { addr: 0x20_0000, count: 0, size: PageSize::Size2M },
/// ])?;
/// assert_eq!((scan.pid(), scan.passes(), scan.len(), scan.run_count()), (42, 3, 4, 3));
/// let first = scan.run(0).expect("a run");
/// assert_eq!((first.addr, first.pages, first.count), (0x1000, 2, 0)); // merged
/// let idle_kib: u64 = scan.runs().filter(|r| r.count == 0).map(|r| r.page_run().bytes() >> 10).sum();
/// assert_eq!(idle_kib, 8 + 2048);
/// // the same scan as the wire's columns (addresses, lengths, counts, size codes)
/// let (addrs, lens, counts, sizes) = scan.columns();
/// assert_eq!(ScanResult::from_columns(42, 3, addrs, lens, counts, sizes)?, scan);
/// assert_eq!(scan.page_size_at(0x20_0000), Some(PageSize::Size2M));
/// // overlapping runs are refused, naming the pid
/// let bad = ScanResult::from_columns(42, 3, &[0x2000, 0x1000], &[1, 1], &[0, 0], &[0, 0]);
/// assert!(bad.unwrap_err().to_string().contains("pid 42"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanResult {
    pid: Pid,
    passes: u32,
    addrs: Vec<u64>,
    lens: Vec<u32>,
    counts: Vec<u8>,
    /// wire codes, each one [`PageSize::from_code`] knows (checked on the way in)
    sizes: Vec<u8>,
    pages: usize,
}

/// The general pass of [`ScanResult::from_column_vecs`]: checks every run (the first bad one
/// is the error, naming it) and merges runs that can be one, in place; returns the pages.
fn merge_in_place(
    pid: Pid,
    addrs: &mut Vec<u64>,
    lens: &mut Vec<u32>,
    counts: &mut Vec<u8>,
    sizes: &mut Vec<u8>,
) -> Result<usize, EngineError> {
    let n = addrs.len();
    let mut pages = 0usize;
    // the run kept last: (index in the output, its end, its size's bytes)
    let mut last: Option<(usize, u64, u64)> = None;
    let mut kept = 0usize;
    for i in 0..n {
        let (addr, len, count, code) = (addrs[i], lens[i], counts[i], sizes[i]);
        let Some(size) = PageSize::from_code(code) else {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: unknown page size code {code}"
            )));
        };
        if len == 0 {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: a run of 0 pages at {addr:#x}"
            )));
        }
        let Some(end) = addr.checked_add(u64::from(len) * size.bytes()) else {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: {len} page(s) from {addr:#x} end past the address space"
            )));
        };
        pages = pages.saturating_add(len as usize);
        if let Some((j, last_end, last_bytes)) = last {
            if addr < last_end {
                return Err(EngineError::failed(format!(
                    "scan of pid {pid}: address {addr:#x} follows {:#x}: not ascending",
                    last_end - last_bytes
                )));
            }
            if last_end == addr
                && sizes[j] == code
                && counts[j] == count
                && let Some(sum) = lens[j].checked_add(len)
            {
                lens[j] = sum;
                last = Some((j, end, last_bytes));
                continue;
            }
        }
        if kept != i {
            addrs[kept] = addr;
            lens[kept] = len;
            counts[kept] = count;
            sizes[kept] = code;
        }
        last = Some((kept, end, size.bytes()));
        kept += 1;
    }
    if kept != n {
        addrs.truncate(kept);
        lens.truncate(kept);
        counts.truncate(kept);
        sizes.truncate(kept);
    }
    Ok(pages)
}

/// How many runs from the start of the columns are valid and canonical (each of at least
/// one page, of a known size, inside the address space, after the previous one's end and
/// not one that could merge with it), and their pages. The fast path of
/// [`ScanResult::from_column_vecs`]: it reads the columns once and writes nothing.
///
/// It checks blocks of [`BLOCK`] runs without a branch per run (the checks of a block are
/// and-ed, the compiler unrolls the block), then the runs of a failing block and the tail
/// one by one to find the first bad one. A wasm engine runs this over every scan it
/// receives: its compiler keeps the per-iteration cost of a loop (the call deadline's
/// check, values saved across it) on every back-edge, so a loop per run of a few
/// instructions would cost it twice what a native engine pays.
fn canonical_prefix(addrs: &[u64], lens: &[u32], counts: &[u8], sizes: &[u8]) -> (usize, u64) {
    /// The shift of each size code; code 3 is invalid (caught by `code < 3`).
    const SHIFTS: [u32; 4] = [12, 21, 30, 0];
    let n = addrs
        .len()
        .min(lens.len())
        .min(counts.len())
        .min(sizes.len());
    let (addrs, lens, counts, sizes) = (&addrs[..n], &lens[..n], &counts[..n], &sizes[..n]);
    let mut pages = 0u64;
    let mut prev_end = 0u64;
    // size code and count of the previous run; no run has this one
    let mut prev_key = u16::MAX;
    let mut i = 0;
    while i + BLOCK <= n {
        let (a, l) = (&addrs[i..i + BLOCK], &lens[i..i + BLOCK]);
        let (c, z) = (&counts[i..i + BLOCK], &sizes[i..i + BLOCK]);
        let (mut end, mut key, mut sum, mut ok) = (prev_end, prev_key, pages, true);
        for j in 0..BLOCK {
            let code = z[j];
            let k = u16::from(code) << 8 | u16::from(c[j]);
            let (e, over) = a[j].overflowing_add(u64::from(l[j]) << SHIFTS[usize::from(code & 3)]);
            ok &= code < 3 && l[j] != 0 && !over && a[j] >= end && !(a[j] == end && k == key);
            sum += u64::from(l[j]);
            end = e;
            key = k;
        }
        if !ok {
            break;
        }
        (prev_end, prev_key, pages) = (end, key, sum);
        i += BLOCK;
    }
    for i in i..n {
        let shift = match sizes[i] {
            0 => 12,
            1 => 21,
            2 => 30,
            _ => return (i, pages),
        };
        let (addr, len) = (addrs[i], lens[i]);
        let key = u16::from(sizes[i]) << 8 | u16::from(counts[i]);
        let Some(end) = addr.checked_add(u64::from(len) << shift) else {
            return (i, pages);
        };
        if len == 0 || addr < prev_end || (addr == prev_end && key == prev_key) {
            return (i, pages);
        }
        pages += u64::from(len);
        prev_end = end;
        prev_key = key;
    }
    (n, pages)
}

/// Runs checked together by [`canonical_prefix`].
const BLOCK: usize = 8;

/// The size of a code already checked on the way in.
fn size_of(code: u8) -> PageSize {
    PageSize::from_code(code).unwrap_or(PageSize::Size4K)
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
        let lens = vec![1; addrs.len()];
        let sizes = sizes.iter().map(|s| s.code()).collect();
        ScanResult::from_column_vecs(pid, passes, addrs, lens, counts, sizes)
    }

    /// A scan result from its runs, in address order. Rejects a run of 0 pages, a run
    /// that ends past the address space, and runs that overlap or do not ascend; merges
    /// adjacent runs of the same size and count.
    pub fn from_runs(
        pid: Pid,
        passes: u32,
        runs: impl IntoIterator<Item = ScanRun>,
    ) -> Result<ScanResult, EngineError> {
        let runs = runs.into_iter();
        let n = runs.size_hint().0;
        let (mut addrs, mut lens, mut counts, mut sizes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in runs {
            addrs.push(r.addr);
            lens.push(r.pages);
            counts.push(r.count);
            sizes.push(r.size.code());
        }
        ScanResult::from_column_vecs(pid, passes, addrs, lens, counts, sizes)
    }

    /// Like [`ScanResult::from_runs`], from the wire's parallel lists (sizes as codes
    /// 0, 1, 2); lists of different lengths or an unknown size code are an error naming
    /// them. Copies the lists: [`from_column_vecs`](ScanResult::from_column_vecs) takes
    /// them as they are.
    pub fn from_columns(
        pid: Pid,
        passes: u32,
        addrs: &[u64],
        lens: &[u32],
        counts: &[u8],
        size_codes: &[u8],
    ) -> Result<ScanResult, EngineError> {
        ScanResult::from_column_vecs(
            pid,
            passes,
            addrs.to_vec(),
            lens.to_vec(),
            counts.to_vec(),
            size_codes.to_vec(),
        )
    }

    /// [`from_columns`](ScanResult::from_columns) on owned lists, kept as they are when
    /// they are already canonical (checked in one pass that writes nothing); runs that can
    /// be merged are merged in place.
    pub fn from_column_vecs(
        pid: Pid,
        passes: u32,
        mut addrs: Vec<u64>,
        mut lens: Vec<u32>,
        mut counts: Vec<u8>,
        mut sizes: Vec<u8>,
    ) -> Result<ScanResult, EngineError> {
        let n = addrs.len();
        if lens.len() != n || counts.len() != n || sizes.len() != n {
            return Err(EngineError::failed(format!(
                "scan of pid {pid}: {} addresses, {} lengths, {} counts and {} sizes differ in length",
                n,
                lens.len(),
                counts.len(),
                sizes.len()
            )));
        }
        let (prefix, fast_pages) = canonical_prefix(&addrs, &lens, &counts, &sizes);
        let pages = if prefix == n {
            usize::try_from(fast_pages).unwrap_or(usize::MAX)
        } else {
            // something to merge or to refuse: the general pass, from the start
            merge_in_place(pid, &mut addrs, &mut lens, &mut counts, &mut sizes)?
        };
        Ok(ScanResult {
            pid,
            passes,
            addrs,
            lens,
            counts,
            sizes,
            pages,
        })
    }

    /// The wire's parallel lists: start addresses, lengths in pages, counts, size codes.
    pub fn columns(&self) -> (&[u64], &[u32], &[u8], &[u8]) {
        (&self.addrs, &self.lens, &self.counts, &self.sizes)
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
    pub fn runs(
        &self,
    ) -> impl ExactSizeIterator<Item = ScanRun> + DoubleEndedIterator + Clone + '_ {
        (0..self.addrs.len()).map(move |i| self.run_at(i))
    }

    /// Number of runs.
    pub fn run_count(&self) -> usize {
        self.addrs.len()
    }

    /// Run `i` (0-based, ascending), if there is one.
    pub fn run(&self, i: usize) -> Option<ScanRun> {
        (i < self.addrs.len()).then(|| self.run_at(i))
    }

    fn run_at(&self, i: usize) -> ScanRun {
        ScanRun {
            addr: self.addrs[i],
            pages: self.lens[i],
            count: self.counts[i],
            size: size_of(self.sizes[i]),
        }
    }

    /// The runs' start addresses, ascending.
    pub fn addrs(&self) -> &[u64] {
        &self.addrs
    }

    /// The runs' lengths in pages (each at least 1).
    pub fn lens(&self) -> &[u32] {
        &self.lens
    }

    /// The runs' counts.
    pub fn counts(&self) -> &[u8] {
        &self.counts
    }

    /// The runs' page sizes as wire codes ([`PageSize::from_code`] knows each).
    pub fn size_codes(&self) -> &[u8] {
        &self.sizes
    }

    /// Number of pages.
    pub fn len(&self) -> usize {
        self.pages
    }

    /// True when no page was present.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The pages, ascending (one value per page: prefer [`runs`](ScanResult::runs) where
    /// a run will do).
    pub fn pages(&self) -> impl Iterator<Item = Page> + '_ {
        self.runs().flat_map(|r| {
            r.page_run().addrs().map(move |addr| Page {
                addr,
                count: r.count,
                size: r.size,
            })
        })
    }

    /// The size of the page that starts at `addr`, if the scan saw one there.
    pub fn page_size_at(&self, addr: u64) -> Option<PageSize> {
        let i = self.addrs.partition_point(|&a| a <= addr);
        let r = self.run(i.checked_sub(1)?)?;
        (addr < r.end() && (addr - r.addr).is_multiple_of(r.size.bytes())).then_some(r.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(s.run(0), Some(run(0x1000, 3, 0, K4)));
        assert_eq!(s.run(4), None);
        assert_eq!(s.runs().next_back(), Some(run(0x40_0000, 1, 1, K4)));
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
            ScanResult::from_columns(1, 3, a, l, c, z).expect("valid"),
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
    fn columns_are_merged_in_place_and_kept_when_canonical() {
        // 0x1000 and 0x2000 merge; 0x3000 has another count; the last two would overflow
        // a run's u32 length and stay apart
        let big = u32::MAX - 1;
        let end = 0x10_0000 + u64::from(big) * 4096;
        let s = ScanResult::from_column_vecs(
            2,
            1,
            vec![0x1000, 0x2000, 0x3000, 0x10_0000, end],
            vec![1, 1, 1, big, 2],
            vec![0, 0, 1, 0, 0],
            vec![0; 5],
        )
        .expect("valid");
        assert_eq!(s.columns().0, [0x1000, 0x3000, 0x10_0000, end]);
        assert_eq!(s.lens(), [2, 1, big, 2]);
        assert_eq!(s.counts(), [0, 1, 0, 0]);
        assert_eq!(s.size_codes(), [0; 4]);
        assert_eq!(s.run_count(), 4);
        assert_eq!(s.len(), 4 + big as usize + 1);
        let (a, l, c, z) = s.columns();
        let again =
            ScanResult::from_column_vecs(2, 1, a.to_vec(), l.to_vec(), c.to_vec(), z.to_vec())
                .expect("valid");
        assert_eq!(again, s, "a canonical scan is kept as it is");
    }

    /// [`canonical_prefix`] one run at a time, as the reference for its blocks.
    fn prefix_run_by_run(a: &[u64], l: &[u32], c: &[u8], z: &[u8]) -> (usize, u64) {
        let (mut pages, mut prev_end, mut prev_key) = (0u64, 0u64, u16::MAX);
        for i in 0..a.len() {
            let Some(size) = PageSize::from_code(z[i]) else {
                return (i, pages);
            };
            let key = u16::from(z[i]) << 8 | u16::from(c[i]);
            let end = a[i].checked_add(u64::from(l[i]) * size.bytes());
            match end {
                Some(end)
                    if l[i] != 0 && a[i] >= prev_end && !(a[i] == prev_end && key == prev_key) =>
                {
                    pages += u64::from(l[i]);
                    prev_end = end;
                    prev_key = key;
                }
                _ => return (i, pages),
            }
        }
        (a.len(), pages)
    }

    #[test]
    fn the_blocks_of_the_fast_check_find_the_first_bad_run() {
        // a canonical scan of 37 runs (blocks of 8 and a tail), then one defect of each
        // kind at every position: the fast check stops where the run-by-run one does
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut a, mut l, mut c, mut z) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut at = 0x1000u64;
        for i in 0..37u8 {
            let code = u8::from(next() % 5 == 0);
            let size = PageSize::from_code(code).map_or(4096, |s| s.bytes());
            at = at.next_multiple_of(size) + size * (next() % 2);
            let len = u32::try_from(next() % 30 + 1).unwrap_or(1);
            a.push(at);
            l.push(len);
            c.push(i % 4); // neighbours never share a count: canonical
            z.push(code);
            at += u64::from(len) * size;
        }
        let n = a.len();
        let want = prefix_run_by_run(&a, &l, &c, &z);
        assert_eq!(want.0, n, "the generated scan is canonical");
        assert_eq!(canonical_prefix(&a, &l, &c, &z), want);
        for p in 0..n {
            for defect in 0..5 {
                let (mut a, mut l, mut c, mut z) = (a.clone(), l.clone(), c.clone(), z.clone());
                match defect {
                    0 => l[p] = 0,
                    1 => z[p] = 3,
                    2 if p > 0 => a[p] = a[p - 1], // overlaps the run before
                    3 if p > 0 => {
                        // follows the run before with its size and count: mergeable
                        let size = PageSize::from_code(z[p - 1]).map_or(4096, |s| s.bytes());
                        a[p] = a[p - 1] + u64::from(l[p - 1]) * size;
                        (c[p], z[p]) = (c[p - 1], z[p - 1]);
                    }
                    _ => a[p] = u64::MAX - 0xfff, // ends past the address space
                }
                let got = canonical_prefix(&a, &l, &c, &z);
                assert_eq!(
                    got,
                    prefix_run_by_run(&a, &l, &c, &z),
                    "defect {defect} at run {p}"
                );
                assert!(got.0 <= p, "defect {defect} at run {p} not found: {got:?}");
            }
        }
    }
}
