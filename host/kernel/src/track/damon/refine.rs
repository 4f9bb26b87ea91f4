//! Page-precise verdicts inside DAMON's regions, from soft-dirty.
//!
//! DAMON answers "was this *region* accessed" by sampling one page of it per sample
//! interval: one count for hundreds of pages, hot and cold mixed wherever a region spans
//! both (one mapping holding a malloc arena, a JVM heap or a guest's RAM). Soft-dirty
//! answers "was this *page* written" exactly, for every page, but knows nothing of reads.
//! A pass therefore combines them page by page:
//!
//! - a page written this pass is accessed (whatever DAMON's region says: DAMON misses
//!   writes whose translation stays in the TLB);
//! - in a region DAMON saw accessed that holds written pages, the accesses DAMON counted
//!   are put down to those pages when they can explain them ([`writes_explain`]): then the
//!   region's other pages count as not accessed, page by page. When the writes cannot
//!   explain the count (DAMON saw more than samples landing on the written pages could
//!   give), some unwritten page was read, and the whole region counts, as before;
//! - a region DAMON saw accessed without any written page was read: every page of it
//!   counts (DAMON's precision, the only source for pages only read);
//! - next to a region counted whole (read, or mixed), the near part of a neighbouring
//!   region DAMON saw unaccessed counts once ([`read_edge_bytes`]): DAMON places the edge
//!   of a set of pages only read no closer than its samples allow, and pages only read
//!   swapped out by mistake come back as major faults.
//!
//! Pure: the kernel's answers come in as arguments.

use crate::access::{ABSENT, AccessMap, MAX_COUNT, bump};

/// What pagemap said of one base page this pass.
pub(crate) const MARK_ABSENT: u8 = 0;
/// Present, not written since the last pass.
pub(crate) const MARK_PRESENT: u8 = 1;
/// Present and soft-dirty: written since the last pass.
pub(crate) const MARK_WRITTEN: u8 = 2;

/// One pass's pagemap marks, one byte per base page of each range of an [`AccessMap`].
#[derive(Debug)]
pub(crate) struct PassMarks {
    /// (start, end, hugetlb, marks) per range, ascending
    ranges: Vec<(u64, u64, bool, Vec<u8>)>,
    page: u64,
}

impl PassMarks {
    /// Marks shaped like `map`, each page's from `mark(range index, slots)`: the caller
    /// fills the slots (all [`MARK_ABSENT`] at first) of every range.
    pub(crate) fn shaped_like(map: &AccessMap) -> PassMarks {
        let ranges: Vec<(u64, u64, bool, Vec<u8>)> = map
            .ranges()
            .enumerate()
            .map(|(i, (s, e))| {
                let pages = usize::try_from((e - s).div_ceil(map.sizes().pte)).unwrap_or(0);
                (s, e, map.is_hugetlb(i), vec![MARK_ABSENT; pages])
            })
            .collect();
        PassMarks {
            ranges,
            page: map.sizes().pte,
        }
    }

    /// The marks of range `i`, with its start address.
    pub(crate) fn slots_mut(&mut self, i: usize) -> Option<(u64, &mut [u8])> {
        self.ranges
            .get_mut(i)
            .map(|(s, _, _, m)| (*s, m.as_mut_slice()))
    }

    /// Written and total base pages of `[start, end)` (total counts gaps between ranges:
    /// DAMON samples an address anywhere in a region).
    fn written_in(&self, start: u64, end: u64) -> u64 {
        let first = self.ranges.partition_point(|r| r.1 <= start);
        let mut written = 0;
        for (s, e, hugetlb, marks) in &self.ranges[first..] {
            if *s >= end {
                break;
            }
            if *hugetlb {
                continue;
            }
            let (lo, hi) = self.slot_span(*s, *e, start, end);
            written += marks
                .get(lo..hi)
                .unwrap_or(&[])
                .iter()
                .filter(|&&m| m == MARK_WRITTEN)
                .count() as u64;
        }
        written
    }

    /// Slot indexes of `[start, end)` within the range `[s, e)`.
    fn slot_span(&self, s: u64, e: u64, start: u64, end: u64) -> (usize, usize) {
        let lo = (start.max(s) - s) / self.page;
        let hi = (end.min(e).max(s) - s).div_ceil(self.page);
        (
            usize::try_from(lo).unwrap_or(usize::MAX),
            usize::try_from(hi).unwrap_or(usize::MAX),
        )
    }
}

/// Whether `acc` of `samples` DAMON samples that saw an access can all have landed on the
/// `written` pages of a region of `pages` base pages. DAMON samples a uniformly random
/// page of the region each time, so samples on written pages are binomial with `p =
/// written / pages` at most (a written page need not be seen each time); the writes
/// explain the count when it is within three standard deviations (plus one) of the mean
/// of that binomial. Above it, pages that were not written were read.
pub(crate) fn writes_explain(acc: u64, written: u64, pages: u64, samples: u64) -> bool {
    if written == 0 || pages == 0 {
        return false;
    }
    let p = (written as f64 / pages as f64).min(1.0);
    let n = samples.max(1) as f64;
    let bound = n * p + 3.0 * (n * p * (1.0 - p)).sqrt() + 1.0;
    (acc as f64) <= bound
}

/// What [`record_pass`] decided, for the pass's debug line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PassStats {
    /// regions DAMON saw accessed
    pub accessed: usize,
    /// ... of which the writes explained: counted page by page
    pub refined: usize,
    /// ... of which held no written page: counted whole (pages only read)
    pub read: usize,
    /// ... of which held written pages that could not explain DAMON's count: counted whole
    pub mixed: usize,
    /// base pages of unaccessed regions counted once beside a region counted whole
    /// ([`read_edge_bytes`])
    pub edge_pages: u64,
}

/// How far into an unaccessed neighbour a region counted whole reaches:
/// `EDGE_CONFIDENCE / accesses` of the tracker's largest initial region.
///
/// Pages only read show in DAMON's regions alone, and DAMON places the edge between them
/// and cold pages only as well as its samples allow. The first aggregation counts each
/// initial region (of `s` pages, at most) alone: one holding the edge, with a fraction `f`
/// of it read, sees about `f * acc` accesses where `acc` is what a region wholly read
/// sees, so it shows none with probability about `exp(-f * acc)`, or one (which DAMON's
/// merge then rounds away into its cold neighbours, as their size-weighted mean) with
/// `f * acc * exp(-f * acc)`. Those read pages then sit inside a large region counted 0,
/// pass after pass: the lab saw 43 pages read every 100 ms hidden so for a whole round,
/// then swapped out and read back. Splits find such pages only slowly (a split piece beside
/// the read region must hold enough of them to count).
///
/// Pages within `EDGE_CONFIDENCE / acc * s` of a region counted whole therefore count once.
/// With the edge anywhere in the initial region, read pages beyond that stay hidden with
/// probability about `(2 + c) * exp(-c) / acc`: 0.2 % for `c = 6` and `acc = 10`. The price
/// is cold pages kept beside each edge of a set of pages only read: `6 / acc` of one
/// initial region per pass (about 60 pages at 128 MiB tracked), a fraction of a percent of
/// the cold pages. Beside regions the writes explain nothing is kept: soft-dirty sees
/// every written page.
pub(crate) const EDGE_CONFIDENCE: f64 = 6.0;

/// Bytes of an unaccessed region of `len` bytes, beside a region counted whole with `acc`
/// accesses, that count once when DAMON started from regions of at most `piece` bytes
/// (see [`EDGE_CONFIDENCE`]), rounded up to a base page of `page` bytes and at most `len`.
pub(crate) fn read_edge_bytes(len: u64, acc: u64, piece: u64, page: u64) -> u64 {
    if acc == 0 || len == 0 {
        return 0;
    }
    let reach = (piece as f64 * EDGE_CONFIDENCE / acc as f64).ceil() as u64;
    reach.next_multiple_of(page.max(1)).min(len)
}

/// Records one pass into `map`: DAMON's `regions` (start, end, accesses in the pass's
/// aggregation of `samples` samples; DAMON started from regions of at most `seed_piece`
/// bytes) refined page by page with `marks` (module docs),
/// then every page pagemap says is absent marked so, and every written page one access
/// more. Pages of hugetlb ranges are never soft-dirty (see `pagemap`): DAMON's count
/// stands there.
pub(crate) fn record_pass(
    map: &mut AccessMap,
    marks: &PassMarks,
    regions: &[(u64, u64, u64)],
    samples: u64,
    seed_piece: u64,
) -> PassStats {
    let pte = map.sizes().pte;
    let mut st = PassStats::default();
    let mut regions = regions.to_vec();
    regions.sort_unstable_by_key(|r| r.0);
    // the accesses of each region counted whole (read or mixed), 0 for the others
    let mut whole = vec![0u64; regions.len()];
    for (i, &(start, end, acc)) in regions.iter().enumerate() {
        let count = u8::try_from(acc.min(u64::from(MAX_COUNT))).unwrap_or(MAX_COUNT);
        if acc == 0 {
            map.record_region(start, end, 0);
            continue;
        }
        st.accessed += 1;
        let written = marks.written_in(start, end);
        let pages = (end.saturating_sub(start)).div_ceil(pte);
        if written == 0 {
            st.read += 1;
            whole[i] = acc;
            map.record_region(start, end, count);
        } else if writes_explain(acc, written, pages, samples) {
            st.refined += 1;
            refine_region(map, marks, start, end, count);
        } else {
            st.mixed += 1;
            whole[i] = acc;
            map.record_region(start, end, count);
        }
    }
    // the near part of an unaccessed region beside one counted whole
    for (i, &(start, end, acc)) in regions.iter().enumerate() {
        if acc != 0 {
            continue;
        }
        let len = end.saturating_sub(start);
        let before = i
            .checked_sub(1)
            .filter(|&j| regions[j].1 == start)
            .map_or(0, |j| read_edge_bytes(len, whole[j], seed_piece, pte));
        let after = regions
            .get(i + 1)
            .filter(|r| r.0 == end)
            .map_or(0, |_| read_edge_bytes(len, whole[i + 1], seed_piece, pte));
        if before + after >= len {
            map.record_region(start, end, 1);
            st.edge_pages += len / pte;
            continue;
        }
        if before > 0 {
            map.record_region(start, start + before, 1);
        }
        if after > 0 {
            map.record_region(end - after, end, 1);
        }
        st.edge_pages += (before + after) / pte;
    }
    // absent pages, written pages
    for (i, (s, _, _, m)) in marks.ranges.iter().enumerate() {
        let Some((start, slots)) = map.slots_mut(i) else {
            continue;
        };
        debug_assert_eq!(start, *s);
        for (slot, &mark) in slots.iter_mut().zip(m) {
            match mark {
                MARK_ABSENT => *slot = ABSENT,
                MARK_WRITTEN => bump(slot, 1),
                _ => {
                    if *slot == ABSENT {
                        // present, and in no region DAMON reported: not accessed
                        *slot = 0;
                    }
                }
            }
        }
    }
    st
}

/// Unwritten pages between two written ones, fewer than this, count as used when their
/// region was (see [`refine_region`]).
pub(crate) const SHORT_GAP_PAGES: usize = 16;

/// Whether slot `i` of `m` lies in a run of unwritten slots shorter than
/// [`SHORT_GAP_PAGES`] with a written slot on each side (not a mapping's edge).
fn in_short_gap(m: &[u8], i: usize) -> bool {
    let written = |j: usize| m.get(j) == Some(&MARK_WRITTEN);
    let mut a = i;
    while a > 0 && !written(a - 1) {
        a -= 1;
        if i - a >= SHORT_GAP_PAGES {
            return false;
        }
    }
    let mut b = i + 1;
    while b < m.len() && !written(b) {
        b += 1;
        if b - a >= SHORT_GAP_PAGES {
            return false;
        }
    }
    a > 0 && b < m.len() && b - a < SHORT_GAP_PAGES
}

/// A region the writes explain: its written pages get DAMON's count, the unwritten ones
/// none (seen present), except those in a short gap between written pages
/// ([`in_short_gap`]): soft-dirty cannot tell a page read among written ones (a database
/// page only read between dirty ones, a read-mostly field of a written object) from a
/// cold one, and such a page is far more likely hot than a cold page alone in the middle
/// of hot ones. Cold runs of [`SHORT_GAP_PAGES`] or more pages are told apart page by
/// page. Hugetlb ranges in the region keep the whole count.
fn refine_region(map: &mut AccessMap, marks: &PassMarks, start: u64, end: u64, count: u8) {
    let first = marks.ranges.partition_point(|r| r.1 <= start);
    for (i, (s, e, hugetlb, m)) in marks.ranges.iter().enumerate().skip(first) {
        if *s >= end {
            break;
        }
        if *hugetlb {
            map.record_region(start.max(*s), end.min(*e), count);
            continue;
        }
        let (lo, hi) = marks.slot_span(*s, *e, start, end);
        let Some((_, slots)) = map.slots_mut(i) else {
            continue;
        };
        let hi = hi.min(slots.len()).min(m.len());
        let mut gap = None::<(usize, bool)>;
        for (k, slot) in slots
            .get_mut(lo..hi)
            .unwrap_or(&mut [])
            .iter_mut()
            .enumerate()
        {
            let j = lo + k;
            let used = if m[j] == MARK_WRITTEN {
                gap = None;
                true
            } else {
                // one look per run of unwritten slots
                match gap {
                    Some((end, short)) if j < end => short,
                    _ => {
                        let short = in_short_gap(m, j);
                        // (within this region: a run goes on in the next region's call)
                        let end = (j..hi).find(|&x| m[x] == MARK_WRITTEN).unwrap_or(hi);
                        gap = Some((end, short));
                        short
                    }
                }
            };
            bump(slot, if used { count } else { 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::map_over;

    const K: u64 = 4096;

    /// Marks over `map` from a function of the page address.
    fn marks(map: &AccessMap, f: impl Fn(u64) -> u8) -> PassMarks {
        let mut m = PassMarks::shaped_like(map);
        for i in 0..map.nr_ranges() {
            let (start, slots) = m.slots_mut(i).expect("range");
            for (k, slot) in slots.iter_mut().enumerate() {
                *slot = f(start + k as u64 * K);
            }
        }
        m
    }

    fn counts(map: &AccessMap, start: u64, end: u64) -> Vec<Option<u8>> {
        (start..end)
            .step_by(K as usize)
            .map(|a| map.get(a))
            .collect()
    }

    #[test]
    fn the_binomial_bound() {
        // a quarter of the region written, 20 samples: mean 5, sd ~1.94
        assert!(writes_explain(11, 25, 100, 20));
        assert!(!writes_explain(12, 25, 100, 20));
        // every page written: any count is explained
        assert!(writes_explain(20, 100, 100, 20));
        // no written page explains nothing
        assert!(!writes_explain(1, 0, 100, 20));
        // one written page of a thousand explains one sample, not two
        assert!(writes_explain(1, 1, 1000, 20));
        assert!(!writes_explain(2, 1, 1000, 20));
    }

    #[test]
    fn written_pages_in_an_accessed_region_take_its_count_and_the_rest_is_cold() {
        // one 64-page mapping, one DAMON region over it; pages 0..16 written
        let (s, e) = (0x10_0000, 0x10_0000 + 64 * K);
        let mut map = map_over(&[(s, e)]);
        let m = marks(&map, |a| {
            if a < s + 16 * K {
                MARK_WRITTEN
            } else {
                MARK_PRESENT
            }
        });
        let st = record_pass(&mut map, &m, &[(s, e, 4)], 20, 64 * K);
        assert_eq!(
            st,
            PassStats {
                accessed: 1,
                refined: 1,
                read: 0,
                mixed: 0,
                edge_pages: 0,
            }
        );
        let c = counts(&map, s, e);
        assert!(
            c[..16].iter().all(|&v| v == Some(5)),
            "written: DAMON's 4 + 1: {c:?}"
        );
        assert!(
            c[16..].iter().all(|&v| v == Some(0)),
            "unwritten: cold: {c:?}"
        );
    }

    #[test]
    fn short_unwritten_gaps_between_written_pages_keep_the_regions_count() {
        // 64 pages: written 0..4, gap 4..6 (2 pages: short), written 6..10, gap 10..40
        // (30 pages: long, cold), written 40..41, then unwritten to the mapping's edge
        let (s, e) = (0x10_0000, 0x10_0000 + 64 * K);
        let mut map = map_over(&[(s, e)]);
        let w = |a: u64| {
            let i = (a - s) / K;
            if i < 4 || (6..10).contains(&i) || i == 40 {
                MARK_WRITTEN
            } else {
                MARK_PRESENT
            }
        };
        let m = marks(&map, w);
        let st = record_pass(&mut map, &m, &[(s, e, 3)], 20, 64 * K);
        assert_eq!(st.refined, 1);
        let c = counts(&map, s, e);
        assert_eq!(c[4], Some(3), "a page in a short gap: the region's count");
        assert_eq!(c[5], Some(3));
        assert_eq!(c[0], Some(4), "written: the count and one");
        assert!(
            c[10..40].iter().all(|&v| v == Some(0)),
            "a long gap is cold: {c:?}"
        );
        assert!(
            c[41..].iter().all(|&v| v == Some(0)),
            "a run to the edge is cold"
        );
        // a gap of exactly SHORT_GAP_PAGES is long
        let ms: Vec<u8> = (0..40)
            .map(|i| {
                if i == 0 || i == 1 + SHORT_GAP_PAGES {
                    MARK_WRITTEN
                } else {
                    MARK_PRESENT
                }
            })
            .collect();
        assert!(!in_short_gap(&ms, 1));
        assert!(!in_short_gap(&ms, SHORT_GAP_PAGES));
        let ms: Vec<u8> = (0..40)
            .map(|i| {
                if i == 0 || i == SHORT_GAP_PAGES {
                    MARK_WRITTEN
                } else {
                    MARK_PRESENT
                }
            })
            .collect();
        assert!(in_short_gap(&ms, 1) && in_short_gap(&ms, SHORT_GAP_PAGES - 1));
    }

    #[test]
    fn a_region_with_more_accesses_than_its_writes_explain_counts_whole() {
        // 1 page of 64 written, DAMON saw 10 of 20 samples accessed: others were read
        let (s, e) = (0x10_0000, 0x10_0000 + 64 * K);
        let mut map = map_over(&[(s, e)]);
        let m = marks(&map, |a| if a == s { MARK_WRITTEN } else { MARK_PRESENT });
        let st = record_pass(&mut map, &m, &[(s, e, 10)], 20, 64 * K);
        assert_eq!(st.mixed, 1);
        let c = counts(&map, s, e);
        assert_eq!(c[0], Some(11));
        assert!(c[1..].iter().all(|&v| v == Some(10)), "{c:?}");
    }

    #[test]
    fn a_region_read_without_writes_counts_whole_and_absent_pages_stay_absent() {
        // read: pages 0..4 (20 accesses: beside it, 6/20 of DAMON's 10-page initial
        // regions count once, 3 pages); cold: 4..20, page 19 absent
        let (s, e) = (0x10_0000, 0x10_0000 + 20 * K);
        let mut map = map_over(&[(s, e)]);
        let m = marks(&map, |a| {
            if a == s + 19 * K {
                MARK_ABSENT
            } else {
                MARK_PRESENT
            }
        });
        let st = record_pass(
            &mut map,
            &m,
            &[(s, s + 4 * K, 20), (s + 4 * K, e, 0)],
            20,
            10 * K,
        );
        assert_eq!(st.read, 1);
        assert_eq!(st.edge_pages, 3);
        let c = counts(&map, s, e);
        assert_eq!(c[..4], [Some(20); 4], "read: the count");
        assert_eq!(c[4..7], [Some(1); 3], "the edge: once");
        assert!(
            c[7..19].iter().all(|&v| v == Some(0)),
            "beyond: cold: {c:?}"
        );
        assert_eq!(c[19], None, "absent");
    }

    #[test]
    fn the_edge_beside_a_read_region_follows_its_accesses_and_the_initial_regions() {
        let k = K;
        // beside a region read 3 times, initial regions of 100 pages: 200 pages, so all
        // of a 100-page neighbour
        assert_eq!(read_edge_bytes(100 * k, 3, 100 * k, k), 100 * k);
        // ... read 10 times, initial regions of 50 pages: 30 pages; 20 times: 15
        assert_eq!(read_edge_bytes(100 * k, 10, 50 * k, k), 30 * k);
        assert_eq!(read_edge_bytes(100 * k, 20, 50 * k, k), 15 * k);
        // finer initial regions, a shorter reach: rounded up to a page
        assert_eq!(read_edge_bytes(100 * k, 20, 5 * k, k), 2 * k);
        // never beyond the region
        assert_eq!(read_edge_bytes(k, 20, 50 * k, k), k);
        // beside a region not counted whole: none
        assert_eq!(read_edge_bytes(100 * k, 0, 50 * k, k), 0);
    }

    #[test]
    fn unaccessed_regions_keep_an_edge_beside_read_ones_only() {
        // [read 10 | cold 40 | refined by writes | cold 40 | read 5 | cold 10 | read 3]
        // pages: 0..10 read, 10..50 cold, 50..60 written (refined), 60..100 cold,
        // 100..110 read, 110..120 cold, 120..130 read
        let b = 0x100_0000;
        let p = |i: u64| b + i * K;
        let mut map = map_over(&[(p(0), p(130))]);
        let m = marks(&map, |a| {
            if (p(50)..p(60)).contains(&a) {
                MARK_WRITTEN
            } else {
                MARK_PRESENT
            }
        });
        // regions in no particular order (a trace block need not be sorted)
        let regions = [
            (p(100), p(110), 5),
            (p(0), p(10), 10),
            (p(10), p(50), 0),
            (p(50), p(60), 10),
            (p(60), p(100), 0),
            (p(110), p(120), 0),
            (p(120), p(130), 3),
        ];
        let st = record_pass(&mut map, &m, &regions, 20, 20 * K);
        assert_eq!((st.read, st.refined), (3, 1));
        let c = counts(&map, p(0), p(130));
        // initial regions of 20 pages: 10..50 beside read 10 on its left: 6/10 of 20 = 12
        assert!(c[10..22].iter().all(|&v| v == Some(1)), "{c:?}");
        assert!(c[22..50].iter().all(|&v| v == Some(0)), "{c:?}");
        // 60..100: refined on its left (no edge), read 5 on its right: 6/5 of 20 = 24
        assert!(c[60..76].iter().all(|&v| v == Some(0)), "{c:?}");
        assert!(c[76..100].iter().all(|&v| v == Some(1)), "{c:?}");
        // 110..120 between read 5 (6 pages) and read 3 (all): all of it, once
        assert!(c[110..120].iter().all(|&v| v == Some(1)), "{c:?}");
        assert_eq!(st.edge_pages, 12 + 24 + 10);
    }

    #[test]
    fn the_edge_reaches_only_across_touching_regions() {
        // a read region, then a 4-page hole DAMON does not cover, then a cold region
        let b = 0x100_0000;
        let p = |i: u64| b + i * K;
        let mut map = map_over(&[(p(0), p(10)), (p(14), p(40))]);
        let m = marks(&map, |_| MARK_PRESENT);
        let st = record_pass(
            &mut map,
            &m,
            &[(p(0), p(10), 20), (p(14), p(40), 0)],
            20,
            64 * K,
        );
        assert_eq!(st.edge_pages, 0);
        assert!(counts(&map, p(14), p(40)).iter().all(|&v| v == Some(0)));
    }

    #[test]
    fn pages_outside_every_region_are_present_and_cold_or_written() {
        let (s, e) = (0x10_0000, 0x10_0000 + 4 * K);
        let mut map = map_over(&[(s, e)]);
        let m = marks(&map, |a| if a == s { MARK_WRITTEN } else { MARK_PRESENT });
        record_pass(&mut map, &m, &[], 20, 64 * K);
        assert_eq!(counts(&map, s, e), vec![Some(1), Some(0), Some(0), Some(0)]);
    }

    #[test]
    fn a_region_across_two_mappings_and_a_gap_is_refined_in_both() {
        // ranges [0,8) and [16,24) pages; region [0,24) pages: the gap counts in its size
        let b = 0x40_0000;
        let mut map = map_over(&[(b, b + 8 * K), (b + 16 * K, b + 24 * K)]);
        let m = marks(&map, |a| {
            if a == b + 16 * K {
                MARK_WRITTEN
            } else {
                MARK_PRESENT
            }
        });
        let st = record_pass(&mut map, &m, &[(b, b + 24 * K, 1)], 20, 64 * K);
        assert_eq!(st.refined, 1);
        assert!(counts(&map, b, b + 8 * K).iter().all(|&v| v == Some(0)));
        assert_eq!(map.get(b + 16 * K), Some(2));
        assert_eq!(map.get(b + 17 * K), Some(0));
    }

    #[test]
    fn passes_add_up() {
        let (s, e) = (0x10_0000, 0x10_0000 + 4 * K);
        let mut map = map_over(&[(s, e)]);
        let w = marks(&map, |a| if a == s { MARK_WRITTEN } else { MARK_PRESENT });
        record_pass(&mut map, &w, &[(s, e, 1)], 20, 64 * K);
        map.finish_pass();
        let r = marks(&map, |_| MARK_PRESENT);
        record_pass(&mut map, &r, &[(s, e, 0)], 20, 64 * K);
        assert_eq!(counts(&map, s, e), vec![Some(2), Some(0), Some(0), Some(0)]);
    }
}
