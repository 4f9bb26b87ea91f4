//! Memory cgroups for proactive reclaim (the psi engine): which hierarchy the kernel offers,
//! the cgroups a task's `cg_dir` pattern matches, their memory figures and pressure, and the
//! write to `memory.reclaim`.
//!
//! Two layouts, told apart under the sys root:
//! * cgroup v2 (upstream >= 5.19): one unified tree at `fs/cgroup` whose
//!   `cgroup.controllers` lists `memory`; `memory.current`, `memory.max`, `memory.min`,
//!   `memory.low`, `memory.stat` (`file`, `anon`), `memory.swap.max`,
//!   `memory.swap.current`, `memory.pressure`, `memory.reclaim`.
//! * cgroup v1 as openEuler has it (`psi=1 psi_v1=1`): patterns are matched under
//!   `fs/cgroup/cpuacct` (C etmem's glob root), the pressure is read there, and the
//!   memory files under `fs/cgroup/memory/<path>`: `memory.usage_in_bytes`,
//!   `memory.limit_in_bytes`, `memory.min`, `memory.low`, `memory.stat` (`total_*`),
//!   `memory.memsw.{limit,usage}_in_bytes`, `memory.reclaim`.
//!
//! Patterns never leave the cgroup mount: they are relative, `..` is refused, and only real
//! directories are matched (symbolic links are not followed). The pure parts (pattern
//! matching, brace expansion, `memory.stat` and limits) take text, not files.

use crate::parse::psi::parse_psi;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The most patterns a `{a,b}` expansion may produce.
const MAX_EXPANSIONS: usize = 256;
/// The most cgroups one pattern may match.
pub const MAX_MATCHES: usize = 4096;

/// Which cgroup hierarchy holds the memory controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1 (`memory` and `cpuacct` hierarchies).
    V1,
    /// the unified hierarchy.
    V2,
}

impl std::fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "cgroup v1",
            CgroupVersion::V2 => "cgroup v2",
        })
    }
}

/// One matched cgroup.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cgroup {
    /// the path below the hierarchy's root, `/`-separated, no leading `/`
    pub path: String,
    /// the inode of its directory (stable while the cgroup lives)
    pub id: u64,
}

/// Memory figures of one cgroup, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CgroupMemory {
    /// the hierarchy read
    pub v2: bool,
    /// `memory.current` / `memory.usage_in_bytes`
    pub usage: u64,
    /// `memory.max` / `memory.limit_in_bytes` (`max`: `u64::MAX`)
    pub limit: u64,
    /// `memory.min` (0 when absent)
    pub min: u64,
    /// `memory.low` (0 when absent)
    pub low: u64,
    /// file pages (`file`; v1 `total_inactive_file + total_active_file`)
    pub file: u64,
    /// anonymous pages (`anon`; v1 `total_inactive_anon + total_active_anon`)
    pub anon: u64,
    /// `memory.swap.max` (v1: `memory.memsw.limit_in_bytes`, memory plus swap); 0 when the
    /// kernel does not account swap
    pub swap_limit: u64,
    /// `memory.swap.current` (v1: `memory.memsw.usage_in_bytes`)
    pub swap_usage: u64,
    /// `memory.pressure`, `some avg10`, percent
    pub pressure_avg10: f64,
    /// `some avg60`, percent
    pub pressure_avg60: f64,
}

/// Errors of the cgroup layer; each names the file or the pattern.
#[derive(Debug, Error)]
pub enum CgroupError {
    /// No memory cgroup hierarchy under the sys root.
    #[error("no memory cgroup hierarchy: {0}")]
    Unavailable(String),
    /// A pattern that could leave the cgroup mount, or is malformed.
    #[error("cgroup pattern `{pattern}`: {reason}")]
    Pattern {
        /// the pattern as configured
        pattern: String,
        /// what is wrong
        reason: String,
    },
    /// A cgroup path that is not a cgroup of the hierarchy.
    #[error("no cgroup `{0}`")]
    NoCgroup(String),
    /// A file could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// `read` or `write`
        op: &'static str,
        /// the file
        path: PathBuf,
        /// the I/O error
        source: std::io::Error,
    },
    /// A file had content we could not parse.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// the file
        path: PathBuf,
        /// what was wrong
        reason: String,
    },
}

// ---------------------------------------------------------------- pure parts

/// A limit file's value: a number, or `max` (v2) for no limit.
pub fn parse_limit(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        Some(u64::MAX)
    } else {
        t.parse().ok()
    }
}

/// The value of `key` in `memory.stat` text (`key value` lines); `None` when absent.
pub fn stat_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Expands `{a,b}` alternatives (nested allowed) into plain patterns, in order.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let b = pattern.as_bytes();
    let Some(open) = b.iter().position(|&c| c == b'{') else {
        if pattern.contains('}') {
            return Err("unbalanced `}`".into());
        }
        return Ok(vec![pattern.to_string()]);
    };
    // the matching close, and the top-level commas between
    let mut depth = 0usize;
    let mut commas = Vec::new();
    let mut close = None;
    for (i, &c) in b.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let close = close.ok_or("unbalanced `{`")?;
    let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
    let mut starts = vec![open + 1];
    starts.extend(commas.iter().map(|c| c + 1));
    let mut ends = commas.clone();
    ends.push(close);
    let mut out = Vec::new();
    for (s, e) in starts.into_iter().zip(ends) {
        for x in expand_braces(&format!("{head}{}{tail}", &pattern[s..e]))? {
            out.push(x);
            if out.len() > MAX_EXPANSIONS {
                return Err(format!("expands to more than {MAX_EXPANSIONS} patterns"));
            }
        }
    }
    Ok(out)
}

/// `fnmatch(3)` of one path segment: `*`, `?`, `[abc]`, `[a-z]`, `[!x]` / `[^x]`, `\x`. A
/// leading `.` of `name` is only matched by a literal `.` (as glob(3) without GLOB_PERIOD).
pub fn segment_matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(&c) = n.first() else { return false };
                match class(&p[1..], c) {
                    Some((ok, used)) => ok && go(&p[1 + used..], &n[1..]),
                    // no closing `]`: a literal `[`
                    None => c == '[' && go(&p[1..], &n[1..]),
                }
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&l) => n.first() == Some(&l) && go(&p[1..], &n[1..]),
        }
    }
    /// Whether `c` is in the class starting after `[`, and how many chars it used (with `]`).
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        let mut i = 0;
        let negate = matches!(p.first(), Some('!') | Some('^'));
        if negate {
            i += 1;
        }
        let mut hit = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((hit != negate, i + 1));
            }
            first = false;
            if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                hit |= p[i] <= c && c <= p[i + 2];
                i += 3;
            } else {
                hit |= p[i] == c;
                i += 1;
            }
        }
        None
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// Splits a pattern into segments, refusing what could leave the root: an absolute
/// path, `..`, an empty pattern.
fn segments(pattern: &str) -> Result<Vec<&str>, String> {
    if pattern.starts_with('/') {
        return Err("must be relative to the cgroup mount".into());
    }
    let segs: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if segs.contains(&"..") {
        return Err("`..` would leave the cgroup mount".into());
    }
    if segs.is_empty() {
        return Err("matches the root cgroup itself".into());
    }
    Ok(segs)
}

// ---------------------------------------------------------------- files

/// The hierarchy the memory controller is on, under the sys root `sys`.
pub fn detect(sys: &Path) -> Result<CgroupVersion, CgroupError> {
    let root = sys.join("fs/cgroup");
    if let Ok(c) = std::fs::read_to_string(root.join("cgroup.controllers"))
        && c.split_whitespace().any(|w| w == "memory")
    {
        return Ok(CgroupVersion::V2);
    }
    if root.join("memory").is_dir() && root.join("cpuacct").is_dir() {
        return Ok(CgroupVersion::V1);
    }
    Err(CgroupError::Unavailable(format!(
        "neither {}/cgroup.controllers with `memory` (cgroup v2) nor the {0}/memory and \
         {0}/cpuacct hierarchies (cgroup v1)",
        root.display()
    )))
}

/// Where patterns are matched (and pressure is read).
fn glob_root(sys: &Path, v: CgroupVersion) -> PathBuf {
    match v {
        CgroupVersion::V2 => sys.join("fs/cgroup"),
        CgroupVersion::V1 => sys.join("fs/cgroup/cpuacct"),
    }
}

/// Where the memory files are.
fn memory_root(sys: &Path, v: CgroupVersion) -> PathBuf {
    match v {
        CgroupVersion::V2 => sys.join("fs/cgroup"),
        CgroupVersion::V1 => sys.join("fs/cgroup/memory"),
    }
}

/// The directory named by `path` under `root`, checked to be a real directory below it.
fn dir_of(root: &Path, path: &str) -> Result<PathBuf, CgroupError> {
    let segs = segments(path).map_err(|_| CgroupError::NoCgroup(path.to_string()))?;
    let mut d = root.to_path_buf();
    for s in segs {
        d.push(s);
        let m = std::fs::symlink_metadata(&d).map_err(|_| CgroupError::NoCgroup(path.into()))?;
        if !m.is_dir() {
            return Err(CgroupError::NoCgroup(path.to_string()));
        }
    }
    Ok(d)
}

/// The cgroups `pattern` matches (relative to the hierarchy's root, glob(3) syntax with
/// braces), directories only, sorted by path. On v1 a match needs its `memory` twin too;
/// one without it is left out (C drops every match of the task then: B33).
pub fn glob(sys: &Path, v: CgroupVersion, pattern: &str) -> Result<Vec<Cgroup>, CgroupError> {
    let bad = |reason: String| CgroupError::Pattern {
        pattern: pattern.to_string(),
        reason,
    };
    let root = glob_root(sys, v);
    let mut out = Vec::new();
    for p in expand_braces(pattern).map_err(bad)? {
        let segs = segments(&p).map_err(bad)?;
        let mut level: Vec<(PathBuf, String)> = vec![(root.clone(), String::new())];
        for seg in segs {
            let mut next = Vec::new();
            for (dir, rel) in &level {
                let Ok(rd) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| segment_matches(seg, n))
                    .collect();
                names.sort();
                for n in names {
                    let r = if rel.is_empty() {
                        n.clone()
                    } else {
                        format!("{rel}/{n}")
                    };
                    next.push((dir.join(&n), r));
                    if next.len() > MAX_MATCHES {
                        return Err(bad(format!("matches more than {MAX_MATCHES} cgroups")));
                    }
                }
            }
            level = next;
        }
        for (dir, rel) in level {
            if v == CgroupVersion::V1 && dir_of(&memory_root(sys, v), &rel).is_err() {
                tracing::debug!("cgroup `{rel}`: no memory hierarchy twin, left out");
                continue;
            }
            let Ok(m) = std::fs::symlink_metadata(&dir) else {
                continue;
            };
            if !out.iter().any(|c: &Cgroup| c.path == rel) {
                out.push(Cgroup {
                    path: rel,
                    id: m.ino(),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: PathBuf) -> Result<String, CgroupError> {
    std::fs::read_to_string(&path).map_err(|source| CgroupError::Io {
        op: "read",
        path,
        source,
    })
}

fn number(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    let path = dir.join(file);
    let t = read(path.clone())?;
    parse_limit(&t).ok_or_else(|| CgroupError::Parse {
        path,
        reason: format!("expected a number or `max`, found `{}`", t.trim()),
    })
}

/// A number from a file that some kernels lack: 0 when absent.
fn optional(dir: &Path, file: &str) -> Result<u64, CgroupError> {
    if dir.join(file).exists() {
        number(dir, file)
    } else {
        Ok(0)
    }
}

/// The memory figures and pressure of cgroup `path`.
pub fn memory(sys: &Path, v: CgroupVersion, path: &str) -> Result<CgroupMemory, CgroupError> {
    let mem = dir_of(&memory_root(sys, v), path)?;
    let psi_dir = dir_of(&glob_root(sys, v), path)?;
    let stat_path = mem.join("memory.stat");
    let stat = read(stat_path.clone())?;
    let stat_of = |keys: &[&str]| -> Result<u64, CgroupError> {
        keys.iter().try_fold(0u64, |acc, k| {
            stat_value(&stat, k)
                .map(|x| acc.saturating_add(x))
                .ok_or_else(|| CgroupError::Parse {
                    path: stat_path.clone(),
                    reason: format!("no `{k}`"),
                })
        })
    };
    let psi_path = psi_dir.join("memory.pressure");
    let psi_text = std::fs::read(&psi_path).map_err(|source| CgroupError::Io {
        op: "read",
        path: psi_path.clone(),
        source,
    })?;
    let psi = parse_psi(&psi_text).ok_or_else(|| CgroupError::Parse {
        path: psi_path.clone(),
        reason: "no `some avg10=.. avg60=.. avg300=.. total=..` line".into(),
    })?;
    let mut m = CgroupMemory {
        v2: v == CgroupVersion::V2,
        pressure_avg10: psi.some.avg10,
        pressure_avg60: psi.some.avg60,
        min: optional(&mem, "memory.min")?,
        low: optional(&mem, "memory.low")?,
        ..CgroupMemory::default()
    };
    match v {
        CgroupVersion::V2 => {
            m.usage = number(&mem, "memory.current")?;
            m.limit = number(&mem, "memory.max")?;
            m.file = stat_of(&["file"])?;
            m.anon = stat_of(&["anon"])?;
            m.swap_limit = optional(&mem, "memory.swap.max")?;
            m.swap_usage = optional(&mem, "memory.swap.current")?;
        }
        CgroupVersion::V1 => {
            m.usage = number(&mem, "memory.usage_in_bytes")?;
            m.limit = number(&mem, "memory.limit_in_bytes")?;
            m.file = stat_of(&["total_inactive_file", "total_active_file"])?;
            m.anon = stat_of(&["total_inactive_anon", "total_active_anon"])?;
            m.swap_limit = optional(&mem, "memory.memsw.limit_in_bytes")?;
            m.swap_usage = optional(&mem, "memory.memsw.usage_in_bytes")?;
        }
    }
    Ok(m)
}

/// Asks the kernel to reclaim `bytes` from cgroup `path` (`memory.reclaim`, decimal). The
/// kernel answers EAGAIN when it reclaimed less than asked: that is `Ok(false)`.
pub fn reclaim(sys: &Path, v: CgroupVersion, path: &str, bytes: u64) -> Result<bool, CgroupError> {
    let file = dir_of(&memory_root(sys, v), path)?.join("memory.reclaim");
    if !file.exists() {
        return Err(CgroupError::Unavailable(format!(
            "no {}: the kernel has no proactive reclaim (upstream 5.19+ with cgroup v2, or \
             openEuler's memory.reclaim)",
            file.display()
        )));
    }
    // one write(2) of the whole number, not truncating a regular file (fake trees)
    use std::io::Write;
    let r = std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .and_then(|mut f| f.write_all(bytes.to_string().as_bytes()));
    match r {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(false),
        Err(source) => Err(CgroupError::Io {
            op: "write",
            path: file,
            source,
        }),
    }
}

/// What `etmemd --probe` says of proactive cgroup reclaim under `sys` (and `/proc/pressure`
/// under `proc`).
pub fn availability(proc_: &Path, sys: &Path) -> Result<String, String> {
    let v = detect(sys).map_err(|e| e.to_string())?;
    let root = memory_root(sys, v);
    let psi_root = glob_root(sys, v);
    if !proc_.join("pressure/memory").exists() {
        return Err(format!(
            "{v}, but no /proc/pressure/memory: PSI is off (boot with psi=1{})",
            if v == CgroupVersion::V1 {
                " psi_v1=1"
            } else {
                ""
            }
        ));
    }
    if v == CgroupVersion::V1 && !psi_root.join("memory.pressure").exists() {
        return Err(format!(
            "{v}, but no {}/memory.pressure: boot openEuler with psi=1 psi_v1=1",
            psi_root.display()
        ));
    }
    // the root cgroup has no memory.reclaim on v2: look at any child
    let has_reclaim = root.join("memory.reclaim").exists()
        || std::fs::read_dir(&root).is_ok_and(|rd| {
            rd.flatten()
                .any(|e| e.path().join("memory.reclaim").exists())
        });
    if !has_reclaim {
        return Err(format!(
            "{v}, but no memory.reclaim under {}: the kernel has no proactive reclaim \
             (upstream 5.19+, or openEuler's cgroup v1 memory.reclaim)",
            root.display()
        ));
    }
    Ok(format!("{v}, memory.reclaim and memory.pressure"))
}

/// C etmem's check at psi engine add: `/proc/pressure/memory` resolves (realpath), is not
/// a directory and opens for reading. The error names the file and says how to turn PSI on.
pub fn psi_availability(proc_: &Path) -> Result<(), String> {
    let path = proc_.join("pressure/memory");
    let real = std::fs::canonicalize(&path).map_err(|e| {
        format!(
            "{}: {e}: PSI is off or absent (boot with psi=1; openEuler's cgroup v1 also \
             psi_v1=1)",
            path.display()
        )
    })?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    if meta.is_dir() {
        return Err(format!("{}: is a directory", real.display()));
    }
    std::fs::File::open(&real)
        .map(drop)
        .map_err(|e| format!("open {}: {e}", real.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_stat() {
        assert_eq!(parse_limit("max\n"), Some(u64::MAX));
        assert_eq!(parse_limit("4096\n"), Some(4096));
        assert_eq!(parse_limit("x"), None);
        let s = "anon 100\nfile 200\nfile_mapped 3\n";
        assert_eq!(stat_value(s, "file"), Some(200));
        assert_eq!(stat_value(s, "anon"), Some(100));
        assert_eq!(stat_value(s, "shmem"), None);
    }

    #[test]
    fn braces_expand_in_order_and_nest() {
        assert_eq!(expand_braces("a/b").expect("expands"), ["a/b"]);
        assert_eq!(expand_braces("{a,b}/c").expect("expands"), ["a/c", "b/c"]);
        assert_eq!(
            expand_braces("x{a,b{1,2}}").expect("expands"),
            ["xa", "xb1", "xb2"]
        );
        assert!(expand_braces("{a,b").is_err());
        assert!(expand_braces("a}").is_err());
    }

    #[test]
    fn segments_match_like_fnmatch() {
        assert!(segment_matches("*", "batch"));
        assert!(!segment_matches("*", ".hidden"));
        assert!(segment_matches(".h*", ".hidden"));
        assert!(segment_matches("job?", "job1"));
        assert!(!segment_matches("job?", "job12"));
        assert!(segment_matches("job[0-9]", "job7"));
        assert!(!segment_matches("job[!0-9]", "job7"));
        assert!(segment_matches("job[!0-9]", "jobx"));
        assert!(segment_matches("a\\*", "a*"));
        assert!(!segment_matches("a\\*", "ab"));
        assert!(segment_matches("a*b*c", "axxbyyc"));
    }

    #[test]
    fn patterns_stay_inside() {
        assert!(segments("/etc").is_err());
        assert!(segments("a/../..").is_err());
        assert!(segments("").is_err());
        assert!(segments("./").is_err());
        assert_eq!(segments("a//b/./c").expect("inside"), ["a", "b", "c"]);
    }

    use crate::fake::{FakeCgroup, write_fake_cgroup};
    use crate::{Kernel, LinuxKernel};

    fn tree(v: CgroupVersion) -> (tempfile::TempDir, LinuxKernel) {
        let d = tempfile::tempdir().expect("tempdir");
        let sys = d.path().join("sys");
        let mut a = FakeCgroup::new("batch/a", 300 << 20, 100 << 20);
        a.limit = Some(1 << 30);
        a.min = 4096;
        a.low = 8192;
        a.swap_limit = Some(2 << 30);
        a.swap_usage = 450 << 20;
        a.avg10 = 0.25;
        a.avg60 = 0.5;
        write_fake_cgroup(&sys, v, &a).expect("a");
        write_fake_cgroup(&sys, v, &FakeCgroup::new("batch/b", 1, 2)).expect("b");
        write_fake_cgroup(&sys, v, &FakeCgroup::new("other", 1, 2)).expect("other");
        let k = LinuxKernel::with_roots(d.path().join("proc"), sys);
        (d, k)
    }

    fn paths(v: Vec<Cgroup>) -> Vec<String> {
        v.into_iter().map(|c| c.path).collect()
    }

    #[test]
    fn v1_and_v2_trees_read_alike() {
        for v in [CgroupVersion::V1, CgroupVersion::V2] {
            let (_d, k) = tree(v);
            assert_eq!(k.cgroup_version().expect("version"), v);
            assert_eq!(
                paths(k.cgroup_glob("batch/*").expect("glob")),
                ["batch/a", "batch/b"]
            );
            assert_eq!(
                paths(k.cgroup_glob("{other,batch/b}").expect("glob")),
                ["batch/b", "other"]
            );
            assert!(k.cgroup_glob("nothing/*").expect("glob").is_empty());
            let m = k.cgroup_memory("batch/a").expect("memory");
            assert_eq!(m.v2, v == CgroupVersion::V2);
            assert_eq!(m.usage, 400 << 20);
            assert_eq!(m.limit, 1 << 30);
            assert_eq!((m.min, m.low), (4096, 8192));
            assert_eq!((m.file, m.anon), (300 << 20, 100 << 20));
            assert_eq!((m.swap_limit, m.swap_usage), (2 << 30, 450 << 20));
            assert_eq!((m.pressure_avg10, m.pressure_avg60), (0.25, 0.5));
            let unlimited = k.cgroup_memory("other").expect("memory").limit;
            assert!(unlimited > i64::MAX as u64 / 2, "{v}: {unlimited}");
            assert!(k.cgroup_reclaim("batch/a", 1 << 20).expect("reclaim"));
            let file = match v {
                CgroupVersion::V2 => "fs/cgroup/batch/a/memory.reclaim",
                CgroupVersion::V1 => "fs/cgroup/memory/batch/a/memory.reclaim",
            };
            let written = std::fs::read_to_string(k.sys_root().join(file)).expect("written");
            assert_eq!(written, "1048576");
        }
    }

    #[test]
    fn nothing_outside_the_mount_nor_missing() {
        let (_d, k) = tree(CgroupVersion::V2);
        std::fs::create_dir_all(k.sys_root().join("outside")).expect("dir");
        assert!(k.cgroup_glob("../*").is_err());
        assert!(k.cgroup_glob("/batch").is_err());
        assert!(k.cgroup_memory("../outside").is_err());
        assert!(k.cgroup_reclaim("../../outside", 1).is_err());
        assert!(matches!(
            k.cgroup_memory("batch/zz"),
            Err(crate::KernelError::Cgroup(CgroupError::NoCgroup(_)))
        ));
        // a symbolic link to a cgroup is no cgroup
        std::os::unix::fs::symlink(
            k.sys_root().join("fs/cgroup/batch/a"),
            k.sys_root().join("fs/cgroup/link"),
        )
        .expect("symlink");
        assert!(k.cgroup_glob("lin*").expect("glob").is_empty());
        assert!(k.cgroup_reclaim("link", 1).is_err());
    }

    #[test]
    fn v1_needs_both_hierarchies_and_one_bad_match_drops_only_itself() {
        let (_d, k) = tree(CgroupVersion::V1);
        std::fs::create_dir_all(k.sys_root().join("fs/cgroup/cpuacct/batch/c")).expect("dir");
        assert_eq!(
            paths(k.cgroup_glob("batch/*").expect("glob")),
            ["batch/a", "batch/b"]
        );
    }

    #[test]
    fn no_hierarchy_is_an_error_naming_both() {
        let d = tempfile::tempdir().expect("tempdir");
        let e = detect(d.path()).expect_err("none").to_string();
        assert!(e.contains("cgroup v2") && e.contains("cgroup v1"), "{e}");
    }
}
