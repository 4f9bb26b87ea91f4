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
//! The verdict is the median rate of the `B` windows over the median rate of the `A`
//! windows. Even per vCPU-second a window now and then runs 25-35 % slow with nothing of
//! the thing measured running (the lab's workload alone: 41-67 M touches per vCPU-second
//! over 14 windows, its vCPU thread at 100 % of a host CPU), so a statistic must shrug off
//! a few outliers on either side: medians over interleaved windows do, and interleaving
//! spreads slow drifts over both sides alike. Each `B<i>` is also compared with the mean
//! of `A<i>` and `A<i+1>` around it, for the record: such a pair "counts" when its two `A`
//! windows agree within `agree`, and the median over the counting pairs is reported too.
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

/// The verdict over the windows.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub pairs: Vec<Pair>,
    /// Median ratio over the pairs that count; `None` when none does.
    pub pair_median: Option<f64>,
    /// Median rate of the `B` windows over median rate of the `A` windows.
    pub ratio: f64,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
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

/// The ratio of the medians, and every `B<i>` paired with `A<i>` and `A<i+1>`; `agree` is
/// the largest relative difference between the two `A` windows for the pair to count. A
/// `B<i>` without both neighbours is an error naming it.
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
    let pair_median = median(pairs.iter().filter(|p| p.counts).map(|p| p.ratio).collect());
    let rates_of = |m: &BTreeMap<u32, &Rate>| m.values().map(|r| r.per_cpu_s).collect();
    // b is not empty, and every B has its A neighbours: both medians exist
    let (Some(mb), Some(ma)) = (median(rates_of(&b)), median(rates_of(&a))) else {
        bail!("no window to take a median of");
    };
    if ma <= 0.0 {
        bail!("the windows without (A) did no work");
    }
    Ok(Judgement {
        pairs,
        pair_median,
        ratio: mb / ma,
    })
}

fn list(rates: &[Rate], prefix: char, f: impl Fn(&Rate) -> String) -> String {
    let v: Vec<String> = numbered(rates, prefix).values().map(|r| f(r)).collect();
    v.join(",")
}

/// The `key=value` summary: the ratio of the medians, the median and each pair (`~` marks
/// a pair that does not count),
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
    let (ok, check) = match min_ratio {
        None => (true, "reported"),
        Some(min) if j.ratio >= min => (true, "pass"),
        Some(_) => (false, "fail"),
    };
    let line = format!(
        "vcpu_throughput_ratio={:.3} vcpu_pair_median={} vcpu_pair_ratios={} \
         vcpu_mwork_per_cpu_s_without={} \
         vcpu_mwork_per_cpu_s_with={} vcpu_share_without={} vcpu_share_with={} \
         vcpu_busy_without={} vcpu_busy_with={} vcpu_throughput_check={check}{}",
        j.ratio,
        j.pair_median
            .map_or("na".to_string(), |r| format!("{r:.3}")),
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
    fn judge_takes_the_ratio_of_medians_which_one_slow_window_a_side_does_not_move() {
        let r = [
            rate("A1", 100.0),
            rate("B1", 97.0),
            rate("A2", 100.0),
            rate("B2", 96.0),
            rate("A3", 70.0), // a slow window without: pairs 2 and 3 do not count
            rate("B3", 98.0),
            rate("A4", 100.0),
            rate("B4", 60.0), // a slow window with, between agreeing baselines
            rate("A5", 100.0),
        ];
        let j = judge(&r, 0.05).expect("judges");
        let counts: Vec<bool> = j.pairs.iter().map(|p| p.counts).collect();
        assert_eq!(counts, vec![true, false, false, true]);
        // medians: B 96.5 (60, 96, 97, 98), A 100 (70, 100 x4)
        assert!((j.ratio - 0.965).abs() < 1e-9, "{}", j.ratio);
        // the counting pairs alone, 0.97 and 0.60, would say 0.785
        let pm = j.pair_median.expect("two pairs count");
        assert!((pm - 0.785).abs() < 1e-9, "{pm}");
        let (ok, line) = summary(&r, &j, Some(0.95));
        assert!(ok, "{line}");
        assert!(
            line.starts_with(
                "vcpu_throughput_ratio=0.965 vcpu_pair_median=0.785 \
                 vcpu_pair_ratios=0.970,1.129~,1.153~,0.600 "
            ),
            "{line}"
        );
        assert!(line.contains(" vcpu_throughput_check=pass "), "{line}");
        let (ok, line) = summary(&r, &j, Some(0.97));
        assert!(!ok && line.contains("vcpu_throughput_check=fail"), "{line}");
        let (ok, line) = summary(&r, &j, None);
        assert!(
            ok && line.contains("vcpu_throughput_check=reported"),
            "{line}"
        );
    }

    #[test]
    fn without_counting_pairs_the_medians_still_judge() {
        let r = [rate("A1", 100.0), rate("B1", 72.0), rate("A2", 50.0)];
        let j = judge(&r, 0.05).expect("judges");
        assert_eq!(j.pair_median, None);
        assert!((j.ratio - 72.0 / 75.0).abs() < 1e-9, "{}", j.ratio);
        let (ok, line) = summary(&r, &j, Some(0.95));
        assert!(ok, "{line}");
        assert!(line.contains(" vcpu_pair_median=na "), "{line}");
        let (ok, _) = summary(&r, &j, Some(0.97));
        assert!(!ok);
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
