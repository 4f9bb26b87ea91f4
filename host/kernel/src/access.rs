//! [`AccessMap`]: the dense result of one tracking round, shared by every tracker.
//!
//! For each tracked VMA it holds one `u8` per base page (the access count over the
//! round's passes, or [`ABSENT`] for a page the tracker never saw present) plus one bit
//! per PMD-sized and PUD-sized chunk saying "this chunk is one huge page whose count
//! lives in its first slot". That is 1 byte and a fraction of a bit per 4 KiB page, and
//! no heap node per page. DAMON regions are written into the same slots.
//!
//! This module holds data only; it never reads the kernel.

use crate::parse::idle_pages::PageSizes;
use crate::parse::maps::Vma;

/// Slot value of a page never seen present in this round.
pub const ABSENT: u8 = u8::MAX;
/// Highest count a slot holds (counts saturate here).
pub const MAX_COUNT: u8 = u8::MAX - 1;

/// One tracked page (or huge page) and its count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageAccess {
    /// page address (aligned to `page_size`)
    pub addr: u64,
    /// bytes: PTE, PMD or PUD size
    pub page_size: u64,
    /// accesses (tracker weights) summed over the round's passes
    pub count: u8,
}

#[derive(Debug, Clone)]
struct Run {
    start: u64,
    end: u64,
    counts: Vec<u8>,
    /// one bit per PMD chunk (chunk index relative to `start` rounded down)
    pmd: Vec<u64>,
    /// one bit per PUD chunk
    pud: Vec<u64>,
    /// a hugetlb VMA's page size (PMD or PUD): every chunk is one huge page, for good
    fixed: Option<u64>,
    /// whether any bit of `pmd` or `pud` was ever set: when not, a record of base pages
    /// has no huge page to split (the common record costs no bit clearing)
    huge: bool,
}

fn bit(v: &[u64], i: u64) -> bool {
    usize::try_from(i / 64)
        .ok()
        .and_then(|w| v.get(w))
        .is_some_and(|w| w >> (i % 64) & 1 == 1)
}

fn set_bit(v: &mut [u64], i: u64, on: bool) {
    if let Some(w) = usize::try_from(i / 64).ok().and_then(|w| v.get_mut(w)) {
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
}

/// Adds `w` to a slot, marking it present; saturates at [`MAX_COUNT`].
#[inline]
pub fn bump(slot: &mut u8, w: u8) {
    *slot = if *slot == ABSENT {
        w.min(MAX_COUNT)
    } else {
        slot.saturating_add(w).min(MAX_COUNT)
    };
}

/// Per-page access counts for the VMAs of one process over one round.
#[derive(Debug, Clone)]
pub struct AccessMap {
    sizes: PageSizes,
    runs: Vec<Run>,
    passes: u32,
    /// the range the last [`record_run`](AccessMap::record_run) started in (records come
    /// in address order: the next one is most often in the same range)
    hint: usize,
}

impl AccessMap {
    /// An empty map over `vmas` (overlapping or unsorted input is sorted and clipped).
    pub fn new(vmas: &[Vma], sizes: PageSizes) -> Self {
        // a hugetlb VMA (smaps' KernelPageSize is a PMD or PUD size) holds only huge pages
        let fixed = |v: &Vma| {
            v.kernel_page_kb
                .map(|kb| kb.saturating_mul(1024))
                .filter(|&b| b == sizes.pmd || b == sizes.pud)
                .filter(|&b| v.start.is_multiple_of(b) && v.end.is_multiple_of(b))
        };
        let mut ranges: Vec<(u64, u64, Option<u64>)> = vmas
            .iter()
            .filter(|v| v.end > v.start)
            .map(|v| (v.start, v.end, fixed(v)))
            .collect();
        ranges.sort_unstable();
        let mut runs: Vec<Run> = Vec::with_capacity(ranges.len());
        for (start, end, fixed) in ranges {
            let start = start.max(runs.last().map_or(0, |r| r.end));
            if start >= end {
                continue;
            }
            let pages = (end - start).div_ceil(sizes.pte);
            let chunks = |sz: u64| ((end - 1) / sz - start / sz + 1).div_ceil(64);
            let mut run = Run {
                start,
                end,
                counts: vec![ABSENT; usize::try_from(pages).unwrap_or(0)],
                pmd: vec![0; usize::try_from(chunks(sizes.pmd)).unwrap_or(0)],
                pud: vec![0; usize::try_from(chunks(sizes.pud)).unwrap_or(0)],
                fixed: fixed.filter(|&f| start.is_multiple_of(f)),
                huge: false,
            };
            if let Some(f) = run.fixed {
                let bits = if f == sizes.pud {
                    &mut run.pud
                } else {
                    &mut run.pmd
                };
                for i in 0..(end - start) / f {
                    set_bit(bits, i, true);
                }
                run.huge = true;
            }
            runs.push(run);
        }
        AccessMap {
            sizes,
            runs,
            passes: 0,
            hint: 0,
        }
    }

    /// The page sizes in use.
    pub fn sizes(&self) -> PageSizes {
        self.sizes
    }

    /// The tracked ranges, ascending.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|r| (r.start, r.end))
    }

    /// Number of tracked ranges.
    pub fn nr_ranges(&self) -> usize {
        self.runs.len()
    }

    /// The slots (one per base page) of range `i`, with its start address.
    pub fn slots_mut(&mut self, i: usize) -> Option<(u64, &mut [u8])> {
        self.runs
            .get_mut(i)
            .map(|r| (r.start, r.counts.as_mut_slice()))
    }

    /// Whether range `i` is a hugetlb VMA (one count per huge page).
    pub fn is_hugetlb(&self, i: usize) -> bool {
        self.runs.get(i).is_some_and(|r| r.fixed.is_some())
    }

    /// Passes recorded so far.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Marks the end of one pass.
    pub fn finish_pass(&mut self) {
        self.passes += 1;
    }

    fn run_index(&self, addr: u64) -> Option<usize> {
        let i = self
            .runs
            .partition_point(|r| r.start <= addr)
            .checked_sub(1)?;
        (addr < self.runs[i].end).then_some(i)
    }

    /// Records `nr` pages of `page_size` at `addr`, each accessed with weight `w`
    /// (0 = seen present, not accessed). Pages outside the tracked VMAs are ignored.
    /// A PMD- or PUD-sized page is one slot (its first base page). Costs one lookup per
    /// record and range it touches, then a pass over its slots: a run of base pages is one
    /// slice (see the reference per page in the tests).
    pub fn record_run(&mut self, addr: u64, page_size: u64, nr: u64, w: u8) {
        if nr == 0 || page_size == 0 {
            return;
        }
        let sizes = self.sizes;
        // the address after the last page (saturated: such pages lie in no range)
        let end = addr.saturating_add(nr.saturating_mul(page_size));
        // the first range that ends after `addr`
        let first = match self.runs.get(self.hint) {
            Some(r) if r.start <= addr && addr < r.end => self.hint,
            _ => self.runs.partition_point(|r| r.end <= addr),
        };
        self.hint = first;
        // the common record: base pages inside one range of base pages
        if let Some(r) = self.runs.get_mut(first)
            && page_size == sizes.pte
            && r.fixed.is_none()
            && r.start <= addr
            && end <= r.end
            && addr.is_multiple_of(sizes.pte)
        {
            let sh = sizes.pte.trailing_zeros();
            let lo = usize::try_from((addr - r.start) >> sh).unwrap_or(usize::MAX);
            let n = usize::try_from(nr).unwrap_or(usize::MAX);
            let hi = lo.saturating_add(n).min(r.counts.len());
            for slot in r.counts.get_mut(lo..hi).unwrap_or(&mut []) {
                bump(slot, w);
            }
            // a chunk marked huge that holds one of them was split
            if !r.huge {
                return;
            }
            for (bits, sz) in [(&mut r.pmd, sizes.pmd), (&mut r.pud, sizes.pud)] {
                let sh = sz.trailing_zeros();
                let base = r.start >> sh;
                for c in (addr >> sh)..=((end - 1) >> sh) {
                    set_bit(bits, c - base, false);
                }
            }
            return;
        }
        // page sizes are powers of two (PageSizes): shifts, not divisions, per record
        let div = |x: u64, by: u64| {
            if by.is_power_of_two() {
                x >> by.trailing_zeros()
            } else {
                x / by
            }
        };
        let div_ceil = |x: u64, by: u64| {
            if by.is_power_of_two() {
                (x >> by.trailing_zeros()) + u64::from(x & (by - 1) != 0)
            } else {
                x.div_ceil(by)
            }
        };
        for r in &mut self.runs[first..] {
            if r.start >= end {
                break;
            }
            // pages k0..k1 of the record start inside this range
            let k0 = div_ceil(r.start.saturating_sub(addr), page_size);
            let k1 = div_ceil(r.end - addr, page_size).min(nr);
            if k0 >= k1 {
                continue;
            }
            let a0 = addr + k0 * page_size;
            let a_last = addr + (k1 - 1) * page_size;
            if let Some(f) = r.fixed {
                // hugetlb: one count per huge page, whatever size the tracker reports
                // (pagemap gives every base page of it); never split
                let slot_of = |h: u64| usize::try_from(div(h - r.start, sizes.pte)).ok();
                if addr.is_multiple_of(page_size) && f.is_multiple_of(page_size) {
                    // the pages that start a huge page: the multiples of `f`
                    let mut h = a0.next_multiple_of(f);
                    while h <= a_last {
                        if let Some(slot) = slot_of(h).and_then(|i| r.counts.get_mut(i)) {
                            bump(slot, w);
                        }
                        h += f;
                    }
                } else {
                    for k in k0..k1 {
                        let a = addr + k * page_size;
                        if a.is_multiple_of(f)
                            && let Some(slot) = slot_of(a).and_then(|i| r.counts.get_mut(i))
                        {
                            bump(slot, w);
                        }
                    }
                }
                continue;
            }
            let (pmd_base, pud_base) = (div(r.start, sizes.pmd), div(r.start, sizes.pud));
            if page_size == sizes.pte {
                // base pages: one slot each, in a row; a chunk marked huge that holds one
                // was split
                for c in div(a0, sizes.pmd)..=div(a_last, sizes.pmd) {
                    set_bit(&mut r.pmd, c - pmd_base, false);
                }
                for c in div(a0, sizes.pud)..=div(a_last, sizes.pud) {
                    set_bit(&mut r.pud, c - pud_base, false);
                }
                let lo = usize::try_from(div(a0 - r.start, sizes.pte)).unwrap_or(usize::MAX);
                let n = usize::try_from(k1 - k0).unwrap_or(usize::MAX);
                let hi = lo.saturating_add(n).min(r.counts.len());
                for slot in r.counts.get_mut(lo..hi).unwrap_or(&mut []) {
                    bump(slot, w);
                }
                continue;
            }
            // huge pages (or another size): one slot each, its first base page
            for k in k0..k1 {
                let a = addr + k * page_size;
                if page_size == sizes.pmd {
                    set_bit(&mut r.pmd, div(a, sizes.pmd) - pmd_base, true);
                    r.huge = true;
                } else if page_size == sizes.pud {
                    set_bit(&mut r.pud, div(a, sizes.pud) - pud_base, true);
                    r.huge = true;
                }
                if let Some(slot) = usize::try_from(div(a - r.start, sizes.pte))
                    .ok()
                    .and_then(|i| r.counts.get_mut(i))
                {
                    bump(slot, w);
                }
            }
        }
    }

    /// Adds `count` to every base page of `[start, end)` that lies in a tracked VMA
    /// (DAMON regions, which have one count for a whole region).
    pub fn record_region(&mut self, start: u64, end: u64, count: u8) {
        let pte = self.sizes.pte;
        let first = self.runs.partition_point(|r| r.end <= start);
        for r in &mut self.runs[first..] {
            if r.start >= end {
                break;
            }
            if let Some(f) = r.fixed {
                // hugetlb: the huge pages whose first base page the region covers
                let first = start.max(r.start).next_multiple_of(f);
                let mut h = first;
                while h < end.min(r.end) {
                    if let Some(slot) = usize::try_from((h - r.start) / pte)
                        .ok()
                        .and_then(|s| r.counts.get_mut(s))
                    {
                        bump(slot, count);
                    }
                    h += f;
                }
                continue;
            }
            let lo = (start.max(r.start) - r.start) / pte;
            let hi = (end.min(r.end) - r.start).div_ceil(pte);
            let (lo, hi) = (
                usize::try_from(lo).unwrap_or(usize::MAX),
                usize::try_from(hi).unwrap_or(usize::MAX),
            );
            for slot in r.counts.get_mut(lo..hi).unwrap_or(&mut []) {
                bump(slot, count);
            }
        }
    }

    /// The count of the page containing `addr` (`None` if absent or untracked).
    pub fn get(&self, addr: u64) -> Option<u8> {
        let r = &self.runs[self.run_index(addr)?];
        let s = self.sizes;
        let slot_addr = if bit(&r.pud, addr / s.pud - r.start / s.pud) {
            (addr & !(s.pud - 1)).max(r.start)
        } else if bit(&r.pmd, addr / s.pmd - r.start / s.pmd) {
            (addr & !(s.pmd - 1)).max(r.start)
        } else {
            addr
        };
        let v = *r
            .counts
            .get(usize::try_from((slot_addr - r.start) / s.pte).ok()?)?;
        (v != ABSENT).then_some(v)
    }

    /// Every present page (huge pages once), ascending.
    pub fn iter(&self) -> impl Iterator<Item = PageAccess> + '_ {
        let s = self.sizes;
        self.runs.iter().flat_map(move |r| pages_of(s, r))
    }

    /// Calls `f(addr, page_size, count)` for every present page (huge pages once), in
    /// address order: the pages of [`iter`](AccessMap::iter), a range without huge pages
    /// as one pass over its slots.
    pub fn for_each_page(&self, mut f: impl FnMut(u64, u64, u8)) {
        let s = self.sizes;
        for r in &self.runs {
            if !r.huge || (r.pmd.iter().all(|&w| w == 0) && r.pud.iter().all(|&w| w == 0)) {
                let mut addr = r.start;
                for &c in &r.counts {
                    if c != ABSENT {
                        f(addr, s.pte, c);
                    }
                    addr += s.pte;
                }
                continue;
            }
            for p in pages_of(s, r) {
                f(p.addr, p.page_size, p.count);
            }
        }
    }

    /// The present pages, ascending, as runs: `f(addr, page_size, pages, count)` for each
    /// stretch of `pages` pages of one size that follow each other with the same count
    /// (huge pages once each). In a range without huge pages it costs a byte compare per
    /// slot and a call per run; the same pages as [`for_each_page`](AccessMap::for_each_page).
    pub fn for_each_run(&self, mut f: impl FnMut(u64, u64, u64, u8)) {
        let s = self.sizes;
        for r in &self.runs {
            if !r.huge || (r.pmd.iter().all(|&w| w == 0) && r.pud.iter().all(|&w| w == 0)) {
                let c = &r.counts;
                let mut i = 0;
                while i < c.len() {
                    let v = c[i];
                    let n = c[i..].iter().position(|&x| x != v).unwrap_or(c.len() - i);
                    if v != ABSENT {
                        f(r.start + i as u64 * s.pte, s.pte, n as u64, v);
                    }
                    i += n;
                }
                continue;
            }
            let mut open: Option<(u64, u64, u64, u8)> = None; // addr, size, pages, count
            for p in pages_of(s, r) {
                match &mut open {
                    Some((a, z, n, c))
                        if *z == p.page_size && *c == p.count && *a + *n * *z == p.addr =>
                    {
                        *n += 1;
                    }
                    _ => {
                        if let Some((a, z, n, c)) = open {
                            f(a, z, n, c);
                        }
                        open = Some((p.addr, p.page_size, 1, p.count));
                    }
                }
            }
            if let Some((a, z, n, c)) = open {
                f(a, z, n, c);
            }
        }
    }

    /// At least as many as the pages [`for_each_page`](AccessMap::for_each_page) gives
    /// (the slots seen present): a capacity to reserve.
    pub fn present_slots(&self) -> usize {
        self.runs
            .iter()
            .map(|r| r.counts.iter().filter(|&&c| c != ABSENT).count())
            .sum()
    }

    /// Base pages covered by the map (tracked, present or not).
    pub fn tracked_base_pages(&self) -> u64 {
        self.runs.iter().map(|r| r.counts.len() as u64).sum()
    }

    /// Bytes of heap this map holds for bookkeeping.
    pub fn bookkeeping_bytes(&self) -> usize {
        self.runs.capacity() * std::mem::size_of::<Run>()
            + self
                .runs
                .iter()
                .map(|r| r.counts.capacity() + 8 * (r.pmd.capacity() + r.pud.capacity()))
                .sum::<usize>()
    }
}

/// The present pages of range `r`, ascending (huge pages once).
fn pages_of(s: PageSizes, r: &Run) -> impl Iterator<Item = PageAccess> + '_ {
    let mut idx = 0usize;
    std::iter::from_fn(move || {
        while idx < r.counts.len() {
            let addr = r.start + idx as u64 * s.pte;
            let page_size = if bit(&r.pud, addr / s.pud - r.start / s.pud) {
                s.pud
            } else if bit(&r.pmd, addr / s.pmd - r.start / s.pmd) {
                s.pmd
            } else {
                s.pte
            };
            let v = r.counts[idx];
            let base = if page_size == s.pte {
                idx += 1;
                addr
            } else {
                // skip to the end of the huge page
                let huge_start = addr & !(page_size - 1);
                let next = huge_start + page_size;
                idx = usize::try_from((next.min(r.end) - r.start).div_ceil(s.pte))
                    .unwrap_or(usize::MAX);
                huge_start
            };
            if v != ABSENT {
                return Some(PageAccess {
                    addr: base,
                    page_size,
                    count: v,
                });
            }
        }
        None
    })
}

/// A map over plain anonymous ranges `[start, end)` with x86-64 page sizes (tests).
#[cfg(test)]
pub(crate) fn map_over(ranges: &[(u64, u64)]) -> AccessMap {
    let vmas: Vec<Vma> = ranges
        .iter()
        .map(|&(start, end)| Vma {
            start,
            end,
            ..Vma::default()
        })
        .collect();
    AccessMap::new(&vmas, PageSizes::X86_64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page-by-page form of [`AccessMap::record_run`] (its first implementation: one
    /// range lookup per page): the reference the run form must match.
    impl AccessMap {
        fn record_run_per_page(&mut self, addr: u64, page_size: u64, nr: u64, w: u8) {
            let sizes = self.sizes;
            let mut a = addr;
            for _ in 0..nr {
                let Some(i) = self.run_index(a) else {
                    // skip to the next run if the page starts in a gap
                    let next = self.runs.partition_point(|r| r.start <= a);
                    match self.runs.get(next) {
                        Some(r) if r.start < addr.saturating_add(nr.saturating_mul(page_size)) => {
                            a = a.saturating_add(page_size);
                            continue;
                        }
                        _ => return,
                    }
                };
                let r = &mut self.runs[i];
                if let Some(f) = r.fixed {
                    // hugetlb: one count per huge page, whatever size the tracker reports
                    // (pagemap gives every base page of it); never split
                    let huge = a & !(f - 1);
                    if a == huge
                        && let Some(slot) = usize::try_from((huge - r.start) / sizes.pte)
                            .ok()
                            .and_then(|s| r.counts.get_mut(s))
                    {
                        bump(slot, w);
                    }
                    a = a.saturating_add(page_size);
                    continue;
                }
                let (pmd_base, pud_base) = (r.start / sizes.pmd, r.start / sizes.pud);
                if page_size == sizes.pte {
                    // a base page inside a chunk marked huge: the huge page was split
                    set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, false);
                    set_bit(&mut r.pud, a / sizes.pud - pud_base, false);
                } else if page_size == sizes.pmd {
                    set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, true);
                    r.huge = true;
                } else if page_size == sizes.pud {
                    set_bit(&mut r.pud, a / sizes.pud - pud_base, true);
                    r.huge = true;
                }
                let first = a.max(r.start);
                if let Some(slot) = usize::try_from((first - r.start) / sizes.pte)
                    .ok()
                    .and_then(|s| r.counts.get_mut(s))
                {
                    bump(slot, w);
                }
                a = a.saturating_add(page_size);
            }
        }
    }

    const K: u64 = 4096;
    const M2: u64 = 2 << 20;

    fn vma(start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            ..Vma::default()
        }
    }

    #[test]
    fn base_pages_counts_and_absent() {
        let mut m = AccessMap::new(&[vma(0x10000, 0x20000)], PageSizes::X86_64);
        assert_eq!(m.tracked_base_pages(), 16);
        m.record_run(0x10000, K, 2, 1);
        m.record_run(0x11000, K, 1, 3);
        m.record_run(0x13000, K, 1, 0);
        m.finish_pass();
        assert_eq!(m.get(0x10000), Some(1));
        assert_eq!(m.get(0x11fff), Some(4));
        assert_eq!(m.get(0x12000), None);
        assert_eq!(m.get(0x13000), Some(0));
        assert_eq!(m.get(0x30000), None);
        let v: Vec<_> = m.iter().collect();
        assert_eq!(
            v,
            vec![
                PageAccess {
                    addr: 0x10000,
                    page_size: K,
                    count: 1
                },
                PageAccess {
                    addr: 0x11000,
                    page_size: K,
                    count: 4
                },
                PageAccess {
                    addr: 0x13000,
                    page_size: K,
                    count: 0
                },
            ]
        );
        assert_eq!(m.passes(), 1);
    }

    #[test]
    fn saturates_below_absent() {
        let mut m = AccessMap::new(&[vma(0, K)], PageSizes::X86_64);
        for _ in 0..200 {
            m.record_run(0, K, 1, 3);
        }
        assert_eq!(m.get(0), Some(MAX_COUNT));
    }

    #[test]
    fn huge_pages_are_one_slot() {
        let mut m = AccessMap::new(&[vma(0, 3 * M2)], PageSizes::X86_64);
        m.record_run(M2, M2, 1, 1);
        m.record_run(0, K, 1, 0);
        let v: Vec<_> = m.iter().collect();
        assert_eq!(
            v,
            vec![
                PageAccess {
                    addr: 0,
                    page_size: K,
                    count: 0
                },
                PageAccess {
                    addr: M2,
                    page_size: M2,
                    count: 1
                },
            ]
        );
        assert_eq!(m.get(M2 + 5 * K), Some(1));
        // the huge page is split later: base records inside clear the huge mark
        m.record_run(M2 + K, K, 1, 1);
        assert_eq!(m.get(M2), Some(1));
        assert_eq!(m.get(M2 + K), Some(1));
        assert_eq!(m.get(M2 + 2 * K), None);
    }

    #[test]
    fn hugetlb_vmas_hold_huge_pages_whatever_the_tracker_reports() {
        let s = PageSizes::from_shift(12).expect("4k");
        let m2 = s.pmd;
        let ht = Vma {
            kernel_page_kb: Some(2048),
            ..vma(4 * m2, 8 * m2)
        };
        let base = Vma {
            kernel_page_kb: Some(4),
            ..vma(8 * m2, 8 * m2 + 2 * 4096)
        };
        let mut m = AccessMap::new(&[ht, base], s);
        // DAMON regions split mid huge page: each huge page counts once, from the region
        // holding its first base page
        m.record_region(4 * m2, 5 * m2 + 4096, 3);
        m.record_region(5 * m2 + 4096, 8 * m2 + 4096, 0);
        // pagemap-like trackers report every base page of a huge page: counted once
        m.record_run(6 * m2, s.pte, 512, 1);
        m.record_run(8 * m2, s.pte, 1, 2);
        let got: Vec<(u64, u64, u8)> = m.iter().map(|p| (p.addr, p.page_size, p.count)).collect();
        assert_eq!(
            got,
            vec![
                (4 * m2, m2, 3),
                (5 * m2, m2, 3),
                (6 * m2, m2, 1),
                (7 * m2, m2, 0),
                (8 * m2, s.pte, 2),
            ]
        );
        assert_eq!(m.get(6 * m2 + 12345), Some(1));
    }

    #[test]
    fn pages_outside_and_across_gaps() {
        let mut m = AccessMap::new(
            &[vma(0x1000, 0x3000), vma(0x8000, 0x9000)],
            PageSizes::X86_64,
        );
        m.record_run(0x0, K, 10, 1);
        let v: Vec<_> = m.iter().map(|p| p.addr).collect();
        assert_eq!(v, vec![0x1000, 0x2000, 0x8000]);
    }

    #[test]
    fn regions_fill_pages() {
        let mut m = AccessMap::new(
            &[vma(0x1000, 0x5000), vma(0x9000, 0xb000)],
            PageSizes::X86_64,
        );
        m.record_region(0x2000, 0xa000, 7);
        let v: Vec<_> = m.iter().map(|p| (p.addr, p.count)).collect();
        assert_eq!(v, vec![(0x2000, 7), (0x3000, 7), (0x4000, 7), (0x9000, 7)]);
        m.record_region(0x0, 0x100000, 1);
        assert_eq!(m.get(0x1000), Some(1));
        assert_eq!(m.get(0x2000), Some(8));
    }

    #[test]
    fn overlapping_vmas_are_clipped() {
        let m = AccessMap::new(
            &[vma(0x3000, 0x6000), vma(0x1000, 0x4000)],
            PageSizes::X86_64,
        );
        assert_eq!(
            m.ranges().collect::<Vec<_>>(),
            vec![(0x1000, 0x4000), (0x4000, 0x6000)]
        );
    }

    #[test]
    fn bookkeeping_is_under_two_bytes_per_page() {
        let m = AccessMap::new(
            &[vma(0, 1 << 30), vma(2 << 30, (2 << 30) + 4096 * 7)],
            PageSizes::X86_64,
        );
        let per_page = m.bookkeeping_bytes() as f64 / m.tracked_base_pages() as f64;
        assert!(per_page <= 2.0, "{per_page}");
        assert!(per_page >= 1.0, "{per_page}");
    }

    /// xorshift64*: a seeded generator for the randomized tests (no dependency).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// Random VMAs from `base`: plain ones of any page length, 2 MiB-aligned ones, and now
    /// and then a hugetlb one (2 MiB pages), with gaps of a page or more between them.
    fn random_vmas(rng: &mut Rng, base: u64) -> Vec<Vma> {
        let mut vmas = Vec::new();
        let mut a = base;
        for _ in 0..1 + rng.below(5) {
            a += rng.below(3) * K + rng.below(2) * M2;
            let (len, hugetlb) = match rng.below(6) {
                0 => (M2 * (1 + rng.below(3)), true),
                1 => (M2 * (1 + rng.below(4)), false),
                _ => (K * (1 + rng.below(1500)), false),
            };
            if hugetlb || rng.below(3) == 0 {
                a = a.next_multiple_of(M2);
            }
            let mut v = vma(a, a + len);
            if hugetlb {
                v.kernel_page_kb = Some(2048);
            }
            vmas.push(v);
            a += len;
        }
        vmas
    }

    /// Every slot and huge-page bit of two maps over the same VMAs agree, and each one's
    /// `for_each_page` gives the pages of its `iter`.
    fn assert_same(fast: &AccessMap, slow: &AccessMap, what: &str) {
        for m in [fast, slow] {
            let mut each = Vec::new();
            m.for_each_page(|addr, page_size, count| {
                each.push(PageAccess {
                    addr,
                    page_size,
                    count,
                });
            });
            assert_eq!(each, m.iter().collect::<Vec<_>>(), "{what}: for_each_page");
            assert!(m.present_slots() >= each.len(), "{what}: present_slots");
            let mut runs: Vec<(u64, u64, u64, u8)> = Vec::new();
            m.for_each_run(|addr, page_size, pages, count| {
                assert!(pages > 0, "{what}: empty run at {addr:#x}");
                runs.push((addr, page_size, pages, count));
            });
            let expanded: Vec<PageAccess> = runs
                .iter()
                .flat_map(|&(addr, page_size, pages, count)| {
                    (0..pages).map(move |i| PageAccess {
                        addr: addr + i * page_size,
                        page_size,
                        count,
                    })
                })
                .collect();
            assert_eq!(expanded, each, "{what}: for_each_run");
        }
        assert_eq!(
            fast.iter().collect::<Vec<_>>(),
            slow.iter().collect::<Vec<_>>(),
            "{what}"
        );
        for (f, s) in fast.runs.iter().zip(&slow.runs) {
            assert_eq!(f.counts, s.counts, "{what}: slots of {:#x}", f.start);
            assert_eq!(f.pmd, s.pmd, "{what}: PMD bits of {:#x}", f.start);
            assert_eq!(f.pud, s.pud, "{what}: PUD bits of {:#x}", f.start);
        }
    }

    #[test]
    fn runs_match_the_page_by_page_reference_on_random_records() {
        let sizes = PageSizes::X86_64;
        for seed in 1..=400u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let base = 0x7f00_0000_0000 + rng.below(64) * K;
            let vmas = random_vmas(&mut rng, base);
            let top = vmas.last().map_or(base, |v| v.end);
            let mut fast = AccessMap::new(&vmas, sizes);
            let mut slow = fast.clone();
            for _ in 0..300 {
                let page_size = match rng.below(20) {
                    0..=13 => sizes.pte,
                    14..=18 => sizes.pmd,
                    _ => sizes.pud,
                };
                // anywhere from before the first VMA to past the last, crossing edges
                let span = top - base + 4 * M2;
                let mut addr = (base - 2 * M2 + rng.below(span)) / K * K;
                if rng.below(4) != 0 {
                    addr = addr / page_size * page_size;
                }
                let nr = 1 + rng.below(if page_size == sizes.pte { 700 } else { 6 });
                let w = u8::try_from(rng.below(4)).unwrap_or(0);
                fast.record_run(addr, page_size, nr, w);
                slow.record_run_per_page(addr, page_size, nr, w);
            }
            assert_same(&fast, &slow, &format!("seed {seed}"));
        }
    }

    /// The pages of an idle_pages stream one by one, decoded without the module's
    /// decoder: the reference for [`decoded_streams_match_the_page_by_page_reference`].
    fn reference_decode(bytes: &[u8], sizes: PageSizes, map: &mut AccessMap) {
        use crate::parse::idle_pages::IdlePageType;
        let mut cur: Option<u64> = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if b == 0xA0 {
                let Some(a) = bytes.get(i..i + 8) else { return };
                cur = Some(u64::from_be_bytes(a.try_into().expect("8 bytes")));
                i += 8;
                continue;
            }
            let kind = IdlePageType::from_code(b >> 4).expect("known type");
            let Some(mut a) = cur else { return };
            let size = sizes.size_of(kind);
            for _ in 0..b & 0xF {
                let aligned = a.is_multiple_of(size);
                if !kind.is_hole() && aligned {
                    if kind == IdlePageType::PmdIdlePtes {
                        for p in 0..sizes.pmd / sizes.pte {
                            map.record_run_per_page(a + p * sizes.pte, sizes.pte, 1, 0);
                        }
                    } else {
                        map.record_run_per_page(a, size, 1, kind.weight());
                    }
                }
                // a misaligned record is skipped whole, as the decoder does
                if !aligned {
                    a += u64::from(b & 0xF) * size;
                    break;
                }
                a += size;
            }
            cur = Some(a);
        }
    }

    #[test]
    fn decoded_streams_match_the_page_by_page_reference() {
        use crate::parse::idle_pages::{StreamItem, decode_idle_pages, encode_stream};
        let sizes = PageSizes::X86_64;
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let base = 0x7f00_0000_0000 + rng.below(64) * K;
            let vmas = random_vmas(&mut rng, base);
            let top = vmas.last().map_or(base, |v| v.end);
            // a stream as the kernel writes it: an address, then records, now and then a
            // new address (anywhere: before, inside, after the VMAs, maybe misaligned)
            let mut items = vec![StreamItem::Addr(base.saturating_sub(rng.below(8) * K))];
            for _ in 0..400 {
                if rng.below(30) == 0 {
                    let a = (base - M2 + rng.below(top - base + 2 * M2)) / K * K;
                    items.push(StreamItem::Addr(a));
                    continue;
                }
                // mostly single 4 KiB pages, a quarter accessed (the shape), then
                // runs, huge pages, whole PMDs of idle PTEs and holes
                let (t, nr) = match rng.below(10) {
                    0..=4 => (if rng.below(4) == 0 { 0 } else { 5 }, 1),
                    5 => (3, 1 + rng.below(15)),
                    6 => (
                        [1, 4, 6][usize::try_from(rng.below(3)).unwrap_or(0)],
                        1 + rng.below(3),
                    ),
                    7 => (7, 1),
                    8 => (8, 1 + rng.below(15)),
                    _ => (if rng.below(2) == 0 { 9 } else { 2 }, 1),
                };
                items.push(StreamItem::Rec(t, u8::try_from(nr).unwrap_or(1)));
            }
            let mut stream = encode_stream(&items);
            // a read can end anywhere, inside an address record too
            if rng.below(3) == 0 {
                stream.truncate(usize::try_from(rng.below(stream.len() as u64)).unwrap_or(0));
            }
            let mut fast = AccessMap::new(&vmas, sizes);
            let mut slow = fast.clone();
            decode_idle_pages(&stream, sizes, |r| {
                fast.record_run(r.addr, r.page_size, r.nr_pages, r.kind.weight());
            })
            .expect("decode");
            reference_decode(&stream, sizes, &mut slow);
            assert_same(&fast, &slow, &format!("seed {seed}"));
        }
    }
}
