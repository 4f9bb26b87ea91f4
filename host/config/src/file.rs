//! The file rules C etmemd applies before parsing (spec §4.1), then the parse.
//!
//! Order as in C: `realpath`, then not a directory, owner uid 0 and gid 0, mode exactly
//! 0600 or 0400, size ≤ 10 MiB; all of these give `Inval`. A read failure or text that is
//! not UTF-8 gives `InterErr` (GKeyFile's load failure).
//!
//! The file is never opened for reading before it is known to be a regular file: it is
//! opened with `O_PATH | O_NOFOLLOW` (which opens no device, fifo or socket and has no side
//! effect), `fstat`ed through that descriptor, checked, and only then reopened for reading
//! through `/proc/self/fd/N`, which names the same inode. So the file checked is the file
//! read, and `obj add -f /dev/st0` cannot rewind a tape.
//! This module must not interpret the text: that is [`crate::parse`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
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
    let file = open_checked(&resolved)?;
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

/// Opens `resolved` for reading only once an `O_PATH` descriptor of it has been found to be
/// a regular file that passes the rules; the read descriptor is opened through the `O_PATH`
/// one, so it is the same inode (checked again by device and inode number).
fn open_checked(resolved: &Path) -> Result<File, ConfigError> {
    let stat_err = |source| ConfigError::Stat {
        path: resolved.to_path_buf(),
        source,
    };
    // O_PATH opens nothing: no driver open routine runs, a fifo does not wait for a writer.
    // O_NOFOLLOW: a symlink swapped in after `canonicalize` is seen as a link, not followed.
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(resolved)
        .map_err(stat_err)?;
    let meta = handle.metadata().map_err(stat_err)?;
    check_metadata(resolved, &meta)?;
    let through = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
    let reopen_err = |source| ConfigError::Reopen {
        path: resolved.to_path_buf(),
        through: through.clone(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&through)
        .map_err(reopen_err)?;
    let again = file.metadata().map_err(reopen_err)?;
    if (again.dev(), again.ino()) != (meta.dev(), meta.ino()) || !again.is_file() {
        return Err(reopen_err(io::Error::other(
            "the reopened descriptor is not the file that was checked",
        )));
    }
    Ok(file)
}

/// What a file that is not a regular file is, in words.
fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a fifo"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata) -> Result<(), ConfigError> {
    let path = path.to_path_buf();
    if meta.is_dir() {
        return Err(ConfigError::Directory { path });
    }
    if !meta.is_file() {
        return Err(ConfigError::NotRegular {
            path,
            kind: file_kind(&meta.file_type()),
        });
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
