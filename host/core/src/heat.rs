//! A task's recent access history, for `etmem project heatmap` (our addition): the last
//! [`HEAT_ROUNDS`] rounds × [`HEAT_COLUMNS`] address buckets, filled from the scan results
//! every round already hands to the engine (no scan of its own).
//!
//! The buckets are fixed for the history: at its first round with scanned pages, the
//! task's scanned pages (every process of the task, in address order, in 4 KiB units) are
//! split into [`HEAT_COLUMNS`] equal shares, so the gaps between mappings cost no bucket.
//! Later rounds are counted into those buckets; pages outside them are counted as
//! `outside`. When more than half of a round's pages fall outside, the address space has
//! changed too much: the history starts again from that round. A round with no scanned
//! page adds no row.
//!
//! Memory per task is bounded and does not depend on the task's size: [`HeatHistory`]
//! holds its bounds inline and at most [`HEAT_ROUNDS`] rows of [`HEAT_COLUMNS`] cells of
//! 8 bytes, [`HEAT_MAX_BYTES`] in all (17,448 bytes on 64-bit Linux, under 17.5 KiB);
//! `tests::memory_is_bounded` measures it.
//! Choosing the buckets (first round, or a restart) sorts the round's runs once, 16 bytes
//! per run, freed before the call returns.
//!
//! No I/O, no lock: the engine cell keeps one history per task behind its own mutex.

use crate::plugin::ScanResult;
use etmem_proto::heatmap::{Cell, Heatmap, Row, UNIT_BYTES};
use std::collections::VecDeque;

/// Rounds kept per task.
pub const HEAT_ROUNDS: usize = 32;
/// Address buckets per round.
pub const HEAT_COLUMNS: usize = 64;

/// One round of the history.
#[derive(Debug, Clone)]
struct HeatRow {
    round: u64,
    outside: u64,
    cells: [Cell; HEAT_COLUMNS],
}

/// The most a [`HeatHistory`] holds, inline and on the heap, in bytes.
pub const HEAT_MAX_BYTES: usize =
    std::mem::size_of::<HeatHistory>() + HEAT_ROUNDS * std::mem::size_of::<HeatRow>();

/// The access history of one task.
#[derive(Debug, Clone)]
pub struct HeatHistory {
    /// bucket `i` is `bounds[i]..bounds[i + 1]`; meaningful while `rows` is not empty
    bounds: [u64; HEAT_COLUMNS + 1],
    /// oldest first; never more than [`HEAT_ROUNDS`] (its capacity, reserved once)
    rows: VecDeque<HeatRow>,
}

impl Default for HeatHistory {
    fn default() -> HeatHistory {
        HeatHistory {
            bounds: [0; HEAT_COLUMNS + 1],
            rows: VecDeque::new(),
        }
    }
}

/// The 4 KiB units of `start..end`.
fn units(start: u64, end: u64) -> u64 {
    end.saturating_sub(start) / UNIT_BYTES
}

/// Every run of `scans` as `(start, end, accessed)`.
fn runs(scans: &[ScanResult]) -> impl Iterator<Item = (u64, u64, bool)> + '_ {
    scans
        .iter()
        .flat_map(|s| s.runs().map(|r| (r.addr, r.end(), r.count > 0)))
}

/// Bounds that split the pages of `scans` into equal shares in address order; `None` when
/// nothing was scanned.
fn choose_bounds(scans: &[ScanResult]) -> Option<[u64; HEAT_COLUMNS + 1]> {
    let mut spans: Vec<(u64, u64)> = runs(scans).map(|(s, e, _)| (s, e)).collect();
    spans.sort_unstable();
    let total: u64 = spans.iter().map(|&(s, e)| units(s, e)).sum();
    let (first, _) = *spans.first()?;
    if total == 0 {
        return None;
    }
    let mut bounds = [0u64; HEAT_COLUMNS + 1];
    bounds[0] = first;
    let mut next = 1usize;
    let mut seen = 0u64;
    let mut last_end = first;
    for &(s, e) in &spans {
        let u = units(s, e);
        // the next boundary falls in this span: at the unit where its share begins
        while next < HEAT_COLUMNS {
            let target = u128::from(total) * next as u128 / HEAT_COLUMNS as u128;
            let target = u64::try_from(target).unwrap_or(u64::MAX);
            if target >= seen + u {
                break;
            }
            bounds[next] = s + (target - seen) * UNIT_BYTES;
            next += 1;
        }
        seen += u;
        last_end = last_end.max(e);
    }
    for b in bounds.iter_mut().skip(next) {
        *b = last_end;
    }
    // processes of one task may map the same addresses: keep the bounds ascending
    for i in 1..bounds.len() {
        bounds[i] = bounds[i].max(bounds[i - 1]);
    }
    Some(bounds)
}

/// Counts the pages of `scans` into the buckets of `bounds`.
fn count(bounds: &[u64; HEAT_COLUMNS + 1], round: u64, scans: &[ScanResult]) -> HeatRow {
    let mut row = HeatRow {
        round,
        outside: 0,
        cells: [Cell::default(); HEAT_COLUMNS],
    };
    let (lo, hi) = (bounds[0], bounds[HEAT_COLUMNS]);
    for (start, end, accessed) in runs(scans) {
        // below and above the buckets
        row.outside += units(start, end.min(lo)) + units(start.max(hi), end);
        let mut a = start.max(lo);
        let end = end.min(hi);
        while a < end {
            // the last bucket starting at or before `a` (empty buckets are skipped)
            let i = bounds
                .partition_point(|&b| b <= a)
                .saturating_sub(1)
                .min(HEAT_COLUMNS - 1);
            let stop = end.min(bounds[i + 1]).max(a + UNIT_BYTES).min(end);
            let u = u32::try_from(units(a, stop)).unwrap_or(u32::MAX);
            let c = &mut row.cells[i];
            c.pages = c.pages.saturating_add(u);
            if accessed {
                c.accessed = c.accessed.saturating_add(u);
            }
            a = stop;
        }
    }
    row
}

impl HeatHistory {
    /// Adds round `round` of the task, whose scan results are `scans`.
    pub fn record(&mut self, round: u64, scans: &[ScanResult]) {
        let total: u64 = runs(scans).map(|(s, e, _)| units(s, e)).sum();
        if total == 0 {
            return;
        }
        if !self.rows.is_empty() {
            let row = count(&self.bounds, round, scans);
            if row.outside.saturating_mul(2) <= total {
                self.push(row);
                return;
            }
        }
        // the first round, or the address space moved: start again
        let Some(bounds) = choose_bounds(scans) else {
            return;
        };
        self.bounds = bounds;
        self.rows.clear();
        let row = count(&self.bounds, round, scans);
        self.push(row);
    }

    fn push(&mut self, row: HeatRow) {
        if self.rows.capacity() < HEAT_ROUNDS {
            self.rows.reserve_exact(HEAT_ROUNDS - self.rows.len());
        }
        if self.rows.len() == HEAT_ROUNDS {
            self.rows.pop_front();
        }
        self.rows.push_back(row);
    }

    /// Rounds held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True before the first round with scanned pages.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes held, inline and on the heap (at most [`HEAT_MAX_BYTES`]).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<HeatHistory>() + self.rows.capacity() * std::mem::size_of::<HeatRow>()
    }

    /// The history as a heatmap of `project`/`engine`/`task`.
    pub fn heatmap(&self, project: &str, engine: &str, task: &str) -> Heatmap {
        Heatmap {
            project: project.to_string(),
            engine: engine.to_string(),
            task: task.to_string(),
            bounds: if self.rows.is_empty() {
                Vec::new()
            } else {
                self.bounds.to_vec()
            },
            rows: self
                .rows
                .iter()
                .map(|r| Row {
                    round: r.round,
                    cells: r.cells.to_vec(),
                    outside: r.outside,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_sdk::{PageSize, ScanRun};

    const MIB: u64 = 1 << 20;

    /// One pid: 4 KiB pages over `start..start + len`, the first `hot` bytes accessed.
    fn scan(start: u64, len: u64, hot: u64) -> ScanResult {
        let mut runs = Vec::new();
        if hot > 0 {
            runs.push(ScanRun {
                addr: start,
                pages: (hot / UNIT_BYTES) as u32,
                count: 1,
                size: PageSize::Size4K,
            });
        }
        if len > hot {
            runs.push(ScanRun {
                addr: start + hot,
                pages: ((len - hot) / UNIT_BYTES) as u32,
                count: 0,
                size: PageSize::Size4K,
            });
        }
        ScanResult::from_runs(7, 1, runs).expect("valid scan")
    }

    #[test]
    fn buckets_split_the_pages_and_skip_the_gaps() {
        // two 32 MiB mappings 1 GiB apart: 32 buckets each, none in the gap
        let a = scan(0x1000_0000, 32 * MIB, 16 * MIB);
        let b = scan(0x5000_0000, 32 * MIB, 0);
        let mut h = HeatHistory::default();
        h.record(1, &[a, b]);
        let m = h.heatmap("p", "e", "t");
        assert_eq!(m.bounds.len(), HEAT_COLUMNS + 1);
        assert_eq!(m.bounds[0], 0x1000_0000);
        assert_eq!(m.bounds[1], 0x1000_0000 + MIB);
        assert_eq!(m.bounds[32], 0x5000_0000);
        assert_eq!(m.bounds[64], 0x5000_0000 + 32 * MIB);
        let row = &m.rows[0];
        assert_eq!(row.round, 1);
        assert_eq!(row.outside, 0);
        let pages = (MIB / UNIT_BYTES) as u32;
        // the first 16 buckets hot, the rest cold; every bucket 1 MiB
        for (i, c) in row.cells.iter().enumerate() {
            assert_eq!(c.pages, pages, "bucket {i}");
            assert_eq!(c.accessed, if i < 16 { pages } else { 0 }, "bucket {i}");
        }
    }

    #[test]
    fn ring_wraps_and_keeps_the_last_rounds() {
        let mut h = HeatHistory::default();
        for round in 1..=100 {
            h.record(round, &[scan(0x40_0000, 64 * MIB, (round % 64) * MIB)]);
        }
        assert_eq!(h.len(), HEAT_ROUNDS);
        let m = h.heatmap("p", "e", "t");
        let rounds: Vec<u64> = m.rows.iter().map(|r| r.round).collect();
        assert_eq!(rounds, (69..=100).collect::<Vec<_>>());
        // round 100: 36 MiB hot, one bucket per MiB
        let last = m.rows.last().expect("rows");
        let hot = last.cells.iter().filter(|c| c.accessed > 0).count();
        assert_eq!(hot, 36);
        // an empty round adds nothing
        h.record(101, &[]);
        assert_eq!(
            h.heatmap("p", "e", "t").rows.last().map(|r| r.round),
            Some(100)
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut h = HeatHistory::default();
        assert!(h.bytes() <= HEAT_MAX_BYTES);
        for round in 1..=1000 {
            // a large task: the history's size does not follow it
            h.record(round, &[scan(0x1_0000_0000, 4096 * MIB, MIB)]);
            assert!(h.bytes() <= HEAT_MAX_BYTES, "round {round}: {}", h.bytes());
        }
        assert_eq!(h.bytes(), HEAT_MAX_BYTES);
        // the figure the module doc states (64-bit)
        #[cfg(target_pointer_width = "64")]
        assert_eq!(h.bytes(), 17_448);
    }

    #[test]
    fn pages_outside_are_counted_and_a_moved_space_restarts() {
        let mut h = HeatHistory::default();
        h.record(1, &[scan(0x100_0000, 64 * MIB, 0)]);
        // the mapping grew by 8 MiB: counted outside, the buckets stay
        h.record(2, &[scan(0x100_0000, 72 * MIB, 72 * MIB)]);
        let m = h.heatmap("p", "e", "t");
        assert_eq!(m.rows.len(), 2);
        assert_eq!(m.rows[1].outside, 8 * MIB / UNIT_BYTES);
        assert!(m.rows[1].cells.iter().all(|c| c.accessed == c.pages));
        // somewhere else entirely: a new history
        h.record(3, &[scan(0x9000_0000, 16 * MIB, 0)]);
        let m = h.heatmap("p", "e", "t");
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.bounds[0], 0x9000_0000);
        assert_eq!(m.bounds[64], 0x9000_0000 + 16 * MIB);
        assert_eq!(m.rows[0].outside, 0);
    }

    #[test]
    fn huge_pages_and_tiny_tasks() {
        // one 2 MiB page, accessed: 512 units over 64 buckets of 8 units
        let huge = ScanResult::from_runs(
            1,
            1,
            vec![ScanRun {
                addr: 0x20_0000,
                pages: 1,
                count: 3,
                size: PageSize::Size2M,
            }],
        )
        .expect("valid scan");
        let mut h = HeatHistory::default();
        h.record(1, &[huge]);
        let m = h.heatmap("p", "e", "t");
        assert!(
            m.rows[0]
                .cells
                .iter()
                .all(|c| c.pages == 8 && c.accessed == 8)
        );
        // 3 pages: most buckets are empty, every page is counted once
        let mut h = HeatHistory::default();
        h.record(1, &[scan(0x1000, 3 * UNIT_BYTES, UNIT_BYTES)]);
        let m = h.heatmap("p", "e", "t");
        let cells = &m.rows[0].cells;
        assert_eq!(cells.iter().map(|c| c.pages).sum::<u32>(), 3);
        assert_eq!(cells.iter().map(|c| c.accessed).sum::<u32>(), 1);
        assert!(m.bounds.windows(2).all(|w| w[0] <= w[1]));
    }
}
