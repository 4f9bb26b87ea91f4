//! The workload's memory: one reservation holding the hot, warm and cold regions in that
//! order, each its own mapping with a PROT_NONE guard page between them (so each region is
//! its own VMA in /proc/PID/maps), optionally hugetlb pages and optionally bound to a node.
//!
//! In mixed mode ([`Memory::map_mixed`]) the reservation holds ONE mapping of base pages
//! between two PROT_NONE guard pages (so it is one VMA that never merges with a
//! neighbour), and the regions are the runs of hot, cooled and cold pages inside it.
//!
//! This module maps, binds and touches memory of this process only; it never looks at
//! other processes.

use std::io;
use std::ptr;

use thiserror::Error;

use crate::layout::{Access, Class, RegionLayout};
use crate::size::round_up;

/// Size of a hugetlb page we ask for (MAP_HUGE_2MB).
pub const HUGE_PAGE: u64 = 2 << 20;

const MPOL_DEFAULT: libc::c_int = 0;
const MPOL_BIND: libc::c_int = 2;
/// Nodes we can name in a mask: 16 words of 64 bits.
const MASK_WORDS: usize = 16;

/// Why the workload's memory could not be set up.
#[derive(Debug, Error)]
pub enum MemError {
    /// A size was too large once rounded to the page size.
    #[error("{class} region: size {bytes} bytes is too large")]
    TooLarge {
        /// Region class name.
        class: &'static str,
        /// Requested bytes.
        bytes: u64,
    },
    /// A mixed-mode run is not a whole number of pages.
    #[error("{class} run of {bytes} bytes: expected a multiple of the page size {page}")]
    Unaligned {
        /// Run class name.
        class: &'static str,
        /// Its length.
        bytes: u64,
        /// The page size.
        page: u64,
    },
    /// The address-space reservation failed.
    #[error("reserving {len} bytes of address space: {cause}")]
    Reserve {
        /// Bytes asked for.
        len: u64,
        /// The OS error.
        cause: io::Error,
    },
    /// Mapping one region failed.
    #[error("mapping the {class} region ({len} bytes{huge}): {cause}")]
    Map {
        /// Region class name.
        class: &'static str,
        /// Bytes asked for.
        len: u64,
        /// A hugetlb hint, or "".
        huge: &'static str,
        /// The OS error.
        cause: io::Error,
    },
    /// The node number cannot be put in our node mask.
    #[error("node {0}: expected 0..{max}", max = MASK_WORDS * 64)]
    NodeOutOfRange(u32),
    /// set_mempolicy or mbind failed.
    #[error("binding {what} to node {node}: {cause}")]
    Bind {
        /// "the process" or "the hot region", ...
        what: String,
        /// The node.
        node: u32,
        /// The OS error.
        cause: io::Error,
    },
}

/// One mapped region.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    /// Hot, warm, cooled or cold.
    pub class: Class,
    /// First byte.
    pub start: usize,
    /// Length in bytes (a multiple of the page size).
    pub len: usize,
}

/// All regions of the workload; unmapped on drop.
#[derive(Debug)]
pub struct Memory {
    base: usize,
    total: usize,
    page: usize,
    regions: Vec<Region>,
}

fn node_mask(node: u32) -> Result<[libc::c_ulong; MASK_WORDS], MemError> {
    let idx = node as usize / 64;
    if idx >= MASK_WORDS {
        return Err(MemError::NodeOutOfRange(node));
    }
    let mut mask = [0 as libc::c_ulong; MASK_WORDS];
    mask[idx] = 1 << (node % 64);
    Ok(mask)
}

/// The base page size (`sysconf(_SC_PAGESIZE)`), 4096 if it cannot be read.
pub fn base_page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u64 } else { 4096 }
}

/// Binds the calling thread's future allocations to `node` (`Some`) or back to the
/// default policy (`None`).
pub fn set_thread_policy(node: Option<u32>) -> Result<(), MemError> {
    let (mode, mask) = match node {
        Some(n) => (MPOL_BIND, Some(node_mask(n)?)),
        None => (MPOL_DEFAULT, None),
    };
    let (mask_ptr, maxnode) = match &mask {
        Some(m) => (m.as_ptr(), (MASK_WORDS * 64 + 1) as libc::c_ulong),
        None => (ptr::null(), 0),
    };
    // SAFETY: set_mempolicy reads `maxnode - 1` bits from `mask_ptr`, which points at
    // MASK_WORDS words that live until the call returns (or is null with maxnode 0).
    let rc = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask_ptr, maxnode) };
    if rc != 0 {
        return Err(MemError::Bind {
            what: "the process".into(),
            node: node.unwrap_or(0),
            cause: io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl Memory {
    /// Reserves `len` bytes of address space (PROT_NONE, nothing committed), unmapped when
    /// the returned memory (no region yet) is dropped.
    fn reserve(len: u64, page: u64) -> Result<Memory, MemError> {
        // SAFETY: an anonymous PROT_NONE mapping at an address of the kernel's choice
        // aliases nothing; we check the result against MAP_FAILED.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len as usize,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(MemError::Reserve {
                len,
                cause: io::Error::last_os_error(),
            });
        }
        Ok(Memory {
            base: base as usize,
            total: len as usize,
            page: page as usize,
            regions: Vec::new(),
        })
    }

    /// Maps the regions (sizes in bytes, rounded up to the page size; zero sizes are
    /// skipped) and binds them to `node` if given. Pages are not touched yet.
    pub fn map(
        sizes: &[(Class, u64)],
        hugetlb: bool,
        node: Option<u32>,
    ) -> Result<Memory, MemError> {
        let page: u64 = if hugetlb { HUGE_PAGE } else { base_page_size() };
        let mut lens = Vec::new();
        for &(class, bytes) in sizes {
            let len = round_up(bytes, page).ok_or(MemError::TooLarge {
                class: class.name(),
                bytes,
            })?;
            if len > 0 {
                lens.push((class, len));
            }
        }
        // Layout: [pad to alignment] region guard region guard region.
        let mut total: u64 = 0;
        for (_, len) in &lens {
            total = total.checked_add(len + page).ok_or(MemError::TooLarge {
                class: "all",
                bytes: total,
            })?;
        }
        let mut mem = Memory::reserve(total + page, page)?;
        let mut at = round_up(mem.base as u64, page).unwrap_or(mem.base as u64) as usize;
        if let Some(n) = node {
            // With the thread bound, a hugetlb mapping's reservation is checked against
            // the node's free pages at mmap time instead of failing later with SIGBUS.
            set_thread_policy(Some(n))?;
        }
        let result = mem.map_regions(&lens, &mut at, hugetlb, node);
        if node.is_some() {
            set_thread_policy(None)?;
        }
        result?;
        Ok(mem)
    }

    /// Maps ONE mapping of base pages holding `runs` (classes and lengths in bytes, each a
    /// multiple of the page size, laid out back to back in that order) between two
    /// PROT_NONE guard pages, binds it to `node` if given, and records each run as a region.
    /// Pages are not touched yet.
    pub fn map_mixed(runs: &[(Class, u64)], node: Option<u32>) -> Result<Memory, MemError> {
        let page = base_page_size();
        let mut len: u64 = 0;
        for &(class, bytes) in runs {
            if bytes % page != 0 {
                return Err(MemError::Unaligned {
                    class: class.name(),
                    bytes,
                    page,
                });
            }
            len = len.checked_add(bytes).ok_or(MemError::TooLarge {
                class: "mixed",
                bytes: len,
            })?;
        }
        // Layout: guard, the mapping, guard.
        let reserve = len.checked_add(2 * page).ok_or(MemError::TooLarge {
            class: "mixed",
            bytes: len,
        })?;
        let mut mem = Memory::reserve(reserve, page)?;
        let at = mem.base + page as usize;
        if let Some(n) = node {
            set_thread_policy(Some(n))?;
        }
        // SAFETY: `[at, at+len)` is the reservation minus its first and last page.
        let result = unsafe { mem.map_at(at, len, false, node, "mixed") };
        if node.is_some() {
            set_thread_policy(None)?;
        }
        result?;
        let mut start = at;
        for &(class, bytes) in runs {
            if bytes > 0 {
                mem.regions.push(Region {
                    class,
                    start,
                    len: bytes as usize,
                });
                start += bytes as usize;
            }
        }
        Ok(mem)
    }

    fn map_regions(
        &mut self,
        lens: &[(Class, u64)],
        at: &mut usize,
        hugetlb: bool,
        node: Option<u32>,
    ) -> Result<(), MemError> {
        for &(class, len) in lens {
            // SAFETY: `map` reserved one spare page for alignment plus `len` and one guard
            // page per region, and `at` advances by exactly that: `[at, at+len)` is ours.
            unsafe { self.map_at(*at, len, hugetlb, node, class.name())? };
            self.regions.push(Region {
                class,
                start: *at,
                len: len as usize,
            });
            *at += len as usize + self.page;
        }
        Ok(())
    }

    /// Maps `len` bytes read-write at `at`, without transparent huge pages unless
    /// `hugetlb`, bound to `node` if given. `what` names it in errors.
    ///
    /// # Safety
    ///
    /// `[at, at+len)` must lie inside this struct's own reservation and hold nothing
    /// referenced: MAP_FIXED replaces whatever is there.
    unsafe fn map_at(
        &self,
        at: usize,
        len: u64,
        hugetlb: bool,
        node: Option<u32>,
        what: &'static str,
    ) -> Result<(), MemError> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED;
        if hugetlb {
            flags |= libc::MAP_HUGETLB | libc::MAP_HUGE_2MB;
        }
        // SAFETY: the caller guarantees `[at, at+len)` is inside our own reservation and
        // unreferenced, so MAP_FIXED replaces only memory this struct owns.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(MemError::Map {
                class: what,
                len,
                huge: if hugetlb {
                    ", hugetlb 2 MiB pages; are enough reserved (nr_hugepages)?"
                } else {
                    ""
                },
                cause: io::Error::last_os_error(),
            });
        }
        if !hugetlb {
            // Keep base pages so the layout's page size is the truth. EINVAL only
            // means the kernel has no THP; nothing to undo then.
            // SAFETY: madvise on our own fresh mapping changes no memory contents.
            unsafe { libc::madvise(p, len as usize, libc::MADV_NOHUGEPAGE) };
        }
        if let Some(n) = node {
            let mask = node_mask(n)?;
            // SAFETY: the mask points at MASK_WORDS words alive for the call; the
            // range is our own mapping made just above.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_mbind,
                    p,
                    len as libc::c_ulong,
                    MPOL_BIND,
                    mask.as_ptr(),
                    (MASK_WORDS * 64 + 1) as libc::c_ulong,
                    0 as libc::c_uint,
                )
            };
            if rc != 0 {
                return Err(MemError::Bind {
                    what: format!("the {what} region"),
                    node: n,
                    cause: io::Error::last_os_error(),
                });
            }
        }
        Ok(())
    }

    /// Page size of every region.
    pub fn page_size(&self) -> usize {
        self.page
    }

    /// The mapped regions, in address order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Locks every page of the process in memory but the regions' reservation (`mlockall`
    /// then `munlock` of it): the process's own stack, heap and libraries can then never be
    /// swapped out, so a major fault can only come from a region.
    pub fn lock_the_rest(&self) -> std::io::Result<()> {
        // SAFETY: mlockall takes flags only and changes no memory we reference.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `[base, base+total)` is our own reservation; munlock only unpins it.
        if unsafe { libc::munlock(self.base as *const libc::c_void, self.total) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The regions as layout entries.
    pub fn layout(&self) -> Vec<RegionLayout> {
        self.regions
            .iter()
            .map(|r| RegionLayout {
                class: r.class,
                start: r.start as u64,
                end: (r.start + r.len) as u64,
                len: r.len as u64,
                pages: (r.len / self.page) as u64,
            })
            .collect()
    }

    /// Writes every page of every region once, so all are present. Each page gets its
    /// index in its first word, so no page is all one value (zram would store such pages
    /// as a pattern, not compress them).
    pub fn populate(&self) -> u64 {
        let mut n = 0;
        for r in &self.regions {
            for i in 0..r.len / self.page {
                let p = (r.start + i * self.page) as *mut u64;
                // SAFETY: `p` is page-aligned inside a read-write mapping this struct
                // owns; a u64 fits in a page.
                unsafe { ptr::write_volatile(p, (i as u64) | 0x5a5a_0000_0000_0000) };
                n += 1;
            }
        }
        n
    }

    /// Touches every page of `region` once with `access`; returns the pages touched and a
    /// checksum of what was read (so reads are not optimised away). With `read_every` N > 0,
    /// every Nth page of the region (the first, the N+1th, ...) is only read, whatever
    /// `access` says.
    pub fn touch(&self, region: &Region, access: Access, read_every: u64) -> (u64, u64) {
        let mut sum = 0u64;
        let pages = region.len / self.page;
        for i in 0..pages {
            let p = (region.start + i * self.page) as *mut u64;
            let access = if read_every > 0 && (i as u64).is_multiple_of(read_every) {
                Access::Read
            } else {
                access
            };
            // SAFETY: as in `populate`: an aligned word at the start of one of our pages.
            unsafe {
                match access {
                    Access::Read => sum = sum.wrapping_add(ptr::read_volatile(p)),
                    Access::Write => ptr::write_volatile(p, sum.wrapping_add(i as u64)),
                    Access::Rw => {
                        let v = ptr::read_volatile(p);
                        sum = sum.wrapping_add(v);
                        ptr::write_volatile(p, v.wrapping_add(1));
                    }
                }
            }
        }
        (pages as u64, sum)
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: `[base, base+total)` is exactly the reservation made in `map`; every
        // region is inside it and no reference to it outlives `self`.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.total) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_ordered_page_aligned_and_separated() {
        let mem = Memory::map(
            &[(Class::Hot, 10_000), (Class::Warm, 0), (Class::Cold, 8192)],
            false,
            None,
        )
        .expect("map");
        let page = mem.page_size();
        let l = mem.layout();
        assert_eq!(l.len(), 2, "zero-sized warm region is skipped");
        assert_eq!(l[0].class, Class::Hot);
        assert_eq!(l[0].len, round_up(10_000, page as u64).expect("round"));
        assert_eq!(l[0].pages * page as u64, l[0].len);
        assert_eq!(l[1].class, Class::Cold);
        assert_eq!(l[1].len, 8192);
        assert_eq!(l[0].start % page as u64, 0);
        assert!(l[1].start >= l[0].end + page as u64, "guard page between");
        assert_eq!(mem.populate(), l[0].pages + l[1].pages);
        let (n, _) = mem.touch(&mem.regions()[0], Access::Rw, 0);
        assert_eq!(n, l[0].pages);
        // After one rw touch, the first word of page 1 is the populate value plus one.
        // SAFETY: reading a word of our own populated mapping.
        let v = unsafe { ptr::read_volatile((l[0].start as usize + page) as *const u64) };
        assert_eq!(v, (1 | 0x5a5a_0000_0000_0000) + 1);
        // read_every 2: pages 0, 2, ... only read (unchanged), the others written again
        let (n, _) = mem.touch(&mem.regions()[0], Access::Rw, 2);
        assert_eq!(n, l[0].pages);
        let word = |i: usize| {
            // SAFETY: reading a word of our own populated mapping.
            unsafe { ptr::read_volatile((l[0].start as usize + i * page) as *const u64) }
        };
        assert_eq!(
            word(0),
            (0x5a5a_0000_0000_0000) + 1,
            "read only: as the first touch left it"
        );
        assert_eq!(word(1), (1 | 0x5a5a_0000_0000_0000) + 2, "written again");
    }

    /// The `/proc/self/maps` line of the mapping holding `addr`: (start, end, perms).
    fn vma_of(addr: usize) -> (usize, usize, String) {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        for line in maps.lines() {
            let mut f = line.split_whitespace();
            let range = f.next().expect("range");
            let perms = f.next().expect("perms").to_string();
            let (a, b) = range.split_once('-').expect("a-b");
            let a = usize::from_str_radix(a, 16).expect("hex");
            let b = usize::from_str_radix(b, 16).expect("hex");
            if (a..b).contains(&addr) {
                return (a, b, perms);
            }
        }
        panic!("no vma holds {addr:x}");
    }

    #[test]
    fn mixed_is_one_mapping_between_guards() {
        let page = base_page_size();
        let runs = [
            (Class::Hot, 2 * page),
            (Class::Cold, 3 * page),
            (Class::Hot, page),
            (Class::Cooled, page),
            (Class::Cold, 5 * page),
        ];
        let mem = Memory::map_mixed(&runs, None).expect("map");
        let l = mem.layout();
        assert_eq!(l.len(), 5);
        for (r, (class, len)) in l.iter().zip(runs) {
            assert_eq!((r.class, r.len, r.pages), (class, len, len / page));
        }
        for w in l.windows(2) {
            assert_eq!(w[0].end, w[1].start, "runs are back to back");
        }
        let (start, end) = (l[0].start as usize, l[4].end as usize);
        assert_eq!(vma_of(start), (start, end, "rw-p".to_string()), "one VMA");
        assert_eq!(vma_of(start - 1).2, "---p", "guard before");
        assert_eq!(vma_of(end).2, "---p", "guard after");
        assert_eq!(mem.populate(), 12);
        let (n, _) = mem.touch(&mem.regions()[3], Access::Read, 0);
        assert_eq!(n, 1);
    }

    #[test]
    fn mixed_run_not_a_page_multiple_is_refused() {
        let page = base_page_size();
        let e = Memory::map_mixed(&[(Class::Hot, page), (Class::Cold, 100)], None)
            .expect_err("unaligned");
        assert_eq!(
            e.to_string(),
            format!("cold run of 100 bytes: expected a multiple of the page size {page}")
        );
    }

    #[test]
    fn node_out_of_range_is_an_error() {
        assert!(matches!(
            node_mask(5000),
            Err(MemError::NodeOutOfRange(5000))
        ));
        assert_eq!(node_mask(65).expect("mask")[1], 2);
    }
}
