//! The soft-dirty tracker: write `4` to `/proc/PID/clear_refs`, then read each page's
//! soft-dirty bit (pagemap bit 55, or `PAGEMAP_SCAN` runs where the kernel has it). It sees **writes only**: a page that is only read stays
//! "not dirty" and looks cold. Use it for write-heavy workloads or when nothing better
//! exists. Must not touch anything but the target's clear_refs and pagemap.

use super::pagemap::{NO_PAGEMAP_SCAN, PageBits, PagemapMethod, for_each_page_run};
use super::{TrackError, Tracker, TrackerKind, io_err, write_str};
use crate::access::{AccessMap, bump};
use crate::linux::LinuxKernel;
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
    /// `Scan` until the kernel says it has no PAGEMAP_SCAN
    method: PagemapMethod,
}

impl SoftDirtyTracker {
    /// A soft-dirty tracker for kernel `k`.
    pub fn new(k: &LinuxKernel) -> Self {
        SoftDirtyTracker {
            page_size: k.page_sizes().pte,
            started: false,
            method: PagemapMethod::Scan,
        }
    }
}

fn clear(p: &ProcessHandle) -> Result<(), TrackError> {
    p.check()?;
    write_str(&p.path("clear_refs"), "4")?;
    Ok(())
}

/// One pagemap pass over every range of `map`: `weigh` maps a page's bits to
/// `Some(weight)` for a page to count (present), `None` to leave it untouched. `method`
/// [`PagemapMethod::Scan`] uses `PAGEMAP_SCAN` where the kernel has it; returns the method
/// used. Public so benchmarks can time a pass on their own process.
pub fn scan_pagemap(
    f: &std::fs::File,
    path: &Path,
    page_size: u64,
    map: &mut AccessMap,
    method: PagemapMethod,
    mut weigh: impl FnMut(PageBits) -> Option<u8>,
) -> Result<PagemapMethod, TrackError> {
    for_each_page_run(f, path, page_size, map, method, |run, bits| {
        if let Some(w) = weigh(bits) {
            for slot in run {
                bump(slot, w);
            }
        }
    })
}

impl SoftDirtyTracker {
    fn pass_once(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        let path = p.path("pagemap");
        let f = std::fs::File::open(&path).map_err(io_err("open", &path))?;
        p.check()?;
        let used = scan_pagemap(&f, &path, self.page_size, map, self.method, |b| {
            b.present.then(|| u8::from(b.soft_dirty))
        })?;
        if used != self.method {
            tracing::info!("soft-dirty tracker: {}", NO_PAGEMAP_SCAN);
            self.method = used;
        }
        map.finish_pass();
        clear(p)
    }
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
        // whatever failed (opening pagemap, PAGEMAP_SCAN: ESRCH, clear_refs), a process
        // that exited meanwhile says it is gone
        let r = self.pass_once(p, map);
        super::gone_or(p, r)
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        self.started = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SoftDirtyTracker;
    use crate::access::map_over;
    use crate::linux::LinuxKernel;
    use crate::{Kernel, Tracker};

    /// Needs the live kernel (any) and permission to write a child's clear_refs: we run as
    /// root. The child is ours (`sleep`), nothing else is touched.
    #[test]
    fn a_pass_over_a_process_that_exited_says_it_is_gone() {
        let k = LinuxKernel::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let p = k.open_process(child.id()).expect("open our child");
        let mut t = SoftDirtyTracker::new(&k);
        let map = map_over(&[(0x10000, 0x20000)]);
        t.start(&p, &map).expect("start on a live child");
        child.kill().expect("kill");
        child.wait().expect("reap");
        let mut map = map_over(&[(0x10000, 0x20000)]);
        let e = t.pass(&p, &mut map).expect_err("the child is gone");
        assert!(e.is_gone(), "not reported as gone: {e}");
    }
}
