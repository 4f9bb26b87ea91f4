//! [`Policy`]: the shortest way to write an engine. A policy is the decision alone: built
//! from its params, given each scan result, it returns actions. [`PolicyEngine`] and
//! [`PolicyTask`] adapt it to [`Engine`] and [`Task`], and
//! [`export_policy!`](crate::export_policy) exports it in one line.
//!
//! What the adapters do for a policy `P`:
//! - `configure` refuses any `[engine]` key outside `P::KEYS` (and the project keys, see
//!   [`PROJECT_KEYS`](crate::PROJECT_KEYS)) and keeps the rest;
//! - `new-task` gives `P::new` the `[engine]` keys followed by the `[task]` ones (a task's
//!   value wins: [`Params`] keeps the last), after refusing `[task]` keys outside `P::KEYS`;
//! - `plan`, `stop-task` and `command` go to the task's policy.
//!
//! An engine that needs engine-wide state shared by its tasks implements [`Engine`] itself.
//! This module must not know which boundary (native or wasm) it serves.

use crate::{Action, Engine, EngineError, Host, Params, Round, ScanResult, Task, TaskInfo};
use std::marker::PhantomData;

/// The decision of one task: params in, then for each round its scan results in and
/// actions out. Only [`Policy::new`] is required; a policy that returns nothing is valid.
///
/// ```
/// use etmem_sdk::testing::{FakeHost, Harness};
/// use etmem_sdk::{Action, EngineError, Params, Policy, PolicyEngine, Round, ScanResult, TaskInfo};
///
/// /// Swaps out the first run of every scan.
/// struct First;
/// impl Policy for First {
///     fn new(_: &Params) -> Result<First, EngineError> {
///         Ok(First)
///     }
///     fn decide(&mut self, scan: &ScanResult) -> Result<Vec<Action>, EngineError> {
///         let runs = scan.runs().take(1).map(|r| r.page_run()).collect();
///         Ok(vec![Action::SwapOut { pid: scan.pid(), runs }])
///     }
/// }
///
/// # fn main() -> Result<(), EngineError> {
/// let mut h = Harness::<PolicyEngine<First>>::configure(&Params::new(), FakeHost::new())?;
/// h.new_task(&TaskInfo::named("p", "t", "app"), &Params::new())?;
/// let scan = ScanResult::from_columns(7, 1, &[0x1000, 0x9000], &[2, 1], &[0, 3], &[0, 0])?;
/// let actions = h.plan("t", &Round { number: 1, passes: 1 }, &[scan])?;
/// assert_eq!(actions[0].page_count(), 2);
/// // a key the policy does not list is refused, naming it
/// let err = h.new_task(&TaskInfo::named("p", "u", "app"), &Params::from_pairs([("x", "1")]));
/// assert_eq!(err, Err(EngineError::UnknownParam("x".into())));
/// # Ok(())
/// # }
/// ```
pub trait Policy: Sized + Send + 'static {
    /// The keys the policy reads, in `[engine]` (a default for every task) or `[task]`;
    /// any other key is refused with [`EngineError::UnknownParam`]. Default: none.
    const KEYS: &'static [&'static str] = &[];

    /// A task's policy, from the `[engine]` keys followed by the `[task]` keys (read them
    /// with [`Params::get_in`] and friends: their errors name the key and the value).
    fn new(params: &Params) -> Result<Self, EngineError>;

    /// The actions for one process's scan of this round. Default: none.
    fn decide(&mut self, scan: &ScanResult) -> Result<Vec<Action>, EngineError> {
        let _ = scan;
        Ok(Vec::new())
    }

    /// A whole round. Default: [`Policy::decide`] on each scan, actions in scan order.
    /// Override it to use the round number or the [`Host`].
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let _ = (round, host);
        let mut actions = Vec::new();
        for scan in scans {
            actions.extend(self.decide(scan)?);
        }
        Ok(actions)
    }

    /// The task's project stopped (`stop-task`). Default: nothing.
    fn stop(&mut self) {}

    /// A private command (`etmem engine <cmd> [-t <task>]`): `task` is the named task's
    /// policy, if any. Default: [`EngineError::UnknownCommand`].
    fn command(cmd: &str, task: Option<&mut Self>, host: &dyn Host) -> Result<String, EngineError> {
        let _ = (task, host);
        Err(EngineError::UnknownCommand(cmd.to_string()))
    }
}

/// The [`Engine`] of a [`Policy`]: keeps the `[engine]` params for each new task.
pub struct PolicyEngine<P> {
    params: Params,
    policy: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for PolicyEngine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("params", &self.params)
            .finish()
    }
}

impl<P> PolicyEngine<P> {
    /// The `[engine]` params every task's policy starts from.
    pub fn params(&self) -> &Params {
        &self.params
    }
}

/// The [`Task`] of a [`Policy`]: the task's policy.
#[derive(Debug)]
pub struct PolicyTask<P>(pub P);

impl<P: Policy> Engine for PolicyEngine<P> {
    type Task = PolicyTask<P>;

    fn configure(params: &Params, _host: &dyn Host) -> Result<Self, EngineError> {
        params.deny_unknown(P::KEYS)?;
        Ok(PolicyEngine {
            params: params.clone(),
            policy: PhantomData,
        })
    }

    fn new_task(
        &mut self,
        _task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<PolicyTask<P>, EngineError> {
        params.deny_unknown(P::KEYS)?;
        let merged = self.params.pairs().iter().chain(params.pairs()).cloned();
        P::new(&Params::from_pairs(merged)).map(PolicyTask)
    }

    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut PolicyTask<P>)>,
        host: &dyn Host,
    ) -> Result<String, EngineError> {
        P::command(cmd, task.map(|(_, t)| &mut t.0), host)
    }
}

impl<P: Policy> Task for PolicyTask<P> {
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        self.0.plan(round, scans, host)
    }

    fn stop_task(&mut self, _host: &dyn Host) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeHost, Harness};

    /// Swaps out runs with count <= `max_count`; counts its rounds and stops.
    struct Cold {
        max_count: u8,
        stops: u32,
    }

    impl Policy for Cold {
        const KEYS: &'static [&'static str] = &["max_count"];
        fn new(params: &Params) -> Result<Cold, EngineError> {
            Ok(Cold {
                max_count: params.get_or("max_count", 0)?,
                stops: 0,
            })
        }
        fn decide(&mut self, scan: &ScanResult) -> Result<Vec<Action>, EngineError> {
            let runs: Vec<_> = scan
                .runs()
                .filter(|r| r.count <= self.max_count)
                .map(|r| r.page_run())
                .collect();
            Ok(vec![Action::SwapOut {
                pid: scan.pid(),
                runs,
            }])
        }
        fn stop(&mut self) {
            self.stops += 1;
        }
        fn command(
            cmd: &str,
            task: Option<&mut Cold>,
            _: &dyn Host,
        ) -> Result<String, EngineError> {
            match (cmd, task) {
                ("stops", Some(t)) => Ok(t.stops.to_string()),
                ("stops", None) => Err(EngineError::TaskRequired(cmd.into())),
                _ => Err(EngineError::UnknownCommand(cmd.into())),
            }
        }
    }

    fn scan() -> ScanResult {
        ScanResult::from_columns(
            9,
            3,
            &[0x1000, 0x3000, 0x5000],
            &[2, 1, 4],
            &[0, 2, 6],
            &[0; 3],
        )
        .expect("valid scan")
    }

    #[test]
    fn task_keys_win_over_engine_keys_and_unknown_keys_are_refused() {
        let engine = Params::from_pairs([("max_count", "2"), ("loop", "3")]);
        let mut h =
            Harness::<PolicyEngine<Cold>>::configure(&engine, FakeHost::new()).expect("configure");
        let round = Round {
            number: 1,
            passes: 3,
        };
        h.new_task(&TaskInfo::named("p", "a", "x"), &Params::new())
            .expect("task a");
        h.new_task(
            &TaskInfo::named("p", "b", "x"),
            &Params::from_pairs([("max_count", "0")]),
        )
        .expect("task b");
        let a = h.plan("a", &round, &[scan()]).expect("plan a");
        let b = h.plan("b", &round, &[scan(), scan()]).expect("plan b");
        // engine default 2: runs of count 0 and 2 (3 pages); task b's 0: 2 pages per scan
        assert_eq!(a.iter().map(Action::page_count).collect::<Vec<_>>(), [3]);
        assert_eq!(b.iter().map(Action::page_count).collect::<Vec<_>>(), [2, 2]);

        let bad = h.new_task(
            &TaskInfo::named("p", "c", "x"),
            &Params::from_pairs([("max_cuont", "1")]),
        );
        assert_eq!(bad, Err(EngineError::UnknownParam("max_cuont".into())));
        let bad = h.new_task(
            &TaskInfo::named("p", "d", "x"),
            &Params::from_pairs([("max_count", "lots")]),
        );
        assert_eq!(
            bad.expect_err("must fail").to_string(),
            "key `max_count`: expected an integer in 0..=255, found `lots`"
        );
        let bad = Harness::<PolicyEngine<Cold>>::configure(
            &Params::from_pairs([("other", "1")]),
            FakeHost::new(),
        );
        assert_eq!(
            bad.map(|_| ()),
            Err(EngineError::UnknownParam("other".into()))
        );
    }

    #[test]
    fn stop_and_commands_reach_the_tasks_policy() {
        let mut h = Harness::<PolicyEngine<Cold>>::configure(&Params::new(), FakeHost::new())
            .expect("configure");
        h.new_task(&TaskInfo::named("p", "a", "x"), &Params::new())
            .expect("task a");
        h.stop_task("a").expect("stop");
        h.stop_task("a").expect("stop");
        assert_eq!(h.command("stops", Some("a")), Ok("2".into()));
        assert_eq!(
            h.command("stops", None),
            Err(EngineError::TaskRequired("stops".into()))
        );
        assert_eq!(
            h.command("nope", None),
            Err(EngineError::UnknownCommand("nope".into()))
        );
    }

    #[test]
    fn a_policy_with_only_new_returns_nothing() {
        struct Idle;
        impl Policy for Idle {
            fn new(_: &Params) -> Result<Idle, EngineError> {
                Ok(Idle)
            }
        }
        let mut h = Harness::<PolicyEngine<Idle>>::configure(&Params::new(), FakeHost::new())
            .expect("configure");
        h.new_task(&TaskInfo::named("p", "a", "x"), &Params::new())
            .expect("task");
        let round = Round {
            number: 1,
            passes: 3,
        };
        assert_eq!(h.plan("a", &round, &[scan()]), Ok(Vec::new()));
        assert!(h.host.calls().is_empty());
    }
}
