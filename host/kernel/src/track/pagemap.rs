//! Presence and soft-dirty bits of the tracked pages, for the DAMON and soft-dirty trackers.
//!
//! Linux 6.7+ answers the `PAGEMAP_SCAN` ioctl on `/proc/PID/pagemap` with runs of pages
//! whose bits agree (`struct page_region`: start, end, categories), so a pass over mostly
//! uniform memory costs a page-table walk and a few dozen records instead of 8 bytes per
//! page copied out and decoded. Older kernels answer ENOTTY; then the pagemap file is read
//! as before ([`PagemapMethod::Read`]). Both give the same bits: a page is present when its
//! entry is (`PAGE_IS_PRESENT` = pagemap bit 63) and soft-dirty when its PTE or its VMA is
//! (`PAGE_IS_SOFT_DIRTY` = bit 55); a page the kernel does not report is not present.
//! Not quite the same on hugetlb: clear_refs never clears a huge page's soft-dirty bit, so
//! PAGEMAP_SCAN would call a huge page written once soft-dirty for good; hugetlb ranges are
//! therefore never soft-dirty here, by either method.

use super::{PAGEMAP_CHUNK, TrackError, io_err, read_pagemap};
use crate::access::AccessMap;
use crate::parse::pagemap::decode_pagemap;
use std::os::fd::AsRawFd;
use std::path::Path;

/// What pagemap says of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageBits {
    /// in memory (not swapped, not never-touched)
    pub present: bool,
    /// written since the last `clear_refs` 4 (or its VMA is new since then)
    pub soft_dirty: bool,
}

/// How the bits are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagemapMethod {
    /// `PAGEMAP_SCAN` (runs of pages); asked for, it falls back to `Read` on kernels without it
    Scan,
    /// `pread` of 8 bytes per page
    Read,
}

impl std::fmt::Display for PagemapMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PagemapMethod::Scan => "pagemap_scan",
            PagemapMethod::Read => "pagemap_read",
        })
    }
}

/// What a tracker logs once when the kernel turns out to have no `PAGEMAP_SCAN`.
pub(crate) const NO_PAGEMAP_SCAN: &str =
    "this kernel has no PAGEMAP_SCAN ioctl (6.7+): pagemap is read, 8 bytes per page, each pass";

// include/uapi/linux/fs.h
const PAGE_IS_PRESENT: u64 = 1 << 3;
const PAGE_IS_SOFT_DIRTY: u64 = 1 << 7;

/// `struct pm_scan_arg`
#[repr(C)]
#[derive(Debug, Default)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// `_IOWR('f', 16, struct pm_scan_arg)`
const PAGEMAP_SCAN: u64 =
    (3 << 30) | ((std::mem::size_of::<PmScanArg>() as u64) << 16) | ((b'f' as u64) << 8) | 16;

/// Records per ioctl; a walk that fills them continues from where it stopped.
const REGIONS_PER_CALL: usize = 512;

/// One `PAGEMAP_SCAN` call over `[start, end)` into `out` (cleared first): the address the
/// walk stopped at, or `None` if the kernel has no `PAGEMAP_SCAN` (ENOTTY).
fn scan_once(
    f: &std::fs::File,
    path: &Path,
    start: u64,
    end: u64,
    out: &mut Vec<PageRegion>,
) -> Result<Option<u64>, TrackError> {
    out.clear();
    out.resize(REGIONS_PER_CALL, PageRegion::default());
    let mut arg = PmScanArg {
        size: std::mem::size_of::<PmScanArg>() as u64,
        start,
        end,
        vec: out.as_mut_ptr() as u64,
        vec_len: out.len() as u64,
        return_mask: PAGE_IS_PRESENT | PAGE_IS_SOFT_DIRTY,
        ..PmScanArg::default()
    };
    // SAFETY: `arg` is a valid, initialised pm_scan_arg of the size it declares, alive for
    // the call; `vec` points to `vec_len` writable page_region records owned by `out`,
    // which is not touched until the call returns. The ioctl only reads page tables.
    let r = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            PAGEMAP_SCAN as libc::Ioctl,
            &mut arg as *mut PmScanArg,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ENOTTY) {
            return Ok(None);
        }
        return Err(io_err("ioctl PAGEMAP_SCAN", path)(e));
    }
    out.truncate(usize::try_from(r).unwrap_or(0).min(REGIONS_PER_CALL));
    Ok(Some(arg.walk_end))
}

/// Calls `visit` with runs of slots of `map` (one per base page) and their bits, covering
/// every slot once, in address order; hugetlb ranges never have `soft_dirty`. With
/// [`PagemapMethod::Scan`] it uses `PAGEMAP_SCAN` where the kernel has it; returns the
/// method used.
pub(crate) fn for_each_page_run(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    map: &mut AccessMap,
    method: PagemapMethod,
    mut visit: impl FnMut(&mut [u8], PageBits),
) -> Result<PagemapMethod, TrackError> {
    let mut regions = Vec::new();
    let mut used = method;
    for i in 0..map.nr_ranges() {
        // clear_refs never clears a hugetlb page's soft-dirty bit: PAGEMAP_SCAN reports it
        // set for good once written (the read, from the VMA's flag, until the first clear),
        // so on hugetlb it says nothing about this pass and is dropped
        let hugetlb = map.is_hugetlb(i);
        let mut visit = |run: &mut [u8], b: PageBits| {
            visit(
                run,
                PageBits {
                    soft_dirty: b.soft_dirty && !hugetlb,
                    ..b
                },
            )
        };
        let Some((start, slots)) = map.slots_mut(i) else {
            continue;
        };
        if used == PagemapMethod::Scan
            && !scan_range(f, path, page_size, start, slots, &mut regions, &mut visit)?
        {
            used = PagemapMethod::Read;
        }
        if used == PagemapMethod::Read {
            read_range(f, path, page_size, start, slots, &mut visit)?;
        }
    }
    Ok(used)
}

/// `PAGEMAP_SCAN` over the slots of one range starting at `start`; false if the kernel has
/// no `PAGEMAP_SCAN` (nothing visited then).
fn scan_range(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    start: u64,
    slots: &mut [u8],
    regions: &mut Vec<PageRegion>,
    visit: &mut impl FnMut(&mut [u8], PageBits),
) -> Result<bool, TrackError> {
    let end = start.saturating_add(slots.len() as u64 * page_size);
    let n = slots.len();
    let index = |a: u64| {
        usize::try_from((a.clamp(start, end) - start) / page_size)
            .unwrap_or(n)
            .min(n)
    };
    let mut at = start;
    // first slot not visited yet
    let mut done = 0usize;
    while at < end {
        let Some(walk_end) = scan_once(f, path, at, end, regions)? else {
            return Ok(false);
        };
        for r in regions.iter() {
            let (lo, hi) = (index(r.start).max(done), index(r.end));
            if lo >= hi {
                continue;
            }
            // pages the kernel did not report (no VMA any more, VM_PFNMAP) are not present
            if done < lo {
                visit(&mut slots[done..lo], PageBits::default());
            }
            let bits = PageBits {
                present: r.categories & PAGE_IS_PRESENT != 0,
                soft_dirty: r.categories & PAGE_IS_SOFT_DIRTY != 0,
            };
            visit(&mut slots[lo..hi], bits);
            done = hi;
        }
        if walk_end <= at {
            // no progress (a kernel that stops early): read the rest rather than loop
            let rest = start + done as u64 * page_size;
            read_range(f, path, page_size, rest, &mut slots[done..], visit)?;
            return Ok(true);
        }
        at = walk_end;
    }
    if done < slots.len() {
        visit(&mut slots[done..], PageBits::default());
    }
    Ok(true)
}

/// pagemap read over the slots of one range, 64 Ki entries per `pread`; slots past a short
/// read (the pages are not mapped any more) are left alone.
fn read_range(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    start: u64,
    slots: &mut [u8],
    visit: &mut impl FnMut(&mut [u8], PageBits),
) -> Result<(), TrackError> {
    let mut buf = Vec::new();
    for (c, chunk) in slots.chunks_mut(PAGEMAP_CHUNK).enumerate() {
        let at = start + (c * PAGEMAP_CHUNK) as u64 * page_size;
        read_pagemap(f, path, at, page_size, chunk.len(), &mut buf)?;
        for (k, e) in decode_pagemap(&buf).enumerate() {
            let bits = PageBits {
                present: e.present(),
                soft_dirty: e.soft_dirty(),
            };
            visit(&mut chunk[k..k + 1], bits);
        }
    }
    Ok(())
}

/// Whether this kernel answers `PAGEMAP_SCAN`, asked on our own pagemap over an empty
/// range (reads nothing, changes nothing).
pub(crate) fn scan_availability(proc_root: &Path) -> Result<(), String> {
    let path = proc_root.join("self/pagemap");
    let f =
        std::fs::File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut out = Vec::new();
    match scan_once(&f, &path, 0, 0, &mut out) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(NO_PAGEMAP_SCAN.into()),
        Err(e) => Err(format!("PAGEMAP_SCAN failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{PageBits, PagemapMethod, for_each_page_run, scan_availability};
    use crate::access::{AccessMap, map_over};

    const PAGE: u64 = 4096;

    /// The bits of every slot of `map` by `method`, and the method used.
    fn bits_of(
        f: &std::fs::File,
        path: &std::path::Path,
        map: &mut AccessMap,
        method: PagemapMethod,
    ) -> (Vec<PageBits>, PagemapMethod) {
        let mut all = Vec::new();
        let used = for_each_page_run(f, path, PAGE, map, method, |run, b| {
            all.extend(std::iter::repeat_n(b, run.len()));
        })
        .expect("pagemap pass");
        (all, used)
    }

    /// `pages` pages of anonymous memory of our own, page-aligned at the returned address,
    /// the pages `written` picks written and the others never touched.
    fn own_memory(pages: usize, written: impl Fn(usize) -> bool) -> (Vec<u8>, u64) {
        let len = pages * PAGE as usize;
        let mut mem = vec![0u8; len + PAGE as usize];
        let base = (mem.as_ptr() as u64).next_multiple_of(PAGE);
        let off = (base - mem.as_ptr() as u64) as usize;
        // SAFETY: the range lies inside `mem`, which we own; MADV_DONTNEED on private
        // anonymous memory only makes its pages read back as zeros, which they are.
        let r =
            unsafe { rustix::mm::madvise(base as *mut _, len, rustix::mm::Advice::LinuxDontNeed) };
        assert_eq!(r, Ok(()), "madvise");
        for p in (0..pages).filter(|&p| written(p)) {
            mem[off + p * PAGE as usize] = 1;
        }
        (mem, base)
    }

    /// Both methods over `ranges` of our own memory: they must agree, and `Scan` must be
    /// used where the kernel has it. The bits, in slot order.
    fn both_agree(ranges: &[(u64, u64)]) -> Vec<PageBits> {
        let path = std::path::Path::new("/proc/self/pagemap");
        let f = std::fs::File::open(path).expect("open /proc/self/pagemap");
        let (scan, used) = bits_of(&f, path, &mut map_over(ranges), PagemapMethod::Scan);
        let (read, read_used) = bits_of(&f, path, &mut map_over(ranges), PagemapMethod::Read);
        assert_eq!(read_used, PagemapMethod::Read);
        let has_scan = scan_availability(std::path::Path::new("/proc")).is_ok();
        assert_eq!(
            used,
            if has_scan {
                PagemapMethod::Scan
            } else {
                PagemapMethod::Read
            }
        );
        let slots: u64 = ranges.iter().map(|(s, e)| (e - s) / PAGE).sum();
        assert_eq!(scan.len() as u64, slots, "every slot visited once");
        assert_eq!(scan, read, "PAGEMAP_SCAN and the read give the same bits");
        scan
    }

    fn present(bits: &[PageBits]) -> Vec<usize> {
        bits.iter()
            .enumerate()
            .filter(|(_, b)| b.present)
            .map(|(i, _)| i)
            .collect()
    }

    // The two tests below need the live kernel's /proc/self/pagemap (any kernel: PAGEMAP_SCAN
    // is compared with the read where the kernel has it, 6.7+, as the build machine's and the
    // lab's do; elsewhere both read).

    #[test]
    fn scan_and_read_agree_on_our_own_memory() {
        let (mem, base) = own_memory(64, |p| p < 10 || (20..30).contains(&p));
        // two ranges with a gap between them, as two VMAs would be
        let bits = both_agree(&[
            (base, base + 40 * PAGE),
            (base + 48 * PAGE, base + 64 * PAGE),
        ]);
        let want: Vec<usize> = (0..10).chain(20..30).collect();
        assert_eq!(
            present(&bits),
            want,
            "the written pages and only those are present"
        );
        std::hint::black_box(&mem);
    }

    #[test]
    fn runs_beyond_one_calls_records_continue_where_the_walk_stopped() {
        // every other page written: one run per page, 2.5 calls' worth of records
        let pages = 5 * super::REGIONS_PER_CALL / 2;
        let (mem, base) = own_memory(pages, |p| p % 2 == 0);
        let bits = both_agree(&[(base, base + pages as u64 * PAGE)]);
        let want: Vec<usize> = (0..pages).step_by(2).collect();
        assert_eq!(present(&bits), want);
        std::hint::black_box(&mem);
    }

    #[test]
    fn a_file_that_is_not_pagemap_is_read() {
        // the fake kernel's pagemap is a regular file: the ioctl answers ENOTTY
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pagemap");
        let mut bytes = Vec::new();
        for i in 0..8u64 {
            let e: u64 = if i % 2 == 0 { (1 << 63) | (1 << 55) } else { 0 };
            bytes.extend_from_slice(&e.to_le_bytes());
        }
        std::fs::write(&path, &bytes).expect("write");
        let f = std::fs::File::open(&path).expect("open");
        let (bits, used) = bits_of(
            &f,
            &path,
            &mut map_over(&[(0, 8 * PAGE)]),
            PagemapMethod::Scan,
        );
        assert_eq!(used, PagemapMethod::Read);
        let on = PageBits {
            present: true,
            soft_dirty: true,
        };
        let off = PageBits::default();
        assert_eq!(bits, [on, off, on, off, on, off, on, off]);
    }

    #[test]
    fn hugetlb_pages_are_never_soft_dirty() {
        // one 2 MiB hugetlb VMA whose every entry says present and soft-dirty
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pagemap");
        let huge: u64 = 2 << 20;
        let n = huge / PAGE;
        let e: u64 = (1 << 63) | (1 << 55);
        let bytes: Vec<u8> = (0..n).flat_map(|_| e.to_le_bytes()).collect();
        std::fs::write(&path, &bytes).expect("write");
        let f = std::fs::File::open(&path).expect("open");
        let vma = crate::parse::maps::Vma {
            start: 0,
            end: huge,
            kernel_page_kb: Some(2048),
            ..crate::parse::maps::Vma::default()
        };
        let mut map = AccessMap::new(&[vma], crate::parse::idle_pages::PageSizes::X86_64);
        assert!(map.is_hugetlb(0));
        let (bits, _) = bits_of(&f, &path, &mut map, PagemapMethod::Scan);
        assert_eq!(bits.len() as u64, n);
        let want = PageBits {
            present: true,
            soft_dirty: false,
        };
        assert!(bits.iter().all(|b| *b == want), "present, never soft-dirty");
    }
}
