//! [`LinuxKernel`]: the [`Kernel`] over a proc root and a sys root.

use crate::actions::{
    self, ActionReport, PageActionError, PageNode, PageRef, SwapMethod, SwapcacheWmark,
};
use crate::parse::idle_pages::PageSizes;
use crate::parse::maps::{Vma, VmaFilter, parse_maps, parse_smaps};
use crate::parse::meminfo::{
    HugePool, MemInfo, ProcStatus, parse_counter, parse_hugepages_dir_name, parse_meminfo,
    parse_status,
};
use crate::parse::pagemap::{PagemapEntry, decode_pagemap};
use crate::parse::{parse_id_list, parse_stat_ppid};
use crate::process::{ProcessError, ProcessHandle};
use crate::track::{self, TrackError, Tracker, TrackerChoice};
use crate::{Kernel, KernelError, Pid, ProcessTarget};
use std::path::{Path, PathBuf};

/// The real kernel (`/proc`, `/sys`), or a fake one when the roots point at a temporary
/// directory laid out like them.
#[derive(Debug, Clone)]
pub struct LinuxKernel {
    proc_root: PathBuf,
    sys_root: PathBuf,
}

/// [`LinuxKernel::state_dir`] for the sys root `sys`.
pub(crate) fn state_dir_for(sys: &Path) -> PathBuf {
    if sys == Path::new("/sys") {
        return PathBuf::from("/run/etmemd");
    }
    sys.parent()
        .unwrap_or_else(|| Path::new("/"))
        .join("run/etmemd")
}

impl Default for LinuxKernel {
    fn default() -> Self {
        LinuxKernel::with_roots("/proc", "/sys")
    }
}

impl LinuxKernel {
    /// A kernel reading `proc_root` as `/proc` and `sys_root` as `/sys`.
    pub fn with_roots(proc_root: impl Into<PathBuf>, sys_root: impl Into<PathBuf>) -> Self {
        LinuxKernel {
            proc_root: proc_root.into(),
            sys_root: sys_root.into(),
        }
    }

    /// The proc root.
    pub fn proc_root(&self) -> &Path {
        &self.proc_root
    }

    /// The sys root.
    pub fn sys_root(&self) -> &Path {
        &self.sys_root
    }

    /// Where etmemd keeps the state files of what it leaves in the kernel (its kdamonds):
    /// `/run/etmemd` over the sys root `/sys`, else `run/etmemd` beside the sys root (a
    /// fake tree keeps them in its own temporary directory).
    pub fn state_dir(&self) -> PathBuf {
        state_dir_for(&self.sys_root)
    }

    /// Releases what trackers left in the kernel: every DAMON kdamond this process created
    /// under this sys root is turned off and removed, even one whose tracker is still in a
    /// pass on another thread, and no new one is created after. For the daemon's exit.
    /// Returns what could not be removed.
    pub fn release_trackers(&self) -> Vec<(std::path::PathBuf, crate::TrackError)> {
        crate::track::damon::release_owned(&self.sys_root)
    }

    /// True when this is the running kernel (proc root `/proc`): pidfds and syscalls are
    /// used. Over any other root the tree is a fake and syscall actions are refused.
    pub fn is_live(&self) -> bool {
        self.proc_root == Path::new("/proc")
    }

    /// PTE/PMD/PUD sizes: from the page size (AT_PAGESZ) on the live kernel, 4 KiB over
    /// a fake tree.
    pub fn page_sizes(&self) -> PageSizes {
        if self.is_live() {
            // the auxiliary vector's AT_PAGESZ, what sysconf(_SC_PAGESIZE) answers
            let ps = rustix::param::page_size();
            if let Ok(ps) = u64::try_from(ps)
                && ps.is_power_of_two()
                && let Some(s) = PageSizes::from_shift(ps.trailing_zeros())
            {
                return s;
            }
        }
        PageSizes::X86_64
    }

    /// Pagemap entries of `n` base pages from `start` (for checks and tools; trackers read
    /// pagemap themselves). Pages past the readable end are omitted.
    pub fn pagemap(
        &self,
        p: &ProcessHandle,
        start: u64,
        n: usize,
    ) -> Result<Vec<PagemapEntry>, KernelError> {
        let path = p.path("pagemap");
        let f = std::fs::File::open(&path).map_err(|source| KernelError::Read {
            path: path.clone(),
            source,
        })?;
        p.check()?;
        let mut buf = Vec::new();
        track::read_pagemap(&f, &path, start, self.page_sizes().pte, n, &mut buf).map_err(|e| {
            KernelError::Parse {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(decode_pagemap(&buf).collect())
    }

    fn read(&self, path: PathBuf) -> Result<String, KernelError> {
        std::fs::read_to_string(&path).map_err(|source| KernelError::Read { path, source })
    }

    /// Every numeric entry of the proc root, ascending.
    /// `parent`'s children from its threads' `children` files; `None` when the kernel has
    /// none (no `CONFIG_PROC_CHILDREN`) or they cannot be read (the caller falls back).
    fn children_of_threads(&self, parent: Pid) -> Option<Vec<Pid>> {
        let tasks = self.proc_root.join(format!("{parent}/task"));
        let mut kids = Vec::new();
        for e in std::fs::read_dir(&tasks).ok()? {
            let text = std::fs::read_to_string(e.ok()?.path().join("children")).ok()?;
            kids.extend(
                text.split_ascii_whitespace()
                    .filter_map(|p| p.parse::<Pid>().ok()),
            );
        }
        kids.sort_unstable();
        kids.dedup();
        Some(kids)
    }

    fn all_pids(&self) -> Result<Vec<Pid>, KernelError> {
        let dir = std::fs::read_dir(&self.proc_root).map_err(|source| KernelError::Read {
            path: self.proc_root.clone(),
            source,
        })?;
        let mut pids: Vec<Pid> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    fn main_pid(&self, target: &ProcessTarget) -> Result<Pid, KernelError> {
        match target {
            ProcessTarget::Pid(value) => {
                let pid: Pid = value
                    .parse()
                    .map_err(|_| KernelError::NoProcess(format!("`{value}` (not a pid)")))?;
                if self.proc_root.join(pid.to_string()).is_dir() {
                    Ok(pid)
                } else {
                    Err(KernelError::NoProcess(pid.to_string()))
                }
            }
            ProcessTarget::Comm(name) => self
                .all_pids()?
                .into_iter()
                .find(|pid| {
                    std::fs::read_to_string(self.proc_root.join(format!("{pid}/comm")))
                        .is_ok_and(|comm| comm.strip_suffix('\n').unwrap_or(&comm) == name)
                })
                .ok_or_else(|| KernelError::NoProcess(format!("named `{name}`"))),
        }
    }

    /// The direct children of `parent`: from `/proc/PID/task/TID/children` of each of its
    /// threads (`CONFIG_PROC_CHILDREN`: a few small reads, whatever else runs), else by
    /// reading every process's `stat` for its parent (one read per process on the machine,
    /// each round: 13-20 ms of a steady round's scan in the lab, more on a busy host).
    fn children(&self, parent: Pid) -> Result<Vec<Pid>, KernelError> {
        if let Some(kids) = self.children_of_threads(parent) {
            return Ok(kids);
        }
        Ok(self
            .all_pids()?
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(self.proc_root.join(format!("{pid}/stat")))
                    .ok()
                    .and_then(|s| parse_stat_ppid(&s))
                    == Some(parent)
            })
            .collect())
    }
}

impl Kernel for LinuxKernel {
    fn nr_cpus(&self) -> Result<usize, KernelError> {
        let path = self.sys_root.join("devices/system/cpu/online");
        let text = self.read(path.clone())?;
        parse_id_list(&text)
            .map(|ids| ids.len().max(1))
            .ok_or_else(|| KernelError::Parse {
                path,
                reason: format!("expected a cpu list, found `{}`", text.trim()),
            })
    }

    fn numa_nodes(&self) -> Result<Vec<u32>, KernelError> {
        let path = self.sys_root.join("devices/system/node/online");
        match self.read(path.clone()) {
            // A kernel without CONFIG_NUMA has no node directory: one node, 0.
            Err(KernelError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(vec![0])
            }
            Err(e) => Err(e),
            Ok(text) => parse_id_list(&text).ok_or_else(|| KernelError::Parse {
                path,
                reason: format!("expected a node list, found `{}`", text.trim()),
            }),
        }
    }

    fn resolve(
        &self,
        target: &ProcessTarget,
        with_children: bool,
    ) -> Result<Vec<Pid>, KernelError> {
        let main = self.main_pid(target)?;
        let mut pids = vec![main];
        if with_children {
            pids.extend(self.children(main)?);
        }
        Ok(pids)
    }

    fn open_process(&self, pid: Pid) -> Result<ProcessHandle, ProcessError> {
        ProcessHandle::open(&self.proc_root, pid, self.is_live())
    }

    fn vmas(&self, p: &ProcessHandle, filter: &VmaFilter) -> Result<Vec<Vma>, KernelError> {
        let all = self.read_vmas(p, filter.needs_smaps())?;
        Ok(all.into_iter().filter(|v| filter.keep(v)).collect())
    }

    fn status(&self, p: &ProcessHandle) -> Result<ProcStatus, KernelError> {
        Ok(parse_status(&read_checked(p, &p.path("status"))?))
    }

    fn meminfo(&self) -> Result<MemInfo, KernelError> {
        let path = self.proc_root.join("meminfo");
        Ok(parse_meminfo(self.read(path)?.as_bytes()))
    }

    fn node_meminfo(&self, node: u32) -> Result<MemInfo, KernelError> {
        let path = self
            .sys_root
            .join(format!("devices/system/node/node{node}/meminfo"));
        Ok(parse_meminfo(self.read(path)?.as_bytes()))
    }

    fn node_hugepages(&self, node: u32) -> Result<Vec<HugePool>, KernelError> {
        let dir = self
            .sys_root
            .join(format!("devices/system/node/node{node}/hugepages"));
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(KernelError::Read { path: dir, source }),
        };
        let mut pools = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| KernelError::Read {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name();
            let Some(size_kb) = name.to_str().and_then(parse_hugepages_dir_name) else {
                continue;
            };
            let counter = |file: &str| -> Result<u64, KernelError> {
                let path = entry.path().join(file);
                let text = self.read(path.clone())?;
                parse_counter(&text).ok_or_else(|| KernelError::Parse {
                    path,
                    reason: format!("expected a page count, found `{}`", text.trim()),
                })
            };
            pools.push(HugePool {
                size_kb,
                total: counter("nr_hugepages")?,
                free: counter("free_hugepages")?,
            });
        }
        pools.sort_by_key(|p| p.size_kb);
        Ok(pools)
    }

    fn page_sizes(&self) -> PageSizes {
        LinuxKernel::page_sizes(self)
    }

    fn tracker(&self, choice: TrackerChoice) -> Result<Box<dyn Tracker>, TrackError> {
        track::choose(self, choice)
    }

    fn damon_apply_scheme(
        &self,
        p: &ProcessHandle,
        attrs: track::DamonAttrs,
        scheme: track::DamosScheme,
    ) -> Result<track::DamonScheme, TrackError> {
        track::DamonScheme::apply(self, p, attrs, scheme)
    }

    fn damon_scheme_availability(&self) -> Result<(), String> {
        track::damon_scheme_availability(&self.sys_root)
    }

    fn swap_out(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        quota: u64,
        method: SwapMethod,
    ) -> Result<ActionReport, PageActionError> {
        let (ok, mut rep) = self.plan(p, pages, quota, true)?;
        let has_swap_pages = p.path("swap_pages").exists();
        match method {
            SwapMethod::SwapPages if !has_swap_pages => {
                return Err(PageActionError::Unavailable(
                    "no /proc/PID/swap_pages: the openEuler etmem_swap module is not loaded".into(),
                ));
            }
            SwapMethod::SwapPages => actions::swap_pages(p, &ok, &mut rep)?,
            SwapMethod::Auto if has_swap_pages => actions::swap_pages(p, &ok, &mut rep)?,
            SwapMethod::Auto | SwapMethod::Pageout => {
                if !self.is_live() {
                    return Err(PageActionError::NotLive("process_madvise"));
                }
                actions::pageout(p, &ok, &mut rep)?
            }
        }
        Ok(rep)
    }

    fn migrate(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        node: u32,
        quota: u64,
    ) -> Result<ActionReport, PageActionError> {
        if !self.is_live() {
            return Err(PageActionError::NotLive("move_pages"));
        }
        let (ok, mut rep) = self.plan(p, pages, quota, false)?;
        actions::migrate(p, &ok, node, &mut rep)?;
        Ok(rep)
    }

    fn page_nodes(
        &self,
        p: &ProcessHandle,
        addrs: &[u64],
    ) -> Result<Vec<PageNode>, PageActionError> {
        if !self.is_live() {
            return Err(PageActionError::NotLive("move_pages"));
        }
        actions::query_nodes(p, addrs)
    }

    fn reclaim_swapcache(
        &self,
        p: &ProcessHandle,
        wmark: SwapcacheWmark,
    ) -> Result<(), PageActionError> {
        if !p.path("swap_pages").exists() {
            p.check()?;
            return Err(PageActionError::SwapcacheUnavailable(
                NO_SWAPCACHE_IOCTLS.into(),
            ));
        }
        actions::reclaim_swapcache(p, wmark)
    }

    fn unix_exchange(
        &self,
        addr: &crate::UnixAddr,
        request: &[u8],
        reply_max: usize,
    ) -> Result<Vec<u8>, crate::UnixError> {
        crate::unix::exchange(addr, request, reply_max, crate::unix::EXCHANGE_TIMEOUT)
    }

    fn psi_availability(&self) -> Result<(), String> {
        crate::cgroup::psi_availability(&self.proc_root)
    }

    fn cgroup_version(&self) -> Result<crate::CgroupVersion, KernelError> {
        Ok(crate::cgroup::detect(&self.sys_root)?)
    }

    fn cgroup_glob(&self, pattern: &str) -> Result<Vec<crate::Cgroup>, KernelError> {
        let v = crate::cgroup::detect(&self.sys_root)?;
        Ok(crate::cgroup::glob(&self.sys_root, v, pattern)?)
    }

    fn cgroup_memory(&self, path: &str) -> Result<crate::CgroupMemory, KernelError> {
        let v = crate::cgroup::detect(&self.sys_root)?;
        Ok(crate::cgroup::memory(&self.sys_root, v, path)?)
    }

    fn cgroup_reclaim(&self, path: &str, bytes: u64) -> Result<bool, KernelError> {
        let v = crate::cgroup::detect(&self.sys_root)?;
        Ok(crate::cgroup::reclaim(&self.sys_root, v, path, bytes)?)
    }
}

/// Why swap cache reclaim is missing on a kernel without `/proc/PID/swap_pages`.
pub(crate) const NO_SWAPCACHE_IOCTLS: &str = "no /proc/PID/swap_pages: the openEuler etmem_swap \
     module is not loaded (its SET_SWAPCACHE_WMARK and RECLAIM_SWAPCACHE_ON ioctls are the only \
     swap cache reclaim a kernel offers)";

impl LinuxKernel {
    /// Every VMA of `p`, from smaps (with VmFlags; the kernel walks the page tables for
    /// its sizes, so it costs more) or maps.
    fn read_vmas(&self, p: &ProcessHandle, smaps: bool) -> Result<Vec<Vma>, KernelError> {
        let path = p.path(if smaps { "smaps" } else { "maps" });
        let bytes = read_checked(p, &path)?;
        if smaps {
            parse_smaps(&bytes)
        } else {
            parse_maps(&bytes)
        }
        .map_err(|e| KernelError::Parse {
            path,
            reason: e.to_string(),
        })
    }

    /// Reads the target's VMAs and validates `pages` against them and `quota`. For a
    /// swap-out (`swap`), pages in mlock()ed VMAs are refused as `locked`: the VMAs come
    /// from smaps then, but only when status says the process has locked memory (VmLck),
    /// so the common case stays on the cheap maps.
    pub(crate) fn plan(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        quota: u64,
        swap: bool,
    ) -> Result<(Vec<PageRef>, ActionReport), PageActionError> {
        let vmas_error = |e| match e {
            KernelError::Process(pe) => PageActionError::Process(pe),
            e => PageActionError::Vmas {
                pid: p.pid(),
                reason: e.to_string(),
            },
        };
        let locked = swap && self.status(p).map_err(vmas_error)?.vm_lck_kb.unwrap_or(0) > 0;
        let vmas = self.read_vmas(p, locked).map_err(vmas_error)?;
        Ok(actions::plan(&vmas, pages, quota, locked))
    }
}

/// Opens `path`, checks the process is still the one held, then reads the file (a procfs
/// file opened while the process lives stays bound to it).
fn read_checked(p: &ProcessHandle, path: &Path) -> Result<Vec<u8>, KernelError> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            KernelError::Process(ProcessError::Gone { pid: p.pid() })
        } else {
            KernelError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    p.check()?;
    let mut v = Vec::new();
    f.read_to_end(&mut v).map_err(|source| KernelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake() -> (tempfile::TempDir, LinuxKernel) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let proc_ = root.join("proc");
        let sys = root.join("sys");
        for (pid, comm, ppid) in [
            (10, "mysqld", 1),
            (11, "worker", 10),
            (12, "mysqld", 1),
            (13, "x", 10),
        ] {
            let d = proc_.join(pid.to_string());
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(d.join("comm"), format!("{comm}\n")).expect("write");
            std::fs::write(d.join("stat"), format!("{pid} ({comm}) S {ppid} 1 1 0"))
                .expect("write");
        }
        std::fs::create_dir_all(sys.join("devices/system/cpu")).expect("mkdir");
        std::fs::write(sys.join("devices/system/cpu/online"), "0-3\n").expect("write");
        let k = LinuxKernel::with_roots(proc_, sys);
        (dir, k)
    }

    #[test]
    fn resolves_by_pid_and_by_name_with_children() {
        let (_d, k) = fake();
        assert_eq!(
            k.resolve(&ProcessTarget::Pid("12".into()), false)
                .expect("pid"),
            vec![12]
        );
        assert_eq!(
            k.resolve(&ProcessTarget::Comm("mysqld".into()), true)
                .expect("name"),
            vec![10, 11, 13]
        );
        assert!(matches!(
            k.resolve(&ProcessTarget::Pid("99".into()), false),
            Err(KernelError::NoProcess(_))
        ));
        assert!(matches!(
            k.resolve(&ProcessTarget::Comm("mysql".into()), false),
            Err(KernelError::NoProcess(_))
        ));
    }

    #[test]
    fn children_come_from_the_threads_children_files_where_the_kernel_has_them() {
        let (d, k) = fake();
        // pid 10's two threads list 11 and 14 (14's stat says nothing of 10: the children
        // files are what is read, not every process's stat)
        let task = d.path().join("proc/10/task");
        for (tid, kids) in [(10, "11 "), (15, "14 11 ")] {
            std::fs::create_dir_all(task.join(tid.to_string())).expect("mkdir");
            std::fs::write(task.join(format!("{tid}/children")), kids).expect("write");
        }
        assert_eq!(
            k.resolve(&ProcessTarget::Pid("10".into()), true)
                .expect("pid"),
            vec![10, 11, 14]
        );
        // a thread without the file (no CONFIG_PROC_CHILDREN): every stat again
        std::fs::create_dir_all(task.join("16")).expect("mkdir");
        assert_eq!(
            k.resolve(&ProcessTarget::Pid("10".into()), true)
                .expect("pid"),
            vec![10, 11, 13]
        );
    }

    #[test]
    fn cpus_and_nodes() {
        let (_d, k) = fake();
        assert_eq!(k.nr_cpus().expect("cpus"), 4);
        assert_eq!(k.numa_nodes().expect("nodes"), vec![0]);
    }
}
