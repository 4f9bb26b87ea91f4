//! The slide policy as pure functions (spec §5.2): the memory gates, the `swap_threshold`
//! parser, the `dram_percent` budget and the cold-page selection.
//!
//! Everything here takes values and returns values; it must not call the host, log or
//! keep state. Integer arithmetic follows C etmem exactly where the result is observable
//! (B29: integer percentages, dividing before multiplying), in u64 so nothing overflows.

use etmem_sdk::{MemInfo, PageRun, PageSize, ProcessMemory, ScanResult};

/// The base page size `need` is counted in (C divides by `sysconf(_SC_PAGESIZE)`).
pub const BASE_PAGE: u64 = PageSize::Size4K.bytes();

/// The system gate of `sysmem_threshold`: true when the round may go on, i.e. when
/// `MemFree*100/MemTotal` (integer division) is below `threshold`. MemFree, not
/// MemAvailable, as C does. A meminfo without `MemTotal` (0) closes the gate, as a read
/// error does in C.
pub fn sysmem_gate_open(meminfo: &MemInfo, threshold: u64) -> bool {
    if meminfo.mem_total_kb == 0 {
        return false;
    }
    meminfo.mem_free_kb.saturating_mul(100) / meminfo.mem_total_kb < threshold
}

/// Swap cache reclaim is due (§5.2 step 5) when `SwapCached` is not 0 and
/// `MemTotal/SwapCached < 100/high`, both divisions integer as in C (B29: `high` = 30 wakes
/// the reclaim above 33 % of RAM, not 30 %).
pub fn swapcache_reclaim_due(meminfo: &MemInfo, high: u8) -> bool {
    if meminfo.swap_cached_kb == 0 || high == 0 {
        return false;
    }
    meminfo.mem_total_kb / meminfo.swap_cached_kb < 100 / u64::from(high)
}

/// The per-process gate that follows the system gate: with `swap_threshold` unset (0),
/// go on only if `(VmRSS+VmSwap)/100*sysmem_threshold > VmSwap` (integer, dividing first);
/// otherwise only if `VmRSS > swap_threshold` (both KiB).
pub fn process_gate_open(
    mem: &ProcessMemory,
    sysmem_threshold: u64,
    swap_threshold_kb: u64,
) -> bool {
    if swap_threshold_kb == 0 {
        (mem.rss_kb.saturating_add(mem.swap_kb) / 100).saturating_mul(sysmem_threshold)
            > mem.swap_kb
    } else {
        mem.rss_kb > swap_threshold_kb
    }
}

/// `swap_threshold`: digits followed by one `g` or `G`, 1..=10 characters in all, in KiB
/// (GiB << 20). `g` alone is 0 (off). `None` for anything else.
pub fn parse_swap_threshold(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 10 {
        return None;
    }
    let digits = value.strip_suffix(['g', 'G'])?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let gib: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    // At most 9 digits: 999_999_999 << 20 fits in u64.
    Some(gib << 20)
}

/// The `dram_percent` budget in base pages (C `check_should_migrate`):
/// `cmp = (VmRSS+VmSwap)/100*dram_percent`; 0 if `cmp > VmRSS`, else
/// `(VmRSS-cmp)*1024/pagesize`.
pub fn dram_need_pages(mem: &ProcessMemory, dram_percent: u64) -> u64 {
    let cmp = (mem.rss_kb.saturating_add(mem.swap_kb) / 100).saturating_mul(dram_percent);
    if cmp > mem.rss_kb {
        0
    } else {
        (mem.rss_kb - cmp).saturating_mul(1024) / BASE_PAGE
    }
}

/// Without `dram_percent`: every page with `count < t` is cold, as runs in address order.
/// `t = 0` gives nothing; `t = 1` gives the pages not accessed in any pass. Costs per run
/// of the scan, not per page.
pub fn cold_pages(scan: &ScanResult, t: u32) -> Vec<PageRun> {
    let (addrs, lens, counts, sizes) = scan.columns();
    let mut out: Vec<PageRun> = Vec::new();
    // the run being extended, pushed when one that cannot extend it comes
    let mut cur: Option<PageRun> = None;
    for (i, &count) in counts.iter().enumerate() {
        if u32::from(count) >= t {
            continue;
        }
        let (Some(&addr), Some(&pages), Some(size)) = (
            addrs.get(i),
            lens.get(i),
            sizes.get(i).and_then(|&c| PageSize::from_code(c)),
        ) else {
            continue;
        };
        let run = PageRun { addr, pages, size };
        match &mut cur {
            Some(c)
                if c.size == size && c.end() == addr && c.pages.checked_add(pages).is_some() =>
            {
                c.pages += pages;
            }
            _ => out.extend(cur.replace(run)),
        }
    }
    out.extend(cur);
    out
}

/// Appends `run` to ascending `out`, extending the last run when it follows it with the
/// same page size.
fn push_run(out: &mut Vec<PageRun>, run: PageRun) {
    match out.last_mut() {
        Some(last)
            if last.size == run.size
                && last.end() == run.addr
                && last.pages.checked_add(run.pages).is_some() =>
        {
            last.pages += run.pages;
        }
        _ => out.push(run),
    }
}

/// With `dram_percent`: the pages are bucketed by count (buckets `0..=max_count`, a count
/// above `max_count` goes to the last bucket: B3 fixed), each bucket last-in first-out as
/// in C (highest address first); walking the buckets upward, the first page with
/// `count >= t` ends the selection, otherwise cold pages are taken until `need_pages` base
/// pages are reached (a huge page counts as its size in base pages). The result is in
/// address order. Costs per run: a run is taken whole or its last pages are.
pub fn cold_pages_budget(
    scan: &ScanResult,
    t: u32,
    max_count: u32,
    need_pages: u64,
) -> Vec<PageRun> {
    if need_pages == 0 {
        return Vec::new();
    }
    let nb = max_count as usize + 1;
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); nb];
    for (i, &count) in scan.counts().iter().enumerate() {
        buckets[(count as usize).min(nb - 1)].push(i);
    }
    let mut taken = 0u64;
    let mut out = Vec::new();
    'walk: for bucket in &buckets {
        for &i in bucket.iter().rev() {
            let Some(r) = scan.run(i) else { continue };
            if u32::from(r.count) >= t || taken >= need_pages {
                break 'walk;
            }
            let per = (r.size.bytes() / BASE_PAGE).max(1);
            // C takes page after page while `taken < need`: that is ceil(left / per) pages
            let want = (need_pages - taken).div_ceil(per);
            let k = u32::try_from(want).unwrap_or(u32::MAX).min(r.pages);
            out.push(PageRun {
                addr: r.addr + u64::from(r.pages - k) * r.size.bytes(),
                pages: k,
                size: r.size,
            });
            taken = taken.saturating_add(u64::from(k).saturating_mul(per));
        }
    }
    out.sort_unstable_by_key(|r| r.addr);
    let mut merged = Vec::with_capacity(out.len());
    for r in out {
        push_run(&mut merged, r);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_sdk::Page;

    fn scan(pages: &[(u64, u8)]) -> ScanResult {
        ScanResult::from_pages(
            1,
            3,
            pages.iter().map(|&(addr, count)| Page {
                addr,
                count,
                size: PageSize::Size4K,
            }),
        )
        .expect("valid scan")
    }

    /// The start address of every page of `runs`.
    fn addrs(runs: Vec<PageRun>) -> Vec<u64> {
        runs.iter().flat_map(|r| r.addrs()).collect()
    }

    fn mem(total: u64, free: u64) -> MemInfo {
        MemInfo {
            mem_total_kb: total,
            mem_free_kb: free,
            mem_available_kb: total, // must be ignored
            ..MemInfo::default()
        }
    }

    #[test]
    fn sysmem_gate_is_integer_percentage_of_memfree() {
        // 1999*100/10000 = 19 (19.99 truncated) < 20: open.
        assert!(sysmem_gate_open(&mem(10_000, 1_999), 20));
        // exactly 20 %: not below 20: closed.
        assert!(!sysmem_gate_open(&mem(10_000, 2_000), 20));
        // 0 threshold never opens; 100 opens unless everything is free.
        assert!(!sysmem_gate_open(&mem(10_000, 0), 0));
        assert!(sysmem_gate_open(&mem(10_000, 9_999), 100));
        assert!(!sysmem_gate_open(&mem(10_000, 10_000), 100));
        // no MemTotal: a read error in C: skip.
        assert!(!sysmem_gate_open(&mem(0, 0), 50));
        // huge values do not overflow
        assert!(sysmem_gate_open(&mem(u64::MAX, u64::MAX / 200), 1));
    }

    #[test]
    fn process_gate_divides_before_multiplying() {
        // (199+0)/100 = 1; 1*50 = 50 > 0: open. Exact math would also say open.
        let m = |rss, swap| ProcessMemory {
            rss_kb: rss,
            swap_kb: swap,
        };
        assert!(process_gate_open(&m(199, 0), 50, 0));
        // (150+49)/100*50 = 50 > 49: open; (150+50)/100*50 = 100 > 50 open;
        assert!(process_gate_open(&m(150, 49), 50, 0));
        // (99+0)/100 = 0: closed even with a small swap of 0 (0 > 0 false).
        assert!(!process_gate_open(&m(99, 0), 100, 0));
        // (100+100)/100*50 = 100 > 100 false: closed (swap already 50 %).
        assert!(!process_gate_open(&m(100, 100), 50, 0));
        // exact math would say 0.51*... : (101+99)/100*50 = 100 > 99: open
        assert!(process_gate_open(&m(101, 99), 50, 0));
        // swap_threshold: VmRSS must exceed it.
        assert!(process_gate_open(&m(5 << 20, 0), 50, 4 << 20));
        assert!(!process_gate_open(&m(4 << 20, 0), 50, 4 << 20));
    }

    #[test]
    fn swap_threshold_accepts_what_c_accepts() {
        assert_eq!(parse_swap_threshold("50g"), Some(50 << 20));
        assert_eq!(parse_swap_threshold("50G"), Some(50 << 20));
        assert_eq!(parse_swap_threshold("5G"), Some(5 << 20));
        assert_eq!(parse_swap_threshold("123456789g"), Some(123_456_789 << 20));
        assert_eq!(parse_swap_threshold("999999999g"), Some(999_999_999 << 20));
        assert_eq!(parse_swap_threshold("g"), Some(0));
        for bad in [
            "",
            "50m",
            "12hhG",
            "1234",
            "12345678910234g",
            "12345678900m",
            "1g2g",
            "-1g",
        ] {
            assert_eq!(parse_swap_threshold(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn dram_need_follows_check_should_migrate() {
        let m = |rss, swap| ProcessMemory {
            rss_kb: rss,
            swap_kb: swap,
        };
        // (1000+0)/100*50 = 500; (1000-500)*1024/4096 = 125 pages.
        assert_eq!(dram_need_pages(&m(1000, 0), 50), 125);
        // (1000+1000)/100*60 = 1200 > 1000: nothing.
        assert_eq!(dram_need_pages(&m(1000, 1000), 60), 0);
        // cmp == rss: 0 pages, not "nothing" by the > test, still 0.
        assert_eq!(dram_need_pages(&m(1000, 1000), 50), 0);
        // dividing first: (199+0)/100*100 = 100; (199-100)*1024/4096 = 24 (24.75).
        assert_eq!(dram_need_pages(&m(199, 0), 100), 24);
        // 100 %: keep everything... except what integer division lost.
        assert_eq!(dram_need_pages(&m(4096, 0), 100), 24);
    }

    #[test]
    fn classification_t0_t1_t2() {
        let s = scan(&[
            (0x1000, 0),
            (0x2000, 1),
            (0x3000, 0),
            (0x4000, 3),
            (0x5000, 2),
        ]);
        assert_eq!(addrs(cold_pages(&s, 0)), Vec::<u64>::new());
        assert_eq!(addrs(cold_pages(&s, 1)), vec![0x1000, 0x3000]);
        assert_eq!(addrs(cold_pages(&s, 2)), vec![0x1000, 0x2000, 0x3000]);
        assert_eq!(
            addrs(cold_pages(&s, 9)),
            vec![0x1000, 0x2000, 0x3000, 0x4000, 0x5000]
        );
    }

    #[test]
    fn budget_walks_buckets_upward_lifo_and_stops_at_hot() {
        let s = scan(&[
            (0x1000, 1),
            (0x2000, 0),
            (0x3000, 0),
            (0x4000, 2),
            (0x5000, 0),
        ]);
        // need 2: bucket 0 LIFO gives 0x5000, 0x3000.
        assert_eq!(addrs(cold_pages_budget(&s, 2, 3, 2)), vec![0x3000, 0x5000]);
        // need 4: bucket 0 (3 pages) then bucket 1 (0x1000); bucket 2 is hot (>= T=2).
        assert_eq!(
            addrs(cold_pages_budget(&s, 2, 3, 4)),
            vec![0x1000, 0x2000, 0x3000, 0x5000]
        );
        // need far more: stops at the first hot page.
        assert_eq!(
            addrs(cold_pages_budget(&s, 2, 3, 100)),
            vec![0x1000, 0x2000, 0x3000, 0x5000]
        );
        // T = 0: the first page is hot: nothing.
        assert_eq!(addrs(cold_pages_budget(&s, 0, 3, 100)), Vec::<u64>::new());
        // need 0: nothing.
        assert_eq!(addrs(cold_pages_budget(&s, 3, 3, 0)), Vec::<u64>::new());
    }

    #[test]
    fn budget_clamps_counts_above_the_bucket_range() {
        // loop=1 gives buckets 0..=1 in C; a dirty count 3 would overflow (B3). Here it
        // goes to the last bucket and is hot for T=1.
        let s = scan(&[(0x1000, 3), (0x2000, 0), (0x3000, 200)]);
        assert_eq!(addrs(cold_pages_budget(&s, 1, 1, 10)), vec![0x2000]);
        assert_eq!(
            addrs(cold_pages_budget(&s, 255, 1, 10)),
            vec![0x1000, 0x2000, 0x3000]
        );
    }

    #[test]
    fn budget_counts_huge_pages_in_base_pages() {
        let s = ScanResult::new(
            1,
            1,
            vec![0x20_0000, 0x40_0000, 0x60_0000],
            vec![0, 0, 0],
            vec![PageSize::Size2M, PageSize::Size4K, PageSize::Size4K],
        )
        .expect("valid");
        // LIFO: 0x600000 (1), 0x400000 (2), then 0x200000 (514) reaches 512.
        assert_eq!(
            addrs(cold_pages_budget(&s, 1, 1, 2)),
            vec![0x40_0000, 0x60_0000]
        );
        assert_eq!(
            addrs(cold_pages_budget(&s, 1, 1, 3)),
            vec![0x20_0000, 0x40_0000, 0x60_0000]
        );
    }

    #[test]
    fn swapcache_reclaim_due_divides_as_c() {
        let m = |total, cached| MemInfo {
            mem_total_kb: total,
            swap_cached_kb: cached,
            ..MemInfo::default()
        };
        // high 30: 100/30 = 3, so due when MemTotal/SwapCached <= 2 (over a third of RAM)
        assert!(swapcache_reclaim_due(&m(1000, 334), 30));
        assert!(!swapcache_reclaim_due(&m(1000, 333), 30));
        assert!(!swapcache_reclaim_due(&m(1000, 0), 30));
        // high 60: 100/60 = 1: due only when SwapCached exceeds MemTotal
        assert!(!swapcache_reclaim_due(&m(1000, 999), 60));
        assert!(swapcache_reclaim_due(&m(1000, 1001), 60));
        assert!(!swapcache_reclaim_due(&m(1000, 500), 0));
    }

    /// The page-by-page selection the run form replaced (C's walk, one page at a time).
    fn budget_per_page(scan: &ScanResult, t: u32, max_count: u32, need: u64) -> Vec<u64> {
        if need == 0 {
            return Vec::new();
        }
        let pages: Vec<etmem_sdk::Page> = scan.pages().collect();
        let nb = max_count as usize + 1;
        let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); nb];
        for (i, p) in pages.iter().enumerate() {
            buckets[(p.count as usize).min(nb - 1)].push(i);
        }
        let (mut taken, mut out) = (0u64, Vec::new());
        'walk: for bucket in &buckets {
            for &i in bucket.iter().rev() {
                if u32::from(pages[i].count) >= t || taken >= need {
                    break 'walk;
                }
                out.push(pages[i].addr);
                taken += pages[i].size.bytes() / BASE_PAGE;
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn runs_select_the_pages_the_page_by_page_walk_selects() {
        use rand::rngs::StdRng;
        use rand::{RngExt, SeedableRng};
        let mut rng = StdRng::seed_from_u64(0x511de);
        for case in 0..300 {
            // runs of random length, count and size, with gaps
            let mut runs = Vec::new();
            let mut addr = 0x10_0000_0000u64;
            for _ in 0..rng.random_range(1..40) {
                let size = if rng.random_bool(0.2) {
                    PageSize::Size2M
                } else {
                    PageSize::Size4K
                };
                addr = addr.next_multiple_of(size.bytes());
                if rng.random_bool(0.3) {
                    addr += size.bytes() * rng.random_range(1..4u64);
                }
                let pages = rng.random_range(1..20u32);
                runs.push(etmem_sdk::ScanRun {
                    addr,
                    pages,
                    count: rng.random_range(0..10u8),
                    size,
                });
                addr += u64::from(pages) * size.bytes();
            }
            let s = ScanResult::from_runs(1, 3, runs).expect("valid runs");
            let t = rng.random_range(0..8u32);
            let need = rng.random_range(0..3000u64);
            let max = rng.random_range(0..10u32);
            assert_eq!(
                addrs(cold_pages_budget(&s, t, max, need)),
                budget_per_page(&s, t, max, need),
                "case {case}: t {t} need {need} max {max}"
            );
            let per_page: Vec<u64> = s
                .pages()
                .filter(|p| u32::from(p.count) < t)
                .map(|p| p.addr)
                .collect();
            assert_eq!(addrs(cold_pages(&s, t)), per_page, "case {case}: t {t}");
        }
    }
}
