//! `etmem-lab track`: track the workload with one tracker and score its cold-vs-hot
//! classification against the layout. It must not act on the workload's pages.

use crate::Outcome;
use crate::layout::{Layout, anon_vmas};
use anyhow::Context;
use etmem_kernel::{AccessMap, Kernel, LinuxKernel, TrackerChoice, TrackerKind};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The `track` subcommand's arguments, in the units the check uses.
pub struct TrackArgs {
    pub tracker: String,
    pub layout: PathBuf,
    pub rounds: u32,
    pub passes: u32,
    pub interval: Duration,
    pub warmup: Duration,
    pub min_recall: f64,
    pub min_precision: f64,
    pub damon: etmem_kernel::track::DamonAttrs,
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

pub fn track(a: &TrackArgs) -> Outcome {
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
    let vmas = anon_vmas(&k, &p)?;
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
