//! `/proc/PID/idle_pages` of openEuler's etmem_scan module
//! (`etmem_kernel::parse::decode_idle_pages`), and the runs it gives recorded into an
//! `AccessMap` over a small set of VMAs, as the idle_pages tracker does.
//!
//! Input: byte 0 picks the page size (bits 0-1: 4, 16 or 64 KiB base pages) and how many
//! VMAs follow (bits 2-3); each VMA is 7 bytes (start page `u32` BE, length in pages: the low 13 bits of
//! a `u16` BE; flags: bit 0 hugetlb of PMD pages, bit 1 of PUD pages); the rest is the stream. A
//! 16 MiB VMA at 0x7f00_0000_0000 is always there (where the seeds point).
//!
//! Invariants: no panic; the joined runs are exactly the stream's records taken one by one
//! (a reference decoder below), joined only where one continues the last; the summary and
//! any error agree with the reference; the map then gives present pages in ascending order,
//! inside its ranges, aligned to their size, and `get` agrees with them.
#![no_main]

use etmem_kernel::AccessMap;
use etmem_kernel::parse::idle_pages::{
    DecodeSummary, IdleDecodeError, IdlePageType, IdleRun, PageSizes, decode_idle_pages,
};
use etmem_kernel::parse::maps::Vma;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x7f00_0000_0000;

/// The format of spec §6.1 read one record at a time, nothing joined.
fn reference(bytes: &[u8], s: PageSizes) -> (Vec<IdleRun>, Result<DecodeSummary, IdleDecodeError>) {
    let mut out = Vec::new();
    let mut sum = DecodeSummary::default();
    let mut cur: Option<u64> = None;
    let mut i = 0;
    while i < bytes.len() {
        let (b, offset) = (bytes[i], i);
        i += 1;
        if b == 0xA0 {
            if bytes.len() - i < 8 {
                sum.truncated = true;
                break;
            }
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[i..i + 8]);
            cur = Some(u64::from_be_bytes(a));
            i += 8;
            continue;
        }
        let Some(kind) = IdlePageType::from_code(b >> 4) else {
            return (out, Err(IdleDecodeError::UnknownRecord { byte: b, offset }));
        };
        let Some(addr) = cur else {
            return (out, Err(IdleDecodeError::NoAddress { byte: b, offset }));
        };
        let nr = u64::from(b & 0xF);
        let size = s.size_of(kind);
        let Some(next) = addr.checked_add(nr * size) else {
            return (out, Err(IdleDecodeError::Overflow { offset }));
        };
        cur = Some(next);
        if nr == 0 || kind.is_hole() {
            continue;
        }
        if addr % size != 0 {
            sum.misaligned += 1;
            continue;
        }
        if kind.weight() > 0 {
            sum.rss_pages += nr;
        }
        out.push(if kind == IdlePageType::PmdIdlePtes {
            IdleRun {
                addr,
                page_size: s.pte,
                nr_pages: nr * (s.pmd / s.pte),
                kind: IdlePageType::PteIdle,
            }
        } else {
            IdleRun {
                addr,
                page_size: size,
                nr_pages: nr,
                kind,
            }
        });
    }
    sum.next_addr = cur;
    (out, Ok(sum))
}

/// Checks that `runs` are `records` joined where one continues the last.
fn check_joined(runs: &[IdleRun], records: &[IdleRun]) {
    let mut recs = records.iter().peekable();
    for run in runs {
        let first = recs
            .next()
            .unwrap_or_else(|| panic!("run {run:?} past the records"));
        assert_eq!(
            (first.addr, first.page_size, first.kind),
            (run.addr, run.page_size, run.kind),
            "{run:?}"
        );
        let mut pages = first.nr_pages;
        let mut end = first.addr + first.nr_pages * first.page_size;
        while pages < run.nr_pages {
            let r = recs
                .next()
                .unwrap_or_else(|| panic!("run {run:?} longer than the records"));
            assert_eq!(
                (r.addr, r.page_size, r.kind),
                (end, run.page_size, run.kind),
                "{run:?}"
            );
            pages += r.nr_pages;
            end += r.nr_pages * r.page_size;
        }
        assert_eq!(pages, run.nr_pages, "{run:?}");
        // a run is never cut where the next record continues it
        if let Some(next) = recs.peek() {
            assert!(
                !(next.kind == run.kind && next.addr == end),
                "{run:?} then {next:?} were not joined"
            );
        }
    }
    assert!(recs.next().is_none(), "records left over");
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, mut rest)) = data.split_first() else {
        return;
    };
    let shift = [12, 14, 16, 12][usize::from(head & 3)];
    let Some(sizes) = PageSizes::from_shift(shift) else {
        return;
    };
    let mut vmas = vec![Vma {
        start: BASE,
        end: BASE + (16 << 20),
        ..Vma::default()
    }];
    for _ in 0..(head >> 2) & 3 {
        let Some((v, more)) = rest.split_first_chunk::<7>() else {
            break;
        };
        rest = more;
        let start = u64::from(u32::from_be_bytes([v[0], v[1], v[2], v[3]])) << shift;
        // at most 8191 pages: a map of a few KiB, so that a run stays fast
        let len = u64::from(u16::from_be_bytes([v[4], v[5]]) & 0x1FFF) << shift;
        let kernel_page_kb = match v[6] & 3 {
            1 => Some(sizes.pmd >> 10),
            2 => Some(sizes.pud >> 10),
            _ => Some(sizes.pte >> 10),
        };
        vmas.push(Vma {
            start,
            end: start + len,
            kernel_page_kb,
            ..Vma::default()
        });
    }
    let stream = rest;

    let mut runs = Vec::new();
    let got = decode_idle_pages(stream, sizes, |r| runs.push(r));
    let (records, want) = reference(stream, sizes);
    assert_eq!(got, want);
    check_joined(&runs, &records);
    for r in &runs {
        assert!(r.nr_pages > 0 && r.addr % r.page_size == 0, "{r:?}");
        assert!(
            r.addr.checked_add(r.nr_pages * r.page_size).is_some(),
            "{r:?}"
        );
    }

    // two passes, as a round of the idle_pages tracker makes
    let mut map = AccessMap::new(&vmas, sizes);
    for _ in 0..2 {
        for r in &runs {
            map.record_run(r.addr, r.page_size, r.nr_pages, r.kind.weight());
        }
        map.finish_pass();
    }
    let ranges: Vec<(u64, u64)> = map.ranges().collect();
    let mut last_end = 0u64;
    let mut pages = 0usize;
    for p in map.iter() {
        assert!(p.addr >= last_end, "{p:?} overlaps the page before it");
        assert_eq!(p.addr % p.page_size, 0, "{p:?}");
        assert!(
            ranges.iter().any(|&(s, e)| s <= p.addr && p.addr < e),
            "{p:?} outside {ranges:?}"
        );
        assert!(p.count <= etmem_kernel::access::MAX_COUNT);
        assert_eq!(map.get(p.addr), Some(p.count), "{p:?}");
        last_end = p.addr + p.page_size;
        pages += 1;
    }
    let mut each = 0usize;
    map.for_each_page(|_, _, _| each += 1);
    assert_eq!(each, pages);
    let mut in_runs = 0u64;
    map.for_each_run(|_, _, n, _| in_runs += n);
    assert_eq!(in_runs, pages as u64);
    assert!(map.present_slots() >= pages);
});
