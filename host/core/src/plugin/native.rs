//! The native loader: turns a `.so` built with `etmem-sdk` (`export_engine!`, abi_stable)
//! into an [`EngineInstance`].
//!
//! * **Loading.** Each file is opened with `abi_stable::library::lib_header_from_path` and
//!   its root module checked with `init_root_module::<EngineModRef>()` (version, then type
//!   layout). `RootModule::load_from_file` is not used: it keeps the first library it
//!   loaded for the whole process and silently ignores a second path.
//! * **Names.** A library exports one engine, named after its crate (`idle_swap` for crate
//!   `idle-swap`, file `libidle_swap.so`); `ops_name` must say that name. A library built
//!   before the SDK recorded the name is known by its file stem without `lib`.
//! * **Errors.** A file that is not an etmem engine, or one built with an incompatible SDK,
//!   gives [`LoadError::Incompatible`](super::LoadError::Incompatible) with one line of
//!   summary (abi_stable's own layout report runs to ~160 lines; it goes to the debug log).
//! * **Faults.** The SDK catches a panic at every entry point and returns it as a value;
//!   this adapter turns it into [`CallError::Fault`] and then refuses every call
//!   (`engine already failed: <first reason>`), as a trapped wasm instance does. A segfault
//!   in a native engine still kills the daemon: native engines are trusted code.
//! * **Unloading.** Libraries are never unloaded: deleting an engine drops its instance but
//!   keeps the library's code mapped until the daemon exits.
//!
//! This module only carries calls; it must not schedule, scan or act.

mod bridge;
mod load;

pub use load::NativeLoader;

use super::{Action, CallError, EngineInstance, HostRef, Params, Round, ScanResult, SdkTaskInfo};
use abi_stable::std_types::{ROption, RResult, RSlice, RStr};
use bridge::HostBridge;
use etmem_sdk::EngineError;
use etmem_sdk::native::{
    EngineBox, EngineModRef, REngineError, RRoundInfo, RScanResult, RTaskInfo, params_to,
};
use std::fmt;

/// An engine's error crossing back: a panic is a fault, everything else a value.
fn call_error(e: REngineError) -> CallError {
    match e {
        REngineError::Panicked(msg) => CallError::Fault(format!("panicked: {msg}")),
        other => CallError::Engine(EngineError::from(other)),
    }
}

// ---------------------------------------------------------------- the engine side

/// A configured engine inside a native library.
struct NativeEngine {
    module: EngineModRef,
    engine: EngineBox,
    /// `<name> from <path>`, for Debug
    label: String,
    /// the first fault; every later call is refused with it
    failed: Option<String>,
}

impl fmt::Debug for NativeEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeEngine")
            .field("engine", &self.label)
            .field("failed", &self.failed)
            .finish()
    }
}

impl NativeEngine {
    /// Makes one call unless the engine already failed; a panic marks it failed.
    fn call<T>(
        &mut self,
        f: impl FnOnce(EngineModRef, &mut EngineBox) -> RResult<T, REngineError>,
    ) -> Result<T, CallError> {
        if let Some(why) = &self.failed {
            return Err(CallError::Fault(format!("engine already failed: {why}")));
        }
        match f(self.module, &mut self.engine) {
            RResult::ROk(v) => Ok(v),
            RResult::RErr(e) => {
                let err = call_error(e);
                if let CallError::Fault(why) = &err {
                    self.failed = Some(why.clone());
                }
                Err(err)
            }
        }
    }
}

impl EngineInstance for NativeEngine {
    fn new_task(
        &mut self,
        task: &SdkTaskInfo,
        params: &Params,
        host: &HostRef,
    ) -> Result<(), CallError> {
        let info = RTaskInfo::from(task);
        let rparams = params_to(params);
        let bridge = HostBridge(host.as_ref());
        self.call(|m, e| (m.new_task())(e, &info, rparams.as_rslice(), bridge.rhost()))
    }

    fn plan(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &HostRef,
    ) -> Result<Vec<Action>, CallError> {
        let rscans: Vec<RScanResult> = scans.iter().map(RScanResult::from).collect();
        let rround = RRoundInfo {
            number: round.number,
            passes: round.passes,
        };
        let bridge = HostBridge(host.as_ref());
        let actions = self.call(|m, e| {
            (m.plan())(
                e,
                task.into(),
                rround,
                RSlice::from_slice(&rscans),
                bridge.rhost(),
            )
        })?;
        actions
            .iter()
            .map(Action::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(CallError::Engine)
    }

    fn stop_task(&mut self, task: &str, host: &HostRef) -> Result<(), CallError> {
        let bridge = HostBridge(host.as_ref());
        self.call(|m, e| (m.stop_task())(e, task.into(), bridge.rhost()))
    }

    fn drop_task(&mut self, task: &str) -> Result<(), CallError> {
        self.call(|m, e| (m.drop_task())(e, task.into()))
    }

    fn command(
        &mut self,
        cmd: &str,
        task: Option<&str>,
        host: &HostRef,
    ) -> Result<String, CallError> {
        let bridge = HostBridge(host.as_ref());
        let rtask: ROption<RStr<'_>> = task.map(RStr::from_str).into();
        self.call(|m, e| (m.command())(e, cmd.into(), rtask, bridge.rhost()))
            .map(|s| s.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{EngineLoader, LoadError};
    use etmem_sdk::LogLevel;
    use etmem_sdk::testing::FakeHost;
    use std::collections::HashMap;
    use std::path::Path;
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::{Arc, Mutex, OnceLock};

    /// Builds an engine crate of this repository (native form only) once per process and
    /// returns its `.so`. Engines share one target dir next to ours
    /// (`<target>/engine-fixtures`) so later runs only relink.
    fn engine(crate_dir: &str, features: &str) -> PathBuf {
        static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
        static OUT: OnceLock<tempfile::TempDir> = OnceLock::new();
        let mut built = BUILT
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let key = (crate_dir.to_string(), features.to_string());
        if let Some(p) = built.get(&key) {
            return p.clone();
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let exe = std::env::current_exe().expect("test binary path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("target dir above <profile>/deps")
            .join("engine-fixtures");
        let crate_path = root.join(crate_dir);
        let out = OUT
            .get_or_init(|| tempfile::tempdir().expect("temp dir"))
            .path()
            .join(format!("{}-{}", built.len(), features));
        std::fs::create_dir_all(&out).expect("out dir");
        let so = if features.is_empty() {
            let st = Command::new(root.join("scripts/build-engine"))
                .arg(&crate_path)
                .arg(&out)
                .env("ENGINE_TARGET_DIR", &target)
                .env("BUILD_ENGINE_FORMS", "native")
                .status()
                .expect("run scripts/build-engine");
            assert!(st.success(), "scripts/build-engine {crate_dir} failed");
            std::fs::read_dir(&out)
                .expect("out dir")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|e| e == "so"))
                .expect("a .so from build-engine")
        } else {
            let tgt = target.join("features");
            let st = Command::new("cargo")
                .args(["build", "--release", "--lib", "--features", features])
                .current_dir(&crate_path)
                .env("CARGO_TARGET_DIR", &tgt)
                .status()
                .expect("run cargo");
            assert!(
                st.success(),
                "cargo build {crate_dir} --features {features} failed"
            );
            let name = crate_path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("crate dir name")
                .replace('-', "_");
            let so = out.join(format!("lib{name}.so"));
            std::fs::copy(tgt.join(format!("release/lib{name}.so")), &so).expect("copy .so");
            so
        };
        built.insert(key, so.clone());
        so
    }

    fn host() -> (Arc<FakeHost>, HostRef) {
        let fake = Arc::new(FakeHost::new());
        let href: HostRef = fake.clone();
        (fake, href)
    }

    fn load(
        path: &Path,
        ops: &str,
        params: &[(&str, &str)],
    ) -> Result<Box<dyn EngineInstance>, LoadError> {
        let (_, h) = host();
        NativeLoader::new().load(
            path,
            ops,
            "eng",
            &Params::from_pairs(params.iter().copied()),
            &h,
        )
    }

    fn round(n: u64) -> Round {
        Round {
            number: n,
            passes: 1,
        }
    }

    fn scan(pid: u32, pages: &[(u64, u8)]) -> ScanResult {
        ScanResult::from_pages(
            pid,
            1,
            pages.iter().map(|&(addr, count)| etmem_sdk::Page {
                addr,
                count,
                size: etmem_sdk::PageSize::Size4K,
            }),
        )
        .expect("scan")
    }

    #[test]
    fn idle_swap_loads_plans_and_answers_commands() {
        let so = engine("sdk/examples/idle-swap", "");
        assert_eq!(NativeLoader::new().extension(), "so");
        let (fake, h) = host();
        let mut e = NativeLoader::new()
            .load(&so, "idle_swap", "eng", &Params::new(), &h)
            .expect("load");
        let info = SdkTaskInfo::named("p", "db", "mysqld");
        e.new_task(&info, &Params::from_pairs([("idle_rounds", "1")]), &h)
            .expect("new task");
        let actions = e
            .plan(
                "db",
                &round(7),
                &[scan(42, &[(0x1000, 0), (0x2000, 3)])],
                &h,
            )
            .expect("plan");
        assert_eq!(
            actions,
            vec![Action::SwapOut {
                pid: 42,
                runs: etmem_sdk::PageRun::of_base_pages(&[0x1000])
            }]
        );
        // The engine's log call crossed the bridge into our Host.
        assert!(
            fake.logs()
                .iter()
                .any(|(l, m)| *l == LogLevel::Debug && m == "task db round 7: swap out 1 pages"),
            "logs: {:?}",
            fake.logs()
        );
        assert_eq!(
            e.command("showidle", Some("db"), &h),
            Ok("task db: 0 pages tracked, 1 swapped out in total\n".to_string())
        );
        // Engine errors are values and the engine stays usable.
        assert_eq!(
            e.command("nope", None, &h),
            Err(CallError::Engine(EngineError::UnknownCommand(
                "nope".into()
            )))
        );
        assert_eq!(
            e.new_task(
                &SdkTaskInfo::named("p", "web", "nginx"),
                &Params::from_pairs([("idle_rounds", "0")]),
                &h
            )
            .expect_err("bad value")
            .to_string(),
            "key `idle_rounds`: expected an integer in 1..=255, found `0`"
        );
        e.stop_task("db", &h).expect("stop");
        e.drop_task("db").expect("drop");
        assert_eq!(
            e.drop_task("db"),
            Err(CallError::Engine(EngineError::UnknownTask("db".into())))
        );
        // A second instance from the same file is independent.
        let mut other = load(&so, "idle_swap", &[]).expect("second load");
        assert_eq!(
            other.command("showidle", Some("db"), &h),
            Err(CallError::Engine(EngineError::UnknownTask("db".into())))
        );
    }

    #[test]
    fn configure_errors_are_load_errors() {
        let so = engine("sdk/examples/idle-swap", "");
        assert_eq!(
            load(&so, "idle_swap", &[("cold", "1")]).expect_err("unknown key"),
            LoadError::Configure {
                engine: "eng".into(),
                error: CallError::Engine(EngineError::UnknownParam("cold".into())),
            }
        );
    }

    #[test]
    fn wrong_ops_name_names_what_the_library_exports() {
        let so = engine("sdk/examples/idle-swap", "");
        let err = load(&so, "my_engine_ops", &[]).expect_err("wrong name");
        assert_eq!(
            err,
            LoadError::NoSuchEngine {
                path: so.display().to_string(),
                ops_name: "my_engine_ops".into(),
                hint: " (it exports `idle_swap`)".into(),
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "engine library `{}` exports no engine `my_engine_ops` (it exports `idle_swap`)",
                so.display()
            )
        );
    }

    #[test]
    fn a_plain_library_is_not_an_engine() {
        let so = engine("tests/fixtures/engines/native-notengine", "");
        let err = load(&so, "native_notengine", &[]).expect_err("not an engine");
        let LoadError::Incompatible { path, reason } = &err else {
            panic!("expected Incompatible, got {err:?}");
        };
        assert_eq!(path, &so.display().to_string());
        assert!(
            reason.starts_with("not an etmem engine: it exports no abi_stable root module"),
            "{reason}"
        );
    }

    #[test]
    fn a_foreign_layout_is_incompatible_in_one_line() {
        let so = engine("tests/fixtures/engines/native-badlayout", "");
        let err = load(&so, "native_badlayout", &[]).expect_err("bad layout");
        let LoadError::Incompatible { reason, .. } = &err else {
            panic!("expected Incompatible, got {err:?}");
        };
        assert_eq!(
            reason,
            "incompatible root module layout: mismatched type (expected EngineMod, found \
             OtherMod); it was not built with this daemon's etmem-sdk: rebuild the engine"
        );
        assert!(!reason.contains('\n') && reason.len() < 400, "{reason}");
    }

    #[test]
    fn an_older_sdk_version_is_incompatible() {
        let so = engine("tests/fixtures/engines/native-badlayout", "old-version");
        let err = load(&so, "native_badlayout", &[]).expect_err("old version");
        let LoadError::Incompatible { reason, .. } = &err else {
            panic!("expected Incompatible, got {err:?}");
        };
        assert!(
            reason.starts_with("built with etmem-sdk 0.0.1,"),
            "{reason}"
        );
        assert!(!reason.contains('\n'), "{reason}");
    }

    #[test]
    fn a_missing_file_cannot_be_loaded() {
        let err = load(Path::new("/nonexistent/libx.so"), "x", &[]).expect_err("missing");
        let LoadError::Incompatible { reason, .. } = &err else {
            panic!("expected Incompatible, got {err:?}");
        };
        assert!(reason.starts_with("cannot be loaded: "), "{reason}");
        assert!(!reason.contains('\n'), "{reason}");
    }

    #[test]
    fn a_panic_is_a_fault_and_later_calls_are_refused() {
        let so = engine("tests/fixtures/engines/native-panic", "");
        let (_, h) = host();
        let mut e = load(&so, "native_panic", &[("loop", "1")]).expect("load");
        e.new_task(&SdkTaskInfo::named("p", "t", "x"), &Params::new(), &h)
            .expect("new task");
        assert_eq!(e.command("ping", None, &h), Ok("pong\n".to_string()));
        let why = "panicked: native-panic fixture: plan always panics";
        assert_eq!(
            e.plan("t", &round(1), &[], &h),
            Err(CallError::Fault(why.to_string()))
        );
        let refused = CallError::Fault(format!("engine already failed: {why}"));
        assert_eq!(e.command("ping", None, &h), Err(refused.clone()));
        assert_eq!(e.plan("t", &round(2), &[], &h), Err(refused.clone()));
        assert_eq!(e.stop_task("t", &h), Err(refused.clone()));
        assert_eq!(e.drop_task("t"), Err(refused));
        // Another instance of the same library is unaffected.
        let mut fresh = load(&so, "native_panic", &[]).expect("load again");
        assert_eq!(fresh.command("ping", None, &h), Ok("pong\n".to_string()));
        assert_eq!(
            fresh.command("boom", None, &h),
            Err(CallError::Fault(
                "panicked: native-panic fixture: boom requested".to_string()
            ))
        );
    }
}
