//! The openEuler etmem_swap module's interface, `/proc/PID/swap_pages`: swap-out by
//! writing whole `0x%lx\n` lines (spec §5.2 step 4) and the swap cache watermark ioctls
//! (step 5). Only reached on kernels that have the file; the callers decide that.
//!
//! It must not plan: the pages come validated by [`super::plan`].

use super::{ActionReport, PageActionError, PageRef};
use crate::process::ProcessHandle;
use std::path::PathBuf;

/// The swap cache watermarks of the openEuler etmem_swap module, in percent of RAM: when
/// the swap cache is above `high`, the module's reclaim brings it down toward `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapcacheWmark {
    low: u8,
    high: u8,
}

impl SwapcacheWmark {
    /// `1 <= low < high <= 100` (the config's rule; the module itself refuses only
    /// `high > 100` or `low > high`); the error names both values.
    pub fn new(low: u8, high: u8) -> Result<Self, String> {
        if low >= 1 && low < high && high <= 100 {
            Ok(SwapcacheWmark { low, high })
        } else {
            Err(format!(
                "swap cache watermarks low {low} and high {high}: expected 1 <= low < high <= 100"
            ))
        }
    }

    /// The low watermark.
    pub fn low(&self) -> u8 {
        self.low
    }

    /// The high watermark.
    pub fn high(&self) -> u8 {
        self.high
    }

    /// The `SET_SWAPCACHE_WMARK` argument: low in bits 0-7, high in bits 8-15.
    pub fn ioctl_arg(&self) -> u32 {
        u32::from(self.low) | (u32::from(self.high) << 8)
    }
}

/// The `swap_pages` lines for `pages` in batches of at most `lines` whole lines; each
/// batch is written with one `write(2)` (B9: a line is never split across writes).
pub fn swap_pages_batches(pages: &[PageRef], lines: usize) -> Vec<(String, usize)> {
    pages
        .chunks(lines.max(1))
        .map(|c| {
            let mut s = String::with_capacity(c.len() * 19);
            for p in c {
                s.push_str(&format!("{:#x}\n", p.addr));
            }
            (s, c.len())
        })
        .collect()
}

/// Lines per `swap_pages` write (C etmem's batch of 200; at most 3800 bytes).
pub const SWAP_PAGES_LINES: usize = 200;
/// etmem_swap's `SET_SWAPCACHE_WMARK` = `_IOW(0x77, 2, u32)`: the argument, by value, is
/// [`SwapcacheWmark::ioctl_arg`].
pub const SET_SWAPCACHE_WMARK: u32 = 0x4004_7702;
/// etmem_swap's `RECLAIM_SWAPCACHE_ON` = `_IOW(0x77, 1, u32)`: wakes the module's swap
/// cache reclaim; the argument is ignored (0).
pub const RECLAIM_SWAPCACHE_ON: u32 = 0x4004_7701;
/// Sets etmem_swap's swap cache watermarks and wakes its reclaim: `SET_SWAPCACHE_WMARK`
/// then `RECLAIM_SWAPCACHE_ON`, both on `/proc/PID/swap_pages` (as C etmem does; the
/// watermarks are the module's, for the whole machine, so setting them again is harmless).
pub(crate) fn reclaim_swapcache(
    p: &ProcessHandle,
    wmark: SwapcacheWmark,
) -> Result<(), PageActionError> {
    use std::os::fd::AsRawFd;
    let (f, _) = open_swap_pages(p)?;
    for (call, req, arg) in [
        (
            "ioctl SET_SWAPCACHE_WMARK",
            SET_SWAPCACHE_WMARK,
            wmark.ioctl_arg(),
        ),
        ("ioctl RECLAIM_SWAPCACHE_ON", RECLAIM_SWAPCACHE_ON, 0),
    ] {
        // SAFETY: `f` is open for the whole call; both requests take their argument by
        // value (an unsigned long), so no pointer is passed and nothing of ours is read or
        // written by the kernel.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), req as libc::Ioctl, libc::c_ulong::from(arg)) };
        if r < 0 {
            return Err(PageActionError::Syscall {
                pid: p.pid(),
                call,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Opens `p`'s `/proc/PID/swap_pages` for writing, then checks that `p` is still the
/// process it was (the open could have landed on a reused pid).
fn open_swap_pages(p: &ProcessHandle) -> Result<(std::fs::File, PathBuf), PageActionError> {
    let path = p.path("swap_pages");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| PageActionError::Io {
            op: "open",
            path: path.clone(),
            source,
        })?;
    p.check()?;
    Ok((f, path))
}

/// Writes `pages` to `/proc/PID/swap_pages` (already planned).
pub(crate) fn swap_pages(
    p: &ProcessHandle,
    pages: &[PageRef],
    rep: &mut ActionReport,
) -> Result<(), PageActionError> {
    use std::io::Write;
    rep.method = "swap_pages";
    let (mut f, path) = open_swap_pages(p)?;
    let mut sent = 0usize;
    for (batch, n) in swap_pages_batches(pages, SWAP_PAGES_LINES) {
        let w = f
            .write(batch.as_bytes())
            .map_err(|source| PageActionError::Io {
                op: "write",
                path: path.clone(),
                source,
            })?;
        if w != batch.len() {
            return Err(PageActionError::Io {
                op: "write",
                path,
                source: std::io::Error::other(format!("short write: {w} of {} bytes", batch.len())),
            });
        }
        for pg in &pages[sent..sent + n] {
            rep.done_pages += 1;
            rep.done_bytes += pg.size;
        }
        sent += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swapcache_wmark_range_and_ioctl_encoding() {
        let w = SwapcacheWmark::new(10, 30).expect("valid");
        assert_eq!((w.low(), w.high(), w.ioctl_arg()), (10, 30, 0x1e0a));
        assert_eq!(
            SwapcacheWmark::new(1, 100).expect("valid").ioctl_arg(),
            0x6401
        );
        for (low, high) in [(30, 30), (31, 30), (0, 30), (10, 101)] {
            let e = SwapcacheWmark::new(low, high).expect_err("invalid");
            assert!(e.contains(&format!("low {low} and high {high}")), "{e}");
        }
        // _IOW(type 0x77, nr, u32): direction write (1) in bits 30-31, size 4 in 16-29
        let iow = |nr: u32| (1u32 << 30) | (4 << 16) | (0x77 << 8) | nr;
        assert_eq!(SET_SWAPCACHE_WMARK, iow(2));
        assert_eq!(RECLAIM_SWAPCACHE_ON, iow(1));
    }

    #[test]
    fn swap_pages_lines_are_whole_per_batch() {
        let pages: Vec<PageRef> = (0..450u64)
            .map(|i| PageRef {
                addr: 0x7fff_ffff_f000 - i * 4096,
                size: 4096,
            })
            .collect();
        let b = swap_pages_batches(&pages, SWAP_PAGES_LINES);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].1, 200);
        assert_eq!(b[2].1, 50);
        let mut all = Vec::new();
        for (s, n) in &b {
            assert!(s.ends_with('\n'));
            assert_eq!(s.lines().count(), *n);
            assert!(s.len() <= 3800, "{}", s.len());
            all.extend(
                s.lines()
                    .map(|l| u64::from_str_radix(l.trim_start_matches("0x"), 16).expect("hex")),
            );
        }
        assert_eq!(all, pages.iter().map(|p| p.addr).collect::<Vec<_>>());
        assert!(b[0].0.starts_with("0x7ffffffff000\n"));
    }
}
