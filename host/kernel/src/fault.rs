//! A kernel that fails at random, for hardening tests: [`FaultyKernel`] wraps a
//! [`FakeKernel`] and, from a seed, makes any call fail now and then with the errors a
//! real kernel gives (EIO, ENOMEM, EAGAIN, ESRCH), cuts page actions short (only part of
//! the pages get through), and fails tracker passes. Every fault carries a numbered cause
//! (`injected fault #N`) so a test can follow it into the logs.
//!
//! It also checks what reaches the kernel ([`FaultyKernel::violations`]): a swap-out or a
//! migration may succeed only on the process its handle was taken on (not on one that
//! exited, or another that got its pid), and may do no more pages than lie in that
//! process's VMAs as they are at that moment. Changing maps and exiting processes between
//! calls are the test's to do, through [`FaultyKernel::mutate`], which waits until no call
//! is under way (so that a call sees one state of the tree from start to end).

use crate::access::AccessMap;
use crate::actions::{
    ActionReport, PageActionError, PageNode, PageRef, SwapMethod, SwapcacheWmark,
};
use crate::parse::idle_pages::PageSizes;
use crate::process::{ProcessError, ProcessHandle};
use crate::track::{TrackError, Tracker, TrackerChoice, TrackerKind};
use crate::{
    FakeKernel, HugePool, Kernel, KernelError, MemInfo, Pid, ProcStatus, ProcessTarget, Vma,
    VmaFilter,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

/// The errnos a fault is drawn from.
const ERRNOS: [i32; 4] = [libc::EIO, libc::ENOMEM, libc::EAGAIN, libc::ESRCH];

/// One fault given out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// its number, in the order given (from 1)
    pub id: u64,
    /// the call that failed (`vmas`, `swap_out`, `tracker pass`, ...)
    pub call: &'static str,
    /// the cause's text, as it appears in the error
    pub cause: String,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    /// faults per million calls
    rate_ppm: u32,
    injected: Vec<Injected>,
    violations: Vec<String>,
    calls: u64,
}

impl State {
    /// A fault for `call`, or none (the call goes through), drawn at the rate.
    fn draw(&mut self, call: &'static str) -> Option<std::io::Error> {
        self.calls += 1;
        if self.rng.random_range(0..1_000_000u32) >= self.rate_ppm {
            return None;
        }
        let errno = ERRNOS[self.rng.random_range(0..ERRNOS.len())];
        let id = self.injected.len() as u64 + 1;
        let base = std::io::Error::from_raw_os_error(errno);
        let cause = format!("injected fault #{id} ({base})");
        self.injected.push(Injected {
            id,
            call,
            cause: cause.clone(),
        });
        Some(std::io::Error::new(base.kind(), cause))
    }
}

/// `rate` (clamped to 0..=1) in faults per million calls.
fn ppm(rate: f64) -> u32 {
    (rate.clamp(0.0, 1.0) * 1e6) as u32
}

/// A [`FakeKernel`] whose calls fail at random; see the module docs.
#[derive(Debug, Clone)]
pub struct FaultyKernel {
    fake: Arc<FakeKernel>,
    state: Arc<Mutex<State>>,
    /// held (shared) by every call, (exclusive) by [`FaultyKernel::mutate`]
    gate: Arc<RwLock<()>>,
}

impl FaultyKernel {
    /// Wraps `fake`; each call fails with probability `rate` (0..=1), drawn from `seed`.
    pub fn new(fake: Arc<FakeKernel>, seed: u64, rate: f64) -> FaultyKernel {
        let rate_ppm = ppm(rate);
        FaultyKernel {
            fake,
            state: Arc::new(Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                rate_ppm,
                injected: Vec::new(),
                violations: Vec::new(),
                calls: 0,
            })),
            gate: Arc::new(RwLock::new(())),
        }
    }

    /// Makes calls from now on fail with probability `rate` (0 stops the faults: a test
    /// lets the daemon settle before it stops, so that no call whose outcome a stopped
    /// round drops is a fault).
    pub fn set_rate(&self, rate: f64) {
        self.lock().rate_ppm = ppm(rate);
    }

    /// Changes the tree with `f` (processes exit, maps change) while no call is under way.
    pub fn mutate<R>(&self, f: impl FnOnce(&FakeKernel) -> R) -> R {
        let _only = self
            .gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&self.fake)
    }

    fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fake kernel underneath (to change processes and maps between calls).
    pub fn fake(&self) -> &Arc<FakeKernel> {
        &self.fake
    }

    /// Every fault given out so far.
    pub fn injected(&self) -> Vec<Injected> {
        self.lock().injected.clone()
    }

    /// Calls made so far (failed or not).
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Page actions that reached pages outside the process's VMAs (should stay empty).
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// A number drawn from the kernel's seeded generator, below `n` (for a test's own
    /// choices, so that one seed replays the whole run).
    pub fn draw_below(&self, n: u64) -> u64 {
        self.lock().rng.random_range(0..n.max(1))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fault(&self, call: &'static str) -> Option<std::io::Error> {
        self.lock().draw(call)
    }

    /// A read of `file` that failed.
    fn read_error(&self, call: &'static str, file: &str) -> Result<(), KernelError> {
        match self.fault(call) {
            Some(source) => Err(KernelError::Read {
                path: PathBuf::from(file),
                source,
            }),
            None => Ok(()),
        }
    }

    /// Pages of `pages` inside a VMA of `p` as its maps read now (`None`: the process is
    /// not the one the handle was taken on, or its maps are unreadable).
    fn pages_inside(&self, p: &ProcessHandle, pages: &[PageRef]) -> Option<u64> {
        p.check().ok()?;
        let vmas = self.fake.vmas(p, &VmaFilter::default()).ok()?;
        let inside = pages
            .iter()
            .filter(|pg| {
                let end = pg.addr.saturating_add(pg.size);
                vmas.iter().any(|v| v.start <= pg.addr && end <= v.end)
            })
            .count();
        Some(inside as u64)
    }

    /// Records a violation when `done` pages of a `call` exceed what `inside` allowed.
    fn check_done(&self, p: &ProcessHandle, call: &str, inside: Option<u64>, done: u64) {
        let allowed = inside.unwrap_or(0);
        if done > allowed {
            let why = match inside {
                None => "a process that is not the one its handle was taken on".to_owned(),
                Some(n) => format!("{n} page(s) inside its VMAs"),
            };
            self.lock().violations.push(format!(
                "{call} of pid {} did {done} page(s) with {why}",
                p.pid()
            ));
        }
    }

    /// A page action `call` (the `syscall` it stands for) on `pages` through `act`: fails
    /// now and then, is cut short now and then, and is checked afterwards.
    fn page_action(
        &self,
        call: &'static str,
        syscall: &'static str,
        p: &ProcessHandle,
        pages: &[PageRef],
        act: impl FnOnce(&[PageRef]) -> Result<ActionReport, PageActionError>,
    ) -> Result<ActionReport, PageActionError> {
        let _call = self.enter();
        if let Some(source) = self.fault(call) {
            return Err(PageActionError::Syscall {
                pid: p.pid(),
                call: syscall,
                source,
            });
        }
        let pages = self.maybe_short(pages);
        let inside = self.pages_inside(p, pages);
        let r = act(pages)?;
        self.check_done(p, call, inside, r.done_pages);
        Ok(r)
    }

    /// `pages` cut short now and then (a partial write): the first half of them.
    fn maybe_short<'a>(&self, pages: &'a [PageRef]) -> &'a [PageRef] {
        let mut s = self.lock();
        if pages.len() > 1 && s.rate_ppm > 0 && s.rng.random_range(0..1_000_000u32) < s.rate_ppm {
            &pages[..pages.len() / 2]
        } else {
            pages
        }
    }
}

impl Kernel for FaultyKernel {
    fn nr_cpus(&self) -> Result<usize, KernelError> {
        let _call = self.enter();
        self.read_error("nr_cpus", "/sys/devices/system/cpu/online")?;
        self.fake.nr_cpus()
    }

    fn numa_nodes(&self) -> Result<Vec<u32>, KernelError> {
        let _call = self.enter();
        self.read_error("numa_nodes", "/sys/devices/system/node/online")?;
        self.fake.numa_nodes()
    }

    fn resolve(
        &self,
        target: &ProcessTarget,
        with_children: bool,
    ) -> Result<Vec<Pid>, KernelError> {
        let _call = self.enter();
        self.read_error("resolve", "/proc")?;
        self.fake.resolve(target, with_children)
    }

    fn open_process(&self, pid: Pid) -> Result<ProcessHandle, ProcessError> {
        let _call = self.enter();
        if let Some(e) = self.fault("open_process") {
            return Err(ProcessError::Stat {
                pid,
                path: PathBuf::from(format!("/proc/{pid}/stat")),
                reason: e.to_string(),
            });
        }
        self.fake.open_process(pid)
    }

    fn vmas(&self, p: &ProcessHandle, filter: &VmaFilter) -> Result<Vec<Vma>, KernelError> {
        let _call = self.enter();
        self.read_error("vmas", &format!("/proc/{}/maps", p.pid()))?;
        self.fake.vmas(p, filter)
    }

    fn status(&self, p: &ProcessHandle) -> Result<ProcStatus, KernelError> {
        let _call = self.enter();
        self.read_error("status", &format!("/proc/{}/status", p.pid()))?;
        self.fake.status(p)
    }

    fn meminfo(&self) -> Result<MemInfo, KernelError> {
        let _call = self.enter();
        self.read_error("meminfo", "/proc/meminfo")?;
        self.fake.meminfo()
    }

    fn node_meminfo(&self, node: u32) -> Result<MemInfo, KernelError> {
        let _call = self.enter();
        self.read_error(
            "node_meminfo",
            &format!("/sys/devices/system/node/node{node}/meminfo"),
        )?;
        self.fake.node_meminfo(node)
    }

    fn node_hugepages(&self, node: u32) -> Result<Vec<HugePool>, KernelError> {
        let _call = self.enter();
        self.read_error(
            "node_hugepages",
            &format!("/sys/devices/system/node/node{node}/hugepages"),
        )?;
        self.fake.node_hugepages(node)
    }

    fn page_sizes(&self) -> PageSizes {
        self.fake.page_sizes()
    }

    fn tracker(&self, choice: TrackerChoice) -> Result<Box<dyn Tracker>, TrackError> {
        let _call = self.enter();
        let inner = self.fake.tracker(choice)?;
        Ok(Box::new(FaultyTracker {
            inner,
            kernel: self.clone(),
        }))
    }

    fn swap_out(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        quota: u64,
        method: SwapMethod,
    ) -> Result<ActionReport, PageActionError> {
        self.page_action("swap_out", "process_madvise", p, pages, |pages| {
            self.fake.swap_out(p, pages, quota, method)
        })
    }

    fn migrate(
        &self,
        p: &ProcessHandle,
        pages: &[PageRef],
        node: u32,
        quota: u64,
    ) -> Result<ActionReport, PageActionError> {
        self.page_action("migrate", "move_pages", p, pages, |pages| {
            self.fake.migrate(p, pages, node, quota)
        })
    }

    fn page_nodes(
        &self,
        p: &ProcessHandle,
        addrs: &[u64],
    ) -> Result<Vec<PageNode>, PageActionError> {
        let _call = self.enter();
        if let Some(source) = self.fault("page_nodes") {
            return Err(PageActionError::Syscall {
                pid: p.pid(),
                call: "move_pages",
                source,
            });
        }
        self.fake.page_nodes(p, addrs)
    }

    fn damon_apply_scheme(
        &self,
        p: &ProcessHandle,
        attrs: crate::track::DamonAttrs,
        scheme: crate::track::DamosScheme,
    ) -> Result<crate::track::DamonScheme, TrackError> {
        let _call = self.enter();
        if let Some(source) = self.fault("damon_apply_scheme") {
            return Err(TrackError::Io {
                op: "write",
                path: PathBuf::from("/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds"),
                source,
            });
        }
        self.fake.damon_apply_scheme(p, attrs, scheme)
    }

    fn damon_scheme_availability(&self) -> Result<(), String> {
        self.fake.damon_scheme_availability()
    }

    fn reclaim_swapcache(
        &self,
        p: &ProcessHandle,
        wmark: SwapcacheWmark,
    ) -> Result<(), PageActionError> {
        let _call = self.enter();
        if let Some(source) = self.fault("reclaim_swapcache") {
            return Err(PageActionError::Io {
                op: "ioctl",
                path: p.path("swap_pages"),
                source,
            });
        }
        self.fake.reclaim_swapcache(p, wmark)
    }

    fn unix_exchange(
        &self,
        addr: &crate::UnixAddr,
        request: &[u8],
        reply_max: usize,
    ) -> Result<Vec<u8>, crate::UnixError> {
        let _call = self.enter();
        if let Some(source) = self.fault("unix_exchange") {
            return Err(crate::UnixError::Io {
                op: "connect",
                addr: addr.to_string(),
                source,
            });
        }
        self.fake.unix_exchange(addr, request, reply_max)
    }

    fn psi_availability(&self) -> Result<(), String> {
        self.fake.psi_availability()
    }

    fn cgroup_version(&self) -> Result<crate::CgroupVersion, KernelError> {
        let _call = self.enter();
        self.fake.cgroup_version()
    }

    fn cgroup_glob(&self, pattern: &str) -> Result<Vec<crate::Cgroup>, KernelError> {
        let _call = self.enter();
        self.read_error("cgroup_glob", "/sys/fs/cgroup")?;
        self.fake.cgroup_glob(pattern)
    }

    fn cgroup_memory(&self, path: &str) -> Result<crate::CgroupMemory, KernelError> {
        let _call = self.enter();
        self.read_error("cgroup_memory", "/sys/fs/cgroup")?;
        self.fake.cgroup_memory(path)
    }

    fn cgroup_reclaim(&self, path: &str, bytes: u64) -> Result<bool, KernelError> {
        let _call = self.enter();
        self.read_error("cgroup_reclaim", "/sys/fs/cgroup")?;
        self.fake.cgroup_reclaim(path, bytes)
    }
}

/// A tracker whose start, passes and stop fail now and then (see [`FaultyKernel`]).
#[derive(Debug)]
struct FaultyTracker {
    inner: Box<dyn Tracker>,
    kernel: FaultyKernel,
}

impl FaultyTracker {
    fn fail(&self, call: &'static str, p: Option<&ProcessHandle>) -> Result<(), TrackError> {
        match self.kernel.fault(call) {
            Some(source) => Err(TrackError::Io {
                op: "read",
                path: p.map_or_else(|| PathBuf::from("/proc"), |p| p.path("pagemap")),
                source,
            }),
            None => Ok(()),
        }
    }
}

impl Tracker for FaultyTracker {
    fn kind(&self) -> TrackerKind {
        self.inner.kind()
    }

    fn start(&mut self, p: &ProcessHandle, map: &AccessMap) -> Result<(), TrackError> {
        let _call = self.kernel.enter();
        self.fail("tracker start", Some(p))?;
        self.inner.start(p, map)
    }

    fn pass(&mut self, p: &ProcessHandle, map: &mut AccessMap) -> Result<(), TrackError> {
        let _call = self.kernel.enter();
        self.fail("tracker pass", Some(p))?;
        self.inner.pass(p, map)
    }

    fn stop(&mut self) -> Result<(), TrackError> {
        self.fail("tracker stop", None)?;
        self.inner.stop()
    }

    fn set_pass_window(&mut self, window: std::time::Duration) {
        self.inner.set_pass_window(window);
    }

    fn set_scan_flags(&mut self, flags: crate::track::ScanFlags) -> Result<(), TrackError> {
        self.fail("tracker scan flags", None)?;
        self.inner.set_scan_flags(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeProcess;

    fn kernel(rate: f64) -> (FaultyKernel, ProcessHandle) {
        let fake = Arc::new(FakeKernel::new().expect("fake"));
        fake.add_process(&FakeProcess::new(7, "p").anon(0x1000, 0x3000))
            .expect("add");
        let h = fake.open_process(7).expect("open");
        (FaultyKernel::new(fake, 1, rate), h)
    }

    #[test]
    fn every_call_fails_at_rate_one_with_a_numbered_cause() {
        let (k, h) = kernel(1.0);
        let e = k.vmas(&h, &VmaFilter::default()).expect_err("fails");
        assert!(e.to_string().contains("injected fault #1 ("), "{e}");
        let e = k.meminfo().expect_err("fails");
        assert!(e.to_string().contains("injected fault #2 ("), "{e}");
        let pages = [PageRef {
            addr: 0x1000,
            size: 4096,
        }];
        let e = k
            .swap_out(&h, &pages, u64::MAX, SwapMethod::Auto)
            .expect_err("fails");
        assert!(e.to_string().contains("injected fault #3 ("), "{e}");
        let calls: Vec<_> = k.injected().iter().map(|i| i.call).collect();
        assert_eq!(calls, ["vmas", "meminfo", "swap_out"]);
        assert_eq!(k.calls(), 3);
        // at rate 0 from now on, calls go through
        k.set_rate(0.0);
        assert!(k.meminfo().is_ok());
        assert_eq!(k.injected().len(), 3);
    }

    #[test]
    fn nothing_fails_at_rate_zero_and_actions_stay_inside() {
        let (k, h) = kernel(0.0);
        assert_eq!(k.vmas(&h, &VmaFilter::default()).expect("vmas").len(), 1);
        // one page inside the VMA, one outside: only the inside one is done
        let pages = [
            PageRef {
                addr: 0x1000,
                size: 4096,
            },
            PageRef {
                addr: 0x9000,
                size: 4096,
            },
        ];
        let r = k
            .swap_out(&h, &pages, u64::MAX, SwapMethod::Auto)
            .expect("swap");
        assert_eq!(r.done_pages, 1);
        assert!(k.injected().is_empty());
        assert!(k.violations().is_empty(), "{:?}", k.violations());
        // the process exits: nothing can be done to it
        k.mutate(|f| f.recycle_process(7, 5000)).expect("recycle");
        assert!(k.swap_out(&h, &pages, u64::MAX, SwapMethod::Auto).is_err());
        assert!(k.violations().is_empty());
    }
}
