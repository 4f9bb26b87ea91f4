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

// abi_stable's derives define impls inside constants, and `DynTrait` carries zero-sized
// markers that rustc cannot prove FFI-safe; both are how abi_stable is meant to be used.
#![allow(non_local_definitions, improper_ctypes_definitions)]

use crate::runtime::{Runner, guard, panic_message};
use crate::{
    Action, Engine, EngineError, Host, LogLevel, MemInfo, NodeMemory, Params, Pid, ProcessMemory,
    Round, ScanResult, SystemFacts, TaskInfo, Vma,
};
pub use abi_stable;
use abi_stable::library::{
    __call_root_module_loader, CheckTypeLayout, LibHeader, RootModule, RootModuleResult,
};
use abi_stable::prefix_type::{PrefixTypeTrait, WithMetadata};
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2};
use abi_stable::{DynTrait, StableAbi, declare_root_module_statics, package_version_strings};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// One `key = value` pair.
pub type RParam = Tuple2<RString, RString>;

/// `engine-error`, plus `Panicked` (native only).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum REngineError {
    InvalidParam {
        key: RString,
        value: RString,
        expected: RString,
    },
    MissingParam(RString),
    UnknownParam(RString),
    UnknownTask(RString),
    UnknownCommand(RString),
    TaskRequired(RString),
    Host(RString),
    Failed(RString),
    Panicked(RString),
}

/// `vma`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RVma {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub writable: bool,
    pub executable: bool,
    pub shared: bool,
    pub offset: u64,
    pub inode: u64,
    pub path: RString,
}

/// `scan-result` (sizes as wire codes).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RScanResult {
    pub pid: u32,
    pub passes: u32,
    pub addrs: RVec<u64>,
    pub counts: RVec<u8>,
    pub sizes: RVec<u8>,
}

/// `action`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RAction {
    SwapOut {
        pid: u32,
        addrs: RVec<u64>,
    },
    Migrate {
        pid: u32,
        addrs: RVec<u64>,
        node: u32,
    },
}

/// `task-info`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RTaskInfo {
    pub project: RString,
    pub name: RString,
    pub target_type: RString,
    pub target_value: RString,
}

/// `round-info`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RRoundInfo {
    pub number: u64,
    pub passes: u32,
}

/// `log-level`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RLogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// `meminfo`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RMemInfo {
    pub mem_total_kb: u64,
    pub mem_free_kb: u64,
    pub mem_available_kb: u64,
    pub swap_total_kb: u64,
    pub swap_free_kb: u64,
    pub swap_cached_kb: u64,
}

/// `node-memory`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RNodeMemory {
    pub node: u32,
    pub total_kb: u64,
    pub free_kb: u64,
    pub huge_total_kb: u64,
    pub huge_free_kb: u64,
}

/// `facts`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RSystemFacts {
    pub meminfo: RMemInfo,
    pub nodes: RVec<RNodeMemory>,
}

/// `process-memory`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RProcessMemory {
    pub rss_kb: u64,
    pub swap_kb: u64,
}

/// The WIT `host` interface as an abi_stable trait object; the daemon implements it and
/// passes `HostApi_TO::from_ptr(RRef::new(&impl), TD_Opaque)` (see [`RHost`]) to every
/// entry point.
#[sabi_trait]
pub trait HostApi {
    /// `log`
    fn log(&self, level: RLogLevel, message: RStr<'_>);
    /// `task-vmas`
    fn task_vmas(&self, task: RStr<'_>, pid: u32) -> RResult<RVec<RVma>, REngineError>;
    /// `task-scan`
    fn task_scan(&self, task: RStr<'_>) -> RResult<RVec<RScanResult>, REngineError>;
    /// `task-memory`
    fn task_memory(&self, task: RStr<'_>, pid: u32) -> RResult<RProcessMemory, REngineError>;
    /// `task-page-nodes`
    fn task_page_nodes(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<RVec<i32>, REngineError>;
    /// `request-swap-out`
    fn request_swap_out(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
    ) -> RResult<u64, REngineError>;
    /// `request-migrate`
    fn request_migrate(
        &self,
        task: RStr<'_>,
        pid: u32,
        addrs: RSlice<'_, u64>,
        node: u32,
    ) -> RResult<u64, REngineError>;
    /// `system-facts`
    #[sabi(last_prefix_field)]
    fn system_facts(&self) -> RSystemFacts;
}

/// The host object handed to every entry point.
pub type RHost<'a> = HostApi_TO<'a, abi_stable::sabi_types::RRef<'a, ()>>;

/// The interface of [`EngineBox`]: an owned, sendable, opaque engine instance.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(impl_InterfaceType(Send))]
pub struct EngineInterface;

/// An engine instance returned by `configure`; only the library that made it can use it,
/// and dropping it drops the engine inside that library.
pub type EngineBox = DynTrait<'static, abi_stable::std_types::RBox<()>, EngineInterface>;

/// The root module of a native engine library: the WIT `engine` interface, field for
/// field. New fields go after `command` so older libraries keep loading.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = EngineModRef)))]
#[sabi(missing_field(panic))]
pub struct EngineMod {
    /// `configure`
    pub configure: extern "C" fn(
        params: RSlice<'_, RParam>,
        host: RHost<'_>,
    ) -> RResult<EngineBox, REngineError>,
    /// `new-task`
    pub new_task: extern "C" fn(
        engine: &mut EngineBox,
        task: &RTaskInfo,
        params: RSlice<'_, RParam>,
        host: RHost<'_>,
    ) -> RResult<(), REngineError>,
    /// `plan`
    pub plan: extern "C" fn(
        engine: &mut EngineBox,
        task: RStr<'_>,
        round: RRoundInfo,
        scans: RSlice<'_, RScanResult>,
        host: RHost<'_>,
    ) -> RResult<RVec<RAction>, REngineError>,
    /// `stop-task` (the result only reports an unknown task or a panic)
    pub stop_task: extern "C" fn(
        engine: &mut EngineBox,
        task: RStr<'_>,
        host: RHost<'_>,
    ) -> RResult<(), REngineError>,
    /// `drop-task` (the result only reports an unknown task or a panic)
    pub drop_task:
        extern "C" fn(engine: &mut EngineBox, task: RStr<'_>) -> RResult<(), REngineError>,
    /// `command`
    #[sabi(last_prefix_field)]
    pub command: extern "C" fn(
        engine: &mut EngineBox,
        cmd: RStr<'_>,
        task: ROption<RStr<'_>>,
        host: RHost<'_>,
    ) -> RResult<RString, REngineError>,
    /// The name the library exports its engine under (what a config's `ops_name` names):
    /// the engine crate's name, `-` written `_` (`idle_swap` for crate `idle-swap`).
    /// Native only (the WIT has no such function). Libraries built before this field
    /// existed lack it: the accessor then returns `None`.
    #[sabi(missing_field(option))]
    pub name: RStr<'static>,
}

/// The fields of [`EngineMod`] that have no WIT counterpart.
pub const NATIVE_ONLY_FIELDS: &[&str] = &["name"];

/// Gives a library's engine its exported name; [`export_engine!`](crate::export_engine)
/// implements it with the engine crate's name.
pub trait EngineName {
    /// The name (what a config's `ops_name` must say).
    const NAME: &'static str;
}

impl RootModule for EngineModRef {
    declare_root_module_statics! {EngineModRef}
    const BASE_NAME: &'static str = "etmem_engine";
    const NAME: &'static str = "etmem_engine";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The symbol abi_stable looks up in a library (`abi_stable::library::ROOT_MODULE_LOADER_NAME`);
/// [`export_engine!`](crate::export_engine) exports the header under this name.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

// ---------------------------------------------------------------- conversions

impl From<EngineError> for REngineError {
    fn from(e: EngineError) -> REngineError {
        match e {
            EngineError::InvalidParam {
                key,
                value,
                expected,
            } => REngineError::InvalidParam {
                key: key.into(),
                value: value.into(),
                expected: expected.into(),
            },
            EngineError::MissingParam(s) => REngineError::MissingParam(s.into()),
            EngineError::UnknownParam(s) => REngineError::UnknownParam(s.into()),
            EngineError::UnknownTask(s) => REngineError::UnknownTask(s.into()),
            EngineError::UnknownCommand(s) => REngineError::UnknownCommand(s.into()),
            EngineError::TaskRequired(s) => REngineError::TaskRequired(s.into()),
            EngineError::Host(s) => REngineError::Host(s.into()),
            EngineError::Failed(s) => REngineError::Failed(s.into()),
            EngineError::Panicked(s) => REngineError::Panicked(s.into()),
        }
    }
}

impl From<REngineError> for EngineError {
    fn from(e: REngineError) -> EngineError {
        match e {
            REngineError::InvalidParam {
                key,
                value,
                expected,
            } => EngineError::InvalidParam {
                key: key.into(),
                value: value.into(),
                expected: expected.into(),
            },
            REngineError::MissingParam(s) => EngineError::MissingParam(s.into()),
            REngineError::UnknownParam(s) => EngineError::UnknownParam(s.into()),
            REngineError::UnknownTask(s) => EngineError::UnknownTask(s.into()),
            REngineError::UnknownCommand(s) => EngineError::UnknownCommand(s.into()),
            REngineError::TaskRequired(s) => EngineError::TaskRequired(s.into()),
            REngineError::Host(s) => EngineError::Host(s.into()),
            REngineError::Failed(s) => EngineError::Failed(s.into()),
            REngineError::Panicked(s) => EngineError::Panicked(s.into()),
        }
    }
}

impl From<&Vma> for RVma {
    fn from(v: &Vma) -> RVma {
        RVma {
            start: v.start,
            end: v.end,
            readable: v.readable,
            writable: v.writable,
            executable: v.executable,
            shared: v.shared,
            offset: v.offset,
            inode: v.inode,
            path: v.path.as_str().into(),
        }
    }
}

impl From<RVma> for Vma {
    fn from(v: RVma) -> Vma {
        Vma {
            start: v.start,
            end: v.end,
            readable: v.readable,
            writable: v.writable,
            executable: v.executable,
            shared: v.shared,
            offset: v.offset,
            inode: v.inode,
            path: v.path.into(),
        }
    }
}

impl From<&ScanResult> for RScanResult {
    fn from(s: &ScanResult) -> RScanResult {
        RScanResult {
            pid: s.pid(),
            passes: s.passes(),
            addrs: s.addrs().into(),
            counts: s.counts().into(),
            sizes: s.size_codes().into(),
        }
    }
}

impl TryFrom<&RScanResult> for ScanResult {
    type Error = EngineError;
    fn try_from(s: &RScanResult) -> Result<ScanResult, EngineError> {
        ScanResult::from_codes(
            s.pid,
            s.passes,
            s.addrs.to_vec(),
            s.counts.to_vec(),
            &s.sizes,
        )
    }
}

impl From<Action> for RAction {
    fn from(a: Action) -> RAction {
        match a {
            Action::SwapOut { pid, addrs } => RAction::SwapOut {
                pid,
                addrs: addrs.into(),
            },
            Action::Migrate { pid, addrs, node } => RAction::Migrate {
                pid,
                addrs: addrs.into(),
                node,
            },
        }
    }
}

impl From<RAction> for Action {
    fn from(a: RAction) -> Action {
        match a {
            RAction::SwapOut { pid, addrs } => Action::SwapOut {
                pid,
                addrs: addrs.into(),
            },
            RAction::Migrate { pid, addrs, node } => Action::Migrate {
                pid,
                addrs: addrs.into(),
                node,
            },
        }
    }
}

impl From<&TaskInfo> for RTaskInfo {
    fn from(t: &TaskInfo) -> RTaskInfo {
        RTaskInfo {
            project: t.project.as_str().into(),
            name: t.name.as_str().into(),
            target_type: t.target_type.as_str().into(),
            target_value: t.target_value.as_str().into(),
        }
    }
}

impl From<&RTaskInfo> for TaskInfo {
    fn from(t: &RTaskInfo) -> TaskInfo {
        TaskInfo {
            project: t.project.to_string(),
            name: t.name.to_string(),
            target_type: t.target_type.to_string(),
            target_value: t.target_value.to_string(),
        }
    }
}

impl From<LogLevel> for RLogLevel {
    fn from(l: LogLevel) -> RLogLevel {
        match l {
            LogLevel::Error => RLogLevel::Error,
            LogLevel::Warn => RLogLevel::Warn,
            LogLevel::Info => RLogLevel::Info,
            LogLevel::Debug => RLogLevel::Debug,
        }
    }
}

impl From<RLogLevel> for LogLevel {
    fn from(l: RLogLevel) -> LogLevel {
        match l {
            RLogLevel::Error => LogLevel::Error,
            RLogLevel::Warn => LogLevel::Warn,
            RLogLevel::Info => LogLevel::Info,
            RLogLevel::Debug => LogLevel::Debug,
        }
    }
}

impl From<&SystemFacts> for RSystemFacts {
    fn from(f: &SystemFacts) -> RSystemFacts {
        let m = f.meminfo;
        RSystemFacts {
            meminfo: RMemInfo {
                mem_total_kb: m.mem_total_kb,
                mem_free_kb: m.mem_free_kb,
                mem_available_kb: m.mem_available_kb,
                swap_total_kb: m.swap_total_kb,
                swap_free_kb: m.swap_free_kb,
                swap_cached_kb: m.swap_cached_kb,
            },
            nodes: f
                .nodes
                .iter()
                .map(|n| RNodeMemory {
                    node: n.node,
                    total_kb: n.total_kb,
                    free_kb: n.free_kb,
                    huge_total_kb: n.huge_total_kb,
                    huge_free_kb: n.huge_free_kb,
                })
                .collect(),
        }
    }
}

impl From<RSystemFacts> for SystemFacts {
    fn from(f: RSystemFacts) -> SystemFacts {
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
                .iter()
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
}

/// Converts a native param list.
pub fn params_from(params: RSlice<'_, RParam>) -> Params {
    Params::from_pairs(params.iter().map(|t| (t.0.to_string(), t.1.to_string())))
}

/// Converts params to the native form.
pub fn params_to(params: &Params) -> RVec<RParam> {
    params
        .pairs()
        .iter()
        .map(|(k, v)| Tuple2(k.as_str().into(), v.as_str().into()))
        .collect()
}

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

    fn system_facts(&self) -> SystemFacts {
        self.0.system_facts().into()
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
