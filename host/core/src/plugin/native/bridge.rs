//! The host bridge: carries the daemon's [`Host`] capabilities to a native engine as the
//! SDK's `HostApi` object, and catches what the host returns (a panic becomes a host error
//! instead of unwinding into the library).
//!
//! It holds no policy: it must not check, limit or change what an engine asks for; the
//! [`Host`] it wraps does that.

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use etmem_sdk::native::{
    HostApi, HostApi_TO, RCgroup, RCgroupMemory, RCgroupReclaimed, RDamonAttrs, RDamonScheme,
    REngineError, RHost, RLogLevel, RProcessMemory, RScanResult, RSystemFacts, RVma, RVmaFlags,
};
use etmem_sdk::{EngineError, Host, LogLevel, ScanResult, SystemFacts};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The daemon's [`Host`] as the SDK's native host object. Every method is guarded: a panic
/// in the host must not unwind into the library (it would abort the daemon).
pub(super) struct HostBridge<'a>(pub(super) &'a (dyn Host + Send + Sync));

impl HostBridge<'_> {
    pub(super) fn rhost(&self) -> RHost<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

/// Runs a host call; a panic becomes a host error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, EngineError>) -> RResult<T, REngineError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(p) => RResult::RErr(REngineError::Host(
            format!(
                "host call {what} failed: {}",
                etmem_sdk::runtime::panic_message(p.as_ref())
            )
            .into(),
        )),
    }
}

impl HostApi for HostBridge<'_> {
    fn log(&self, level: RLogLevel, message: RStr<'_>) {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            self.0.log(LogLevel::from(level), message.as_str())
        }));
    }

    fn task_vmas(&self, task: RStr<'_>, pid: u32) -> RResult<RVec<RVma>, REngineError> {
        guarded("task-vmas", || {
            self.0
                .task_vmas(task.as_str(), pid)
                .map(|v| v.iter().map(RVma::from).collect())
        })
    }

    fn task_scan(&self, task: RStr<'_>) -> RResult<RVec<RScanResult>, REngineError> {
        guarded("task-scan", || {
            self.0
                .task_scan(task.as_str())
                .map(|v| v.iter().map(RScanResult::from).collect())
        })
    }

    fn task_memory(&self, task: RStr<'_>, pid: u32) -> RResult<RProcessMemory, REngineError> {
        guarded("task-memory", || {
            self.0
                .task_memory(task.as_str(), pid)
                .map(|m| RProcessMemory {
                    rss_kb: m.rss_kb,
                    swap_kb: m.swap_kb,
                })
        })
    }

    fn task_page_nodes(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<RVec<i32>, REngineError> {
        guarded("task-page-nodes", || {
            self.0
                .task_page_nodes(task.as_str(), pid, addrs.as_slice())
                .map(RVec::from)
        })
    }

    fn request_swap_out(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<u64, REngineError> {
        guarded("request-swap-out", || {
            self.0
                .request_swap_out(task.as_str(), pid, addrs.as_slice())
        })
    }

    fn request_migrate(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
        node: u32,
    ) -> RResult<u64, REngineError> {
        guarded("request-migrate", || {
            self.0
                .request_migrate(task.as_str(), pid, addrs.as_slice(), node)
        })
    }

    fn system_facts(&self) -> RSystemFacts {
        let facts = catch_unwind(AssertUnwindSafe(|| self.0.system_facts()))
            .unwrap_or_else(|_| SystemFacts::default());
        RSystemFacts::from(&facts)
    }

    fn reclaim_swapcache(
        &self,
        task: RStr<'_>,
        pid: u32,
        low: u8,
        high: u8,
    ) -> RResult<(), REngineError> {
        guarded("reclaim-swapcache", || {
            self.0.reclaim_swapcache(task.as_str(), pid, low, high)
        })
    }

    fn task_smaps_vmas(
        &self,
        task: RStr<'_>,
        pid: u32,
        flags: RSlice<'_, RString>,
    ) -> RResult<RVec<RVmaFlags>, REngineError> {
        guarded("task-smaps-vmas", || {
            let flags: Vec<&str> = flags.iter().map(RString::as_str).collect();
            self.0
                .task_smaps_vmas(task.as_str(), pid, &flags)
                .map(|v| v.iter().map(RVmaFlags::from).collect())
        })
    }

    fn send_page_list(
        &self,
        task: RStr<'_>,
        sock: RStr<'_>,
        pages: &RScanResult,
    ) -> RResult<u64, REngineError> {
        guarded("send-page-list", || {
            let pages = ScanResult::try_from(pages)?;
            self.0.send_page_list(task.as_str(), sock.as_str(), &pages)
        })
    }

    fn damon_apply_scheme(
        &self,
        task: RStr<'_>,
        pid: u32,
        attrs: RDamonAttrs,
        scheme: &RDamonScheme,
    ) -> RResult<(), REngineError> {
        guarded("damon-apply-scheme", || {
            self.0
                .damon_apply_scheme(task.as_str(), pid, &attrs.into(), &scheme.into())
        })
    }

    fn damon_remove_scheme(&self, task: RStr<'_>, pid: u32) -> RResult<(), REngineError> {
        guarded("damon-remove-scheme", || {
            self.0.damon_remove_scheme(task.as_str(), pid)
        })
    }

    fn cgroup_glob(&self, task: RStr<'_>) -> RResult<RVec<RCgroup>, REngineError> {
        guarded("cgroup-glob", || {
            self.0
                .cgroup_glob(task.as_str())
                .map(|v| v.iter().map(RCgroup::from).collect())
        })
    }

    fn cgroup_memory(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
    ) -> RResult<RCgroupMemory, REngineError> {
        guarded("cgroup-memory", || {
            self.0
                .cgroup_memory(task.as_str(), cgroup.as_str())
                .map(RCgroupMemory::from)
        })
    }

    fn cgroup_reclaim(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
        bytes: u64,
    ) -> RResult<RCgroupReclaimed, REngineError> {
        guarded("cgroup-reclaim", || {
            self.0
                .cgroup_reclaim(task.as_str(), cgroup.as_str(), bytes)
                .map(RCgroupReclaimed::from)
        })
    }
}
