//! `etmem-workload`: maps hot, warm and cold regions, touches every page once, then
//! touches hot every period and warm every N periods, never cold. Writes its layout as
//! JSON and prints a throughput line on SIGUSR1 and at exit (SIGTERM, SIGINT or
//! `--duration`).
//!
//! With `--mixed SIZE` it maps ONE mapping instead, whose hot pages (`--hot-block` bytes
//! every `--stride` bytes from `--hot-offset`) are touched every period and the rest never;
//! with `--move-after SECS` the upper half of the hot pages (address order) stops being
//! touched that long after ready.
//!
//! It only ever touches its own memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use etmem_workload::layout::{Access, Class, Layout};
use etmem_workload::mem::{Memory, base_page_size};
use etmem_workload::mixed::{MixedArgs, Pattern};
use etmem_workload::report::{self, Counters};
use etmem_workload::size::parse_size;

#[derive(Debug, Parser)]
#[command(
    name = "etmem-workload",
    version,
    about = "A workload with known hot, warm and cold memory"
)]
struct Cli {
    /// Size of the hot region (touched every period), e.g. 64M [default: 64M; with
    /// --mixed: absent or 0].
    #[arg(long, value_parser = parse_size)]
    hot: Option<u64>,
    /// Size of the warm region (touched every --warm-every periods) [default: 32M; with
    /// --mixed: absent or 0].
    #[arg(long, value_parser = parse_size)]
    warm: Option<u64>,
    /// Size of the cold region (touched once, at start) [default: 128M; with --mixed:
    /// absent or 0].
    #[arg(long, value_parser = parse_size)]
    cold: Option<u64>,
    /// Mixed mode: instead of the hot, warm and cold regions, ONE anonymous mapping of this
    /// size (one VMA, base pages) whose hot and cold pages are interleaved as
    /// --hot-block, --stride and --hot-offset say. Not with --hugetlb, nor with a nonzero
    /// --hot, --warm or --cold.
    #[arg(long, value_parser = parse_size, conflicts_with = "hugetlb")]
    mixed: Option<u64>,
    /// Mixed mode: bytes of each hot run (rounded up to the page size) [default: a quarter
    /// of --mixed].
    #[arg(long, value_parser = parse_size, requires = "mixed")]
    hot_block: Option<u64>,
    /// Mixed mode: a hot run starts every this many bytes (rounded up to the page size; at
    /// least --hot-block, at most --mixed) [default: --mixed].
    #[arg(long, value_parser = parse_size, requires = "mixed")]
    stride: Option<u64>,
    /// Mixed mode: the first hot run starts this many bytes into the mapping (rounded up to
    /// the page size; below --mixed). A page at offset o is hot iff
    /// (o + stride - hot_offset % stride) % stride < hot_block.
    #[arg(long, value_parser = parse_size, requires = "mixed", default_value = "0")]
    hot_offset: u64,
    /// Mixed mode: this many seconds after ready, the hot pages ranked n_hot/2 and above
    /// (address order) are never touched again; prints `WORKLOAD moved pid=.. t=..
    /// cooled_pages=..` then.
    #[arg(long, value_parser = parse_seconds, requires = "mixed")]
    move_after: Option<f64>,
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
    /// Every this many pages of each touched run (the first, the N+1th, ...), a touch only
    /// reads, whatever --access says: hot pages read and hot pages written side by side, as
    /// in a database's buffer pool. 0: off.
    #[arg(long, default_value_t = 0)]
    read_every: u64,
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

/// Parses a number of seconds: finite and not negative.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!(
            "seconds `{text}`: expected a number >= 0, e.g. 8 or 2.5"
        )),
    }
}

/// In mixed mode the hot, warm and cold regions are not mapped: asking for one of nonzero
/// size is an error rather than silently ignored.
fn check_mixed_alone(cli: &Cli) -> anyhow::Result<()> {
    for (name, v) in [("hot", cli.hot), ("warm", cli.warm), ("cold", cli.cold)] {
        if let Some(bytes) = v
            && bytes != 0
        {
            anyhow::bail!(
                "--{name} {bytes}: the {name} region is not mapped with --mixed; give --{name} 0 or leave it out"
            );
        }
    }
    Ok(())
}

/// Maps the memory the command line asks for.
fn map_memory(cli: &Cli) -> anyhow::Result<Memory> {
    let Some(size) = cli.mixed else {
        return Ok(Memory::map(
            &[
                (Class::Hot, cli.hot.unwrap_or(64 << 20)),
                (Class::Warm, cli.warm.unwrap_or(32 << 20)),
                (Class::Cold, cli.cold.unwrap_or(128 << 20)),
            ],
            cli.hugetlb,
            cli.node,
        )?);
    };
    check_mixed_alone(cli)?;
    let pattern = Pattern::new(
        &MixedArgs {
            size,
            hot_block: cli.hot_block,
            stride: cli.stride,
            hot_offset: cli.hot_offset,
        },
        base_page_size(),
    )?;
    let runs: Vec<(Class, u64)> = pattern
        .runs(cli.move_after.is_some())
        .iter()
        .map(|r| (r.class, r.len))
        .collect();
    Ok(Memory::map_mixed(&runs, cli.node)?)
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

    let mem = map_memory(cli)?;
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
        mixed: cli.mixed.is_some(),
        move_after: cli.move_after,
        regions: mem.layout(),
    };
    if let Some(path) = &cli.layout {
        write_layout(path, &layout)?;
    }
    println!(
        "WORKLOAD ready pid={pid} page_size={} pages={populated}",
        mem.page_size()
    );

    let cooled_pages = layout.class_pages(Class::Cooled);
    let move_after = cli.move_after.map(Duration::from_secs_f64);
    let mut moved = false;
    let period = Duration::from_millis(cli.period_ms);
    let deadline = cli.duration.map(Duration::from_secs_f64);
    let start = Instant::now();
    let mut now = Counters::default();
    let mut prev = Counters::default();
    let mut sink = 0u64;
    let mut next = start;
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let warm_due = now.periods % cli.warm_every == 0;
        for r in mem.regions() {
            let due = match r.class {
                Class::Hot => true,
                Class::Warm => warm_due,
                Class::Cooled => !moved,
                Class::Cold => false,
            };
            if due {
                let (n, s) = mem.touch(r, cli.access, cli.read_every);
                now.touches += n;
                sink = sink.wrapping_add(s);
            }
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
            if !moved && move_after.is_some_and(|m| now.elapsed >= m) {
                moved = true;
                println!(
                    "WORKLOAD moved pid={pid} t={:.2} cooled_pages={cooled_pages}",
                    now.elapsed.as_secs_f64()
                );
                std::io::stdout().flush().context("writing to stdout")?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("etmem-workload").chain(args.iter().copied()))
    }

    #[test]
    fn mixed_with_hugetlb_is_refused_by_clap() {
        let e = parse(&["--mixed", "128M", "--hugetlb"]).expect_err("conflict");
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(e.to_string().contains("--hugetlb"), "{e}");
    }

    #[test]
    fn pattern_options_need_mixed() {
        for args in [
            &["--hot-block", "2M"][..],
            &["--stride", "8M"],
            &["--hot-offset", "4K"],
            &["--move-after", "3"],
        ] {
            let e = parse(args).expect_err("requires --mixed");
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{args:?}"
            );
        }
    }

    #[test]
    fn mixed_with_a_nonzero_region_is_refused() {
        let cli = parse(&["--mixed", "128M", "--warm", "0", "--cold", "0"]).expect("parse");
        assert!(check_mixed_alone(&cli).is_ok());
        let cli = parse(&["--mixed", "128M", "--hot", "1M"]).expect("parse");
        assert_eq!(
            check_mixed_alone(&cli).expect_err("hot").to_string(),
            "--hot 1048576: the hot region is not mapped with --mixed; give --hot 0 or leave it out"
        );
    }

    #[test]
    fn the_lab_invocations_parse() {
        let cli = parse(&[
            "--mixed",
            "128M",
            "--hot-block",
            "1236K",
            "--stride",
            "5M",
            "--hot-offset",
            "700K",
            "--move-after",
            "9.5",
            "--warm",
            "0",
            "--lock-rest",
        ])
        .expect("parse");
        assert_eq!(cli.mixed, Some(128 << 20));
        assert_eq!(cli.hot_block, Some(1236 << 10));
        assert_eq!(cli.stride, Some(5 << 20));
        assert_eq!(cli.hot_offset, 700 << 10);
        assert_eq!(cli.move_after, Some(9.5));
        let cli = parse(&[]).expect("defaults");
        assert_eq!((cli.mixed, cli.hot, cli.hot_offset), (None, None, 0));
    }

    #[test]
    fn seconds_must_be_finite_and_not_negative() {
        assert_eq!(parse_seconds("8"), Ok(8.0));
        assert_eq!(parse_seconds("0.25"), Ok(0.25));
        for bad in ["-1", "nan", "inf", "soon", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        let e = parse(&["--mixed", "1M", "--move-after=-2"]).expect_err("negative");
        assert!(
            e.to_string()
                .contains("seconds `-2`: expected a number >= 0"),
            "{e}"
        );
    }
}
