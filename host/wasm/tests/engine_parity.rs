//! Parity of the first-party engines across their three forms (issue 5): the recorded scan
//! rounds of each engine's `testdata::rounds()` must give identical decisions from the
//! built-in engine, its native `.so` and its `.wasm` component. One test per engine; each
//! asserts the three runs equal and the decisions non-empty (a fixture that makes the
//! engine do nothing would prove nothing).
//!
//! Why here, in etmem-host-wasm's tests, and not in the plugin crates:
//! * The plugins are written against etmem-sdk only; a plugin test that loads a `.wasm`
//!   would need wasmtime and the host's loaders in the plugin's dev-dependencies. This
//!   crate already has both loaders (its own `WasmLoader`, etmem-host's `NativeLoader`), so
//!   it only gains dev-dependencies on the plugins for their fixtures and engine types.
//! * All three forms go through the daemon's own [`EngineInstance`]s: `load_builtin` (what
//!   the engine registry does for built-in slide, cslide and psi), `NativeLoader` and
//!   `WasmLoader`. A divergence in any of the daemon's adapters shows up, not only one in
//!   the SDK's export glue. (The earlier built-in-vs-`.so` tests of the plugin crates are
//!   folded in here; there is one copy.)
//! * The `.so` and the `.wasm` are built with `scripts/build-engine`, as users build them,
//!   not taken from cargo's cdylib next to this test: under `cargo test --workspace` cargo
//!   unifies features, etmemd turns on `builtin`, and that cdylib has no plug-in export.
//!   The dev-dependencies turn `builtin` on too, so the engines compiled into this test
//!   do not export clashing root-module symbols.
//! * "Decisions" are the actions each `plan` returns and, per round, every host call the
//!   engine made (names in order, log lines, swap/migrate requests, swap cache reclaims,
//!   cgroup reclaims): an engine may act through `request-swap-out`/`request-migrate` as
//!   well as through its return value, and psi acts only through `cgroup-reclaim`.
//!
//! Run in release (CI does: `cargo test --release -p etmem-host-wasm --all-targets`):
//! wasmtime compiles components ~25x slower in a debug build. This test must not touch the
//! machine beyond building the engines: every host call is answered by a `FakeHost`.

mod common;

use etmem_host::plugin::native::NativeLoader;
use etmem_host::plugin::{EngineInstance, EngineLoader, HostRef, load_builtin};
use etmem_host_wasm::{WasmLoader, WasmOptions};
use etmem_sdk::testing::{CgroupReclaim, FakeHost, Request, SwapcacheReclaim};
use etmem_sdk::{Action, Engine, LogLevel, Params, Round, ScanResult, TaskInfo};
use std::path::Path;
use std::sync::Arc;

/// One plan call: the task and the scans handed to it.
type PlanCall = (String, Vec<ScanResult>);

/// An engine's recorded rounds, whichever plugin crate's `testdata` they come from.
struct Recorded {
    engine_params: Params,
    tasks: Vec<(TaskInfo, Params)>,
    /// per round: its info and the plan calls (task, scans) in order
    rounds: Vec<(Round, Vec<PlanCall>)>,
    /// a fresh host answering as the fixture says during round `i`
    host: Box<dyn Fn(usize) -> FakeHost>,
}

/// [`Recorded`] from a plugin's `testdata::Fixture` (the crates' types are distinct but
/// shaped alike; psi's rounds also carry the cgroups its `host(i)` answers with).
macro_rules! recorded {
    ($fixture:expr) => {{
        let f = $fixture;
        Recorded {
            engine_params: f.engine_params.clone(),
            tasks: f.tasks.clone(),
            rounds: f
                .rounds
                .iter()
                .map(|r| {
                    let calls = r
                        .plans
                        .iter()
                        .map(|p| (p.task.clone(), p.scans.clone()))
                        .collect();
                    (r.round, calls)
                })
                .collect(),
            host: Box::new(move |i| f.host(i)),
        }
    }};
}

/// What the engine asked of its host during one stretch of calls.
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    calls: Vec<&'static str>,
    logs: Vec<(LogLevel, String)>,
    requests: Vec<Request>,
    swapcache: Vec<SwapcacheReclaim>,
    cgroup_reclaims: Vec<CgroupReclaim>,
}

impl Transcript {
    fn of(host: &FakeHost) -> Transcript {
        Transcript {
            calls: host.calls(),
            logs: host.logs(),
            requests: host.requests(),
            swapcache: host.swapcache_reclaims(),
            cgroup_reclaims: host.cgroup_reclaims(),
        }
    }
}

/// Everything one form of an engine decided over the fixture.
#[derive(Debug, PartialEq, Eq)]
struct Decisions {
    /// the actions of every plan call, in call order
    plans: Vec<Vec<Action>>,
    /// the host calls of configure + new-task, then of each round
    hosts: Vec<Transcript>,
}

impl Decisions {
    fn pages(&self) -> usize {
        self.plans
            .iter()
            .flatten()
            .map(|a| a.page_count() as usize)
            .sum::<usize>()
            + self
                .hosts
                .iter()
                .flat_map(|t| &t.requests)
                .map(|r| r.action.page_count() as usize)
                .sum::<usize>()
    }

    /// The `cgroup-reclaim` calls the host accepted, over every round.
    fn cgroup_reclaims(&self) -> usize {
        self.hosts.iter().map(|t| t.cgroup_reclaims.len()).sum()
    }
}

/// How a fixture must make its engine act: `(what, count)`, `count` above 0.
type Acts = (&'static str, fn(&Decisions) -> usize);
/// Pages in actions and swap/migrate requests (the page engines).
const PAGES: Acts = ("pages in actions or requests", Decisions::pages);
/// Accepted `cgroup-reclaim` calls (psi, which returns no actions).
const CGROUP_RECLAIMS: Acts = ("accepted cgroup-reclaim calls", Decisions::cgroup_reclaims);

/// Drives `rec` through the instance `configure` makes, labelling failures with `form`.
fn run(
    form: &str,
    rec: &Recorded,
    configure: impl FnOnce(&Params, &HostRef) -> Box<dyn EngineInstance>,
) -> Decisions {
    let setup = Arc::new((rec.host)(0));
    let host: HostRef = setup.clone();
    let mut engine = configure(&rec.engine_params, &host);
    for (info, params) in &rec.tasks {
        engine
            .new_task(info, params, &host)
            .unwrap_or_else(|e| panic!("{form}: new task `{}`: {e}", info.name));
    }
    let mut hosts = vec![Transcript::of(&setup)];
    let mut plans = Vec::new();
    for (i, (round, calls)) in rec.rounds.iter().enumerate() {
        let fake = Arc::new((rec.host)(i));
        let host: HostRef = fake.clone();
        for (task, scans) in calls {
            plans.push(
                engine
                    .plan(task, round, scans, &host)
                    .unwrap_or_else(|e| panic!("{form}: round {}: plan `{task}`: {e}", i + 1)),
            );
        }
        hosts.push(Transcript::of(&fake));
    }
    Decisions { plans, hosts }
}

/// Runs `rec` through the built-in `E`, then the `.so` and the `.wasm` that
/// `scripts/build-engine` makes of `crate_dir`, and checks the three agree and act (as
/// `acts` counts); returns the built-in's decisions.
fn three_way<E: Engine>(
    type_name: &str,
    crate_dir: &str,
    lib: &str,
    rec: &Recorded,
    acts: Acts,
) -> Decisions {
    let builtin = run("built-in", rec, |params, host| {
        load_builtin::<E>(type_name, params, host).expect("built-in configure")
    });
    let calls: usize = rec.rounds.iter().map(|(_, c)| c.len()).sum();
    assert_eq!(builtin.plans.len(), calls, "one result per plan call");
    let (what, count) = acts;
    assert!(
        count(&builtin) > 0,
        "{type_name}: the fixture must make the engine act, but the built-in engine made no \
         {what}: {builtin:#?}"
    );

    let dir = common::build_engine(crate_dir, "both");
    let load = |loader: &dyn EngineLoader, path: &Path, params: &Params, host: &HostRef| {
        loader
            .load(path, lib, type_name, params, host)
            .unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
    };

    let so = dir.join(format!("lib{lib}.so"));
    let native = run(".so", rec, |params, host| {
        load(&NativeLoader::new(), &so, params, host)
    });
    assert_eq!(native, builtin, "{type_name}: native .so vs built-in");

    let wasm_loader = WasmLoader::new(WasmOptions::default()).expect("wasm loader");
    let wasm_file = dir.join(format!("{lib}.wasm"));
    let wasm = run(".wasm", rec, |params, host| {
        load(&wasm_loader, &wasm_file, params, host)
    });
    assert_eq!(wasm, builtin, "{type_name}: .wasm vs built-in");
    builtin
}

#[test]
fn slide_decides_the_same_built_in_as_so_and_as_wasm() {
    let rec = recorded!(etmem_plugin_slide::testdata::rounds());
    let d = three_way::<etmem_plugin_slide::Slide>(
        "slide",
        "plugins/slide",
        "etmem_plugin_slide",
        &rec,
        PAGES,
    );
    // the fixture's swap cache is over the high mark: every round asks for reclaim, once
    // per task, through each task's first process past the gates
    let pids: Vec<Vec<u32>> = d.hosts[1..]
        .iter()
        .map(|t| t.swapcache.iter().map(|s| s.pid).collect())
        .collect();
    assert_eq!(pids, vec![vec![100, 200]; 3], "{d:#?}");
}

#[test]
fn cslide_decides_the_same_built_in_as_so_and_as_wasm() {
    let rec = recorded!(etmem_plugin_cslide::testdata::rounds());
    three_way::<etmem_plugin_cslide::Cslide>(
        "cslide",
        "plugins/cslide",
        "etmem_plugin_cslide",
        &rec,
        PAGES,
    );
}

#[test]
fn psi_decides_the_same_built_in_as_so_and_as_wasm() {
    use etmem_plugin_psi::testdata;
    let rec = recorded!(testdata::rounds());
    let d = three_way::<etmem_plugin_psi::Psi>(
        "psi",
        "plugins/psi",
        "etmem_plugin_psi",
        &rec,
        CGROUP_RECLAIMS,
    );
    assert!(d.plans.iter().all(Vec::is_empty), "psi returns no actions");
    // the reclaims the fixture is built to give (plugins/psi checks them against C's
    // formula): pressure skips, rates moving, a cgroup at its floor and one that left
    let got: Vec<Vec<(String, String, u64)>> = d.hosts[1..]
        .iter()
        .map(|t| {
            t.cgroup_reclaims
                .iter()
                .map(|r| (r.task.clone(), r.cgroup.clone(), r.bytes))
                .collect()
        })
        .collect();
    let want: Vec<Vec<(String, String, u64)>> = testdata::expected_reclaims()
        .into_iter()
        .map(|round| {
            round
                .into_iter()
                .map(|e| (e.task.to_string(), e.cgroup.to_string(), e.bytes))
                .collect()
        })
        .collect();
    assert_eq!(got, want, "{d:#?}");
    // every cgroup-memory answer reached the engine: the pressure skips are logged with
    // both averages as the host gave them (web/api is skipped on avg60 alone)
    let skips: Vec<&str> = d
        .hosts
        .iter()
        .flat_map(|t| &t.logs)
        .map(|(_, line)| line.as_str())
        .filter(|l| l.contains("left alone"))
        .collect();
    assert_eq!(skips.len(), 4, "{skips:#?}");
    assert!(
        skips
            .iter()
            .any(|l| l.contains("`web/api`: pressure avg10 0.90 avg60 1.80")),
        "{skips:#?}"
    );
}
