//! The check and reclaim of kdamonds that are not ours, or no longer are: whether an
//! existing kdamond is in the way of ours, whether a running one is the leftover of a dead
//! etmemd (its state file names its kthread and its owner is gone), and the state file
//! that lets a restarted etmemd reclaim ours ([`record`]).
//!
//! It must never write to a kdamond that is not ours: one that another user runs or
//! configured is only read and reported ([`TrackError::DamonInUse`]). Only a dead etmemd's
//! leftover is reclaimed, only with `reclaim` (when [`shared`](super::shared) creates our
//! kdamond, its `ops` held); [`availability`] writes nothing at all.

use super::shared::{Kdamond, Role, owned, remove};
use super::state::{self, Record};
use super::{read_trim, read_u64};
use crate::track::TrackError;
use std::path::Path;

/// Why DAMON cannot track one more process for us under `kd`, without writing anything:
/// fine when our kdamond runs there (a target is added to it), else whatever
/// [`foreign_use`] finds.
pub(super) fn availability(kd: &Path, run: &Path) -> Result<(), String> {
    {
        let o = owned();
        if o.closed.iter().any(|c| c == kd) {
            return Err("etmemd is exiting: its kdamonds are released".into());
        }
        if let Some(k) = o.live.iter().find(|x| x.kd == kd) {
            let pids: Vec<String> = k
                .members
                .iter()
                .filter(|m| matches!(m.role, Role::Engine(_)))
                .map(|m| m.pid.to_string())
                .collect();
            if !pids.is_empty() {
                return Err(format!(
                    "our kdamond {} applies the damon engine's schemes (pid(s) {}) with that \
                     project's monitoring attributes; the access tracker cannot share it",
                    k.index,
                    pids.join(", ")
                ));
            }
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
pub(super) fn foreign_use(kd: &Path, run: &Path, reclaim: bool) -> Result<u64, TrackError> {
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
pub(super) fn record(k: &Kdamond) {
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
