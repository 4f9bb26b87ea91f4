//! The abi_stable boundary types of the native plug-in ABI: the values an engine library
//! and the daemon pass each other, the host trait object ([`HostApi`]) and the root module
//! ([`EngineMod`]), each mirroring its WIT counterpart.
//!
//! Their layout IS the ABI: changing, reordering or removing a field breaks every engine
//! library already built: the loader's checks (the root module's `VERSION_STRINGS`, from
//! this crate's version, and abi_stable's type-layout check, both run when a library is
//! loaded) then refuse it. Only append, as [`EngineMod`]'s docs say. This module declares types;
//! it must not convert values (that is `convert`) or hold behaviour.

// abi_stable's derives define impls inside constants, and `DynTrait` carries zero-sized
// markers that rustc cannot prove FFI-safe; both are how abi_stable is meant to be used.
#![allow(non_local_definitions, improper_ctypes_definitions)]

use abi_stable::library::RootModule;
use abi_stable::sabi_trait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2};
use abi_stable::{DynTrait, StableAbi, declare_root_module_statics, package_version_strings};

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

/// A `task-smaps-vmas` entry: `tuple<vma, list<string>>`.
pub type RVmaFlags = Tuple2<RVma, RVec<RString>>;

/// `scan-result`: runs as parallel lists (sizes as wire codes).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RScanResult {
    pub pid: u32,
    pub passes: u32,
    pub addrs: RVec<u64>,
    pub lens: RVec<u32>,
    pub counts: RVec<u8>,
    pub sizes: RVec<u8>,
}

/// `page-run` (size as its wire code).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct RPageRun {
    pub addr: u64,
    pub pages: u32,
    pub size: u8,
}

/// `action`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum RAction {
    SwapOut {
        pid: u32,
        runs: RVec<RPageRun>,
    },
    Migrate {
        pid: u32,
        runs: RVec<RPageRun>,
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

/// `damon-attrs`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RDamonAttrs {
    pub sample_us: u64,
    pub aggr_us: u64,
    pub update_us: u64,
    pub min_nr_regions: u64,
    pub max_nr_regions: u64,
}

/// `damon-scheme`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RDamonScheme {
    pub min_size: u64,
    pub max_size: u64,
    pub min_acc: u32,
    pub max_acc: u32,
    pub min_age: u32,
    pub max_age: u32,
    pub action: RString,
}

/// `cgroup`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RCgroup {
    pub path: RString,
    pub id: u64,
}

/// `cgroup-memory`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Default)]
#[allow(missing_docs)]
pub struct RCgroupMemory {
    pub v2: bool,
    pub usage: u64,
    pub limit: u64,
    pub min: u64,
    pub low: u64,
    pub file: u64,
    pub anon: u64,
    pub swap_limit: u64,
    pub swap_usage: u64,
    pub pressure_avg10: f64,
    pub pressure_avg60: f64,
}

/// `cgroup-reclaimed`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)]
pub struct RCgroupReclaimed {
    pub requested: u64,
    pub reclaimed: u64,
    pub complete: bool,
    pub dry_run: bool,
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
    /// `reclaim-swapcache` (appended after the last prefix field, which is how a
    /// `sabi_trait` grows)
    fn reclaim_swapcache(
        &self,
        task: RStr<'_>,
        pid: u32,
        low: u8,
        high: u8,
    ) -> RResult<(), REngineError>;
    /// `task-smaps-vmas` (appended: libraries built before it never call it)
    fn task_smaps_vmas(
        &self,
        task: RStr<'_>,
        pid: u32,
        flags: RSlice<'_, RString>,
    ) -> RResult<RVec<RVmaFlags>, REngineError>;
    /// `send-page-list` (appended)
    fn send_page_list(
        &self,
        task: RStr<'_>,
        sock: RStr<'_>,
        pages: &RScanResult,
    ) -> RResult<u64, REngineError>;
    /// `damon-apply-scheme` (appended)
    fn damon_apply_scheme(
        &self,
        task: RStr<'_>,
        pid: u32,
        attrs: RDamonAttrs,
        scheme: &RDamonScheme,
    ) -> RResult<(), REngineError>;
    /// `damon-remove-scheme` (appended)
    fn damon_remove_scheme(&self, task: RStr<'_>, pid: u32) -> RResult<(), REngineError>;
    /// `cgroup-glob` (appended)
    fn cgroup_glob(&self, task: RStr<'_>) -> RResult<RVec<RCgroup>, REngineError>;
    /// `cgroup-memory` (appended)
    fn cgroup_memory(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
    ) -> RResult<RCgroupMemory, REngineError>;
    /// `cgroup-reclaim` (appended)
    fn cgroup_reclaim(
        &self,
        task: RStr<'_>,
        cgroup: RStr<'_>,
        bytes: u64,
    ) -> RResult<RCgroupReclaimed, REngineError>;
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
