//! Memory actions on a target process: swap out (openEuler `swap_pages` or
//! `process_madvise(MADV_PAGEOUT)`), migrate to a NUMA node (`move_pages(2)`), and query
//! which node pages are on.
//!
//! Every action first goes through [`plan`]: pages must be aligned to their size and lie
//! inside one of the target's VMAs, and the byte quota is applied in order. The report
//! says what was requested, done and failed, by reason; per-page status from the kernel
//! is reported as is, never assumed. This module must not pick pages: the engines do.

use crate::parse::maps::Vma;
use crate::process::{ProcessError, ProcessHandle};
use std::collections::BTreeMap;
use std::path::PathBuf;
use thiserror::Error;

mod etmem_swap;
pub use etmem_swap::{
    RECLAIM_SWAPCACHE_ON, SET_SWAPCACHE_WMARK, SWAP_PAGES_LINES, SwapcacheWmark, swap_pages_batches,
};
pub(crate) use etmem_swap::{reclaim_swapcache, swap_pages};

/// One page (or huge page) to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageRef {
    /// address, aligned to `size`
    pub addr: u64,
    /// bytes (4 KiB, 2 MiB, 1 GiB)
    pub size: u64,
}

/// How to swap out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SwapMethod {
    /// `swap_pages` if the etmem_swap module is there, else `process_madvise`
    #[default]
    Auto,
    /// openEuler `/proc/PID/swap_pages`
    SwapPages,
    /// `process_madvise(pidfd, MADV_PAGEOUT)`
    Pageout,
}

/// Why a page was not acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailReason {
    /// not inside any VMA of the target
    OutsideVma,
    /// address not aligned to the page size, or a size that is not a power of two
    Misaligned,
    /// beyond the byte quota (not attempted)
    OverQuota,
    /// the kernel found the page busy (EBUSY); try later
    Busy,
    /// not present (EFAULT/ENOENT): never touched, already swapped, or the zero page
    NotPresent,
    /// no memory on the target node (ENOMEM)
    NoMemory,
    /// permission (EACCES/EPERM), e.g. a shared page without MOVE_ALL
    Permission,
    /// the page stayed on another node after a migration
    NotMoved,
    /// the process exited during the action
    Gone,
    /// in a VMA locked with mlock (VM_LOCKED): the kernel never swaps it (not attempted)
    Locked,
    /// any other errno
    Errno(i32),
}

impl FailReason {
    fn from_errno(e: i32) -> Self {
        match e {
            libc::EBUSY | libc::EAGAIN => FailReason::Busy,
            libc::EFAULT | libc::ENOENT => FailReason::NotPresent,
            libc::ENOMEM => FailReason::NoMemory,
            libc::EACCES | libc::EPERM => FailReason::Permission,
            libc::ESRCH => FailReason::Gone,
            e => FailReason::Errno(e),
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailReason::OutsideVma => f.write_str("outside_vma"),
            FailReason::Misaligned => f.write_str("misaligned"),
            FailReason::OverQuota => f.write_str("over_quota"),
            FailReason::Busy => f.write_str("busy"),
            FailReason::NotPresent => f.write_str("not_present"),
            FailReason::NoMemory => f.write_str("no_memory"),
            FailReason::Permission => f.write_str("permission"),
            FailReason::NotMoved => f.write_str("not_moved"),
            FailReason::Gone => f.write_str("gone"),
            FailReason::Locked => f.write_str("locked"),
            FailReason::Errno(e) => write!(f, "errno_{e}"),
        }
    }
}

/// What an action did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionReport {
    /// the mechanism used (`swap_pages`, `process_madvise`, `move_pages`, `fake`)
    pub method: &'static str,
    /// pages asked for
    pub requested_pages: u64,
    /// bytes asked for
    pub requested_bytes: u64,
    /// pages the kernel accepted (for `swap_pages`: submitted; the module reports nothing
    /// per page)
    pub done_pages: u64,
    /// bytes of those
    pub done_bytes: u64,
    /// pages not done, by reason
    pub failed: BTreeMap<FailReason, u64>,
}

impl ActionReport {
    fn fail(&mut self, why: FailReason, n: u64) {
        if n > 0 {
            *self.failed.entry(why).or_default() += n;
        }
    }

    /// Total failed pages.
    pub fn failed_pages(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Adds the figures of `other` (a later call of the same action) to these.
    pub fn absorb(&mut self, other: ActionReport) {
        self.requested_pages += other.requested_pages;
        self.requested_bytes += other.requested_bytes;
        self.done_pages += other.done_pages;
        self.done_bytes += other.done_bytes;
        for (why, n) in other.failed {
            self.fail(why, n);
        }
    }
}

impl std::fmt::Display for ActionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: requested {} pages ({} bytes), done {} pages ({} bytes)",
            self.method,
            self.requested_pages,
            self.requested_bytes,
            self.done_pages,
            self.done_bytes
        )?;
        for (why, n) in &self.failed {
            write!(f, ", {why} {n}")?;
        }
        Ok(())
    }
}

/// Errors that stop an action as a whole (per-page failures are in the report).
#[derive(Debug, Error)]
pub enum PageActionError {
    /// The process exited or was replaced.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A proc file could not be opened or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// `open`, `write`, `read`
        op: &'static str,
        /// the file
        path: PathBuf,
        /// the error
        source: std::io::Error,
    },
    /// The target's VMAs could not be read.
    #[error("process {pid}: cannot read its VMAs: {reason}")]
    Vmas {
        /// the pid
        pid: u32,
        /// why
        reason: String,
    },
    /// A syscall failed as a whole.
    #[error("process {pid}: {call} failed: {source}")]
    Syscall {
        /// the pid
        pid: u32,
        /// `process_madvise`, `move_pages`
        call: &'static str,
        /// the errno
        source: std::io::Error,
    },
    /// The action needs the live kernel (a syscall) but the kernel is a proc/sys tree.
    #[error("{0} needs the live kernel, not a fake proc tree")]
    NotLive(&'static str),
    /// Swap-out was asked for a method this kernel lacks.
    #[error("swap method unavailable: {0}")]
    Unavailable(String),
    /// Swap cache reclaim was asked for on a kernel without etmem_swap's ioctls.
    #[error("swap cache reclaim unavailable: {0}")]
    SwapcacheUnavailable(String),
}

impl PageActionError {
    /// True when the process exited mid-action (log at debug).
    pub fn is_gone(&self) -> bool {
        matches!(self, PageActionError::Process(p) if p.is_gone())
    }
}

/// Validates `pages` against `vmas` and the byte `quota`, in order. Returns the pages to
/// act on and a report with the refusals already counted. With `refuse_locked` (a swap-out),
/// pages in a VM_LOCKED VMA are refused as [`FailReason::Locked`] without charging the
/// quota: the kernel would refuse them (EINVAL from MADV_PAGEOUT), and mlock is the
/// process saying they must stay in RAM. `vmas` must come from smaps for that (VmFlags).
pub fn plan(
    vmas: &[Vma],
    pages: &[PageRef],
    quota: u64,
    refuse_locked: bool,
) -> (Vec<PageRef>, ActionReport) {
    let mut sorted: Vec<&Vma> = vmas.iter().collect();
    sorted.sort_by_key(|v| v.start);
    let mut rep = ActionReport {
        requested_pages: pages.len() as u64,
        requested_bytes: pages.iter().map(|p| p.size).sum(),
        ..ActionReport::default()
    };
    let mut ok = Vec::with_capacity(pages.len());
    let mut used = 0u64;
    for p in pages {
        if !p.size.is_power_of_two() || p.size < 4096 || p.addr & (p.size - 1) != 0 {
            rep.fail(FailReason::Misaligned, 1);
            continue;
        }
        let i = sorted.partition_point(|v| v.start <= p.addr);
        let inside = i > 0 && sorted[i - 1].contains_range(p.addr, p.size);
        if !inside {
            rep.fail(FailReason::OutsideVma, 1);
            continue;
        }
        if refuse_locked && sorted[i - 1].is_locked() {
            rep.fail(FailReason::Locked, 1);
            continue;
        }
        match used.checked_add(p.size) {
            Some(u) if u <= quota => used = u,
            _ => {
                rep.fail(FailReason::OverQuota, 1);
                continue;
            }
        }
        ok.push(*p);
    }
    (ok, rep)
}

/// iovecs per `process_madvise` call.
pub const IOV_MAX: usize = 1024;
/// pages per `move_pages` call.
pub const MOVE_PAGES_BATCH: usize = 16384;
const MADV_PAGEOUT: i32 = 21;
const MPOL_MF_MOVE_ALL: i32 = 1 << 2;

/// `process_madvise(pidfd, iov, n, MADV_PAGEOUT, 0)` over `pages` (already planned).
pub(crate) fn pageout(
    p: &ProcessHandle,
    pages: &[PageRef],
    rep: &mut ActionReport,
) -> Result<(), PageActionError> {
    rep.method = "process_madvise";
    let Some(fd) = p.pidfd() else {
        return Err(PageActionError::NotLive("process_madvise"));
    };
    use std::os::fd::AsRawFd;
    // merge adjacent pages into ranges, remembering which pages each range holds
    let mut ranges: Vec<(u64, u64, usize, usize)> = Vec::new(); // start, len, first page, count
    for (i, pg) in pages.iter().enumerate() {
        match ranges.last_mut() {
            Some(r) if r.0 + r.1 == pg.addr => {
                r.1 += pg.size;
                r.3 += 1;
            }
            _ => ranges.push((pg.addr, pg.size, i, 1)),
        }
    }
    // The kernel advises iovecs in order and stops at the first it refuses, returning the
    // bytes advised so far (the error only when nothing was). So after a short count the
    // next call starts at the refused range, whose refusal then comes back with its errno,
    // and the ranges after it are still advised.
    let (mut i, mut skip) = (0usize, 0usize); // range, pages of it already accounted
    while i < ranges.len() {
        p.check()?;
        let end = (i + IOV_MAX).min(ranges.len());
        let (first_page, first_count) = (ranges[i].2, ranges[i].3);
        let skip_bytes: u64 = pages[first_page..first_page + skip]
            .iter()
            .map(|pg| pg.size)
            .sum();
        let iov: Vec<libc::iovec> = ranges[i..end]
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let off = if k == 0 { skip_bytes } else { 0 };
                libc::iovec {
                    iov_base: (r.0 + off) as *mut libc::c_void,
                    iov_len: (r.1 - off) as usize,
                }
            })
            .collect();
        // SAFETY: iov points at `iov.len()` valid iovec structs describing addresses in
        // the *target* process (never dereferenced here); pidfd is a live pidfd.
        let r = unsafe {
            libc::syscall(
                libc::SYS_process_madvise,
                fd.as_raw_fd(),
                iov.as_ptr(),
                iov.len(),
                MADV_PAGEOUT,
                0u32,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            let errno = e.raw_os_error().unwrap_or(0);
            if errno == libc::ESRCH {
                p.check()?;
            }
            if errno == libc::ENOSYS || errno == libc::EPERM {
                return Err(PageActionError::Syscall {
                    pid: p.pid(),
                    call: "process_madvise",
                    source: e,
                });
            }
            // nothing advised: the first (remaining) range was refused
            rep.fail(FailReason::from_errno(errno), (first_count - skip) as u64);
            (i, skip) = (i + 1, 0);
            continue;
        }
        let mut left = r as u64;
        let mut at = None;
        'ranges: for (k, rg) in ranges.iter().enumerate().take(end).skip(i) {
            let (fp, n) = (rg.2, rg.3);
            let from = if k == i { skip } else { 0 };
            for (s, pg) in pages[fp + from..fp + n].iter().enumerate() {
                if left < pg.size {
                    at = Some((k, from + s));
                    break 'ranges;
                }
                left -= pg.size;
                rep.done_pages += 1;
                rep.done_bytes += pg.size;
            }
        }
        match at {
            None => (i, skip) = (end, 0),
            // no progress at all (cannot happen unless the kernel counts oddly): give the
            // range up rather than loop
            Some(pos) if pos == (i, skip) => {
                rep.fail(FailReason::NotPresent, (first_count - skip) as u64);
                (i, skip) = (i + 1, 0);
            }
            Some(pos) => (i, skip) = pos,
        }
    }
    Ok(())
}

fn move_pages_raw(
    pid: u32,
    addrs: &[u64],
    nodes: Option<&[i32]>,
    status: &mut [i32],
) -> std::io::Result<()> {
    let ptrs: Vec<*mut libc::c_void> = addrs.iter().map(|a| *a as *mut libc::c_void).collect();
    let flags = if nodes.is_some() { MPOL_MF_MOVE_ALL } else { 0 };
    // SAFETY: `ptrs`, `nodes` and `status` each hold `addrs.len()` elements and live for
    // the call; the addresses are in the target process and are not dereferenced here.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_pages,
            pid as libc::pid_t,
            ptrs.len() as libc::c_ulong,
            ptrs.as_ptr(),
            nodes.map_or(std::ptr::null(), |n| n.as_ptr()),
            status.as_mut_ptr(),
            flags,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `move_pages(pid, ..., node, MPOL_MF_MOVE_ALL)` over `pages` (already planned).
pub(crate) fn migrate(
    p: &ProcessHandle,
    pages: &[PageRef],
    node: u32,
    rep: &mut ActionReport,
) -> Result<(), PageActionError> {
    rep.method = "move_pages";
    let target = i32::try_from(node).unwrap_or(i32::MAX);
    for batch in pages.chunks(MOVE_PAGES_BATCH) {
        p.check()?;
        let addrs: Vec<u64> = batch.iter().map(|p| p.addr).collect();
        let nodes = vec![target; addrs.len()];
        let mut status = vec![0i32; addrs.len()];
        if let Err(e) = move_pages_raw(p.pid(), &addrs, Some(&nodes), &mut status) {
            let errno = e.raw_os_error().unwrap_or(0);
            if errno == libc::ESRCH {
                p.check()?;
            }
            return Err(PageActionError::Syscall {
                pid: p.pid(),
                call: "move_pages",
                source: e,
            });
        }
        for (pg, st) in batch.iter().zip(&status) {
            if *st == target {
                rep.done_pages += 1;
                rep.done_bytes += pg.size;
            } else if *st >= 0 {
                rep.fail(FailReason::NotMoved, 1);
            } else {
                rep.fail(FailReason::from_errno(-*st), 1);
            }
        }
    }
    // the pid could have been reused during the last call: say so rather than claim it
    p.check()?;
    Ok(())
}

/// Where a page is: its node, or the reason it has none.
pub type PageNode = Result<u32, FailReason>;

/// `move_pages(pid, n, pages, NULL, status, 0)`: the node of each page.
pub(crate) fn query_nodes(
    p: &ProcessHandle,
    addrs: &[u64],
) -> Result<Vec<PageNode>, PageActionError> {
    let mut out = Vec::with_capacity(addrs.len());
    for batch in addrs.chunks(MOVE_PAGES_BATCH) {
        p.check()?;
        let mut status = vec![0i32; batch.len()];
        move_pages_raw(p.pid(), batch, None, &mut status).map_err(|source| {
            PageActionError::Syscall {
                pid: p.pid(),
                call: "move_pages",
                source,
            }
        })?;
        out.extend(status.iter().map(|s| {
            if *s >= 0 {
                Ok(*s as u32)
            } else {
                Err(FailReason::from_errno(-*s))
            }
        }));
    }
    p.check()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Live kernel (any Linux ≥ 5.10, root): a refused range in the middle of a batch
    /// (`[vvar]`: EINVAL) fails alone, and the ranges after it are still advised. Nothing
    /// is swapped here (no swap on the dev machines: MADV_PAGEOUT only drops references).
    #[test]
    fn pageout_goes_on_after_a_refused_range() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let k = crate::LinuxKernel::default();
        let h = crate::Kernel::open_process(&k, pid).expect("open");
        // the child may still be exec-ing `sleep`: wait for its own maps
        let mut found = (None, None);
        for _ in 0..200 {
            let maps = std::fs::read(format!("/proc/{pid}/maps")).expect("maps");
            let vmas = crate::parse::maps::parse_maps(&maps).expect("parse");
            let find = |name: &str| {
                vmas.iter()
                    .find(|v| v.path == name)
                    .map(|v| (v.start, v.end))
            };
            found = (find("[stack]"), find("[vvar]"));
            if found.0.is_some()
                && found.1.is_some()
                && vmas.iter().any(|v| v.path.ends_with("sleep"))
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let (Some(stack), Some(vvar)) = found else {
            let _ = child.kill();
            panic!("no [stack] or [vvar] in the maps of pid {pid}");
        };
        let pg = |addr| PageRef { addr, size: 4096 };
        let pages = [pg(stack.1 - 3 * 4096), pg(vvar.0), pg(stack.1 - 4096)];
        let mut rep = ActionReport::default();
        let r = pageout(&h, &pages, &mut rep);
        let _ = child.kill();
        let _ = child.wait();
        r.expect("pageout");
        assert_eq!(rep.done_pages, 2, "{rep:?}");
        assert_eq!(
            rep.failed.get(&FailReason::Errno(libc::EINVAL)),
            Some(&1),
            "{rep:?}"
        );
    }

    fn vma(start: u64, end: u64) -> Vma {
        Vma {
            start,
            end,
            ..Vma::default()
        }
    }

    #[test]
    fn plan_refuses_outside_misaligned_and_over_quota() {
        let vmas = [vma(0x10000, 0x20000), vma(0x400000, 0x800000)];
        let pages = [
            PageRef {
                addr: 0x10000,
                size: 4096,
            },
            PageRef {
                addr: 0x1f000,
                size: 4096,
            },
            PageRef {
                addr: 0x20000,
                size: 4096,
            }, // just past the end
            PageRef {
                addr: 0x10800,
                size: 4096,
            }, // misaligned
            PageRef {
                addr: 0x400000,
                size: 2 << 20,
            }, // huge, inside
            PageRef {
                addr: 0x1f000,
                size: 8192,
            }, // not aligned to its size
            PageRef {
                addr: 0x600000,
                size: 2 << 20,
            }, // over quota
            PageRef {
                addr: 0x11000,
                size: 3000,
            }, // bad size
        ];
        let (ok, rep) = plan(&vmas, &pages, 2 * 4096 + (2 << 20), true);
        assert_eq!(ok, vec![pages[0], pages[1], pages[4]]);
        assert_eq!(rep.requested_pages, 8);
        assert_eq!(rep.failed.get(&FailReason::OutsideVma), Some(&1));
        assert_eq!(rep.failed.get(&FailReason::Misaligned), Some(&3));
        assert_eq!(rep.failed.get(&FailReason::OverQuota), Some(&1));
        assert_eq!(rep.failed_pages() + ok.len() as u64, rep.requested_pages);
        // a huge page that starts inside but ends past the VMA is outside
        let (ok, rep) = plan(
            &[vma(0x400000, 0x500000)],
            &[PageRef {
                addr: 0x400000,
                size: 2 << 20,
            }],
            u64::MAX,
            false,
        );
        assert!(ok.is_empty());
        assert_eq!(rep.failed.get(&FailReason::OutsideVma), Some(&1));
    }

    #[test]
    fn plan_refuses_locked_pages_for_a_swap_only_and_charges_no_quota() {
        let mut locked = vma(0x10000, 0x20000);
        locked.vm_flags = Some(vec!["rd".into(), "wr".into(), "lo".into()]);
        let mut open = vma(0x30000, 0x40000);
        open.vm_flags = Some(vec!["rd".into(), "wr".into()]);
        let pg = |addr| PageRef { addr, size: 4096 };
        let pages = [pg(0x10000), pg(0x11000), pg(0x30000), pg(0x31000)];
        // swap: the two locked pages refused, the quota (two pages) left to the others
        let (ok, rep) = plan(&[locked.clone(), open.clone()], &pages, 2 * 4096, true);
        assert_eq!(ok, vec![pages[2], pages[3]]);
        assert_eq!(rep.failed.get(&FailReason::Locked), Some(&2));
        assert_eq!(FailReason::Locked.to_string(), "locked");
        // migration: mlock does not pin a page to its node
        let (ok, rep) = plan(&[locked, open], &pages, u64::MAX, false);
        assert_eq!(ok, pages.to_vec());
        assert_eq!(rep.failed_pages(), 0);
    }

    #[test]
    fn report_display() {
        let mut r = ActionReport {
            method: "move_pages",
            requested_pages: 3,
            requested_bytes: 12288,
            done_pages: 2,
            done_bytes: 8192,
            ..Default::default()
        };
        r.fail(FailReason::Busy, 1);
        assert_eq!(
            r.to_string(),
            "move_pages: requested 3 pages (12288 bytes), done 2 pages (8192 bytes), busy 1"
        );
    }
}
