//! Access trackers: the four ways a kernel can tell which pages of a process were used,
//! behind one [`Tracker`] trait, and [`choose`] which picks the best one available.
//!
//! | tracker | kernel interface | sees |
//! |---|---|---|
//! | [`IdlePagesTracker`] | openEuler `/proc/PID/idle_pages` (etmem_scan.ko) | reads and writes (accessed bit), dirty |
//! | [`PageIdleTracker`] | `/sys/kernel/mm/page_idle/bitmap` + pagemap PFNs | reads and writes |
//! | [`DamonTracker`] | DAMON sysfs, our own kdamond with `vaddr` ops | sampled reads and writes, per region |
//! | [`SoftDirtyTracker`] | `clear_refs` 4 + pagemap bit 55 | **writes only**: pages only read look cold |
//!
//! The DAMON and soft-dirty trackers also read each page's presence and soft-dirty bit from
//! pagemap every pass: by the `PAGEMAP_SCAN` ioctl (6.7+; runs of equal pages) where the
//! kernel has it, else 8 bytes per page (module `pagemap`).
//!
//! `auto` takes the first available in that order. Where DAMON and soft-dirty both exist
//! (upstream kernels, our lab), DAMON wins, on purpose: it sees reads, and it sees
//! hugetlb pages, which soft-dirty never reports (cslide's VM memory is hugetlb). What an
//! operator expects of a pass — "was this page used since the previous pass" — DAMON
//! gives by sampling: one aggregation spans the pass window (`sleep`), 20 samples in it
//! ([`DamonAttrs::for_window`]); a page used less often than once per sample interval may
//! be missed in a pass, and the count is per DAMON region (at least 100 regions per
//! process). hugetlb VMAs count once per huge page ([`AccessMap`]).
//!
//! Start a tracker once per process (`start`), then call `pass` once per scan loop (the
//! caller sleeps between passes) into a fresh [`AccessMap`] each round, and `stop` when
//! the task stops. A tracker kept across rounds keeps its kernel state (DAMON keeps its
//! adapted regions). Every error says whether the process is gone (`is_gone`). Every file path goes through the kernel's proc and sys roots, so a temp tree
//! can stand in for the kernel. Trackers must not act on memory: they only observe.

pub(crate) mod damon;
mod idle_pages;
mod page_idle;
mod pagemap;
mod soft_dirty;

pub use damon::trace as damon_trace;
pub use damon::{DamonAttrs, DamonScheme, DamonTracker, DamosAction, DamosScheme};
pub use idle_pages::{
    IDLE_SCAN_ADD_FLAGS, IdlePagesTracker, SCAN_AS_HUGE, SCAN_IGN_HOST, VMA_SCAN_ADD_FLAGS,
    VMA_SCAN_FLAG,
};
pub use page_idle::PageIdleTracker;
pub(crate) use pagemap::scan_availability as pagemap_scan_availability;
pub use pagemap::{PageBits, PagemapMethod};
pub use soft_dirty::{SoftDirtyTracker, scan_pagemap};

pub(crate) use damon::admin as damon_admin;
pub(crate) use damon::scheme::availability as damon_scheme_availability;
pub(crate) use damon::trace_availability as damon_trace_availability;

use crate::access::AccessMap;
use crate::linux::LinuxKernel;
use crate::parse::idle_pages::IdleDecodeError;
use crate::process::{ProcessError, ProcessHandle};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The trackers we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrackerKind {
    /// openEuler `idle_pages`
    IdlePages,
    /// upstream `page_idle` bitmap
    PageIdle,
    /// DAMON `vaddr` through sysfs
    Damon,
    /// soft-dirty bits (writes only)
    SoftDirty,
}

impl TrackerKind {
    /// Every tracker, best first (the order `auto` tries).
    pub const ALL: [TrackerKind; 4] = [
        TrackerKind::IdlePages,
        TrackerKind::PageIdle,
        TrackerKind::Damon,
        TrackerKind::SoftDirty,
    ];

    /// The name used in configs, logs and the probe (`idle_pages`, `page_idle`, `damon`,
    /// `softdirty`).
    pub fn name(self) -> &'static str {
        match self {
            TrackerKind::IdlePages => "idle_pages",
            TrackerKind::PageIdle => "page_idle",
            TrackerKind::Damon => "damon",
            TrackerKind::SoftDirty => "softdirty",
        }
    }

    /// Parses a name (`soft-dirty` is accepted too).
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "idle_pages" => TrackerKind::IdlePages,
            "page_idle" => TrackerKind::PageIdle,
            "damon" => TrackerKind::Damon,
            "softdirty" | "soft-dirty" | "soft_dirty" => TrackerKind::SoftDirty,
            _ => return None,
        })
    }
}

impl std::fmt::Display for TrackerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which tracker a task wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrackerChoice {
    /// the best one available
    #[default]
    Auto,
    /// exactly this one
    Only(TrackerKind),
}

/// Errors of trackers.
#[derive(Debug, Error)]
pub enum TrackError {
    /// The tracker cannot work on this kernel.
    #[error("tracker {kind}: unavailable: {reason}")]
    Unavailable {
        /// which tracker
        kind: TrackerKind,
        /// what is missing
        reason: String,
    },
    /// `auto` found nothing.
    #[error("no access tracker available: {}", .0.iter().map(|(k, r)| format!("{k}: {r}")).collect::<Vec<_>>().join("; "))]
    NoneAvailable(Vec<(TrackerKind, String)>),
    /// The process exited or was replaced.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A kernel file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// `read`, `write`, `open`, `ioctl`
        op: &'static str,
        /// the file
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// A kernel file had unexpected content.
    #[error("{path}: {reason}")]
    Parse {
        /// the file
        path: PathBuf,
        /// what was wrong
        reason: String,
    },
    /// The idle_pages stream was malformed.
    #[error("{path}: {source}")]
    Decode {
        /// the file
        path: PathBuf,
        /// the decoder's error
        source: IdleDecodeError,
    },
    /// DAMON is used by someone else in a way that keeps us out; we never stop, change
    /// or renumber a kdamond we did not create.
    #[error("damon: {0}")]
    DamonInUse(String),
    /// `pass` or `stop` before `start`.
    #[error("tracker {0}: pass before start")]
    NotStarted(TrackerKind),
}

impl TrackError {
    /// True when the process exited mid-round (log at debug and drop it).
    pub fn is_gone(&self) -> bool {
        matches!(self, TrackError::Process(p) if p.is_gone())
    }
}

/// One way of measuring accesses.
pub trait Tracker: Send + std::fmt::Debug {
    /// Which tracker this is.
    fn kind(&self) -> TrackerKind;
    /// Prepares a round over the ranges of `map` (clears bits, starts a kdamond...).
    fn start(&mut self, p: &ProcessHandle, map: &AccessMap) -> Result<(), TrackError>;
    /// Adds the accesses since the previous pass (or `start`) to `map`.
    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError>;
    /// Ends the round and releases kernel resources (idempotent).
    fn stop(&mut self) -> Result<(), TrackError>;
    /// The time the host leaves between passes (the project's `sleep`), told before
    /// `start`. Trackers that sample (DAMON) size their windows to it so that one pass
    /// reports the accesses of the whole window; exact trackers ignore it.
    fn set_pass_window(&mut self, window: std::time::Duration) {
        let _ = window;
    }
    /// The etmem_scan flags of a task (slide's `swap_flag`, cslide's `ign_host`), told
    /// before `start`. Only idle_pages hands them to the kernel. The others keep to what
    /// they can: `SCAN_AS_HUGE` is what they do anyway (a huge page is reported at its
    /// size) and `SCAN_IGN_HOST` cannot be had (host-side accesses count: more pages look
    /// hot, none wrongly cold), but `VMA_SCAN_FLAG` they refuse, since scanning every VMA
    /// instead of the marked ones would act on memory the process did not offer.
    fn set_scan_flags(&mut self, flags: ScanFlags) -> Result<(), TrackError> {
        if flags.vma & VMA_SCAN_FLAG != 0 {
            return Err(TrackError::Unavailable {
                kind: self.kind(),
                reason: SWAP_FLAG_NEEDS_IDLE_PAGES.into(),
            });
        }
        Ok(())
    }
}

/// Why `swap_flag=yes` works only on the idle_pages tracker.
pub const SWAP_FLAG_NEEDS_IDLE_PAGES: &str = "swap_flag=yes limits the scan to the VMAs the \
     process marked with madvise(MADV_SWAPFLAG), which only openEuler's etmem_scan module \
     (the idle_pages tracker) knows; scanning every VMA instead would swap memory the \
     process did not offer";

/// The flags of the etmem_scan ioctls for one task's scans (0: none sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanFlags {
    /// `IDLE_SCAN_ADD_FLAGS`: [`SCAN_AS_HUGE`], [`SCAN_IGN_HOST`]
    pub scan: u32,
    /// `VMA_SCAN_ADD_FLAGS`: [`VMA_SCAN_FLAG`]
    pub vma: u32,
}

/// Why `kind` cannot work on `k`, or `Ok` if it can.
pub fn availability(k: &LinuxKernel, kind: TrackerKind) -> Result<(), String> {
    let proc_ = k.proc_root();
    let sys = k.sys_root();
    match kind {
        TrackerKind::IdlePages => {
            if proc_.join("self/idle_pages").exists() {
                Ok(())
            } else {
                Err(
                    "no /proc/PID/idle_pages: the openEuler etmem_scan module is not loaded \
                     (or the kernel is not an openEuler kernel)"
                        .into(),
                )
            }
        }
        TrackerKind::PageIdle => {
            let bitmap = sys.join("kernel/mm/page_idle/bitmap");
            if bitmap.exists() {
                Ok(())
            } else {
                Err("no /sys/kernel/mm/page_idle/bitmap: kernel built without \
                     CONFIG_IDLE_PAGE_TRACKING"
                    .into())
            }
        }
        TrackerKind::Damon => damon::availability(sys),
        TrackerKind::SoftDirty => soft_dirty::availability(proc_),
    }
}

/// Builds the tracker `choice` asks for; `Auto` takes the first available of
/// [`TrackerKind::ALL`] and otherwise names what each one is missing.
pub fn choose(k: &LinuxKernel, choice: TrackerChoice) -> Result<Box<dyn Tracker>, TrackError> {
    let kinds: Vec<TrackerKind> = match choice {
        TrackerChoice::Auto => TrackerKind::ALL.to_vec(),
        TrackerChoice::Only(kind) => vec![kind],
    };
    let mut missing = Vec::new();
    for kind in kinds {
        match availability(k, kind) {
            Ok(()) => return Ok(build(k, kind)),
            Err(reason) => missing.push((kind, reason)),
        }
    }
    match (choice, missing.pop()) {
        (TrackerChoice::Only(_), Some((kind, reason))) => {
            Err(TrackError::Unavailable { kind, reason })
        }
        (_, last) => {
            missing.extend(last);
            Err(TrackError::NoneAvailable(missing))
        }
    }
}

/// Builds a tracker without checking availability.
pub fn build(k: &LinuxKernel, kind: TrackerKind) -> Box<dyn Tracker> {
    match kind {
        TrackerKind::IdlePages => Box::new(IdlePagesTracker::new(k, 0, 0)),
        TrackerKind::PageIdle => Box::new(PageIdleTracker::new(k)),
        TrackerKind::Damon => Box::new(DamonTracker::new(k, DamonAttrs::default())),
        TrackerKind::SoftDirty => Box::new(SoftDirtyTracker::new(k)),
    }
}

/// `r`, except that a failure on a process that exited meanwhile says it is gone (the
/// kernel answers such a process with ENOENT, ESRCH or a stopped kdamond, not "gone").
pub(crate) fn gone_or<T>(p: &ProcessHandle, r: Result<T, TrackError>) -> Result<T, TrackError> {
    r.or_else(|e| {
        p.check()?;
        Err(e)
    })
}

// --- small file helpers shared by the trackers -------------------------------------------

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TrackError {
    let path = path.to_path_buf();
    move |source| TrackError::Io { op, path, source }
}

/// Reads a small text file and trims it.
pub(crate) fn read_trim(path: &Path) -> Result<String, TrackError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(io_err("read", path))
}

/// Reads a small decimal file.
pub(crate) fn read_u64(path: &Path) -> Result<u64, TrackError> {
    let s = read_trim(path)?;
    s.parse().map_err(|_| TrackError::Parse {
        path: path.to_path_buf(),
        reason: format!("expected a number, found `{s}`"),
    })
}

/// Writes `value` to an existing file with one `write(2)` (sysfs and procfs files are
/// never created).
pub(crate) fn write_str(path: &Path, value: &str) -> Result<(), TrackError> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(io_err("open", path))?;
    f.write_all(value.as_bytes()).map_err(io_err("write", path))
}

/// Reads pagemap entries for `[start, start + n pages)` from an open pagemap file.
pub(crate) fn read_pagemap(
    f: &std::fs::File,
    path: &Path,
    start: u64,
    page_size: u64,
    n: usize,
    buf: &mut Vec<u8>,
) -> Result<(), TrackError> {
    use std::os::unix::fs::FileExt;
    buf.clear();
    buf.resize(n * 8, 0);
    let mut off = 0;
    while off < buf.len() {
        let pos = (start / page_size) * 8 + off as u64;
        let got = f
            .read_at(&mut buf[off..], pos)
            .map_err(io_err("read", path))?;
        if got == 0 {
            break;
        }
        off += got;
    }
    buf.truncate(off - off % 8);
    Ok(())
}

/// Pages per pagemap read (512 KiB of entries).
pub(crate) const PAGEMAP_CHUNK: usize = 65536;
