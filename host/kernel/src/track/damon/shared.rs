//! The one kdamond of ours per DAMON sysfs tree, shared by every [`DamonTracker`] of the
//! process: one `vaddr` context, one target per tracked process, one `stat` scheme per
//! target whose `target` filter keeps only that target's regions.
//!
//! Trackers register a [`Member`] (at `start`) and unregister it (at `stop`/drop); the
//! registry writes the whole configuration again and `commit`s it to the running kdamond
//! (or turns it `on` when it is off), and removes the kdamond when the last member leaves.
//! A pass asks for [`tried_regions`]: one `update_schemes_tried_regions` serves every
//! member that asks while it is fresh.
//!
//! Every function here that touches sysfs must be called with [`ops`] held; none of them
//! ever writes to a kdamond this process did not create.
//!
//! [`DamonTracker`]: super::DamonTracker

use super::state::{self, Record};
use super::{DamonAttrs, read_trim, read_u64, write_str};
use crate::process::ProcessHandle;
use crate::track::{TrackError, TrackerKind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How long a DAMON file may answer EBUSY, and how long [`release_owned`] waits for a pass.
pub(super) const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Identifies one registration (one tracker's `start`).
pub(super) type MemberId = u64;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One tracked process of our kdamond.
#[derive(Debug, Clone)]
pub(super) struct Member {
    id: MemberId,
    pid: u32,
    /// its own handle, checked before every commit: the kernel refuses a configuration
    /// that names a pid which no longer exists
    handle: Arc<ProcessHandle>,
    /// initial regions (the tracked mappings), written when the target is new or moved
    seeds: Vec<(u64, u64)>,
    /// the attributes its pass window asks for
    attrs: DamonAttrs,
    /// its target index in the configuration the kdamond runs, once committed
    committed: Option<usize>,
    /// the last update whose regions it read
    seen: u64,
}

impl Member {
    /// A member for `p`, starting from `seeds`, wanting `attrs`.
    pub(super) fn new(
        p: &ProcessHandle,
        seeds: Vec<(u64, u64)>,
        attrs: DamonAttrs,
    ) -> Result<Member, TrackError> {
        let handle = p.try_clone().map_err(|source| TrackError::Io {
            op: "dup",
            path: p.path(""),
            source,
        })?;
        Ok(Member {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            pid: p.pid(),
            handle: Arc::new(handle),
            seeds,
            attrs,
            committed: None,
            seen: 0,
        })
    }

    pub(super) fn id(&self) -> MemberId {
        self.id
    }
}

/// The last `update_schemes_tried_regions` of a kdamond.
#[derive(Debug, Clone, Copy)]
struct Update {
    /// the configuration it ran under
    config: u64,
    /// its sequence number (from 1)
    seq: u64,
    /// when it completed
    done: Instant,
}

/// A kdamond of ours.
#[derive(Debug, Clone)]
struct Kdamond {
    /// the `kdamonds` directory it lives in
    kd: PathBuf,
    /// the directory of its state file ([`state`])
    run: PathBuf,
    index: u64,
    dir: PathBuf,
    /// in target order once committed
    members: Vec<Member>,
    /// bumped at every configuration applied (target indices may have moved)
    config: u64,
    last_update: Option<Update>,
    updates: u64,
}

impl Kdamond {
    fn state_file(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn ctx(&self) -> PathBuf {
        self.dir.join("contexts/0")
    }

    fn pids(&self) -> String {
        let v: Vec<String> = self.members.iter().map(|m| m.pid.to_string()).collect();
        v.join(", ")
    }

    /// The attributes for every member at once: the longest window any member asks for (a
    /// shorter aggregation would make pages used early in a longer window look cold), and
    /// the region limits once per target (DAMON applies them to the whole context).
    fn attrs(&self) -> DamonAttrs {
        let mut a = self
            .members
            .iter()
            .map(|m| m.attrs)
            .max_by_key(|a| a.aggr_us)
            .unwrap_or_default();
        let n = u64::try_from(self.members.len().max(1)).unwrap_or(u64::MAX);
        a.min_nr_regions = a.min_nr_regions.saturating_mul(n);
        a.max_nr_regions = a.max_nr_regions.saturating_mul(n);
        a
    }
}

/// The kdamonds this process created and has not removed yet. A tracker's `stop` (or
/// drop) unregisters from its kdamond, and the last one removes it; [`release_owned`]
/// removes every one left under a DAMON tree when etmemd exits, even while a pass still
/// runs on a thread that will never finish, and closes that tree to new kdamonds of ours.
/// Changed only with [`OPS`] held (but `closed`), never held across a sysfs write.
static OWNED: Mutex<Owned> = Mutex::new(Owned {
    live: Vec::new(),
    closed: Vec::new(),
});

#[derive(Debug)]
struct Owned {
    live: Vec<Kdamond>,
    /// kdamonds directories released for good
    closed: Vec<PathBuf>,
}

fn owned() -> std::sync::MutexGuard<'static, Owned> {
    // the list stays consistent whatever panicked while holding it
    OWNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Puts `k` back into the registry (or drops it when it has no member left and was
/// removed).
fn store(k: Kdamond) {
    let mut o = owned();
    if let Some(slot) = o
        .live
        .iter_mut()
        .find(|x| x.kd == k.kd && x.index == k.index)
    {
        *slot = k;
    }
}

fn unlist(kd: &Path, index: u64) {
    owned().live.retain(|x| !(x.kd == kd && x.index == index));
}

fn find(kd: &Path) -> Option<Kdamond> {
    owned().live.iter().find(|x| x.kd == kd).cloned()
}

/// One DAMON sysfs operation of ours at a time (register, unregister, a pass, release).
/// The 6.12 kernel hangs the writer of `off` for good when another thread's
/// `update_schemes_tried_regions` is waiting on the same kdamond (lab: etmemd in D state
/// on SIGTERM mid-pass), so they never overlap. Taken before [`OWNED`].
static OPS: Mutex<()> = Mutex::new(());

pub(super) fn ops() -> std::sync::MutexGuard<'static, ()> {
    OPS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`ops`], waiting at most `limit` (a pass holds it for about one aggregation).
fn ops_within(limit: std::time::Duration) -> Option<std::sync::MutexGuard<'static, ()>> {
    let deadline = Instant::now() + limit;
    loop {
        match OPS.try_lock() {
            Ok(g) => return Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => {
                if Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

/// Why DAMON cannot track one more process for us under `kd`, without writing anything:
/// fine when our kdamond runs there (a target is added to it), else whatever
/// [`foreign_use`] finds.
pub(super) fn availability(kd: &Path, run: &Path) -> Result<(), String> {
    {
        let o = owned();
        if o.closed.iter().any(|c| c == kd) {
            return Err("etmemd is exiting: its kdamonds are released".into());
        }
        if o.live.iter().any(|x| x.kd == kd) {
            return Ok(());
        }
    }
    foreign_use(kd, run, false)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Fails when an existing kdamond is running or configured; else the number of kdamonds.
/// Called only when no kdamond of ours is listed under `kd`.
///
/// A running kdamond that a dead etmemd left ([`leftover`]) is not in the way: with
/// `reclaim` it is turned off, emptied (and dropped when it is the last) and its state file
/// removed; without, it only counts as free (nothing is written). State files naming a
/// kdamond that is gone are removed when `reclaim`.
fn foreign_use(kd: &Path, run: &Path, reclaim: bool) -> Result<u64, TrackError> {
    let n = read_u64(&kd.join("nr_kdamonds"))?;
    if reclaim {
        for i in state::indices(run).into_iter().filter(|i| *i >= n) {
            stale(
                run,
                i,
                &format!("kdamond {i} no longer exists (nr_kdamonds {n})"),
            );
        }
    }
    // highest first: a reclaimed last kdamond is dropped and nr_kdamonds shrinks back
    for i in (0..n).rev() {
        let dir = kd.join(i.to_string());
        let on = read_trim(&dir.join("state"))? == "on";
        let ctxs = read_u64(&dir.join("contexts/nr_contexts"))?;
        if !on && ctxs == 0 {
            continue;
        }
        let why = if on {
            format!(
                "kdamond {i} is running and is not ours; the kernel refuses to add a kdamond \
                 while any runs (EBUSY), and we never stop another user's kdamond"
            )
        } else {
            format!(
                "kdamond {i} is off but configured by someone else ({ctxs} context(s)); adding \
                 ours would make the kernel recreate it and lose that configuration"
            )
        };
        match leftover(&dir, run, i, on, reclaim) {
            Ok(r) => {
                if reclaim {
                    remove(kd, run, i, &dir)?;
                    tracing::warn!(
                        "reclaimed kdamond {i} (kthread pid {}) left running by etmemd pid {}, \
                         which is dead: turned off and emptied",
                        r.kthread_pid,
                        r.owner_pid
                    );
                }
            }
            Err(Some(reason)) => return Err(TrackError::DamonInUse(format!("{why}: {reason}"))),
            Err(None) => return Err(TrackError::DamonInUse(why)),
        }
    }
    read_u64(&kd.join("nr_kdamonds"))
}

/// Whether kdamond `i` (in `dir`; `on` when it runs) is a leftover of a dead etmemd: its
/// state file names it, records its current kthread pid, and its owner is gone. Else why
/// not (`None`: no state file, nothing to say). A state file whose kthread pid differs is
/// stale and removed when `reclaim`.
fn leftover(
    dir: &Path,
    run: &Path,
    i: u64,
    on: bool,
    reclaim: bool,
) -> Result<Record, Option<String>> {
    let r = match state::read(run, i) {
        None => return Err(None),
        Some(Err(e)) => return Err(Some(format!("{e}; not treated as ours"))),
        Some(Ok(r)) => r,
    };
    let file = state::path(run, i);
    // the kernel reads -1 while the kdamond is off
    let now = read_trim(&dir.join("pid")).ok();
    let matches = on && now.as_deref() == Some(r.kthread_pid.to_string().as_str());
    if !matches {
        let now = now.unwrap_or_else(|| "unreadable".into());
        let what = format!(
            "state file {} names kthread pid {} but the kdamond's pid is {now}",
            file.display(),
            r.kthread_pid
        );
        if reclaim {
            stale(run, i, &what);
            return Err(Some(format!("{what} (stale file removed)")));
        }
        return Err(Some(what));
    }
    if state::alive(r.owner_pid, r.owner_start) {
        return Err(Some(format!(
            "it belongs to etmemd pid {}, which is alive (state file {})",
            r.owner_pid,
            file.display()
        )));
    }
    Ok(r)
}

/// Removes a state file that no longer describes a kdamond, saying why.
fn stale(run: &Path, i: u64, why: &str) {
    match state::remove(run, i) {
        Ok(()) => tracing::info!("removed stale DAMON state file: {why}"),
        Err(e) => tracing::warn!("{why}: {e}"),
    }
}

/// Records running kdamond `k` in its state file (after `on`: a new kthread pid). A
/// kdamond that cannot be recorded still works; a restart then cannot reclaim it.
fn record(k: &Kdamond) {
    let pid = read_trim(&k.dir.join("pid"))
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0);
    let r = match (pid, state::me()) {
        (Some(kthread_pid), Some((owner_pid, owner_start))) => Record {
            index: k.index,
            kthread_pid,
            owner_pid,
            owner_start,
        },
        _ => {
            tracing::warn!(
                "kdamond {}: its kthread pid or our own start time is unreadable; no state \
                 file, so a restarted etmemd will not reclaim it if we die",
                k.index
            );
            // an older file would describe another kthread
            let _ = state::remove(&k.run, k.index);
            return;
        }
    };
    if let Err(e) = state::write(&k.run, &r) {
        tracing::warn!(
            "kdamond {}: {e}; a restarted etmemd will not reclaim it if we die",
            k.index
        );
    }
}

/// Adds `m` as a target of our kdamond under `kd`, creating the kdamond when there is
/// none. Returns the kdamond's index. Call with [`ops`] held.
pub(super) fn register(kd: &Path, run: &Path, m: Member) -> Result<u64, TrackError> {
    if owned().closed.iter().any(|c| c == kd) {
        return Err(TrackError::Unavailable {
            kind: TrackerKind::Damon,
            reason: "etmemd is exiting: its kdamonds are released".into(),
        });
    }
    let Some(mut k) = find(kd) else {
        return create(kd, run, m);
    };
    let id = m.id;
    k.members.push(m);
    let r = apply(&mut k);
    if r.is_err() {
        // the kernel kept the configuration it ran; ours goes (the next apply rewrites all)
        k.members.retain(|x| x.id != id);
    }
    let listed = k.members.iter().any(|x| x.id == id);
    let stored = finish(k);
    let index = r?;
    stored?;
    if listed {
        Ok(index)
    } else {
        Err(gone_meanwhile(kd))
    }
}

fn gone_meanwhile(kd: &Path) -> TrackError {
    TrackError::Unavailable {
        kind: TrackerKind::Damon,
        reason: format!(
            "the process exited while its target was added to our kdamond under {}",
            kd.display()
        ),
    }
}

/// Stores `k`, or removes it from the kernel and the registry when no member is left.
fn finish(k: Kdamond) -> Result<(), TrackError> {
    if k.members.is_empty() {
        unlist(&k.kd, k.index);
        remove(&k.kd, &k.run, k.index, &k.dir)
    } else {
        store(k);
        Ok(())
    }
}

/// A new kdamond of ours under `kd` with `m` as its only target.
fn create(kd: &Path, run: &Path, m: Member) -> Result<u64, TrackError> {
    let n = foreign_use(kd, run, true)?;
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
    let mut k = Kdamond {
        kd: kd.to_path_buf(),
        run: run.to_path_buf(),
        index: n,
        dir,
        members: vec![m],
        config: 0,
        last_update: None,
        updates: 0,
    };
    {
        let mut o = owned();
        o.live.push(k.clone());
        if o.closed.iter().any(|c| c == kd) {
            // released while we added it: take it away again
            drop(o);
            k.members.clear();
            let _ = finish(k);
            return Err(TrackError::Unavailable {
                kind: TrackerKind::Damon,
                reason: "etmemd is exiting: its kdamonds are released".into(),
            });
        }
    }
    let r = apply(&mut k);
    if r.is_err() {
        k.members.clear();
    }
    let listed = !k.members.is_empty();
    // a failed start leaves nothing of ours behind; its own error says why
    let stored = finish(k);
    let index = r?;
    stored?;
    if listed {
        Ok(index)
    } else {
        Err(gone_meanwhile(kd))
    }
}

/// Removes member `id` from our kdamond under `kd`; the last member removes the kdamond.
/// Nothing happens when it is not registered (released at etmemd's exit). Call with
/// [`ops`] held.
pub(super) fn unregister(kd: &Path, id: MemberId) -> Result<(), TrackError> {
    let Some(mut k) = find(kd) else {
        return Ok(());
    };
    if !k.members.iter().any(|m| m.id == id) {
        return Ok(());
    }
    k.members.retain(|m| m.id != id);
    let r = if k.members.is_empty() {
        Ok(())
    } else {
        apply(&mut k).map(|_| ())
    };
    // on failure the kernel still monitors the target; the next apply drops it
    let removed = finish(k);
    r.and(removed)
}

/// Writes the configuration of `k`'s members (the live ones: the kernel refuses a pid that
/// no longer exists) and commits it, or turns the kdamond on when it is off (never
/// started, or stopped by itself when all its targets exited). Returns the kdamond index.
/// `k.members` may come back empty (every process gone): the caller removes the kdamond.
fn apply(k: &mut Kdamond) -> Result<u64, TrackError> {
    let mut last = None;
    for _ in 0..3 {
        k.members.retain(|m| m.handle.check().is_ok());
        if k.members.is_empty() {
            return Ok(k.index);
        }
        let state_file = k.state_file();
        // the kernel reads back `on` or `off` (the fake tree: the last command written)
        let on = read_trim(&state_file)? != "off";
        let cmd = if on { "commit" } else { "on" };
        let r = write_config(k, !on)
            .and_then(|()| write_str(&state_file, cmd))
            .and_then(|()| stopped_by_commit(&state_file, on));
        match r {
            Ok(()) => {
                if !on {
                    record(k);
                }
                for (i, m) in k.members.iter_mut().enumerate() {
                    m.committed = Some(i);
                }
                k.config += 1;
                k.last_update = None;
                return Ok(k.index);
            }
            Err(e) => {
                // a process may have exited since we checked, or the kdamond stopped by
                // itself (its last target exited): check again and write again
                last = Some(TrackError::Unavailable {
                    kind: TrackerKind::Damon,
                    reason: format!(
                        "kdamond {} with target pid(s) {}: `{cmd}` not applied: {e}",
                        k.index,
                        k.pids()
                    ),
                });
                let someone_left = k.members.iter().any(|m| m.handle.check().is_err());
                let stopped = on && read_trim(&state_file).is_ok_and(|s| s == "off");
                if !someone_left && !stopped {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| gone_meanwhile(&k.kd)))
}

/// After a `commit` the kernel may have stopped the kdamond instead (lab, 6.12: a commit
/// naming a process that had exited writes fine, then `state` reads `off`).
fn stopped_by_commit(state_file: &Path, was_on: bool) -> Result<(), TrackError> {
    if was_on && read_trim(state_file)? == "off" {
        return Err(TrackError::Parse {
            path: state_file.to_path_buf(),
            reason: "the kdamond stopped on `commit`".into(),
        });
    }
    Ok(())
}

/// Writes every file of `k`'s configuration; `fresh` also the context itself (only while
/// the kdamond is off: writing `nr_contexts` recreates the context directory).
///
/// Writing `nr_targets` or `nr_schemes` recreates every target or scheme directory, so
/// all of them are written each time. A target that keeps its index gets no initial
/// regions (`nr_regions` 0): the commit then leaves its adapted regions alone; a new or
/// moved one gets its mappings. With one target no filter is written (none is needed,
/// and kernels before target filters work too).
fn write_config(k: &Kdamond, fresh: bool) -> Result<(), TrackError> {
    let ctx = k.ctx();
    if fresh {
        write_str(&k.dir.join("contexts/nr_contexts"), "1")?;
        write_str(&ctx.join("operations"), "vaddr")?;
    }
    let a = k.attrs();
    let at = ctx.join("monitoring_attrs");
    write_str(&at.join("intervals/sample_us"), &a.sample_us.to_string())?;
    write_str(&at.join("intervals/aggr_us"), &a.aggr_us.to_string())?;
    write_str(&at.join("intervals/update_us"), &a.update_us.to_string())?;
    // max before min so min <= max holds at every step when they grow; min first when
    // they shrink
    let (max, min) = (at.join("nr_regions/max"), at.join("nr_regions/min"));
    let cur_min = read_u64(&min).unwrap_or(0);
    if a.min_nr_regions < cur_min {
        write_str(&min, &a.min_nr_regions.to_string())?;
        write_str(&max, &a.max_nr_regions.to_string())?;
    } else {
        write_str(&max, &a.max_nr_regions.to_string())?;
        write_str(&min, &a.min_nr_regions.to_string())?;
    }
    let n = k.members.len();
    write_str(&ctx.join("targets/nr_targets"), &n.to_string())?;
    for (i, m) in k.members.iter().enumerate() {
        let t = ctx.join("targets").join(i.to_string());
        write_str(&t.join("pid_target"), &m.pid.to_string())?;
        let seeds: &[(u64, u64)] = if fresh || m.committed != Some(i) {
            &m.seeds
        } else {
            &[]
        };
        set_initial_regions(&t.join("regions"), seeds)?;
    }
    write_str(&ctx.join("schemes/nr_schemes"), &n.to_string())?;
    for i in 0..n {
        let s = ctx.join("schemes").join(i.to_string());
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
        if n > 1 {
            // keep target i only: filter out what does not match it (`matching` N)
            let f = s.join("filters");
            write_str(&f.join("nr_filters"), "1")?;
            write_str(&f.join("0/type"), "target")?;
            write_str(&f.join("0/damon_target_idx"), &i.to_string())?;
            write_str(&f.join("0/matching"), "N")?;
        }
    }
    Ok(())
}

/// Writes `regions` as a target's initial monitoring regions (`targets/N/regions`).
fn set_initial_regions(dir: &Path, regions: &[(u64, u64)]) -> Result<(), TrackError> {
    write_str(&dir.join("nr_regions"), &regions.len().to_string())?;
    for (i, (start, end)) in regions.iter().enumerate() {
        // the kernel checks order and overlap when the configuration is applied
        let r = dir.join(i.to_string());
        write_str(&r.join("start"), &start.to_string())?;
        write_str(&r.join("end"), &end.to_string())?;
    }
    Ok(())
}

/// What a pass of member `id` reads: `(start, end, nr_accesses)` of its target's regions
/// in the last aggregation. Reuses the last update when it completed after `asked` less
/// a quarter of an aggregation and this member has not read it yet (passes of several members
/// together cost one aggregation, not one each); else writes
/// `update_schemes_tried_regions`. Call with [`ops`] held.
pub(super) fn tried_regions(
    kd: &Path,
    id: MemberId,
    asked: Instant,
) -> Result<Vec<(u64, u64, u64)>, TrackError> {
    let Some(mut k) = find(kd) else {
        return Err(TrackError::Unavailable {
            kind: TrackerKind::Damon,
            reason: "our kdamond was released: etmemd is exiting".into(),
        });
    };
    let Some(pos) = k.members.iter().position(|m| m.id == id) else {
        return Err(TrackError::Unavailable {
            kind: TrackerKind::Damon,
            reason: format!(
                "kdamond {}: this process's target was removed (it had exited)",
                k.index
            ),
        });
    };
    // a quarter of an aggregation: the regions are then at most that older than asked
    let slack = std::time::Duration::from_micros(k.attrs().aggr_us / 4);
    let fresh = k
        .last_update
        .filter(|u| u.config == k.config && u.seq > k.members[pos].seen && u.done + slack >= asked);
    let u = match fresh {
        Some(u) => u,
        None => {
            if let Err(e) = write_str(&k.state_file(), "update_schemes_tried_regions") {
                // stopped by itself (every target exited, or a commit failed in the
                // kernel): the live members get it back, this pass has no regions
                if read_trim(&k.state_file()).is_ok_and(|s| s == "off") {
                    let _ = apply(&mut k);
                    let _ = finish(k);
                }
                return Err(e);
            }
            k.updates += 1;
            let u = Update {
                config: k.config,
                seq: k.updates,
                done: Instant::now(),
            };
            k.last_update = Some(u);
            u
        }
    };
    k.members[pos].seen = u.seq;
    let dir = k.ctx().join("schemes").join(pos.to_string());
    store(k);
    read_scheme(&dir.join("tried_regions"))
}

fn read_scheme(tried: &Path) -> Result<Vec<(u64, u64, u64)>, TrackError> {
    let rd = std::fs::read_dir(tried).map_err(crate::track::io_err("read", tried))?;
    let mut idx: Vec<u64> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    idx.sort_unstable();
    let mut out = Vec::with_capacity(idx.len());
    for i in idx {
        let r = tried.join(i.to_string());
        out.push((
            read_u64(&r.join("start"))?,
            read_u64(&r.join("end"))?,
            read_u64(&r.join("nr_accesses"))?,
        ));
    }
    Ok(out)
}

/// The index of our kdamond under `kd` while member `id` is registered with it.
pub(super) fn index_of(kd: &Path, id: MemberId) -> Option<u64> {
    owned()
        .live
        .iter()
        .find(|k| k.kd == kd && k.members.iter().any(|m| m.id == id))
        .map(|k| k.index)
}

/// Removes every kdamond this process created under `sys` (a sysfs root) and refuses new
/// ones there from now on: what etmemd does on its way out. Waits for a pass in progress
/// (at most [`BUSY_WAIT`]). Returns what could not be removed, per kdamond directory.
pub fn release_owned(sys: &Path) -> Vec<(PathBuf, TrackError)> {
    let kd = super::admin(sys);
    let ops = ops_within(BUSY_WAIT);
    let mut o = owned();
    if !o.closed.contains(&kd) {
        o.closed.push(kd.clone());
    }
    if ops.is_none() {
        return o
            .live
            .iter()
            .filter(|k| k.kd == kd)
            .map(|k| {
                (
                    k.dir.clone(),
                    TrackError::DamonInUse(format!(
                        "a scan pass of ours has been updating kdamond {} for more than {:?}; \
                         left as it is",
                        k.index, BUSY_WAIT
                    )),
                )
            })
            .collect();
    }
    let mut mine: Vec<Kdamond> = Vec::new();
    o.live.retain(|k| {
        if k.kd == kd {
            mine.push(k.clone());
            false
        } else {
            true
        }
    });
    drop(o);
    // highest index first: each is then the last one, so nr_kdamonds shrinks back
    mine.sort_by_key(|k| std::cmp::Reverse(k.index));
    mine.into_iter()
        .filter_map(|k| {
            remove(&kd, &k.run, k.index, &k.dir)
                .err()
                .map(|e| (k.dir, e))
        })
        .collect()
}

/// Turns our kdamond off, empties it, removes its state file, and shrinks `nr_kdamonds`
/// when ours is the last one and the others are off and empty (the rewrite recreates
/// them).
fn remove(kd: &Path, run: &Path, index: u64, dir: &Path) -> Result<(), TrackError> {
    let state_file = dir.join("state");
    if read_trim(&state_file)? != "off"
        && let Err(e) = write_str(&state_file, "off")
    {
        // the kdamond may have stopped by itself (targets exited): fine if it reads off
        if read_trim(&state_file)? != "off" {
            return Err(e);
        }
    }
    write_str(&dir.join("contexts/nr_contexts"), "0")?;
    if let Err(e) = state::remove(run, index) {
        tracing::warn!("kdamond {index} removed, but: {e}");
    }
    let n = read_u64(&kd.join("nr_kdamonds"))?;
    if n == index + 1 {
        let others_idle = (0..index).all(|i| {
            let d = kd.join(i.to_string());
            read_trim(&d.join("state")).is_ok_and(|s| s == "off")
                && read_u64(&d.join("contexts/nr_contexts")).is_ok_and(|c| c == 0)
        });
        if others_idle {
            write_str(&kd.join("nr_kdamonds"), &index.to_string())?;
        }
    }
    Ok(())
}
