//! Recorded scan rounds for parity tests: the same [`Fixture`] driven through the built-in
//! engine (the SDK's `Runner`), the native `.so` and the wasm component must give the same
//! actions. cslide's rounds as plain data; the fixture types and [`Fixture::host`] (which
//! answers the host calls the engine makes, its `task-scan` answers being the round's
//! scans) are the SDK's `testing::fixture`, re-exported here. It must not touch the
//! machine.

pub use etmem_sdk::testing::fixture::{Fixture, FixtureRound, PageNodes, PlanCall};

use etmem_sdk::testing::fixture::scan_of;
use etmem_sdk::{
    MemInfo, NodeMemory, PageSize, Params, Pid, Round, ScanResult, SystemFacts, TaskInfo,
};

const HUGE: u64 = PageSize::Size2M.bytes();

fn scan(pid: Pid, base: u64, counts: &[u8]) -> ScanResult {
    scan_of(pid, 2, base, PageSize::Size2M, counts)
}

fn nodes(base: u64, nodes: &[i32]) -> Vec<(u64, i32)> {
    nodes
        .iter()
        .enumerate()
        .map(|(i, &n)| (base + HUGE * i as u64, n))
        .collect()
}

const VM1: u64 = 0x7f00_0000_0000;
const VM2: u64 = 0x7e00_0000_0000;

/// Three rounds of two tasks on node pair 0 (hot) / 1 (cold), `loop=2`, `hot_threshold=2`,
/// quota 8 MiB, reserve 2 MiB; node 0 has no free huge page, node 1 has 32 MiB free.
/// `vm1` has 4 hot pages on node 1 and 4 cold ones on node 0; `vm2` 2 hot and 4 cold
/// pages on node 0 (one warm page changes every round).
pub fn rounds() -> Fixture {
    let mut rounds = Vec::new();
    for n in 1..=3u64 {
        let warm = (n % 4) as usize;
        let mut vm1 = vec![2u8, 2, 2, 2, 0, 0, 0, 0];
        vm1[warm] = 1;
        let vm2 = vec![2u8, 2, 0, 1, 0, (n % 2) as u8];
        rounds.push(FixtureRound {
            round: Round {
                number: n,
                passes: 2,
            },
            plans: vec![
                PlanCall {
                    task: "vm1".into(),
                    scans: vec![scan(300, VM1, &vm1)],
                },
                PlanCall {
                    task: "vm2".into(),
                    scans: vec![scan(400, VM2, &vm2)],
                },
            ],
        });
    }
    let task = |name: &str, pid: &str| TaskInfo {
        project: "p".into(),
        name: name.into(),
        target_type: "pid".into(),
        target_value: pid.into(),
    };
    let task_params =
        || Params::from_pairs([("vm_flags", "ht"), ("anon_only", "no"), ("ign_host", "yes")]);
    Fixture {
        engine_params: Params::from_pairs([
            ("node_pair", "0,1"),
            ("hot_threshold", "2"),
            ("node_mig_quota", "8"),
            ("node_hot_reserve", "2"),
            ("loop", "2"),
            ("interval", "1"),
            ("sleep", "1"),
        ]),
        tasks: vec![
            (task("vm1", "300"), task_params()),
            (task("vm2", "400"), task_params()),
        ],
        facts: SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: 1 << 20,
                mem_free_kb: 1 << 19,
                ..MemInfo::default()
            },
            nodes: vec![
                NodeMemory {
                    node: 0,
                    total_kb: 512 << 10,
                    free_kb: 100 << 10,
                    huge_total_kb: 64 << 10,
                    huge_free_kb: 0,
                },
                NodeMemory {
                    node: 1,
                    total_kb: 512 << 10,
                    free_kb: 300 << 10,
                    huge_total_kb: 64 << 10,
                    huge_free_kb: 32 << 10,
                },
            ],
        },
        memory: Vec::new(),
        page_nodes: vec![
            ("vm1".into(), 300, nodes(VM1, &[1, 1, 1, 1, 0, 0, 0, 0])),
            ("vm2".into(), 400, nodes(VM2, &[0, 0, 0, 0, 0, 0])),
        ],
        rounds,
    }
}
