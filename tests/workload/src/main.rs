//! `etmem-workload`: maps hot, warm and cold regions, touches every page once, then
//! touches hot every period and warm every N periods, never cold. Writes its layout as
//! JSON and prints a throughput line on SIGUSR1 and at exit (SIGTERM, SIGINT or
//! `--duration`).
//!
//! It only ever touches its own memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use etmem_workload::layout::{Access, Class, Layout};
use etmem_workload::mem::Memory;
use etmem_workload::report::{self, Counters};
use etmem_workload::size::parse_size;

#[derive(Debug, Parser)]
#[command(
    name = "etmem-workload",
    version,
    about = "A workload with known hot, warm and cold memory"
)]
struct Cli {
    /// Size of the hot region (touched every period), e.g. 64M.
    #[arg(long, value_parser = parse_size, default_value = "64M")]
    hot: u64,
    /// Size of the warm region (touched every --warm-every periods).
    #[arg(long, value_parser = parse_size, default_value = "32M")]
    warm: u64,
    /// Size of the cold region (touched once, at start).
    #[arg(long, value_parser = parse_size, default_value = "128M")]
    cold: u64,
    /// Bind every region to this NUMA node.
    #[arg(long)]
    node: Option<u32>,
    /// Use 2 MiB hugetlbfs pages (they must be reserved beforehand).
    #[arg(long)]
    hugetlb: bool,
    /// Milliseconds between two touches of the hot region; 0 touches back to back.
    #[arg(long, default_value_t = 100)]
    period_ms: u64,
    /// Touch the warm region every this many periods.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    warm_every: u64,
    /// What a touch does to a page.
    #[arg(long, value_enum, default_value_t = Access::Rw)]
    access: Access,
    /// Write the layout (JSON) here once every page is present.
    #[arg(long)]
    layout: Option<PathBuf>,
    /// Lock the process's own memory (stack, heap, libraries) so that only the regions
    /// can be swapped: every major fault then is a region page read back from swap.
    #[arg(long)]
    lock_rest: bool,
    /// Exit after this many seconds (default: run until SIGTERM or SIGINT).
    #[arg(long)]
    duration: Option<f64>,
}

fn write_layout(path: &Path, layout: &Layout) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, layout.to_json() + "\n")
        .with_context(|| format!("writing layout file `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming `{}` to `{}`", tmp.display(), path.display()))
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("etmem-workload: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let pid = std::process::id();
    let stop = Arc::new(AtomicBool::new(false));
    let usr1 = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1))
        .context("installing the SIGUSR1 handler")?;

    let mem = Memory::map(
        &[
            (Class::Hot, cli.hot),
            (Class::Warm, cli.warm),
            (Class::Cold, cli.cold),
        ],
        cli.hugetlb,
        cli.node,
    )?;
    let populated = mem.populate();
    if cli.lock_rest {
        mem.lock_the_rest()
            .context("locking the process's own memory")?;
    }
    let layout = Layout {
        pid,
        page_size: mem.page_size() as u64,
        hugetlb: cli.hugetlb,
        node: cli.node,
        access: cli.access,
        period_ms: cli.period_ms,
        warm_every: cli.warm_every,
        regions: mem.layout(),
    };
    if let Some(path) = &cli.layout {
        write_layout(path, &layout)?;
    }
    println!(
        "WORKLOAD ready pid={pid} page_size={} pages={populated}",
        mem.page_size()
    );

    let hot = mem
        .regions()
        .iter()
        .find(|r| r.class == Class::Hot)
        .copied();
    let warm = mem
        .regions()
        .iter()
        .find(|r| r.class == Class::Warm)
        .copied();
    let period = Duration::from_millis(cli.period_ms);
    let deadline = cli.duration.map(Duration::from_secs_f64);
    let start = Instant::now();
    let mut now = Counters::default();
    let mut prev = Counters::default();
    let mut sink = 0u64;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        if let Some(r) = &hot {
            let (n, s) = mem.touch(r, cli.access);
            now.touches += n;
            sink = sink.wrapping_add(s);
        }
        if let Some(r) = &warm
            && now.periods % cli.warm_every == 0
        {
            let (n, s) = mem.touch(r, cli.access);
            now.touches += n;
            sink = sink.wrapping_add(s);
        }
        let t1 = Instant::now();
        now.busy += t1 - t0;
        now.periods += 1;
        next += period;
        if t1 > next && !period.is_zero() {
            now.late += 1;
            next = t1;
        }
        // Sleep in short steps so signals are answered within 20 ms.
        loop {
            let t = Instant::now();
            now.elapsed = t - start;
            if usr1.swap(false, Ordering::Relaxed) {
                println!("{}", report::line("usr1", pid, &now, &prev));
                prev = now;
            }
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| now.elapsed >= d) {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            if t >= next {
                break;
            }
            std::thread::sleep((next - t).min(Duration::from_millis(20)));
        }
    }
    now.elapsed = start.elapsed();
    println!("{}", report::line("exit", pid, &now, &prev));
    std::hint::black_box(sink);
    Ok(())
}
