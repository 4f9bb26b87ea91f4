//! The sysfs writer of our kdamond: its whole configuration (context, monitoring
//! attributes, one target per member with its initial regions, one scheme per target:
//! `stat` for a tracker, the damon engine's own for an engine member), the check that a `commit` did not stop it, and the reader of a scheme's
//! `tried_regions`.
//!
//! It writes only the files of the kdamond it is given, which must be ours (from the
//! registry in [`shared`](super::shared), its `ops` held): it must never write to a kdamond
//! that is not ours, and it never writes `state` or `nr_kdamonds` (the lifecycle in
//! `shared` does).

use super::shared::{Kdamond, Role};
use super::{read_trim, read_u64, write_str};
use crate::track::TrackError;
use std::path::Path;

/// After a `commit` the kernel may have stopped the kdamond instead (lab, 6.12: a commit
/// naming a process that had exited writes fine, then `state` reads `off`).
pub(super) fn stopped_by_commit(state_file: &Path, was_on: bool) -> Result<(), TrackError> {
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
pub(super) fn write_config(k: &Kdamond, fresh: bool) -> Result<(), TrackError> {
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
    for (i, m) in k.members.iter().enumerate() {
        let s = ctx.join("schemes").join(i.to_string());
        // the tracker's `stat` over every region, or the damon engine's own scheme
        let (action, pattern) = match m.role {
            Role::Tracker => (
                "stat",
                [
                    ("sz", 0, u64::MAX),
                    ("nr_accesses", 0, u64::from(u32::MAX)),
                    ("age", 0, u64::from(u32::MAX)),
                ],
            ),
            Role::Engine(sc) => (sc.action.name(), sc.pattern()),
        };
        write_str(&s.join("action"), action)?;
        let ap = s.join("access_pattern");
        for (what, min, max) in pattern {
            // max first: the new directory's min and max are 0
            write_str(&ap.join(what).join("max"), &max.to_string())?;
            write_str(&ap.join(what).join("min"), &min.to_string())?;
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

pub(super) fn read_scheme(tried: &Path) -> Result<Vec<(u64, u64, u64)>, TrackError> {
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
