//! [`FakeKernel`]: a [`LinuxKernel`] over a temporary proc/sys tree it builds, which
//! records every action asked of it as typed structs ([`SwapCall`], [`MigrateCall`]) instead
//! of doing it. Reads (maps, status, meminfo, trackers) go to the tree, so trackers run
//! unchanged against files the test wrote.
//!
//! A separate type, never chosen by `cfg(test)`. It must never touch the real `/proc` or
//! `/sys`: every path is under its own temporary directory.

use crate::actions::{
    ActionReport, PageActionError, PageNode, PageRef, SwapMethod, SwapcacheWmark,
};
use crate::linux::LinuxKernel;
use crate::parse::idle_pages::PageSizes;
use crate::parse::maps::{Vma, VmaFilter};
use crate::parse::meminfo::{HugePool, MemInfo, ProcStatus};
use crate::process::{ProcessError, ProcessHandle};
use crate::track::{TrackError, Tracker, TrackerChoice};
use crate::unix::{UnixAddr, UnixError};
use crate::{Kernel, KernelError, Pid, ProcessTarget};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::io;

/// How many `targets/0/regions/N` directories the fake DAMON tree has ready (the kernel
/// makes them when `nr_regions` is written; plain files cannot).
const FAKE_DAMON_REGION_DIRS: usize = 16;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

mod cgroup;
pub use cgroup::{FakeCgroup, write_fake_cgroup};

/// Makes tracefs with the `damon:damon_aggregated` event under the sysfs root `sys`
/// (`kernel/tracing`) and the directory of trace instance `name` with an empty
/// `trace_pipe` (the kernel makes an instance's files on mkdir; a plain directory cannot);
/// returns the instance's directory. Appending lines to its `trace_pipe` is what the
/// kernel's recording looks like to a reader that keeps its offset.
pub fn fake_trace_instance(sys: &Path, name: &str) -> io::Result<PathBuf> {
    let tr = sys.join("kernel/tracing");
    std::fs::create_dir_all(tr.join("events/damon/damon_aggregated"))?;
    let dir = tr.join("instances").join(name);
    std::fs::create_dir_all(dir.join("events/damon/damon_aggregated"))?;
    std::fs::write(dir.join("trace_pipe"), "")?;
    Ok(dir)
}

/// Empties a [`fake_trace_instance`] the way removing a real one does by itself, so that
/// its `rmdir` works.
pub fn empty_fake_trace_instance(dir: &Path) -> io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(())
}

/// A swap-out that would have been done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapCall {
    /// target pid
    pub pid: Pid,
    /// method asked for
    pub method: SwapMethod,
    /// pages that passed validation and quota, in order
    pub pages: Vec<PageRef>,
    /// the quota given
    pub quota: u64,
}

/// A migration that would have been done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateCall {
    /// target pid
    pub pid: Pid,
    /// destination node
    pub node: u32,
    /// pages that passed validation and quota, in order
    pub pages: Vec<PageRef>,
    /// the quota given
    pub quota: u64,
}

/// Every action the fake was asked for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedCall {
    /// [`Kernel::swap_out`]
    Swap(SwapCall),
    /// [`Kernel::migrate`]
    Migrate(MigrateCall),
    /// [`Kernel::page_nodes`]
    QueryNodes {
        /// target pid
        pid: Pid,
        /// number of pages asked about
        pages: usize,
    },
    /// [`Kernel::cgroup_reclaim`]
    CgroupReclaim {
        /// the cgroup's path
        path: String,
        /// bytes asked for
        bytes: u64,
    },
    /// [`Kernel::reclaim_swapcache`]
    ReclaimSwapcache {
        /// the pid whose `swap_pages` carried the ioctls
        pid: Pid,
        /// the watermarks set
        wmark: SwapcacheWmark,
    },
    /// [`Kernel::unix_exchange`]
    UnixExchange {
        /// the socket
        addr: UnixAddr,
        /// the bytes written
        request: Vec<u8>,
    },
}

/// A process to lay out under the fake `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeProcess {
    /// pid
    pub pid: Pid,
    /// comm (at most 15 characters in a real kernel)
    pub comm: String,
    /// parent pid
    pub ppid: Pid,
    /// start time (stat field 22)
    pub start_time: u64,
    /// VMAs, written to both maps and smaps (with their `vm_flags`)
    pub vmas: Vec<Vma>,
    /// VmRSS in kB
    pub vm_rss_kb: u64,
    /// VmSwap in kB
    pub vm_swap_kb: u64,
}

impl FakeProcess {
    /// A process with no VMAs, parent 1, start time 1000.
    pub fn new(pid: Pid, comm: &str) -> Self {
        FakeProcess {
            pid,
            comm: comm.to_owned(),
            ppid: 1,
            start_time: 1000,
            vmas: Vec::new(),
            vm_rss_kb: 0,
            vm_swap_kb: 0,
        }
    }

    /// Adds an anonymous private rw VMA.
    pub fn anon(mut self, start: u64, end: u64) -> Self {
        self.vmas.push(Vma {
            start,
            end,
            perms: crate::parse::maps::Perms {
                read: true,
                write: true,
                exec: false,
                shared: false,
            },
            vm_flags: Some(vec![
                "rd".into(),
                "wr".into(),
                "mr".into(),
                "mw".into(),
                "me".into(),
                "ac".into(),
            ]),
            ..Vma::default()
        });
        self
    }
}

/// A state for a pre-existing kdamond in the fake DAMON tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeKdamond {
    /// `on` when true
    pub running: bool,
    /// `contexts/nr_contexts`
    pub nr_contexts: u32,
}

/// The recording fake kernel.
#[derive(Debug)]
pub struct FakeKernel {
    _dir: tempfile::TempDir,
    inner: LinuxKernel,
    calls: Mutex<Vec<RecordedCall>>,
    nodes: Mutex<HashMap<(Pid, u64), u32>>,
    /// record the pages of swap and migrate calls (else only their counts)
    keep_pages: AtomicBool,
    /// pages of every swap call so far
    swapped_pages: AtomicU64,
    /// replies of the next socket exchanges (none left: the real socket is used)
    unix_replies: Mutex<VecDeque<Result<Vec<u8>, String>>>,
}

fn render_vma(v: &Vma) -> String {
    format!(
        "{:x}-{:x} {}{}{}{} {:08x} {:02x}:{:02x} {} {}",
        v.start,
        v.end,
        if v.perms.read { 'r' } else { '-' },
        if v.perms.write { 'w' } else { '-' },
        if v.perms.exec { 'x' } else { '-' },
        if v.perms.shared { 's' } else { 'p' },
        v.offset,
        v.dev_major,
        v.dev_minor,
        v.inode,
        v.path
    )
}

fn write(path: &Path, text: impl AsRef<[u8]>) -> io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, text)
}

impl FakeKernel {
    /// An empty tree: 2 CPUs, node 0 online, a 1 GiB meminfo, no processes, no trackers.
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let proc_ = dir.path().join("proc");
        let sys = dir.path().join("sys");
        std::fs::create_dir_all(&proc_)?;
        write(&sys.join("devices/system/cpu/online"), "0-1\n")?;
        write(&sys.join("devices/system/node/online"), "0\n")?;
        write(
            &proc_.join("meminfo"),
            "MemTotal:        1048576 kB\nMemFree:          524288 kB\nMemAvailable:     600000 kB\nSwapCached:            0 kB\nSwapTotal:        262144 kB\nSwapFree:         262144 kB\n",
        )?;
        write(&proc_.join("sys/kernel/osrelease"), "6.12.0-fake\n")?;
        write(
            &proc_.join("swaps"),
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        )?;
        std::fs::create_dir_all(proc_.join("self"))?;
        // PSI on (a kernel booted with psi=1); tests remove it to see the psi engine refused
        write(
            &proc_.join("pressure/memory"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )?;
        Ok(FakeKernel {
            inner: LinuxKernel::with_roots(proc_, sys),
            _dir: dir,
            calls: Mutex::new(Vec::new()),
            nodes: Mutex::new(HashMap::new()),
            keep_pages: AtomicBool::new(true),
            swapped_pages: AtomicU64::new(0),
            unix_replies: Mutex::new(VecDeque::new()),
        })
    }

    /// The [`LinuxKernel`] over the tree (for trackers, or to run real file writes such as
    /// `swap_pages` into the tree).
    pub fn linux(&self) -> &LinuxKernel {
        &self.inner
    }

    /// Lays out memory cgroup `cg` in the layout of `v` (see [`write_fake_cgroup`]).
    pub fn add_cgroup(&self, v: crate::CgroupVersion, cg: &FakeCgroup) -> io::Result<()> {
        write_fake_cgroup(self.sys_root(), v, cg)
    }

    /// The fake `/proc`.
    pub fn proc_root(&self) -> &Path {
        self.inner.proc_root()
    }

    /// The fake `/sys`.
    pub fn sys_root(&self) -> &Path {
        self.inner.sys_root()
    }

    /// Lays out `p` under `/proc/PID`: comm, stat, status, maps, smaps, an empty pagemap
    /// and clear_refs.
    pub fn add_process(&self, p: &FakeProcess) -> io::Result<()> {
        let d = self.proc_root().join(p.pid.to_string());
        write(&d.join("comm"), format!("{}\n", p.comm))?;
        write(
            &d.join("stat"),
            format!(
                "{} ({}) S {} {} {} 0 -1 4194560 100 0 0 0 3 4 0 0 20 0 1 0 {} 1000 50\n",
                p.pid, p.comm, p.ppid, p.pid, p.pid, p.start_time
            ),
        )?;
        // VmLck as the kernel counts it: the VMAs with `lo` (mlock) in their VmFlags
        let locked_kb: u64 = p
            .vmas
            .iter()
            .filter(|v| v.is_locked())
            .map(|v| v.len() / 1024)
            .sum();
        write(
            &d.join("status"),
            format!(
                "Name:\t{}\nPid:\t{}\nVmLck:\t{locked_kb} kB\nVmRSS:\t{} kB\nVmSwap:\t{} kB\n",
                p.comm, p.pid, p.vm_rss_kb, p.vm_swap_kb
            ),
        )?;
        let mut maps = String::new();
        let mut smaps = String::new();
        for v in &p.vmas {
            maps.push_str(&render_vma(v));
            maps.push('\n');
            smaps.push_str(&render_vma(v));
            smaps.push_str(&format!("\nSize: {} kB\n", v.len() / 1024));
            if let Some(f) = &v.vm_flags {
                smaps.push_str(&format!("VmFlags: {}\n", f.join(" ")));
            }
        }
        write(&d.join("maps"), maps)?;
        write(&d.join("smaps"), smaps)?;
        write(&d.join("pagemap"), "")?;
        write(&d.join("clear_refs"), "")?;
        Ok(())
    }

    /// Removes `/proc/PID` (the process exited).
    pub fn remove_process(&self, pid: Pid) -> io::Result<()> {
        std::fs::remove_dir_all(self.proc_root().join(pid.to_string()))
    }

    /// Replaces process `pid` by a new one with another start time (pid reuse).
    pub fn recycle_process(&self, pid: Pid, start_time: u64) -> io::Result<()> {
        let mut p = FakeProcess::new(pid, "recycled");
        p.start_time = start_time;
        self.add_process(&p)
    }

    /// Writes pagemap entries for pages from `addr` (pagemap is indexed by page).
    pub fn set_pagemap(&self, pid: Pid, addr: u64, entries: &[u64]) -> io::Result<()> {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_ne_bytes()).collect();
        self.write_at(pid, "pagemap", addr / 4096 * 8, &bytes)
    }

    /// Writes `bytes` at `offset` of `/proc/PID/<name>` (creating it; e.g. an idle_pages
    /// stream at the offset of its start address).
    pub fn write_at(&self, pid: Pid, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.proc_root().join(pid.to_string()).join(name))?;
        f.write_all_at(bytes, offset)
    }

    /// Writes `/proc/PID/idle_pages` for `[start, end)` as the tracker's reads will ask for
    /// it: at each read's address, [`read_count`](crate::parse::idle_pages::read_count)
    /// bytes (base pages of this kernel's size): the address record, then the records
    /// `next(pages left)` gives as `(type code, pages)` (1 to 15 pages of `page` bytes).
    /// Encoded a slice at a time, so the writer stays small at any size (a VM-sized target
    /// is a sparse file). Replaces what the file held.
    pub fn write_idle_pages_stream(
        &self,
        pid: Pid,
        (start, end): (u64, u64),
        page: u64,
        mut next: impl FnMut(u64) -> (u8, u64),
    ) -> io::Result<()> {
        use crate::parse::idle_pages::read_count;
        const SLICE: usize = 1 << 20;
        let path = self.proc_root().join(pid.to_string()).join("idle_pages");
        let f = std::fs::File::create(&path)?;
        let pte = self.page_sizes().pte;
        let page = page.max(1);
        let mut buf = Vec::with_capacity(SLICE + 16);
        let mut at = start;
        while at < end {
            let cap = read_count(at, end, pte);
            let mut offset = at;
            buf.push(0xA0);
            buf.extend_from_slice(&at.to_be_bytes());
            let mut len = 9;
            while len < cap && at < end {
                let (t, nr) = next((end - at) / page);
                let nr = nr.clamp(1, 15);
                buf.push(t << 4 | nr as u8);
                at += nr * page;
                len += 1;
                if buf.len() >= SLICE {
                    f.write_all_at(&buf, offset)?;
                    offset += buf.len() as u64;
                    buf.clear();
                }
            }
            f.write_all_at(&buf, offset)?;
            buf.clear();
        }
        Ok(())
    }

    /// Writes any file under the fake `/proc`.
    pub fn write_proc(&self, rel: &str, text: impl AsRef<[u8]>) -> io::Result<()> {
        write(&self.proc_root().join(rel), text)
    }

    /// Writes any file under the fake `/sys`.
    pub fn write_sys(&self, rel: &str, text: impl AsRef<[u8]>) -> io::Result<()> {
        write(&self.sys_root().join(rel), text)
    }

    /// Makes soft-dirty available (clear_refs and an `sd` VmFlag in `/proc/self/smaps`).
    pub fn enable_soft_dirty(&self) -> io::Result<()> {
        self.write_proc("self/clear_refs", "")?;
        self.write_proc(
            "self/smaps",
            "1000-2000 rw-p 00000000 00:00 0 \nVmFlags: rd wr mr mw me ac sd\n",
        )
    }

    /// Makes the page_idle bitmap exist (`bytes` long, all zero).
    pub fn enable_page_idle(&self, bytes: usize) -> io::Result<()> {
        self.write_sys("kernel/mm/page_idle/bitmap", vec![0u8; bytes])
    }

    /// Makes `/proc/self/idle_pages` exist (etmem_scan loaded).
    pub fn enable_idle_pages(&self) -> io::Result<()> {
        self.write_proc("self/idle_pages", "")
    }

    /// Sets the online nodes and gives each a meminfo of `total_kb` / `free_kb`.
    pub fn set_nodes(&self, nodes: &[u32], total_kb: u64, free_kb: u64) -> io::Result<()> {
        let list: Vec<String> = nodes.iter().map(u32::to_string).collect();
        self.write_sys(
            "devices/system/node/online",
            format!("{}\n", list.join(",")),
        )?;
        for n in nodes {
            self.write_sys(
                &format!("devices/system/node/node{n}/meminfo"),
                format!("Node {n} MemTotal:       {total_kb} kB\nNode {n} MemFree:        {free_kb} kB\n"),
            )?;
        }
        Ok(())
    }

    /// Lays out node `node`'s huge page pool of `size_kb` pages: `nr_hugepages` = `total`,
    /// `free_hugepages` = `free`.
    pub fn set_node_hugepages(
        &self,
        node: u32,
        size_kb: u64,
        total: u64,
        free: u64,
    ) -> io::Result<()> {
        let d = format!("devices/system/node/node{node}/hugepages/hugepages-{size_kb}kB");
        self.write_sys(&format!("{d}/nr_hugepages"), format!("{total}\n"))?;
        self.write_sys(&format!("{d}/free_hugepages"), format!("{free}\n"))?;
        self.write_sys(&format!("{d}/surplus_hugepages"), "0\n")
    }

    /// The DAMON `kdamonds` directory.
    pub fn damon_dir(&self) -> PathBuf {
        crate::track::damon_admin(self.sys_root())
    }

    /// Lays out DAMON sysfs: `existing` kdamonds (nr_kdamonds = their count) plus `spare`
    /// more directories that appear "created" when nr_kdamonds grows (plain files cannot
    /// do that by themselves).
    pub fn add_damon(&self, existing: &[FakeKdamond], spare: usize) -> io::Result<()> {
        let kd = self.damon_dir();
        write(&kd.join("nr_kdamonds"), format!("{}\n", existing.len()))?;
        for i in 0..existing.len() + spare {
            let st = existing.get(i).copied().unwrap_or(FakeKdamond {
                running: false,
                nr_contexts: 0,
            });
            let d = kd.join(i.to_string());
            write(&d.join("state"), if st.running { "on\n" } else { "off\n" })?;
            write(&d.join("pid"), "-1\n")?;
            write(
                &d.join("contexts/nr_contexts"),
                format!("{}\n", st.nr_contexts),
            )?;
            let c = d.join("contexts/0");
            write(&c.join("avail_operations"), "vaddr\nfvaddr\npaddr\n")?;
            write(&c.join("operations"), "vaddr\n")?;
            for f in ["sample_us", "aggr_us", "update_us"] {
                write(&c.join("monitoring_attrs/intervals").join(f), "0\n")?;
            }
            for f in ["min", "max"] {
                write(&c.join("monitoring_attrs/nr_regions").join(f), "0\n")?;
            }
            write(&c.join("targets/nr_targets"), "0\n")?;
            write(&c.join("targets/0/pid_target"), "0\n")?;
            // the kernel makes `regions/0..N` when `nr_regions` is written: a few ready here
            write(&c.join("targets/0/regions/nr_regions"), "0\n")?;
            for r in 0..FAKE_DAMON_REGION_DIRS {
                let rd = c.join("targets/0/regions").join(r.to_string());
                write(&rd.join("start"), "0\n")?;
                write(&rd.join("end"), "0\n")?;
            }
            write(&c.join("schemes/nr_schemes"), "0\n")?;
            let s = c.join("schemes/0");
            write(&s.join("action"), "stat\n")?;
            for a in ["sz", "nr_accesses", "age"] {
                write(&s.join("access_pattern").join(a).join("min"), "0\n")?;
                write(&s.join("access_pattern").join(a).join("max"), "0\n")?;
            }
            std::fs::create_dir_all(s.join("tried_regions"))?;
        }
        Ok(())
    }

    /// Fills `kdamonds/K/contexts/0/schemes/0/tried_regions/` with `(start, end,
    /// nr_accesses)` regions (what the kernel writes on `update_schemes_tried_regions`).
    pub fn set_tried_regions(&self, kdamond: u64, regions: &[(u64, u64, u64)]) -> io::Result<()> {
        let t = self
            .damon_dir()
            .join(kdamond.to_string())
            .join("contexts/0/schemes/0/tried_regions");
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(&t)?;
        for (i, (s, e, n)) in regions.iter().enumerate() {
            let r = t.join(i.to_string());
            write(&r.join("start"), format!("{s}\n"))?;
            write(&r.join("end"), format!("{e}\n"))?;
            write(&r.join("nr_accesses"), format!("{n}\n"))?;
            write(&r.join("age"), "1\n")?;
        }
        Ok(())
    }

    /// Every action recorded so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// With `false`, swap and migrate calls are recorded without their pages (their count
    /// still adds to [`swapped_page_count`](Self::swapped_page_count)): for targets of
    /// millions of pages, whose list would dwarf what is measured.
    pub fn keep_action_pages(&self, keep: bool) {
        self.keep_pages.store(keep, Ordering::Relaxed);
    }

    /// Pages of every swap call so far.
    pub fn swapped_page_count(&self) -> u64 {
        self.swapped_pages.load(Ordering::Relaxed)
    }

    /// The pages to record of an action: all, or none (see
    /// [`keep_action_pages`](Self::keep_action_pages)).
    fn kept(&self, pages: Vec<PageRef>) -> Vec<PageRef> {
        if self.keep_pages.load(Ordering::Relaxed) {
            pages
        } else {
            Vec::new()
        }
    }

    /// The swap calls recorded so far.
    pub fn swap_calls(&self) -> Vec<SwapCall> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                RecordedCall::Swap(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The migrate calls recorded so far.
    pub fn migrate_calls(&self) -> Vec<MigrateCall> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                RecordedCall::Migrate(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// The next socket exchange answers `reply` (`Err`: it fails with that text) without
    /// touching any socket. Scripted replies are used in order; with none left, an exchange
    /// goes to the real socket (a test's own listener).
    pub fn script_unix_reply(&self, reply: Result<Vec<u8>, String>) {
        if let Ok(mut q) = self.unix_replies.lock() {
            q.push_back(reply);
        }
    }

    /// The socket exchanges recorded so far: the socket and the bytes written.
    pub fn unix_exchanges(&self) -> Vec<(UnixAddr, Vec<u8>)> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                RecordedCall::UnixExchange { addr, request } => Some((addr, request)),
                _ => None,
            })
            .collect()
    }

    fn record(&self, c: RecordedCall) {
        if let Ok(mut v) = self.calls.lock() {
            v.push(c);
        }
    }

    fn done(mut rep: ActionReport, pages: &[PageRef]) -> ActionReport {
        rep.method = "fake";
        rep.done_pages = pages.len() as u64;
        rep.done_bytes = pages.iter().map(|p| p.size).sum();
        rep
    }
}

impl Kernel for FakeKernel {
    fn nr_cpus(&self) -> Result<usize, KernelError> {
        self.inner.nr_cpus()
    }

    fn numa_nodes(&self) -> Result<Vec<u32>, KernelError> {
        self.inner.numa_nodes()
    }

    fn resolve(
        &self,
        target: &ProcessTarget,
        with_children: bool,
    ) -> Result<Vec<Pid>, KernelError> {
        self.inner.resolve(target, with_children)
    }

    fn open_process(&self, pid: Pid) -> Result<ProcessHandle, ProcessError> {
        self.inner.open_process(pid)
    }

    fn vmas(&self, p: &ProcessHandle, filter: &VmaFilter) -> Result<Vec<Vma>, KernelError> {
        self.inner.vmas(p, filter)
    }

    fn status(&self, p: &ProcessHandle) -> Result<ProcStatus, KernelError> {
        self.inner.status(p)
    }

    fn meminfo(&self) -> Result<MemInfo, KernelError> {
        self.inner.meminfo()
    }

    fn node_meminfo(&self, node: u32) -> Result<MemInfo, KernelError> {
        self.inner.node_meminfo(node)
    }

    fn node_hugepages(&self, node: u32) -> Result<Vec<HugePool>, KernelError> {
        self.inner.node_hugepages(node)
    }

    fn page_sizes(&self) -> PageSizes {
        self.inner.page_sizes()
    }

    fn tracker(&self, choice: TrackerChoice) -> Result<Box<dyn Tracker>, TrackError> {
        self.inner.tracker(choice)
    }

    /// Writes the fake DAMON tree ([`FakeKernel::add_damon`]), as the live kernel's.
    fn damon_apply_scheme(
        &self,
        p: &ProcessHandle,
        attrs: crate::track::DamonAttrs,
        scheme: crate::track::DamosScheme,
    ) -> Result<crate::track::DamonScheme, TrackError> {
        self.inner.damon_apply_scheme(p, attrs, scheme)
    }

    fn damon_scheme_availability(&self) -> Result<(), String> {
        self.inner.damon_scheme_availability()
    }

    fn swap_out(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        quota: u64,
        method: SwapMethod,
    ) -> Result<ActionReport, PageActionError> {
        let (ok, rep) = self.inner.plan(p, pages, quota, true)?;
        p.check()?;
        let rep = Self::done(rep, &ok);
        self.swapped_pages
            .fetch_add(ok.len() as u64, Ordering::Relaxed);
        self.record(RecordedCall::Swap(SwapCall {
            pid: p.pid(),
            method,
            pages: self.kept(ok),
            quota,
        }));
        Ok(rep)
    }

    fn migrate(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        node: u32,
        quota: u64,
    ) -> Result<ActionReport, PageActionError> {
        let (ok, rep) = self.inner.plan(p, pages, quota, false)?;
        p.check()?;
        if let Ok(mut m) = self.nodes.lock() {
            for pg in &ok {
                m.insert((p.pid(), pg.addr), node);
            }
        }
        let rep = Self::done(rep, &ok);
        self.record(RecordedCall::Migrate(MigrateCall {
            pid: p.pid(),
            node,
            pages: self.kept(ok),
            quota,
        }));
        Ok(rep)
    }

    /// Node 0 for every page, except pages migrated through this fake.
    fn page_nodes(
        &self,
        p: &ProcessHandle,
        addrs: &[u64],
    ) -> Result<Vec<PageNode>, PageActionError> {
        p.check()?;
        self.record(RecordedCall::QueryNodes {
            pid: p.pid(),
            pages: addrs.len(),
        });
        let m = self.nodes.lock().map(|m| m.clone()).unwrap_or_default();
        Ok(addrs
            .iter()
            .map(|a| Ok(m.get(&(p.pid(), *a)).copied().unwrap_or(0)))
            .collect())
    }

    /// Recorded when the process has a `swap_pages` file in the tree (an openEuler kernel
    /// with etmem_swap: create it to have one), else unavailable as on upstream kernels.
    fn reclaim_swapcache(
        &self,
        p: &ProcessHandle,
        wmark: SwapcacheWmark,
    ) -> Result<(), PageActionError> {
        p.check()?;
        if !p.path("swap_pages").exists() {
            return Err(PageActionError::SwapcacheUnavailable(
                crate::linux::NO_SWAPCACHE_IOCTLS.into(),
            ));
        }
        self.record(RecordedCall::ReclaimSwapcache {
            pid: p.pid(),
            wmark,
        });
        Ok(())
    }

    /// Recorded; answered by the next scripted reply, else by the real socket.
    fn unix_exchange(
        &self,
        addr: &UnixAddr,
        request: &[u8],
        reply_max: usize,
    ) -> Result<Vec<u8>, UnixError> {
        self.record(RecordedCall::UnixExchange {
            addr: addr.clone(),
            request: request.to_vec(),
        });
        let scripted = self
            .unix_replies
            .lock()
            .ok()
            .and_then(|mut q| q.pop_front());
        match scripted {
            Some(Ok(mut reply)) => {
                reply.truncate(reply_max);
                Ok(reply)
            }
            Some(Err(why)) => Err(UnixError::Io {
                op: "connect",
                addr: addr.to_string(),
                source: io::Error::other(why),
            }),
            None => self.inner.unix_exchange(addr, request, reply_max),
        }
    }

    fn psi_availability(&self) -> Result<(), String> {
        self.inner.psi_availability()
    }

    fn cgroup_version(&self) -> Result<crate::CgroupVersion, KernelError> {
        self.inner.cgroup_version()
    }

    fn cgroup_glob(&self, pattern: &str) -> Result<Vec<crate::Cgroup>, KernelError> {
        self.inner.cgroup_glob(pattern)
    }

    fn cgroup_memory(&self, path: &str) -> Result<crate::CgroupMemory, KernelError> {
        self.inner.cgroup_memory(path)
    }

    /// Recorded, and the cgroup's usage in the tree lowered by `bytes` (file pages first),
    /// as if the kernel had reclaimed them all; the cgroup must exist.
    fn cgroup_reclaim(&self, path: &str, bytes: u64) -> Result<bool, KernelError> {
        let v = self.inner.cgroup_version()?;
        let m = self.inner.cgroup_memory(path)?;
        self.record(RecordedCall::CgroupReclaim {
            path: path.to_string(),
            bytes,
        });
        let mut cg = FakeCgroup::new(path, m.file, m.anon);
        let from_file = bytes.min(m.file);
        cg.file = m.file - from_file;
        cg.anon = m.anon - (bytes - from_file).min(m.anon);
        cg.usage = m.usage.saturating_sub(bytes);
        cg.limit = (m.limit < (1 << 62)).then_some(m.limit);
        cg.min = m.min;
        cg.low = m.low;
        cg.swap_limit = (m.swap_limit < (1 << 62)).then_some(m.swap_limit);
        cg.swap_usage = m.swap_usage;
        cg.avg10 = m.pressure_avg10;
        cg.avg60 = m.pressure_avg60;
        write_fake_cgroup(self.sys_root(), v, &cg).map_err(|source| KernelError::Read {
            path: self.sys_root().join("fs/cgroup").join(path),
            source,
        })?;
        Ok(true)
    }
}
