//! Prints figures: one slide round over a simulated VM-sized target, on the fake kernel
//! (no root, no real memory): `loop=3` passes of openEuler's `idle_pages` through the real
//! `IdlePagesTracker`, the host's conversion into the engine's scan result, then slide's
//! `plan` (built in: the engine's source compiled into this binary), `T=1`.
//!
//! Per size (1, 16, 256 GiB and 1 TiB by default; 4 KiB pages, then the same sizes in
//! 2 MiB pages): ns per page per pass for decoding and counting (the tracker's pass: reads
//! of the fake `idle_pages` file, decode, AccessMap), the conversion's and the plan's time
//! (and ns per page), the whole round's wall and CPU time, the peak RSS of the process
//! (`VmHWM`; each size runs in a fresh child process of this bench) and bytes of
//! bookkeeping per page (the AccessMap and the scan result). The streams are generated and
//! written before the round, and not counted.
//!
//! The stream: a quarter of the pages accessed, in runs of 1 to 31 pages (a new pattern
//! each pass), each run its records of at most 15 pages; `ETMEM_SCALE_SHAPE=pages` makes
//! every page its own record (the fragmented worst case). The fake `idle_pages` file
//! answers the tracker's reads as the kernel does: a read at an address returns the
//! records from there, as many bytes as asked (`read_count`), starting with the address.
//!
//! Then slide as third-party engine files, built by `scripts/build-engine`: the native
//! `.so` and the `.wasm` component plan the same 4 KiB rounds (16 and 256 GiB, and 1 TiB
//! to show the wasm memory limit at work), 15 rounds taking turns, through the loaders etmemd
//! uses (so the conversion to each form's values is part of the call); the wasm
//! component's load time, first (compile) and from the on-disk cache.
//!
//! `cargo bench -p etmem-host-wasm --bench scale`; `ETMEM_SCALE_SIZES=1,16` (GiB) and
//! `ETMEM_SCALE_PAGES=4k` (or `2m`) choose the rows, `ETMEM_SCALE_FORMS=16,256` the
//! native/wasm rows (empty: none), `ETMEM_SCALE_ROUNDS` their rounds (default 15),
//! `ETMEMD_WASM_MEMORY_MB` the wasm memory limit as in
//! etmemd. Run by `cargo test` (no `--bench` argument), it does the 1 GiB rows only.

use etmem_host::plugin::native::NativeLoader;
use etmem_host::plugin::{EngineLoader, HostRef};
use etmem_host_wasm::{MEMORY_ENV, WasmLoader, WasmOptions};
use etmem_kernel::access::AccessMap;
use etmem_kernel::parse::idle_pages::PageSizes;
use etmem_kernel::track::{IdlePagesTracker, Tracker};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel, Vma};
use etmem_sdk::runtime::Runner;
use etmem_sdk::testing::FakeHost;
use etmem_sdk::{Action, Params, ProcessMemory, Round, ScanResult, TaskInfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

const GIB: u64 = 1 << 30;
const PID: u32 = 4242;
/// The target starts at 4 GiB: the fake file's offsets are its addresses, and a sparse
/// file must stay under the filesystem's size limit (ext4: 16 TiB).
const START: u64 = 4 * GIB;
const PASSES: u32 = 3;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let (Some(gib), Some(page)) = (args.get(i + 1), args.get(i + 2)) else {
            eprintln!("scale: --one GIB PAGE");
            std::process::exit(2);
        };
        let gib: u64 = gib.parse().expect("GiB");
        let huge = page == "2m";
        one(gib, huge);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--forms") {
        let (Some(gib), Some(dir)) = (args.get(i + 1), args.get(i + 2)) else {
            eprintln!("scale: --forms GIB ENGINE_DIR");
            std::process::exit(2);
        };
        forms(gib.parse().expect("GiB"), Path::new(dir));
        return;
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` (CI) runs this too, without
    // it: then the 1 GiB rows only, a check that the bench still works
    let default_sizes = if args.iter().any(|a| a == "--bench") {
        "1,16,256,1024"
    } else {
        "1"
    };
    let default_forms = if args.iter().any(|a| a == "--bench") {
        "16,256,1024"
    } else {
        "1"
    };
    let sizes = std::env::var("ETMEM_SCALE_SIZES").unwrap_or_else(|_| default_sizes.into());
    let form_sizes = std::env::var("ETMEM_SCALE_FORMS").unwrap_or_else(|_| default_forms.into());
    let pages = std::env::var("ETMEM_SCALE_PAGES").unwrap_or_else(|_| "4k,2m".into());
    let shape = std::env::var("ETMEM_SCALE_SHAPE").unwrap_or_else(|_| "runs".into());
    println!(
        "slide round at scale (fake kernel, idle_pages, loop={PASSES}, T=1, a quarter accessed, \
         shape {shape}); each row a fresh process"
    );
    println!(
        "{:>9} {:>5} {:>12} {:>14} {:>12} {:>12} {:>12} {:>12} {:>10} {:>12}",
        "size",
        "page",
        "pages",
        "decode ns/p/p",
        "convert ms",
        "plan ms",
        "round wall s",
        "round cpu s",
        "peak MiB",
        "bytes/page"
    );
    let mut failed = 0;
    // (an empty list: no rows)
    for page in pages.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        for gib in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            failed += row(&["--one", gib, page], &shape);
        }
    }
    let form_sizes: Vec<&str> = form_sizes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !form_sizes.is_empty() {
        let dir = common::build_engine("plugins/slide", "both");
        let limit = wasm_options().memory_limit;
        let rounds =
            std::env::var("ETMEM_SCALE_ROUNDS").unwrap_or_else(|_| FORM_ROUNDS.to_string());
        println!(
            "\nslide as engine files (4K pages, shape {shape}, {rounds} rounds, the forms taking \
             turns in each; median plan, and median of the rounds' wasm/native ratios; wasm memory \
             limit {} MiB); each row a fresh process",
            limit >> 20
        );
        println!(
            "{:>9} {:>12} {:>10} {:>14} {:>12} {:>12} {:>12} {:>10}",
            "size",
            "pages",
            "runs",
            "built-in ms",
            "native ms",
            "wasm ms",
            "wasm/native",
            "peak MiB"
        );
        let dir = dir.to_string_lossy().into_owned();
        for gib in &form_sizes {
            failed += row(&["--forms", gib, &dir], &shape);
        }
        load_times(Path::new(&dir).join("etmem_plugin_slide.wasm").as_path());
    }
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Runs this bench with `args` in a fresh process and prints its row; 1 when it failed.
fn row(args: &[&str], shape: &str) -> u32 {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(&exe)
        .args(args)
        .env("ETMEM_SCALE_SHAPE", shape)
        .output()
        .expect("run a row");
    if out.status.success() {
        print!("{}", String::from_utf8_lossy(&out.stdout));
        return 0;
    }
    println!(
        "{}: failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
    );
    1
}

/// The wasm loader's options as etmemd sets them: the memory limit from
/// `ETMEMD_WASM_MEMORY_MB` when set.
fn wasm_options() -> WasmOptions {
    let mut o = WasmOptions::default();
    if let Ok(v) = std::env::var(MEMORY_ENV) {
        o.memory_limit = v.trim().parse::<u64>().expect("ETMEMD_WASM_MEMORY_MB: MiB") << 20;
    }
    o
}

/// The component's load time: the first load compiles (and fills a fresh on-disk cache),
/// a second loader over the same cache directory loads the compiled form from disk.
fn load_times(wasm: &Path) {
    let cache = tempfile::tempdir().expect("cache dir");
    let opts = WasmOptions {
        cache_dir: Some(cache.path().join("compiled")),
        ..wasm_options()
    };
    let fake = Arc::new(FakeHost::new());
    let host: HostRef = fake;
    let params = Params::from_pairs([("loop", "3")]);
    let time = || {
        let l = WasmLoader::new(opts.clone()).expect("loader");
        let t0 = Instant::now();
        let i = l
            .load(wasm, "etmem_plugin_slide", "slide", &params, &host)
            .expect("load slide.wasm");
        let d = t0.elapsed();
        drop(i);
        d
    };
    let first = time();
    let cached = time();
    println!(
        "load of etmem_plugin_slide.wasm ({} bytes): first {:.1} ms (compile), cached {:.2} ms \
         (on-disk cache)",
        std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0),
        first.as_secs_f64() * 1e3,
        cached.as_secs_f64() * 1e3
    );
}

/// The records of one pass, in order: (type code, pages), pages of `page` bytes.
struct Pattern {
    rng: StdRng,
    huge: bool,
    per_page: bool,
    /// the current run: accessed?, pages left
    run: (bool, u64),
}

impl Pattern {
    fn new(pass: u32, huge: bool, per_page: bool) -> Pattern {
        Pattern {
            rng: StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15 ^ u64::from(pass)),
            huge,
            per_page,
            run: (false, 0),
        }
    }

    /// The next record, at most `left` pages.
    fn next(&mut self, left: u64) -> (u8, u64) {
        if self.run.1 == 0 {
            let r = self.rng.next_u64();
            self.run = (r.is_multiple_of(4), 1 + (r >> 8) % 31);
        }
        let max = if self.per_page { 1 } else { 15 };
        let nr = self.run.1.min(max).min(left);
        self.run.1 -= nr;
        let t = match (self.huge, self.run.0) {
            (false, true) => 0,  // PTE accessed
            (false, false) => 5, // PTE idle
            (true, true) => 1,   // PMD accessed
            (true, false) => 6,  // PMD idle
        };
        (t, nr)
    }
}

/// Writes pass `pass`'s `idle_pages` for `[START, end)` as the reads of the tracker will
/// ask for it (the fake kernel's writer: a slice at a time).
fn write_pass(f: &FakeKernel, end: u64, pass: u32, huge: bool, per_page: bool) {
    let page = if huge { 2 << 20 } else { 4096 };
    let mut pat = Pattern::new(pass, huge, per_page);
    f.write_idle_pages_stream(PID, (START, end), page, |left| pat.next(left))
        .expect("write idle_pages");
}

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn hwm_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The passes and the conversion of one round, timed.
struct Scanned {
    scan: ScanResult,
    map_bytes: u64,
    pass_time: Duration,
    pass_cpu: Duration,
    convert: Duration,
    convert_cpu: Duration,
}

/// `loop` passes over a target of `gib` GiB and the conversion into the engine's scan.
fn scan_round(gib: u64, huge: bool) -> Scanned {
    let per_page = std::env::var("ETMEM_SCALE_SHAPE").is_ok_and(|s| s == "pages");
    let end = START + gib * GIB;
    let f = FakeKernel::new().expect("fake kernel");
    f.enable_idle_pages().expect("idle_pages");
    let mut p = FakeProcess::new(PID, "qemu-kvm").anon(START, end);
    p.vm_rss_kb = gib << 20;
    f.add_process(&p).expect("process");
    let h = f.open_process(PID).expect("open");
    let vma = Vma {
        start: START,
        end,
        ..Vma::default()
    };
    let mut tracker = IdlePagesTracker::new(f.linux(), 0, 0);

    // the round: passes, conversion, plan; each pass's file written before it, untimed
    let mut map = AccessMap::new(&[vma], PageSizes::X86_64);
    tracker.start(&h, &map).expect("start");
    let mut pass_time = Duration::ZERO;
    let mut pass_cpu = Duration::ZERO;
    for pass in 0..PASSES {
        write_pass(&f, end, pass, huge, per_page);
        let (t0, c0) = (Instant::now(), cpu_now());
        tracker.pass(&h, &mut map).expect("pass");
        pass_time += t0.elapsed();
        pass_cpu += cpu_now() - c0;
    }
    let (t0, c0) = (Instant::now(), cpu_now());
    let scan = etmem_host::scan_result_of(PID, &map, PASSES).expect("scan result");
    let convert = t0.elapsed();
    let convert_cpu = cpu_now() - c0;
    Scanned {
        scan,
        map_bytes: map.bookkeeping_bytes() as u64,
        pass_time,
        pass_cpu,
        convert,
        convert_cpu,
    }
}

fn fake_host(gib: u64) -> FakeHost {
    FakeHost::new().with_task_memory(
        "t",
        PID,
        ProcessMemory {
            rss_kb: gib << 20,
            swap_kb: 0,
        },
    )
}

fn pages_of(actions: &[Action]) -> u64 {
    actions.iter().map(Action::page_count).sum()
}

/// One row: a target of `gib` GiB.
fn one(gib: u64, huge: bool) {
    let Scanned {
        scan,
        map_bytes,
        pass_time,
        pass_cpu,
        convert,
        convert_cpu,
    } = scan_round(gib, huge);
    let pages = scan.len() as u64;
    let runs = scan.run_count() as u64;
    // the scan result's columns: address, length, count, size code
    let bookkeeping = map_bytes + runs * (8 + 4 + 1 + 1);

    let fake = fake_host(gib);
    let params = Params::from_pairs([("loop", "3")]);
    let mut slide =
        Runner::<etmem_plugin_slide::Slide>::configure(&params, &fake).expect("configure");
    let info = TaskInfo::named("bench", "t", "x");
    slide
        .new_task(&info, &Params::from_pairs([("T", "1")]), &fake)
        .expect("new task");
    let (t0, c0) = (Instant::now(), cpu_now());
    let actions = slide
        .plan(
            "t",
            &Round {
                number: 1,
                passes: PASSES,
            },
            std::slice::from_ref(&scan),
            &fake,
        )
        .expect("plan");
    let plan = t0.elapsed();
    let plan_cpu = cpu_now() - c0;
    let chosen = pages_of(&actions);
    assert!(
        chosen > 0 && chosen < pages,
        "slide chose {chosen} of {pages}"
    );
    let per = |d: Duration, n: u64| d.as_secs_f64() * 1e9 / n.max(1) as f64;
    println!(
        "{:>6} GiB {:>5} {:>12} {:>14.2} {:>12.1} {:>12.1} {:>12.2} {:>12.2} {:>10.1} {:>12.2}   \
         (plan {:.1} ns/page, convert {:.1} ns/page; pass cpu {:.2} s; {} runs, {} pages chosen)",
        gib,
        if huge { "2M" } else { "4K" },
        pages,
        per(pass_time, pages * u64::from(PASSES)),
        convert.as_secs_f64() * 1e3,
        plan.as_secs_f64() * 1e3,
        (pass_time + convert + plan).as_secs_f64(),
        (pass_cpu + convert_cpu + plan_cpu).as_secs_f64(),
        hwm_mib(),
        bookkeeping as f64 / pages.max(1) as f64,
        per(plan, pages),
        per(convert, pages),
        pass_cpu.as_secs_f64(),
        runs,
        chosen
    );
}

/// One native/wasm row: the same rounds planned by the built-in slide and by the `.so` and
/// the `.wasm` of slide in `dir`, [`FORM_ROUNDS`] rounds, the forms taking turns in each
/// round (so a busy moment of a shared machine falls on all of them); every form must
/// choose the same pages. The ratio is the median of the rounds' wasm/native ratios.
fn forms(gib: u64, dir: &Path) {
    let scan = scan_round(gib, false).scan;
    let fake = Arc::new(fake_host(gib));
    let host: HostRef = fake.clone();
    let params = Params::from_pairs([("loop", "3")]);
    let task_params = Params::from_pairs([("T", "1")]);
    let info = TaskInfo::named("bench", "t", "x");
    let scans = std::slice::from_ref(&scan);
    let mut builtin =
        Runner::<etmem_plugin_slide::Slide>::configure(&params, &*fake).expect("configure");
    builtin
        .new_task(&info, &task_params, &*fake)
        .expect("new task");
    let native = NativeLoader::new();
    let wasm = WasmLoader::new(wasm_options()).expect("wasm loader");
    let files: [(&dyn EngineLoader, &str); 2] = [
        (&native, "libetmem_plugin_slide.so"),
        (&wasm, "etmem_plugin_slide.wasm"),
    ];
    let mut engines = Vec::new();
    for (loader, file) in files {
        let mut e = loader
            .load(
                &dir.join(file),
                "etmem_plugin_slide",
                "slide",
                &params,
                &host,
            )
            .unwrap_or_else(|e| panic!("load {file}: {e}"));
        e.new_task(&info, &task_params, &host).expect("new task");
        engines.push(e);
    }
    // per form (built-in, native, wasm): each round's time, and the pages chosen in all
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut chosen = [0u64; 3];
    let mut refusal = None;
    let rounds = std::env::var("ETMEM_SCALE_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(FORM_ROUNDS);
    for n in 1..=rounds {
        let round = Round {
            number: n,
            passes: PASSES,
        };
        let t0 = Instant::now();
        let a = builtin
            .plan("t", &round, scans, &*fake)
            .expect("built-in plan");
        times[0].push(t0.elapsed());
        chosen[0] += pages_of(&a);
        for (k, e) in engines.iter_mut().enumerate() {
            if k == 1 && refusal.is_some() {
                continue;
            }
            let t0 = Instant::now();
            match e.plan("t", &round, scans, &host) {
                Ok(a) => {
                    times[k + 1].push(t0.elapsed());
                    chosen[k + 1] += pages_of(&a);
                }
                Err(e) if k == 1 => refusal = Some(e.to_string()),
                Err(e) => panic!("native plan: {e}"),
            }
        }
    }
    assert_eq!(
        chosen[1], chosen[0],
        "native .so and built-in chose different pages"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (wasm_ms, ratio) = if refusal.is_none() {
        assert_eq!(
            chosen[2], chosen[0],
            "wasm and built-in chose different pages"
        );
        let ratios: Vec<f64> = times[2]
            .iter()
            .zip(&times[1])
            .map(|(w, n)| w.as_secs_f64() / n.as_secs_f64())
            .collect();
        (
            format!("{:.1}", ms(median(&times[2]))),
            format!("{:.2}x", median(&ratios)),
        )
    } else {
        ("refused".to_string(), "-".to_string())
    };
    println!(
        "{:>6} GiB {:>12} {:>10} {:>14.1} {:>12.1} {:>12} {:>12} {:>10.1}",
        gib,
        scan.len(),
        scan.run_count(),
        ms(median(&times[0])),
        ms(median(&times[1])),
        wasm_ms,
        ratio,
        hwm_mib()
    );
    if let Some(e) = refusal {
        println!("           wasm refused: {e}");
    }
}

/// The middle value (the upper one of an even count); `T::default()` of none.
fn median<T: Copy + PartialOrd + Default>(v: &[T]) -> T {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Rounds planned by each form: rounds 1-2 of a task cost about twice the later ones (the
/// refault memory fills), and a shared machine's noise moved three-round ratios between
/// 1.0x and 2.5x.
const FORM_ROUNDS: u64 = 15;
