//! `idle-swap`: an example etmem engine that swaps out the pages that stayed idle for
//! `idle_rounds` consecutive rounds.
//!
//! One source, two forms: `cargo build --release` gives `libidle_swap.so` (abi_stable),
//! `scripts/build-engine` also gives `idle_swap.wasm` (a component). The policy is pure: it
//! reads scan results and returns actions, it never touches the machine.
//!
//! Task keys: `idle_rounds` (1..=255, default 3), `max_swap_pages` (per round, default
//! unlimited). No engine keys. Private command: `showidle -t <task>`.

use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, PageRun, PageSize, Params, Pid, Round, ScanResult,
    Task, TaskInfo,
};
use std::collections::{BTreeMap, HashMap};

/// The engine: a counter for its `status` command; its tasks are kept by the SDK.
#[derive(Debug)]
pub struct IdleSwap {
    /// tasks added since configure (shown by the `status` command)
    tasks_added: u64,
}

/// Per task: how many rounds each page has been idle.
#[derive(Debug)]
pub struct IdleTask {
    name: String,
    idle_rounds: u8,
    max_swap_pages: Option<u64>,
    /// pid → page address → consecutive idle rounds
    idle: BTreeMap<Pid, HashMap<u64, u8>>,
    swapped_total: u64,
}

impl Engine for IdleSwap {
    type Task = IdleTask;

    fn configure(params: &Params, _host: &dyn Host) -> Result<IdleSwap, EngineError> {
        params.deny_unknown(&[])?;
        Ok(IdleSwap { tasks_added: 0 })
    }

    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<IdleTask, EngineError> {
        params.deny_unknown(&["idle_rounds", "max_swap_pages"])?;
        self.tasks_added += 1;
        Ok(IdleTask {
            name: task.name.clone(),
            idle_rounds: params.get_in("idle_rounds", 1..=255)?.unwrap_or(3),
            max_swap_pages: params.get("max_swap_pages")?,
            idle: BTreeMap::new(),
            swapped_total: 0,
        })
    }

    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut IdleTask)>,
        _host: &dyn Host,
    ) -> Result<String, EngineError> {
        match cmd {
            "status" => Ok(format!("idle-swap: {} task(s) added\n", self.tasks_added)),
            "showidle" => {
                let (_, t) = task.ok_or_else(|| EngineError::TaskRequired(cmd.to_string()))?;
                let tracked: usize = t.idle.values().map(HashMap::len).sum();
                Ok(format!(
                    "task {}: {} pages tracked, {} swapped out in total\n",
                    t.name, tracked, t.swapped_total
                ))
            }
            _ => Err(EngineError::UnknownCommand(cmd.to_string())),
        }
    }
}

impl IdleTask {
    /// Updates the idle counts of one pid and returns the pages due for swap-out.
    fn update(&mut self, scan: &ScanResult) -> Vec<u64> {
        let old = self.idle.remove(&scan.pid()).unwrap_or_default();
        let mut now = HashMap::with_capacity(scan.len());
        let mut due = Vec::new();
        for page in scan.pages() {
            if page.count != 0 {
                continue; // accessed: forget it (its idle run starts again at 0)
            }
            let rounds = old.get(&page.addr).copied().unwrap_or(0).saturating_add(1);
            if rounds >= self.idle_rounds {
                due.push(page.addr);
            } else {
                now.insert(page.addr, rounds);
            }
        }
        self.idle.insert(scan.pid(), now);
        due
    }
}

impl Task for IdleTask {
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        // Processes absent from this round are gone: forget them.
        self.idle
            .retain(|pid, _| scans.iter().any(|s| s.pid() == *pid));
        let mut budget = self.max_swap_pages.unwrap_or(u64::MAX);
        let mut actions = Vec::new();
        for scan in scans {
            let mut due = self.update(scan);
            let take = usize::try_from(budget).unwrap_or(usize::MAX).min(due.len());
            let kept = due.split_off(take);
            // Pages over budget stay tracked, due again next round.
            if let Some(map) = self.idle.get_mut(&scan.pid()) {
                for addr in kept {
                    map.insert(addr, self.idle_rounds);
                }
            }
            budget -= due.len() as u64;
            if !due.is_empty() {
                self.swapped_total += due.len() as u64;
                due.sort_unstable();
                let runs = due.iter().map(|&a| {
                    let size = scan.page_size_at(a).unwrap_or(PageSize::Size4K);
                    (a, size)
                });
                actions.push(Action::SwapOut {
                    pid: scan.pid(),
                    runs: PageRun::coalesce(runs),
                });
            }
        }
        let pages: u64 = actions.iter().map(Action::page_count).sum();
        host.log(
            LogLevel::Debug,
            &format!(
                "task {} round {}: swap out {pages} pages",
                self.name, round.number
            ),
        );
        Ok(actions)
    }

    fn stop_task(&mut self, _host: &dyn Host) {
        // Idle runs do not survive a stop: pages may be touched while nobody watches.
        self.idle.clear();
    }
}

etmem_sdk::export_engine!(IdleSwap);

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_sdk::testing::{FakeHost, Harness};
    use etmem_sdk::{Page, PageSize};

    fn scan(pid: Pid, pages: &[(u64, u8)]) -> ScanResult {
        ScanResult::from_pages(
            pid,
            1,
            pages.iter().map(|&(addr, count)| Page {
                addr,
                count,
                size: PageSize::Size4K,
            }),
        )
        .expect("valid scan")
    }

    fn harness(task_params: &[(&str, &str)]) -> Harness<IdleSwap> {
        let mut h =
            Harness::<IdleSwap>::configure(&Params::new(), FakeHost::new()).expect("configure");
        h.new_task(
            &TaskInfo::named("p", "db", "mysqld"),
            &Params::from_pairs(task_params.iter().copied()),
        )
        .expect("new task");
        h
    }

    fn round(n: u64) -> Round {
        Round {
            number: n,
            passes: 1,
        }
    }

    #[test]
    fn swaps_pages_idle_for_n_rounds_only() {
        let mut h = harness(&[("idle_rounds", "2")]);
        let s = scan(10, &[(0x1000, 0), (0x2000, 1), (0x3000, 0)]);
        assert_eq!(
            h.plan("db", &round(1), std::slice::from_ref(&s)),
            Ok(vec![])
        );
        // 0x3000 was touched in round 2: its idle run restarts.
        let s2 = scan(10, &[(0x1000, 0), (0x2000, 0), (0x3000, 2)]);
        assert_eq!(
            h.plan("db", &round(2), &[s2]),
            Ok(vec![Action::SwapOut {
                pid: 10,
                runs: PageRun::of_base_pages(&[0x1000])
            }])
        );
        let s3 = scan(10, &[(0x2000, 0), (0x3000, 0)]);
        assert_eq!(
            h.plan("db", &round(3), &[s3]),
            Ok(vec![Action::SwapOut {
                pid: 10,
                runs: PageRun::of_base_pages(&[0x2000])
            }])
        );
        assert_eq!(
            h.command("showidle", Some("db")),
            Ok("task db: 1 pages tracked, 2 swapped out in total\n".to_string())
        );
        assert!(
            h.host
                .logs()
                .iter()
                .any(|(l, m)| *l == LogLevel::Debug && m == "task db round 3: swap out 1 pages")
        );
    }

    #[test]
    fn budget_caps_a_round_and_the_rest_stays_due() {
        let mut h = harness(&[("idle_rounds", "1"), ("max_swap_pages", "2")]);
        let s = scan(7, &[(0x1000, 0), (0x2000, 0), (0x3000, 0)]);
        let first = h
            .plan("db", &round(1), std::slice::from_ref(&s))
            .expect("plan");
        assert_eq!(
            first,
            vec![Action::SwapOut {
                pid: 7,
                runs: PageRun::of_base_pages(&[0x1000, 0x2000])
            }]
        );
        let s2 = scan(7, &[(0x3000, 0)]);
        assert_eq!(
            h.plan("db", &round(2), &[s2]),
            Ok(vec![Action::SwapOut {
                pid: 7,
                runs: PageRun::of_base_pages(&[0x3000])
            }])
        );
    }

    #[test]
    fn stop_resets_idle_runs_and_vanished_pids_are_forgotten() {
        let mut h = harness(&[("idle_rounds", "2")]);
        h.plan(
            "db",
            &round(1),
            &[scan(1, &[(0x1000, 0)]), scan(2, &[(0x5000, 0)])],
        )
        .expect("plan");
        h.stop_task("db").expect("stop");
        assert_eq!(
            h.plan("db", &round(2), &[scan(1, &[(0x1000, 0)])]),
            Ok(vec![])
        );
        assert_eq!(
            h.command("showidle", Some("db")),
            Ok("task db: 1 pages tracked, 0 swapped out in total\n".to_string())
        );
    }

    #[test]
    fn bad_params_name_key_and_value() {
        let mut h =
            Harness::<IdleSwap>::configure(&Params::new(), FakeHost::new()).expect("configure");
        let info = TaskInfo::named("p", "db", "mysqld");
        assert_eq!(
            h.new_task(&info, &Params::from_pairs([("idle_rounds", "0")]))
                .expect_err("must fail")
                .to_string(),
            "key `idle_rounds`: expected an integer in 1..=255, found `0`"
        );
        assert_eq!(
            h.new_task(&info, &Params::from_pairs([("idle_round", "3")])),
            Err(EngineError::UnknownParam("idle_round".into()))
        );
        assert_eq!(
            Harness::<IdleSwap>::configure(&Params::from_pairs([("x", "1")]), FakeHost::new())
                .expect_err("must fail"),
            EngineError::UnknownParam("x".into())
        );
        assert!(h.task_names().is_empty());
    }

    #[test]
    fn commands_and_unknown_tasks() {
        let mut h = harness(&[]);
        assert_eq!(
            h.command("showidle", None),
            Err(EngineError::TaskRequired("showidle".into()))
        );
        assert_eq!(
            h.command("nope", None),
            Err(EngineError::UnknownCommand("nope".into()))
        );
        assert_eq!(
            h.plan("other", &round(1), &[]),
            Err(EngineError::UnknownTask("other".into()))
        );
        h.drop_task("db").expect("drop");
        assert_eq!(
            h.command("showidle", Some("db")),
            Err(EngineError::UnknownTask("db".into()))
        );
    }
}
