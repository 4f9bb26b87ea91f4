//! Stage two: INI document → typed config ([`ConfigFile`] for add, [`ObjectIds`] for del).
//!
//! Pure: text in, typed values out; no file access, no daemon state. Each section is read
//! in C's table order (spec §4.4-4.7) and the first problem is returned, sections in C's
//! add order (`[project]`, then `[engine]`, then `[task]`), so the error class is C's.

use std::path::Path;

use etmem_proto::OptResult;

use crate::doc::{Entry, Section, parse_document};
use crate::error::{ConfigError, KeyProblem, SectionKind, SectionRef};
use crate::types::*;

/// Longest identity value (project, engine and task names), in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest task `value`, in bytes.
pub const MAX_TASK_VALUE_LEN: usize = 15;
/// memdcd `Sock` must be shorter than this (C copies it into `sun_path[108]`).
pub const MEMDCD_SOCK_LIMIT: usize = 108;
/// Longest psi `cg_dir`, in bytes.
pub const MAX_CG_DIR_LEN: usize = 63;
/// The abstract socket name `Sock=-` stands for.
pub const MEMDCD_DEFAULT_SOCK: &str = "@_memdcd.server";

const ENGINE_NAMES: &str = "slide, cslide, memdcd, damon, thirdparty, psi";

/// Reads the keys of one section and remembers which keys were used.
struct Reader<'a> {
    path: &'a Path,
    sec: &'a Section,
    kind: SectionKind,
    /// The class of non-identity key problems.
    class: OptResult,
    used: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path, sec: &'a Section, kind: SectionKind) -> Self {
        let class = match kind {
            SectionKind::Project => OptResult::Inval,
            SectionKind::Engine | SectionKind::Task => OptResult::InterErr,
        };
        Reader {
            path,
            sec,
            kind,
            class,
            used: Vec::new(),
        }
    }

    fn pos(&self) -> SectionPos {
        SectionPos {
            index: self.sec.index,
            line: Some(self.sec.line),
        }
    }

    fn error_at(
        &self,
        key: &str,
        line: Option<usize>,
        problem: KeyProblem,
        class: OptResult,
    ) -> ConfigError {
        ConfigError::Key {
            path: self.path.to_path_buf(),
            section: SectionRef {
                kind: self.kind,
                index: self.sec.index,
                line: line.unwrap_or(self.sec.line),
            },
            key: key.to_string(),
            problem,
            result: class,
        }
    }

    /// An error on `key`, at its line when present.
    fn err(&self, key: &str, problem: KeyProblem) -> ConfigError {
        let line = self.sec.all(key).last().map(|e| e.line);
        self.error_at(key, line, problem, self.class)
    }

    fn expected(&self, key: &str, expected: impl Into<String>, found: &str) -> ConfigError {
        self.err(
            key,
            KeyProblem::Expected {
                expected: expected.into(),
                found: found.to_string(),
            },
        )
    }

    /// The entry of `key` (at most one), with the whitespace check.
    fn entry(
        &mut self,
        key: &'static str,
        class: OptResult,
    ) -> Result<Option<&'a Entry>, ConfigError> {
        self.used.push(key);
        let mut it = self.sec.all(key);
        let Some(first) = it.next() else {
            return Ok(None);
        };
        if let Some(second) = it.next() {
            return Err(self.error_at(
                key,
                Some(second.line),
                KeyProblem::Duplicate {
                    first_line: first.line,
                },
                class,
            ));
        }
        if first.trailing_ws {
            return Err(self.error_at(
                key,
                Some(first.line),
                KeyProblem::TrailingWhitespace {
                    found: raw_with_ws(first),
                },
                class,
            ));
        }
        Ok(Some(first))
    }

    /// A string key: non-empty, GKeyFile escapes applied.
    fn string_as(
        &mut self,
        key: &'static str,
        class: OptResult,
    ) -> Result<Option<String>, ConfigError> {
        let Some(e) = self.entry(key, class)? else {
            return Ok(None);
        };
        if e.value.is_empty() {
            return Err(self.error_at(key, Some(e.line), KeyProblem::Empty, class));
        }
        match unescape(&e.value) {
            Some(v) => Ok(Some(v)),
            None => Err(self.error_at(
                key,
                Some(e.line),
                KeyProblem::Expected {
                    expected: "only the escapes \\s \\n \\t \\r \\\\".into(),
                    found: e.value.clone(),
                },
                class,
            )),
        }
    }

    fn opt_str(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        self.string_as(key, self.class)
    }

    fn req_str(&mut self, key: &'static str) -> Result<String, ConfigError> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    /// An identity key: required, 1..=64 bytes, always `Inval`.
    fn identity(&mut self, key: &'static str) -> Result<String, ConfigError> {
        let v = self
            .string_as(key, OptResult::Inval)?
            .ok_or_else(|| self.error_at(key, None, KeyProblem::Missing, OptResult::Inval))?;
        if v.len() > MAX_NAME_LEN {
            let line = self.sec.all(key).last().map(|e| e.line);
            return Err(self.error_at(
                key,
                line,
                KeyProblem::TooLong {
                    min: 1,
                    max: MAX_NAME_LEN,
                    found: v,
                },
                OptResult::Inval,
            ));
        }
        Ok(v)
    }

    /// An integer key in `min..=max`: strict decimal with an optional sign.
    fn opt_int(
        &mut self,
        key: &'static str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(None);
        };
        let range = if max == i64::MAX {
            format!(">= {min}")
        } else {
            format!("{min}..={max}")
        };
        match parse_decimal(&e.value) {
            Some(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                // In range of an i64 by construction.
                Ok(Some(i64::try_from(n).unwrap_or(min)))
            }
            Some(_) => Err(self.expected(key, range, &e.value)),
            None => Err(self.expected(key, format!("an integer {range}"), &e.value)),
        }
    }

    fn req_int(&mut self, key: &'static str, min: i64, max: i64) -> Result<i64, ConfigError> {
        self.opt_int(key, min, max)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    fn req_u32(&mut self, key: &'static str, min: u32, max: u32) -> Result<u32, ConfigError> {
        let v = self.req_int(key, min.into(), max.into())?;
        Ok(u32::try_from(v).unwrap_or(min))
    }

    fn req_u64(&mut self, key: &'static str, min: i64) -> Result<u64, ConfigError> {
        let v = self.req_int(key, min, i64::MAX)?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// `yes` / `no`, exact case.
    fn opt_yes_no(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.opt_str(key)?.as_deref() {
            None => Ok(None),
            Some("yes") => Ok(Some(true)),
            Some("no") => Ok(Some(false)),
            Some(other) => Err(self.expected(key, "`yes` or `no`", other)),
        }
    }

    fn req_yes_no(&mut self, key: &'static str) -> Result<bool, ConfigError> {
        self.opt_yes_no(key)?
            .ok_or_else(|| self.err(key, KeyProblem::Missing))
    }

    /// A psi double: > 0, finite.
    fn opt_positive_f64(&mut self, key: &'static str, default: f64) -> Result<f64, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(default);
        };
        match e.value.parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(self.expected(key, "a decimal number > 0", &e.value)),
        }
    }

    /// A psi byte count (C: `strtoul` of the whole string; `-1` wraps to the maximum).
    fn opt_ulong(&mut self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        let Some(e) = self.entry(key, self.class)? else {
            return Ok(default);
        };
        match parse_strtoul(&e.value) {
            Some(v) => Ok(v),
            None => Err(self.expected(key, "an integer 0..=18446744073709551615", &e.value)),
        }
    }

    /// Keys of this section not read so far, for warnings or raw params; duplicates and
    /// trailing whitespace are errors here too.
    fn rest(&self) -> Result<Vec<&'a Entry>, ConfigError> {
        let mut out: Vec<&'a Entry> = Vec::new();
        for e in &self.sec.entries {
            if self.used.contains(&e.key.as_str()) {
                continue;
            }
            if let Some(first) = out.iter().find(|o| o.key == e.key) {
                return Err(self.error_at(
                    &e.key,
                    Some(e.line),
                    KeyProblem::Duplicate {
                        first_line: first.line,
                    },
                    self.class,
                ));
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Warns about every key not read.
    fn warn_unknown(&self, warnings: &mut Vec<String>, why: &str) -> Result<(), ConfigError> {
        for e in self.rest()? {
            warnings.push(format!(
                "{}: {}: unknown key `{}` ignored{why}",
                self.path.display(),
                SectionRef {
                    kind: self.kind,
                    index: self.sec.index,
                    line: e.line,
                },
                e.key
            ));
        }
        Ok(())
    }

    /// Every key not read, raw, for a thirdparty engine.
    fn raw_rest(&self) -> Result<RawParams, ConfigError> {
        let rest = self.rest()?;
        if let Some(e) = rest.iter().find(|e| e.trailing_ws) {
            return Err(self.error_at(
                &e.key,
                Some(e.line),
                KeyProblem::TrailingWhitespace {
                    found: raw_with_ws(e),
                },
                self.class,
            ));
        }
        Ok(rest
            .into_iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect())
    }
}

/// The `[engine]` key (any engine type) that caps the bytes acted on per round.
pub const ROUND_QUOTA_KEY: &str = "round_quota_bytes";

/// Every entry of a section, in file order, values as written.
fn raw_pairs(s: &Section) -> RawParams {
    s.entries
        .iter()
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

fn raw_with_ws(e: &Entry) -> String {
    // rust-ini trimmed it; show one space so the user sees where it is.
    format!("{} ", e.value)
}

/// Strict decimal: optional sign, then digits only. Wider than i64 so that overflow is a
/// range error, never a wrap.
fn parse_decimal(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    s.parse::<i128>().ok()
}

/// C `strtoul(s, &end, 10)` over the whole string: a leading `-` negates modulo 2⁶⁴
/// (spec bug B25, kept); overflow is an error.
fn parse_strtoul(s: &str) -> Option<u64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// GKeyFile string escapes: `\s` `\n` `\t` `\r` `\\`; anything else is invalid.
fn unescape(s: &str) -> Option<String> {
    if !s.contains('\\') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            's' => ' ',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

fn section_kind(name: &str) -> Option<SectionKind> {
    match name {
        "project" => Some(SectionKind::Project),
        "engine" => Some(SectionKind::Engine),
        "task" => Some(SectionKind::Task),
        _ => None,
    }
}

fn document(text: &str, path: &Path) -> Result<Vec<Section>, ConfigError> {
    let sections = parse_document(text, path)?;
    if !sections.iter().any(|s| section_kind(&s.name).is_some()) {
        return Err(ConfigError::NoSection {
            path: path.to_path_buf(),
        });
    }
    Ok(sections)
}

fn of_kind(sections: &[Section], kind: SectionKind) -> impl Iterator<Item = &Section> {
    sections.iter().filter(move |s| s.name == kind.name())
}

/// Parses the text of a config file for `obj add`. `path` is only used in messages and
/// stored in the result. No file rules are checked here.
pub fn parse_for_add(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
    let sections = document(text, path)?;
    let mut warnings = Vec::new();
    for s in &sections {
        if section_kind(&s.name).is_none() {
            warnings.push(format!(
                "{}: line {}: unknown section [{}] ignored",
                path.display(),
                s.line,
                s.name
            ));
        }
    }
    let mut projects = Vec::new();
    for s in of_kind(&sections, SectionKind::Project) {
        projects.push(project(path, s, &mut warnings)?);
    }
    let mut engines = Vec::new();
    for s in of_kind(&sections, SectionKind::Engine) {
        engines.push(engine(path, s, &mut warnings)?);
    }
    let mut tasks = Vec::new();
    for s in of_kind(&sections, SectionKind::Task) {
        tasks.push(task(path, s, &mut warnings)?);
    }
    Ok(ConfigFile {
        path: path.to_path_buf(),
        projects,
        engines,
        tasks,
        warnings,
    })
}

/// Parses the text of a config file for `obj del`: only the identity keys are read, in C's
/// delete order (`[task]`, `[engine]`, `[project]`); all other keys are ignored.
pub fn parse_for_del(text: &str, path: &Path) -> Result<ObjectIds, ConfigError> {
    let sections = document(text, path)?;
    let mut ids = ObjectIds::default();
    for s in of_kind(&sections, SectionKind::Task) {
        let mut r = Reader::new(path, s, SectionKind::Task);
        let project = r.identity("project")?;
        let engine = r.identity("engine")?;
        let name = r.identity("name")?;
        ids.tasks.push((project, engine, name));
    }
    for s in of_kind(&sections, SectionKind::Engine) {
        let mut r = Reader::new(path, s, SectionKind::Engine);
        let project = r.identity("project")?;
        let mut name = r.identity("name")?;
        if name == "thirdparty" {
            name = r.identity("eng_name")?;
        }
        ids.engines.push((project, name));
    }
    for s in of_kind(&sections, SectionKind::Project) {
        let mut r = Reader::new(path, s, SectionKind::Project);
        ids.projects.push(r.identity("name")?);
    }
    Ok(ids)
}

fn project(
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
        raw: raw_pairs(s),
    })
}

fn engine(path: &Path, s: &Section, warnings: &mut Vec<String>) -> Result<EngineConf, ConfigError> {
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

fn task(path: &Path, s: &Section, warnings: &mut Vec<String>) -> Result<TaskConf, ConfigError> {
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
        engine_keys,
        raw: raw_pairs(s),
    })
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
    fn decimal_is_strict() {
        assert_eq!(parse_decimal("+5"), Some(5));
        assert_eq!(parse_decimal("-7"), Some(-7));
        assert_eq!(parse_decimal("007"), Some(7));
        for bad in ["", "+", "0x10", "1a", " 1", "1.0", "1e3"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal("4294967297"), Some(4_294_967_297));
    }

    #[test]
    fn strtoul_wraps_negative_like_c() {
        assert_eq!(parse_strtoul("-1"), Some(u64::MAX));
        assert_eq!(parse_strtoul("1073741824"), Some(1 << 30));
        assert_eq!(parse_strtoul("18446744073709551616"), None);
        assert_eq!(parse_strtoul("12k"), None);
    }

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

    #[test]
    fn unescape_gkeyfile() {
        assert_eq!(unescape("a\\sb\\\\").as_deref(), Some("a b\\"));
        assert_eq!(unescape("a\\q"), None);
    }
}
