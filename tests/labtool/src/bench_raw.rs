//! `etmem-lab bench-raw`: the raw kernel cost of one slide round over the workload (a
//! kdamond of ours, raw DAMON passes, `process_madvise(MADV_PAGEOUT)` of the ranges every
//! pass saw unaccessed) and of the next round's passes, wall and thread CPU milliseconds,
//! for the round bench. It must
//! only page out the workload's anonymous mappings.

use crate::Outcome;
use crate::layout::{Layout, anon_vmas};
use anyhow::{Context, bail};
use etmem_kernel::{AccessMap, Kernel, LinuxKernel};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// CPU time of the calling thread.
fn thread_cpu() -> anyhow::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        bail!(
            "clock_gettime(CLOCK_THREAD_CPUTIME_ID): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(Duration::new(
        u64::try_from(ts.tv_sec)?,
        u32::try_from(ts.tv_nsec)?,
    ))
}

/// Wall and thread CPU time spent in the `measure` calls.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    wall: Duration,
    cpu: Duration,
}

impl Spent {
    fn measure<T>(&mut self, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let (w, c) = (Instant::now(), thread_cpu()?);
        let r = f();
        self.cpu += thread_cpu()?.saturating_sub(c);
        self.wall += w.elapsed();
        r
    }
    fn ms(&self) -> (f64, f64) {
        (
            self.wall.as_secs_f64() * 1000.0,
            self.cpu.as_secs_f64() * 1000.0,
        )
    }
}

/// The `(start, end)` ranges present in both sorted, non-overlapping lists.
fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        let (s, e) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if s < e {
            out.push((s, e));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// One raw DAMON pass on kdamond directory `dir`: the regions with no access seen,
/// sorted, adjacent ones merged.
fn raw_damon_pass(dir: &Path) -> anyhow::Result<(Vec<(u64, u64)>, usize)> {
    let state = dir.join("state");
    std::fs::write(&state, "update_schemes_tried_regions")
        .with_context(|| format!("writing `{}`", state.display()))?;
    let tried = dir.join("contexts/0/schemes/0/tried_regions");
    let read = |p: PathBuf| -> anyhow::Result<u64> {
        let t =
            std::fs::read_to_string(&p).with_context(|| format!("reading `{}`", p.display()))?;
        t.trim()
            .parse()
            .with_context(|| format!("`{}`: not a number: `{}`", p.display(), t.trim()))
    };
    let mut regions = Vec::new();
    for e in std::fs::read_dir(&tried).with_context(|| format!("reading `{}`", tried.display()))? {
        let e = e?;
        if e.file_name()
            .to_str()
            .is_none_or(|n| n.parse::<u64>().is_err())
        {
            continue;
        }
        let r = e.path();
        regions.push((
            read(r.join("start"))?,
            read(r.join("end"))?,
            read(r.join("nr_accesses"))?,
        ));
    }
    regions.sort_unstable();
    let n = regions.len();
    let mut cold: Vec<(u64, u64)> = Vec::new();
    for (s, e, _) in regions.into_iter().filter(|r| r.2 == 0) {
        match cold.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => cold.push((s, e)),
        }
    }
    Ok((cold, n))
}

/// `process_madvise(pidfd, ranges, MADV_PAGEOUT)`, up to 1024 ranges per call; returns
/// the bytes the kernel advised, the number of calls and of ranges refused.
fn raw_pageout(pid: u32, ranges: &[(u64, u64)]) -> anyhow::Result<(u64, u64, u64)> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::pid_t::try_from(pid)?, 0) };
    if fd < 0 {
        bail!("pidfd_open({pid}): {}", std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd)?;
    let mut done = 0u64;
    let mut calls = 0u64;
    let mut failed = 0u64;
    let r = (|| {
        for batch in ranges.chunks(1024) {
            let mut iov: Vec<libc::iovec> = batch
                .iter()
                .map(|&(s, e)| libc::iovec {
                    iov_base: s as *mut libc::c_void,
                    iov_len: (e - s) as usize,
                })
                .collect();
            let mut off = 0;
            while off < iov.len() {
                calls += 1;
                // SAFETY: `iov[off..]` is a valid array of iovecs describing ranges of the
                // target process (the kernel reads only the array from our memory).
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_process_madvise,
                        fd,
                        iov[off..].as_ptr(),
                        iov.len() - off,
                        libc::MADV_PAGEOUT,
                        0u32,
                    )
                };
                if n < 0 {
                    // the kernel stops at the first range it refuses (EINVAL for [vvar]
                    // and other VM_PFNMAP mappings, which count as anonymous): skip it,
                    // as etmemd's pageout goes on with its next batch
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        bail!("process_madvise({pid}): {e}");
                    }
                    eprintln!(
                        "bench-raw: process_madvise({pid}) refused the range {:#x}+{:#x}: {e}",
                        iov[off].iov_base as u64, iov[off].iov_len
                    );
                    failed += 1;
                    off += 1;
                    continue;
                }
                // a partial result: skip what was advised and go on
                let mut left = u64::try_from(n)?;
                done += left;
                while off < iov.len() && left >= iov[off].iov_len as u64 {
                    left -= iov[off].iov_len as u64;
                    off += 1;
                }
                if off < iov.len() && left > 0 {
                    iov[off].iov_base = (iov[off].iov_base as u64 + left) as *mut libc::c_void;
                    iov[off].iov_len -= left as usize;
                }
                if n == 0 {
                    off += 1;
                }
            }
        }
        Ok(())
    })();
    // SAFETY: `fd` is ours, from pidfd_open above, closed once.
    unsafe { libc::close(fd) };
    r.map(|()| (done, calls, failed))
}

pub fn bench_raw(path: &Path, passes: u32, window: Duration, steady_passes: u32) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let vmas = anon_vmas(&k, &p)?;
    let tracked: u64 = vmas.iter().map(|v| v.end - v.start).sum();
    let map = AccessMap::new(&vmas, k.page_sizes());
    let mut start = Spent::default();
    let mut scan = Spent::default();
    let mut act = Spent::default();
    let mut steady = Spent::default();
    let mut tracker = etmem_kernel::track::DamonTracker::new(
        &k,
        etmem_kernel::track::DamonAttrs::for_window(window),
    );
    start.measure(|| Ok(etmem_kernel::Tracker::start(&mut tracker, &p, &map)?))?;
    let dir = PathBuf::from(format!(
        "/sys/kernel/mm/damon/admin/kdamonds/{}",
        tracker
            .kdamond_index()
            .context("DAMON tracker started without a kdamond")?
    ));
    // (cold ranges, regions of the last pass, (bytes advised, calls, ranges refused),
    // regions of the last steady pass)
    type Raw = (Vec<(u64, u64)>, usize, (u64, u64, u64), usize);
    let r = (|| -> anyhow::Result<Raw> {
        let mut cold: Option<Vec<(u64, u64)>> = None;
        let mut nr_regions = 0;
        for _ in 0..passes.max(1) {
            std::thread::sleep(window);
            let (c, n) = scan.measure(|| {
                let (c, n) = raw_damon_pass(&dir)?;
                Ok((
                    match cold.take() {
                        None => c,
                        Some(prev) => intersect(&prev, &c),
                    },
                    n,
                ))
            })?;
            cold = Some(c);
            nr_regions = n;
        }
        // only the mappings etmemd scans (anonymous ones): DAMON's regions also cover
        // [vvar] and the like, where MADV_PAGEOUT fails with EINVAL
        let anon: Vec<(u64, u64)> = map.ranges().collect();
        let cold = scan.measure(|| Ok(intersect(&cold.unwrap_or_default(), &anon)))?;
        let advised = act.measure(|| raw_pageout(layout.pid, &cold))?;
        // the next round's passes: by now DAMON has split the regions it started from
        let mut steady_regions = 0;
        for _ in 0..steady_passes {
            std::thread::sleep(window);
            steady_regions = steady.measure(|| Ok(raw_damon_pass(&dir)?.1))?;
        }
        Ok((cold, nr_regions, advised, steady_regions))
    })();
    let stopped = etmem_kernel::Tracker::stop(&mut tracker);
    let (cold, nr_regions, (bytes, calls, refused), steady_regions) = r?;
    stopped?;
    let (start_ms, start_cpu) = start.ms();
    let (scan_ms, scan_cpu) = scan.ms();
    let (act_ms, act_cpu) = act.ms();
    let (steady_ms, steady_cpu) = steady.ms();
    let cold_class = layout.region("cold")?;
    let cold_layout = cold_class.end - cold_class.start;
    // the ranges found cold must cover the cold region (DAMON regions may reach into the
    // guard pages and neighbours only by their own adaptive split; that is the tracker's
    // precision, not this bench's concern)
    let covered: u64 = intersect(&cold, &[(cold_class.start, cold_class.end)])
        .iter()
        .map(|(s, e)| e - s)
        .sum();
    let ok = covered * 10 >= cold_layout * 9;
    Ok((
        ok,
        format!(
            "tracked_kib={} passes={passes} regions={nr_regions} start_ms={start_ms:.1} start_cpu_ms={start_cpu:.1} scan_ms={scan_ms:.1} scan_cpu_ms={scan_cpu:.1} act_ms={act_ms:.1} act_cpu_ms={act_cpu:.1} act_pages={} act_ranges={} act_calls={calls} act_refused_ranges={refused} cold_covered_pct={:.1} steady_passes={steady_passes} steady_regions={steady_regions} steady_scan_ms={steady_ms:.1} steady_scan_cpu_ms={steady_cpu:.1}",
            tracked / 1024,
            bytes / 4096,
            cold.len(),
            100.0 * covered as f64 / cold_layout.max(1) as f64
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::intersect;

    #[test]
    fn intersect_keeps_only_common_parts() {
        let a = [(0, 10), (20, 30), (40, 50)];
        let b = [(5, 25), (28, 45)];
        assert_eq!(
            intersect(&a, &b),
            vec![(5, 10), (20, 25), (28, 30), (40, 45)]
        );
        assert_eq!(intersect(&a, &[]), vec![]);
        assert_eq!(intersect(&[(0, 10)], &[(10, 20)]), vec![]);
    }
}
