//! Recorded scan rounds for an engine's tests: a [`Fixture`] is an engine's configuration,
//! its tasks, what the host answers and the rounds of plan calls, so the same rounds can be
//! driven through every form of the engine (built in, native `.so`, wasm component) and
//! give the same actions. The plugins' `testdata` modules build their engine's fixture with
//! these types and [`scan_of`].
//!
//! Plain data plus [`Fixture::host`], which answers the host calls an engine makes; it must
//! not touch the machine.

use super::FakeHost;
use crate::{Page, PageSize, Params, Pid, ProcessMemory, Round, ScanResult, SystemFacts, TaskInfo};

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
    /// A [`FakeHost`] answering as the fixture says during round `index`: its `task-scan`
    /// answers are that round's scans, as the daemon's are when it plans a per-engine
    /// round.
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

/// A scan of `pid` over `passes` passes: one page of `size` per count, the first at
/// `base`, each next one `size` bytes above. Counts above `passes` give an empty scan
/// (a fixture's mistake, which its test then shows).
pub fn scan_of(pid: Pid, passes: u32, base: u64, size: PageSize, counts: &[u8]) -> ScanResult {
    let pages = counts.iter().enumerate().map(|(i, &count)| Page {
        addr: base + size.bytes() * i as u64,
        count,
        size,
    });
    ScanResult::from_pages(pid, passes, pages).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Host;

    #[test]
    fn scan_of_steps_by_the_page_size() {
        let s = scan_of(7, 2, 0x20_0000, PageSize::Size2M, &[2, 0, 1]);
        assert_eq!(s.pid(), 7);
        let addrs: Vec<u64> = s.pages().map(|p| p.addr).collect();
        assert_eq!(addrs, [0x20_0000, 0x40_0000, 0x60_0000]);
    }

    #[test]
    fn host_answers_the_scans_of_the_round_asked() {
        let task = TaskInfo::named("p", "t", "x");
        let round = |n: u64, count: u8| FixtureRound {
            round: Round {
                number: n,
                passes: 1,
            },
            plans: vec![PlanCall {
                task: "t".into(),
                scans: vec![scan_of(1, 1, 0x1000, PageSize::Size4K, &[count])],
            }],
        };
        let f = Fixture {
            engine_params: Params::default(),
            tasks: vec![(task, Params::default())],
            facts: SystemFacts::default(),
            memory: Vec::new(),
            page_nodes: Vec::new(),
            rounds: vec![round(1, 0), round(2, 1)],
        };
        let later = f.host(1).task_scan("t").expect("round 2 scans");
        assert_eq!(later, f.rounds[1].plans[0].scans);
        assert_ne!(later, f.rounds[0].plans[0].scans);
        let none = f.host(5).task_scan("t").expect("no such round");
        assert!(none.is_empty());
    }
}
