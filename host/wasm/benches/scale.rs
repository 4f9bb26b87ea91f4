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
//! `cargo bench -p etmem-host-wasm --bench scale`; `ETMEM_SCALE_SIZES=1,16` (GiB) and
//! `ETMEM_SCALE_PAGES=4k` (or `2m`) choose the rows. Run by `cargo test` (no `--bench`
//! argument), it does the 1 GiB rows only.

use etmem_kernel::access::AccessMap;
use etmem_kernel::parse::idle_pages::{PageSizes, StreamItem, encode_stream, read_count};
use etmem_kernel::track::{IdlePagesTracker, Tracker};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel, Vma};
use etmem_sdk::runtime::Runner;
use etmem_sdk::testing::FakeHost;
use etmem_sdk::{Params, ProcessMemory, Round, TaskInfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::process::Command;
use std::time::{Duration, Instant};

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
    // `cargo bench` passes --bench; `cargo test --all-targets` (CI) runs this too, without
    // it: then the 1 GiB rows only, a check that the bench still works
    let default_sizes = if args.iter().any(|a| a == "--bench") {
        "1,16,256,1024"
    } else {
        "1"
    };
    let sizes = std::env::var("ETMEM_SCALE_SIZES").unwrap_or_else(|_| default_sizes.into());
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
    let exe = std::env::current_exe().expect("own path");
    let mut failed = 0;
    for page in pages.split(',') {
        for gib in sizes.split(',') {
            let out = Command::new(&exe)
                .args(["--one", gib.trim(), page.trim()])
                .env("ETMEM_SCALE_SHAPE", &shape)
                .output()
                .expect("run a row");
            let text = String::from_utf8_lossy(&out.stdout);
            if out.status.success() {
                print!("{text}");
            } else {
                failed += 1;
                println!(
                    "{gib:>6} GiB {page:>5}: failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
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
/// ask for it: at each read's address, `read_count` bytes (the address record, then the
/// records from there).
fn write_pass(f: &FakeKernel, end: u64, pass: u32, huge: bool, per_page: bool) {
    let path = f.proc_root().join(PID.to_string()).join("idle_pages");
    let _ = std::fs::remove_file(&path);
    let page = if huge { 2 << 20 } else { 4096 };
    let mut pat = Pattern::new(pass, huge, per_page);
    let mut at = START;
    while at < end {
        let cap = read_count(at, end, 4096);
        let mut items = vec![StreamItem::Addr(at)];
        let mut len = 9;
        let mut a = at;
        while len < cap && a < end {
            let (t, nr) = pat.next((end - a) / page);
            items.push(StreamItem::Rec(t, u8::try_from(nr).expect("nr <= 15")));
            a += nr * page;
            len += 1;
        }
        f.write_at(PID, "idle_pages", at, &encode_stream(&items))
            .expect("write idle_pages");
        at = a;
    }
}

fn cpu_now() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the valid `t`.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
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

/// One row: a target of `gib` GiB.
fn one(gib: u64, huge: bool) {
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
    let pages = scan.len() as u64;
    let runs = scan.runs().len() as u64;
    let bookkeeping =
        map.bookkeeping_bytes() as u64 + runs * std::mem::size_of::<etmem_sdk::ScanRun>() as u64;

    let fake = FakeHost::new().with_task_memory(
        "t",
        PID,
        ProcessMemory {
            rss_kb: gib << 20,
            swap_kb: 0,
        },
    );
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
    let chosen: usize = actions.iter().map(|a| a.page_count() as usize).sum();
    assert!(
        chosen > 0 && (chosen as u64) < pages,
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
