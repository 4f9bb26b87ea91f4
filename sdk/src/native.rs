//! The native plug-in ABI: an abi_stable root module that mirrors the WIT `engine`
//! interface field for field, and a `sabi_trait` host object that mirrors the WIT `host`
//! interface.
//!
//! [`export_engine!`](crate::export_engine) builds the module for an engine; the daemon's
//! native loader uses [`EngineModRef`] and implements [`HostApi`]. Every entry point runs
//! the engine under `catch_unwind` and returns a panic as [`REngineError::Panicked`]; after
//! a panic the instance refuses every further call (like a trapped wasm instance). A
//! panic must never cross this boundary: it would abort the daemon.
//!
//! Load each library with `abi_stable::library::lib_header_from_path(path)?
//! .init_root_module::<EngineModRef>()`, not `RootModule::load_from_file` (which keeps the
//! first library for the whole process). Libraries are never unloaded: deleting an engine
//! keeps its code mapped.
//!
//! Only available off wasm32. This module converts values; it must not hold policy.

// The entry points below pass `EngineBox` (a `DynTrait`), which carries zero-sized markers
// that rustc cannot prove FFI-safe; that is how abi_stable is meant to be used. The derives'
// own allowances sit on `types`, which holds them.
#![allow(improper_ctypes_definitions)]

mod convert;
mod types;

pub use convert::{params_from, params_to, vma_with_flags};
// A glob, so that the companions abi_stable's macros generate next to the declared types
// (`HostApi_TO`, `EngineModRef`, ...) stay reachable as `native::X` too.
pub use types::*;

use crate::runtime::{Runner, guard, panic_message};
use crate::{
    Cgroup, CgroupMemory, CgroupReclaimed, DamonAttrs, DamonScheme, Engine, EngineError, Host,
    LogLevel, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo, Vma,
};
pub use abi_stable;
use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModuleResult,
};
use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use std::panic::{AssertUnwindSafe, catch_unwind};

// ---------------------------------------------------------------- the engine side

/// The SDK [`Host`] over the daemon's [`RHost`].
struct NativeHost<'a>(RHost<'a>);

impl Host for NativeHost<'_> {
    fn log(&self, level: LogLevel, message: &str) {
        self.0.log(level.into(), message.into());
    }

    fn task_vmas(&self, task: &str, pid: Pid) -> Result<Vec<Vma>, EngineError> {
        match self.0.task_vmas(task.into(), pid) {
            RResult::ROk(v) => Ok(v.into_iter().map(Vma::from).collect()),
            RResult::RErr(e) => Err(e.into()),
        }
    }

    fn task_scan(&self, task: &str) -> Result<Vec<ScanResult>, EngineError> {
        match self.0.task_scan(task.into()) {
            RResult::ROk(v) => v.iter().map(ScanResult::try_from).collect(),
            RResult::RErr(e) => Err(e.into()),
        }
    }

    fn task_memory(&self, task: &str, pid: Pid) -> Result<ProcessMemory, EngineError> {
        match self.0.task_memory(task.into(), pid) {
            RResult::ROk(m) => Ok(ProcessMemory {
                rss_kb: m.rss_kb,
                swap_kb: m.swap_kb,
            }),
            RResult::RErr(e) => Err(e.into()),
        }
    }

    fn task_page_nodes(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
    ) -> Result<Vec<i32>, EngineError> {
        self.0
            .task_page_nodes(task.into(), pid, addrs.into())
            .into_result()
            .map(RVec::into_vec)
            .map_err(Into::into)
    }

    fn request_swap_out(&self, task: &str, pid: Pid, addrs: &[u64]) -> Result<u64, EngineError> {
        self.0
            .request_swap_out(task.into(), pid, addrs.into())
            .into_result()
            .map_err(Into::into)
    }

    fn request_migrate(
        &self,
        task: &str,
        pid: Pid,
        addrs: &[u64],
        node: u32,
    ) -> Result<u64, EngineError> {
        self.0
            .request_migrate(task.into(), pid, addrs.into(), node)
            .into_result()
            .map_err(Into::into)
    }

    fn reclaim_swapcache(
        &self,
        task: &str,
        pid: Pid,
        low: u8,
        high: u8,
    ) -> Result<(), EngineError> {
        self.0
            .reclaim_swapcache(task.into(), pid, low, high)
            .into_result()
            .map_err(Into::into)
    }

    fn task_smaps_vmas(
        &self,
        task: &str,
        pid: Pid,
        flags: &[&str],
    ) -> Result<Vec<Vma>, EngineError> {
        let flags: RVec<RString> = flags.iter().map(|f| RString::from(*f)).collect();
        self.0
            .task_smaps_vmas(task.into(), pid, flags.as_rslice())
            .into_result()
            .map(|v| v.into_iter().map(convert::vma_with_flags).collect())
            .map_err(Into::into)
    }

    fn send_page_list(
        &self,
        task: &str,
        sock: &str,
        pages: &ScanResult,
    ) -> Result<u64, EngineError> {
        self.0
            .send_page_list(task.into(), sock.into(), &RScanResult::from(pages))
            .into_result()
            .map_err(Into::into)
    }

    fn system_facts(&self) -> SystemFacts {
        self.0.system_facts().into()
    }

    fn damon_apply_scheme(
        &self,
        task: &str,
        pid: Pid,
        attrs: &DamonAttrs,
        scheme: &DamonScheme,
    ) -> Result<(), EngineError> {
        self.0
            .damon_apply_scheme(task.into(), pid, attrs.into(), &scheme.into())
            .into_result()
            .map_err(Into::into)
    }

    fn damon_remove_scheme(&self, task: &str, pid: Pid) -> Result<(), EngineError> {
        self.0
            .damon_remove_scheme(task.into(), pid)
            .into_result()
            .map_err(Into::into)
    }

    fn cgroup_glob(&self, task: &str) -> Result<Vec<Cgroup>, EngineError> {
        self.0
            .cgroup_glob(task.into())
            .into_result()
            .map(|v| v.into_iter().map(Cgroup::from).collect())
            .map_err(Into::into)
    }

    fn cgroup_memory(&self, task: &str, cgroup: &str) -> Result<CgroupMemory, EngineError> {
        self.0
            .cgroup_memory(task.into(), cgroup.into())
            .into_result()
            .map(CgroupMemory::from)
            .map_err(Into::into)
    }

    fn cgroup_reclaim(
        &self,
        task: &str,
        cgroup: &str,
        bytes: u64,
    ) -> Result<CgroupReclaimed, EngineError> {
        self.0
            .cgroup_reclaim(task.into(), cgroup.into(), bytes)
            .into_result()
            .map(CgroupReclaimed::from)
            .map_err(Into::into)
    }
}

/// What an [`EngineBox`] holds: the engine and its tasks, or the panic that poisoned it.
struct Instance<E: Engine> {
    runner: Option<Runner<E>>,
    poisoned: Option<String>,
}

impl<E: Engine> Drop for Instance<E> {
    fn drop(&mut self) {
        let runner = self.runner.take();
        // A panicking destructor must not unwind into the daemon.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(runner)));
    }
}

fn with_instance<E: Engine, T>(
    engine: &mut EngineBox,
    f: impl FnOnce(&mut Runner<E>) -> Result<T, EngineError>,
) -> RResult<T, REngineError> {
    let Ok(inst) = engine.downcast_as_mut::<Instance<E>>() else {
        return RResult::RErr(REngineError::Failed(
            "engine object was made by another library".into(),
        ));
    };
    if let Some(p) = &inst.poisoned {
        return RResult::RErr(REngineError::Panicked(
            format!("engine panicked earlier: {p}").into(),
        ));
    }
    let Some(runner) = inst.runner.as_mut() else {
        return RResult::RErr(REngineError::Failed("engine already dropped".into()));
    };
    match catch_unwind(AssertUnwindSafe(|| f(runner))) {
        Ok(r) => r.map_err(Into::into).into(),
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            inst.poisoned = Some(msg.clone());
            RResult::RErr(REngineError::Panicked(msg.into()))
        }
    }
}

extern "C" fn configure<E: Engine>(
    params: RSlice<'_, RParam>,
    host: RHost<'_>,
) -> RResult<EngineBox, REngineError> {
    let host = NativeHost(host);
    guard(|| {
        let runner = Runner::<E>::configure(&params_from(params), &host)?;
        Ok(EngineBox::from_value(Instance {
            runner: Some(runner),
            poisoned: None,
        }))
    })
    .map_err(Into::into)
    .into()
}

extern "C" fn new_task<E: Engine>(
    engine: &mut EngineBox,
    task: &RTaskInfo,
    params: RSlice<'_, RParam>,
    host: RHost<'_>,
) -> RResult<(), REngineError> {
    let host = NativeHost(host);
    with_instance::<E, _>(engine, |r| {
        r.new_task(&TaskInfo::from(task), &params_from(params), &host)
    })
}

extern "C" fn plan<E: Engine>(
    engine: &mut EngineBox,
    task: RStr<'_>,
    round: RRoundInfo,
    scans: RSlice<'_, RScanResult>,
    host: RHost<'_>,
) -> RResult<RVec<RAction>, REngineError> {
    let host = NativeHost(host);
    with_instance::<E, _>(engine, |r| {
        let scans = scans
            .iter()
            .map(ScanResult::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let round = Round {
            number: round.number,
            passes: round.passes,
        };
        let actions = r.plan(task.as_str(), &round, &scans, &host)?;
        Ok(actions.into_iter().map(RAction::from).collect())
    })
}

extern "C" fn stop_task<E: Engine>(
    engine: &mut EngineBox,
    task: RStr<'_>,
    host: RHost<'_>,
) -> RResult<(), REngineError> {
    let host = NativeHost(host);
    with_instance::<E, _>(engine, |r| r.stop_task(task.as_str(), &host))
}

extern "C" fn drop_task<E: Engine>(
    engine: &mut EngineBox,
    task: RStr<'_>,
) -> RResult<(), REngineError> {
    with_instance::<E, _>(engine, |r| r.drop_task(task.as_str()))
}

extern "C" fn command<E: Engine>(
    engine: &mut EngineBox,
    cmd: RStr<'_>,
    task: ROption<RStr<'_>>,
    host: RHost<'_>,
) -> RResult<RString, REngineError> {
    let host = NativeHost(host);
    with_instance::<E, _>(engine, |r| {
        r.command(cmd.as_str(), task.map(|t| t.as_str()).into_option(), &host)
            .map(RString::from)
    })
}

/// The root module of engine `E` (what a loaded library hands the daemon), exported under
/// an empty name; [`export_engine!`](crate::export_engine) uses [`root_module_named`].
pub fn root_module<E: Engine>() -> EngineModRef {
    root_module_named::<E>("")
}

/// The root module of engine `E`, exported under `name`.
pub fn root_module_named<E: Engine>(name: &'static str) -> EngineModRef {
    let module = EngineMod {
        configure: configure::<E>,
        new_task: new_task::<E>,
        plan: plan::<E>,
        stop_task: stop_task::<E>,
        drop_task: drop_task::<E>,
        command: command::<E>,
        name: RStr::from_str(name),
    };
    // Built once per library (abi_stable caches the root module) and kept for the life of
    // the process, like the library itself.
    let leaked: &'static WithMetadata<EngineMod> = Box::leak(Box::new(WithMetadata::new(module)));
    EngineModRef(leaked.static_as_prefix())
}

#[doc(hidden)]
pub extern "C" fn __root_module_loader<E: Engine>() -> RootModuleResult {
    __call_root_module_loader(root_module::<E>)
}

/// The library header [`export_engine!`](crate::export_engine) exports for engine `E`.
pub const fn lib_header<E: Engine>() -> LibHeader {
    // SAFETY: the constructor returns the prefix of an `EngineMod` built by
    // `root_module::<E>`, erased by abi_stable's own `__call_root_module_loader`, which is
    // exactly what `from_constructor::<EngineModRef>` requires.
    unsafe {
        LibHeader::from_constructor::<EngineModRef>(__root_module_loader::<E>, CheckTypeLayout::Yes)
    }
}

fn root_module_of<E: Engine, N: EngineName>() -> EngineModRef {
    root_module_named::<E>(N::NAME)
}

#[doc(hidden)]
pub extern "C" fn __root_module_loader_named<E: Engine, N: EngineName>() -> RootModuleResult {
    __call_root_module_loader(root_module_of::<E, N>)
}

/// The library header of engine `E` exported under the name `N::NAME`; what
/// [`export_engine!`](crate::export_engine) exports.
pub const fn lib_header_named<E: Engine, N: EngineName>() -> LibHeader {
    // SAFETY: as in `lib_header`: the constructor returns the prefix of an `EngineMod`
    // built by `root_module_named::<E>`, erased by abi_stable's `__call_root_module_loader`.
    unsafe {
        LibHeader::from_constructor::<EngineModRef>(
            __root_module_loader_named::<E, N>,
            CheckTypeLayout::Yes,
        )
    }
}

/// The names of [`EngineMod`]'s fields that mirror the WIT `engine` interface, read from its
/// abi_stable type layout (used to check the module against the WIT); the
/// [`NATIVE_ONLY_FIELDS`] are left out.
pub fn engine_mod_field_names() -> Vec<&'static str> {
    <EngineMod as PrefixTypeTrait>::PT_LAYOUT
        .get_field_names_vec()
        .into_iter()
        .filter(|n| !NATIVE_ONLY_FIELDS.contains(n))
        .collect()
}
