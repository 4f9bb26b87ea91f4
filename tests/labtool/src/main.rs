//! `etmem-lab`: runs inside the kernel lab guest and drives `etmem-kernel` against a real
//! kernel, checking the result against the workload's known layout (what the kernel
//! reports back: access counts, pagemap swapped bits, page nodes).
//!
//! Each subcommand prints details to stderr and ONE summary line of `key=value` pairs to
//! stdout, and exits 0 when the check passed, 1 when it failed. It is a test tool: it must
//! only ever be run in the lab guest (it writes `clear_refs`, DAMON sysfs and
//! `ns_last_pid`).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use etmem_kernel::{
    AccessMap, ActionReport, FailReason, Kernel, LinuxKernel, PageRef, ProcessHandle, SwapMethod,
    TrackerChoice, TrackerKind, VmaFilter,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
#[command(
    name = "etmem-lab",
    about = "In-guest checks of etmem-kernel against the lab kernel"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Print the kernel probe and check which trackers/actions are available.
    Probe {
        /// comma-separated names that must be available (trackers or actions)
        #[arg(long, default_value = "")]
        expect_available: String,
        /// comma-separated names that must be missing
        #[arg(long, default_value = "")]
        expect_missing: String,
    },
    /// Track the workload and score cold-vs-hot classification against its layout.
    Track {
        /// idle_pages, page_idle, damon, softdirty or auto
        #[arg(long)]
        tracker: String,
        /// the workload's layout JSON
        #[arg(long)]
        layout: PathBuf,
        /// rounds (a fresh count map each round; the tracker is started once)
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// passes per round
        #[arg(long, default_value_t = 3)]
        passes: u32,
        /// milliseconds before each pass
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// milliseconds to let the tracker settle after start (DAMON adapts its regions)
        #[arg(long, default_value_t = 0)]
        warmup_ms: u64,
        /// pass when some round reaches this cold recall
        #[arg(long, default_value_t = 0.99)]
        min_recall: f64,
        /// ... and this cold precision
        #[arg(long, default_value_t = 0.999)]
        min_precision: f64,
        /// DAMON sampling interval (us)
        #[arg(long, default_value_t = 5_000)]
        damon_sample_us: u64,
        /// DAMON aggregation interval (us)
        #[arg(long, default_value_t = 100_000)]
        damon_aggr_us: u64,
        /// DAMON minimum number of regions
        #[arg(long, default_value_t = 10)]
        damon_min_regions: u64,
    },
    /// Swap out one class of the workload, then check pagemap: exactly those pages.
    Pageout {
        /// the workload's layout JSON
        #[arg(long)]
        layout: PathBuf,
        /// hot, warm or cold
        #[arg(long, default_value = "cold")]
        class: String,
        /// pageout (process_madvise), swap_pages or auto
        #[arg(long, default_value = "pageout")]
        method: String,
        /// byte quota (default: no limit)
        #[arg(long)]
        quota: Option<u64>,
        /// also ask for one page outside every VMA and expect it refused
        #[arg(long)]
        with_outside: bool,
    },
    /// Migrate one class of the workload to a node, then check with move_pages queries.
    Migrate {
        /// the workload's layout JSON
        #[arg(long)]
        layout: PathBuf,
        /// hot, warm or cold
        #[arg(long, default_value = "cold")]
        class: String,
        /// destination node
        #[arg(long)]
        to: u32,
        /// byte quota
        #[arg(long)]
        quota: u64,
    },
    /// Take a handle, let the process exit, reuse its pid, and check every action is
    /// refused on the old handle.
    RecycledPid,
    /// The raw kernel cost of one slide round over the workload, for the round bench: a
    /// kdamond of ours (as etmemd's DAMON tracker sets it up), `passes` of
    /// `update_schemes_tried_regions` + reading the regions, `window-ms` apart (the sleeps
    /// are not timed), then `process_madvise(MADV_PAGEOUT)` of the ranges every pass saw
    /// unaccessed, up to 1024 ranges per call. Prints wall and thread CPU milliseconds.
    BenchRaw {
        /// the workload's layout JSON
        #[arg(long)]
        layout: PathBuf,
        /// passes (the project's `loop`)
        #[arg(long, default_value_t = 2)]
        passes: u32,
        /// milliseconds between passes (the project's `sleep`)
        #[arg(long, default_value_t = 1000)]
        window_ms: u64,
    },
}

#[derive(Debug, Clone)]
struct Region {
    class: String,
    start: u64,
    end: u64,
}

#[derive(Debug, Clone)]
struct Layout {
    pid: u32,
    page_size: u64,
    regions: Vec<Region>,
}

impl Layout {
    fn read(path: &Path) -> anyhow::Result<Layout> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading layout `{}`", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing layout `{}`", path.display()))?;
        let num = |v: &serde_json::Value, k: &str| -> anyhow::Result<u64> {
            v[k].as_u64()
                .with_context(|| format!("layout `{}`: `{k}` is not a number", path.display()))
        };
        let mut regions = Vec::new();
        for r in v["regions"]
            .as_array()
            .context("layout: no `regions` array")?
        {
            regions.push(Region {
                class: r["class"]
                    .as_str()
                    .context("layout: region without class")?
                    .to_owned(),
                start: num(r, "start")?,
                end: num(r, "end")?,
            });
        }
        Ok(Layout {
            pid: u32::try_from(num(&v, "pid")?).context("layout: pid")?,
            page_size: num(&v, "page_size")?,
            regions,
        })
    }

    fn region(&self, class: &str) -> anyhow::Result<&Region> {
        self.regions
            .iter()
            .find(|r| r.class == class)
            .with_context(|| format!("layout has no `{class}` region"))
    }

    fn pages(&self, class: &str) -> anyhow::Result<Vec<PageRef>> {
        let r = self.region(class)?;
        Ok((r.start..r.end)
            .step_by(usize::try_from(self.page_size)?)
            .map(|addr| PageRef {
                addr,
                size: self.page_size,
            })
            .collect())
    }
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Probe {
            expect_available,
            expect_missing,
        } => probe(&expect_available, &expect_missing),
        Cmd::Track {
            tracker,
            layout,
            rounds,
            passes,
            interval_ms,
            warmup_ms,
            min_recall,
            min_precision,
            damon_sample_us,
            damon_aggr_us,
            damon_min_regions,
        } => track(&TrackArgs {
            tracker,
            layout,
            rounds,
            passes,
            interval: Duration::from_millis(interval_ms),
            warmup: Duration::from_millis(warmup_ms),
            min_recall,
            min_precision,
            damon: etmem_kernel::track::DamonAttrs {
                sample_us: damon_sample_us,
                aggr_us: damon_aggr_us,
                min_nr_regions: damon_min_regions,
                ..Default::default()
            },
        }),
        Cmd::Pageout {
            layout,
            class,
            method,
            quota,
            with_outside,
        } => pageout(&layout, &class, &method, quota, with_outside),
        Cmd::Migrate {
            layout,
            class,
            to,
            quota,
        } => migrate(&layout, &class, to, quota),
        Cmd::RecycledPid => recycled_pid(),
        Cmd::BenchRaw {
            layout,
            passes,
            window_ms,
        } => bench_raw(&layout, passes, Duration::from_millis(window_ms)),
    };
    match r {
        Ok((true, line)) => println!("{line}"),
        Ok((false, line)) => {
            println!("{line}");
            std::process::exit(1);
        }
        Err(e) => {
            println!(
                "reason=error error=\"{}\"",
                format!("{e:#}").replace('"', "'")
            );
            std::process::exit(1);
        }
    }
}

type Outcome = anyhow::Result<(bool, String)>;

fn probe(expect_available: &str, expect_missing: &str) -> Outcome {
    let k = LinuxKernel::default();
    let rep = etmem_kernel::probe(&k);
    eprint!("{rep}");
    let status = |name: &str| -> Option<bool> {
        match TrackerKind::from_name(name) {
            Some(kind) => rep.tracker(kind).map(Result::is_ok),
            None => rep
                .action(&name.replace('_', " "))
                .or(rep.action(name))
                .map(Result::is_ok),
        }
    };
    let mut ok = true;
    let mut parts = Vec::new();
    for (list, want) in [(expect_available, true), (expect_missing, false)] {
        for name in list.split(',').filter(|s| !s.is_empty()) {
            let got = status(name);
            let word = match got {
                Some(true) => "available",
                Some(false) => "missing",
                None => "unknown",
            };
            if got != Some(want) {
                ok = false;
            }
            parts.push(format!("{name}={word}"));
        }
    }
    parts.push(format!(
        "auto={}",
        rep.auto_tracker().map_or("none", |k| k.name())
    ));
    Ok((ok, parts.join(" ")))
}

struct TrackArgs {
    tracker: String,
    layout: PathBuf,
    rounds: u32,
    passes: u32,
    interval: Duration,
    warmup: Duration,
    min_recall: f64,
    min_precision: f64,
    damon: etmem_kernel::track::DamonAttrs,
}

#[derive(Debug, Default, Clone, Copy)]
struct Score {
    cold_pages: u64,
    hot_pages: u64,
    cold_found: u64,
    hot_called_cold: u64,
    absent: u64,
}

impl Score {
    fn recall(&self) -> f64 {
        self.cold_found as f64 / self.cold_pages.max(1) as f64
    }
    fn precision(&self) -> f64 {
        let called = self.cold_found + self.hot_called_cold;
        if called == 0 {
            0.0
        } else {
            self.cold_found as f64 / called as f64
        }
    }
}

fn score(map: &AccessMap, layout: &Layout) -> anyhow::Result<Score> {
    let mut s = Score::default();
    for (class, is_cold) in [("cold", true), ("hot", false)] {
        let r = layout.region(class)?;
        for addr in (r.start..r.end).step_by(4096) {
            let c = map.get(addr);
            if c.is_none() {
                s.absent += 1;
            }
            let cold = c == Some(0);
            if is_cold {
                s.cold_pages += 1;
                s.cold_found += u64::from(cold);
            } else {
                s.hot_pages += 1;
                s.hot_called_cold += u64::from(cold);
            }
        }
    }
    Ok(s)
}

fn track(a: &TrackArgs) -> Outcome {
    let layout = Layout::read(&a.layout)?;
    let k = LinuxKernel::default();
    let choice = if a.tracker == "auto" {
        TrackerChoice::Auto
    } else {
        TrackerChoice::Only(
            TrackerKind::from_name(&a.tracker)
                .with_context(|| format!("unknown tracker `{}`", a.tracker))?,
        )
    };
    let p = k.open_process(layout.pid)?;
    let vmas = k.vmas(
        &p,
        &VmaFilter {
            anon_only: true,
            vm_flags: vec![],
        },
    )?;
    let sizes = k.page_sizes();
    let mut tracker: Box<dyn etmem_kernel::Tracker> = match choice {
        TrackerChoice::Only(TrackerKind::Damon) => {
            Box::new(etmem_kernel::track::DamonTracker::new(&k, a.damon))
        }
        c => k.tracker(c)?,
    };
    let kind = tracker.kind();
    eprintln!(
        "track: pid {} tracker {kind}, {} anon VMAs, {} passes x {:?} per round",
        p.pid(),
        vmas.len(),
        a.passes,
        a.interval
    );
    tracker.start(&p, &AccessMap::new(&vmas, sizes))?;
    std::thread::sleep(a.warmup);
    let mut first_ok = None;
    let mut last = Score::default();
    let mut pass_ms = Vec::new();
    let mut peak_bytes_per_page = 0.0f64;
    let result = (|| -> anyhow::Result<()> {
        for round in 1..=a.rounds {
            let mut map = AccessMap::new(&vmas, sizes);
            for _ in 0..a.passes {
                std::thread::sleep(a.interval);
                let t = Instant::now();
                tracker.pass(&p, &mut map)?;
                pass_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            peak_bytes_per_page = peak_bytes_per_page
                .max(map.bookkeeping_bytes() as f64 / map.tracked_base_pages().max(1) as f64);
            last = score(&map, &layout)?;
            eprintln!(
                "track: round {round}: recall {:.4} precision {:.4} (cold {} found {}, hot {} called cold {}, absent {})",
                last.recall(),
                last.precision(),
                last.cold_pages,
                last.cold_found,
                last.hot_pages,
                last.hot_called_cold,
                last.absent
            );
            if first_ok.is_none()
                && last.recall() >= a.min_recall
                && last.precision() >= a.min_precision
            {
                first_ok = Some(round);
            }
        }
        Ok(())
    })();
    let stopped = tracker.stop();
    result?;
    stopped?;
    let avg_ms = pass_ms.iter().sum::<f64>() / pass_ms.len().max(1) as f64;
    let line = format!(
        "tracker={kind} recall={:.4} precision={:.4} round_ok={} rounds={} cold_pages={} hot_pages={} hot_called_cold={} pass_ms={avg_ms:.1} bytes_per_page={peak_bytes_per_page:.3}",
        last.recall(),
        last.precision(),
        first_ok.map_or("none".to_string(), |r| r.to_string()),
        a.rounds,
        last.cold_pages,
        last.hot_pages,
        last.hot_called_cold,
    );
    Ok((first_ok.is_some(), line))
}

fn reasons(rep: &ActionReport) -> String {
    rep.failed
        .iter()
        .map(|(why, n)| format!(" failed_{why}={n}"))
        .collect()
}

fn pagemap_counts(k: &LinuxKernel, p: &ProcessHandle, r: &Region) -> anyhow::Result<(u64, u64)> {
    let n = usize::try_from((r.end - r.start) / 4096)?;
    let e = k.pagemap(p, r.start, n)?;
    Ok((
        e.iter().filter(|e| e.swapped()).count() as u64,
        e.iter().filter(|e| e.present()).count() as u64,
    ))
}

fn pageout(path: &Path, class: &str, method: &str, quota: Option<u64>, outside: bool) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let method = match method {
        "pageout" => SwapMethod::Pageout,
        "swap_pages" => SwapMethod::SwapPages,
        "auto" => SwapMethod::Auto,
        m => bail!("unknown method `{m}`"),
    };
    let mut pages = layout.pages(class)?;
    let quota = quota.unwrap_or(u64::MAX);
    let expect = pages
        .iter()
        .scan(0u64, |used, pg| {
            *used += pg.size;
            Some(*used <= quota)
        })
        .filter(|x| *x)
        .count() as u64;
    if outside {
        pages.push(PageRef {
            addr: 0x1000,
            size: 4096,
        });
    }
    let t = Instant::now();
    let rep = k.swap_out(&p, &pages, quota, method)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!("pageout: {rep} in {ms:.1} ms");
    let mut swapped_class = 0;
    let mut swapped_other = 0;
    for r in &layout.regions {
        let (sw, pr) = pagemap_counts(&k, &p, r)?;
        eprintln!("pageout: region {}: swapped {sw} present {pr}", r.class);
        if r.class == class {
            swapped_class = sw;
        } else {
            swapped_other += sw;
        }
    }
    // MADV_PAGEOUT "done" means advised: the kernel skips pages it cannot isolate (e.g.
    // still in another CPU's LRU-add batch). List them, and advise them once more, as the
    // next round of an engine would.
    let r = layout.region(class)?;
    let n = usize::try_from((r.end - r.start) / 4096)?;
    let first_pass = swapped_class;
    let missed: Vec<u64> = k
        .pagemap(&p, r.start, n)?
        .iter()
        .enumerate()
        .filter(|(i, e)| (*i as u64) < expect && !e.swapped())
        .map(|(i, _)| r.start + i as u64 * 4096)
        .collect();
    let mut retry_done = 0;
    if !missed.is_empty() {
        let idx: Vec<String> = missed
            .iter()
            .map(|a| ((a - r.start) / 4096).to_string())
            .collect();
        eprintln!(
            "pageout: {} advised pages not swapped, page indices {}",
            missed.len(),
            idx.join(",")
        );
        let again: Vec<PageRef> = missed
            .iter()
            .map(|a| PageRef {
                addr: *a,
                size: 4096,
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        retry_done = k.swap_out(&p, &again, u64::MAX, method)?.done_pages;
        swapped_class = pagemap_counts(&k, &p, r)?.0;
        swapped_other = 0;
        for o in layout.regions.iter().filter(|o| o.class != class) {
            swapped_other += pagemap_counts(&k, &p, o)?.0;
        }
    }
    let refused_ok = !outside || rep.failed.get(&FailReason::OutsideVma) == Some(&1);
    // A page still in a CPU's LRU-add batch (at most FOLIO_BATCH_SIZE = 31 per CPU) cannot
    // be isolated until that CPU drains its batch; anything beyond that is a failure.
    let held = expect - swapped_class.min(expect);
    let ncpu = k.nr_cpus()? as u64;
    let ok = rep.done_pages == expect
        && held <= 31 * ncpu
        && swapped_class <= expect
        && swapped_other == 0
        && refused_ok;
    Ok((
        ok,
        format!(
            "method={} class={class} requested={} done={} expected={expect} swapped_first={first_pass} retried={} retry_done={retry_done} swapped={swapped_class} not_reclaimed={held} swapped_other={swapped_other} ms={ms:.1}{}",
            rep.method,
            rep.requested_pages,
            rep.done_pages,
            missed.len(),
            reasons(&rep)
        ),
    ))
}

fn migrate(path: &Path, class: &str, to: u32, quota: u64) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let pages = layout.pages(class)?;
    let quota_pages = usize::try_from(quota / layout.page_size)?.min(pages.len());
    let before: Vec<u64> = pages.iter().map(|p| p.addr).collect();
    let nodes_before = k.page_nodes(&p, &before)?;
    let already = nodes_before.iter().filter(|n| **n == Ok(to)).count();
    let t = Instant::now();
    let rep = k.migrate(&p, &pages, to, quota)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!("migrate: {rep} in {ms:.1} ms ({already} pages were on node {to} before)");
    let nodes = k.page_nodes(&p, &before)?;
    let in_quota = nodes[..quota_pages]
        .iter()
        .filter(|n| **n == Ok(to))
        .count() as u64;
    let beyond = nodes[quota_pages..]
        .iter()
        .filter(|n| **n == Ok(to))
        .count() as u64;
    let mut other_on_to = 0u64;
    for r in layout.regions.iter().filter(|r| r.class != class) {
        let addrs: Vec<u64> = (r.start..r.end)
            .step_by(usize::try_from(layout.page_size)?)
            .collect();
        other_on_to += k
            .page_nodes(&p, &addrs)?
            .iter()
            .filter(|n| **n == Ok(to))
            .count() as u64;
    }
    // move_pages reports per page; a few pages may be busy (reported, not assumed moved)
    let ok = in_quota == rep.done_pages
        && beyond == 0
        && other_on_to == 0
        && already == 0
        && rep.done_pages as f64 >= 0.95 * quota_pages as f64;
    Ok((
        ok,
        format!(
            "to={to} requested={} quota_pages={quota_pages} done={} on_node={in_quota} beyond_quota_on_node={beyond} other_on_node={other_on_to} ms={ms:.1}{}",
            rep.requested_pages,
            rep.done_pages,
            reasons(&rep)
        ),
    ))
}

fn spawn_sleeper() -> anyhow::Result<std::process::Child> {
    std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .context("spawning `sleep 600`")
}

fn recycled_pid() -> Outcome {
    let k = LinuxKernel::default();
    let mut old = spawn_sleeper()?;
    let pid = old.id();
    let h = k.open_process(pid)?;
    h.check().context("fresh handle fails its check")?;
    let addr = k
        .vmas(&h, &VmaFilter::default())?
        .iter()
        .find(|v| v.is_anonymous())
        .map(|v| v.start)
        .context("no anonymous VMA in the sleeper")?;
    old.kill()?;
    old.wait()?;
    let gone_after_exit = h.check().is_err_and(|e| e.is_gone());
    // reuse the pid: ns_last_pid = pid - 1, then fork
    let mut new = None;
    for _ in 0..10 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
            .context("writing /proc/sys/kernel/ns_last_pid")?;
        let mut c = spawn_sleeper()?;
        if c.id() == pid {
            new = Some(c);
            break;
        }
        c.kill()?;
        c.wait()?;
    }
    let Some(mut new) = new else {
        return Ok((false, format!("reason=pid-not-reused pid={pid}")));
    };
    let check = h.check();
    let how = match &check {
        Err(etmem_kernel::ProcessError::Gone { .. }) => "gone",
        Err(etmem_kernel::ProcessError::Recycled { .. }) => "recycled",
        Err(_) => "other-error",
        Ok(()) => "accepted",
    };
    let page = [PageRef { addr, size: 4096 }];
    let swap = k.swap_out(&h, &page, u64::MAX, SwapMethod::Pageout);
    let mig = k.migrate(&h, &page, 0, u64::MAX);
    let vmas = k.vmas(&h, &VmaFilter::default());
    let refused = [
        swap.as_ref().err().is_some_and(|e| e.is_gone()),
        mig.as_ref().err().is_some_and(|e| e.is_gone()),
        vmas.as_ref().err().is_some_and(|e| e.is_gone()),
    ];
    eprintln!(
        "recycled-pid: pid {pid} reused; old handle check: {check:?}; swap {swap:?}; migrate {mig:?}"
    );
    // the new process itself is fine with a new handle
    let fresh_ok = k.open_process(pid).and_then(|h2| h2.check()).is_ok();
    new.kill()?;
    new.wait()?;
    let nrefused = refused.iter().filter(|r| **r).count();
    let ok = gone_after_exit && check.is_err() && nrefused == 3 && fresh_ok;
    Ok((
        ok,
        format!(
            "pid={pid} reused=1 gone_after_exit={} old_handle={how} refused={nrefused}/3 fresh_handle_ok={}",
            u8::from(gone_after_exit),
            u8::from(fresh_ok)
        ),
    ))
}

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

fn bench_raw(path: &Path, passes: u32, window: Duration) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let vmas = k.vmas(
        &p,
        &VmaFilter {
            anon_only: true,
            vm_flags: vec![],
        },
    )?;
    let tracked: u64 = vmas.iter().map(|v| v.end - v.start).sum();
    let map = AccessMap::new(&vmas, k.page_sizes());
    let mut start = Spent::default();
    let mut scan = Spent::default();
    let mut act = Spent::default();
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
    // (cold ranges, regions of the last pass, (bytes advised, calls, ranges refused))
    type Raw = (Vec<(u64, u64)>, usize, (u64, u64, u64));
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
        Ok((cold, nr_regions, advised))
    })();
    let stopped = etmem_kernel::Tracker::stop(&mut tracker);
    let (cold, nr_regions, (bytes, calls, refused)) = r?;
    stopped?;
    let (start_ms, start_cpu) = start.ms();
    let (scan_ms, scan_cpu) = scan.ms();
    let (act_ms, act_cpu) = act.ms();
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
            "tracked_kib={} passes={passes} regions={nr_regions} start_ms={start_ms:.1} start_cpu_ms={start_cpu:.1} scan_ms={scan_ms:.1} scan_cpu_ms={scan_cpu:.1} act_ms={act_ms:.1} act_cpu_ms={act_cpu:.1} act_pages={} act_ranges={} act_calls={calls} act_refused_ranges={refused} cold_covered_pct={:.1}",
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
