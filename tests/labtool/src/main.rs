//! `etmem-lab`: runs inside the kernel lab guest and drives `etmem-kernel` against a real
//! kernel, checking the result against the workload's known layout (what the kernel
//! reports back: access counts, pagemap swapped bits, page nodes).
//!
//! Each subcommand prints details to stderr and ONE summary line of `key=value` pairs to
//! stdout, and exits 0 when the check passed, 1 when it failed (`score` is a measurement:
//! 0 whenever it could read). It is a test tool: it must only ever be run in the lab guest
//! (it writes `clear_refs`, DAMON sysfs, a tracefs instance and `ns_last_pid`), except
//! `windows`, which only reads the host's lab logs.

mod bench_raw;
mod churn;
mod layout;
mod migrate;
mod pageout;
mod probe;
mod recycled_pid;
mod score;
mod track;
mod windows;

use bench_raw::{BenchRawArgs, Via, bench_raw};
use churn::{ChurnArgs, Group, churn, parse_life};
use clap::{Parser, Subcommand};
use etmem_kernel::ActionReport;
use migrate::migrate;
use pageout::pageout;
use probe::probe;
use recycled_pid::recycled_pid;
use score::score;
use std::path::PathBuf;
use std::time::Duration;
use track::{TrackArgs, track};
use windows::windows;

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
    /// How many pages of each class of the workload are in swap now (pagemap) and its major
    /// faults: `<class>_pages=N <class>_present=N <class>_swapped=N <class>_swapped_pct=P`
    /// for each class of the layout (hot, cooled, warm, cold, in that order; pages are base
    /// pages, P the percentage swapped with 3 decimals), then `majflt=N`. Always exits 0
    /// when it could read (a measurement, not a verdict).
    Score {
        /// the workload's layout JSON
        #[arg(long)]
        layout: PathBuf,
    },
    /// Take a handle, let the process exit, reuse its pid, and check every action is
    /// refused on the old handle.
    RecycledPid,
    /// The raw kernel cost of one slide round over the workload, for the round bench: a
    /// kdamond of ours (as etmemd's DAMON tracker sets it up), `passes` raw passes
    /// `window-ms` apart (the sleeps are not timed), then `process_madvise(MADV_PAGEOUT)`
    /// of the ranges every pass saw unaccessed, up to 1024 ranges per call, then
    /// `steady-passes` more passes (as the next round's scan would make, once DAMON has
    /// split its regions). A pass is what etmemd's DAMON tracker does: the regions (through
    /// the damon_aggregated tracepoint, or sysfs), then, with soft-dirty, a PAGEMAP_SCAN
    /// walk of the anonymous mappings and `4` to clear_refs. Prints wall and thread CPU
    /// milliseconds, then `via=trace|sysfs soft_dirty=0|1`.
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
        /// passes after the page-out, timed apart (`steady_*` keys)
        #[arg(long, default_value_t = 0)]
        steady_passes: u32,
        /// where a pass reads DAMON's regions: `trace` (the damon:damon_aggregated
        /// tracepoint in a tracefs instance `etmemlab-raw`: the newest complete aggregation
        /// not used yet, as etmemd does) or `sysfs` (update_schemes_tried_regions, then
        /// three files per region)
        #[arg(long, value_enum, default_value_t = Via::Trace)]
        via: Via,
        /// after the regions, each pass walks the workload's anonymous mappings with
        /// PAGEMAP_SCAN (present and soft-dirty) and writes 4 to clear_refs, as etmemd's
        /// DAMON tracker does (the default)
        #[arg(long, overrides_with = "no_soft_dirty")]
        soft_dirty: bool,
        /// no pagemap step: the regions only
        #[arg(long, overrides_with = "soft_dirty")]
        no_soft_dirty: bool,
    },
    /// Process churn for the `churn` scenario: forks short-lived children of a tracked
    /// name (`churn`), of a second tracked name that has no long-lived process (`flip`)
    /// and of an untracked name (`decoy`), each mapping the same range at the same
    /// address, filled once; each reports how much of it was in swap before it exits.
    /// Passes when no decoy had a page in swap, every child reported and every fork
    /// worked. Prints per group `<kind>_started`, `_reported`, `_swapped` (children with
    /// pages in swap), `_swap_kb`, then `pids_reused`, `decoy_on_flip_pid` (decoys that
    /// got the pid of a flip gone at most --reuse-window-s before), `fork_failed`.
    Churn {
        /// seconds of starts
        #[arg(long, default_value_t = 60)]
        secs: u64,
        /// KiB each child maps and fills
        #[arg(long, default_value_t = 1024)]
        mem_kb: u64,
        /// the file the children append their reports to
        #[arg(long)]
        report: PathBuf,
        /// the tracked name whose short-lived processes churn
        #[arg(long, default_value = "wlchurn")]
        name: String,
        /// its starts per minute
        #[arg(long, default_value_t = 1000)]
        per_min: u32,
        /// its children's life, MIN-MAX milliseconds
        #[arg(long, default_value = "200-2000", value_parser = parse_life)]
        life_ms: (u64, u64),
        /// the second tracked name, short-lived processes only
        #[arg(long, default_value = "wlflip")]
        flip_name: String,
        /// its starts per minute
        #[arg(long, default_value_t = 60)]
        flip_per_min: u32,
        /// its children's life, MIN-MAX milliseconds
        #[arg(long, default_value = "2000-8000", value_parser = parse_life)]
        flip_life_ms: (u64, u64),
        /// the untracked name
        #[arg(long, default_value = "wldecoy")]
        decoy_name: String,
        /// its starts per minute
        #[arg(long, default_value_t = 600)]
        decoy_per_min: u32,
        /// its children's life, MIN-MAX milliseconds
        #[arg(long, default_value = "500-3000", value_parser = parse_life)]
        decoy_life_ms: (u64, u64),
        /// seconds after a flip's exit within which a decoy on its pid counts
        #[arg(long, default_value_t = 10)]
        reuse_window_s: u64,
    },
    /// On the HOST, after a lab boot: a scenario's throughput windows (`LABWIN` console
    /// lines) judged by work per CPU second of the vCPU the workload was pinned to, from
    /// the vCPU samples `tests/lab/run` takes. The verdict: the median rate of the B<i> windows over that of the A<i>.
    Windows {
        /// the timestamped console log
        #[arg(long)]
        console: PathBuf,
        /// the timestamped vCPU samples
        #[arg(long)]
        vcpu: PathBuf,
        /// the scenario whose windows to judge
        #[arg(long)]
        scenario: String,
        /// the vCPU the workload was pinned to
        #[arg(long, default_value_t = 0)]
        cpu: u32,
        /// (reported pairs) B<i> against A<i>, A<i+1> counts when those differ by at most this fraction
        #[arg(long, default_value_t = 0.05)]
        agree: f64,
        /// fail when the ratio of the medians is below this
        #[arg(long)]
        min_ratio: Option<f64>,
    },
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
        Cmd::Score { layout } => score(&layout),
        Cmd::RecycledPid => recycled_pid(),
        Cmd::BenchRaw {
            layout,
            passes,
            window_ms,
            steady_passes,
            via,
            soft_dirty: _,
            no_soft_dirty,
        } => bench_raw(&BenchRawArgs {
            layout,
            passes,
            window: Duration::from_millis(window_ms),
            steady_passes,
            via,
            soft_dirty: !no_soft_dirty,
        }),
        Cmd::Churn {
            secs,
            mem_kb,
            report,
            name,
            per_min,
            life_ms,
            flip_name,
            flip_per_min,
            flip_life_ms,
            decoy_name,
            decoy_per_min,
            decoy_life_ms,
            reuse_window_s,
        } => churn(&ChurnArgs {
            secs,
            groups: vec![
                Group {
                    kind: "churn",
                    name,
                    per_min,
                    life_ms,
                },
                Group {
                    kind: "flip",
                    name: flip_name,
                    per_min: flip_per_min,
                    life_ms: flip_life_ms,
                },
                Group {
                    kind: "decoy",
                    name: decoy_name,
                    per_min: decoy_per_min,
                    life_ms: decoy_life_ms,
                },
            ],
            mem_kb,
            report,
            reuse_window: Duration::from_secs(reuse_window_s),
        }),
        Cmd::Windows {
            console,
            vcpu,
            scenario,
            cpu,
            agree,
            min_ratio,
        } => windows(&console, &vcpu, &scenario, cpu, agree, min_ratio),
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

/// The failure reasons of an action report as ` failed_<why>=<n>` parts of a summary line.
fn reasons(rep: &ActionReport) -> String {
    rep.failed
        .iter()
        .map(|(why, n)| format!(" failed_{why}={n}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Cli, Cmd, Via};
    use clap::Parser;

    /// `(via, soft-dirty on)` of a bench-raw command line.
    fn bench_raw(args: &[&str]) -> (Via, bool) {
        let mut argv = vec!["etmem-lab", "bench-raw", "--layout", "l.json"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("parses").cmd {
            Cmd::BenchRaw {
                via, no_soft_dirty, ..
            } => (via, !no_soft_dirty),
            other => panic!("not bench-raw: {other:?}"),
        }
    }

    #[test]
    fn bench_raw_defaults_to_the_trace_and_soft_dirty_and_the_last_flag_wins() {
        assert_eq!(bench_raw(&[]), (Via::Trace, true));
        assert_eq!(
            bench_raw(&["--via", "sysfs", "--no-soft-dirty"]),
            (Via::Sysfs, false)
        );
        assert_eq!(
            bench_raw(&["--no-soft-dirty", "--soft-dirty"]),
            (Via::Trace, true)
        );
        assert_eq!(
            bench_raw(&["--soft-dirty", "--no-soft-dirty"]),
            (Via::Trace, false)
        );
        let err = Cli::try_parse_from(["etmem-lab", "bench-raw", "--layout", "l", "--via", "x"]);
        assert!(err.is_err(), "an unknown --via is refused");
    }
}
