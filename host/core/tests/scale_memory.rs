//! The daemon's memory at VM scale: one slide round (the built-in engine, as etmemd runs
//! it) over a task of 256 GiB simulated on the fake kernel through openEuler's
//! `idle_pages`, and the peak RSS of this test process (`VmHWM` of `/proc/self/status`: the
//! daemon core, the scan's bookkeeping, the engine and the actions) must stay within
//! 300 MiB. Its own test binary, so the peak is this test's alone.
//!
//! A quarter of the pages accessed, in runs of 1 to 31 pages, each run its records of at
//! most 15 pages, the same in every pass: the round must swap exactly the other pages.
//!
//! Slow in a debug build (67M pages decoded three times): ignored there, run by
//! `scripts/test` in its release stage (`cargo test --release -p etmem-host --test
//! scale_memory`). `ETMEM_SCALE_MEMORY_GIB` changes the size.

mod common;

use common::{file, pid, project, slide, slide_task};
use etmem_host::{Daemon, EngineRegistry, Scheduling};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GIB: u64 = 1 << 30;
const PID: u32 = 4343;
/// The target starts at 4 GiB: the fake file's offsets are its addresses (a sparse file).
const START: u64 = 4 * GIB;
const LIMIT_MIB: f64 = 300.0;

/// Writes the `idle_pages` stream of `[START, end)` as the tracker's reads will ask for it
/// (the fake kernel's writer: a slice at a time) and returns the number of idle pages.
fn write_stream(f: &FakeKernel, end: u64) -> u64 {
    let mut rng = StdRng::seed_from_u64(256);
    let mut run = (false, 0u64);
    let mut idle = 0;
    f.write_idle_pages_stream(PID, (START, end), 4096, |left| {
        if run.1 == 0 {
            run = (rng.random_bool(0.25), rng.random_range(1..32));
        }
        let nr = run.1.min(15).min(left);
        run.1 -= nr;
        if !run.0 {
            idle += nr;
        }
        // PTE accessed (0) or idle (5)
        (if run.0 { 0 } else { 5 }, nr)
    })
    .expect("write idle_pages");
    idle
}

fn hwm_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test]
#[cfg_attr(
    debug_assertions,
    ignore = "256 GiB simulated: too slow unoptimized; scripts/test runs it in release"
)]
async fn a_256_gib_task_keeps_the_daemon_within_300_mib() {
    let gib: u64 = std::env::var("ETMEM_SCALE_MEMORY_GIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let end = START + gib * GIB;
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    fake.enable_idle_pages().expect("idle_pages");
    // the machine: twice the target in RAM, as much swap, so no rule of slide holds back
    let kb = (2 * gib) << 20;
    fake.write_proc(
        "meminfo",
        format!(
            "MemTotal: {kb} kB\nMemFree: {kb} kB\nMemAvailable: {kb} kB\nSwapCached: 0 kB\n\
             SwapTotal: {kb} kB\nSwapFree: {kb} kB\n"
        ),
    )
    .expect("meminfo");
    let mut p = FakeProcess::new(PID, "qemu-kvm").anon(START, end);
    p.vm_rss_kb = gib << 20;
    fake.add_process(&p).expect("process");
    let idle = write_stream(&fake, end);
    fake.keep_action_pages(false);
    let before = hwm_mib();

    let kernel: Arc<dyn Kernel> = fake.clone();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_slide::Slide>("slide", Scheduling::PerTask);
    let d = Daemon::start(kernel, registry);
    d.add_config(&file(
        vec![project("vm", 3, 1, 1)],
        vec![slide("vm")],
        vec![slide_task("vm", "guest", pid(&PID.to_string()), 1)],
    ))
    .await
    .expect("add");
    d.start_project("vm").await.expect("start");
    let t0 = Instant::now();
    while fake.swapped_page_count() < idle && t0.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    d.stop_project("vm").await.expect("stop");
    let swapped = fake.swapped_page_count();
    let peak = hwm_mib();
    eprintln!(
        "{gib} GiB ({} pages, {idle} idle): {swapped} swapped after {:.1} s; VmHWM {before:.1} \
         MiB before the daemon, {peak:.1} MiB at the end",
        gib * GIB / 4096,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(swapped, idle, "the round swaps exactly the idle pages");
    assert!(
        peak <= LIMIT_MIB,
        "peak RSS {peak:.1} MiB over {LIMIT_MIB} MiB with a {gib} GiB task"
    );
    d.shutdown().await;
}
