//! `-m` (systemd `Type=forking`) start-up, as C etmemd does it (spec §1.7): a socket pair,
//! a fork; the parent writes the child's pid to the pid file and exits 0 once the child
//! reports that it listens, or 1 if the child dies first.
//!
//! [`fork_for_systemd`] must be called while the process has one thread (before the tokio
//! runtime starts). This module does not daemonise further (no setsid, chdir or closing of
//! stdio), exactly as C.

use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where the parent writes the child's pid (`PIDFile=` of the unit).
pub const DEFAULT_PID_FILE: &str = "/run/etmemd.pid";

/// Environment variable that overrides [`DEFAULT_PID_FILE`] (for tests).
pub const PID_FILE_ENV: &str = "ETMEMD_PID_FILE";

/// The value the child sends when it listens (a host-order `int`, as C).
pub const READY: i32 = 1;

/// The pid file path: `$ETMEMD_PID_FILE` or [`DEFAULT_PID_FILE`].
pub fn pid_file() -> PathBuf {
    std::env::var_os(PID_FILE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_PID_FILE), PathBuf::from)
}

/// Why `-m` start-up failed before there was a child to report.
#[derive(Debug, Error)]
pub enum ForkError {
    /// socketpair failed.
    #[error("cannot create the start-up socket pair: {0}")]
    SocketPair(io::Error),
    /// fork failed.
    #[error("cannot fork the daemon process: {0}")]
    Fork(io::Error),
}

/// Which side of the fork this process is on.
#[derive(Debug)]
pub enum Role {
    /// The parent is done: exit with this status (0 the child listens, 1 otherwise).
    Parent {
        /// exit status for the parent
        exit_status: u8,
    },
    /// The child: bind, listen, then call [`ReadyNotifier::ready`].
    Child(ReadyNotifier),
}

/// The child's end of the start-up pair. Dropping it without [`ready`](Self::ready) makes
/// the parent exit 1.
#[derive(Debug)]
pub struct ReadyNotifier(UnixStream);

impl ReadyNotifier {
    /// Tells the parent the socket listens (4 bytes, the int 1), and closes the pair.
    pub fn ready(mut self) -> io::Result<()> {
        self.0.write_all(&READY.to_ne_bytes())
    }
}

/// Forks. The parent writes the child's pid (decimal, no newline, mode 0600) to `pid_file`,
/// then waits for the child's report and returns [`Role::Parent`]; the child returns
/// [`Role::Child`].
pub fn fork_for_systemd(pid_file: &Path) -> Result<Role, ForkError> {
    let (parent_end, child_end) = UnixStream::pair().map_err(ForkError::SocketPair)?;
    // SAFETY: called before any other thread exists (the runtime starts after), so the
    // child is a full copy with consistent locks; both sides only continue ordinary Rust.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ForkError::Fork(io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(parent_end);
        return Ok(Role::Child(ReadyNotifier(child_end)));
    }
    drop(child_end);
    Ok(Role::Parent {
        exit_status: parent_wait(pid, pid_file, parent_end),
    })
}

fn parent_wait(child: libc::pid_t, pid_file: &Path, mut pair: UnixStream) -> u8 {
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(pid_file)
        .and_then(|mut f| f.write_all(child.to_string().as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "etmemd: cannot write the daemon pid {child} to {}: {e}",
            pid_file.display()
        );
        // Without a pid file systemd cannot track the daemon: do not leave it behind.
        if let Some(pid) = rustix::process::Pid::from_raw(child) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        return 1;
    }
    let mut word = [0u8; 4];
    match pair.read_exact(&mut word) {
        Ok(()) if i32::from_ne_bytes(word) == READY => 0,
        _ => 1,
    }
}
