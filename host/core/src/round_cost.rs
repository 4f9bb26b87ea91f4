//! What one task's round costs ([`RoundCost`]): memory tracked, wall and thread CPU time
//! of the scan (by part), of the plan and of the actions, and the [`Stopwatch`] that
//! measures a piece of work on one thread. The scheduler fills it in and logs it at the
//! end of a round. It only reads the clock and `/proc/thread-self/schedstat`; measuring
//! must never change what a round does.

use std::time::{Duration, Instant};

/// CPU time this thread has run so far (`/proc/thread-self/schedstat`, nanoseconds);
/// `None` where the kernel does not keep it (no CONFIG_SCHED_INFO).
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = s.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall and thread CPU time of a piece of work on one thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Stopwatch {
    pub(crate) fn start() -> Stopwatch {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu(),
        }
    }

    /// (wall, CPU) since `start`, on the same thread.
    pub(crate) fn stop(self) -> (Duration, Option<Duration>) {
        let cpu = match (self.cpu, thread_cpu()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        (self.wall.elapsed(), cpu)
    }
}

/// Sums CPU times; unknown if any part is.
pub(crate) fn add_cpu(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    Some(a? + b?)
}

/// What one task's round cost, logged at info when the round ends. Wall times leave out
/// the waits (`sleep`); CPU times are those of the threads that did the work (the kernel's
/// own threads, e.g. a kdamond, are not in them).
#[derive(Debug, Clone)]
pub(crate) struct RoundCost {
    /// processes scanned
    pub(crate) pids: usize,
    /// bytes of the VMAs scanned
    pub(crate) tracked_bytes: u64,
    /// opening the processes and their VMA lists, passes, scan results
    pub(crate) scan: Duration,
    pub(crate) scan_cpu: Option<Duration>,
    /// the scan's CPU by part: [`ScanPart`] order
    pub(crate) scan_parts_cpu: [Option<Duration>; 3],
    /// the engine's plan
    pub(crate) plan: Duration,
    /// carrying out the actions
    pub(crate) act: Duration,
    pub(crate) act_cpu: Option<Duration>,
    /// pages the kernel accepted
    pub(crate) act_pages: u64,
    /// what the actions moved (or, in a dry run, would have moved)
    pub(crate) moved: Moved,
}

/// Bytes an engine's actions moved in a round: swapped out, and migrated per node. In a
/// dry run ([`Moved::dry_run`]) what they would have moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Moved {
    /// the project is a dry run: nothing was moved
    pub dry_run: bool,
    /// bytes swapped out
    pub swap_bytes: u64,
    /// bytes migrated, per destination node
    pub migrate_bytes: std::collections::BTreeMap<u32, u64>,
}

impl Moved {
    /// Adds `other`'s bytes.
    pub fn add(&mut self, other: &Moved) {
        self.swap_bytes += other.swap_bytes;
        for (node, b) in &other.migrate_bytes {
            *self.migrate_bytes.entry(*node).or_default() += b;
        }
    }
}

impl Moved {
    /// The amounts alone: `swap out 12.0 MiB, node 1 3.5 MiB` (KiB under 1 MiB).
    pub fn amounts(&self) -> String {
        let size = |b: u64| {
            if b < 1 << 20 {
                format!("{} KiB", b / 1024)
            } else {
                format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
            }
        };
        let mut out = format!("swap out {}", size(self.swap_bytes));
        for (node, b) in &self.migrate_bytes {
            out.push_str(&format!(", node {node} {}", size(*b)));
        }
        out
    }
}

impl std::fmt::Display for Moved {
    /// `moved: ` and the [amounts](Moved::amounts), or `dry run, would move: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.dry_run {
            "dry run, would move"
        } else {
            "moved"
        };
        write!(f, "{what}: {}", self.amounts())
    }
}

impl Default for RoundCost {
    fn default() -> Self {
        RoundCost {
            pids: 0,
            tracked_bytes: 0,
            scan: Duration::ZERO,
            scan_cpu: Some(Duration::ZERO),
            scan_parts_cpu: [Some(Duration::ZERO); 3],
            plan: Duration::ZERO,
            act: Duration::ZERO,
            act_cpu: Some(Duration::ZERO),
            act_pages: 0,
            moved: Moved::default(),
        }
    }
}

/// The parts of a scan, for the round's cost line.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScanPart {
    /// finding and opening the processes, their VMA lists, starting trackers
    Prepare = 0,
    /// the tracker passes (without the sleeps)
    Passes = 1,
    /// turning the access maps into scan results
    Results = 2,
}

impl RoundCost {
    pub(crate) fn add_scan(&mut self, part: ScanPart, (wall, cpu): (Duration, Option<Duration>)) {
        self.scan += wall;
        self.scan_cpu = add_cpu(self.scan_cpu, cpu);
        let slot = &mut self.scan_parts_cpu[part as usize];
        *slot = add_cpu(*slot, cpu);
    }
}

impl std::fmt::Display for RoundCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let cpu = |d: Option<Duration>| d.map_or("?".to_string(), |d| format!("{:.1}", ms(d)));
        write!(
            f,
            "tracked {} KiB in {} pid(s), scan {:.1} ms (cpu {} ms), plan {:.1} ms, act {:.1} ms (cpu {} ms, {} page(s)); {}; scan cpu: prepare {} ms, passes {} ms, results {} ms",
            self.tracked_bytes / 1024,
            self.pids,
            ms(self.scan),
            cpu(self.scan_cpu),
            ms(self.plan),
            ms(self.act),
            cpu(self.act_cpu),
            self.act_pages,
            self.moved,
            cpu(self.scan_parts_cpu[ScanPart::Prepare as usize]),
            cpu(self.scan_parts_cpu[ScanPart::Passes as usize]),
            cpu(self.scan_parts_cpu[ScanPart::Results as usize]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_counts_this_threads_work_only() {
        let Some(before) = thread_cpu() else {
            // a kernel without CONFIG_SCHED_INFO: the log says `cpu ?`
            return;
        };
        let sw = Stopwatch::start();
        let mut x = 0u64;
        while sw.wall.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let idle = Stopwatch::start();
        std::thread::sleep(Duration::from_millis(30));
        let (idle_wall, idle_cpu) = idle.stop();
        let (_, busy_cpu) = sw.stop();
        let busy = busy_cpu.expect("schedstat read once, readable again");
        assert!(thread_cpu().expect("schedstat") >= before + busy);
        assert!(busy >= Duration::from_millis(10), "busy loop cpu {busy:?}");
        assert!(idle_wall >= Duration::from_millis(30));
        assert!(
            idle_cpu.expect("schedstat") < Duration::from_millis(10),
            "a sleeping thread used {idle_cpu:?}"
        );
    }

    #[test]
    fn round_cost_line() {
        let c = RoundCost {
            pids: 2,
            tracked_bytes: 128 << 20,
            scan: Duration::from_micros(12_345),
            scan_cpu: Some(Duration::from_micros(2_500)),
            scan_parts_cpu: [
                Some(Duration::from_micros(500)),
                Some(Duration::from_millis(2)),
                None,
            ],
            plan: Duration::from_millis(3),
            act: Duration::from_millis(40),
            act_cpu: None,
            act_pages: 24_576,
            moved: Moved {
                dry_run: false,
                swap_bytes: 64 << 20,
                migrate_bytes: [(1, 32 << 20)].into_iter().collect(),
            },
        };
        assert_eq!(
            c.to_string(),
            "tracked 131072 KiB in 2 pid(s), scan 12.3 ms (cpu 2.5 ms), plan 3.0 ms, \
             act 40.0 ms (cpu ? ms, 24576 page(s)); moved: swap out 64.0 MiB, node 1 32.0 MiB; \
             scan cpu: prepare 0.5 ms, passes 2.0 ms, results ? ms"
        );
        let dry = Moved {
            dry_run: true,
            swap_bytes: 3 << 19,
            ..Moved::default()
        };
        assert_eq!(dry.to_string(), "dry run, would move: swap out 1.5 MiB");
        let mut d = RoundCost::default();
        d.add_scan(
            ScanPart::Prepare,
            (Duration::from_millis(1), Some(Duration::from_millis(1))),
        );
        d.add_scan(ScanPart::Passes, (Duration::from_millis(2), None));
        assert_eq!(d.scan, Duration::from_millis(3));
        assert_eq!(d.scan_cpu, None, "one unknown part makes the sum unknown");
        assert_eq!(d.scan_parts_cpu[0], Some(Duration::from_millis(1)));
        assert_eq!(d.scan_parts_cpu[1], None);
        assert_eq!(d.scan_parts_cpu[2], Some(Duration::ZERO));
    }
}
