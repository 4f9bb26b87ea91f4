//! Engine-level tests through the SDK's harness (the same glue as the exported forms).

use super::*;
use etmem_sdk::testing::{FakeHost, Harness};
use etmem_sdk::{MemInfo, Page, PageSize, ProcessMemory, SystemFacts};

fn scan(pid: u32, pages: &[(u64, u8)]) -> ScanResult {
    ScanResult::from_pages(
        pid,
        2,
        pages.iter().map(|&(addr, count)| Page {
            addr,
            count,
            size: PageSize::Size4K,
        }),
    )
    .expect("valid scan")
}

fn round(n: u64) -> Round {
    Round {
        number: n,
        passes: 2,
    }
}

fn harness(project: &[(&str, &str)], task: &[(&str, &str)], host: FakeHost) -> Harness<Slide> {
    let mut h = Harness::<Slide>::configure(&Params::from_pairs(project.iter().copied()), host)
        .expect("configure");
    h.new_task(
        &TaskInfo::named("p", "db", "mysqld"),
        &Params::from_pairs(task.iter().copied()),
    )
    .expect("new task");
    h
}

const PAGES: &[(u64, u8)] = &[
    (0x1000, 0),
    (0x2000, 2),
    (0x3000, 1),
    (0x4000, 0),
    (0x5000, 6),
];

/// Task `db`'s plan for round 1 of pid 7's [`PAGES`].
fn plan_pages(h: &mut Harness<Slide>) -> Result<Vec<Action>, EngineError> {
    h.plan("db", &round(1), &[scan(7, PAGES)])
}

/// The plan that swaps out `addrs` of pid 7.
fn swap7(addrs: &[u64]) -> Result<Vec<Action>, EngineError> {
    Ok(vec![Action::SwapOut {
        pid: 7,
        runs: PageRun::of_base_pages(addrs),
    }])
}

fn mem(rss_kb: u64, swap_kb: u64) -> ProcessMemory {
    ProcessMemory { rss_kb, swap_kb }
}

/// A host that knows task `db`'s pid 7 has `rss_kb` resident and `swap_kb` swapped.
fn host_with_7(rss_kb: u64, swap_kb: u64) -> FakeHost {
    FakeHost::new().with_task_memory("db", 7, mem(rss_kb, swap_kb))
}

#[test]
fn t0_swaps_nothing_t1_swaps_never_accessed_pages() {
    let with_t = |t| harness(&[("loop", "2")], &[("T", t)], FakeHost::new());
    let mut h = with_t("0");
    assert_eq!(plan_pages(&mut h), Ok(vec![]));

    let mut h = with_t("1");
    assert_eq!(
        h.plan("db", &round(1), &[scan(7, PAGES), scan(8, &[(0x9000, 1)])]),
        swap7(&[0x1000, 0x4000])
    );
    // Without sysmem_threshold the host is never asked for memory.
    assert!(!h.host.calls().contains(&"task-memory"));
    assert!(!h.host.calls().contains(&"system-facts"));

    let mut h = with_t("2");
    assert_eq!(plan_pages(&mut h), swap7(&[0x1000, 0x3000, 0x4000]));
}

fn facts(total: u64, free: u64) -> SystemFacts {
    SystemFacts {
        meminfo: MemInfo {
            mem_total_kb: total,
            mem_free_kb: free,
            mem_available_kb: total,
            ..MemInfo::default()
        },
        nodes: Vec::new(),
    }
}

#[test]
fn sysmem_gate_edges_use_integer_percent_of_memfree() {
    let with_free = |free| {
        let host = host_with_7(1000, 0).with_system_facts(facts(10_000, free));
        harness(
            &[("loop", "1"), ("sysmem_threshold", "30")],
            &[("T", "1")],
            host,
        )
    };
    // 2999*100/10000 = 29 < 30: open.
    let mut h = with_free(2_999);
    assert_eq!(plan_pages(&mut h), swap7(&[0x1000, 0x4000]));
    // 3000*100/10000 = 30: not below 30: closed, and the process is not even asked.
    let mut h = with_free(3_000);
    assert_eq!(plan_pages(&mut h), Ok(vec![]));
    assert!(!h.host.calls().contains(&"task-memory"));
}

#[test]
fn process_gate_uses_swap_share_or_swap_threshold() {
    let host = || {
        FakeHost::new()
            .with_system_facts(facts(10_000, 100))
            // (50+150)/100*50 = 100 > 150 false: closed.
            .with_task_memory("db", 1, mem(50, 150))
            // (300+100)/100*50 = 200 > 100: open.
            .with_task_memory("db", 2, mem(300, 100))
            // 2 GiB of RSS
            .with_task_memory("db", 3, mem(2 << 20, 0))
    };
    let scans = [
        scan(1, PAGES),
        scan(2, PAGES),
        scan(3, PAGES),
        scan(4, PAGES),
    ];
    let gated =
        |task: &[(&str, &str)]| harness(&[("loop", "1"), ("sysmem_threshold", "50")], task, host());
    let mut h = gated(&[("T", "1")]);
    let pids: Vec<u32> = h
        .plan("db", &round(1), &scans)
        .expect("plan")
        .iter()
        .map(|a| match a {
            Action::SwapOut { pid, .. } | Action::Migrate { pid, .. } => *pid,
        })
        .collect();
    // pid 4: no memory answer: skipped like a read error.
    assert_eq!(pids, vec![2, 3]);

    // swap_threshold=1g: only pids with VmRSS above 1 GiB.
    let mut h = gated(&[("T", "1"), ("swap_threshold", "1G")]);
    let actions = h.plan("db", &round(1), &scans).expect("plan");
    assert_eq!(actions.len(), 1);
    assert!(matches!(actions[0], Action::SwapOut { pid: 3, .. }));
}

#[test]
fn dram_percent_swaps_only_the_budget() {
    // (rss, swap, dram_percent, what is swapped)
    let cases: [(u64, u64, &str, &[u64]); 3] = [
        // (8+0)/100*50 = 0 (dividing first) -> need (8-0)*1024/4096 = 2 pages.
        // Bucket 0 LIFO: 0x4000 then 0x1000: need reached.
        (8, 0, "50", &[0x1000, 0x4000]),
        // Larger need: bucket 1 (0x3000) too, then bucket 2 is hot: stop.
        (400, 0, "50", &[0x1000, 0x3000, 0x4000]),
        // Nothing to free: (400+400)/100*60 = 480 > 400.
        (400, 400, "60", &[]),
    ];
    for (rss, swap, percent, want) in cases {
        let mut h = harness(
            &[("loop", "2")],
            &[("T", "2"), ("dram_percent", percent)],
            host_with_7(rss, swap),
        );
        let want = if want.is_empty() {
            Ok(vec![])
        } else {
            swap7(want)
        };
        assert_eq!(plan_pages(&mut h), want, "rss {rss} swap {swap} {percent}%");
    }
}

#[test]
fn dram_percent_out_of_range_warns_and_is_off() {
    let mut h = harness(
        &[("loop", "2")],
        &[("T", "1"), ("dram_percent", "0")],
        FakeHost::new(),
    );
    assert_eq!(
        h.host.logs(),
        vec![(
            LogLevel::Warn,
            "slide task `db`: dram_percent=0 is outside 1..=100; dram_percent disabled".to_string()
        )]
    );
    // Off: plain classification, no memory asked.
    assert_eq!(plan_pages(&mut h), swap7(&[0x1000, 0x4000]));
}

#[test]
fn task_keys_are_checked_and_unknown_ones_ignored() {
    let mut h = Harness::<Slide>::configure(&Params::from_pairs([("loop", "2")]), FakeHost::new())
        .expect("configure");
    let info = TaskInfo::named("p", "db", "mysqld");
    assert_eq!(
        h.new_task(&info, &Params::from_pairs([("T", "7")]))
            .expect_err("T above loop*3")
            .to_string(),
        "key `T`: expected an integer in 0..=6, found `7`"
    );
    assert_eq!(
        h.new_task(&info, &Params::new()),
        Err(EngineError::MissingParam("T".into()))
    );
    assert_eq!(
        h.new_task(
            &info,
            &Params::from_pairs([("T", "1"), ("swap_threshold", "50m")])
        )
        .expect_err("bad swap_threshold")
        .to_string(),
        "key `swap_threshold`: expected digits followed by `g` or `G`, at most 10 characters, found `50m`"
    );
    h.new_task(
        &info,
        &Params::from_pairs([("T", "6"), ("max_threads", "4"), ("x", "y")]),
    )
    .expect("unknown keys ignored");
}

fn swap_cached(total: u64, cached: u64) -> SystemFacts {
    SystemFacts {
        meminfo: MemInfo {
            mem_total_kb: total,
            swap_cached_kb: cached,
            ..MemInfo::default()
        },
        nodes: Vec::new(),
    }
}

const WMARKS: &[(&str, &str)] = &[
    ("loop", "1"),
    ("swapcache_high_wmark", "30"),
    ("swapcache_low_wmark", "10"),
];

#[test]
fn swapcache_reclaim_is_asked_when_over_the_high_mark_by_integer_division() {
    let with_cached = |cached| {
        let host = host_with_7(1000, 0).with_system_facts(swap_cached(1000, cached));
        harness(WMARKS, &[("T", "1")], host)
    };
    // 1000/334 = 2 < 100/30 = 3: due; the swap-out is planned as without watermarks
    let mut h = with_cached(334);
    assert_eq!(plan_pages(&mut h), swap7(&[0x1000, 0x4000]));
    let asked = h.host.swapcache_reclaims();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        (
            asked[0].task.as_str(),
            asked[0].pid,
            asked[0].low,
            asked[0].high
        ),
        ("db", 7, 10, 30)
    );
    // 1000/333 = 3, not below 3 (33.3 % of RAM is not over 30 % in C's arithmetic)
    let mut h = with_cached(333);
    plan_pages(&mut h).expect("plan");
    assert!(h.host.swapcache_reclaims().is_empty());
    // nothing in the swap cache
    let mut h = with_cached(0);
    plan_pages(&mut h).expect("plan");
    assert!(h.host.swapcache_reclaims().is_empty());
    // no watermarks: meminfo not even read
    let host = host_with_7(1000, 0).with_system_facts(swap_cached(1000, 900));
    let mut h = harness(&[("loop", "1")], &[("T", "1")], host);
    plan_pages(&mut h).expect("plan");
    assert!(h.host.swapcache_reclaims().is_empty());
    assert!(!h.host.calls().contains(&"system-facts"));
}

#[test]
fn swapcache_reclaim_goes_through_a_process_past_the_gates_once_a_round() {
    // sysmem gate closed: no process is processed, no reclaim
    let host = host_with_7(1000, 0).with_system_facts(SystemFacts {
        meminfo: MemInfo {
            mem_total_kb: 1000,
            mem_free_kb: 900,
            swap_cached_kb: 500,
            ..MemInfo::default()
        },
        nodes: Vec::new(),
    });
    let mut project = WMARKS.to_vec();
    project.push(("sysmem_threshold", "50"));
    let mut h = harness(&project, &[("T", "1")], host);
    assert_eq!(plan_pages(&mut h), Ok(vec![]));
    assert!(h.host.swapcache_reclaims().is_empty());
    // two processes: one call, through the first
    let host = FakeHost::new().with_system_facts(swap_cached(1000, 500));
    let mut h = harness(WMARKS, &[("T", "1")], host);
    h.plan("db", &round(1), &[scan(8, PAGES), scan(7, PAGES)])
        .expect("plan");
    let asked = h.host.swapcache_reclaims();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].pid, 8);
}

#[test]
fn swapcache_reclaim_refused_warns_once_then_debug() {
    let host = host_with_7(1000, 0)
        .with_system_facts(swap_cached(1000, 500))
        .refusing_swapcache("no /proc/PID/swap_pages: etmem_swap is not loaded");
    let mut h = harness(WMARKS, &[("T", "1")], host);
    assert_eq!(plan_pages(&mut h), swap7(&[0x1000, 0x4000]));
    for _ in 0..2 {
        // the same scan again: the pages swapped out are present (read back), kept
        assert_eq!(plan_pages(&mut h), Ok(vec![]));
    }
    let refusals: Vec<LogLevel> = h
        .host
        .logs()
        .into_iter()
        .filter(|(_, m)| {
            m.contains("reclaim was refused") && m.contains("etmem_swap is not loaded")
        })
        .map(|(l, _)| l)
        .collect();
    assert_eq!(
        refusals,
        vec![LogLevel::Warn, LogLevel::Debug, LogLevel::Debug]
    );
}

#[test]
fn swapcache_watermarks_both_or_neither_low_below_high() {
    let configure = |pairs: &[(&str, &str)]| {
        Harness::<Slide>::configure(&Params::from_pairs(pairs.iter().copied()), FakeHost::new())
    };
    let e = configure(&[
        ("swapcache_high_wmark", "30"),
        ("swapcache_low_wmark", "30"),
    ])
    .expect_err("low not below high");
    assert!(e.to_string().contains("swapcache_low_wmark"), "{e}");
    let e = configure(&[("swapcache_high_wmark", "30")]).expect_err("low missing");
    assert!(e.to_string().contains("swapcache_low_wmark"), "{e}");
    // -1 is off, as C's default
    configure(&[
        ("swapcache_high_wmark", "-1"),
        ("swapcache_low_wmark", "-1"),
    ])
    .expect("both off");
}

#[test]
fn fixture_rounds_give_the_expected_actions() {
    let f = testdata::rounds();
    let mut h = Harness::<Slide>::configure(&f.engine_params, f.host(0)).expect("configure");
    for (info, params) in &f.tasks {
        h.new_task(info, params).expect("new task");
    }
    let first = &f.rounds[0];
    let db = h
        .plan("db", &first.round, &first.plans[0].scans)
        .expect("plan db");
    // db pid 100: counts (i+1)%3, cold where 0: i = 2, 5, 8, ... (8 pages); pid 101 gated.
    let want: Vec<u64> = (0..24u64)
        .filter(|i| (i + 1) % 3 == 0)
        .map(|i| 0x7f00_0000_0000 + 0x1000 * i)
        .collect();
    assert_eq!(
        db,
        vec![Action::SwapOut {
            pid: 100,
            runs: PageRun::of_base_pages(&want)
        }]
    );
    let bg = h
        .plan("bg", &first.round, &first.plans[1].scans)
        .expect("plan bg");
    // bg pid 200: budget 27 pages among counts < 2 (counts (7i+1)%5 in 0..=1: 16 pages).
    match &bg[..] {
        [a @ Action::SwapOut { pid: 200, .. }] => assert_eq!(a.page_count(), 16),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn pages_read_back_after_a_swap_out_are_kept_for_keep_rounds_and_said_at_info() {
    let mut h = harness(&[("loop", "1")], &[("T", "1")], FakeHost::new());
    let all = [(0x1000, 0), (0x2000, 1), (0x3000, 0), (0x4000, 0)];
    assert_eq!(
        h.plan("db", &round(1), &[scan(7, &all)]),
        swap7(&[0x1000, 0x3000, 0x4000])
    );
    // round 2: 0x3000 is still out (absent from the scan), 0x1000 and 0x4000 came back
    let back = [(0x1000, 0), (0x2000, 1), (0x4000, 0)];
    assert_eq!(h.plan("db", &round(2), &[scan(7, &back)]), Ok(vec![]));
    let said: Vec<(LogLevel, String)> = h
        .host
        .logs()
        .into_iter()
        .filter(|(_, m)| m.contains("in memory again"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0].0, LogLevel::Info);
    assert!(said[0].1.contains("pid 7: 2 page(s)"), "{}", said[0].1);
    // still kept through round 2 + KEEP_ROUNDS; cold again after it
    let last = 2 + refault::KEEP_ROUNDS;
    assert_eq!(h.plan("db", &round(last), &[scan(7, &back)]), Ok(vec![]));
    assert_eq!(
        h.plan("db", &round(last + 1), &[scan(7, &back)]),
        swap7(&[0x1000, 0x4000])
    );
}
