//! The state file of a kdamond of ours (`<state dir>/damon-<index>.state`, normally
//! `/run/etmemd`): which kdamond, its kernel thread's pid, and the etmemd that owns it (pid
//! and start time). A restarted etmemd reads it to tell a kdamond left behind by a dead
//! etmemd (reclaimable) from one a live process uses (never touched).
//!
//! [`parse`] and [`Record::render`] are pure; the file functions only read, write and
//! remove files under the state directory. Nothing here reads or writes sysfs.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What a state file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// the kdamond index under `kdamonds/`
    pub index: u64,
    /// the kdamond kernel thread's pid (sysfs `pid` once `on`)
    pub kthread_pid: u32,
    /// the etmemd that turned it on
    pub owner_pid: u32,
    /// that etmemd's start time (`/proc/PID/stat` field 22)
    pub owner_start: u64,
}

/// Why a state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateFileError {
    #[error("state file {}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("state file {}: cannot {op}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Record {
    /// The file's text: `key=value` lines.
    pub(crate) fn render(&self) -> String {
        format!(
            "index={}\nkthread_pid={}\nowner_pid={}\nowner_start={}\n",
            self.index, self.kthread_pid, self.owner_pid, self.owner_start
        )
    }
}

/// Parses the text of `path` (named for kdamond `index`). Every key once, none unknown,
/// pids above 0, and the `index` key must match the file name.
pub(crate) fn parse(path: &Path, index: u64, text: &str) -> Result<Record, StateFileError> {
    let bad = |reason: String| StateFileError::Malformed {
        path: path.to_path_buf(),
        reason,
    };
    let mut vals: [Option<u64>; 4] = [None; 4];
    const KEYS: [&str; 4] = ["index", "kthread_pid", "owner_pid", "owner_start"];
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(bad(format!(
                "line {}: expected key=value, found `{line}`",
                n + 1
            )));
        };
        let (k, v) = (k.trim(), v.trim());
        let Some(slot) = KEYS.iter().position(|x| *x == k) else {
            return Err(bad(format!("line {}: unknown key `{k}`", n + 1)));
        };
        let Ok(num) = v.parse::<u64>() else {
            return Err(bad(format!(
                "line {}: key `{k}`: expected a number, found `{v}`",
                n + 1
            )));
        };
        if vals[slot].replace(num).is_some() {
            return Err(bad(format!("line {}: key `{k}` given twice", n + 1)));
        }
    }
    let get = |i: usize| vals[i].ok_or_else(|| bad(format!("key `{}` missing", KEYS[i])));
    let pid = |i: usize| -> Result<u32, StateFileError> {
        let v = get(i)?;
        u32::try_from(v)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("key `{}`: expected a pid > 0, found {v}", KEYS[i])))
    };
    let r = Record {
        index: get(0)?,
        kthread_pid: pid(1)?,
        owner_pid: pid(2)?,
        owner_start: get(3)?,
    };
    if r.index != index {
        return Err(bad(format!(
            "key `index`: the file is for kdamond {index}, found {}",
            r.index
        )));
    }
    Ok(r)
}

/// The state file of kdamond `index` under `dir`.
pub(crate) fn path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("damon-{index}.state"))
}

/// Reads the state file of kdamond `index`: `None` when there is none.
pub(crate) fn read(dir: &Path, index: u64) -> Option<Result<Record, StateFileError>> {
    let p = path(dir, index);
    match std::fs::read_to_string(&p) {
        Ok(text) => Some(parse(&p, index, &text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => Some(Err(StateFileError::Io {
            op: "read",
            path: p,
            source,
        })),
    }
}

/// The kdamond indices that have a state file under `dir` (by name).
pub(crate) fn indices(dir: &Path) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let name = e.ok()?.file_name();
        name.to_str()?
            .strip_prefix("damon-")?
            .strip_suffix(".state")?
            .parse()
            .ok()
    })
    .collect()
}

/// Writes `r` as its kdamond's state file (directory 0700, file 0600), replacing any.
pub(crate) fn write(dir: &Path, r: &Record) -> Result<(), StateFileError> {
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StateFileError::Io { op, path, source }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("create directory", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("chmod", dir))?;
    let p = path(dir, r.index);
    let tmp = dir.join(format!(".damon-{}.state.tmp", r.index));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    f.write_all(r.render().as_bytes())
        .map_err(io("write", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &p).map_err(io("rename", &p))
}

/// Removes kdamond `index`'s state file; none is fine.
pub(crate) fn remove(dir: &Path, index: u64) -> Result<(), StateFileError> {
    let p = path(dir, index);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateFileError::Io {
            op: "remove",
            path: p,
            source,
        }),
    }
}

/// This process: its pid and start time (from the running kernel's `/proc/self/stat`:
/// the owner is always a real process, whatever tree the tracker reads).
pub(crate) fn me() -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    Some((
        std::process::id(),
        crate::parse::parse_stat_starttime(&stat)?,
    ))
}

/// Whether the process `pid` started at `start` still runs (the running kernel's
/// `/proc`; a pid reused by a later process does not count).
pub(crate) fn alive(pid: u32, start: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| crate::parse::parse_stat_starttime(&s))
        == Some(start)
}

#[cfg(test)]
mod tests {
    use super::{Record, parse};
    use std::path::Path;

    const P: &str = "/run/etmemd/damon-2.state";

    #[test]
    fn a_rendered_record_parses_back() {
        let r = Record {
            index: 2,
            kthread_pid: 812,
            owner_pid: 790,
            owner_start: 123_456,
        };
        assert_eq!(parse(Path::new(P), 2, &r.render()).expect("parses"), r);
    }

    #[test]
    fn malformed_files_are_refused_naming_the_file_and_the_key() {
        let ok = "index=2\nkthread_pid=812\nowner_pid=790\nowner_start=5\n";
        let cases = [
            (
                "index=2\nkthread_pid=812\nowner_pid=790\n",
                "key `owner_start` missing",
            ),
            (
                &*ok.replace("812", "x1"),
                "key `kthread_pid`: expected a number, found `x1`",
            ),
            (
                &*ok.replace("index=2", "index=3"),
                "the file is for kdamond 2, found 3",
            ),
            (
                &*ok.replace("owner_pid=790", "owner_pid=0"),
                "expected a pid > 0, found 0",
            ),
            (&format!("{ok}colour=red\n"), "line 5: unknown key `colour`"),
            (&format!("{ok}owner_pid=7\n"), "key `owner_pid` given twice"),
            ("garbage", "line 1: expected key=value, found `garbage`"),
        ];
        for (text, want) in cases {
            let e = parse(Path::new(P), 2, text).expect_err(text).to_string();
            assert!(e.contains(P), "{e}");
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn this_process_is_alive_and_a_wrong_start_time_is_not() {
        let (pid, start) = super::me().expect("own stat");
        assert!(super::alive(pid, start));
        assert!(
            !super::alive(pid, start + 1),
            "a reused pid is another process"
        );
    }
}
