//! `etmem-lab bench-raw`: the raw kernel cost of one slide round over the workload (a
//! kdamond of ours, raw DAMON passes, `process_madvise(MADV_PAGEOUT)` of the ranges every
//! pass saw unaccessed) and of the next round's passes, wall and thread CPU milliseconds,
//! for the round bench.
//!
//! A raw pass reads DAMON's regions as etmemd's DAMON tracker does: through the
//! `damon:damon_aggregated` tracepoint (a tracefs instance of ours, [`INSTANCE`]: the
//! newest complete aggregation of target 0 not used yet) or, `--via sysfs`, through
//! `update_schemes_tried_regions` and three files per region; then, with soft-dirty, a
//! `PAGEMAP_SCAN` walk of the workload's anonymous mappings and `4` to `clear_refs`.
//! Only that kernel work is timed, never the sleeps between passes or while waiting for an
//! aggregation. It must only page out the workload's anonymous mappings, and must leave no
//! trace instance behind.

use crate::Outcome;
use crate::layout::{Layout, anon_vmas};
use anyhow::{Context, bail};
use etmem_kernel::track::damon_trace::Feed;
use etmem_kernel::track::{PagemapMethod, scan_pagemap};
use etmem_kernel::{AccessMap, Kernel, LinuxKernel, ProcessHandle};
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
    /// Thread CPU milliseconds spent since `earlier` (a copy of this one).
    fn cpu_ms_since(&self, earlier: &Spent) -> f64 {
        self.cpu.saturating_sub(earlier.cpu).as_secs_f64() * 1000.0
    }
    /// Wall milliseconds spent since `earlier` (a copy of this one).
    fn wall_ms_since(&self, earlier: &Spent) -> f64 {
        self.wall.saturating_sub(earlier.wall).as_secs_f64() * 1000.0
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

/// `(start, end, nr_accesses)` of DAMON regions.
type Regions = Vec<(u64, u64, u64)>;

/// Kdamond directory `dir`'s regions through sysfs: `update_schemes_tried_regions`, then
/// `start`, `end` and `nr_accesses` of each region.
fn sysfs_regions(dir: &Path) -> anyhow::Result<Regions> {
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
    Ok(regions)
}

/// The regions with no access seen, sorted, adjacent ones merged, and how many regions
/// there were.
fn cold_of(mut regions: Regions) -> (Vec<(u64, u64)>, usize) {
    regions.sort_unstable();
    let n = regions.len();
    let mut cold: Vec<(u64, u64)> = Vec::new();
    for (s, e, _) in regions.into_iter().filter(|r| r.2 == 0) {
        match cold.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => cold.push((s, e)),
        }
    }
    (cold, n)
}

/// Where a pass reads DAMON's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// `update_schemes_tried_regions`, then three files per region
    Sysfs,
    /// the `damon:damon_aggregated` tracepoint, in a tracefs instance of ours
    Trace,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Sysfs => "sysfs",
            Via::Trace => "trace",
        }
    }
}

/// Our tracefs instance (etmemd's are `etmemd-<pid>`).
const INSTANCE: &str = "etmemlab-raw";

/// Our trace instance, recording our kdamond's `damon_aggregated` events the way etmemd's
/// tracker does (etmem-kernel's [`Feed`]: the same settings, the same parsing), removed
/// when closed or dropped.
#[derive(Debug)]
struct TraceFeed {
    feed: Feed,
    /// the last block used
    seen: u64,
    /// how long a pass waits for an aggregation
    wait: Duration,
    /// slept waiting for aggregations (not timed), since the last pass said it
    waited: Duration,
}

impl TraceFeed {
    /// Makes instance [`INSTANCE`] under the tracefs of sysfs root `sys` (or takes over one
    /// a killed run left),
    /// recording the events of kdamond thread `kthread_pid` from now on.
    fn open(sys: &Path, kthread_pid: u32, wait: Duration) -> anyhow::Result<TraceFeed> {
        let feed = Feed::open_named(sys, INSTANCE, kthread_pid)
            .context("the damon_aggregated tracepoint (mount tracefs, or use --via sysfs)")?;
        Ok(TraceFeed {
            feed,
            seen: 0,
            wait,
            waited: Duration::ZERO,
        })
    }

    /// The regions of target 0's newest complete aggregation not used yet, waiting for one
    /// in 20 ms sleeps (at most `wait`). Only the reads are measured into `spent`.
    fn next_regions(&mut self, spent: &mut Spent) -> anyhow::Result<Regions> {
        let deadline = Instant::now() + self.wait;
        loop {
            let block = spent.measure(|| {
                self.feed.drain()?;
                Ok(self.feed.newer(0, self.seen).cloned())
            })?;
            if let Some(b) = block {
                self.seen = b.seq;
                return Ok(b.regions);
            }
            if Instant::now() >= deadline {
                bail!(
                    "trace instance `{}`: no new complete aggregation of target 0 within {} ms",
                    self.feed.dir().display(),
                    self.wait.as_millis(),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
            self.waited += Duration::from_millis(20);
        }
    }

    /// Closes the pipe and removes the instance.
    fn close(self) -> anyhow::Result<()> {
        Ok(self.feed.close()?)
    }
}

/// Where the passes read regions from.
#[derive(Debug)]
enum Source {
    /// the kdamond's sysfs directory
    Sysfs(PathBuf),
    Trace(TraceFeed),
}

/// The pagemap step of etmemd's DAMON pass: a `PAGEMAP_SCAN` walk (present and soft-dirty
/// runs) of the tracked mappings, then `4` to `clear_refs`.
#[derive(Debug)]
struct SoftDirty {
    pagemap: PathBuf,
    clear_refs: PathBuf,
    /// `Scan` until the kernel says it has no PAGEMAP_SCAN
    method: PagemapMethod,
}

impl SoftDirty {
    fn new(p: &ProcessHandle) -> Self {
        SoftDirty {
            pagemap: p.path("pagemap"),
            clear_refs: p.path("clear_refs"),
            method: PagemapMethod::Scan,
        }
    }

    /// One step over `scratch` (a copy of the tracked map, made outside the timing).
    fn step(&mut self, scratch: &mut AccessMap) -> anyhow::Result<()> {
        let f = std::fs::File::open(&self.pagemap)
            .with_context(|| format!("opening `{}`", self.pagemap.display()))?;
        let page = scratch.sizes().pte;
        let used = scan_pagemap(&f, &self.pagemap, page, scratch, self.method, |b| {
            b.present.then(|| u8::from(b.soft_dirty))
        })?;
        if used != self.method {
            eprintln!("bench-raw: no PAGEMAP_SCAN on this kernel: pagemap read, 8 bytes a page");
            self.method = used;
        }
        std::fs::write(&self.clear_refs, "4")
            .with_context(|| format!("writing 4 to `{}`", self.clear_refs.display()))
    }
}

/// The raw passes over one workload.
#[derive(Debug)]
struct Passes<'a> {
    src: Source,
    soft_dirty: Option<SoftDirty>,
    map: &'a AccessMap,
    done: u32,
}

impl Passes<'_> {
    /// One pass, measured into `spent`: the regions with no access seen (sorted, merged)
    /// and how many regions there were.
    fn pass(&mut self, spent: &mut Spent) -> anyhow::Result<(Vec<(u64, u64)>, usize)> {
        let t0 = *spent;
        let mut waited = Duration::ZERO;
        let (cold, n) = match &mut self.src {
            Source::Sysfs(dir) => spent.measure(|| Ok(cold_of(sysfs_regions(dir)?)))?,
            Source::Trace(feed) => {
                let regions = feed.next_regions(spent)?;
                waited = std::mem::take(&mut feed.waited);
                spent.measure(|| Ok(cold_of(regions)))?
            }
        };
        let t1 = *spent;
        if let Some(sd) = &mut self.soft_dirty {
            let mut scratch = self.map.clone();
            spent.measure(|| sd.step(&mut scratch))?;
        }
        self.done += 1;
        eprintln!(
            "bench-raw: pass {}: {n} region(s) read, cpu {:.1} ms (wall {:.1} ms; {} ms waited for \
             an aggregation, not timed), pagemap + clear_refs cpu {:.1} ms (wall {:.1} ms)",
            self.done,
            t1.cpu_ms_since(&t0),
            t1.wall_ms_since(&t0),
            waited.as_millis(),
            spent.cpu_ms_since(&t1),
            spent.wall_ms_since(&t1),
        );
        Ok((cold, n))
    }

    /// Removes what the passes set up (the trace instance).
    fn close(self) -> anyhow::Result<()> {
        match self.src {
            Source::Sysfs(_) => Ok(()),
            Source::Trace(feed) => feed.close(),
        }
    }
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

/// What `etmem-lab bench-raw` measures.
#[derive(Debug)]
pub struct BenchRawArgs {
    /// the workload's layout JSON
    pub layout: PathBuf,
    /// passes of the round
    pub passes: u32,
    /// time between passes (the project's `sleep`)
    pub window: Duration,
    /// passes after the page-out
    pub steady_passes: u32,
    pub via: Via,
    /// the pagemap step after the regions, each pass
    pub soft_dirty: bool,
}

pub fn bench_raw(a: &BenchRawArgs) -> Outcome {
    let (passes, window, steady_passes) = (a.passes, a.window, a.steady_passes);
    let layout = Layout::read(&a.layout)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let vmas = anon_vmas(&k, &p)?;
    let tracked: u64 = vmas.iter().map(|v| v.end - v.start).sum();
    let map = AccessMap::new(&vmas, k.page_sizes());
    let mut start = Spent::default();
    let mut scan = Spent::default();
    let mut act = Spent::default();
    let mut steady = Spent::default();
    let attrs = etmem_kernel::track::DamonAttrs::for_window(window);
    let mut tracker = etmem_kernel::track::DamonTracker::new(&k, attrs);
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
        let src = match a.via {
            Via::Sysfs => Source::Sysfs(dir.clone()),
            Via::Trace => {
                let pid_file = dir.join("pid");
                let t = std::fs::read_to_string(&pid_file)
                    .with_context(|| format!("reading `{}`", pid_file.display()))?;
                let kthread: u32 = t.trim().parse().ok().filter(|&p| p > 0).with_context(|| {
                    format!(
                        "`{}`: not a kdamond pid: `{}`",
                        pid_file.display(),
                        t.trim()
                    )
                })?;
                // etmemd's wait: two aggregations and a second
                let wait =
                    Duration::from_micros(attrs.aggr_us.saturating_mul(2)) + Duration::from_secs(1);
                Source::Trace(TraceFeed::open(Path::new("/sys"), kthread, wait)?)
            }
        };
        // dropped on an error: the trace instance goes before the kdamond
        let mut raw = Passes {
            src,
            soft_dirty: a.soft_dirty.then(|| SoftDirty::new(&p)),
            map: &map,
            done: 0,
        };
        let mut cold: Option<Vec<(u64, u64)>> = None;
        let mut nr_regions = 0;
        for _ in 0..passes.max(1) {
            std::thread::sleep(window);
            let (c, n) = raw.pass(&mut scan)?;
            let c = scan.measure(|| {
                Ok(match cold.take() {
                    None => c,
                    Some(prev) => intersect(&prev, &c),
                })
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
            steady_regions = raw.pass(&mut steady)?.1;
        }
        raw.close()?;
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
            "tracked_kib={} passes={passes} regions={nr_regions} start_ms={start_ms:.1} start_cpu_ms={start_cpu:.1} scan_ms={scan_ms:.1} scan_cpu_ms={scan_cpu:.1} act_ms={act_ms:.1} act_cpu_ms={act_cpu:.1} act_pages={} act_ranges={} act_calls={calls} act_refused_ranges={refused} cold_covered_pct={:.1} steady_passes={steady_passes} steady_regions={steady_regions} steady_scan_ms={steady_ms:.1} steady_scan_cpu_ms={steady_cpu:.1} via={} soft_dirty={}",
            tracked / 1024,
            bytes / 4096,
            cold.len(),
            100.0 * covered as f64 / cold_layout.max(1) as f64,
            a.via.name(),
            u8::from(a.soft_dirty),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::{INSTANCE, SoftDirty, Spent, TraceFeed, cold_of, intersect};
    use std::time::Duration;

    #[test]
    fn the_soft_dirty_step_walks_a_child_and_clears_its_bits() {
        use etmem_kernel::{AccessMap, Kernel, LinuxKernel};
        let k = LinuxKernel::default();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let r = (|| -> anyhow::Result<()> {
            let p = k.open_process(child.id())?;
            let vmas = crate::layout::anon_vmas(&k, &p)?;
            let map = AccessMap::new(&vmas, k.page_sizes());
            let mut sd = SoftDirty::new(&p);
            sd.step(&mut map.clone())?;
            sd.step(&mut map.clone())
        })();
        child.kill().expect("kill");
        child.wait().expect("reap");
        r.expect("two steps");
    }

    #[test]
    fn cold_regions_are_sorted_and_merged() {
        let r = vec![
            (0x3000, 0x4000, 0),
            (0x1000, 0x2000, 0),
            (0x2000, 0x3000, 0),
            (0x5000, 0x6000, 1),
        ];
        assert_eq!(cold_of(r), (vec![(0x1000, 0x4000)], 4));
    }

    #[test]
    fn a_feed_reads_its_pipe_waits_a_bounded_time_and_removes_its_instance() {
        // a plain directory stands in for sysfs with tracefs (etmem-kernel's parsing and
        // assembling are tested there: here the bench's wait and the instance's removal)
        let root = std::env::temp_dir().join(format!("etmemlab-raw-test-{}", std::process::id()));
        let dir = etmem_kernel::fake::fake_trace_instance(&root, INSTANCE).expect("instance");
        let mut f = TraceFeed::open(&root, 77, Duration::from_millis(50)).expect("feed");
        let read = |p: &str| std::fs::read_to_string(dir.join(p)).expect(p);
        assert_eq!(
            read("events/damon/damon_aggregated/filter"),
            "common_pid == 77"
        );
        assert_eq!(read("events/damon/damon_aggregated/enable"), "1");
        assert_eq!(read("trace_clock"), "mono");
        assert_eq!(read("buffer_size_kb"), "256");
        assert_eq!(read("tracing_on"), "1");
        let mut spent = Spent::default();
        let e = f.next_regions(&mut spent).expect_err("nothing recorded");
        assert!(
            format!("{e}").contains("no new complete aggregation"),
            "{e}"
        );
        let line = |s: u64, e: u64| {
            format!(
                "kdamond.0-77 [000] ..... 5.000001: damon_aggregated: target_id=0 \
                 nr_regions=2 {s}-{e}: 0 3\n"
            )
        };
        let mut text = line(4096, 8192);
        text.push_str(&line(8192, 12288)[..30]);
        std::fs::write(dir.join("trace_pipe"), &text).expect("write");
        f.next_regions(&mut spent)
            .expect_err("the second line is cut: no whole aggregation yet");
        text.push_str(&line(8192, 12288)[30..]);
        std::fs::write(dir.join("trace_pipe"), &text).expect("append");
        assert_eq!(
            f.next_regions(&mut spent).expect("a block"),
            vec![(4096, 8192, 0), (8192, 12288, 0)]
        );
        etmem_kernel::fake::empty_fake_trace_instance(&dir).expect("empty");
        f.close().expect("removed");
        assert!(!dir.exists());
        std::fs::remove_dir_all(&root).expect("root");
    }

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
