//! The kernel layer of etmem-rs: the one door to `/proc`, `/sys` and memory syscalls.
//!
//! * [`Kernel`] is the only way the rest of the host reads or changes anything of the
//!   system. The daemon receives it as `Arc<dyn Kernel>`.
//! * [`LinuxKernel`] implements it over a proc root and a sys root; pointed at a temporary
//!   directory it is the fake procfs/sysfs that unit tests use.
//! * Parsers (`parse`) are pure functions over bytes and never open files.

pub mod linux;
pub mod parse;

pub use linux::LinuxKernel;

use thiserror::Error;

/// A process id.
pub type Pid = u32;

/// Which processes a task targets (config `type` + `value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessTarget {
    /// `type=pid`: the value as written (C uses it verbatim).
    Pid(String),
    /// `type=name`: the lowest pid whose `comm` equals the value exactly.
    Comm(String),
}

/// Errors of the kernel layer. Messages name the object (pid, file) and the reason.
#[derive(Debug, Error)]
pub enum KernelError {
    /// A file under the proc or sys root could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// the file
        path: std::path::PathBuf,
        /// the I/O error
        source: std::io::Error,
    },
    /// A file had content we could not parse.
    #[error("cannot parse {path}: {reason}")]
    Parse {
        /// the file
        path: std::path::PathBuf,
        /// what was wrong
        reason: String,
    },
    /// The target process does not exist (or no process has that name).
    #[error("no process {0}")]
    NoProcess(String),
}

/// Everything the host reads from or does to the system goes through this trait.
pub trait Kernel: Send + Sync + std::fmt::Debug {
    /// Number of online CPUs (C etmem clamps `max_threads` to `2*nprocs+1`).
    fn nr_cpus(&self) -> Result<usize, KernelError>;

    /// The NUMA nodes that have memory or CPUs (`/sys/devices/system/node/possible` is not
    /// used: C uses the configured nodes), ascending.
    fn numa_nodes(&self) -> Result<Vec<u32>, KernelError>;

    /// Resolves a target to pids (spec §5.9): the main pid first, then, when
    /// `with_children`, its direct children ascending. Fails with
    /// [`KernelError::NoProcess`] when the main process does not exist.
    fn resolve(&self, target: &ProcessTarget, with_children: bool)
    -> Result<Vec<Pid>, KernelError>;
}
