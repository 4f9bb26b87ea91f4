//! The openEuler `idle_pages` tracker (spec §6.1): a fresh read-only open per pass,
//! `pread` at the VA with C etmem's byte count, the scan-flag ioctls only when the flags
//! are non-zero, and reads repeated until each VMA's end (B20 fixed). Never writes.

use super::{ScanFlags, TrackError, Tracker, TrackerKind, io_err};
use crate::access::AccessMap;
use crate::linux::LinuxKernel;
use crate::parse::idle_pages::{PageSizes, decode_idle_pages, read_count};
use crate::process::ProcessHandle;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// `IDLE_SCAN_ADD_FLAGS` = `_IOW(0x66, 0, u32)` (asm-generic encoding).
pub const IDLE_SCAN_ADD_FLAGS: u64 = 0x4004_6600;
/// `VMA_SCAN_ADD_FLAGS` = `_IOW(0x66, 2, u32)`.
pub const VMA_SCAN_ADD_FLAGS: u64 = 0x4004_6602;
/// `SCAN_AS_HUGE` (for `IDLE_SCAN_ADD_FLAGS`): report a huge page as one huge page.
pub const SCAN_AS_HUGE: u32 = 0x0100_0000;
/// `SCAN_IGN_HOST` (for `IDLE_SCAN_ADD_FLAGS`): leave the host-side page tables of a KVM
/// guest's memory out (report them idle), so that only the guest's accesses count.
pub const SCAN_IGN_HOST: u32 = 0x0200_0000;
/// `VMA_SCAN_FLAG` (for `VMA_SCAN_ADD_FLAGS`): scan only VMAs marked `VM_SWAPFLAG` by the
/// process (`madvise(MADV_SWAPFLAG)`, openEuler only).
pub const VMA_SCAN_FLAG: u32 = 0x1000;

/// Reads `/proc/PID/idle_pages`.
#[derive(Debug)]
pub struct IdlePagesTracker {
    sizes: PageSizes,
    scan_flags: u32,
    vma_flags: u32,
    started: bool,
}

impl IdlePagesTracker {
    /// A tracker sending `scan_flags` with `IDLE_SCAN_ADD_FLAGS` and `vma_flags` with
    /// `VMA_SCAN_ADD_FLAGS` on each fresh open (each only when non-zero).
    pub fn new(k: &LinuxKernel, scan_flags: u32, vma_flags: u32) -> Self {
        IdlePagesTracker {
            sizes: k.page_sizes(),
            scan_flags,
            vma_flags,
            started: false,
        }
    }
}

fn ioctl_u32(f: &std::fs::File, req: u64, val: u32) -> std::io::Result<()> {
    let v = val;
    // SAFETY: the request takes a pointer to a u32 that lives for the call; the fd is
    // open. The request number is cast to the platform's ioctl request type.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req as _, &v as *const u32) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Tracker for IdlePagesTracker {
    fn kind(&self) -> TrackerKind {
        TrackerKind::IdlePages
    }

    fn start(&mut self, p: &ProcessHandle, _map: &AccessMap) -> Result<(), TrackError> {
        p.check()?;
        self.started = true;
        Ok(())
    }

    /// Sent with the ioctls on each pass's fresh open (each only when non-zero).
    fn set_scan_flags(&mut self, flags: ScanFlags) -> Result<(), TrackError> {
        self.scan_flags = flags.scan;
        self.vma_flags = flags.vma;
        Ok(())
    }

    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        if !self.started {
            return Err(TrackError::NotStarted(self.kind()));
        }
        let path = p.path("idle_pages");
        // Scan flags stick to the open file description: open afresh every pass.
        let f = std::fs::File::open(&path).map_err(io_err("open", &path))?;
        p.check()?;
        if self.scan_flags != 0 {
            ioctl_u32(&f, IDLE_SCAN_ADD_FLAGS, self.scan_flags).map_err(io_err("ioctl", &path))?;
        }
        if self.vma_flags != 0 {
            ioctl_u32(&f, VMA_SCAN_ADD_FLAGS, self.vma_flags).map_err(io_err("ioctl", &path))?;
        }
        let ranges: Vec<(u64, u64)> = map.ranges().collect();
        let sizes = self.sizes;
        let mut last = 0u64;
        let mut buf = Vec::new();
        for (start, end) in ranges {
            // a previous read may have run past this VMA already (C's get_page_refs)
            let mut addr = start.max(last);
            while addr < end {
                buf.resize(read_count(addr, end, sizes.pte), 0);
                let n = match f.read_at(&mut buf, addr) {
                    Ok(n) => n,
                    Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                        p.check()?;
                        return Err(io_err("read", &path)(e));
                    }
                    Err(e) => return Err(io_err("read", &path)(e)),
                };
                if n == 0 {
                    break;
                }
                let sum = decode_idle_pages(&buf[..n], sizes, |run| {
                    map.record_run(run.addr, run.page_size, run.nr_pages, run.kind.weight())
                })
                .map_err(|source| TrackError::Decode {
                    path: path.clone(),
                    source,
                })?;
                match sum.next_addr {
                    Some(next) if next > addr => {
                        addr = next;
                        last = next;
                    }
                    _ => break,
                }
            }
        }
        map.finish_pass();
        Ok(())
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        self.started = false;
        Ok(())
    }
}
