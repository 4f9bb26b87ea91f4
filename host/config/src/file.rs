//! The file rules C etmemd applies before parsing (spec §4.1), then the parse.
//!
//! Order as in C: `realpath`, then not a directory, owner uid 0 and gid 0, mode exactly
//! 0600 or 0400, size ≤ 10 MiB; all of these give `Inval`. A read failure or text that is
//! not UTF-8 gives `InterErr` (GKeyFile's load failure). The checks are made on the opened
//! descriptor (`fstat`), so the file checked is the file read.
//! This module must not interpret the text: that is [`crate::parse`].

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, MAX_CONFIG_FILE_SIZE};
use crate::parse::{parse_for_add, parse_for_del};
use crate::types::{ConfigFile, ObjectIds};

/// Resolves `path`, checks the file rules and returns the resolved path and the text.
pub fn read_checked(path: &str) -> Result<(PathBuf, String), ConfigError> {
    let resolved = std::fs::canonicalize(path).map_err(|source| ConfigError::Resolve {
        path: path.to_string(),
        source,
    })?;
    // O_NONBLOCK: opening a fifo must not hang the daemon; it is rejected below.
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&resolved)
        .map_err(|source| ConfigError::Stat {
            path: resolved.clone(),
            source,
        })?;
    let meta = file.metadata().map_err(|source| ConfigError::Stat {
        path: resolved.clone(),
        source,
    })?;
    check_metadata(&resolved, &meta)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ConfigError::Read {
            path: resolved.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_SIZE {
        return Err(ConfigError::TooLarge {
            path: resolved,
            size: bytes.len() as u64,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
        ConfigError::Syntax {
            path: resolved.clone(),
            line,
            reason: "text is not valid UTF-8".into(),
        }
    })?;
    Ok((resolved, text))
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    let path = path.to_path_buf();
    if meta.is_dir() {
        return Err(ConfigError::Directory { path });
    }
    if !meta.is_file() {
        return Err(ConfigError::NotRegular { path });
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        return Err(ConfigError::Owner {
            path,
            uid: meta.uid(),
            gid: meta.gid(),
        });
    }
    let mode = meta.mode() & 0o777;
    if mode != 0o600 && mode != 0o400 {
        return Err(ConfigError::Mode { path, mode });
    }
    if meta.size() > MAX_CONFIG_FILE_SIZE {
        return Err(ConfigError::TooLarge {
            path,
            size: meta.size(),
        });
    }
    Ok(())
}

/// `obj add`: the file rules, then the full parse. Relative paths resolve against the
/// process's cwd (C resolves against the daemon's).
pub fn load_for_add(path: &str) -> Result<ConfigFile, ConfigError> {
    let (resolved, text) = read_checked(path)?;
    parse_for_add(&text, &resolved)
}

/// `obj del`: the file rules, then the identity keys only.
pub fn load_for_del(path: &str) -> Result<ObjectIds, ConfigError> {
    let (resolved, text) = read_checked(path)?;
    parse_for_del(&text, &resolved)
}
