//! Figures for the kernel layer, printed by `cargo bench -p etmem-kernel --bench scan`:
//! * idle_pages stream decoding into an AccessMap, ns per page, for a stream of long runs
//!   and one with every 4 KiB page its own record (a quarter accessed), against the
//!   decoder alone;
//! * a pagemap scan pass into the AccessMap per GiB, by read + decode and by PAGEMAP_SCAN
//!   (where the kernel has it), each against a raw read of the same `/proc/self/pagemap`
//!   range in the same run (ratio);
//! * peak bookkeeping bytes per tracked 4 KiB page.
//!
//! Only our own process's pagemap is read; nothing is written to /proc or /sys.

use etmem_kernel::Vma;
use etmem_kernel::access::AccessMap;
use etmem_kernel::parse::idle_pages::StreamItem::{Addr, Rec};
use etmem_kernel::parse::idle_pages::{PageSizes, decode_idle_pages, encode_stream};
use etmem_kernel::track::{PagemapMethod, scan_pagemap};
use std::os::unix::fs::FileExt;
use std::time::Instant;

const GIB: u64 = 1 << 30;

fn vma(start: u64, end: u64) -> Vma {
    Vma {
        start,
        end,
        ..Vma::default()
    }
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("n > 0"))
}

/// Decodes `items` (over `[base, end)`) into an AccessMap, best of 5, and prints ns per
/// page against the decoder alone (a sink that only counts) in the same run.
fn decode_bench(
    shape: &str,
    items: &[etmem_kernel::parse::idle_pages::StreamItem],
    base: u64,
    end: u64,
) {
    let stream = encode_stream(items);
    let (bare, pages) = best_of(5, || {
        let mut pages = 0u64;
        decode_idle_pages(&stream, PageSizes::X86_64, |r| pages += r.nr_pages).expect("decode");
        pages
    });
    let mut map = AccessMap::new(&[vma(base, end)], PageSizes::X86_64);
    let (secs, counted) = best_of(5, || {
        let mut pages = 0u64;
        decode_idle_pages(&stream, PageSizes::X86_64, |r| {
            pages += r.nr_pages;
            map.record_run(r.addr, r.page_size, r.nr_pages, r.kind.weight());
        })
        .expect("decode");
        pages
    });
    assert_eq!(pages, counted);
    let ns = |s: f64| s * 1e9 / pages as f64;
    println!(
        "idle_pages decode ({shape}): {} bytes -> {pages} pages: {:.2} ns/page decoded and counted \
         into an AccessMap ({:.1} M pages/s); decoder alone {:.2} ns/page, ratio {:.2}",
        stream.len(),
        ns(secs),
        pages as f64 / secs / 1e6,
        ns(bare),
        secs / bare
    );
}

fn main() {
    // ---- idle_pages decode: 1 GiB of 4 KiB pages, alternating runs of 15 accessed, 15
    // idle, 3 dirty, 5 holes, plus one 2 MiB PMD_IDLE_PTES every 64 MiB
    let base = 0x7f00_0000_0000u64;
    let mut items = vec![Addr(base)];
    let mut addr = base;
    let end = base + GIB;
    while addr < end {
        if (addr - base).is_multiple_of(64 << 20) && addr + (2 << 20) <= end {
            items.push(Rec(7, 1));
            addr += 2 << 20;
            continue;
        }
        for (t, nr) in [(0u8, 15u8), (5, 15), (3, 3), (8, 5)] {
            let next = (addr + u64::from(nr) * 4096).min(end);
            let nr = ((next - addr) / 4096) as u8;
            if nr > 0 {
                items.push(Rec(t, nr));
            }
            addr = next;
        }
        // keep PMD records aligned: re-anchor at the next 64 MiB boundary when close
        let next64 = (addr - base).div_ceil(64 << 20) * (64 << 20) + base;
        if next64 - addr < 38 * 4096 {
            items.push(Addr(next64));
            addr = next64;
        }
    }
    decode_bench("runs", &items, base, end);

    // ---- the same GiB as the kernel writes a fragmented one: every 4 KiB page its own
    // record, a quarter of them accessed (one in four at random, fixed seed), an address
    // record every 64 MiB: a decoder pays per record here, not per run
    let mut items = Vec::new();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut addr = base;
    while addr < end {
        if (addr - base).is_multiple_of(64 << 20) {
            items.push(Addr(addr));
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        items.push(Rec(if x.is_multiple_of(4) { 0 } else { 5 }, 1));
        addr += 4096;
    }
    decode_bench("one record per page, 1/4 accessed", &items, base, end);

    // ---- pagemap pass vs raw read, on our own 256 MiB
    let len: usize = 256 << 20;
    let mut buf = vec![0u8; len + 4096];
    for i in (0..buf.len()).step_by(4096) {
        buf[i] = 1;
    }
    let start = (buf.as_ptr() as u64 + 4095) & !4095;
    let stop = start + len as u64;
    let path = std::path::Path::new("/proc/self/pagemap");
    let f = std::fs::File::open(path).expect("open /proc/self/pagemap");
    let n = len / 4096;
    let (raw, _) = best_of(5, || {
        let mut b = vec![0u8; 65536 * 8];
        let mut done = 0usize;
        while done < n {
            let want = (n - done).min(65536);
            let got = f
                .read_at(&mut b[..want * 8], (start / 4096 + done as u64) * 8)
                .expect("read");
            assert!(got > 0);
            done += got / 8;
        }
        done
    });
    let pass_by = |method: PagemapMethod| {
        let mut map = AccessMap::new(&[vma(start, stop)], PageSizes::X86_64);
        let (secs, used) = best_of(5, || {
            scan_pagemap(&f, path, 4096, &mut map, method, |b| {
                b.present.then(|| u8::from(b.soft_dirty))
            })
            .expect("pass")
        });
        let present = map.iter().count();
        assert!(
            present as u64 >= (n as u64) * 9 / 10,
            "our pages should be present ({used}): {present}"
        );
        (secs, used)
    };
    let (read, _) = pass_by(PagemapMethod::Read);
    let (scan, used) = pass_by(PagemapMethod::Scan);
    let per_gib = |s: f64| s * (GIB as f64 / len as f64) * 1e3;
    println!(
        "pagemap: raw read {:.1} ms/GiB; pass by read {:.1} ms/GiB, ratio {:.2}; pass by {used} {:.1} ms/GiB, ratio {:.2}",
        per_gib(raw),
        per_gib(read),
        read / raw,
        per_gib(scan),
        scan / raw
    );

    // ---- bookkeeping
    let map = AccessMap::new(
        &[
            vma(base, base + 4 * GIB),
            vma(base + 8 * GIB, base + 8 * GIB + 12345 * 4096),
        ],
        PageSizes::X86_64,
    );
    println!(
        "bookkeeping: {:.4} bytes per tracked 4 KiB page ({} bytes for {} pages)",
        map.bookkeeping_bytes() as f64 / map.tracked_base_pages() as f64,
        map.bookkeeping_bytes(),
        map.tracked_base_pages()
    );
}
