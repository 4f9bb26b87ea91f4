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
//! ever writes to a kdamond this process did not create. The configuration files are
//! written by [`sysfs`](super::sysfs); kdamonds that are not (or no longer) ours are
//! checked and reclaimed by [`foreign`](super::foreign).
//!
//! [`DamonTracker`]: super::DamonTracker

use super::foreign::{foreign_use, record};
use super::scheme::DamosScheme;
use super::state;
use super::sysfs::{read_scheme, stopped_by_commit, write_config};
use super::trace::{self, Feed};
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

/// What a member of our kdamond is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// the DAMON access tracker: a `stat` scheme over every region, read each pass
    Tracker,
    /// the damon engine: its own scheme, monitored with exactly the engine's attributes
    Engine(DamosScheme),
}

/// One tracked process of our kdamond.
#[derive(Debug, Clone)]
pub(super) struct Member {
    id: MemberId,
    /// tracker or engine scheme
    pub(super) role: Role,
    pub(super) pid: u32,
    /// its own handle, checked before every commit: the kernel refuses a configuration
    /// that names a pid which no longer exists
    handle: Arc<ProcessHandle>,
    /// initial regions (the tracked mappings), written when the target is new or moved
    pub(super) seeds: Vec<(u64, u64)>,
    /// the attributes its pass window asks for
    attrs: DamonAttrs,
    /// its target index in the configuration the kdamond runs, once committed
    pub(super) committed: Option<usize>,
    /// the last update whose regions it read
    seen: u64,
    /// the last trace block ([`trace::Block::seq`]) it read
    trace_seen: u64,
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
            role: Role::Tracker,
            pid: p.pid(),
            handle: Arc::new(handle),
            seeds,
            attrs,
            committed: None,
            seen: 0,
            trace_seen: 0,
        })
    }

    /// A member for `p` applying the damon engine's `scheme`, monitored with `attrs`
    /// (DAMON's own initial regions: no seeds).
    pub(super) fn engine(
        p: &ProcessHandle,
        attrs: DamonAttrs,
        scheme: DamosScheme,
    ) -> Result<Member, TrackError> {
        let mut m = Member::new(p, Vec::new(), attrs)?;
        m.role = Role::Engine(scheme);
        Ok(m)
    }

    pub(super) fn id(&self) -> MemberId {
        self.id
    }
}

/// The pids of `members` in `role` (engine or tracker), comma-separated; `None` when none.
fn pids_of(members: &[Member], engine: bool) -> Option<String> {
    let v: Vec<String> = members
        .iter()
        .filter(|m| matches!(m.role, Role::Engine(_)) == engine)
        .map(|m| m.pid.to_string())
        .collect();
    (!v.is_empty()).then(|| v.join(", "))
}

/// The pids our kdamond under `kd` tracks for the access tracker, if it has any.
pub(super) fn tracker_pids(kd: &Path) -> Option<String> {
    find(kd).and_then(|k| pids_of(&k.members, false))
}

/// Why `m` cannot join `k`: the engine's schemes and the access tracker never share our
/// kdamond (the engine's attributes are the user's; DAMON runs one context per kdamond and
/// refuses a second kdamond while ours runs), nor do schemes of different attributes.
fn compatible(k: &Kdamond, m: &Member) -> Result<(), TrackError> {
    let refuse = |why: String| {
        Err(TrackError::DamonInUse(format!(
            "kdamond {} of ours {why}; DAMON runs one context per kdamond and refuses a \
             second kdamond while ours runs: stop those projects first",
            k.index
        )))
    };
    match m.role {
        Role::Tracker => match pids_of(&k.members, true) {
            Some(pids) => refuse(format!(
                "applies the damon engine's schemes (pid(s) {pids}) with that project's \
                 monitoring attributes; the access tracker cannot share it"
            )),
            None => Ok(()),
        },
        Role::Engine(_) => {
            if let Some(pids) = pids_of(&k.members, false) {
                return refuse(format!(
                    "serves the DAMON access tracker of page projects (pid(s) {pids}); the \
                     damon engine's monitoring attributes cannot be applied to it"
                ));
            }
            match k.members.iter().find(|o| o.attrs != m.attrs) {
                Some(o) => refuse(format!(
                    "runs damon schemes with other monitoring attributes ({}, for pid {}) \
                     than asked ({})",
                    show_attrs(&o.attrs),
                    o.pid,
                    show_attrs(&m.attrs)
                )),
                None => Ok(()),
            }
        }
    }
}

fn show_attrs(a: &DamonAttrs) -> String {
    format!(
        "sample {} µs, aggr {} µs, update {} µs, regions {}..{}",
        a.sample_us, a.aggr_us, a.update_us, a.min_nr_regions, a.max_nr_regions
    )
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
pub(super) struct Kdamond {
    /// the `kdamonds` directory it lives in
    pub(super) kd: PathBuf,
    /// the directory of its state file ([`state`])
    pub(super) run: PathBuf,
    pub(super) index: u64,
    pub(super) dir: PathBuf,
    /// in target order once committed
    pub(super) members: Vec<Member>,
    /// bumped at every configuration applied (target indices may have moved)
    config: u64,
    last_update: Option<Update>,
    updates: u64,
    /// its aggregations through the `damon_aggregated` tracepoint, where tracefs serves
    /// ([`trace`]); shared by the registry's copies, the instance goes with the last one
    trace: Option<Arc<Mutex<Feed>>>,
}

impl Kdamond {
    fn state_file(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub(super) fn ctx(&self) -> PathBuf {
        self.dir.join("contexts/0")
    }

    fn pids(&self) -> String {
        let v: Vec<String> = self.members.iter().map(|m| m.pid.to_string()).collect();
        v.join(", ")
    }

    /// The attributes for every member at once: the longest window any member asks for (a
    /// shorter aggregation would make pages used early in a longer window look cold), and
    /// the region limits once per target (DAMON applies them to the whole context).
    pub(super) fn attrs(&self) -> DamonAttrs {
        // the damon engine's attributes are the user's, as written (every member has the
        // same: see `compatible`)
        if let Some(m) = self
            .members
            .iter()
            .find(|m| matches!(m.role, Role::Engine(_)))
        {
            return m.attrs;
        }
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
pub(super) struct Owned {
    pub(super) live: Vec<Kdamond>,
    /// kdamonds directories released for good
    pub(super) closed: Vec<PathBuf>,
}

pub(super) fn owned() -> std::sync::MutexGuard<'static, Owned> {
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
    compatible(&k, &m)?;
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
        trace: None,
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
                    open_trace(k);
                } else if let Some(t) = &k.trace {
                    // targets may have moved: what was recorded before names old indices
                    lock(t).asm.reset(trace::mono_now_ns());
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
    if let Some(t) = k.trace.clone() {
        match from_trace(&t, &k, pos) {
            Ok(Some(b)) => {
                k.members[pos].trace_seen = b.seq;
                store(k);
                return Ok(b.regions);
            }
            Ok(None) => {
                tracing::warn!(
                    "kdamond {}: no aggregation came through the damon_aggregated \
                     tracepoint in time; reading its regions through sysfs from now on",
                    k.index
                );
                k.trace = None;
            }
            Err(e) => {
                tracing::warn!(
                    "kdamond {}: reading the damon_aggregated tracepoint: {e}; reading its \
                     regions through sysfs from now on",
                    k.index
                );
                k.trace = None;
            }
        }
    }
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

fn lock(t: &Mutex<Feed>) -> std::sync::MutexGuard<'_, Feed> {
    t.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gives `k` (just turned on) a trace feed filtered on its kthread, or none (sysfs then),
/// saying why once per kdamond.
fn open_trace(k: &mut Kdamond) {
    let Some(sys) = k.kd.ancestors().nth(5) else {
        return;
    };
    let pid = read_trim(&k.dir.join("pid"))
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0);
    // turned on again (it had stopped by itself): the same instance follows the new thread
    if let (Some(t), Some(pid)) = (&k.trace, pid) {
        match lock(t).follow(pid) {
            Ok(()) => return,
            Err(e) => tracing::info!("kdamond {}: trace instance: {e}; making it again", k.index),
        }
    }
    // the old feed's instance goes before a new one is made under the same name
    k.trace = None;
    let r = match pid {
        Some(pid) => Feed::open(sys, pid),
        None => Err(TrackError::Unavailable {
            kind: TrackerKind::Damon,
            reason: format!("kdamond {}: its kthread pid is unreadable", k.index),
        }),
    };
    match r {
        Ok(f) => {
            tracing::info!(
                "kdamond {}: regions read through the damon_aggregated tracepoint",
                k.index
            );
            k.trace = Some(Arc::new(Mutex::new(f)));
        }
        Err(e) => tracing::info!(
            "kdamond {}: regions read through sysfs (three files per region): the \
             damon_aggregated tracepoint cannot serve: {e}",
            k.index
        ),
    }
}

/// The newest complete aggregation of member `pos`'s target that it has not read,
/// waiting for one for at most two aggregations and a second; `None` when none came.
fn from_trace(
    t: &Mutex<Feed>,
    k: &Kdamond,
    pos: usize,
) -> Result<Option<trace::Block>, TrackError> {
    let target = u64::try_from(pos).unwrap_or(u64::MAX);
    let seen = k.members[pos].trace_seen;
    let wait = std::time::Duration::from_micros(k.attrs().aggr_us.saturating_mul(2))
        + std::time::Duration::from_secs(1);
    let deadline = Instant::now() + wait;
    loop {
        {
            let mut f = lock(t);
            f.drain()?;
            if let Some(b) = f.asm.newer(target, seen) {
                return Ok(Some(b.clone()));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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
pub(super) fn remove(kd: &Path, run: &Path, index: u64, dir: &Path) -> Result<(), TrackError> {
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
