//! Our hand-written `/proc` parsers against procfs-core's (parse only, no I/O on either
//! side), on recorded kernel output (the fuzz corpus' `proc_*` samples) and on large
//! generated files of the kernel's exact layout (a smaps of 2,000 VMAs, as a busy database
//! has). docs/crates.md keeps the ratios and what they decided.
//!
//! `cargo bench -p etmem-kernel --bench proc_parsers -- --warm-up-time 1 --measurement-time 3`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use etmem_kernel::parse::{
    parse_maps, parse_meminfo, parse_psi, parse_smaps, parse_stat_starttime, parse_status,
};
use procfs_core::{FromBufRead, FromRead};
use std::fmt::Write as _;
use std::hint::black_box;

const SELF_MAPS: &[u8] = include_bytes!("../../../fuzz/corpus/maps/proc_self_maps");
const SELF_SMAPS: &[u8] = include_bytes!("../../../fuzz/corpus/smaps/proc_self_smaps");
const MEMINFO: &[u8] = include_bytes!("../../../fuzz/corpus/meminfo/proc_meminfo");
const STATUS: &[u8] = include_bytes!("../../../fuzz/corpus/meminfo/proc_self_status");
const PSI: &[u8] = include_bytes!("../../../fuzz/corpus/psi/proc_pressure_memory");
/// `/proc/self/stat` of `cat` on the bench machine.
const STAT: &str = "8888 (cat) R 8886 8886 26730 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 \
    3884727 3133440 393 18446744073709551615 93950208892928 93950208912809 140722926195696 \
    0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 93950208928816 93950208930432 93950690795520 \
    140722926197474 140722926197494 140722926197494 140722926198763 0\n";

/// The kinds of VMA a large process has, in the order they repeat.
const KINDS: [(&str, &str, &str); 8] = [
    (
        "r--p",
        "fd:01 1835021",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ),
    (
        "r-xp",
        "fd:01 1835021",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
    ),
    ("rw-p", "00:00 0", ""),
    ("rw-p", "00:00 0", "[heap]"),
    ("rw-s", "00:01 32770", "/SYSV0000162e (deleted)"),
    ("rw-p", "00:00 0", ""),
    ("rw-s", "00:05 4113", "/dev/shm/buffer pool 3"),
    ("rw-p", "fd:02 77", "/var/lib/db/data file.ibd (deleted)"),
];

/// The header line of VMA `i` as the kernel prints it: fixed fields, a space, then the
/// path padded to column 73 (no padding and a trailing space when there is no path).
fn header(out: &mut String, i: usize) -> (bool, bool) {
    let (perms, dev, path) = KINDS[i % KINDS.len()];
    let start = 0x7f00_0000_0000u64 + (i as u64) * 0x40_0000;
    let end = start
        + if i.is_multiple_of(5) {
            0x20_0000
        } else {
            0x1000 * (1 + i as u64 % 64)
        };
    let mut line = format!(
        "{start:08x}-{end:08x} {perms} {:08x} {dev} ",
        (i as u64 % 7) * 0x1000
    );
    if !path.is_empty() {
        while line.len() < 73 {
            line.push(' ');
        }
        line.push_str(path);
    }
    out.push_str(&line);
    out.push('\n');
    (
        perms.ends_with('p') && dev.ends_with(" 0"),
        i.is_multiple_of(5),
    )
}

/// A maps text of `n` VMAs.
fn synth_maps(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        header(&mut s, i);
    }
    s.into_bytes()
}

/// A smaps text of `n` VMAs with every field a 6.x kernel prints.
fn synth_smaps(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        let (anon, thp) = header(&mut s, i);
        let size = if thp { 2048 } else { 4 * (1 + i % 64) };
        let rss = size / 2;
        let ahp = if anon && thp { 2048 } else { 0 };
        for (k, v) in [
            ("Size", size),
            ("KernelPageSize", 4),
            ("MMUPageSize", 4),
            ("Rss", rss),
            ("Pss", rss),
            ("Pss_Dirty", rss / 2),
            ("Shared_Clean", 0),
            ("Shared_Dirty", 0),
            ("Private_Clean", rss / 2),
            ("Private_Dirty", rss / 2),
            ("Referenced", rss),
            ("Anonymous", if anon { rss } else { 0 }),
            ("KSM", 0),
            ("LazyFree", 0),
            ("AnonHugePages", ahp),
            ("ShmemPmdMapped", 0),
            ("FilePmdMapped", 0),
            ("Shared_Hugetlb", 0),
            ("Private_Hugetlb", 0),
            ("Swap", i % 3 * 4),
            ("SwapPss", i % 3 * 4),
            ("Locked", 0),
        ] {
            let _ = writeln!(s, "{:<16}{v:>8} kB", format!("{k}:"));
        }
        let _ = writeln!(s, "THPeligible:    {}", u8::from(anon));
        let _ = writeln!(
            s,
            "VmFlags: rd wr mr mw me ac sd{}",
            if thp { " hg" } else { "" }
        );
    }
    s.into_bytes()
}

fn maps(c: &mut Criterion) {
    let mut g = c.benchmark_group("maps");
    let big = synth_maps(2000);
    for (name, input) in [("recorded", SELF_MAPS), ("2000_vmas", &big[..])] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("hand", name), input, |b, i| {
            b.iter(|| parse_maps(black_box(i)).map(|v| v.len()))
        });
        g.bench_with_input(BenchmarkId::new("procfs", name), input, |b, i| {
            b.iter(|| {
                procfs_core::process::MemoryMaps::from_buf_read(black_box(i)).map(|v| v.len())
            })
        });
    }
    g.finish();
}

fn smaps(c: &mut Criterion) {
    let mut g = c.benchmark_group("smaps");
    let big = synth_smaps(2000);
    for (name, input) in [("recorded", SELF_SMAPS), ("2000_vmas", &big[..])] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("hand", name), input, |b, i| {
            b.iter(|| parse_smaps(black_box(i)).map(|v| v.len()))
        });
        g.bench_with_input(BenchmarkId::new("procfs", name), input, |b, i| {
            b.iter(|| {
                procfs_core::process::MemoryMaps::from_buf_read(black_box(i)).map(|v| v.len())
            })
        });
    }
    g.finish();
}

fn small_files(c: &mut Criterion) {
    let mut g = c.benchmark_group("small");
    g.bench_function("meminfo/hand", |b| {
        b.iter(|| parse_meminfo(black_box(MEMINFO)))
    });
    g.bench_function("meminfo/procfs", |b| {
        b.iter(|| procfs_core::Meminfo::from_buf_read(black_box(MEMINFO)).map(|m| m.mem_total))
    });
    g.bench_function("status/hand", |b| {
        b.iter(|| parse_status(black_box(STATUS)))
    });
    g.bench_function("status/procfs", |b| {
        b.iter(|| procfs_core::process::Status::from_buf_read(black_box(STATUS)).map(|s| s.vmrss))
    });
    g.bench_function("psi/hand", |b| b.iter(|| parse_psi(black_box(PSI))));
    g.bench_function("psi/procfs", |b| {
        b.iter(|| procfs_core::MemoryPressure::from_buf_read(black_box(PSI)).map(|p| p.some.total))
    });
    g.bench_function("stat/hand", |b| {
        b.iter(|| parse_stat_starttime(black_box(STAT)))
    });
    g.bench_function("stat/procfs", |b| {
        b.iter(|| {
            procfs_core::process::Stat::from_read(black_box(STAT.as_bytes())).map(|s| s.starttime)
        })
    });
    g.finish();
}

/// Before timing anything: both sides accept every input and agree on what we use, so the
/// figures compare the same work.
fn agree(_: &mut Criterion) {
    for input in [
        SELF_SMAPS,
        &synth_smaps(2000)[..],
        SELF_MAPS,
        &synth_maps(2000)[..],
    ] {
        let hand = parse_smaps(input).expect("hand smaps");
        let theirs = procfs_core::process::MemoryMaps::from_buf_read(input).expect("procfs smaps");
        assert_eq!(hand.len(), theirs.len());
        for (h, t) in hand.iter().zip(theirs.iter()) {
            assert_eq!(
                (h.start, h.end, h.inode),
                (t.address.0, t.address.1, t.inode)
            );
            assert_eq!(
                h.rss_kb.map(|k| k * 1024),
                t.extension.map.get("Rss").copied()
            );
        }
    }
    let m = procfs_core::Meminfo::from_buf_read(MEMINFO).expect("procfs meminfo");
    assert_eq!(
        parse_meminfo(MEMINFO).mem_total_kb,
        Some(m.mem_total / 1024)
    );
    let s = procfs_core::process::Status::from_buf_read(STATUS).expect("procfs status");
    assert_eq!(parse_status(STATUS).vm_rss_kb, s.vmrss);
    let p = procfs_core::MemoryPressure::from_buf_read(PSI).expect("procfs psi");
    assert_eq!(parse_psi(PSI).map(|p| p.some.total_us), Some(p.some.total));
    let st = procfs_core::process::Stat::from_read(STAT.as_bytes()).expect("procfs stat");
    assert_eq!(parse_stat_starttime(STAT), Some(st.starttime));
}

criterion_group!(benches, agree, maps, smaps, small_files);
criterion_main!(benches);
