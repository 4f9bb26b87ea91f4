//! Parity: the recorded rounds of `testdata::rounds()` give the same actions through the
//! built-in engine (the SDK's Runner, via the harness) and through this crate's native
//! `.so` loaded with abi_stable the way the daemon does.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use etmem_plugin_cslide::{Cslide, testdata};
use etmem_sdk::Action;
use etmem_sdk::testing::Harness;

#[test]
fn builtin_and_native_so_plan_the_same() {
    let f = testdata::rounds();
    let mut h = Harness::<Cslide>::configure(&f.engine_params, f.host(0)).expect("configure");
    for (info, params) in &f.tasks {
        h.new_task(info, params).expect("new task");
    }
    let mut builtin: Vec<Vec<Action>> = Vec::new();
    for (i, r) in f.rounds.iter().enumerate() {
        h.host = f.host(i);
        for call in &r.plans {
            builtin.push(h.plan(&call.task, &r.round, &call.scans).expect("plan"));
        }
    }
    assert!(
        builtin.iter().any(|a| !a.is_empty()),
        "the fixture must produce actions"
    );

    let native = common::run_native("libetmem_plugin_cslide.so", &Fix(f));
    assert_eq!(native, builtin);
}

struct Fix(testdata::Fixture);

impl common::FixtureLike for Fix {
    fn engine_params(&self) -> &etmem_sdk::Params {
        &self.0.engine_params
    }
    fn tasks(&self) -> Vec<(etmem_sdk::TaskInfo, etmem_sdk::Params)> {
        self.0.tasks.clone()
    }
    fn host(&self, round: usize) -> etmem_sdk::testing::FakeHost {
        self.0.host(round)
    }
    fn rounds(&self) -> Vec<(etmem_sdk::Round, common::Calls)> {
        self.0
            .rounds
            .iter()
            .map(|r| {
                let plans = r
                    .plans
                    .iter()
                    .map(|p| (p.task.clone(), p.scans.clone()))
                    .collect();
                (r.round, plans)
            })
            .collect()
    }
}
