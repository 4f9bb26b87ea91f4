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

/// Records the pages of a record of huge pages (`(addr, page_size, nr)`, `page_size` above
/// the base page) that overlap range `r` (not hugetlb): a page wholly inside the range is
/// one slot (its first base page) and marks its chunk huge; a page that straddles the
/// range's edge counts as its base pages inside it (no THP crosses a VMA edge: the maps
/// changed since they were read, or the stream does not fit them), so that no page the
/// map reports reaches past its range.
fn record_huge(r: &mut Run, sizes: PageSizes, (addr, page_size, nr): (u64, u64, u64), w: u8) {
    let (pmd_base, pud_base) = (r.start / sizes.pmd, r.start / sizes.pud);
    // the pages that end after the range starts, up to those that start before it ends
    let k0 = r.start.saturating_sub(addr) / page_size;
    let k1 = (r.end - addr).div_ceil(page_size).min(nr);
    for k in k0..k1 {
        let a = addr + k * page_size;
        let b = a.saturating_add(page_size);
        if a >= r.start && b <= r.end {
            if page_size == sizes.pmd {
                set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, true);
                r.huge = true;
            } else if page_size == sizes.pud {
                set_bit(&mut r.pud, a / sizes.pud - pud_base, true);
                r.huge = true;
            }
            if let Some(slot) = usize::try_from((a - r.start) / sizes.pte)
                .ok()
                .and_then(|i| r.counts.get_mut(i))
            {
                bump(slot, w);
            }
            continue;
        }
        let (lo, hi) = (a.max(r.start), b.min(r.end));
        if lo >= hi {
            continue;
        }
        for c in lo / sizes.pmd..=(hi - 1) / sizes.pmd {
            set_bit(&mut r.pmd, c - pmd_base, false);
        }
        for c in lo / sizes.pud..=(hi - 1) / sizes.pud {
            set_bit(&mut r.pud, c - pud_base, false);
        }
        let s0 = usize::try_from((lo - r.start) / sizes.pte).unwrap_or(usize::MAX);
        let s1 = usize::try_from((hi - r.start).div_ceil(sizes.pte))
            .unwrap_or(usize::MAX)
            .min(r.counts.len());
        bump_all(r.counts.get_mut(s0..s1).unwrap_or(&mut []), w);
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

/// [`bump`] on every slot of `slots`, without a branch per slot (the compiler turns it into
/// vector compares and saturating adds).
#[inline]
pub fn bump_all(slots: &mut [u8], w: u8) {
    for slot in slots {
        // an absent slot counts from 0
        let from = if *slot == ABSENT { 0 } else { *slot };
        *slot = from.saturating_add(w).min(MAX_COUNT);
    }
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
    #[inline]
    pub fn record_run(&mut self, addr: u64, page_size: u64, nr: u64, w: u8) {
        // the common record, kept small enough to inline into the decoder's loop: base
        // pages inside the range of the last record, none of its chunks marked huge
        let pte = self.sizes.pte;
        if let Some(r) = self.runs.get_mut(self.hint)
            && page_size == pte
            && !r.huge
            && r.fixed.is_none()
            && r.start <= addr
            && addr.is_multiple_of(pte)
            && let Some(end) = nr.checked_mul(pte).and_then(|len| addr.checked_add(len))
            && end <= r.end
        {
            let sh = pte.trailing_zeros();
            let lo = usize::try_from((addr - r.start) >> sh).unwrap_or(usize::MAX);
            let hi = usize::try_from((end - r.start) >> sh).unwrap_or(usize::MAX);
            bump_all(r.counts.get_mut(lo..hi).unwrap_or(&mut []), w);
            return;
        }
        self.record_run_general(addr, page_size, nr, w);
    }

    /// [`record_run`](AccessMap::record_run) for any record: another range, huge pages,
    /// a split huge chunk, a hugetlb range, pages outside the tracked VMAs.
    #[inline(never)]
    fn record_run_general(&mut self, addr: u64, page_size: u64, nr: u64, w: u8) {
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
            if page_size != sizes.pte && r.fixed.is_none() {
                record_huge(r, sizes, (addr, page_size, nr), w);
                continue;
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
            // base pages: one slot each, in a row; a chunk marked huge that holds one was
            // split
            let (pmd_base, pud_base) = (div(r.start, sizes.pmd), div(r.start, sizes.pud));
            for c in div(a0, sizes.pmd)..=div(a_last, sizes.pmd) {
                set_bit(&mut r.pmd, c - pmd_base, false);
            }
            for c in div(a0, sizes.pud)..=div(a_last, sizes.pud) {
                set_bit(&mut r.pud, c - pud_base, false);
            }
            let lo = usize::try_from(div(a0 - r.start, sizes.pte)).unwrap_or(usize::MAX);
            let n = usize::try_from(k1 - k0).unwrap_or(usize::MAX);
            let hi = lo.saturating_add(n).min(r.counts.len());
            bump_all(r.counts.get_mut(lo..hi).unwrap_or(&mut []), w);
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
            bump_all(r.counts.get_mut(lo..hi).unwrap_or(&mut []), count);
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
mod tests;
