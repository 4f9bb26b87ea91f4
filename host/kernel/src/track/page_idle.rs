//! The `page_idle` tracker: mark the target's present pages idle in
//! `/sys/kernel/mm/page_idle/bitmap` (PFNs from pagemap), and on each pass count the
//! pages whose idle bit the kernel cleared (accessed since). Writes only bits of the
//! target's own PFNs; never touches other processes' pages.

use super::{PAGEMAP_CHUNK, TrackError, Tracker, TrackerKind, io_err, read_pagemap};
use crate::access::{AccessMap, bump};
use crate::linux::LinuxKernel;
use crate::parse::pagemap::decode_pagemap;
use crate::process::ProcessHandle;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// The page_idle bitmap tracker.
#[derive(Debug)]
pub struct PageIdleTracker {
    bitmap: PathBuf,
    page_size: u64,
    started: bool,
}

impl PageIdleTracker {
    /// A page_idle tracker for kernel `k`.
    pub fn new(k: &LinuxKernel) -> Self {
        PageIdleTracker {
            bitmap: k.sys_root().join("kernel/mm/page_idle/bitmap"),
            page_size: k.page_sizes().pte,
            started: false,
        }
    }

    /// For each tracked page: `Some(pfn)` when present.
    fn pfns(
        &self,
        p: &ProcessHandle,
        map: &AccessMap,
    ) -> Result<Vec<Vec<Option<u64>>>, TrackError> {
        let path = p.path("pagemap");
        let f = std::fs::File::open(&path).map_err(io_err("open", &path))?;
        p.check()?;
        let ps = self.page_size;
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for (start, end) in map.ranges() {
            let n = usize::try_from((end - start).div_ceil(ps)).unwrap_or(0);
            let mut v = Vec::with_capacity(n);
            let mut at = start;
            while v.len() < n {
                let want = (n - v.len()).min(PAGEMAP_CHUNK);
                read_pagemap(&f, &path, at, ps, want, &mut buf)?;
                let got = buf.len() / 8;
                v.extend(decode_pagemap(&buf).map(|e| e.pfn().filter(|pfn| *pfn != 0)));
                if got < want {
                    v.resize(n, None);
                }
                at += want as u64 * ps;
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Sets the idle bit of every PFN (one pwrite per 64-PFN word).
    fn mark_idle(&self, pfns: &[Vec<Option<u64>>]) -> Result<(), TrackError> {
        let mut words: BTreeMap<u64, u64> = BTreeMap::new();
        for pfn in pfns.iter().flatten().flatten() {
            *words.entry(pfn / 64).or_default() |= 1 << (pfn % 64);
        }
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.bitmap)
            .map_err(io_err("open", &self.bitmap))?;
        for (w, bits) in words {
            f.write_all_at(&bits.to_ne_bytes(), w * 8)
                .map_err(io_err("write", &self.bitmap))?;
        }
        Ok(())
    }
}

impl Tracker for PageIdleTracker {
    fn kind(&self) -> TrackerKind {
        TrackerKind::PageIdle
    }

    fn start(&mut self, p: &ProcessHandle, map: &AccessMap) -> Result<(), TrackError> {
        let pfns = self.pfns(p, map)?;
        self.mark_idle(&pfns)?;
        self.started = true;
        Ok(())
    }

    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        if !self.started {
            return Err(TrackError::NotStarted(self.kind()));
        }
        let pfns = self.pfns(p, map)?;
        let f = std::fs::File::open(&self.bitmap).map_err(io_err("open", &self.bitmap))?;
        let mut cache: BTreeMap<u64, u64> = BTreeMap::new();
        for (i, run) in pfns.iter().enumerate() {
            let Some((_, slots)) = map.slots_mut(i) else {
                continue;
            };
            for (slot, pfn) in slots.iter_mut().zip(run) {
                let Some(pfn) = *pfn else { continue };
                let word = match cache.get(&(pfn / 64)) {
                    Some(w) => *w,
                    None => {
                        let mut b = [0u8; 8];
                        f.read_exact_at(&mut b, pfn / 64 * 8)
                            .map_err(io_err("read", &self.bitmap))?;
                        let w = u64::from_ne_bytes(b);
                        cache.insert(pfn / 64, w);
                        w
                    }
                };
                let idle = word >> (pfn % 64) & 1 == 1;
                bump(slot, u8::from(!idle));
            }
        }
        map.finish_pass();
        self.mark_idle(&pfns)
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        self.started = false;
        Ok(())
    }
}
