//! The texts of the private commands `showhostpages` and `showtaskpages` (spec §5.3), byte
//! for byte as C etmem prints them, and the `asctime` text of their `[time] ` prefix.
//!
//! Their JSON forms (`<cmd> -o json`, our addition) carry the same figures: `time` (seconds
//! since the epoch, `null` without a clock or before any round) and one object per node.
//!
//! Pure formatting: it must not read the clock (the time comes with the statistics).

use crate::Stats;
use crate::policy::NodeStat;
use etmem_sdk::command::json_string;
use std::fmt::Write;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `asctime` of `secs` since the epoch, in UTC, without the trailing newline:
/// `Thu Jan  1 00:00:00 1970`.
pub fn asctime_utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {}{:3} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `[<asctime>] ` of the last statistics (the epoch before any round), or nothing
/// without a clock.
fn prefix(stats: &Stats, out: &mut String) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = write!(out, "[{}] ", asctime_utc(stats.time.unwrap_or(0)));
    }
    #[cfg(target_arch = "wasm32")]
    {
        if let Some(t) = stats.time {
            let _ = write!(out, "[{}] ", asctime_utc(t));
        }
    }
}

/// C prints the columns with `%10d` of an int.
fn int(kb: u64) -> i64 {
    i64::try_from(kb).unwrap_or(i64::MAX)
}

/// `showhostpages`: per node, total (huge pages configured), used, hot and cold KiB.
pub fn host_pages(stats: &Stats) -> String {
    let mut out = String::new();
    prefix(stats, &mut out);
    out.push_str("host pages info (KB):\n");
    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>10} {:>10}",
        "node", "total", "used", "hot", "cold"
    );
    let host = stats.host();
    for n in &stats.nodes {
        let s = host.get(n.node as usize).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:5} {:10} {:10} {:10} {:10}",
            n.node,
            int(n.huge_total_kb),
            int(s.hot_kb + s.cold_kb),
            int(s.hot_kb),
            int(s.cold_kb)
        );
    }
    out
}

/// `showtaskpages`: the task's first pid, per node, used, hot and cold KiB.
pub fn task_pages(stats: &Stats, pid: u32, per_node: &[NodeStat]) -> String {
    let mut out = String::new();
    prefix(stats, &mut out);
    let _ = writeln!(out, "task {pid} pages info (KB):");
    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>10}",
        "node", "used", "hot", "cold"
    );
    for n in &stats.nodes {
        let s = per_node.get(n.node as usize).copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:5} {:10} {:10} {:10}",
            n.node,
            int(s.hot_kb + s.cold_kb),
            int(s.hot_kb),
            int(s.cold_kb)
        );
    }
    out
}

fn json_time(stats: &Stats) -> String {
    stats
        .time
        .map_or_else(|| "null".to_string(), |t| t.to_string())
}

/// `showhostpages -o json`: `{"time":T,"nodes":[{"node":N,"total_kb":..,"used_kb":..,
/// "hot_kb":..,"cold_kb":..}]}` on one line, the figures of [`host_pages`].
pub fn host_pages_json(stats: &Stats) -> String {
    let host = stats.host();
    let nodes: Vec<String> = stats
        .nodes
        .iter()
        .map(|n| {
            let s = host.get(n.node as usize).copied().unwrap_or_default();
            format!(
                r#"{{"node":{},"total_kb":{},"used_kb":{},"hot_kb":{},"cold_kb":{}}}"#,
                n.node,
                n.huge_total_kb,
                s.hot_kb + s.cold_kb,
                s.hot_kb,
                s.cold_kb
            )
        })
        .collect();
    format!(
        "{{\"time\":{},\"nodes\":[{}]}}\n",
        json_time(stats),
        nodes.join(",")
    )
}

/// `showtaskpages -o json`: `{"time":T,"task":NAME,"pid":P,"nodes":[{"node":N,
/// "used_kb":..,"hot_kb":..,"cold_kb":..}]}` on one line, the figures of [`task_pages`].
pub fn task_pages_json(stats: &Stats, task: &str, pid: u32, per_node: &[NodeStat]) -> String {
    let nodes: Vec<String> = stats
        .nodes
        .iter()
        .map(|n| {
            let s = per_node.get(n.node as usize).copied().unwrap_or_default();
            format!(
                r#"{{"node":{},"used_kb":{},"hot_kb":{},"cold_kb":{}}}"#,
                n.node,
                s.hot_kb + s.cold_kb,
                s.hot_kb,
                s.cold_kb
            )
        })
        .collect();
    format!(
        "{{\"time\":{},\"task\":{},\"pid\":{pid},\"nodes\":[{}]}}\n",
        json_time(stats),
        json_string(task),
        nodes.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_sdk::NodeMemory;
    use std::collections::BTreeMap;

    #[test]
    fn asctime_matches_c_layout() {
        assert_eq!(asctime_utc(0), "Thu Jan  1 00:00:00 1970");
        // 2000-02-29 12:34:56 UTC (a leap day), a Tuesday.
        assert_eq!(asctime_utc(951_827_696), "Tue Feb 29 12:34:56 2000");
        // 2025-12-31 23:59:59 UTC, a Wednesday.
        assert_eq!(asctime_utc(1_767_225_599), "Wed Dec 31 23:59:59 2025");
        assert_eq!(asctime_utc(1_767_225_600), "Thu Jan  1 00:00:00 2026");
    }

    fn stats() -> Stats {
        let node = |node, huge_total_kb| NodeMemory {
            node,
            huge_total_kb,
            ..NodeMemory::default()
        };
        let mut tasks = BTreeMap::new();
        tasks.insert(
            "vm1".to_string(),
            vec![(
                4242,
                vec![
                    NodeStat {
                        hot_kb: 8192,
                        cold_kb: 2048,
                    },
                    NodeStat {
                        hot_kb: 0,
                        cold_kb: 4096,
                    },
                ],
            )],
        );
        tasks.insert(
            "vm2".to_string(),
            vec![(
                77,
                vec![NodeStat {
                    hot_kb: 2048,
                    cold_kb: 0,
                }],
            )],
        );
        Stats {
            time: Some(951_827_696),
            nodes: vec![node(0, 1_048_576), node(1, 524_288)],
            tasks,
        }
    }

    #[test]
    fn host_pages_text() {
        assert_eq!(
            host_pages(&stats()),
            "[Tue Feb 29 12:34:56 2000] host pages info (KB):\n\
             \x20node      total       used        hot       cold\n\
             \x20   0    1048576      12288      10240       2048\n\
             \x20   1     524288       4096          0       4096\n"
        );
    }

    #[test]
    fn task_pages_text() {
        let s = stats();
        let per_node = &s.tasks["vm1"][0].1;
        assert_eq!(
            task_pages(&s, 4242, per_node),
            "[Tue Feb 29 12:34:56 2000] task 4242 pages info (KB):\n\
             \x20node       used        hot       cold\n\
             \x20   0      10240       8192       2048\n\
             \x20   1       4096          0       4096\n"
        );
    }

    #[test]
    fn json_forms_carry_the_same_figures() {
        let s = stats();
        assert_eq!(
            host_pages_json(&s),
            concat!(
                r#"{"time":951827696,"nodes":[{"node":0,"total_kb":1048576,"used_kb":12288,"hot_kb":10240,"cold_kb":2048},"#,
                r#"{"node":1,"total_kb":524288,"used_kb":4096,"hot_kb":0,"cold_kb":4096}]}"#,
                "\n"
            )
        );
        assert_eq!(
            task_pages_json(&s, "vm\"1", 4242, &s.tasks["vm1"][0].1),
            concat!(
                r#"{"time":951827696,"task":"vm\"1","pid":4242,"nodes":[{"node":0,"used_kb":10240,"hot_kb":8192,"cold_kb":2048},"#,
                r#"{"node":1,"used_kb":4096,"hot_kb":0,"cold_kb":4096}]}"#,
                "\n"
            )
        );
        assert_eq!(
            host_pages_json(&Stats::default()),
            "{\"time\":null,\"nodes\":[]}\n"
        );
    }

    #[test]
    fn before_any_round_the_epoch_is_shown() {
        let s = Stats::default();
        assert_eq!(
            host_pages(&s),
            "[Thu Jan  1 00:00:00 1970] host pages info (KB):\n node      total       used        hot       cold\n"
        );
    }
}
