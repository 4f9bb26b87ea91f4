//! Pages read back after slide swapped them out: kept in memory for a while.
//!
//! A page the scan calls cold may still be used: one read at the edge of a written run, in
//! a DAMON region its written neighbours explain, looks exactly like the cold run beside
//! it (no tracker of an upstream kernel without `page_idle` sees it; see the host's
//! `docs/architecture.md`). Swapping it out each round costs a major fault each round.
//! So a page this task swapped out last round that the next scan finds present again was
//! read back (or could not be swapped at all: locked, refused): either way swapping it
//! again soon is wasted work. It is kept out of the cold pages for [`KEEP_ROUNDS`] rounds,
//! then judged by its counts again. This is our addition (C etmem swaps it every round).
//!
//! Pure: scans and plans in, pages out. Memory: ranges, not pages.

use etmem_sdk::{PageRun, ScanResult};
use std::collections::BTreeMap;

/// Rounds a page read back after a swap-out stays out of the cold pages.
pub const KEEP_ROUNDS: u64 = 10;

/// `[start, end)` ranges, ascending and disjoint.
type Ranges = Vec<(u64, u64)>;

/// What one task remembers of its swap-outs, per pid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refaults {
    /// the pages the last plan swapped out
    swapped: BTreeMap<u32, Ranges>,
    /// pages read back, kept in memory for a while
    kept: BTreeMap<u32, Kept>,
}

/// The pages of one pid kept in memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Kept {
    /// `(start, end, until)`, ascending: kept in memory through round `until`
    ranges: Vec<(u64, u64, u64)>,
    /// the union of `ranges` (they may overlap, kept in different rounds), rebuilt only
    /// when they change: a VM's kept pages can be 100,000s of ranges, filtered each round
    union: Ranges,
    /// the earliest `until` of `ranges`: no range expires before round `first_until + 1`
    first_until: u64,
}

impl Kept {
    /// Adds `back` (ascending), kept through round `until`.
    fn add(&mut self, back: Ranges, until: u64) {
        self.ranges
            .extend(back.into_iter().map(|(s, e)| (s, e, until)));
        self.ranges.sort_unstable();
        self.rebuild();
    }

    /// Forgets the ranges kept only until before round `round`.
    fn expire(&mut self, round: u64) {
        if self.first_until >= round {
            return;
        }
        self.ranges.retain(|&(_, _, until)| until >= round);
        self.rebuild();
    }

    fn rebuild(&mut self) {
        self.union.clear();
        for &(s, e, _) in &self.ranges {
            push_range(&mut self.union, s, e);
        }
        self.first_until = self.ranges.iter().map(|r| r.2).min().unwrap_or(u64::MAX);
    }
}

/// Adds `[start, end)` to ascending `r`, merging with the last range when they touch.
fn push_range(r: &mut Ranges, start: u64, end: u64) {
    match r.last_mut() {
        Some(last) if last.1 >= start => last.1 = last.1.max(end),
        _ => r.push((start, end)),
    }
}

/// The pages of `run` whose start lies in `[start, end)`: the index of the first one and
/// one past the last one (equal when none does).
fn pages_starting_in(run: &PageRun, start: u64, end: u64) -> (u64, u64) {
    // pages are powers of two: shifts, not divisions (a division per range is most of
    // this function's cost in a wasm engine)
    let (shift, mask) = (run.size.shift(), run.size.bytes() - 1);
    let pages_to = |x: u64| (x >> shift) + u64::from(x & mask != 0);
    let n = u64::from(run.pages);
    let first = pages_to(start.saturating_sub(run.addr)).min(n);
    let last = pages_to(end.saturating_sub(run.addr)).min(n);
    (first, last.max(first))
}

impl Refaults {
    /// Notes the pages of `scan` that the last plan swapped out and that are present again
    /// in round `round`; they are kept in memory through round `round + KEEP_ROUNDS`.
    /// Returns how many pages came back. Costs per run and range, not per page.
    pub fn observe(&mut self, scan: &ScanResult, round: u64) -> u64 {
        let Some(swapped) = self.swapped.remove(&scan.pid()) else {
            return 0;
        };
        let until = round.saturating_add(KEEP_ROUNDS);
        let mut back: Ranges = Vec::new();
        let mut n = 0;
        let mut j = 0;
        for run in scan.runs() {
            let run = run.page_run();
            while j < swapped.len() && swapped[j].1 <= run.addr {
                j += 1;
            }
            let size = run.size.bytes();
            // every swapped range that meets the run; the last one may meet the next run
            for &(s, e) in swapped[j..].iter().take_while(|r| r.0 < run.end()) {
                let (i0, i1) = pages_starting_in(&run, s, e);
                if i1 > i0 {
                    push_range(&mut back, run.addr + i0 * size, run.addr + i1 * size);
                    n += i1 - i0;
                }
            }
        }
        if !back.is_empty() {
            self.kept.entry(scan.pid()).or_default().add(back, until);
        }
        n
    }

    /// `runs` (ascending) without the pages of `pid` kept in memory in round `round`, and
    /// how many pages were left out. Ranges kept only until an earlier round are forgotten.
    pub fn filter(&mut self, pid: u32, runs: Vec<PageRun>, round: u64) -> (Vec<PageRun>, u64) {
        let Some(kept) = self.kept.get_mut(&pid) else {
            return (runs, 0);
        };
        kept.expire(round);
        if kept.ranges.is_empty() {
            self.kept.remove(&pid);
            return (runs, 0);
        }
        let union = &kept.union;
        let mut out = Vec::with_capacity(runs.len());
        let mut left_out = 0;
        let mut j = 0;
        for run in runs {
            while j < union.len() && union[j].1 <= run.addr {
                j += 1;
            }
            let size = run.size.bytes();
            let mut next = 0; // first page of the run not yet passed on or left out
            for &(s, e) in union[j..].iter().take_while(|r| r.0 < run.end()) {
                let (i0, i1) = pages_starting_in(&run, s, e);
                if i1 > i0 {
                    if i0 > next {
                        out.push(sub_run(&run, next, i0, size));
                    }
                    left_out += i1 - i0.max(next);
                    next = next.max(i1);
                }
            }
            if next < u64::from(run.pages) {
                out.push(sub_run(&run, next, u64::from(run.pages), size));
            }
        }
        (out, left_out)
    }

    /// Records `runs` of `pid` as swapped out by this plan.
    pub fn swapped_out(&mut self, pid: u32, runs: &[PageRun]) {
        let mut r: Ranges = Vec::new();
        for run in runs {
            push_range(&mut r, run.addr, run.end());
        }
        if r.is_empty() {
            self.swapped.remove(&pid);
        } else {
            self.swapped.insert(pid, r);
        }
    }

    /// Forgets the pids `live` says are gone.
    pub fn retain(&mut self, live: impl Fn(u32) -> bool) {
        self.swapped.retain(|pid, _| live(*pid));
        self.kept.retain(|pid, _| live(*pid));
    }
}

/// Pages `i0..i1` of `run`.
fn sub_run(run: &PageRun, i0: u64, i1: u64, size: u64) -> PageRun {
    PageRun {
        addr: run.addr + i0 * size,
        // i1 <= run.pages, a u32
        pages: u32::try_from(i1 - i0).unwrap_or(u32::MAX),
        size: run.size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_sdk::{Page, PageSize};

    fn scan(pid: u32, addrs: &[u64]) -> ScanResult {
        ScanResult::from_pages(
            pid,
            1,
            addrs.iter().map(|&addr| Page {
                addr,
                count: 0,
                size: PageSize::Size4K,
            }),
        )
        .expect("scan")
    }

    const K: u64 = 4096;

    /// Base pages as runs.
    fn runs(addrs: &[u64]) -> Vec<PageRun> {
        PageRun::of_base_pages(addrs)
    }

    /// The start address of every page of `runs`.
    fn flat(runs: &[PageRun]) -> Vec<u64> {
        runs.iter().flat_map(|r| r.addrs()).collect()
    }

    #[test]
    fn a_page_swapped_and_present_again_is_kept_for_keep_rounds() {
        let mut r = Refaults::default();
        let pages: Vec<u64> = (0..8).map(|i| 0x10000 + i * K).collect();
        // round 1 swaps out pages 2..6
        let s1 = scan(7, &pages);
        assert_eq!(r.observe(&s1, 1), 0, "nothing swapped before");
        r.swapped_out(7, &runs(&pages[2..6]));
        // round 2: pages 3 and 4 are back (read), 2 and 5 still out (absent)
        let present: Vec<u64> = pages
            .iter()
            .copied()
            .filter(|&a| a != pages[2] && a != pages[5])
            .collect();
        let s2 = scan(7, &present);
        assert_eq!(r.observe(&s2, 2), 2);
        let (cold, left) = r.filter(7, runs(&present), 2);
        let cold = flat(&cold);
        assert_eq!(left, 2);
        assert!(!cold.contains(&pages[3]) && !cold.contains(&pages[4]));
        assert!(cold.contains(&pages[0]));
        // still kept in round 2 + KEEP_ROUNDS, judged again after it
        r.swapped_out(7, &runs(&cold));
        let (_, left) = r.filter(7, runs(&present), 2 + KEEP_ROUNDS);
        assert_eq!(left, 2);
        let (cold, left) = r.filter(7, runs(&present), 3 + KEEP_ROUNDS);
        assert_eq!((flat(&cold), left), (present.clone(), 0));
    }

    #[test]
    fn other_pids_and_gone_pids_are_apart() {
        let mut r = Refaults::default();
        r.swapped_out(7, &runs(&[0x1000]));
        assert_eq!(r.observe(&scan(8, &[0x1000]), 2), 0, "another pid");
        assert_eq!(r.observe(&scan(7, &[0x1000, 0x2000]), 2), 1);
        r.retain(|pid| pid != 7);
        assert_eq!(
            r.filter(7, runs(&[0x1000]), 3),
            (runs(&[0x1000]), 0),
            "forgotten"
        );
    }

    #[test]
    fn a_huge_page_counts_whole() {
        let mut r = Refaults::default();
        r.swapped_out(9, &[PageRun::single(0x20_0000, PageSize::Size2M)]);
        // back as base pages (split on swap-in): each lies in the swapped huge page
        assert_eq!(
            r.observe(&scan(9, &[0x20_0000, 0x20_1000, 0x40_0000]), 2),
            2
        );
    }
}
