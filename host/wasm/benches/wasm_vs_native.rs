//! Prints figures: one `plan` of sdk/examples/idle-swap on 1M page records, as a wasm
//! component (this crate's loader), as a native `.so` (abi_stable root module) and built in
//! (the same source compiled into this binary, driven by `etmem_sdk::runtime::Runner`);
//! then the component load time: first load (compile), from the in-memory cache and from
//! the on-disk cache.
//!
//! `cargo bench -p etmem-host-wasm` (builds the engine with scripts/build-engine first).

#[path = "../tests/common/mod.rs"]
mod common;

/// The engine's own source, compiled in: the "built-in" form.
#[allow(dead_code, clippy::all)]
#[path = "../../../sdk/examples/idle-swap/src/lib.rs"]
mod idle_swap;

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::RSlice;
use common::{NativeHost, build_engine, recorded_scan};
use etmem_host::plugin::{EngineLoader, HostRef};
use etmem_host_wasm::{WasmLoader, WasmOptions};
use etmem_sdk::native::{EngineModRef, HostApi_TO, RRoundInfo, RScanResult, RTaskInfo};
use etmem_sdk::runtime::Runner;
use etmem_sdk::testing::FakeHost;
use etmem_sdk::{Action, Params, Round, ScanResult, TaskInfo};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAGES: usize = 1_000_000;
const ROUNDS: u64 = 6;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pages(actions: &[Action]) -> usize {
    actions.iter().map(|a| a.page_count() as usize).sum()
}

fn main() {
    let dir = build_engine("sdk/examples/idle-swap", "both");
    let wasm_path = dir.join("idle_swap.wasm");
    let so_path = dir.join("libidle_swap.so");
    let scans: Vec<ScanResult> = (1..=ROUNDS).map(|n| recorded_scan(1, PAGES, n)).collect();
    let info = TaskInfo::named("bench", "t", "x");
    let params = Params::new();
    let round = |n: u64| Round {
        number: n,
        passes: 1,
    };
    let fake = Arc::new(FakeHost::new());
    let host: HostRef = fake.clone();

    // --- wasm
    let loader = WasmLoader::new(WasmOptions::default()).expect("loader");
    let mut wasm = loader
        .load(&wasm_path, "idle_swap", "bench", &params, &host)
        .expect("load wasm");
    wasm.new_task(&info, &params, &host).expect("new task");
    let mut wasm_t = Vec::new();
    let mut wasm_pages = 0;
    for (i, scan) in scans.iter().enumerate() {
        let t0 = Instant::now();
        let a = wasm
            .plan("t", &round(i as u64 + 1), std::slice::from_ref(scan), &host)
            .expect("wasm plan");
        wasm_t.push(t0.elapsed());
        wasm_pages += pages(&a);
    }

    // --- native .so
    let header = lib_header_from_path(&so_path).expect("abi_stable header");
    let m: EngineModRef = header.init_root_module().expect("root module");
    let nh = NativeHost(&*fake);
    let h = || HostApi_TO::from_ptr(RRef::new(&nh), TD_Opaque);
    let mut native = (m.configure())(RSlice::from_slice(&[]), h())
        .into_result()
        .expect("configure");
    (m.new_task())(
        &mut native,
        &RTaskInfo::from(&info),
        RSlice::from_slice(&[]),
        h(),
    )
    .into_result()
    .expect("new task");
    let mut native_t = Vec::new();
    let mut native_pages = 0;
    for (i, scan) in scans.iter().enumerate() {
        let t0 = Instant::now();
        // The conversion to the abi_stable form is part of the call, as in the daemon.
        let r = [RScanResult::from(scan)];
        let a: Vec<Action> = (m.plan())(
            &mut native,
            "t".into(),
            RRoundInfo {
                number: i as u64 + 1,
                passes: 1,
            },
            RSlice::from_slice(&r),
            h(),
        )
        .into_result()
        .expect("native plan")
        .iter()
        .map(|a| Action::try_from(a).expect("valid action"))
        .collect();
        native_t.push(t0.elapsed());
        native_pages += pages(&a);
    }

    // --- built in
    let mut builtin = Runner::<idle_swap::IdleSwap>::configure(&params, &*fake).expect("configure");
    builtin.new_task(&info, &params, &*fake).expect("new task");
    let mut builtin_t = Vec::new();
    let mut builtin_pages = 0;
    for (i, scan) in scans.iter().enumerate() {
        let t0 = Instant::now();
        let a = builtin
            .plan(
                "t",
                &round(i as u64 + 1),
                std::slice::from_ref(scan),
                &*fake,
            )
            .expect("built-in plan");
        builtin_t.push(t0.elapsed());
        builtin_pages += pages(&a);
    }
    assert_eq!(wasm_pages, native_pages, "wasm and native disagree");
    assert_eq!(wasm_pages, builtin_pages, "wasm and built-in disagree");

    let (w, n, b) = (
        median(wasm_t.clone()),
        median(native_t.clone()),
        median(builtin_t.clone()),
    );
    println!("plan of idle-swap on {PAGES} page records ({ROUNDS} rounds, median per call):");
    println!(
        "  wasm      {:8.2} ms   (all: {:?})",
        ms(w),
        wasm_t.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    println!(
        "  native    {:8.2} ms   (all: {:?})",
        ms(n),
        native_t.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    println!(
        "  built-in  {:8.2} ms   (all: {:?})",
        ms(b),
        builtin_t.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    println!(
        "  ratios: wasm/native {:.2}x  wasm/built-in {:.2}x  native/built-in {:.2}x  ({} pages swapped in total)",
        w.as_secs_f64() / n.as_secs_f64(),
        w.as_secs_f64() / b.as_secs_f64(),
        n.as_secs_f64() / b.as_secs_f64(),
        wasm_pages
    );

    load_times(&wasm_path, &host);
}

fn load_times(wasm_path: &Path, host: &HostRef) {
    let params = Params::new();
    let cache = tempfile::tempdir().expect("cache dir");
    let opts = WasmOptions {
        cache_dir: Some(cache.path().join("compiled")),
        ..WasmOptions::default()
    };
    let time = |l: &WasmLoader| {
        let t0 = Instant::now();
        let i = l
            .load(wasm_path, "idle_swap", "bench", &params, host)
            .expect("load");
        let d = t0.elapsed();
        drop(i);
        d
    };
    let mut compile = Vec::new();
    let mut memory = Vec::new();
    let mut disk = Vec::new();
    for _ in 0..5 {
        // Compile (writes the disk cache only on the first pass; a fresh loader without a
        // cache dir compiles every time).
        let fresh = WasmLoader::new(WasmOptions::default()).expect("loader");
        compile.push(time(&fresh));
        memory.push(time(&fresh));
        let cached = WasmLoader::new(opts.clone()).expect("loader");
        time(&cached); // compiles once, or loads from disk after the first pass
        cached.forget_compiled();
        disk.push(time(&cached));
        assert!(cached.cache_stats().disk_hits >= 1);
    }
    let size = std::fs::metadata(wasm_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "load of idle_swap.wasm ({size} bytes; read + hash + instantiate + configure), median of 5:"
    );
    println!("  first load (compile)  {:8.2} ms", ms(median(compile)));
    println!("  in-memory cache       {:8.3} ms", ms(median(memory)));
    println!("  on-disk cache         {:8.3} ms", ms(median(disk)));
}
