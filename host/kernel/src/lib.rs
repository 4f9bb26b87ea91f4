//! The kernel layer of etmem-rs: the one door to `/proc`, `/sys` and memory syscalls.
//!
//! * [`Kernel`] is the only way the rest of the host reads or changes anything of the
//!   system. The daemon receives it as `Arc<dyn Kernel>`.
//! * [`LinuxKernel`] implements it over a proc root and a sys root; pointed at a temporary
//!   directory it is the fake procfs/sysfs that unit tests use.
//! * Parsers (`parse`) are pure functions over bytes and never open files.
//! * [`ProcessHandle`] holds a target by pidfd + start time; [`track`] measures accesses
//!   into a dense [`AccessMap`]; [`actions`] swaps out and migrates; [`FakeKernel`] records
//!   actions for tests; [`probe()`] says what this kernel offers.

pub mod access;
pub mod actions;
pub mod cgroup;
pub mod fake;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod linux;
pub mod parse;
pub mod probe;
pub mod process;
pub mod track;
pub mod unix;

pub use access::{AccessMap, PageAccess};
pub use actions::{
    ActionReport, FailReason, PageActionError, PageNode, PageRef, SwapMethod, SwapcacheWmark,
};
pub use cgroup::{Cgroup, CgroupError, CgroupMemory, CgroupVersion};
pub use fake::{
    FakeCgroup, FakeKernel, FakeProcess, MigrateCall, RecordedCall, SwapCall, write_fake_cgroup,
};
pub use fault::{FaultyKernel, Injected};
pub use linux::LinuxKernel;
pub use parse::idle_pages::PageSizes;
pub use parse::maps::{Vma, VmaFilter};
pub use parse::meminfo::{HugePool, MemInfo, ProcStatus};
pub use probe::{ProbeReport, probe};
pub use process::{ProcessError, ProcessHandle};
pub use track::{ScanFlags, TrackError, Tracker, TrackerChoice, TrackerKind};
pub use unix::{UnixAddr, UnixError};

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
    /// A held process exited or was replaced.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A memory cgroup could not be found, read or written.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

impl KernelError {
    /// True when a held process exited or was replaced (log at debug).
    pub fn is_gone(&self) -> bool {
        matches!(self, KernelError::Process(p) if p.is_gone())
    }
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

    /// Takes a handle (pidfd + start time) on `pid`; every later call checks it.
    fn open_process(&self, pid: Pid) -> Result<ProcessHandle, ProcessError>;

    /// The VMAs of a process that pass `filter` (maps, or smaps when flags are asked).
    fn vmas(&self, p: &ProcessHandle, filter: &VmaFilter) -> Result<Vec<Vma>, KernelError>;

    /// VmRSS and VmSwap of a process.
    fn status(&self, p: &ProcessHandle) -> Result<ProcStatus, KernelError>;

    /// `/proc/meminfo`.
    fn meminfo(&self) -> Result<MemInfo, KernelError>;

    /// The meminfo of one NUMA node.
    fn node_meminfo(&self, node: u32) -> Result<MemInfo, KernelError>;

    /// The huge page pools of one NUMA node, every page size the kernel offers, ascending
    /// by size (`nodeN/hugepages/hugepages-<size>kB/{nr,free}_hugepages`). Empty when the
    /// node has no `hugepages` directory (a kernel without hugetlbfs).
    fn node_hugepages(&self, node: u32) -> Result<Vec<HugePool>, KernelError>;

    /// Base, PMD and PUD page sizes.
    fn page_sizes(&self) -> PageSizes;

    /// A tracker: the one asked for, or with `Auto` the best available; the error names
    /// what each candidate is missing.
    fn tracker(&self, choice: TrackerChoice) -> Result<Box<dyn Tracker>, TrackError>;

    /// Swaps out `pages` (in order, up to `quota` bytes; pages outside the process's VMAs
    /// are refused).
    fn swap_out(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        quota: u64,
        method: SwapMethod,
    ) -> Result<ActionReport, PageActionError>;

    /// Migrates `pages` to `node` (in order, up to `quota` bytes) with per-page status.
    fn migrate(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        node: u32,
        quota: u64,
    ) -> Result<ActionReport, PageActionError>;

    /// The node of each page (`move_pages` with no node list).
    fn page_nodes(
        &self,
        p: &ProcessHandle,
        addrs: &[u64],
    ) -> Result<Vec<PageNode>, PageActionError>;

    /// Sets the swap cache watermarks of the openEuler etmem_swap module and wakes its
    /// reclaim, through `p`'s `/proc/PID/swap_pages`; [`PageActionError::SwapcacheUnavailable`]
    /// on kernels without the module (upstream has no such interface).
    fn reclaim_swapcache(
        &self,
        p: &ProcessHandle,
        wmark: SwapcacheWmark,
    ) -> Result<(), PageActionError>;

    /// One request/reply exchange on a new connection to the unix stream socket `addr`
    /// (the host's memdcd capability): write `request`, read at most `reply_max` bytes up
    /// to the peer's close ([`unix::exchange`], [`unix::EXCHANGE_TIMEOUT`] per wait).
    fn unix_exchange(
        &self,
        addr: &UnixAddr,
        request: &[u8],
        reply_max: usize,
    ) -> Result<Vec<u8>, UnixError>;
    /// Applies the damon engine's DAMOS `scheme` to `p` on our one kdamond (spec §5.5),
    /// monitored with `attrs`: a target and its own scheme, checked values, never on a
    /// kdamond we did not create ([`track::DamonScheme`]). Dropping the result removes
    /// them (and the kdamond with the last one).
    fn damon_apply_scheme(
        &self,
        p: &ProcessHandle,
        attrs: track::DamonAttrs,
        scheme: track::DamosScheme,
    ) -> Result<track::DamonScheme, TrackError>;

    /// Why [`Kernel::damon_apply_scheme`] cannot work here, without writing anything.
    fn damon_scheme_availability(&self) -> Result<(), String>;

    /// Why the psi engine cannot be added here (C etmem's engine add: `/proc/pressure/memory`
    /// must resolve to a readable file, not a directory), without writing anything. The
    /// default: no PSI.
    fn psi_availability(&self) -> Result<(), String> {
        Err("this kernel layer offers no PSI".into())
    }

    /// The cgroup hierarchy the memory controller is on (spec §5.7: v1 as openEuler has it,
    /// or the unified v2 hierarchy). The default: none.
    fn cgroup_version(&self) -> Result<CgroupVersion, KernelError> {
        Err(CgroupError::Unavailable("this kernel layer offers no cgroups".into()).into())
    }

    /// The cgroups a task's `cg_dir` pattern matches (glob(3) with braces, relative to the
    /// hierarchy's root, never leaving it), sorted by path.
    fn cgroup_glob(&self, pattern: &str) -> Result<Vec<Cgroup>, KernelError> {
        let _ = pattern;
        Err(CgroupError::Unavailable("this kernel layer offers no cgroups".into()).into())
    }

    /// The memory figures and memory pressure of the cgroup at `path` (a path
    /// [`Kernel::cgroup_glob`] returned).
    fn cgroup_memory(&self, path: &str) -> Result<CgroupMemory, KernelError> {
        let _ = path;
        Err(CgroupError::Unavailable("this kernel layer offers no cgroups".into()).into())
    }

    /// Writes `bytes` to the cgroup's `memory.reclaim`; `Ok(false)` when the kernel
    /// reclaimed less than asked (EAGAIN).
    fn cgroup_reclaim(&self, path: &str, bytes: u64) -> Result<bool, KernelError> {
        let _ = (path, bytes);
        Err(CgroupError::Unavailable("this kernel layer offers no cgroups".into()).into())
    }
}
