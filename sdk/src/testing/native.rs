//! [`NativeHost`]: the daemon's side of the native ABI for tests, so a test can load an
//! engine's `.so` (or call [`root_module`](crate::native::root_module) in-process) and
//! answer its host calls from any SDK [`Host`], typically a [`FakeHost`](super::FakeHost).
//!
//! It only converts values between the SDK types and their abi_stable forms (errors
//! included, as values); it must not hold policy or touch the machine. Only available off
//! wasm32.
//!
//! ```
//! use etmem_sdk::native::{HostApi, RLogLevel};
//! use etmem_sdk::testing::FakeHost;
//! use etmem_sdk::testing::native::NativeHost;
//!
//! let fake = FakeHost::new();
//! let host = NativeHost(&fake);
//! // What a test hands to the root module's entry points:
//! let _rhost = host.rhost();
//! host.log(RLogLevel::Info, "hello".into());
//! assert_eq!(fake.calls(), ["log"]);
//! ```

use crate::native::{
    HostApi, HostApi_TO, RCgroup, RCgroupMemory, RCgroupReclaimed, RDamonAttrs, RDamonScheme,
    REngineError, RHost, RLogLevel, RProcessMemory, RScanResult, RSystemFacts, RVma, RVmaFlags,
};
use crate::{EngineError, Host, ScanResult};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};

/// A native [`HostApi`] answering every call from the SDK [`Host`] it borrows.
#[derive(Clone, Copy)]
pub struct NativeHost<'a>(pub &'a dyn Host);

impl std::fmt::Debug for NativeHost<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NativeHost")
    }
}

impl NativeHost<'_> {
    /// The host object the root module's entry points take (`HostApi_TO` over `self`).
    pub fn rhost(&self) -> RHost<'_> {
        HostApi_TO::from_ptr(RRef::new(self), TD_Opaque)
    }
}

/// An SDK result as its native form.
fn native<T, U: From<T>>(r: Result<T, EngineError>) -> RResult<U, REngineError> {
    match r {
        Ok(v) => RResult::ROk(U::from(v)),
        Err(e) => RResult::RErr(e.into()),
    }
}

impl HostApi for NativeHost<'_> {
    fn log(&self, level: RLogLevel, message: RStr<'_>) {
        self.0.log(level.into(), message.as_str());
    }

    fn task_vmas(&self, task: RStr<'_>, pid: u32) -> RResult<RVec<RVma>, REngineError> {
        native(
            self.0
                .task_vmas(task.as_str(), pid)
                .map(|v| v.iter().map(RVma::from).collect::<RVec<_>>()),
        )
    }

    fn task_scan(&self, task: RStr<'_>) -> RResult<RVec<RScanResult>, REngineError> {
        native(
            self.0
                .task_scan(task.as_str())
                .map(|v| v.iter().map(RScanResult::from).collect::<RVec<_>>()),
        )
    }

    fn task_memory(&self, task: RStr<'_>, pid: u32) -> RResult<RProcessMemory, REngineError> {
        native(
            self.0
                .task_memory(task.as_str(), pid)
                .map(|m| RProcessMemory {
                    rss_kb: m.rss_kb,
                    swap_kb: m.swap_kb,
                }),
        )
    }

    fn task_page_nodes(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<RVec<i32>, REngineError> {
        native::<Vec<i32>, RVec<i32>>(self.0.task_page_nodes(task.as_str(), pid, addrs.as_slice()))
    }

    fn request_swap_out(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<u64, REngineError> {
        native(
            self.0
                .request_swap_out(task.as_str(), pid, addrs.as_slice()),
        )
    }

    fn request_migrate(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
        node: u32,
    ) -> RResult<u64, REngineError> {
        native(
            self.0
                .request_migrate(task.as_str(), pid, addrs.as_slice(), node),
        )
    }

    fn system_facts(&self) -> RSystemFacts {
        RSystemFacts::from(&self.0.system_facts())
    }

    fn reclaim_swapcache(
        &self,
        task: RStr<'_>,
        pid: u32,
        low: u8,
        high: u8,
    ) -> RResult<(), REngineError> {
        native(self.0.reclaim_swapcache(task.as_str(), pid, low, high))
    }

    fn task_smaps_vmas(
        &self,
        task: RStr<'_>,
        pid: u32,
        flags: RSlice<'_, RString>,
    ) -> RResult<RVec<RVmaFlags>, REngineError> {
        let flags: Vec<&str> = flags.iter().map(RString::as_str).collect();
        native(
            self.0
                .task_smaps_vmas(task.as_str(), pid, &flags)
                .map(|v| v.iter().map(RVmaFlags::from).collect::<RVec<_>>()),
        )
    }

    fn send_page_list(
        &self,
        task: RStr<'_>,
        sock: RStr<'_>,
        pages: &RScanResult,
    ) -> RResult<u64, REngineError> {
        match ScanResult::try_from(pages) {
            Ok(s) => native(self.0.send_page_list(task.as_str(), sock.as_str(), &s)),
            Err(e) => RResult::RErr(e.into()),
        }
    }

    fn cgroup_glob(&self, task: RStr<'_>) -> RResult<RVec<RCgroup>, REngineError> {
        match self.0.cgroup_glob(task.as_str()) {
            Ok(v) => RResult::ROk(v.iter().map(RCgroup::from).collect()),
            Err(e) => RResult::RErr(e.into()),
        }
    }

    fn damon_apply_scheme(
        &self,
        task: RStr<'_>,
        pid: u32,
        attrs: RDamonAttrs,
        scheme: &RDamonScheme,
    ) -> RResult<(), REngineError> {
        native(
            self.0
                .damon_apply_scheme(task.as_str(), pid, &attrs.into(), &scheme.into()),
        )
    }

    fn damon_remove_scheme(&self, task: RStr<'_>, pid: u32) -> RResult<(), REngineError> {
        native(self.0.damon_remove_scheme(task.as_str(), pid))
    }

    fn cgroup_memory(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
    ) -> RResult<RCgroupMemory, REngineError> {
        native(self.0.cgroup_memory(task.as_str(), cgroup.as_str()))
    }

    fn cgroup_reclaim(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
        bytes: u64,
    ) -> RResult<RCgroupReclaimed, REngineError> {
        native(self.0.cgroup_reclaim(task.as_str(), cgroup.as_str(), bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;
    use crate::{LogLevel, MemInfo, ProcessMemory, SystemFacts};

    #[test]
    fn answers_and_refusals_cross_as_values() {
        let fake = FakeHost::new()
            .with_task_memory(
                "t",
                7,
                ProcessMemory {
                    rss_kb: 40,
                    swap_kb: 2,
                },
            )
            .with_page_nodes("t", 7, &[(0x1000, 1)])
            .with_system_facts(SystemFacts {
                meminfo: MemInfo {
                    mem_total_kb: 4096,
                    ..MemInfo::default()
                },
                nodes: Vec::new(),
            })
            .refusing_requests("no swap here");
        let h = NativeHost(&fake);
        h.log(RLogLevel::Warn, "w".into());
        assert_eq!(
            h.task_memory("t".into(), 7).into_result(),
            Ok(RProcessMemory {
                rss_kb: 40,
                swap_kb: 2
            })
        );
        assert_eq!(
            h.task_memory("t".into(), 8).into_result(),
            Err(REngineError::Host(
                "pid 8 of task `t` is not known to this host".into()
            ))
        );
        assert_eq!(
            h.task_page_nodes("t".into(), 7, RSlice::from_slice(&[0x1000, 0x2000]))
                .into_result()
                .map(RVec::into_vec),
            Ok(vec![1, -2])
        );
        assert_eq!(
            h.request_swap_out("t".into(), 7, RSlice::from_slice(&[0x1000]))
                .into_result(),
            Err(REngineError::Host("no swap here".into()))
        );
        assert_eq!(h.system_facts().meminfo.mem_total_kb, 4096);
        assert_eq!(fake.logs(), [(LogLevel::Warn, "w".to_string())]);
        assert_eq!(
            fake.calls(),
            [
                "log",
                "task-memory",
                "task-memory",
                "task-page-nodes",
                "request-swap-out",
                "system-facts"
            ]
        );
    }
}
