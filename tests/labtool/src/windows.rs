//! `etmem-lab windows`: run on the HOST after a lab boot, it judges a scenario's throughput
//! windows by the host CPU time qemu gave the guest's vCPU, not by wall time.
//!
//! Under TCG the guest runs as fast as the host lets qemu's vCPU threads run, so a
//! workload's touches per wall second follow the host's load (other builds on a shared
//! 2-core machine moved them by 30-40 % between neighbouring windows). A scenario pins the
//! workload to one vCPU and marks its windows on the console; `tests/lab/run` samples every
//! vCPU thread's CPU time (`/proc/QEMU/task/TID/schedstat`) while the guest runs. Work per
//! vCPU-second is what the workload got done with the CPU it was given: host load leaves it
//! alone, while anything the guest does to the workload (page faults, TLB flushes, other
//! tasks on its vCPU) still counts against it. Time the workload spends blocked (its vCPU
//! idle in the guest: waiting on a lock, on I/O) costs no vCPU time, so the guest also
//! reports the share of the window its vCPU was busy, and the rate is scaled by it:
//! `work * busy / vcpu_seconds`, the rate the workload would have had on a host of its own.
//!
//! Inputs (both timestamped by the host with the same clock, `EPOCHREALTIME`):
//! - console lines `<t> LABWIN <scenario> <label> start`, `... end` and
//!   `... work=<n> [busy=<fraction>]` (busy: 1 - the vCPU's idle+iowait share of the window
//!   in the guest's /proc/stat, 1 when not given); labels `A<i>` are windows without the
//!   thing measured, `B<i>` with it;
//! - vCPU samples `<t> cpu0=<ns> cpu1=<ns> ...` (cumulative CPU nanoseconds per vCPU).
//!
//! Window `B<i>` is compared with the mean of `A<i>` and `A<i+1>` around it. Host load
//! changes slowly compared with a window, but not never: a pair counts only when its two
//! `A` windows agree within `agree`; the ratio is the median over the pairs that count.
//! Parsing and judging are pure; only [`windows`] reads files.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::Path;

/// One marked window of a scenario, as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub label: String,
    pub start: f64,
    pub end: f64,
    pub work: u64,
    /// The share of the window the vCPU was busy in the guest, in (0, 1].
    pub busy: f64,
}

/// Cumulative CPU seconds of one vCPU over host time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuSeries {
    points: Vec<(f64, f64)>,
}

impl CpuSeries {
    /// The vCPU's CPU seconds at host time `t`, interpolated between the samples around it;
    /// `None` outside the sampled span.
    pub fn at(&self, t: f64) -> Option<f64> {
        let i = self.points.partition_point(|&(pt, _)| pt < t);
        let (t1, c1) = *self.points.get(i)?;
        if t1 == t {
            return Some(c1);
        }
        let (t0, c0) = *self.points.get(i.checked_sub(1)?)?;
        Some(c0 + (c1 - c0) * (t - t0) / (t1 - t0))
    }
}

/// A window being read: what the console has shown of it so far.
#[derive(Debug, Default)]
struct Partial {
    start: Option<f64>,
    end: Option<f64>,
    work: Option<(u64, f64)>,
}

/// Parses the console log for `scenario`'s windows, ordered by label. Each window has three
/// lines: `start` and `end` when it starts and ends (their host timestamps are its bounds),
/// and `work=<n> [busy=<f>]` once the work done in it is known (it may come after `end`). A
/// busy share outside (0, 1] is an error. A window with
/// one of them missing, or with one twice, is an error naming the label.
pub fn parse_windows(console: &str, scenario: &str) -> anyhow::Result<Vec<Window>> {
    let mut seen: BTreeMap<String, Partial> = BTreeMap::new();
    for (n, line) in console.lines().enumerate() {
        let n = n + 1;
        let mut f = line.split_whitespace();
        let (Some(t), Some("LABWIN"), Some(s)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if s != scenario {
            continue;
        }
        let (Some(label), Some(what)) = (f.next(), f.next()) else {
            bail!("console line {n}: LABWIN without a label and start, end or work=: {line}");
        };
        let t: f64 = t
            .parse()
            .with_context(|| format!("console line {n}: timestamp `{t}`"))?;
        let w = seen.entry(label.to_string()).or_default();
        let twice = match (what, what.strip_prefix("work=")) {
            ("start", _) => w.start.replace(t).is_some(),
            ("end", _) => w.end.replace(t).is_some(),
            (_, Some(v)) => {
                let v = v
                    .parse()
                    .with_context(|| format!("console line {n}: window `{label}`: work=`{v}`"))?;
                let busy = match f.find_map(|kv| kv.strip_prefix("busy=")) {
                    None => 1.0,
                    Some(b) => match b.parse::<f64>() {
                        Ok(x) if x > 0.0 && x <= 1.0 => x,
                        _ => bail!(
                            "console line {n}: window `{label}`: busy=`{b}`, expected a share in (0, 1]"
                        ),
                    },
                };
                w.work.replace((v, busy)).is_some()
            }
            (other, None) => bail!(
                "console line {n}: window `{label}`: expected start, end or work=, found `{other}`"
            ),
        };
        if twice {
            bail!("console line {n}: window `{label}`: a second `{what}`");
        }
    }
    seen.into_iter()
        .map(|(label, w)| match (w.start, w.end, w.work) {
            (Some(start), Some(end), Some((work, busy))) if end > start => Ok(Window {
                label,
                start,
                end,
                work,
                busy,
            }),
            (Some(_), Some(_), Some(_)) => {
                bail!("window `{label}` of {scenario} ends before it starts")
            }
            (None, ..) => bail!("window `{label}` of {scenario} has no start"),
            (_, None, _) => bail!("window `{label}` of {scenario} has no end"),
            (.., None) => bail!("window `{label}` of {scenario} has no work= line"),
        })
        .collect()
}

/// Parses the host's vCPU samples for vCPU `cpu`. Lines without that vCPU (qemu not yet
/// up) are skipped; a sample that goes back in time is an error.
pub fn parse_cpu(samples: &str, cpu: u32) -> anyhow::Result<CpuSeries> {
    let key = format!("cpu{cpu}=");
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (n, line) in samples.lines().enumerate() {
        let mut f = line.split_whitespace();
        let Some(t) = f.next() else { continue };
        let Some(ns) = f.find_map(|kv| kv.strip_prefix(key.as_str())) else {
            continue;
        };
        let t: f64 = t
            .parse()
            .with_context(|| format!("vCPU sample line {}: timestamp `{t}`", n + 1))?;
        let ns: u64 = ns
            .parse()
            .with_context(|| format!("vCPU sample line {}: {key}`{ns}`", n + 1))?;
        if let Some(&(pt, _)) = points.last()
            && t <= pt
        {
            bail!("vCPU sample line {}: time {t} is not after {pt}", n + 1);
        }
        points.push((t, ns as f64 / 1e9));
    }
    Ok(CpuSeries { points })
}

/// A window's work per vCPU-second and the CPU it got.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    pub label: String,
    /// Work per CPU second of the vCPU, scaled by the window's busy share.
    pub per_cpu_s: f64,
    /// CPU seconds the vCPU got over the window, and the window's host seconds.
    pub cpu_s: f64,
    pub wall_s: f64,
    /// The window's busy share in the guest.
    pub busy: f64,
}

/// Rates of every window; a window outside the sampled span or with no CPU is an error
/// naming it.
pub fn rates(windows: &[Window], cpu: &CpuSeries) -> anyhow::Result<Vec<Rate>> {
    windows
        .iter()
        .map(|w| {
            let (Some(c0), Some(c1)) = (cpu.at(w.start), cpu.at(w.end)) else {
                bail!(
                    "window `{}` ({:.1}..{:.1}) is outside the vCPU samples",
                    w.label,
                    w.start,
                    w.end
                );
            };
            let cpu_s = c1 - c0;
            if cpu_s <= 0.0 {
                bail!("window `{}`: its vCPU got no CPU time", w.label);
            }
            Ok(Rate {
                label: w.label.clone(),
                per_cpu_s: w.work as f64 * w.busy / cpu_s,
                cpu_s,
                wall_s: w.end - w.start,
                busy: w.busy,
            })
        })
        .collect()
}

/// One `B<i>` window against the `A<i>`, `A<i+1>` around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub index: u32,
    pub ratio: f64,
    /// The two `A` windows agree within the tolerance.
    pub counts: bool,
}

/// The verdict over the pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub pairs: Vec<Pair>,
    /// Median ratio over the pairs that count; `None` when none does.
    pub ratio: Option<f64>,
}

fn numbered(rates: &[Rate], prefix: char) -> BTreeMap<u32, &Rate> {
    rates
        .iter()
        .filter_map(|r| {
            let n = r.label.strip_prefix(prefix)?.parse().ok()?;
            Some((n, r))
        })
        .collect()
}

/// Pairs every `B<i>` with `A<i>` and `A<i+1>`; `agree` is the largest relative difference
/// between the two `A` windows for the pair to count. A `B<i>` without both neighbours is
/// an error naming it.
pub fn judge(rates: &[Rate], agree: f64) -> anyhow::Result<Judgement> {
    let a = numbered(rates, 'A');
    let b = numbered(rates, 'B');
    if b.is_empty() {
        bail!(
            "no `B<i>` window (with the thing measured) among {} windows",
            rates.len()
        );
    }
    let mut pairs = Vec::new();
    for (&i, bi) in &b {
        let (Some(before), Some(after)) = (a.get(&i), a.get(&(i + 1))) else {
            bail!("window `B{i}` needs `A{i}` and `A{}` around it", i + 1);
        };
        let mean = (before.per_cpu_s + after.per_cpu_s) / 2.0;
        let diff = (before.per_cpu_s - after.per_cpu_s).abs();
        pairs.push(Pair {
            index: i,
            ratio: bi.per_cpu_s / mean,
            counts: diff / mean <= agree,
        });
    }
    let mut counted: Vec<f64> = pairs.iter().filter(|p| p.counts).map(|p| p.ratio).collect();
    counted.sort_by(f64::total_cmp);
    let ratio = match counted.len() {
        0 => None,
        n if n % 2 == 1 => Some(counted[n / 2]),
        n => Some((counted[n / 2 - 1] + counted[n / 2]) / 2.0),
    };
    Ok(Judgement { pairs, ratio })
}

fn list(rates: &[Rate], prefix: char, f: impl Fn(&Rate) -> String) -> String {
    let v: Vec<String> = numbered(rates, prefix).values().map(|r| f(r)).collect();
    v.join(",")
}

/// The `key=value` summary: the ratio, each pair (`~` marks a pair that does not count),
/// each window's work per vCPU-second (millions) and the share of the window's host time
/// the vCPU got.
pub fn summary(rates: &[Rate], j: &Judgement, min_ratio: Option<f64>) -> (bool, String) {
    let pairs: Vec<String> = j
        .pairs
        .iter()
        .map(|p| format!("{:.3}{}", p.ratio, if p.counts { "" } else { "~" }))
        .collect();
    let mega = |r: &Rate| format!("{:.2}", r.per_cpu_s / 1e6);
    let share = |r: &Rate| format!("{:.2}", r.cpu_s / r.wall_s);
    let busy = |r: &Rate| format!("{:.3}", r.busy);
    let (ok, check) = match (j.ratio, min_ratio) {
        (None, _) => (min_ratio.is_none(), "inconclusive"),
        (Some(_), None) => (true, "reported"),
        (Some(r), Some(min)) if r >= min => (true, "pass"),
        (Some(_), Some(_)) => (false, "fail"),
    };
    let line = format!(
        "vcpu_throughput_ratio={} vcpu_pair_ratios={} vcpu_mwork_per_cpu_s_without={} \
         vcpu_mwork_per_cpu_s_with={} vcpu_share_without={} vcpu_share_with={} \
         vcpu_busy_without={} vcpu_busy_with={} vcpu_throughput_check={check}{}",
        j.ratio.map_or("na".to_string(), |r| format!("{r:.3}")),
        pairs.join(","),
        list(rates, 'A', mega),
        list(rates, 'B', mega),
        list(rates, 'A', share),
        list(rates, 'B', share),
        list(rates, 'A', busy),
        list(rates, 'B', busy),
        min_ratio.map_or(String::new(), |m| format!(" vcpu_min_ratio={m}")),
    );
    (ok, line)
}

/// Reads the console log and the vCPU samples and judges `scenario`'s windows.
pub fn windows(
    console: &Path,
    samples: &Path,
    scenario: &str,
    cpu: u32,
    agree: f64,
    min_ratio: Option<f64>,
) -> anyhow::Result<(bool, String)> {
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .with_context(|| format!("reading {}", p.display()))
    };
    let w = parse_windows(&read(console)?, scenario)?;
    if w.is_empty() {
        bail!(
            "{}: no LABWIN line of scenario {scenario}",
            console.display()
        );
    }
    let series = parse_cpu(&read(samples)?, cpu)?;
    let r =
        rates(&w, &series).with_context(|| format!("vCPU {cpu} samples {}", samples.display()))?;
    let j = judge(&r, agree)?;
    Ok(summary(&r, &j, min_ratio))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(label: &str, per_cpu_s: f64) -> Rate {
        Rate {
            label: label.into(),
            per_cpu_s,
            cpu_s: 3.0,
            wall_s: 4.0,
            busy: 1.0,
        }
    }

    #[test]
    fn windows_parse_by_label_and_ignore_other_scenarios() {
        let c = "10.0 LABSTART x\n\
                 10.5 LABWIN x A1 start\n\
                 11.0 LABWIN y A1 start\n\
                 14.5 LABWIN x A1 end\n\
                 14.9 LABWIN x A1 work=400\n\
                 15.0 LABWIN x B1 start\n\
                 19.0 LABWIN x B1 end\n\
                 19.4 LABWIN x B1 work=380 busy=0.95\n\
                 19.5 LABWIN y A1 end\n";
        let w = parse_windows(c, "x").expect("parses");
        assert_eq!(
            w,
            vec![
                Window {
                    label: "A1".into(),
                    start: 10.5,
                    end: 14.5,
                    work: 400,
                    busy: 1.0,
                },
                Window {
                    label: "B1".into(),
                    start: 15.0,
                    end: 19.0,
                    work: 380,
                    busy: 0.95,
                },
            ]
        );
    }

    #[test]
    fn incomplete_or_repeated_windows_are_named() {
        let e = parse_windows("1.0 LABWIN x A1 start\n2.0 LABWIN x A1 work=3\n", "x")
            .expect_err("never ends");
        assert!(
            e.to_string().contains("`A1`") && e.to_string().contains("no end"),
            "{e}"
        );
        let e = parse_windows("1.0 LABWIN x B2 end\n1.5 LABWIN x B2 work=3\n", "x")
            .expect_err("never started");
        assert!(
            e.to_string().contains("`B2`") && e.to_string().contains("no start"),
            "{e}"
        );
        let e = parse_windows("1.0 LABWIN x B2 start\n2.0 LABWIN x B2 end\n", "x")
            .expect_err("no work");
        assert!(e.to_string().contains("work="), "{e}");
        let e = parse_windows("1.0 LABWIN x A1 start\n2.0 LABWIN x A1 start\n", "x")
            .expect_err("two starts");
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("second `start`"),
            "{e}"
        );
        let e = parse_windows("1.0 LABWIN x A1 begin\n", "x").expect_err("unknown word");
        assert!(e.to_string().contains("`begin`"), "{e}");
        for bad in ["0", "1.5", "x"] {
            let c = format!("1.0 LABWIN x A1 work=3 busy={bad}\n");
            let e = parse_windows(&c, "x").expect_err("busy out of range");
            assert!(e.to_string().contains(&format!("busy=`{bad}`")), "{e}");
        }
    }

    #[test]
    fn cpu_interpolates_and_refuses_outside_or_backwards() {
        let s = "1.0 cpu1=0\n2.0 cpu0=1000000000 cpu1=5\n4.0 cpu0=3000000000 cpu1=9\n";
        let c = parse_cpu(s, 0).expect("parses");
        assert_eq!(c.at(2.0), Some(1.0));
        assert_eq!(c.at(3.0), Some(2.0));
        assert_eq!(c.at(4.0), Some(3.0));
        assert_eq!(c.at(1.5), None);
        assert_eq!(c.at(4.5), None);
        let e = parse_cpu("2.0 cpu0=1\n2.0 cpu0=2\n", 0).expect_err("same time twice");
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn rates_divide_work_by_the_vcpu_time_of_the_window_scaled_by_busy() {
        let c = parse_cpu("0.0 cpu0=0\n10.0 cpu0=5000000000\n", 0).expect("parses");
        let w = [
            Window {
                label: "A1".into(),
                start: 2.0,
                end: 6.0,
                work: 100,
                busy: 1.0,
            },
            // blocked half the window: the vCPU time it did not use is no excuse
            Window {
                label: "B1".into(),
                start: 6.0,
                end: 10.0,
                work: 100,
                busy: 0.5,
            },
        ];
        let r = rates(&w, &c).expect("rates");
        assert!((r[0].cpu_s - 2.0).abs() < 1e-9);
        assert!((r[0].per_cpu_s - 50.0).abs() < 1e-9);
        assert!((r[1].per_cpu_s - 25.0).abs() < 1e-9);
        let late = [Window {
            label: "B1".into(),
            start: 9.0,
            end: 11.0,
            work: 1,
            busy: 1.0,
        }];
        let e = rates(&late, &c).expect_err("outside");
        assert!(e.to_string().contains("`B1`"), "{e}");
    }

    #[test]
    fn judge_takes_the_median_of_the_pairs_whose_baselines_agree() {
        let r = [
            rate("A1", 100.0),
            rate("B1", 96.0),
            rate("A2", 100.0),
            rate("B2", 50.0),
            rate("A3", 80.0), // A2 and A3 differ by 22 %: pair 2 does not count
            rate("B3", 78.0),
            rate("A4", 82.0),
            rate("B4", 80.0),
            rate("A5", 80.0),
        ];
        let j = judge(&r, 0.05).expect("judges");
        let counts: Vec<bool> = j.pairs.iter().map(|p| p.counts).collect();
        assert_eq!(counts, vec![true, false, true, true]);
        // counted ratios 0.96, 78/81 = 0.963, 80/81 = 0.988: median 0.963
        let ratio = j.ratio.expect("some pairs count");
        assert!((ratio - 78.0 / 81.0).abs() < 1e-9, "{ratio}");
        let (ok, line) = summary(&r, &j, Some(0.95));
        assert!(ok, "{line}");
        assert!(
            line.starts_with(
                "vcpu_throughput_ratio=0.963 vcpu_pair_ratios=0.960,0.556~,0.963,0.988 "
            ),
            "{line}"
        );
        assert!(line.contains(" vcpu_throughput_check=pass "), "{line}");
        let (ok, line) = summary(&r, &j, Some(0.97));
        assert!(!ok && line.contains("vcpu_throughput_check=fail"), "{line}");
    }

    #[test]
    fn no_counting_pair_is_inconclusive_and_fails_a_minimum() {
        let r = [rate("A1", 100.0), rate("B1", 99.0), rate("A2", 50.0)];
        let j = judge(&r, 0.05).expect("judges");
        assert_eq!(j.ratio, None);
        let (ok, line) = summary(&r, &j, Some(0.95));
        assert!(!ok, "{line}");
        assert!(
            line.contains("vcpu_throughput_ratio=na ") && line.contains("check=inconclusive"),
            "{line}"
        );
        let (ok, _) = summary(&r, &j, None);
        assert!(ok);
    }

    #[test]
    fn a_b_window_needs_both_neighbours() {
        let e = judge(&[rate("A1", 1.0), rate("B1", 1.0)], 0.05).expect_err("no A2");
        assert!(
            e.to_string().contains("`B1`") && e.to_string().contains("`A2`"),
            "{e}"
        );
        let e = judge(&[rate("A1", 1.0)], 0.05).expect_err("no B");
        assert!(e.to_string().contains("no `B<i>`"), "{e}");
    }
}
