//! The wasm component export: `wit_bindgen` bindings of `wit/engine.wit` (world
//! `etmem-engine`) and [`Adapter`], the `engine` export that drives any [`Engine`].
//!
//! One component instance serves one `[engine]`: the engine lives in a per-instance global.
//! A panic aborts the instance (a trap): the host marks the engine failed.
//! Only available on wasm32. This module converts values; it must not hold policy.

use crate::runtime::Runner;
use crate::{
    Action, Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, Engine, EngineError,
    Host, LogLevel, MemInfo, NodeMemory, PageRun, PageSize, Params, Pid, ProcessMemory, Round,
    ScanResult, SystemFacts, TaskInfo, Vma,
};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

pub use wit_bindgen;

/// Bindings generated from `wit/engine.wit`.
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "etmem-engine",
        pub_export_macro: true,
        default_bindings_module: "etmem_sdk::wasm::bindings",
        runtime_path: "etmem_sdk::wasm::wit_bindgen::rt",
    });
}

use bindings::etmem::engine::host as wit_host;
use bindings::etmem::engine::types as wit;
use bindings::exports::etmem::engine::engine::Guest;

thread_local! {
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The `engine` export for engine `E`; named by [`export_engine!`](crate::export_engine).
pub struct Adapter<E>(PhantomData<E>);

fn with_runner<E: Engine, T>(
    f: impl FnOnce(&mut Runner<E>) -> Result<T, EngineError>,
) -> Result<T, EngineError> {
    STATE.with(|cell| {
        let mut state = cell
            .try_borrow_mut()
            .map_err(|_| EngineError::failed("engine re-entered"))?;
        let runner = state
            .as_mut()
            .and_then(|b| b.downcast_mut::<Runner<E>>())
            .ok_or_else(|| EngineError::failed("engine not configured"))?;
        f(runner)
    })
}

fn params_from(p: Vec<(String, String)>) -> Params {
    Params::from_pairs(p)
}

impl<E: Engine> Guest for Adapter<E> {
    fn configure(params: wit::Params) -> Result<(), wit::EngineError> {
        let runner = Runner::<E>::configure(&params_from(params), &WitHost)?;
        STATE
            .with(|cell| {
                let mut state = cell
                    .try_borrow_mut()
                    .map_err(|_| EngineError::failed("engine re-entered"))?;
                if state.is_some() {
                    return Err(EngineError::failed("engine already configured"));
                }
                *state = Some(Box::new(runner));
                Ok(())
            })
            .map_err(Into::into)
    }

    fn new_task(task: wit::TaskInfo, params: wit::Params) -> Result<(), wit::EngineError> {
        let task = TaskInfo {
            project: task.project,
            name: task.name,
            target_type: task.target_type,
            target_value: task.target_value,
        };
        with_runner::<E, _>(|r| r.new_task(&task, &params_from(params), &WitHost))
            .map_err(Into::into)
    }

    fn plan(
        task: String,
        round: wit::RoundInfo,
        scans: Vec<wit::ScanResult>,
    ) -> Result<Vec<wit::Action>, wit::EngineError> {
        let scans = scans
            .into_iter()
            .map(scan_from)
            .collect::<Result<Vec<_>, _>>()?;
        let round = Round {
            number: round.number,
            passes: round.passes,
        };
        let actions = with_runner::<E, _>(|r| r.plan(&task, &round, &scans, &WitHost))?;
        Ok(actions.into_iter().map(action_to).collect())
    }

    fn stop_task(task: String) {
        if let Err(e) = with_runner::<E, _>(|r| r.stop_task(&task, &WitHost)) {
            WitHost.log(LogLevel::Warn, &format!("stop-task: {e}"));
        }
    }

    fn drop_task(task: String) {
        if let Err(e) = with_runner::<E, _>(|r| r.drop_task(&task)) {
            WitHost.log(LogLevel::Warn, &format!("drop-task: {e}"));
        }
    }

    fn command(cmd: String, task: Option<String>) -> Result<String, wit::EngineError> {
        with_runner::<E, _>(|r| r.command(&cmd, task.as_deref(), &WitHost)).map_err(Into::into)
    }
}

fn scan_from(s: wit::ScanResult) -> Result<ScanResult, EngineError> {
    ScanResult::from_column_vecs(s.pid, s.passes, s.addrs, s.lens, s.counts, s.sizes)
}

fn runs_to(runs: Vec<PageRun>) -> Vec<wit::PageRun> {
    runs.into_iter()
        .map(|r| wit::PageRun {
            addr: r.addr,
            pages: r.pages,
            size: match r.size {
                PageSize::Size4K => wit::PageSize::Size4k,
                PageSize::Size2M => wit::PageSize::Size2m,
                PageSize::Size1G => wit::PageSize::Size1g,
            },
        })
        .collect()
}

fn action_to(a: Action) -> wit::Action {
    match a {
        Action::SwapOut { pid, runs } => wit::Action::SwapOut(wit::SwapOut {
            pid,
            runs: runs_to(runs),
        }),
        Action::Migrate { pid, runs, node } => wit::Action::Migrate(wit::Migrate {
            pid,
            runs: runs_to(runs),
            node,
        }),
    }
}

impl From<EngineError> for wit::EngineError {
    fn from(e: EngineError) -> wit::EngineError {
        match e {
            EngineError::InvalidParam {
                key,
                value,
                expected,
            } => wit::EngineError::InvalidParam(wit::ParamError {
                key,
                value,
                expected,
            }),
            EngineError::MissingParam(s) => wit::EngineError::MissingParam(s),
            EngineError::UnknownParam(s) => wit::EngineError::UnknownParam(s),
            EngineError::UnknownTask(s) => wit::EngineError::UnknownTask(s),
            EngineError::UnknownCommand(s) => wit::EngineError::UnknownCommand(s),
            EngineError::TaskRequired(s) => wit::EngineError::TaskRequired(s),
            EngineError::Host(s) => wit::EngineError::Host(s),
            EngineError::Failed(s) => wit::EngineError::Failed(s),
            EngineError::Panicked(s) => wit::EngineError::Failed(format!("engine panicked: {s}")),
        }
    }
}

impl From<wit::EngineError> for EngineError {
    fn from(e: wit::EngineError) -> EngineError {
        match e {
            wit::EngineError::InvalidParam(p) => EngineError::InvalidParam {
                key: p.key,
                value: p.value,
                expected: p.expected,
            },
            wit::EngineError::MissingParam(s) => EngineError::MissingParam(s),
            wit::EngineError::UnknownParam(s) => EngineError::UnknownParam(s),
            wit::EngineError::UnknownTask(s) => EngineError::UnknownTask(s),
            wit::EngineError::UnknownCommand(s) => EngineError::UnknownCommand(s),
            wit::EngineError::TaskRequired(s) => EngineError::TaskRequired(s),
            wit::EngineError::Host(s) => EngineError::Host(s),
            wit::EngineError::Failed(s) => EngineError::Failed(s),
        }
    }
}

/// The SDK [`Host`] over the component's imports.
struct WitHost;

impl Host for WitHost {
    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Error => wit::LogLevel::Error,
            LogLevel::Warn => wit::LogLevel::Warn,
            LogLevel::Info => wit::LogLevel::Info,
            LogLevel::Debug => wit::LogLevel::Debug,
        };
        wit_host::log(level, message);
    }

    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, EngineError> {
        let vmas = wit_host::task_vmas(task, pid)?;
        Ok(vmas
            .into_iter()
            .map(|v| Vma {
                start: v.start,
                end: v.end,
                readable: v.readable,
                writable: v.writable,
                executable: v.executable,
                shared: v.shared,
                offset: v.offset,
                inode: v.inode,
                path: v.path,
                vm_flags: Vec::new(),
            })
            .collect())
    }

    fn task_smaps_vmas(
        &self,
        task: &str,
        pid: Pid,
        flags: &[&str],
    ) -> Result<Vec<Vma>, EngineError> {
        let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
        let vmas = wit_host::task_smaps_vmas(task, pid, &flags)?;
        Ok(vmas
            .into_iter()
            .map(|(v, vm_flags)| Vma {
                start: v.start,
                end: v.end,
                readable: v.readable,
                writable: v.writable,
                executable: v.executable,
                shared: v.shared,
                offset: v.offset,
                inode: v.inode,
                path: v.path,
                vm_flags,
            })
            .collect())
    }

    fn send_page_list(
        &self,
        task: &str,
        sock: &str,
        pages: &ScanResult,
    ) -> Result<u64, EngineError> {
        let (addrs, lens, counts, sizes) = pages.columns();
        let scan = wit::ScanResult {
            pid: pages.pid(),
            passes: pages.passes(),
            addrs: addrs.to_vec(),
            lens: lens.to_vec(),
            counts: counts.to_vec(),
            sizes: sizes.to_vec(),
        };
        Ok(wit_host::send_page_list(task, sock, &scan)?)
    }

    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, EngineError> {
        wit_host::task_scan(task)?
            .into_iter()
            .map(scan_from)
            .collect()
    }

    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, EngineError> {
        let m = wit_host::task_memory(task, pid)?;
        Ok(ProcessMemory {
            rss_kb: m.rss_kb,
            swap_kb: m.swap_kb,
        })
    }

    fn task_page_nodes(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
    ) -> Result<Vec<i32>, EngineError> {
        Ok(wit_host::task_page_nodes(task, pid, addrs)?)
    }

    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, EngineError> {
        Ok(wit_host::request_swap_out(task, pid, addrs)?)
    }

    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, EngineError> {
        Ok(wit_host::request_migrate(task, pid, addrs, node)?)
    }

    fn reclaim_swapcache(
        &self,
        task: &str,
        pid: Pid,
        low: u8,
        high: u8,
    ) -> Result<(), EngineError> {
        Ok(wit_host::reclaim_swapcache(task, pid, low, high)?)
    }

    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &DamonAttrs,
        scheme: &DamonScheme,
    ) -> Result<(), EngineError> {
        let attrs = wit::DamonAttrs {
            sample_us: attrs.sample_us,
            aggr_us: attrs.aggr_us,
            update_us: attrs.update_us,
            min_nr_regions: attrs.min_nr_regions,
            max_nr_regions: attrs.max_nr_regions,
        };
        let scheme = wit::DamonScheme {
            min_size: scheme.min_size,
            max_size: scheme.max_size,
            min_acc: scheme.min_acc,
            max_acc: scheme.max_acc,
            min_age: scheme.min_age,
            max_age: scheme.max_age,
            action: scheme.action.clone(),
        };
        Ok(wit_host::damon_apply_scheme(task, pid, attrs, &scheme)?)
    }

    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), EngineError> {
        Ok(wit_host::damon_remove_scheme(task, pid)?)
    }

    fn system_facts(&self) -> SystemFacts {
        let f = wit_host::system_facts();
        let m = f.meminfo;
        SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: m.mem_total_kb,
                mem_free_kb: m.mem_free_kb,
                mem_available_kb: m.mem_available_kb,
                swap_total_kb: m.swap_total_kb,
                swap_free_kb: m.swap_free_kb,
                swap_cached_kb: m.swap_cached_kb,
            },
            nodes: f
                .nodes
                .into_iter()
                .map(|n| NodeMemory {
                    node: n.node,
                    total_kb: n.total_kb,
                    free_kb: n.free_kb,
                    huge_total_kb: n.huge_total_kb,
                    huge_free_kb: n.huge_free_kb,
                })
                .collect(),
        }
    }

    fn cgroup_glob(&self, task: &str) -> Result<Vec<Cgroup>, EngineError> {
        Ok(wit_host::cgroup_glob(task)?
            .into_iter()
            .map(|c| Cgroup {
                path: c.path,
                id: c.id,
            })
            .collect())
    }

    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<CgroupMemory, EngineError> {
        let m = wit_host::cgroup_memory(task, cgroup)?;
        Ok(CgroupMemory {
            v2: m.v2,
            usage: m.usage,
            limit: m.limit,
            min: m.min,
            low: m.low,
            file: m.file,
            anon: m.anon,
            swap_limit: m.swap_limit,
            swap_usage: m.swap_usage,
            pressure_avg10: m.pressure_avg10,
            pressure_avg60: m.pressure_avg60,
        })
    }

    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, EngineError> {
        let r = wit_host::cgroup_reclaim(task, cgroup, bytes)?;
        Ok(CgroupReclaimed {
            requested: r.requested,
            reclaimed: r.reclaimed,
            complete: r.complete,
            dry_run: r.dry_run,
        })
    }
}
