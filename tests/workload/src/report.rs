//! Throughput counters and the one-line report the workload prints on SIGUSR1 and at exit.
//!
//! Pure: counters in, a line of `key=value` out. Timing comes from the caller.

use std::time::Duration;

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Periods completed.
    pub periods: u64,
    /// Page touches (hot and warm) done by the schedule.
    pub touches: u64,
    /// Time spent touching (excludes sleeping).
    pub busy: Duration,
    /// Wall time since the schedule started.
    pub elapsed: Duration,
    /// Periods whose touches overran the period.
    pub late: u64,
}

fn rate(n: u64, d: Duration) -> u64 {
    let s = d.as_secs_f64();
    if s > 0.0 { (n as f64 / s) as u64 } else { 0 }
}

/// `WORKLOAD report=<why> pid=.. periods=.. touches=.. elapsed_ms=.. touches_per_sec=..
/// busy_ms=.. busy_touches_per_sec=.. late=.. win_touches=.. win_elapsed_ms=..
/// win_touches_per_sec=.. win_busy_touches_per_sec=..`, where `win_` is since the previous
/// report. `busy_touches_per_sec` is touches per second of touching time: the figure to
/// compare when measuring how much slower memory got.
pub fn line(why: &str, pid: u32, now: &Counters, prev: &Counters) -> String {
    let wt = now.touches - prev.touches;
    let we = now.elapsed.saturating_sub(prev.elapsed);
    let wb = now.busy.saturating_sub(prev.busy);
    format!(
        "WORKLOAD report={why} pid={pid} periods={} touches={} elapsed_ms={} touches_per_sec={} \
         busy_ms={} busy_touches_per_sec={} late={} win_touches={wt} win_elapsed_ms={} \
         win_touches_per_sec={} win_busy_touches_per_sec={}",
        now.periods,
        now.touches,
        now.elapsed.as_millis(),
        rate(now.touches, now.elapsed),
        now.busy.as_millis(),
        rate(now.touches, now.busy),
        now.late,
        we.as_millis(),
        rate(wt, we),
        rate(wt, wb),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_totals_and_window() {
        let prev = Counters {
            periods: 10,
            touches: 1000,
            busy: Duration::from_millis(100),
            elapsed: Duration::from_secs(1),
            late: 0,
        };
        let now = Counters {
            periods: 30,
            touches: 5000,
            busy: Duration::from_millis(500),
            elapsed: Duration::from_secs(3),
            late: 2,
        };
        let l = line("usr1", 7, &now, &prev);
        assert!(
            l.starts_with("WORKLOAD report=usr1 pid=7 periods=30 touches=5000 elapsed_ms=3000 ")
        );
        assert!(l.contains(" touches_per_sec=1666 "), "{l}");
        assert!(l.contains(" busy_touches_per_sec=10000 "), "{l}");
        assert!(l.contains(" late=2 "), "{l}");
        assert!(
            l.contains(" win_touches=4000 win_elapsed_ms=2000 win_touches_per_sec=2000 "),
            "{l}"
        );
        assert!(l.ends_with(" win_busy_touches_per_sec=10000"), "{l}");
    }

    #[test]
    fn zero_time_gives_zero_rate() {
        let z = Counters::default();
        let l = line("exit", 1, &z, &z);
        assert!(l.contains(" touches_per_sec=0 "), "{l}");
    }
}
