//! The wasm loader against real components built from source (sdk/examples/idle-swap and
//! tests/fixtures/engines/wasm-*) and hand-written WAT components. Run in release: wasmtime
//! compiles components ~25x slower in a debug build.

mod common;

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{ROption, RSlice};
use common::{NativeHost, build_engine, build_engine_for, recorded_scan};
use etmem_host::plugin::{CallError, EngineInstance, EngineLoader, HostRef, LoadError};
use etmem_host_wasm::{WasmLoader, WasmOptions, WasmSetupError};
use etmem_sdk::native::{EngineModRef, HostApi_TO, RRoundInfo, RScanResult, RTaskInfo};
use etmem_sdk::testing::FakeHost;
use etmem_sdk::{
    Action, EngineError, LogLevel, PageSize, Params, Round, ScanResult, ScanRun, TaskInfo,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn idle_swap_dir() -> PathBuf {
    build_engine("sdk/examples/idle-swap", "both")
}

fn fixture(name: &str) -> PathBuf {
    build_engine(&format!("tests/fixtures/engines/{name}"), "wasm")
        .join(format!("{}.wasm", name.replace('-', "_")))
}

fn loader() -> WasmLoader {
    WasmLoader::new(WasmOptions {
        memory_limit: 64 << 20,
        call_deadline: Duration::from_millis(500),
        cache_dir: None,
    })
    .expect("loader")
}

fn fake() -> (Arc<FakeHost>, HostRef) {
    let h = Arc::new(FakeHost::new());
    let r: HostRef = h.clone();
    (h, r)
}

fn load(l: &WasmLoader, path: &Path, params: &Params, host: &HostRef) -> Box<dyn EngineInstance> {
    let stem = path.file_stem().and_then(|s| s.to_str()).expect("stem");
    l.load(path, stem, "eng", params, host).expect("load")
}

fn round(n: u64) -> Round {
    Round {
        number: n,
        passes: 1,
    }
}

#[test]
fn idle_swap_wasm_matches_its_native_build_on_a_recorded_scan() {
    let dir = idle_swap_dir();
    let l = loader();
    let (fake_wasm, host) = fake();
    let mut wasm = load(&l, &dir.join("idle_swap.wasm"), &Params::new(), &host);

    let header = lib_header_from_path(&dir.join("libidle_swap.so")).expect("abi_stable header");
    let m: EngineModRef = header.init_root_module().expect("root module");
    let fake_native = FakeHost::new();
    let nh = NativeHost(&fake_native);
    let h = || HostApi_TO::from_ptr(RRef::new(&nh), TD_Opaque);
    let mut native = (m.configure())(RSlice::from_slice(&[]), h())
        .into_result()
        .expect("native configure");

    let info = TaskInfo::named("p", "db", "mysqld");
    let params = Params::from_pairs([("idle_rounds", "2"), ("max_swap_pages", "5000")]);
    wasm.new_task(&info, &params, &host).expect("wasm new task");
    let rparams = etmem_sdk::native::params_to(&params);
    (m.new_task())(
        &mut native,
        &RTaskInfo::from(&info),
        rparams.as_rslice(),
        h(),
    )
    .into_result()
    .expect("native new task");

    let mut swapped = 0;
    for n in 1..=4 {
        let scans = [recorded_scan(41, 20_000, n), recorded_scan(42, 3_000, n)];
        let from_wasm = wasm
            .plan("db", &round(n), &scans, &host)
            .expect("wasm plan");
        let rscans: Vec<RScanResult> = scans.iter().map(RScanResult::from).collect();
        let from_native: Vec<Action> = (m.plan())(
            &mut native,
            "db".into(),
            RRoundInfo {
                number: n,
                passes: 1,
            },
            RSlice::from_slice(&rscans),
            h(),
        )
        .into_result()
        .expect("native plan")
        .iter()
        .map(|a| Action::try_from(a).expect("valid action"))
        .collect();
        assert_eq!(from_wasm, from_native, "round {n}");
        swapped += from_wasm
            .iter()
            .map(|a| a.page_count() as usize)
            .sum::<usize>();
    }
    assert!(
        swapped > 5000,
        "the scan must make idle-swap act, got {swapped} pages"
    );

    let text = wasm
        .command("showidle", Some("db"), &host)
        .expect("command");
    let native_text = (m.command())(
        &mut native,
        "showidle".into(),
        ROption::RSome("db".into()),
        h(),
    )
    .into_result()
    .expect("native command");
    assert_eq!(text, native_text.as_str());
    assert!(text.starts_with("task db: "), "{text}");
    // The guest's host calls reached the HostRef of the call.
    assert_eq!(fake_wasm.logs(), fake_native.logs());
    assert!(
        fake_wasm
            .logs()
            .iter()
            .any(|(l, m)| *l == LogLevel::Debug && m.starts_with("task db round 4: swap out ")),
        "{:?}",
        fake_wasm.logs()
    );

    // Expected failures are values and leave the engine usable.
    assert_eq!(
        wasm.command("showidle", None, &host),
        Err(CallError::Engine(EngineError::TaskRequired(
            "showidle".into()
        )))
    );
    let bad = Params::from_pairs([("idle_rounds", "0")]);
    let e = wasm
        .new_task(&TaskInfo::named("p", "db2", "x"), &bad, &host)
        .expect_err("bad idle_rounds");
    assert_eq!(
        e.to_string(),
        "key `idle_rounds`: expected an integer in 1..=255, found `0`"
    );
    wasm.stop_task("db", &host).expect("stop");
    wasm.drop_task("db").expect("drop");
    assert_eq!(
        wasm.command("showidle", Some("db"), &host),
        Err(CallError::Engine(EngineError::UnknownTask("db".into())))
    );
}

#[test]
fn configure_refusal_and_ops_name_are_load_errors() {
    let dir = idle_swap_dir();
    let l = loader();
    let (_, host) = fake();
    let path = dir.join("idle_swap.wasm");
    let e = l
        .load(
            &path,
            "idle_swap",
            "mine",
            &Params::from_pairs([("x", "1")]),
            &host,
        )
        .expect_err("unknown engine key");
    assert_eq!(
        e,
        LoadError::Configure {
            engine: "mine".into(),
            error: CallError::Engine(EngineError::UnknownParam("x".into()))
        }
    );
    let e = l
        .load(&path, "idle_swap_ops", "mine", &Params::new(), &host)
        .expect_err("wrong ops_name");
    assert_eq!(
        e.to_string(),
        format!(
            "engine library `{}` exports no engine `idle_swap_ops` (a wasm component exports \
             one engine, named after its file: `idle_swap`)",
            path.display()
        )
    );
    let missing = dir.join("absent.wasm");
    assert!(matches!(
        l.load(&missing, "absent", "mine", &Params::new(), &host),
        Err(LoadError::File { .. })
    ));
}

/// Runs `plan` on a fault fixture and checks the fault text, the time it took, that the
/// instance stays failed, and that the loader and other instances keep working.
fn fault_case(name: &str, expect: impl Fn(&str) -> bool, max: Duration) {
    let l = loader();
    let (_, host) = fake();
    let path = fixture(name);
    let mut bad = load(&l, &path, &Params::new(), &host);
    let mut other = load(&l, &path, &Params::new(), &host);
    let info = TaskInfo::named("p", "t", "x");
    bad.new_task(&info, &Params::new(), &host)
        .expect("new task");
    assert_eq!(bad.command("ping", None, &host), Ok("pong\n".into()));

    let t0 = Instant::now();
    let e = bad
        .plan("t", &round(1), &[recorded_scan(7, 1000, 1)], &host)
        .expect_err("plan must fault");
    let took = t0.elapsed();
    let CallError::Fault(reason) = &e else {
        panic!("{name}: expected a fault, got {e:?}")
    };
    assert!(expect(reason), "{name}: unexpected fault text `{reason}`");
    assert!(took < max, "{name}: fault took {took:?}");

    let again = bad
        .command("ping", None, &host)
        .expect_err("failed instance");
    assert_eq!(
        again,
        CallError::Fault(format!("engine already failed: {reason}"))
    );
    assert_eq!(
        bad.drop_task("t"),
        Err(CallError::Fault(format!("engine already failed: {reason}")))
    );

    // The other instance of the same component, a new one, and another engine still work.
    assert_eq!(other.command("ping", None, &host), Ok("pong\n".into()));
    let mut fresh = load(&l, &path, &Params::new(), &host);
    fresh
        .new_task(&info, &Params::new(), &host)
        .expect("new task");
    assert_eq!(fresh.command("ping", None, &host), Ok("pong\n".into()));
    let mut idle = load(
        &l,
        &idle_swap_dir().join("idle_swap.wasm"),
        &Params::new(),
        &host,
    );
    idle.new_task(&info, &Params::new(), &host)
        .expect("idle-swap new task");
    idle.plan("t", &round(1), &[recorded_scan(7, 1000, 1)], &host)
        .expect("idle-swap plan");
}

#[test]
fn a_trapping_plan_is_a_fault() {
    fault_case(
        "wasm-trap",
        |r| r.starts_with("wasm trap: ") && r.contains("unreachable"),
        Duration::from_secs(2),
    );
}

#[test]
fn an_endless_plan_hits_the_deadline() {
    let t0 = Instant::now();
    fault_case(
        "wasm-loop",
        |r| r == "deadline of 500ms exceeded",
        Duration::from_millis(1500),
    );
    assert!(t0.elapsed() >= Duration::from_millis(500));
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    fault_case(
        "wasm-membomb",
        |r| r == "memory limit of 64 MiB exceeded",
        Duration::from_secs(2),
    );
}

#[test]
fn a_scan_beyond_the_memory_limit_is_refused_and_the_engine_stays() {
    let dir = idle_swap_dir();
    let l = loader(); // 64 MiB
    let (_, host) = fake();
    let mut wasm = load(&l, &dir.join("idle_swap.wasm"), &Params::new(), &host);
    let info = TaskInfo::named("p", "db", "mysqld");
    wasm.new_task(&info, &Params::new(), &host)
        .expect("new task");
    // every page its own run (counts alternate): 800,000 runs count for ~74 MiB, over 64
    let runs = 800_000u32;
    let big = ScanResult::from_runs(
        7,
        1,
        (0..runs).map(|i| ScanRun {
            addr: 0x7f00_0000_0000 + u64::from(i) * 4096,
            pages: 1,
            count: u8::from(i % 2 == 1),
            size: PageSize::Size4K,
        }),
    )
    .expect("scan");
    assert_eq!(big.runs().len(), runs as usize);
    let e = wasm
        .plan("db", &round(1), std::slice::from_ref(&big), &host)
        .expect_err("too large for 64 MiB");
    let CallError::Engine(EngineError::Host(text)) = &e else {
        panic!("expected an engine error value, got {e:?}")
    };
    for part in [
        "task `db`: its scan is 800000 runs of equal pages (800000 pages)",
        "about 74 MiB of linear memory",
        "over its limit of 64 MiB, which holds about 699050 runs",
        "ETMEMD_WASM_MEMORY_MB (MiB, at most 4096) raises the limit",
    ] {
        assert!(text.contains(part), "`{part}` not in: {text}");
    }
    // not a fault: the engine still plans a scan that fits
    let small = recorded_scan(7, 10_000, 2);
    wasm.plan("db", &round(2), std::slice::from_ref(&small), &host)
        .expect("a scan that fits still plans");
}

#[test]
fn a_memory_limit_beyond_wasm32_is_refused() {
    let e = WasmLoader::new(WasmOptions {
        memory_limit: (4 << 30) + 1,
        ..WasmOptions::default()
    })
    .expect_err("over 4 GiB");
    assert!(e.to_string().contains("memory_limit"), "{e}");
    assert!(e.to_string().contains("4 GiB"), "{e}");
    WasmLoader::new(WasmOptions {
        memory_limit: 4 << 30,
        ..WasmOptions::default()
    })
    .expect("4 GiB is wasm32's whole memory, allowed");
}

fn wat_file(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).expect("valid wat");
    let p = dir.join(format!("{name}.wasm"));
    std::fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn imports_beyond_the_host_interface_and_non_engines_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let l = loader();
    let (_, host) = fake();
    for (name, import) in [
        ("wants_http", "wasi:http/outgoing-handler@0.2.0"),
        ("wants_other", "acme:spy/exfiltrate@1.0.0"),
        ("wants_lookalike", "wasi:clocksmith/now@0.2.0"),
    ] {
        let wat = format!(
            r#"(component
                 (import "{import}" (instance
                   (export "get" (func (result (list string))))))
               )"#
        );
        let file = wat_file(dir.path(), name, &wat);
        let e = l
            .load(&file, name, "e", &Params::new(), &host)
            .expect_err("import not granted");
        let LoadError::Incompatible { reason, .. } = &e else {
            panic!("expected Incompatible, got {e:?}")
        };
        assert!(
            reason.starts_with(&format!("imports `{import}`, which etmem does not grant")),
            "{reason}"
        );
    }
    // A WASI interface is granted, but must match what the host provides.
    let odd = wat_file(
        dir.path(),
        "odd_env",
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance
               (export "get-secrets" (func (result (list string))))))
           )"#,
    );
    let e = l
        .load(&odd, "odd_env", "e", &Params::new(), &host)
        .expect_err("unknown wasi function");
    assert!(
        e.to_string().contains("does not match wit/engine.wit"),
        "{e}"
    );

    let empty = wat_file(dir.path(), "empty", "(component)");
    let e = l
        .load(&empty, "empty", "e", &Params::new(), &host)
        .expect_err("no engine export");
    assert!(
        e.to_string()
            .contains("does not export `etmem:engine/engine@0.2.0`"),
        "{e}"
    );

    let core = wat_file(dir.path(), "core", "(module)");
    let e = l
        .load(&core, "core", "e", &Params::new(), &host)
        .expect_err("core module");
    assert!(
        e.to_string()
            .contains("a core wasm module, not a component"),
        "{e}"
    );

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").expect("write");
    let e = l
        .load(&junk, "junk", "e", &Params::new(), &host)
        .expect_err("junk");
    assert!(e.to_string().contains("not a usable wasm component"), "{e}");
}

#[test]
fn compiled_components_are_cached_in_memory_and_on_disk() {
    let wasm = idle_swap_dir().join("idle_swap.wasm");
    let (_, host) = fake();
    let l = loader();
    load(&l, &wasm, &Params::new(), &host);
    load(&l, &wasm, &Params::new(), &host);
    let s = l.cache_stats();
    assert_eq!((s.compiled, s.memory_hits, s.disk_hits), (1, 1, 0));

    let root = tempfile::tempdir().expect("tmp");
    let cache = root.path().join("cache");
    let opts = WasmOptions {
        cache_dir: Some(cache.clone()),
        ..WasmOptions::default()
    };
    let first = WasmLoader::new(opts.clone()).expect("loader");
    load(&first, &wasm, &Params::new(), &host);
    assert_eq!(first.cache_stats().compiled, 1);
    let mode = std::fs::metadata(&cache).expect("dir").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&cache)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");

    let second = WasmLoader::new(opts.clone()).expect("loader");
    let mut inst = load(&second, &wasm, &Params::new(), &host);
    let s = second.cache_stats();
    assert_eq!((s.compiled, s.disk_hits), (0, 1));
    inst.new_task(&TaskInfo::named("p", "t", "x"), &Params::new(), &host)
        .expect("works from the disk cache");

    // A damaged file is rejected and replaced by a fresh compile.
    std::fs::write(&files[0], b"garbage").expect("damage");
    let third = WasmLoader::new(opts.clone()).expect("loader");
    load(&third, &wasm, &Params::new(), &host);
    let s = third.cache_stats();
    assert_eq!((s.compiled, s.disk_hits, s.disk_rejected), (1, 0, 1));
    let fourth = WasmLoader::new(opts).expect("loader");
    load(&fourth, &wasm, &Params::new(), &host);
    assert_eq!(fourth.cache_stats().disk_hits, 1);

    // A directory others may write is refused.
    let open = root.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = WasmLoader::new(WasmOptions {
        cache_dir: Some(open.clone()),
        ..WasmOptions::default()
    })
    .expect_err("world-writable cache dir");
    assert!(matches!(e, WasmSetupError::CacheDir { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "wasm loader: cache directory `{}`: mode 0777 lets group or others write: expected 0700",
            open.display()
        )
    );
}

/// The wasi fixture built for wasm32-wasip2 (its component imports WASI).
fn wasip2_fixture() -> PathBuf {
    build_engine_for(
        "tests/fixtures/engines/wasm-wasi",
        "wasm",
        Some("wasm32-wasip2"),
    )
    .join("wasm_wasi.wasm")
}

fn probe_line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}` in probe output:\n{text}"))
}

#[test]
fn a_wasip2_engine_loads_and_wasi_grants_nothing() {
    let path = wasip2_fixture();
    let l = loader();
    let (_, host) = fake();
    let t0 = Instant::now();
    let mut e = load(&l, &path, &Params::new(), &host);
    eprintln!("wasip2 fixture: load (compile) {:?}", t0.elapsed());
    assert_eq!(e.command("ping", None, &host), Ok("pong\n".into()));

    let out = e.command("probe", None, &host).expect("probe");
    eprintln!("probe:\n{out}");
    // No preopened directory: every path is refused, whatever exists on the host.
    assert!(std::path::Path::new("/proc/self/status").exists());
    for key in [
        "read /etc/hostname: ",
        "read /proc/self/status: ",
        "list /: ",
    ] {
        let v = probe_line(&out, key);
        assert!(v.starts_with("error "), "{key}{v}\n{out}");
    }
    // No environment, no arguments, although the daemon has both.
    assert!(std::env::var_os("PATH").is_some());
    assert_eq!(probe_line(&out, "env: "), "[]", "{out}");
    assert_eq!(probe_line(&out, "PATH: "), "None", "{out}");
    assert_eq!(probe_line(&out, "args: "), "[]", "{out}");
    // Frozen clocks: the epoch, twice, around some work; no monotonic time passes.
    assert!(probe_line(&out, "wall: ").starts_with("0 0 "), "{out}");
    assert_eq!(probe_line(&out, "monotonic elapsed: "), "0 ns", "{out}");
    // Printing does not fail (stdout and stderr are discarded).
    assert!(out.lines().any(|l| l == "printed"), "{out}");

    // Random is deterministic: a second instance sees the same hash keys.
    let mut again = load(&l, &path, &Params::new(), &host);
    let out2 = again.command("probe", None, &host).expect("probe");
    assert_eq!(probe_line(&out, "random: "), probe_line(&out2, "random: "));

    // Waiting is not granted: a sleep is a fault naming why, and quarantines the instance.
    let t0 = Instant::now();
    let r = e.command("sleep", None, &host);
    let Err(CallError::Fault(reason)) = &r else {
        panic!("sleep must fault, got {r:?}")
    };
    assert!(
        reason.contains(etmem_host_wasm::wasi::NO_WAITING),
        "{reason}"
    );
    assert!(t0.elapsed() < Duration::from_millis(400));
    assert!(matches!(
        e.command("ping", None, &host),
        Err(CallError::Fault(_))
    ));

    // Exiting is a fault too; other instances go on.
    let r = again.command("exit", None, &host);
    assert!(matches!(r, Err(CallError::Fault(_))), "{r:?}");
    let mut third = load(&l, &path, &Params::new(), &host);
    assert_eq!(third.command("ping", None, &host), Ok("pong\n".into()));
}
