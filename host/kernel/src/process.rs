//! [`ProcessHandle`]: a target process held by pidfd, pid and start time, so that no scan
//! or action lands on a recycled pid.
//!
//! On the live kernel (proc root `/proc`) the handle holds a pidfd from `pidfd_open(2)`;
//! [`ProcessHandle::check`] polls it (readable = the process exited) and compares the start
//! time (field 22 of `stat`). Over a fake proc tree there is no pidfd and only the start
//! time is compared. Callers open the per-process file first and `check()` after: a procfs
//! file opened while the process is alive stays bound to that process.
//!
//! This module must not act on the process; it only identifies it.

use crate::Pid;
use crate::parse::parse_stat_starttime;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a process can no longer be used.
#[derive(Debug, Error)]
pub enum ProcessError {
    /// The process exited (expected now and then; log at debug).
    #[error("process {pid} is gone")]
    Gone {
        /// the pid we held
        pid: Pid,
    },
    /// The pid now belongs to another process.
    #[error("process {pid} was replaced by another process (start time {expected} became {found})")]
    Recycled {
        /// the pid
        pid: Pid,
        /// start time when the handle was taken
        expected: u64,
        /// start time now
        found: u64,
    },
    /// `/proc/PID/stat` could not be read or parsed for another reason.
    #[error("process {pid}: cannot read {path}: {reason}")]
    Stat {
        /// the pid
        pid: Pid,
        /// the stat file
        path: PathBuf,
        /// what went wrong
        reason: String,
    },
    /// `pidfd_open` failed for another reason than "no such process".
    #[error("process {pid}: pidfd_open failed: {source}")]
    PidfdOpen {
        /// the pid
        pid: Pid,
        /// the errno
        source: std::io::Error,
    },
}

impl ProcessError {
    /// True when the process exited or its pid was reused: the caller drops the process
    /// from this round and logs at debug.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            ProcessError::Gone { .. } | ProcessError::Recycled { .. }
        )
    }
}

/// A process we track or act on.
#[derive(Debug)]
pub struct ProcessHandle {
    pid: Pid,
    start_time: u64,
    pidfd: Option<OwnedFd>,
    dir: PathBuf,
}

fn read_start_time(dir: &Path, pid: Pid) -> Result<u64, ProcessError> {
    let path = dir.join("stat");
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_stat_starttime(&text).ok_or_else(|| ProcessError::Stat {
            pid,
            path,
            reason: "no start time (field 22)".into(),
        }),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ESRCH) =>
        {
            Err(ProcessError::Gone { pid })
        }
        Err(e) => Err(ProcessError::Stat {
            pid,
            path,
            reason: e.to_string(),
        }),
    }
}

/// `pidfd_open(pid, 0)`, through rustix.
fn pidfd_open(pid: Pid) -> Result<OwnedFd, ProcessError> {
    let raw = i32::try_from(pid).map_err(|_| ProcessError::Gone { pid })?;
    // pid 0 is no process: the kernel answers EINVAL, as it would to the raw call
    let Some(rpid) = rustix::process::Pid::from_raw(raw) else {
        return Err(ProcessError::PidfdOpen {
            pid,
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        });
    };
    rustix::process::pidfd_open(rpid, rustix::process::PidfdFlags::empty()).map_err(|e| {
        if e == rustix::io::Errno::SRCH {
            ProcessError::Gone { pid }
        } else {
            ProcessError::PidfdOpen {
                pid,
                source: e.into(),
            }
        }
    })
}

impl ProcessHandle {
    /// Takes a handle on `pid` under `proc_root`; with `live`, also a pidfd.
    pub(crate) fn open(proc_root: &Path, pid: Pid, live: bool) -> Result<Self, ProcessError> {
        let dir = proc_root.join(pid.to_string());
        // pidfd first, start time second: if the pid was reused in between, the start
        // time belongs to the process the pidfd refers to or the check below fails.
        let pidfd = if live { Some(pidfd_open(pid)?) } else { None };
        let start_time = read_start_time(&dir, pid)?;
        let h = ProcessHandle {
            pid,
            start_time,
            pidfd,
            dir,
        };
        h.check()?;
        Ok(h)
    }

    /// The pid.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The start time (clock ticks after boot) seen when the handle was taken.
    pub fn start_time(&self) -> u64 {
        self.start_time
    }

    /// The pidfd (live kernel only).
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// `/proc/PID/<name>` under the handle's proc root.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A second handle on the same process (the pidfd duplicated), for a holder that
    /// outlives the borrow of this one.
    pub fn try_clone(&self) -> std::io::Result<ProcessHandle> {
        Ok(ProcessHandle {
            pid: self.pid,
            start_time: self.start_time,
            pidfd: self.pidfd.as_ref().map(|f| f.try_clone()).transpose()?,
            dir: self.dir.clone(),
        })
    }

    /// Fails with [`ProcessError::Gone`] or [`ProcessError::Recycled`] when the process
    /// is no longer the one the handle was taken on. Call before every scan and action.
    pub fn check(&self) -> Result<(), ProcessError> {
        if let Some(fd) = &self.pidfd {
            use rustix::event::{PollFd, PollFlags, Timespec};
            let mut fds = [PollFd::new(fd, PollFlags::IN)];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let ready = rustix::event::poll(&mut fds, Some(&zero)).unwrap_or(0);
            if ready > 0 && fds[0].revents().intersects(PollFlags::IN | PollFlags::HUP) {
                return Err(ProcessError::Gone { pid: self.pid });
            }
        }
        let now = read_start_time(&self.dir, self.pid)?;
        if now != self.start_time {
            return Err(ProcessError::Recycled {
                pid: self.pid,
                expected: self.start_time,
                found: now,
            });
        }
        Ok(())
    }
}
