//! The native root module as the daemon calls it, in-process: values cross as abi_stable
//! types, errors come back as values, and a panic is caught at the boundary (and poisons
//! the instance) instead of aborting the caller.

use abi_stable::std_types::{ROption, RResult, RSlice, RString, Tuple2};
use etmem_sdk::native::{
    EngineBox, EngineModRef, RHost, RRoundInfo, RScanResult, RTaskInfo, root_module,
};
use etmem_sdk::testing::FakeHost;
use etmem_sdk::testing::native::NativeHost;
use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, PageRun, PageSize, Params, Round, ScanResult,
    Task, TaskInfo,
};

/// Swaps every idle page; panics on command `boom`; asks the host for memory on `mem`.
struct Probe;
struct ProbeTask(String);

impl Engine for Probe {
    type Task = ProbeTask;
    fn configure(params: &Params, host: &dyn Host) -> Result<Probe, EngineError> {
        params.deny_unknown(&["ok"])?;
        host.log(LogLevel::Info, "configured");
        Ok(Probe)
    }
    fn new_task(
        &mut self,
        t: &TaskInfo,
        _: &Params,
        _: &dyn Host,
    ) -> Result<ProbeTask, EngineError> {
        Ok(ProbeTask(t.name.clone()))
    }
    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut ProbeTask)>,
        host: &dyn Host,
    ) -> Result<String, EngineError> {
        match cmd {
            "boom" => panic!("boom requested"),
            "mem" => {
                let (_, t) = task.ok_or_else(|| EngineError::TaskRequired(cmd.into()))?;
                host.task_memory(&t.0, 1).map(|m| m.rss_kb.to_string())
            }
            _ => Err(EngineError::UnknownCommand(cmd.into())),
        }
    }
}

impl Task for ProbeTask {
    fn plan(
        &mut self,
        _: &Round,
        scans: &[ScanResult],
        _: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        Ok(scans
            .iter()
            .map(|s| Action::SwapOut {
                pid: s.pid(),
                runs: s
                    .runs()
                    .filter(|r| r.count == 0)
                    .map(|r| r.page_run())
                    .collect(),
            })
            .collect())
    }
}

/// An engine of `m` configured with no key.
fn configured(m: EngineModRef, host: RHost<'_>) -> EngineBox {
    (m.configure())(RSlice::from_slice(&[]), host)
        .into_result()
        .expect("configure")
}

/// Plans round `number` (one pass) of `task` over `scan` through the module's `plan`.
fn plan_one(
    m: EngineModRef,
    engine: &mut EngineBox,
    task: &str,
    number: u64,
    scan: &RScanResult,
    host: RHost<'_>,
) -> Result<Vec<Action>, EngineError> {
    let round = RRoundInfo { number, passes: 1 };
    (m.plan())(
        engine,
        task.into(),
        round,
        RSlice::from_slice(std::slice::from_ref(scan)),
        host,
    )
    .into_result()
    .map_err(EngineError::from)
    .and_then(|v| v.iter().map(Action::try_from).collect())
}

#[test]
fn values_cross_and_panics_are_caught() {
    let fake = FakeHost::new();
    let host = NativeHost(&fake);
    let h = || host.rhost();
    let m = root_module::<Probe>();

    let bad = [Tuple2(RString::from("nope"), RString::from("1"))];
    match (m.configure())(RSlice::from_slice(&bad), h()) {
        RResult::RErr(e) => assert_eq!(
            EngineError::from(e),
            EngineError::UnknownParam("nope".into())
        ),
        RResult::ROk(_) => panic!("unknown key accepted"),
    }

    let mut engine = configured(m, h());
    assert_eq!(fake.logs(), [(LogLevel::Info, "configured".to_string())]);

    let info = RTaskInfo::from(&TaskInfo::named("p", "t1", "x"));
    (m.new_task())(&mut engine, &info, RSlice::from_slice(&[]), h())
        .into_result()
        .expect("new task");

    let scan = RScanResult {
        pid: 9,
        passes: 1,
        addrs: vec![0x1000, 0x2000].into(),
        lens: vec![1, 1].into(),
        counts: vec![0, 1].into(),
        sizes: vec![0, 0].into(),
    };
    let actions = plan_one(m, &mut engine, "t1", 1, &scan, h()).expect("plan");
    assert_eq!(
        actions,
        vec![Action::SwapOut {
            pid: 9,
            runs: vec![PageRun::single(0x1000, PageSize::Size4K)]
        }]
    );

    // A malformed scan (bad size code) is refused as a value, before the engine sees it.
    let bad_scan = RScanResult {
        sizes: vec![0, 7].into(),
        ..scan.clone()
    };
    let e = plan_one(m, &mut engine, "t1", 2, &bad_scan, h()).expect_err("bad scan");
    assert_eq!(e.to_string(), "scan of pid 9: unknown page size code 7");

    // The host's refusal reaches the engine and comes back.
    let e = (m.command())(&mut engine, "mem".into(), ROption::RSome("t1".into()), h())
        .into_result()
        .expect_err("refused");
    assert_eq!(
        EngineError::from(e),
        EngineError::Host("pid 1 of task `t1` is not known to this host".into())
    );

    let e = (m.command())(&mut engine, "boom".into(), ROption::RNone, h())
        .into_result()
        .expect_err("panic caught");
    assert_eq!(
        EngineError::from(e),
        EngineError::Panicked("boom requested".into())
    );
    // The instance is poisoned from now on.
    let e = (m.drop_task())(&mut engine, "t1".into())
        .into_result()
        .expect_err("poisoned");
    assert!(EngineError::from(e).is_fault());
    drop(engine);
}

#[test]
fn unknown_tasks_are_values() {
    let fake = FakeHost::new();
    let host = NativeHost(&fake);
    let h = || host.rhost();
    let m = root_module::<Probe>();
    let mut engine = configured(m, h());
    let e = (m.stop_task())(&mut engine, "ghost".into(), h())
        .into_result()
        .expect_err("unknown");
    assert_eq!(
        EngineError::from(e),
        EngineError::UnknownTask("ghost".into())
    );
    let info = RTaskInfo::from(&TaskInfo::named("p", "t1", "x"));
    (m.new_task())(&mut engine, &info, RSlice::from_slice(&[]), h())
        .into_result()
        .expect("first add");
    let e = (m.new_task())(&mut engine, &info, RSlice::from_slice(&[]), h())
        .into_result()
        .expect_err("duplicate");
    assert_eq!(EngineError::from(e).to_string(), "task `t1` already exists");
}
