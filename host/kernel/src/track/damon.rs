//! The DAMON tracker through sysfs (`/sys/kernel/mm/damon/admin`), with one kdamond of
//! our own shared by every tracked process.
//!
//! The kernel recreates *every* kdamond directory when `nr_kdamonds` is written, and
//! refuses (EBUSY) while any kdamond runs. So we add ours only when every existing
//! kdamond is off and has no context (nothing of anyone's would be lost), we re-read
//! `nr_kdamonds` just before writing it, and we remove ours when its last tracker stops,
//! under the same condition. We never write to a kdamond we did not create: if DAMON is in
//! use, we refuse with [`TrackError::DamonInUse`] naming the kdamond.
//!
//! Several processes share our kdamond ([`shared`]): one `vaddr` context, one target per
//! process, one `stat` scheme per target with a `target` filter, so each scheme's
//! `tried_regions` holds its own target's regions. A tracker's `start` adds its target and
//! commits the configuration to the running kdamond; its `stop` removes it.
//!
//! Per pass: write `update_schemes_tried_regions` to our kdamond's `state` (or reuse the
//! one another tracker's pass just made), then read `schemes/N/tried_regions/M/{start,end,
//! nr_accesses}` of the tracker's own scheme. Counts are DAMON's `nr_accesses` (samples per
//! aggregation interval that saw an access) added per pass.
//!
//! This module must not act on memory, and must not touch a kdamond that is not ours.

mod foreign;
mod refine;
pub(crate) mod scheme;
mod shared;
pub(crate) mod state;
mod sysfs;
pub mod trace;

/// Whether DAMON's regions can be read through the `damon:damon_aggregated` tracepoint
/// under the sysfs root `sys` (nothing is written).
pub(crate) fn trace_availability(sys: &Path) -> Result<(), String> {
    trace::availability(sys).map(|_| ())
}

pub use scheme::{DamonScheme, DamosAction, DamosScheme};
pub use shared::release_owned;

use super::pagemap::PagemapMethod;
use super::{TrackError, Tracker, TrackerKind};
use crate::access::AccessMap;
use crate::linux::LinuxKernel;
use crate::process::ProcessHandle;
use std::path::{Path, PathBuf};

use shared::BUSY_WAIT;

/// Runs `f` again while it fails with EBUSY, for at most [`BUSY_WAIT`].
fn unbusy<T>(mut f: impl FnMut() -> Result<T, TrackError>) -> Result<T, TrackError> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    loop {
        match f() {
            Err(TrackError::Io { ref source, .. })
                if source.raw_os_error() == Some(libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

fn read_trim(path: &Path) -> Result<String, TrackError> {
    unbusy(|| super::read_trim(path))
}

fn read_u64(path: &Path) -> Result<u64, TrackError> {
    unbusy(|| super::read_u64(path))
}

fn write_str(path: &Path, value: &str) -> Result<(), TrackError> {
    unbusy(|| super::write_str(path, value))
}

/// DAMON monitoring attributes for our kdamond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DamonAttrs {
    /// sampling interval, microseconds
    pub sample_us: u64,
    /// aggregation interval, microseconds
    pub aggr_us: u64,
    /// target regions update interval, microseconds
    pub update_us: u64,
    /// minimum number of regions
    pub min_nr_regions: u64,
    /// maximum number of regions
    pub max_nr_regions: u64,
}

impl Default for DamonAttrs {
    fn default() -> Self {
        DamonAttrs::for_window(std::time::Duration::from_secs(1))
    }
}

impl DamonAttrs {
    /// Attributes for passes `window` apart. A pass reads the regions' `nr_accesses` of
    /// the last aggregation, so the aggregation spans the window (0.1 s ..= 10 s) and
    /// samples 20 times in it: a page touched at least once per sample interval counts
    /// up to 20 in a pass, one never touched 0. At least 100 regions (DAMON keeps every
    /// region under total/min_nr_regions), so hot and cold areas a few MiB apart do not
    /// share a region for long.
    pub fn for_window(window: std::time::Duration) -> DamonAttrs {
        let aggr_us = u64::try_from(window.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(100_000, 10_000_000);
        DamonAttrs {
            sample_us: aggr_us / 20,
            aggr_us,
            update_us: 1_000_000,
            min_nr_regions: 100,
            max_nr_regions: 1000,
        }
    }
}

impl DamonAttrs {
    /// Samples per aggregation: the most accesses a region's count can show.
    pub fn samples(&self) -> u64 {
        (self.aggr_us / self.sample_us.max(1)).max(1)
    }
}

pub(crate) fn admin(sys: &Path) -> PathBuf {
    sys.join("kernel/mm/damon/admin/kdamonds")
}

/// Why DAMON cannot track one more process for us, without writing anything.
pub(crate) fn availability(sys: &Path) -> Result<(), String> {
    let kd = admin(sys);
    if !kd.join("nr_kdamonds").exists() {
        return Err(
            "no /sys/kernel/mm/damon/admin: kernel built without CONFIG_DAMON_SYSFS".into(),
        );
    }
    foreign::availability(&kd, &crate::linux::state_dir_for(sys))
}

/// This pass's pagemap marks of every tracked page ([`refine::PassMarks`]): absent,
/// present, or present and written since the last pass (with `soft_dirty`).
///
/// DAMON counts per region, swapped-out and never-touched pages included: pagemap tells
/// which pages are present, and the others are marked absent, as every other tracker
/// reports them, so an engine neither counts them as resident nor plans them again.
///
/// With `soft_dirty`, a page written since the last pass counts as accessed. DAMON
/// samples the accessed bit, which the CPU sets only when it loads a translation into its
/// TLB; a hot page whose translation stays cached (a busy loop on its own CPU, huge pages,
/// qemu's large soft TLB) looks idle to DAMON forever. The lab saw slide swap a whole hot
/// region out that way. Soft-dirty catches writes whatever the TLB holds (clear_refs
/// write-protects the pages and flushes the TLB); a page only read while its translation
/// stays cached is still missed. The written pages also tell, page by page, which pages of
/// a region DAMON saw accessed were used ([`refine`]).
fn read_marks(
    p: &ProcessHandle,
    map: &AccessMap,
    soft_dirty: bool,
    method: PagemapMethod,
) -> Result<(refine::PassMarks, PagemapMethod), TrackError> {
    let path = p.path("pagemap");
    let f = std::fs::File::open(&path).map_err(super::io_err("open", &path))?;
    let page_size = map.sizes().pte;
    // the walk visits the slots of a map of the same shape; its slots become the marks
    let mut scratch = map.clone();
    let used =
        super::pagemap::for_each_page_run(&f, &path, page_size, &mut scratch, method, |run, b| {
            run.fill(if !b.present {
                refine::MARK_ABSENT
            } else if soft_dirty && b.soft_dirty {
                refine::MARK_WRITTEN
            } else {
                refine::MARK_PRESENT
            });
        })?;
    let mut marks = refine::PassMarks::shaped_like(map);
    for i in 0..scratch.nr_ranges() {
        if let (Some((_, from)), Some((_, to))) = (scratch.slots_mut(i), marks.slots_mut(i)) {
            to.copy_from_slice(from);
        }
    }
    Ok((marks, used))
}

/// Clears the soft-dirty bits of every page of `p` (`clear_refs` 4: write-protects them and
/// flushes the process's TLB).
fn clear_soft_dirty(p: &ProcessHandle) -> Result<(), TrackError> {
    p.check()?;
    super::write_str(&p.path("clear_refs"), "4")
}

/// The initial regions DAMON starts from: the tracked ranges (VMAs), at most `limit` of
/// them, cut into pieces of equal size so that there are about `limit` in all. DAMON's own
/// start (`vaddr`) cuts the address space into equal pieces whose edges
/// fall anywhere, so a region can straddle a hot and a cold mapping and call all of it hot
/// until its adaptive splitting finds the edge, rounds later. Starting from the mappings'
/// own edges, the first pass already tells them apart; DAMON still splits and merges inside
/// them, keeps regions within the three areas `vaddr` monitors and fills the gaps. Above
/// `limit` ranges, the closest neighbours (smallest gap) are joined first.
///
/// A large mapping is cut because DAMON splits a region in two or three per aggregation
/// (one pass): a 512 MiB heap seeded whole is one region in the first pass and a handful in
/// the third, each counted accessed if any page of it was, so the cold pages among hot ones
/// would wait rounds for DAMON to find them. Cut into `limit` pieces (`max_nr_regions`:
/// 128 KiB at 128 MiB tracked, 512 KiB at 512 MiB), a hot area and a cold one of the same
/// mapping differ from the first pass, a piece apart at most: with `T=1` a page counts hot
/// when any pass saw its region accessed, so the first pass's pieces bound how many cold
/// pages beside a hot area round 1 keeps (the lab's read-only case kept 1.3 % with 2 MiB
/// pieces), and how far pages only read can hide in a cold region (see
/// [`refine::EDGE_CONFIDENCE`]). DAMON then merges the pieces that agree (it splits no
/// region while it has more than `max_nr_regions / 2`).
pub(crate) fn seed_regions(map: &AccessMap, limit: u64) -> Vec<(u64, u64)> {
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
    let joined = join_ranges(map.ranges().filter(|(s, e)| e > s).collect(), limit);
    cut_ranges(joined, limit, map.sizes().pte)
}

/// The smallest seed piece: finer than this is left to DAMON's own splitting.
const MIN_SEED_PIECE: u64 = 128 << 10;

/// Cuts `ranges` at the multiples of one piece size (a multiple of `page`, at least
/// [`MIN_SEED_PIECE`]; a mapping smaller than a piece is left whole), so that there are at
/// most about `limit` pieces in all.
fn cut_ranges(ranges: Vec<(u64, u64)>, limit: usize, page: u64) -> Vec<(u64, u64)> {
    let total: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    let spare = limit.saturating_sub(ranges.len()) as u64;
    if spare == 0 || total == 0 {
        return ranges;
    }
    let piece = total
        .div_ceil(spare)
        .max(MIN_SEED_PIECE)
        .next_multiple_of(page.max(1));
    let mut out = Vec::with_capacity(limit);
    for (s, e) in ranges {
        let mut a = s;
        while a < e {
            let b = a.saturating_add(1).next_multiple_of(piece).min(e);
            out.push((a, b));
            a = b;
        }
    }
    out
}

/// Joins `r` (ascending) across its smallest gaps until at most `limit` ranges remain.
fn join_ranges(mut r: Vec<(u64, u64)>, limit: usize) -> Vec<(u64, u64)> {
    if r.len() <= limit {
        return r;
    }
    // join across the (len - limit) smallest gaps
    let mut gaps: Vec<(u64, usize)> = r
        .windows(2)
        .enumerate()
        .map(|(i, w)| (w[1].0.saturating_sub(w[0].1), i))
        .collect();
    gaps.sort_unstable();
    let mut join = vec![false; r.len()];
    for &(_, i) in gaps.iter().take(r.len() - limit) {
        join[i] = true;
    }
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(limit);
    let mut joining = false;
    for (i, range) in r.drain(..).enumerate() {
        match out.last_mut() {
            Some(last) if joining => last.1 = range.1,
            _ => out.push(range),
        }
        joining = join[i];
    }
    out
}

/// DAMON `vaddr` monitoring of one process: a target of our shared kdamond.
#[derive(Debug)]
pub struct DamonTracker {
    kdamonds: PathBuf,
    /// where our kdamond's state file lives
    run: PathBuf,
    attrs: DamonAttrs,
    /// our registration with the shared kdamond while started
    member: Option<shared::MemberId>,
    /// soft-dirty works for the process: written pages count as accessed (see
    /// [`apply_pagemap`])
    soft_dirty: bool,
    /// `Scan` until the kernel says it has no PAGEMAP_SCAN
    pagemap: PagemapMethod,
    proc_root: PathBuf,
    /// the largest initial region (DAMON's coarsest resolution: see
    /// [`refine::EDGE_CONFIDENCE`])
    seed_piece: u64,
}

impl DamonTracker {
    /// A DAMON tracker for kernel `k`.
    pub fn new(k: &LinuxKernel, attrs: DamonAttrs) -> Self {
        DamonTracker {
            kdamonds: admin(k.sys_root()),
            run: k.state_dir(),
            attrs,
            member: None,
            soft_dirty: false,
            pagemap: PagemapMethod::Scan,
            proc_root: k.proc_root().to_path_buf(),
            seed_piece: 0,
        }
    }

    /// The index of our kdamond while started.
    pub fn kdamond_index(&self) -> Option<u64> {
        self.member
            .and_then(|id| shared::index_of(&self.kdamonds, id))
    }
}

impl Tracker for DamonTracker {
    fn kind(&self) -> TrackerKind {
        TrackerKind::Damon
    }

    fn start(&mut self, p: &ProcessHandle, map: &AccessMap) -> Result<(), TrackError> {
        if self.member.is_some() {
            self.stop()?;
        }
        let _ops = shared::ops();
        if !self.kdamonds.join("nr_kdamonds").exists() {
            return Err(TrackError::Unavailable {
                kind: TrackerKind::Damon,
                reason: "no /sys/kernel/mm/damon/admin: kernel built without CONFIG_DAMON_SYSFS"
                    .into(),
            });
        }
        p.check()?;
        let seeds = seed_regions(map, self.attrs.max_nr_regions);
        self.seed_piece = seeds.iter().map(|(s, e)| e - s).max().unwrap_or(0);
        let m = shared::Member::new(p, seeds, self.attrs)?;
        let id = m.id();
        super::gone_or(p, shared::register(&self.kdamonds, &self.run, m))?;
        self.member = Some(id);
        // soft-dirty as well where the kernel has it (CONFIG_MEM_SOFT_DIRTY): if not, DAMON
        // alone
        self.soft_dirty =
            super::soft_dirty::availability(&self.proc_root).is_ok() && clear_soft_dirty(p).is_ok();
        Ok(())
    }

    fn set_pass_window(&mut self, window: std::time::Duration) {
        self.attrs = DamonAttrs::for_window(window);
    }

    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        let Some(id) = self.member else {
            return Err(TrackError::NotStarted(self.kind()));
        };
        p.check()?;
        let asked = std::time::Instant::now();
        let regions = {
            let _ops = shared::ops();
            // the kdamond stops by itself when all its targets exit
            super::gone_or(p, shared::tried_regions(&self.kdamonds, id, asked))?
        };
        let nr_regions = regions.len();
        let got = std::time::Instant::now();
        // PAGEMAP_SCAN answers ESRCH for a process that exited meanwhile
        let (marks, used) = super::gone_or(p, read_marks(p, map, self.soft_dirty, self.pagemap))?;
        if used != self.pagemap {
            tracing::info!("DAMON tracker: {}", super::pagemap::NO_PAGEMAP_SCAN);
            self.pagemap = used;
        }
        let paged = std::time::Instant::now();
        let st = refine::record_pass(map, &marks, &regions, self.attrs.samples(), self.seed_piece);
        let recorded = std::time::Instant::now();
        if self.soft_dirty {
            clear_soft_dirty(p)?;
        }
        map.finish_pass();
        let ms = |a: std::time::Instant, b: std::time::Instant| (b - a).as_secs_f64() * 1e3;
        tracing::debug!(
            "DAMON pass of pid {}: {nr_regions} region(s) read in {:.1} ms ({} accessed: {} \
             refined by writes, {} read, {} mixed; {} edge page(s) beside them), {used} \
             {:.1} ms, recorded in {:.1} ms, clear_refs {:.1} ms",
            p.pid(),
            ms(asked, got),
            st.accessed,
            st.refined,
            st.read,
            st.mixed,
            st.edge_pages,
            ms(got, paged),
            ms(paged, recorded),
            ms(recorded, std::time::Instant::now()),
        );
        Ok(())
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        let Some(id) = self.member.take() else {
            return Ok(());
        };
        let _ops = shared::ops();
        shared::unregister(&self.kdamonds, id)
    }
}

impl Drop for DamonTracker {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::{TrackError, seed_regions, unbusy};
    use crate::access::map_over as map;

    fn io(errno: i32) -> TrackError {
        TrackError::Io {
            op: "read",
            path: "/sys/kernel/mm/damon/admin/kdamonds/0/state".into(),
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn ebusy_is_waited_out_and_other_errors_are_not() {
        let mut calls = 0;
        let r = unbusy(|| {
            calls += 1;
            if calls < 3 {
                Err(io(libc::EBUSY))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r.expect("third call answers"), 3);
        let mut calls = 0;
        let r: Result<(), _> = unbusy(|| {
            calls += 1;
            Err(io(libc::EINVAL))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "EINVAL is not retried");
    }

    #[test]
    fn seeds_are_the_mappings_when_they_fill_the_limit() {
        let r = [(0x1000, 0x3000), (0x3000, 0x9000), (0x20000, 0x21000)];
        assert_eq!(seed_regions(&map(&r), 3), r.to_vec());
    }

    #[test]
    fn large_mappings_are_cut_at_multiples_of_one_piece_within_the_limit() {
        const M: u64 = 1 << 20;
        // 8 MiB and 1 MiB, limit 6: 4 spare -> 2.25 MiB pieces, cut at their multiples;
        // a 128 KiB mapping (under a piece) stays whole
        let r = [
            (0x4000_0000, 0x4000_0000 + 8 * M),
            (0x5000_0000, 0x5000_0000 + M),
            (0x6000_0000, 0x6002_0000),
        ];
        let s = seed_regions(&map(&r), 6);
        let piece = (9 * M + 0x20000).div_ceil(3).next_multiple_of(4096);
        assert!(s.iter().all(|(a, b)| b - a <= piece), "{s:x?}");
        assert!(
            s.iter()
                .all(|&(a, _)| a % piece == 0 || r.iter().any(|x| x.0 == a))
                && s.iter()
                    .all(|&(_, b)| b % piece == 0 || r.iter().any(|x| x.1 == b)),
            "cut at multiples of the piece: {s:x?}"
        );
        assert!(s.contains(&(0x6000_0000, 0x6002_0000)));
        // the floor: 1 MiB alone, limit 1000: 128 KiB pieces, not 4 KiB ones
        let one = [(0x4000_0000, 0x4000_0000 + M)];
        assert_eq!(seed_regions(&map(&one), 1000).len(), 8);
        // 512 MiB, limit 500: about 1 MiB pieces, at most 500 of them, edges kept
        let heap = [(0x7f00_0000_0000u64, 0x7f00_2000_0000u64)];
        let s = seed_regions(&map(&heap), 500);
        assert!(s.len() <= 500 && s.len() >= 450, "{}", s.len());
        assert_eq!(s.first().map(|x| x.0), Some(heap[0].0));
        assert_eq!(s.last().map(|x| x.1), Some(heap[0].1));
        assert!(s.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
        assert!(
            s.iter()
                .all(|(a, b)| (b - a) % 4096 == 0 && b - a <= 1_081_344)
        );
    }

    #[test]
    fn too_many_mappings_join_across_the_smallest_gaps() {
        // gaps: 0x1000, 0x10000, 0x2000, 0x100000
        let r = [
            (0x1000, 0x2000),
            (0x3000, 0x4000),
            (0x14000, 0x15000),
            (0x17000, 0x18000),
            (0x118000, 0x119000),
        ];
        assert_eq!(
            seed_regions(&map(&r), 3),
            vec![(0x1000, 0x4000), (0x14000, 0x18000), (0x118000, 0x119000)]
        );
        assert_eq!(
            super::join_ranges(r.to_vec(), 1),
            vec![(0x1000, 0x119000)],
            "one region spans them all"
        );
        assert_eq!(seed_regions(&map(&r), 0).len(), 1, "a limit of 0 acts as 1");
    }
}
