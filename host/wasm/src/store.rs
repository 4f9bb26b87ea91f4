//! The data of an instance's `Store`: the host capabilities of the current call (the
//! WIT `host` interface, served through [`HostRef`]), the memory meter that caps the
//! instance's linear memory, and the WASI context that grants nothing.

use crate::bindings;
use crate::bindings::etmem::engine::types as wit;
use crate::convert;
use etmem_host::plugin::HostRef;
use thiserror::Error;

/// The data of one instance's `Store`: the host of the current call and the memory meter.
pub struct StoreState {
    /// Set for the duration of a call; `None` between calls and during `drop-task`.
    pub(crate) host: Option<HostRef>,
    pub(crate) memory_limit: u64,
    pub(crate) memory_used: u64,
    /// the WASI context, which grants nothing (see [`wasi`])
    pub(crate) wasi: wasmtime_wasi::WasiCtx,
    /// WASI resources (streams, pollables) of this instance
    pub(crate) table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for StoreState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A growth refused by the memory cap: turns into a trap at once.
#[derive(Debug, Error)]
#[error("memory limit reached")]
pub(crate) struct MemoryLimitReached;

impl wasmtime::ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let delta = desired.saturating_sub(current) as u64;
        let total = self.memory_used.saturating_add(delta);
        if total > self.memory_limit {
            return Err(wasmtime::Error::new(MemoryLimitReached));
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any engine.
        Ok(desired <= 1_000_000)
    }
}

impl StoreState {
    fn host(&self) -> Result<&HostRef, wit::EngineError> {
        self.host.as_ref().ok_or_else(|| {
            wit::EngineError::Host("no host capabilities during drop-task".to_string())
        })
    }
}

impl bindings::etmem::engine::types::Host for StoreState {}

impl bindings::etmem::engine::host::Host for StoreState {
    fn log(&mut self, level: wit::LogLevel, message: String) {
        match &self.host {
            Some(h) => h.log(convert::log_level(level), &message),
            None => tracing::info!(target: "etmem::wasm", "{message}"),
        }
    }

    fn task_vmas(&mut self, task: String, pid: u32) -> Result<Vec<wit::Vma>, wit::EngineError> {
        let vmas = self.host()?.task_vmas(&task, pid)?;
        Ok(vmas.into_iter().map(convert::vma).collect())
    }

    fn task_scan(&mut self, task: String) -> Result<Vec<wit::ScanResult>, wit::EngineError> {
        let scans = self.host()?.task_scan(&task)?;
        Ok(scans.iter().map(convert::scan_to).collect())
    }

    fn task_memory(
        &mut self,
        task: String,
        pid: u32,
    ) -> Result<wit::ProcessMemory, wit::EngineError> {
        let m = self.host()?.task_memory(&task, pid)?;
        Ok(wit::ProcessMemory {
            rss_kb: m.rss_kb,
            swap_kb: m.swap_kb,
        })
    }

    fn task_page_nodes(
        &mut self,
        task: String,
        pid: u32,
        addrs: Vec<u64>,
    ) -> Result<Vec<i32>, wit::EngineError> {
        Ok(self.host()?.task_page_nodes(&task, pid, &addrs)?)
    }

    fn request_swap_out(
        &mut self,
        task: String,
        pid: u32,
        addrs: Vec<u64>,
    ) -> Result<u64, wit::EngineError> {
        Ok(self.host()?.request_swap_out(&task, pid, &addrs)?)
    }

    fn request_migrate(
        &mut self,
        task: String,
        pid: u32,
        addrs: Vec<u64>,
        node: u32,
    ) -> Result<u64, wit::EngineError> {
        Ok(self.host()?.request_migrate(&task, pid, &addrs, node)?)
    }

    fn system_facts(&mut self) -> wit::Facts {
        match &self.host {
            Some(h) => convert::facts(&h.system_facts()),
            None => convert::facts(&Default::default()),
        }
    }

    fn reclaim_swapcache(
        &mut self,
        task: String,
        pid: u32,
        low: u8,
        high: u8,
    ) -> Result<(), wit::EngineError> {
        Ok(self.host()?.reclaim_swapcache(&task, pid, low, high)?)
    }

    fn task_smaps_vmas(
        &mut self,
        task: String,
        pid: u32,
        flags: Vec<String>,
    ) -> Result<Vec<(wit::Vma, Vec<String>)>, wit::EngineError> {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let vmas = self.host()?.task_smaps_vmas(&task, pid, &flags)?;
        Ok(vmas.into_iter().map(convert::vma_with_flags).collect())
    }

    fn send_page_list(
        &mut self,
        task: String,
        sock: String,
        pages: wit::ScanResult,
    ) -> Result<u64, wit::EngineError> {
        let pages = convert::scan_from(pages)?;
        Ok(self.host()?.send_page_list(&task, &sock, &pages)?)
    }

    fn damon_apply_scheme(
        &mut self,
        task: String,
        pid: u32,
        attrs: wit::DamonAttrs,
        scheme: wit::DamonScheme,
    ) -> Result<(), wit::EngineError> {
        let (attrs, scheme) = convert::damon(attrs, scheme);
        Ok(self
            .host()?
            .damon_apply_scheme(&task, pid, &attrs, &scheme)?)
    }

    fn damon_remove_scheme(&mut self, task: String, pid: u32) -> Result<(), wit::EngineError> {
        Ok(self.host()?.damon_remove_scheme(&task, pid)?)
    }

    fn cgroup_glob(&mut self, task: String) -> Result<Vec<wit::Cgroup>, wit::EngineError> {
        Ok(self
            .host()?
            .cgroup_glob(&task)?
            .into_iter()
            .map(convert::cgroup)
            .collect())
    }

    fn cgroup_memory(
        &mut self,
        task: String,
        cgroup: String,
    ) -> Result<wit::CgroupStats, wit::EngineError> {
        Ok(convert::cgroup_memory(
            self.host()?.cgroup_memory(&task, &cgroup)?,
        ))
    }

    fn cgroup_reclaim(
        &mut self,
        task: String,
        cgroup: String,
        bytes: u64,
    ) -> Result<wit::CgroupReclaimed, wit::EngineError> {
        Ok(convert::cgroup_reclaimed(
            self.host()?.cgroup_reclaim(&task, &cgroup, bytes)?,
        ))
    }
}
