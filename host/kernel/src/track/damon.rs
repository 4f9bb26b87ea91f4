//! The DAMON tracker through sysfs (`/sys/kernel/mm/damon/admin`), with a kdamond of
//! our own.
//!
//! The kernel recreates *every* kdamond directory when `nr_kdamonds` is written, and
//! refuses (EBUSY) while any kdamond runs. So we add ours only when every existing
//! kdamond is off and has no context (nothing of anyone's would be lost), we re-read
//! `nr_kdamonds` just before writing it, and we remove ours at `stop` only under the
//! same condition. We never write to a kdamond we did not create: if DAMON is in use, we
//! refuse with [`TrackError::DamonInUse`] naming the kdamond.
//!
//! Per pass: write `update_schemes_tried_regions` to our kdamond's `state`, then read
//! `schemes/0/tried_regions/N/{start,end,nr_accesses}` of a `stat` scheme that matches
//! every region. Counts are DAMON's `nr_accesses` (samples per aggregation interval that
//! saw an access) added per pass.

use super::{TrackError, Tracker, TrackerKind};
use crate::access::{ABSENT, AccessMap, MAX_COUNT};
use crate::linux::LinuxKernel;
use crate::process::ProcessHandle;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How long a DAMON file may answer EBUSY before we give up: the sysfs interface takes
/// one lock with `trylock` for nearly every file, so while another thread's command runs
/// (an `update_schemes_tried_regions` waits for the kdamond's next aggregation) every
/// other read or write fails with EBUSY.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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

pub(crate) fn admin(sys: &Path) -> PathBuf {
    sys.join("kernel/mm/damon/admin/kdamonds")
}

/// Why our own kdamond cannot be added, without writing anything.
pub(crate) fn availability(sys: &Path) -> Result<(), String> {
    let kd = admin(sys);
    if !kd.join("nr_kdamonds").exists() {
        return Err(
            "no /sys/kernel/mm/damon/admin: kernel built without CONFIG_DAMON_SYSFS".into(),
        );
    }
    let ours = owned_indices(&owned(), &kd);
    foreign_use(&kd, &ours)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The indices of our live kdamonds under `kd`.
fn owned_indices(o: &Owned, kd: &Path) -> Vec<u64> {
    o.live
        .iter()
        .filter(|(k, _)| k == kd)
        .map(|(_, ours)| ours.index)
        .collect()
}

/// Fails when an existing kdamond is running or configured; `ours` are the indices of
/// the kdamonds this process runs (for a message that says so).
fn foreign_use(kd: &Path, ours: &[u64]) -> Result<u64, TrackError> {
    let n = read_u64(&kd.join("nr_kdamonds"))?;
    for i in 0..n {
        let dir = kd.join(i.to_string());
        let state = read_trim(&dir.join("state"))?;
        if ours.contains(&i) {
            return Err(TrackError::DamonInUse(format!(
                "kdamond {i} is ours and tracks another process; the kernel adds no kdamond \
                 while one runs (EBUSY), so etmemd tracks one process at a time with DAMON \
                 (a project's tasks and their children need another tracker: idle_pages, \
                 page_idle)"
            )));
        }
        if state == "on" {
            return Err(TrackError::DamonInUse(format!(
                "kdamond {i} is running and is not ours; the kernel refuses to add a kdamond \
                 while any runs (EBUSY), and we never stop another user's kdamond"
            )));
        }
        let ctxs = read_u64(&dir.join("contexts/nr_contexts"))?;
        if ctxs != 0 {
            return Err(TrackError::DamonInUse(format!(
                "kdamond {i} is off but configured by someone else ({ctxs} context(s)); adding \
                 ours would make the kernel recreate it and lose that configuration"
            )));
        }
    }
    Ok(n)
}

/// DAMON counts per region, swapped-out and never-touched pages included: pagemap tells
/// which pages are present, and the others are marked absent, as every other tracker
/// reports them, so an engine neither counts them as resident nor plans them again.
///
/// With `soft_dirty`, a page written since the last pass also counts one access. DAMON
/// samples the accessed bit, which the CPU sets only when it loads a translation into its
/// TLB; a hot page whose translation stays cached (a busy loop on its own CPU, huge pages,
/// qemu's large soft TLB) looks idle to DAMON forever. The lab saw slide swap a whole hot
/// region out that way. Soft-dirty catches writes whatever the TLB holds (clear_refs
/// write-protects the pages and flushes the TLB); a page only read while its translation
/// stays cached is still missed.
fn apply_pagemap(
    p: &ProcessHandle,
    map: &mut AccessMap,
    soft_dirty: bool,
) -> Result<(), TrackError> {
    let path = p.path("pagemap");
    let f = std::fs::File::open(&path).map_err(super::io_err("open", &path))?;
    let page_size = map.sizes().pte;
    super::soft_dirty::for_each_pagemap_slot(&f, &path, page_size, map, |slot, e| {
        if !e.present() {
            *slot = ABSENT;
        } else if soft_dirty && e.soft_dirty() {
            // written this pass: one access more than DAMON's samples saw
            crate::access::bump(slot, 1);
        }
    })
}

/// Clears the soft-dirty bits of every page of `p` (`clear_refs` 4: write-protects them and
/// flushes the process's TLB).
fn clear_soft_dirty(p: &ProcessHandle) -> Result<(), TrackError> {
    p.check()?;
    super::write_str(&p.path("clear_refs"), "4")
}

/// The initial regions DAMON starts from: the tracked ranges (VMAs), at most `limit` of
/// them. DAMON's own start (`vaddr`) cuts the address space into equal pieces whose edges
/// fall anywhere, so a region can straddle a hot and a cold mapping and call all of it hot
/// until its adaptive splitting finds the edge, rounds later. Starting from the mappings'
/// own edges, the first pass already tells them apart; DAMON still splits and merges inside
/// them, keeps regions within the three areas `vaddr` monitors and fills the gaps. Above
/// `limit` ranges, the closest neighbours (smallest gap) are joined first.
pub(crate) fn seed_regions(map: &AccessMap, limit: u64) -> Vec<(u64, u64)> {
    let mut r: Vec<(u64, u64)> = map.ranges().filter(|(s, e)| e > s).collect();
    let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
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

/// Writes `regions` as the target's initial monitoring regions (`targets/0/regions`).
fn set_initial_regions(dir: &Path, regions: &[(u64, u64)]) -> Result<(), TrackError> {
    write_str(&dir.join("nr_regions"), &regions.len().to_string())?;
    for (i, (start, end)) in regions.iter().enumerate() {
        // the kernel checks order and overlap when the kdamond turns on, not per write
        let r = dir.join(i.to_string());
        write_str(&r.join("start"), &start.to_string())?;
        write_str(&r.join("end"), &end.to_string())?;
    }
    Ok(())
}

/// The kdamonds this process created and has not removed yet, by `kdamonds` directory.
/// A tracker's `stop` (or drop) removes its own; [`release_owned`] removes every one left
/// under a DAMON tree when etmemd exits, even while a pass still runs on a thread that
/// will never finish, and closes that tree to new kdamonds of ours.
static OWNED: Mutex<Owned> = Mutex::new(Owned {
    live: Vec::new(),
    closed: Vec::new(),
});

#[derive(Debug)]
struct Owned {
    /// (kdamonds directory, our kdamond there)
    live: Vec<(PathBuf, Ours)>,
    /// kdamonds directories released for good
    closed: Vec<PathBuf>,
}

fn owned() -> std::sync::MutexGuard<'static, Owned> {
    // the list stays consistent whatever panicked while holding it
    OWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One DAMON sysfs operation of ours at a time (start, a pass, stop, release). The 6.12
/// kernel hangs the writer of `off` for good when another thread's
/// `update_schemes_tried_regions` is waiting on the same kdamond (lab: etmemd in D state
/// on SIGTERM mid-pass), so they never overlap. Taken before [`OWNED`].
static OPS: Mutex<()> = Mutex::new(());

fn ops() -> std::sync::MutexGuard<'static, ()> {
    OPS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`ops`], waiting at most `limit` (a pass holds it for about one aggregation).
fn ops_within(limit: std::time::Duration) -> Option<std::sync::MutexGuard<'static, ()>> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match OPS.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if std::time::Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// Removes every kdamond this process created under `sys` (a sysfs root) and refuses new
/// ones there from now on: what etmemd does on its way out. Waits for a pass in progress
/// (at most [`BUSY_WAIT`]). Returns what could not be removed, per kdamond directory.
pub fn release_owned(sys: &Path) -> Vec<(PathBuf, TrackError)> {
    let kd = admin(sys);
    let ops = ops_within(BUSY_WAIT);
    let mut o = owned();
    if !o.closed.contains(&kd) {
        o.closed.push(kd.clone());
    }
    if ops.is_none() {
        return o
            .live
            .iter()
            .filter(|(k, _)| *k == kd)
            .map(|(_, ours)| {
                (
                    ours.dir.clone(),
                    TrackError::DamonInUse(format!(
                        "a scan pass of ours has been updating kdamond {} for more than {:?}; \
                         left as it is",
                        ours.index, BUSY_WAIT
                    )),
                )
            })
            .collect();
    }
    let mut mine: Vec<Ours> = Vec::new();
    o.live.retain(|(k, ours)| {
        if *k == kd {
            mine.push(ours.clone());
            false
        } else {
            true
        }
    });
    // highest index first: each is then the last one, so nr_kdamonds shrinks back
    mine.sort_by_key(|ours| std::cmp::Reverse(ours.index));
    mine.into_iter()
        .filter_map(|ours| remove(&kd, &ours).err().map(|e| (ours.dir, e)))
        .collect()
}

/// Turns our kdamond off, empties it, and shrinks `nr_kdamonds` when ours is the last one
/// and the others are off and empty (the rewrite recreates them).
fn remove(kd: &Path, ours: &Ours) -> Result<(), TrackError> {
    let state_file = ours.dir.join("state");
    if read_trim(&state_file)? != "off"
        && let Err(e) = write_str(&state_file, "off")
    {
        // the kdamond may have stopped by itself (target exited): fine if it reads off
        if read_trim(&state_file)? != "off" {
            return Err(e);
        }
    }
    write_str(&ours.dir.join("contexts/nr_contexts"), "0")?;
    let n = read_u64(&kd.join("nr_kdamonds"))?;
    if n == ours.index + 1 {
        let others_idle = (0..ours.index).all(|i| {
            let d = kd.join(i.to_string());
            read_trim(&d.join("state")).is_ok_and(|s| s == "off")
                && read_u64(&d.join("contexts/nr_contexts")).is_ok_and(|c| c == 0)
        });
        if others_idle {
            write_str(&kd.join("nr_kdamonds"), &ours.index.to_string())?;
        }
    }
    Ok(())
}

/// Our kdamond, from `start` to `stop`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ours {
    /// index of our kdamond
    index: u64,
    dir: PathBuf,
}

/// DAMON `vaddr` monitoring of one process with a kdamond of our own.
#[derive(Debug)]
pub struct DamonTracker {
    kdamonds: PathBuf,
    attrs: DamonAttrs,
    ours: Option<Ours>,
    /// soft-dirty works for the process: written pages count as accessed (see
    /// [`apply_pagemap`])
    soft_dirty: bool,
    proc_root: PathBuf,
}

impl DamonTracker {
    /// A DAMON tracker for kernel `k`.
    pub fn new(k: &LinuxKernel, attrs: DamonAttrs) -> Self {
        DamonTracker {
            kdamonds: admin(k.sys_root()),
            attrs,
            ours: None,
            soft_dirty: false,
            proc_root: k.proc_root().to_path_buf(),
        }
    }

    /// The index of our kdamond while started.
    pub fn kdamond_index(&self) -> Option<u64> {
        self.ours.as_ref().map(|o| o.index)
    }

    fn configure(&self, dir: &Path, pid: u32) -> Result<(), TrackError> {
        let a = self.attrs;
        write_str(&dir.join("contexts/nr_contexts"), "1")?;
        let ctx = dir.join("contexts/0");
        write_str(&ctx.join("operations"), "vaddr")?;
        let at = ctx.join("monitoring_attrs");
        write_str(&at.join("intervals/sample_us"), &a.sample_us.to_string())?;
        write_str(&at.join("intervals/aggr_us"), &a.aggr_us.to_string())?;
        write_str(&at.join("intervals/update_us"), &a.update_us.to_string())?;
        // max before min so min <= max holds at every step
        write_str(&at.join("nr_regions/max"), &a.max_nr_regions.to_string())?;
        write_str(&at.join("nr_regions/min"), &a.min_nr_regions.to_string())?;
        write_str(&ctx.join("targets/nr_targets"), "1")?;
        write_str(&ctx.join("targets/0/pid_target"), &pid.to_string())?;
        write_str(&ctx.join("schemes/nr_schemes"), "1")?;
        let s = ctx.join("schemes/0");
        write_str(&s.join("action"), "stat")?;
        let ap = s.join("access_pattern");
        for (what, max) in [
            ("sz", u64::MAX),
            ("nr_accesses", u64::from(u32::MAX)),
            ("age", u64::from(u32::MAX)),
        ] {
            write_str(&ap.join(what).join("max"), &max.to_string())?;
            write_str(&ap.join(what).join("min"), "0")?;
        }
        Ok(())
    }

    fn read_regions(&self, dir: &Path, map: &mut AccessMap) -> Result<(), TrackError> {
        let tried = dir.join("contexts/0/schemes/0/tried_regions");
        let rd = std::fs::read_dir(&tried).map_err(super::io_err("read", &tried))?;
        let mut idx: Vec<u64> = rd
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        idx.sort_unstable();
        for i in idx {
            let r = tried.join(i.to_string());
            let start = read_u64(&r.join("start"))?;
            let end = read_u64(&r.join("end"))?;
            let acc = read_u64(&r.join("nr_accesses"))?;
            map.record_region(
                start,
                end,
                u8::try_from(acc.min(u64::from(MAX_COUNT))).unwrap_or(MAX_COUNT),
            );
        }
        Ok(())
    }
}

impl Tracker for DamonTracker {
    fn kind(&self) -> TrackerKind {
        TrackerKind::Damon
    }

    fn start(&mut self, p: &ProcessHandle, map: &AccessMap) -> Result<(), TrackError> {
        if self.ours.is_some() {
            self.stop()?;
        }
        let _ops = ops();
        let kd = &self.kdamonds;
        if !kd.join("nr_kdamonds").exists() {
            return Err(TrackError::Unavailable {
                kind: TrackerKind::Damon,
                reason: "no /sys/kernel/mm/damon/admin: kernel built without CONFIG_DAMON_SYSFS"
                    .into(),
            });
        }
        let mut o = owned();
        if o.closed.contains(kd) {
            return Err(TrackError::Unavailable {
                kind: TrackerKind::Damon,
                reason: "etmemd is exiting: its kdamonds are released".into(),
            });
        }
        let n = foreign_use(kd, &owned_indices(&o, kd))?;
        // re-read right before writing: someone may have added a kdamond meanwhile
        let again = read_u64(&kd.join("nr_kdamonds"))?;
        if again != n {
            return Err(TrackError::DamonInUse(format!(
                "nr_kdamonds changed from {n} to {again} while we checked it; not touching it"
            )));
        }
        write_str(&kd.join("nr_kdamonds"), &(n + 1).to_string())?;
        let dir = kd.join(n.to_string());
        let now = read_u64(&kd.join("nr_kdamonds"))?;
        if now != n + 1 || !dir.is_dir() {
            return Err(TrackError::DamonInUse(format!(
                "wrote nr_kdamonds {} but it reads {now}; someone else is changing DAMON",
                n + 1
            )));
        }
        let ours = Ours {
            index: n,
            dir: dir.clone(),
        };
        o.live.push((kd.clone(), ours.clone()));
        drop(o);
        self.ours = Some(ours);
        let seeds = seed_regions(map, self.attrs.max_nr_regions / 2);
        let r = (|| {
            p.check()?;
            self.configure(&dir, p.pid())?;
            set_initial_regions(&dir.join("contexts/0/targets/0/regions"), &seeds)?;
            write_str(&dir.join("state"), "on")
        })();
        if let Err(e) = r {
            let _ = self.stop_holding_ops();
            return Err(e);
        }
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
        let Some(ours) = &self.ours else {
            return Err(TrackError::NotStarted(self.kind()));
        };
        p.check()?;
        {
            let _ops = ops();
            if !owned()
                .live
                .iter()
                .any(|(k, x)| *k == self.kdamonds && x == ours)
            {
                return Err(TrackError::Unavailable {
                    kind: TrackerKind::Damon,
                    reason: format!("kdamond {} was released: etmemd is exiting", ours.index),
                });
            }
            if let Err(e) = write_str(&ours.dir.join("state"), "update_schemes_tried_regions") {
                // the kdamond stops by itself when its target exits
                p.check()?;
                return Err(e);
            }
            self.read_regions(&ours.dir, map)?;
        }
        apply_pagemap(p, map, self.soft_dirty)?;
        if self.soft_dirty {
            clear_soft_dirty(p)?;
        }
        map.finish_pass();
        Ok(())
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        let _ops = ops();
        self.stop_holding_ops()
    }
}

impl DamonTracker {
    /// `stop` for a caller that holds [`OPS`].
    fn stop_holding_ops(&mut self) -> Result<(), TrackError> {
        let Some(ours) = self.ours.take() else {
            return Ok(());
        };
        let mut o = owned();
        let before = o.live.len();
        o.live.retain(|(k, x)| !(*k == self.kdamonds && *x == ours));
        if o.live.len() == before {
            // released already (etmemd is exiting): nothing of ours is left there
            return Ok(());
        }
        drop(o);
        remove(&self.kdamonds, &ours)
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
    use crate::access::AccessMap;
    use crate::parse::idle_pages::PageSizes;
    use crate::parse::maps::Vma;

    fn map(ranges: &[(u64, u64)]) -> AccessMap {
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
    fn seeds_are_the_mappings_when_few() {
        let r = [(0x1000, 0x3000), (0x3000, 0x9000), (0x20000, 0x21000)];
        assert_eq!(seed_regions(&map(&r), 10), r.to_vec());
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
            seed_regions(&map(&r), 1),
            vec![(0x1000, 0x119000)],
            "one region spans them all"
        );
        assert_eq!(seed_regions(&map(&r), 0).len(), 1, "a limit of 0 acts as 1");
    }
}
