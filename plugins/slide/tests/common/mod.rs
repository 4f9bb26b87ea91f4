//! Loads a crate's own `.so` with abi_stable (as the daemon's native loader does) and
//! drives a fixture through it, answering host calls from the fixture's `FakeHost`.

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec};
use etmem_sdk::native::{
    EngineModRef, HostApi, HostApi_TO, REngineError, RLogLevel, RProcessMemory, RRoundInfo,
    RScanResult, RSystemFacts, RTaskInfo, RVma, params_to,
};
use etmem_sdk::testing::FakeHost;
use etmem_sdk::{Action, Host};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A native host answering from a [`FakeHost`].
pub struct Adapter(pub FakeHost);

fn res<T, U: From<T>>(r: Result<T, etmem_sdk::EngineError>) -> RResult<U, REngineError> {
    match r {
        Ok(v) => RResult::ROk(U::from(v)),
        Err(e) => RResult::RErr(e.into()),
    }
}

impl HostApi for Adapter {
    fn log(&self, l: RLogLevel, m: RStr<'_>) {
        self.0.log(l.into(), m.as_str());
    }
    fn task_vmas(&self, t: RStr<'_>, pid: u32) -> RResult<RVec<RVma>, REngineError> {
        match self.0.task_vmas(t.as_str(), pid) {
            Ok(v) => RResult::ROk(v.iter().map(RVma::from).collect()),
            Err(e) => RResult::RErr(e.into()),
        }
    }
    fn task_scan(&self, t: RStr<'_>) -> RResult<RVec<RScanResult>, REngineError> {
        match self.0.task_scan(t.as_str()) {
            Ok(v) => RResult::ROk(v.iter().map(RScanResult::from).collect()),
            Err(e) => RResult::RErr(e.into()),
        }
    }
    fn task_memory(&self, t: RStr<'_>, pid: u32) -> RResult<RProcessMemory, REngineError> {
        match self.0.task_memory(t.as_str(), pid) {
            Ok(m) => RResult::ROk(RProcessMemory {
                rss_kb: m.rss_kb,
                swap_kb: m.swap_kb,
            }),
            Err(e) => RResult::RErr(e.into()),
        }
    }
    fn task_page_nodes(
        &self,
        t: RStr<'_>,
        pid: u32,
        a: RSlice<'_, u64>,
    ) -> RResult<RVec<i32>, REngineError> {
        res::<Vec<i32>, RVec<i32>>(self.0.task_page_nodes(t.as_str(), pid, a.as_slice()))
    }
    fn request_swap_out(
        &self,
        t: RStr<'_>,
        pid: u32,
        a: RSlice<'_, u64>,
    ) -> RResult<u64, REngineError> {
        res(self.0.request_swap_out(t.as_str(), pid, a.as_slice()))
    }
    fn request_migrate(
        &self,
        t: RStr<'_>,
        pid: u32,
        a: RSlice<'_, u64>,
        node: u32,
    ) -> RResult<u64, REngineError> {
        res(self.0.request_migrate(t.as_str(), pid, a.as_slice(), node))
    }
    fn system_facts(&self) -> RSystemFacts {
        RSystemFacts::from(&self.0.system_facts())
    }
}

/// This crate's `.so` built the way users build it: `scripts/build-engine` (native form
/// only) into a target dir of its own, once per test process.
///
/// Not the cdylib cargo builds next to this test: under `cargo test --workspace` cargo
/// unifies features, etmemd turns on `builtin`, and that cdylib has no plug-in export.
/// The build dir is `ETMEM_ENGINE_TARGET_DIR` when set, else `engines/` under cargo's
/// scratch dir for integration tests (`CARGO_TARGET_TMPDIR`), so it stays cached between
/// runs and apart from the dirs the running `cargo test` holds locked.
pub fn library(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let script = crate_dir.join("../../scripts/build-engine");
            let base = std::env::var_os("ETMEM_ENGINE_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("engines"));
            let out = base.join("out").join(env!("CARGO_PKG_NAME"));
            let status = Command::new(&script)
                .arg(crate_dir)
                .arg(&out)
                .env("ENGINE_TARGET_DIR", base.join("target"))
                .env("BUILD_ENGINE_FORMS", "native")
                .status()
                .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
            assert!(
                status.success(),
                "{} {} {}: {status}",
                script.display(),
                crate_dir.display(),
                out.display()
            );
            out
        })
        .join(name)
}

/// The fixture's plan results, in call order, through the `.so` called `name`.
#[allow(dead_code)]
pub fn run_native<F: FixtureLike>(name: &str, f: &F) -> Vec<Vec<Action>> {
    let header = lib_header_from_path(&library(name)).expect("abi_stable header");
    let m: EngineModRef = header
        .init_root_module::<EngineModRef>()
        .expect("root module");
    let mut host = Adapter(f.host(0));
    let mut engine = {
        let h = HostApi_TO::from_ptr(RRef::new(&host), TD_Opaque);
        (m.configure())(RSlice::from_slice(&params_to(f.engine_params())), h)
            .into_result()
            .expect("configure")
    };
    for (info, params) in f.tasks() {
        let h = HostApi_TO::from_ptr(RRef::new(&host), TD_Opaque);
        (m.new_task())(
            &mut engine,
            &RTaskInfo::from(&info),
            RSlice::from_slice(&params_to(&params)),
            h,
        )
        .into_result()
        .expect("new task");
    }
    let mut out = Vec::new();
    for (i, (round, plans)) in f.rounds().into_iter().enumerate() {
        host = Adapter(f.host(i));
        for (task, scans) in plans {
            let h = HostApi_TO::from_ptr(RRef::new(&host), TD_Opaque);
            let scans: Vec<RScanResult> = scans.iter().map(RScanResult::from).collect();
            let actions = (m.plan())(
                &mut engine,
                task.as_str().into(),
                RRoundInfo {
                    number: round.number,
                    passes: round.passes,
                },
                RSlice::from_slice(&scans),
                h,
            )
            .into_result()
            .expect("plan");
            out.push(actions.into_iter().map(Action::from).collect());
        }
    }
    out
}

/// The plan calls of one round: task and scans.
pub type Calls = Vec<(String, Vec<etmem_sdk::ScanResult>)>;

/// What [`run_native`] needs of a crate's fixture.
pub trait FixtureLike {
    fn engine_params(&self) -> &etmem_sdk::Params;
    fn tasks(&self) -> Vec<(etmem_sdk::TaskInfo, etmem_sdk::Params)>;
    fn host(&self, round: usize) -> FakeHost;
    fn rounds(&self) -> Vec<(etmem_sdk::Round, Calls)>;
}
