//! The soft-dirty tracker: write `4` to `/proc/PID/clear_refs`, then read bit 55 of each
//! page's pagemap entry. It sees **writes only**: a page that is only read stays
//! "not dirty" and looks cold. Use it for write-heavy workloads or when nothing better
//! exists. Must not touch anything but the target's clear_refs and pagemap.

use super::{PAGEMAP_CHUNK, TrackError, Tracker, TrackerKind, io_err, read_pagemap, write_str};
use crate::access::{AccessMap, bump};
use crate::linux::LinuxKernel;
use crate::parse::pagemap::decode_pagemap;
use crate::process::ProcessHandle;
use std::path::Path;

/// Why soft-dirty cannot work, read from our own `smaps` (no write).
pub(crate) fn availability(proc_root: &Path) -> Result<(), String> {
    if !proc_root.join("self/clear_refs").exists() {
        return Err(
            "no /proc/PID/clear_refs: kernel built without CONFIG_PROC_PAGE_MONITOR".into(),
        );
    }
    let smaps = std::fs::read(proc_root.join("self/smaps"))
        .map_err(|e| format!("cannot read /proc/self/smaps: {e}"))?;
    let vmas = crate::parse::parse_smaps(&smaps).map_err(|e| format!("/proc/self/smaps: {e}"))?;
    if vmas.iter().any(|v| v.has_vm_flags(&["sd"])) {
        Ok(())
    } else {
        Err(
            "no `sd` in any VmFlags of /proc/self/smaps: kernel built without \
             CONFIG_MEM_SOFT_DIRTY"
                .into(),
        )
    }
}

/// Soft-dirty bits through `clear_refs` and `pagemap`.
#[derive(Debug)]
pub struct SoftDirtyTracker {
    page_size: u64,
    started: bool,
}

impl SoftDirtyTracker {
    /// A soft-dirty tracker for kernel `k`.
    pub fn new(k: &LinuxKernel) -> Self {
        SoftDirtyTracker {
            page_size: k.page_sizes().pte,
            started: false,
        }
    }
}

fn clear(p: &ProcessHandle) -> Result<(), TrackError> {
    p.check()?;
    write_str(&p.path("clear_refs"), "4")?;
    Ok(())
}

/// One pagemap pass over every range of `map`: `weigh` maps an entry to `Some(weight)`
/// for a page to count (present), `None` to leave it untouched. Reads 64 Ki entries per
/// `pread`. Public so benchmarks can time a pass on their own process.
pub fn scan_pagemap(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    map: &mut AccessMap,
    mut weigh: impl FnMut(crate::parse::PagemapEntry) -> Option<u8>,
) -> Result<(), TrackError> {
    for_each_pagemap_slot(f, path, page_size, map, |slot, e| {
        if let Some(w) = weigh(e) {
            bump(slot, w);
        }
    })
}

/// Calls `visit` with every slot of `map` and the page's pagemap entry, 64 Ki entries
/// per `pread`; slots past a short read (the pages are not mapped any more) are left alone.
pub(crate) fn for_each_pagemap_slot(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    map: &mut AccessMap,
    mut visit: impl FnMut(&mut u8, crate::parse::PagemapEntry),
) -> Result<(), TrackError> {
    let mut buf = Vec::new();
    for i in 0..map.nr_ranges() {
        let Some((start, slots)) = map.slots_mut(i) else {
            continue;
        };
        for (c, chunk) in slots.chunks_mut(PAGEMAP_CHUNK).enumerate() {
            let at = start + (c * PAGEMAP_CHUNK) as u64 * page_size;
            read_pagemap(f, path, at, page_size, chunk.len(), &mut buf)?;
            for (slot, e) in chunk.iter_mut().zip(decode_pagemap(&buf)) {
                visit(slot, e);
            }
        }
    }
    Ok(())
}

impl Tracker for SoftDirtyTracker {
    fn kind(&self) -> TrackerKind {
        TrackerKind::SoftDirty
    }

    fn start(&mut self, p: &ProcessHandle, _map: &AccessMap) -> Result<(), TrackError> {
        clear(p)?;
        self.started = true;
        Ok(())
    }

    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        if !self.started {
            return Err(TrackError::NotStarted(self.kind()));
        }
        let path = p.path("pagemap");
        let f = std::fs::File::open(&path).map_err(io_err("open", &path))?;
        p.check()?;
        scan_pagemap(&f, &path, self.page_size, map, |e| {
            e.present().then(|| u8::from(e.soft_dirty()))
        })?;
        map.finish_pass();
        clear(p)
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        self.started = false;
        Ok(())
    }
}
