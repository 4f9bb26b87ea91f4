//! Recorded scan rounds for parity tests: the same [`Fixture`] driven through the built-in
//! engine (the SDK's `Runner`), the native `.so` and the wasm component must give the same
//! actions. slide's rounds as plain data; the fixture types and [`Fixture::host`] (which
//! answers the host calls the engine makes) are the SDK's `testing::fixture`, re-exported
//! here. It must not touch the machine.

pub use etmem_sdk::testing::fixture::{Fixture, FixtureRound, PageNodes, PlanCall};

use etmem_sdk::testing::fixture::scan_of;
use etmem_sdk::{
    MemInfo, PageSize, Params, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo,
};

fn scan(pid: Pid, passes: u32, base: u64, counts: &[u8]) -> ScanResult {
    scan_of(pid, passes, base, PageSize::Size4K, counts)
}

/// Three rounds of two tasks (`loop=2`, `sysmem_threshold=50` with 40 % MemFree, swap
/// cache watermarks 10/30 with 40 % of RAM in the swap cache, so every round asks for its
/// reclaim): `db` (T=1, two pids, the second gated out by its VmSwap share) and `bg` (T=2,
/// dram_percent=50, so only its budget of cold pages).
pub fn rounds() -> Fixture {
    let mut rounds = Vec::new();
    for n in 1..=3u64 {
        let shift = n as u8;
        let db_a: Vec<u8> = (0..24u8).map(|i| (i + shift) % 3).collect();
        let db_b: Vec<u8> = (0..8u8).map(|i| i % 2).collect();
        let bg: Vec<u8> = (0..40u32)
            .map(|i| ((i * 7 + u32::from(shift)) % 5) as u8)
            .collect();
        rounds.push(FixtureRound {
            round: Round {
                number: n,
                passes: 2,
            },
            plans: vec![
                PlanCall {
                    task: "db".into(),
                    scans: vec![
                        scan(100, 2, 0x7f00_0000_0000, &db_a),
                        scan(101, 2, 0x5500_0000, &db_b),
                    ],
                },
                PlanCall {
                    task: "bg".into(),
                    scans: vec![scan(200, 2, 0x4000_0000, &bg)],
                },
            ],
        });
    }
    Fixture {
        engine_params: Params::from_pairs([
            ("loop", "2"),
            ("interval", "1"),
            ("sleep", "1"),
            ("sysmem_threshold", "50"),
            ("swapcache_high_wmark", "30"),
            ("swapcache_low_wmark", "10"),
        ]),
        tasks: vec![
            (
                TaskInfo::named("p", "db", "mysqld"),
                Params::from_pairs([("T", "1")]),
            ),
            (
                TaskInfo::named("p", "bg", "backup"),
                Params::from_pairs([("T", "2"), ("dram_percent", "50"), ("swap_flag", "no")]),
            ),
        ],
        facts: SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: 1_000_000,
                mem_free_kb: 400_000,
                mem_available_kb: 900_000,
                swap_cached_kb: 400_000,
                ..MemInfo::default()
            },
            nodes: Vec::new(),
        },
        memory: vec![
            (
                "db".into(),
                100,
                ProcessMemory {
                    rss_kb: 1000,
                    swap_kb: 0,
                },
            ),
            // (40+60)/100*50 = 50 > 60 is false: gated out.
            (
                "db".into(),
                101,
                ProcessMemory {
                    rss_kb: 40,
                    swap_kb: 60,
                },
            ),
            // dram: (160+0)/100*50 = 50 (dividing first); (160-50)*1024/4096 = 27 pages.
            (
                "bg".into(),
                200,
                ProcessMemory {
                    rss_kb: 160,
                    swap_kb: 0,
                },
            ),
        ],
        page_nodes: Vec::new(),
        rounds,
    }
}
