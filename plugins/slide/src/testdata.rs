//! Recorded scan rounds for parity tests: the same [`Fixture`] driven through the built-in
//! engine (the SDK's `Runner`), the native `.so` and the wasm component must give the same
//! actions. Plain data plus [`Fixture::host`], which answers the host calls the engine
//! makes; it must not touch the machine.

use etmem_sdk::testing::FakeHost;
use etmem_sdk::{
    MemInfo, Page, PageSize, Params, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo,
};

/// `task-page-nodes(task, pid, ..)` answers: the task, the pid, (address, node) per page.
pub type PageNodes = (String, Pid, Vec<(u64, i32)>);

/// One `plan` call: the task and the scans handed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCall {
    /// task name
    pub task: String,
    /// one scan per pid
    pub scans: Vec<ScanResult>,
}

/// One round: its info and the plan calls in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureRound {
    /// passed to every plan call of the round
    pub round: Round,
    /// in call order
    pub plans: Vec<PlanCall>,
}

/// An engine's configuration, its tasks, what the host answers, and the rounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// `configure` params (engine keys plus the project's keys)
    pub engine_params: Params,
    /// `new_task` calls, in order
    pub tasks: Vec<(TaskInfo, Params)>,
    /// `system-facts`
    pub facts: SystemFacts,
    /// `task-memory(task, pid)`
    pub memory: Vec<(String, Pid, ProcessMemory)>,
    /// `task-page-nodes(task, pid, ..)`: (address, node) per page
    pub page_nodes: Vec<PageNodes>,
    /// the rounds
    pub rounds: Vec<FixtureRound>,
}

impl Fixture {
    /// A [`FakeHost`] answering as the fixture says during round `index` (its `task-scan`
    /// answers are that round's scans).
    pub fn host(&self, index: usize) -> FakeHost {
        let mut h = FakeHost::new().with_system_facts(self.facts.clone());
        for (task, pid, mem) in &self.memory {
            h = h.with_task_memory(task, *pid, *mem);
        }
        for (task, pid, nodes) in &self.page_nodes {
            h = h.with_page_nodes(task, *pid, nodes);
        }
        for (task, _) in &self.tasks {
            let scans = self
                .rounds
                .get(index)
                .and_then(|r| r.plans.iter().find(|p| p.task == task.name))
                .map(|p| p.scans.clone())
                .unwrap_or_default();
            h = h.with_scans(&task.name, scans);
        }
        h
    }
}

fn scan(pid: Pid, passes: u32, base: u64, counts: &[u8]) -> ScanResult {
    let pages = counts.iter().enumerate().map(|(i, &count)| Page {
        addr: base + 0x1000 * i as u64,
        count,
        size: PageSize::Size4K,
    });
    ScanResult::from_pages(pid, passes, pages).unwrap_or_default()
}

/// Three rounds of two tasks (`loop=2`, `sysmem_threshold=50` with 40 % MemFree):
/// `db` (T=1, two pids, the second gated out by its VmSwap share) and `bg` (T=2,
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
