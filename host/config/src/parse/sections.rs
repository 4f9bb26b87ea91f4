//! The per-section builders of stage two: `[project]`, `[engine]` and `[task]` sections
//! turned into [`ProjectConf`], [`EngineConf`] and [`TaskConf`], each key read in C's table
//! order (spec §4.4-4.7), with the key tables and value forms that belong to one section
//! (`node_pair`, `swap_threshold`).
//!
//! Pure: a parsed [`Section`] in, a typed value or the first [`ConfigError`] out. It must
//! not open files, touch the kernel or know daemon state; how a single key is read and
//! reported belongs to the `reader` module, and the file-level order to `parse`.

use std::path::Path;

use super::reader::Reader;
use super::{DEFAULT_RECORD_ROUNDS, MAX_RECORD_ROUNDS, RECORD_ROUNDS_KEY, RECORD_SCANS_KEY};
use super::{
    DRY_RUN_KEY, MAX_CG_DIR_LEN, MAX_TASK_VALUE_LEN, MEMDCD_DEFAULT_SOCK, MEMDCD_SOCK_LIMIT,
    ROUND_QUOTA_KEY,
};
use crate::doc::Section;
use crate::error::{ConfigError, KeyProblem, SectionKind, SectionRef};
use crate::types::*;

const ENGINE_NAMES: &str = "slide, cslide, memdcd, damon, thirdparty, psi";

/// Every entry of a section, in file order, values as written.
fn raw_pairs(s: &Section) -> RawParams {
    s.entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

pub(super) fn project(
    path: &Path,
    s: &Section,
    warnings: &mut Vec<String>,
) -> Result<ProjectConf, ConfigError> {
    let mut r = Reader::new(path, s, SectionKind::Project);
    let name = r.identity("name")?;
    let scan_type = r.opt_str("scan_type")?.unwrap_or_else(|| "page".into());
    if !matches!(scan_type.as_str(), "page" | "psi" | "region") {
        return Err(r.expected("scan_type", "one of page, region, psi", &scan_type));
    }
    let dry_run = r.opt_yes_no(DRY_RUN_KEY)?.unwrap_or(false);
    let sysmem_threshold = r
        .opt_int("sysmem_threshold", 0, 100)?
        .map(|v| u8::try_from(v).unwrap_or(0));
    let high = r.opt_int("swapcache_high_wmark", 1, 100)?;
    let low = r.opt_int("swapcache_low_wmark", 1, 100)?;
    let swapcache_wmark = match (high, low) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(r.err(
                "swapcache_low_wmark",
                KeyProblem::Rule(
                    "required when swapcache_high_wmark is set (set both or neither)".into(),
                ),
            ));
        }
        (None, Some(_)) => {
            return Err(r.err(
                "swapcache_high_wmark",
                KeyProblem::Rule(
                    "required when swapcache_low_wmark is set (set both or neither)".into(),
                ),
            ));
        }
        (Some(h), Some(l)) if h <= l => {
            return Err(r.err(
                "swapcache_high_wmark",
                KeyProblem::Rule(format!(
                    "must be greater than swapcache_low_wmark ({l}), found `{h}`"
                )),
            ));
        }
        (Some(h), Some(l)) => Some(SwapcacheWmark {
            high: u8::try_from(h).unwrap_or(0),
            low: u8::try_from(l).unwrap_or(0),
        }),
    };
    let scan = match scan_type.as_str() {
        "page" => ScanConf::Page {
            loops: r.req_u32("loop", 1, 120)?,
            interval: r.req_u32("interval", 1, 1200)?,
            sleep: r.req_u32("sleep", 1, 1200)?,
        },
        "psi" => ScanConf::Psi {
            interval: r.req_u32("interval", 1, 1200)?,
        },
        "region" => {
            let sample_interval = r.req_u64("sample_interval", 0)?;
            let aggr_interval = r.req_u64("aggr_interval", 0)?;
            let update_interval = r.req_u64("update_interval", 0)?;
            let min_nr_regions = r.req_u64("min_nr_regions", 3)?;
            let max_nr_regions = r.req_u64("max_nr_regions", 3)?;
            if min_nr_regions >= max_nr_regions {
                return Err(r.err(
                    "min_nr_regions",
                    KeyProblem::Rule(format!(
                        "must be less than max_nr_regions ({max_nr_regions}), found `{min_nr_regions}`"
                    )),
                ));
            }
            ScanConf::Region {
                sample_interval,
                aggr_interval,
                update_interval,
                min_nr_regions,
                max_nr_regions,
            }
        }
        _ => return Err(r.expected("scan_type", "one of page, region, psi", &scan_type)),
    };
    r.warn_unknown(warnings, &format!(" (scan_type={scan_type})"))?;
    Ok(ProjectConf {
        pos: r.pos(),
        name,
        scan,
        sysmem_threshold,
        swapcache_wmark,
        dry_run,
        raw: raw_pairs(s),
    })
}

pub(super) fn engine(
    path: &Path,
    s: &Section,
    warnings: &mut Vec<String>,
) -> Result<EngineConf, ConfigError> {
    let mut r = Reader::new(path, s, SectionKind::Engine);
    let project = r.identity("project")?;
    let name = r.identity("name")?;
    let round_quota_bytes = r
        .opt_int(ROUND_QUOTA_KEY, 1, i64::MAX)?
        .and_then(|n| u64::try_from(n).ok());
    let kind = match name.as_str() {
        "slide" => EngineKind::Slide,
        "memdcd" => EngineKind::Memdcd,
        "psi" => EngineKind::Psi,
        "cslide" => {
            let node_pair = r.req_str("node_pair")?;
            let node_pairs = parse_node_pairs(&node_pair).map_err(|why| {
                r.err(
                    "node_pair",
                    KeyProblem::Expected {
                        expected: format!("`hot,cold` node pairs separated by `;` ({why})"),
                        found: node_pair.clone(),
                    },
                )
            })?;
            let hot_threshold = r.req_int("hot_threshold", 0, i32::MAX.into())?;
            let node_mig_quota = r.req_int("node_mig_quota", 0, i32::MAX.into())?;
            let node_hot_reserve = r.req_int("node_hot_reserve", 0, i32::MAX.into())?;
            EngineKind::Cslide(CslideEngineConf {
                node_pairs,
                hot_threshold: u64::try_from(hot_threshold).unwrap_or(0),
                node_mig_quota_mb: u64::try_from(node_mig_quota).unwrap_or(0),
                node_hot_reserve_mb: u64::try_from(node_hot_reserve).unwrap_or(0),
            })
        }
        "damon" => {
            let min_size = r.req_u64("min_size", 0)?;
            let max_size = r.req_u64("max_size", 0)?;
            let min_acc = r.req_u32("min_acc", 0, u32::MAX)?;
            let max_acc = r.req_u32("max_acc", 0, u32::MAX)?;
            let min_age = r.req_u32("min_age", 0, u32::MAX)?;
            let max_age = r.req_u32("max_age", 0, u32::MAX)?;
            let action = r.req_str("action")?;
            let action = match action.as_str() {
                "willneed" => DamonAction::Willneed,
                "cold" => DamonAction::Cold,
                "pageout" => DamonAction::Pageout,
                "hugepage" => DamonAction::Hugepage,
                "nohugepage" => DamonAction::Nohugepage,
                "stat" => DamonAction::Stat,
                other => {
                    return Err(r.expected(
                        "action",
                        "one of willneed, cold, pageout, hugepage, nohugepage, stat",
                        other,
                    ));
                }
            };
            EngineKind::Damon(DamonEngineConf {
                min_size,
                max_size,
                min_acc,
                max_acc,
                min_age,
                max_age,
                action,
            })
        }
        "thirdparty" => {
            let eng_name = r.identity("eng_name")?;
            let libname = r.req_str("libname")?;
            let ops_name = r.req_str("ops_name")?;
            let params = r.raw_rest()?;
            EngineKind::Thirdparty(ThirdpartyEngineConf {
                eng_name,
                libname,
                ops_name,
                params,
            })
        }
        other => return Err(r.expected("name", format!("one of {ENGINE_NAMES}"), other)),
    };
    if !matches!(kind, EngineKind::Thirdparty(_)) {
        r.warn_unknown(warnings, &format!(" (engine {name})"))?;
    }
    Ok(EngineConf {
        pos: r.pos(),
        project,
        kind,
        round_quota_bytes,
        raw: raw_pairs(s),
    })
}

/// `node_pair`: pairs `hot,cold` separated by `;` or whitespace (spaces around `,` and `;`
/// allowed); a `;`-separated piece may also be `hot cold`. Each node at most once.
pub(crate) fn parse_node_pairs(s: &str) -> Result<Vec<(NodeId, NodeId)>, String> {
    let node = |t: &str| -> Result<NodeId, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{t}` is not a node number"));
        }
        t.parse::<NodeId>()
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| format!("node `{t}` out of range"))
    };
    let mut pairs: Vec<(NodeId, NodeId)> = Vec::new();
    for piece in s.split(';') {
        let piece = piece.trim();
        if piece.is_empty() {
            return Err("empty pair".into());
        }
        // Glue `a , b` into `a,b`.
        let glued: String = piece
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(",");
        let words: Vec<&str> = glued.split_whitespace().collect();
        let mut add = |h: &str, c: &str| -> Result<(), String> {
            pairs.push((node(h)?, node(c)?));
            Ok(())
        };
        if words.len() == 2 && !glued.contains(',') {
            add(words[0], words[1])?;
            continue;
        }
        for w in words {
            let mut parts = w.split(',');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(c), None) => add(h, c)?,
                _ => return Err(format!("`{w}` is not a `hot,cold` pair")),
            }
        }
    }
    let mut seen: Vec<NodeId> = Vec::new();
    for &(h, c) in &pairs {
        for n in [h, c] {
            if seen.contains(&n) {
                return Err(format!("node {n} appears more than once"));
            }
            seen.push(n);
        }
    }
    Ok(pairs)
}

const GENERIC_TASK_KEYS: [&str; 7] = [
    "project",
    "engine",
    "name",
    "type",
    "value",
    "swap_flag",
    "max_threads",
];

pub(super) fn task(
    path: &Path,
    s: &Section,
    warnings: &mut Vec<String>,
) -> Result<TaskConf, ConfigError> {
    let mut r = Reader::new(path, s, SectionKind::Task);
    let project = r.identity("project")?;
    let engine = r.identity("engine")?;
    let name = r.identity("name")?;
    let ty = r.req_str("type")?;
    if ty != "pid" && ty != "name" {
        return Err(r.expected("type", "`pid` or `name`", &ty));
    }
    let value = r.req_str("value")?;
    let value_ok = value.len() <= MAX_TASK_VALUE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._%/-".contains(&b));
    if !value_ok {
        return Err(r.expected(
            "value",
            format!("1..={MAX_TASK_VALUE_LEN} chars of [A-Za-z0-9._%/-]"),
            &value,
        ));
    }
    let target = if ty == "pid" {
        TaskTarget::Pid(value)
    } else {
        TaskTarget::Name(value)
    };
    let swap_flag = r.opt_yes_no("swap_flag")?.unwrap_or(false);
    let max_threads = r
        .opt_int("max_threads", i32::MIN.into(), i32::MAX.into())?
        .unwrap_or(1);
    debug_assert!(GENERIC_TASK_KEYS.iter().all(|k| r.used.contains(k)));
    let record = record_scans(&mut r)?;

    let engine_keys = match engine.as_str() {
        "slide" => {
            let t = r.req_int("T", 0, i32::MAX.into())?;
            let swap_threshold_kb = match r.opt_str("swap_threshold")? {
                None => None,
                Some(v) => match parse_swap_threshold_gb(&v) {
                    Some(0) => None,
                    Some(g) => Some(g << 20),
                    None => {
                        return Err(r.expected(
                            "swap_threshold",
                            "digits then `g` or `G`, at most 10 chars (e.g. `50g`)",
                            &v,
                        ));
                    }
                },
            };
            let dram_percent = match r.opt_int("dram_percent", i32::MIN.into(), i32::MAX.into())? {
                Some(p) if (1..=100).contains(&p) => Some(u8::try_from(p).unwrap_or(0)),
                Some(p) => {
                    let line = s.all("dram_percent").last().map_or(s.line, |e| e.line);
                    warnings.push(format!(
                        "{}: {}: key `dram_percent`: {p} is outside 1..=100; dram_percent disabled",
                        path.display(),
                        SectionRef {
                            kind: SectionKind::Task,
                            index: s.index,
                            line,
                        }
                    ));
                    None
                }
                None => None,
            };
            TaskEngineConf::Slide(SlideTaskConf {
                t: u32::try_from(t).unwrap_or(0),
                swap_threshold_kb,
                dram_percent,
            })
        }
        "cslide" => {
            let vm_flags = r.req_str("vm_flags")?;
            if vm_flags != "ht" {
                return Err(r.expected("vm_flags", "exactly `ht`", &vm_flags));
            }
            let anon_only = r.req_yes_no("anon_only")?;
            let ign_host = r.req_yes_no("ign_host")?;
            TaskEngineConf::Cslide(CslideTaskConf {
                anon_only,
                ign_host,
            })
        }
        "memdcd" => {
            let sock = r.req_str("Sock")?;
            if sock.len() >= MEMDCD_SOCK_LIMIT {
                return Err(r.err(
                    "Sock",
                    KeyProblem::TooLong {
                        min: 1,
                        max: MEMDCD_SOCK_LIMIT - 1,
                        found: sock,
                    },
                ));
            }
            let sock = if sock == "-" {
                MEMDCD_DEFAULT_SOCK.to_string()
            } else {
                sock
            };
            TaskEngineConf::Memdcd(MemdcdTaskConf { sock })
        }
        "psi" => {
            let pressure = r.opt_positive_f64("pressure", 0.1)?;
            let reclaim_rate = r.opt_positive_f64("reclaim_rate", 0.05)?;
            let reclaim_rate_max = r.opt_positive_f64("reclaim_rate_max", 0.5)?;
            let reclaim_rate_min = r.opt_positive_f64("reclaim_rate_min", 0.01)?;
            let limit_min_ratio = r.opt_positive_f64("limit_min_ratio", 0.1)?;
            let limit_min_bytes = r.opt_ulong("limit_min_bytes", 0)?;
            let reclaim_max_bytes = r.opt_ulong("reclaim_max_bytes", 1 << 30)?;
            let cg_dir = r.req_str("cg_dir")?;
            if cg_dir.len() > MAX_CG_DIR_LEN {
                return Err(r.err(
                    "cg_dir",
                    KeyProblem::TooLong {
                        min: 1,
                        max: MAX_CG_DIR_LEN,
                        found: cg_dir,
                    },
                ));
            }
            TaskEngineConf::Psi(PsiTaskConf {
                pressure,
                reclaim_rate,
                reclaim_rate_max,
                reclaim_rate_min,
                limit_min_ratio,
                limit_min_bytes,
                reclaim_max_bytes,
                cg_dir,
            })
        }
        "damon" => TaskEngineConf::Damon,
        _ => TaskEngineConf::Thirdparty(r.raw_rest()?),
    };
    if !matches!(engine_keys, TaskEngineConf::Thirdparty(_)) {
        r.warn_unknown(warnings, &format!(" (engine {engine})"))?;
    }
    Ok(TaskConf {
        pos: r.pos(),
        project,
        engine,
        name,
        target,
        swap_flag,
        max_threads,
        record,
        engine_keys,
        raw: raw_pairs(s),
    })
}

/// `record_scans` and `record_rounds` (our keys): an absolute path that does not end in
/// `/`, and 1..=[`MAX_RECORD_ROUNDS`] rounds ([`DEFAULT_RECORD_ROUNDS`] when absent);
/// `record_rounds` alone is an error.
fn record_scans(r: &mut Reader<'_>) -> Result<Option<RecordScans>, ConfigError> {
    let path = r.opt_str(RECORD_SCANS_KEY)?;
    let rounds = r.opt_int(RECORD_ROUNDS_KEY, 1, MAX_RECORD_ROUNDS.into())?;
    let Some(path) = path else {
        return match rounds {
            Some(_) => Err(r.err(
                RECORD_ROUNDS_KEY,
                KeyProblem::Rule(format!(
                    "`{RECORD_ROUNDS_KEY}` needs `{RECORD_SCANS_KEY}` (the file to record to)"
                )),
            )),
            None => Ok(None),
        };
    };
    if !path.starts_with('/') || path.ends_with('/') {
        return Err(r.expected(
            RECORD_SCANS_KEY,
            "an absolute path of a file, such as `/var/tmp/web.scans`",
            &path,
        ));
    }
    Ok(Some(RecordScans {
        path: std::path::PathBuf::from(path),
        rounds: rounds
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(DEFAULT_RECORD_ROUNDS),
    }))
}

/// `swap_threshold`: 1..=10 chars, digits then one `g`/`G`; `g` alone is 0. In GiB.
pub(crate) fn parse_swap_threshold_gb(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 {
        return None;
    }
    let digits = s.strip_suffix(['g', 'G'])?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_threshold_forms_from_spec() {
        for (ok, gb) in [
            ("50g", 50),
            ("50G", 50),
            ("5G", 5),
            ("123456789g", 123_456_789),
            ("999999999g", 999_999_999),
            ("g", 0),
        ] {
            assert_eq!(parse_swap_threshold_gb(ok), Some(gb), "{ok}");
        }
        for bad in [
            "",
            "50m",
            "12hhG",
            "1234",
            "12345678910234g",
            "12345678900m",
            "5gg",
        ] {
            assert_eq!(parse_swap_threshold_gb(bad), None, "{bad}");
        }
    }

    #[test]
    fn node_pairs() {
        assert_eq!(parse_node_pairs("0,2;1,3"), Ok(vec![(0, 2), (1, 3)]));
        assert_eq!(parse_node_pairs("0,2 1,3"), Ok(vec![(0, 2), (1, 3)]));
        assert_eq!(parse_node_pairs("0 2; 1 , 3"), Ok(vec![(0, 2), (1, 3)]));
        assert_eq!(parse_node_pairs("1,0"), Ok(vec![(1, 0)]));
        for bad in [
            "", "0", "0,", "0,2;", "0,2;0,3", "0,0", "a,b", "0,1,2", "0 1 2 3", "-1,2",
        ] {
            assert!(parse_node_pairs(bad).is_err(), "{bad:?}");
        }
    }
}
