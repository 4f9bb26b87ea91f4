//! DAMOS schemes of the `damon` engine (spec §5.5) on our shared kdamond: one target per
//! process, with the engine's access pattern and action (`pageout`...) as that target's
//! own scheme (a `target` filter keeps it to its target when the kdamond has several).
//!
//! The engine's monitoring attributes are the user's (`sample_interval`...: the scheme's
//! `nr_accesses` and `age` are counted in them), so a kdamond of ours serves either the
//! engine's schemes or the DAMON access tracker, never both at once: DAMON runs one
//! context per kdamond, and a second kdamond cannot be added while ours runs (the kernel
//! answers EBUSY). The one that comes second is refused, saying which pids hold it
//! ([`TrackError::DamonInUse`]); the tracker's `auto` choice then takes another tracker.
//! Two damon projects share the kdamond when their attributes are equal.
//!
//! C writes every value with its trailing NUL byte (spec B14); we write the same text
//! without it, one `write(2)` per file with its result checked: the kernel's parsers stop
//! at the NUL anyway, so the contents the kernel keeps are the same.
//!
//! Only DAMON sysfs is driven. A kernel that has DAMON only through debugfs (before 5.18)
//! is detected and refused with a reason ([`availability`]). This module must not touch a
//! kdamond that is not ours: registration goes through [`shared`](super::shared).

use super::shared::{self, Member, MemberId};
use super::{DamonAttrs, admin};
use crate::linux::LinuxKernel;
use crate::process::ProcessHandle;
use crate::track::{TrackError, TrackerKind};
use std::path::{Path, PathBuf};

/// A DAMOS action, by the name DAMON sysfs takes (`schemes/N/action`); C's numbers are the
/// order of [`DamosAction::ALL`] (spec §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DamosAction {
    /// `willneed` (0)
    Willneed,
    /// `cold` (1)
    Cold,
    /// `pageout` (2)
    Pageout,
    /// `hugepage` (3)
    Hugepage,
    /// `nohugepage` (4)
    Nohugepage,
    /// `stat` (5)
    Stat,
}

impl DamosAction {
    /// Every action the damon engine accepts, in C's numbering.
    pub const ALL: [DamosAction; 6] = [
        DamosAction::Willneed,
        DamosAction::Cold,
        DamosAction::Pageout,
        DamosAction::Hugepage,
        DamosAction::Nohugepage,
        DamosAction::Stat,
    ];

    /// The sysfs name.
    pub fn name(self) -> &'static str {
        match self {
            DamosAction::Willneed => "willneed",
            DamosAction::Cold => "cold",
            DamosAction::Pageout => "pageout",
            DamosAction::Hugepage => "hugepage",
            DamosAction::Nohugepage => "nohugepage",
            DamosAction::Stat => "stat",
        }
    }

    /// The action of a sysfs name; `None` for any other word.
    pub fn from_name(name: &str) -> Option<DamosAction> {
        DamosAction::ALL.into_iter().find(|a| a.name() == name)
    }

    /// True when the action changes memory (everything but `stat`): a dry run applies none.
    pub fn acts(self) -> bool {
        self != DamosAction::Stat
    }
}

impl std::fmt::Display for DamosAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A DAMOS scheme: regions of `min_size..=max_size` bytes, accessed
/// `min_acc..=max_acc` times per aggregation, for `min_age..=max_age` aggregations, get
/// `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DamosScheme {
    /// `access_pattern/sz/min`, bytes
    pub min_size: u64,
    /// `access_pattern/sz/max`, bytes
    pub max_size: u64,
    /// `access_pattern/nr_accesses/min`
    pub min_acc: u32,
    /// `access_pattern/nr_accesses/max`
    pub max_acc: u32,
    /// `access_pattern/age/min`, aggregation intervals
    pub min_age: u32,
    /// `access_pattern/age/max`, aggregation intervals
    pub max_age: u32,
    /// `action`
    pub action: DamosAction,
}

impl DamosScheme {
    /// Why the kernel would refuse these values (each minimum at most its maximum).
    pub fn check(&self) -> Result<(), String> {
        for (what, min, max) in [
            ("size", self.min_size, self.max_size),
            ("acc", self.min_acc.into(), self.max_acc.into()),
            ("age", self.min_age.into(), self.max_age.into()),
        ] {
            if min > max {
                return Err(format!(
                    "min_{what} {min} is above max_{what} {max}: DAMON refuses such a scheme"
                ));
            }
        }
        Ok(())
    }

    /// `(file, min, max)` of the access pattern, as written.
    pub(super) fn pattern(&self) -> [(&'static str, u64, u64); 3] {
        [
            ("sz", self.min_size, self.max_size),
            ("nr_accesses", self.min_acc.into(), self.max_acc.into()),
            ("age", self.min_age.into(), self.max_age.into()),
        ]
    }
}

impl std::fmt::Display for DamosScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} regions of {}..={} bytes, {}..={} accesses, age {}..={}",
            self.action,
            self.min_size,
            self.max_size,
            self.min_acc,
            self.max_acc,
            self.min_age,
            self.max_age
        )
    }
}

impl DamonAttrs {
    /// Why DAMON would refuse these attributes: intervals above 0, the aggregation at least
    /// one sample, the update at least one aggregation is not required (DAMON takes it),
    /// at least 3 regions and `min < max` (spec §4.5).
    pub fn check(&self) -> Result<(), String> {
        if self.sample_us == 0 {
            return Err("sample_interval 0: expected at least 1 µs".into());
        }
        if self.aggr_us < self.sample_us {
            return Err(format!(
                "aggr_interval {} µs is below sample_interval {} µs",
                self.aggr_us, self.sample_us
            ));
        }
        if self.update_us == 0 {
            return Err("update_interval 0: expected at least 1 µs".into());
        }
        if self.min_nr_regions < 3 || self.min_nr_regions >= self.max_nr_regions {
            return Err(format!(
                "min_nr_regions {} / max_nr_regions {}: expected 3 <= min < max",
                self.min_nr_regions, self.max_nr_regions
            ));
        }
        Ok(())
    }
}

/// Why the damon engine cannot apply a scheme under the sysfs root `sys`, without writing
/// anything: no DAMON sysfs (saying when the kernel has DAMON through debugfs only), our
/// kdamond busy with the access tracker, or DAMON used by someone else.
pub(crate) fn availability(sys: &Path) -> Result<(), String> {
    let kd = admin(sys);
    if !kd.join("nr_kdamonds").exists() {
        if sys.join("kernel/debug/damon/monitor_on").exists() {
            return Err(
                "DAMON is only offered through debugfs (/sys/kernel/debug/damon): \
                        the damon engine drives DAMON sysfs (CONFIG_DAMON_SYSFS, kernel 5.18+)"
                    .into(),
            );
        }
        return Err(
            "no /sys/kernel/mm/damon/admin: kernel built without CONFIG_DAMON_SYSFS".into(),
        );
    }
    if let Some(pids) = shared::tracker_pids(&kd) {
        return Err(format!(
            "our kdamond serves the DAMON access tracker (pid(s) {pids}) of page projects; \
             it cannot run the damon engine's monitoring attributes at the same time"
        ));
    }
    super::foreign::availability(&kd, &crate::linux::state_dir_for(sys))
}

/// A scheme applied to one process on our kdamond; dropping it (or [`remove`]) takes its
/// target and scheme away, and the kdamond with the last one.
///
/// [`remove`]: DamonScheme::remove
#[derive(Debug)]
pub struct DamonScheme {
    kd: PathBuf,
    id: Option<MemberId>,
    pid: u32,
    scheme: DamosScheme,
    attrs: DamonAttrs,
}

impl DamonScheme {
    /// Adds process `p` as a target of our kdamond under kernel `k` (creating and turning
    /// on the kdamond when there is none) with `scheme` as its own scheme, monitored with
    /// `attrs`. Checks the values first; refuses when our kdamond serves the access tracker
    /// or other schemes with other attributes, and when DAMON is someone else's.
    pub fn apply(
        k: &LinuxKernel,
        p: &ProcessHandle,
        attrs: DamonAttrs,
        scheme: DamosScheme,
    ) -> Result<DamonScheme, TrackError> {
        let invalid = |reason: String| TrackError::Unavailable {
            kind: TrackerKind::Damon,
            reason,
        };
        attrs.check().map_err(invalid)?;
        scheme.check().map_err(invalid)?;
        let kd = admin(k.sys_root());
        let _ops = shared::ops();
        if !kd.join("nr_kdamonds").exists() {
            return Err(invalid(
                availability(k.sys_root()).err().unwrap_or_default(),
            ));
        }
        p.check()?;
        let m = Member::engine(p, attrs, scheme)?;
        let id = m.id();
        crate::track::gone_or(p, shared::register(&kd, &k.state_dir(), m))?;
        Ok(DamonScheme {
            kd,
            id: Some(id),
            pid: p.pid(),
            scheme,
            attrs,
        })
    }

    /// The process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The scheme applied.
    pub fn scheme(&self) -> DamosScheme {
        self.scheme
    }

    /// The monitoring attributes asked for.
    pub fn attrs(&self) -> DamonAttrs {
        self.attrs
    }

    /// The index of our kdamond while the scheme is applied (`None` once the process
    /// exited and the registry dropped it).
    pub fn kdamond_index(&self) -> Option<u64> {
        self.id.and_then(|id| shared::index_of(&self.kd, id))
    }

    /// Takes the target and its scheme away (the kdamond goes with the last one).
    pub fn remove(mut self) -> Result<(), TrackError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), TrackError> {
        let Some(id) = self.id.take() else {
            return Ok(());
        };
        let _ops = shared::ops();
        shared::unregister(&self.kd, id)
    }
}

impl Drop for DamonScheme {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::warn!("DAMON scheme of pid {}: removal failed: {e}", self.pid);
        }
    }
}
