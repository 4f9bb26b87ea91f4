//! Config errors: one precise reason each, and the C error class it maps to.
//!
//! The Display text is the detail line the daemon sends after C's fixed `error: ...` text:
//! file path, section with its 1-based index and line, key, value found and what was
//! expected. This module only describes errors; it decides nothing.

use std::fmt;
use std::io;
use std::path::PathBuf;

use etmem_proto::OptResult;

/// The largest config file C etmemd accepts (`MAX_CONFIG_FILE_SIZE`), in bytes.
pub const MAX_CONFIG_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// The section kinds etmem knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `[project]`
    Project,
    /// `[engine]`
    Engine,
    /// `[task]`
    Task,
}

impl SectionKind {
    /// The section name as written between brackets.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Project => "project",
            SectionKind::Engine => "engine",
            SectionKind::Task => "task",
        }
    }
}

/// Where a key problem is: which section, and the line of the key (or of the section
/// header when the key is absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionRef {
    /// The section kind.
    pub kind: SectionKind,
    /// 0-based index among sections of that kind (shown 1-based).
    pub index: usize,
    /// 1-based line: of the key when it is present, else of the section header.
    pub line: usize,
}

impl fmt::Display for SectionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] #{} (line {})",
            self.kind.name(),
            self.index + 1,
            self.line
        )
    }
}

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// A required key is absent.
    #[error("required key is missing")]
    Missing,
    /// The key is present with an empty value.
    #[error("value is empty")]
    Empty,
    /// The key appears twice in one section (C silently keeps the last one).
    #[error("key repeated (first at line {first_line}); give each key once per section")]
    Duplicate {
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// The value ends with whitespace (C keeps it, so it never matches).
    #[error("value `{found}` has trailing whitespace; remove it")]
    TrailingWhitespace {
        /// The value with its whitespace.
        found: String,
    },
    /// The value does not have the expected form or range.
    #[error("expected {expected}, found {}", show(.found))]
    Expected {
        /// What is allowed, e.g. `1..=120`.
        expected: String,
        /// The value as written.
        found: String,
    },
    /// The value is longer than allowed.
    #[error("expected {min}..={max} bytes, found {} bytes: `{found}`", .found.len())]
    TooLong {
        /// Shortest allowed length.
        min: usize,
        /// Longest allowed length.
        max: usize,
        /// The value.
        found: String,
    },
    /// A rule that ties this key to another one.
    #[error("{0}")]
    Rule(String),
}

fn show(found: &str) -> String {
    if found.is_empty() {
        "an empty value".to_string()
    } else {
        format!("`{found}`")
    }
}

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `realpath` failed (missing file, dangling link, bad component).
    #[error("config file `{path}`: cannot resolve the path: {source}")]
    Resolve {
        /// The path as given (relative paths are against the daemon's cwd).
        path: String,
        /// The system error.
        source: io::Error,
    },
    /// `stat` of the resolved file failed.
    #[error("config file `{path}`: cannot stat: {source}")]
    Stat {
        /// The resolved path.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The path names a directory.
    #[error("config file `{path}`: is a directory, expected a file")]
    Directory {
        /// The resolved path.
        path: PathBuf,
    },
    /// Neither a regular file nor a directory (fifo, device, socket, symlink raced in after
    /// `realpath`). Found with `O_PATH` + `fstat`: the file was never opened.
    #[error("config file `{path}`: is {kind}, expected a regular file")]
    NotRegular {
        /// The resolved path.
        path: PathBuf,
        /// What it is, in words: `a character device`, `a fifo`, `a socket`...
        kind: &'static str,
    },
    /// Not owned by root:root.
    #[error("config file `{path}`: owned by uid {uid} gid {gid}, expected uid 0 gid 0 (root:root)")]
    Owner {
        /// The resolved path.
        path: PathBuf,
        /// Owner uid.
        uid: u32,
        /// Owner gid.
        gid: u32,
    },
    /// Permission bits other than 0600 or 0400.
    #[error("config file `{path}`: mode {mode:04o}, expected exactly 0600 or 0400")]
    Mode {
        /// The resolved path.
        path: PathBuf,
        /// `st_mode & 0o777`.
        mode: u32,
    },
    /// Larger than [`MAX_CONFIG_FILE_SIZE`].
    #[error("config file `{path}`: {size} bytes, at most 10485760 (10 MiB) allowed")]
    TooLarge {
        /// The resolved path.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Reopening the checked file for reading through its `O_PATH` descriptor failed
    /// (no `/proc` mounted, or the descriptor no longer names the checked file).
    #[error("config file `{path}`: cannot reopen it through {through} for reading: {source}")]
    Reopen {
        /// The resolved path.
        path: PathBuf,
        /// The `/proc/self/fd/N` path used.
        through: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Reading the checked file failed.
    #[error("config file `{path}`: cannot read: {source}")]
    Read {
        /// The resolved path.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// The text is not a valid INI document (GKeyFile would fail to load it).
    #[error("{path}: line {line}: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// None of `[project]`, `[engine]`, `[task]`.
    #[error("{path}: no [project], [engine] or [task] section")]
    NoSection {
        /// The file.
        path: PathBuf,
    },
    /// One key of one section is wrong.
    #[error("{path}: {section}: key `{key}`: {problem}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The section and line.
        section: SectionRef,
        /// The key.
        key: String,
        /// What is wrong.
        problem: KeyProblem,
        /// The C error class (spec §4.4).
        result: OptResult,
    },
}

impl ConfigError {
    /// The C error class of this error (spec §4.1, §4.4): file rules, identity keys and
    /// `[project]` keys give `Inval`; INI syntax and `[engine]`/`[task]` keys `InterErr`.
    pub fn result(&self) -> OptResult {
        match self {
            ConfigError::Resolve { .. }
            | ConfigError::Stat { .. }
            | ConfigError::Directory { .. }
            | ConfigError::NotRegular { .. }
            | ConfigError::Owner { .. }
            | ConfigError::Mode { .. }
            | ConfigError::TooLarge { .. }
            | ConfigError::NoSection { .. } => OptResult::Inval,
            ConfigError::Reopen { .. } | ConfigError::Read { .. } | ConfigError::Syntax { .. } => {
                OptResult::InterErr
            }
            ConfigError::Key { result, .. } => *result,
        }
    }
}
