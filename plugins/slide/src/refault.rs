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

use etmem_sdk::ScanResult;
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
    /// pages read back, kept in memory through round `.2`: `(start, end, until)`, ascending
    kept: BTreeMap<u32, Vec<(u64, u64, u64)>>,
}

/// Adds `[start, end)` to ascending `r`, merging with the last range when they touch.
fn push_range(r: &mut Ranges, start: u64, end: u64) {
    match r.last_mut() {
        Some(last) if last.1 == start => last.1 = end,
        _ => r.push((start, end)),
    }
}

impl Refaults {
    /// Notes the pages of `scan` that the last plan swapped out and that are present again
    /// in round `round`; they are kept in memory through round `round + KEEP_ROUNDS`.
    /// Returns how many pages came back.
    pub fn observe(&mut self, scan: &ScanResult, round: u64) -> u64 {
        let Some(swapped) = self.swapped.remove(&scan.pid()) else {
            return 0;
        };
        let until = round.saturating_add(KEEP_ROUNDS);
        let mut back: Ranges = Vec::new();
        let mut n = 0;
        let mut j = 0;
        for (&addr, size) in scan.addrs().iter().zip(scan.sizes()) {
            while j < swapped.len() && swapped[j].1 <= addr {
                j += 1;
            }
            if j < swapped.len() && swapped[j].0 <= addr {
                push_range(&mut back, addr, addr.saturating_add(size.bytes()));
                n += 1;
            }
        }
        if !back.is_empty() {
            let kept = self.kept.entry(scan.pid()).or_default();
            kept.extend(back.into_iter().map(|(s, e)| (s, e, until)));
            kept.sort_unstable();
        }
        n
    }

    /// `addrs` (ascending) without the pages of `pid` kept in memory in round `round`, and
    /// how many were left out. Ranges kept only until an earlier round are forgotten.
    pub fn filter(&mut self, pid: u32, addrs: Vec<u64>, round: u64) -> (Vec<u64>, u64) {
        let Some(kept) = self.kept.get_mut(&pid) else {
            return (addrs, 0);
        };
        kept.retain(|&(_, _, until)| until >= round);
        if kept.is_empty() {
            self.kept.remove(&pid);
            return (addrs, 0);
        }
        let mut out = Vec::with_capacity(addrs.len());
        let mut left_out = 0;
        for a in addrs {
            // ranges may overlap (kept in different rounds): any one covering `a` keeps it
            let covered = kept.iter().take_while(|r| r.0 <= a).any(|r| a < r.1);
            if covered {
                left_out += 1;
            } else {
                out.push(a);
            }
        }
        (out, left_out)
    }

    /// Records the pages of `scan` in `addrs` (ascending) as swapped out by this plan.
    pub fn swapped_out(&mut self, scan: &ScanResult, addrs: &[u64]) {
        let mut r: Ranges = Vec::new();
        let mut i = 0;
        for &a in addrs {
            while i < scan.addrs().len() && scan.addrs()[i] < a {
                i += 1;
            }
            let size = if scan.addrs().get(i) == Some(&a) {
                scan.sizes()[i].bytes()
            } else {
                // not a page of the scan (it would not be planned): one base page
                4096
            };
            push_range(&mut r, a, a.saturating_add(size));
        }
        if r.is_empty() {
            self.swapped.remove(&scan.pid());
        } else {
            self.swapped.insert(scan.pid(), r);
        }
    }

    /// Forgets the pids `live` says are gone.
    pub fn retain(&mut self, live: impl Fn(u32) -> bool) {
        self.swapped.retain(|pid, _| live(*pid));
        self.kept.retain(|pid, _| live(*pid));
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

    #[test]
    fn a_page_swapped_and_present_again_is_kept_for_keep_rounds() {
        let mut r = Refaults::default();
        let pages: Vec<u64> = (0..8).map(|i| 0x10000 + i * K).collect();
        // round 1 swaps out pages 2..6
        let s1 = scan(7, &pages);
        assert_eq!(r.observe(&s1, 1), 0, "nothing swapped before");
        r.swapped_out(&s1, &pages[2..6]);
        // round 2: pages 3 and 4 are back (read), 2 and 5 still out (absent)
        let present: Vec<u64> = pages
            .iter()
            .copied()
            .filter(|&a| a != pages[2] && a != pages[5])
            .collect();
        let s2 = scan(7, &present);
        assert_eq!(r.observe(&s2, 2), 2);
        let (cold, left) = r.filter(7, present.clone(), 2);
        assert_eq!(left, 2);
        assert!(!cold.contains(&pages[3]) && !cold.contains(&pages[4]));
        assert!(cold.contains(&pages[0]));
        // still kept in round 2 + KEEP_ROUNDS, judged again after it
        r.swapped_out(&s2, &cold);
        let (_, left) = r.filter(7, present.clone(), 2 + KEEP_ROUNDS);
        assert_eq!(left, 2);
        let (cold, left) = r.filter(7, present.clone(), 3 + KEEP_ROUNDS);
        assert_eq!((cold.len(), left), (present.len(), 0));
    }

    #[test]
    fn other_pids_and_gone_pids_are_apart() {
        let mut r = Refaults::default();
        let s = scan(7, &[0x1000, 0x2000]);
        r.swapped_out(&s, &[0x1000]);
        assert_eq!(r.observe(&scan(8, &[0x1000]), 2), 0, "another pid");
        assert_eq!(r.observe(&scan(7, &[0x1000, 0x2000]), 2), 1);
        r.retain(|pid| pid != 7);
        assert_eq!(r.filter(7, vec![0x1000], 3), (vec![0x1000], 0), "forgotten");
    }

    #[test]
    fn a_huge_page_counts_whole() {
        let mut r = Refaults::default();
        let huge = ScanResult::from_pages(
            9,
            1,
            [Page {
                addr: 0x20_0000,
                count: 0,
                size: PageSize::Size2M,
            }],
        )
        .expect("scan");
        r.swapped_out(&huge, &[0x20_0000]);
        // back as base pages (split on swap-in): each lies in the swapped huge page
        assert_eq!(
            r.observe(&scan(9, &[0x20_0000, 0x20_1000, 0x40_0000]), 2),
            2
        );
    }
}
