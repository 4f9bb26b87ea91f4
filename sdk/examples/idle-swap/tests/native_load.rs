//! Loads this crate's own `.so` the way the daemon does (abi_stable, one header per path)
//! and drives one round through it.

#![cfg(not(target_arch = "wasm32"))]

use abi_stable::library::lib_header_from_path;
use abi_stable::std_types::{ROption, RSlice, RString, Tuple2};
use etmem_sdk::native::{EngineModRef, RRoundInfo, RScanResult, RTaskInfo};
use etmem_sdk::testing::FakeHost;
use etmem_sdk::testing::native::NativeHost;
use etmem_sdk::{Action, EngineError, PageRun, TaskInfo};
use std::path::PathBuf;

/// The cdylib cargo built next to this test binary (target/<profile>/deps).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    [
        deps.to_path_buf(),
        deps.parent().expect("profile dir").to_path_buf(),
    ]
    .iter()
    .map(|d| d.join("libidle_swap.so"))
    .find(|p| p.exists())
    .expect("libidle_swap.so built by cargo for this test")
}

#[test]
fn the_so_loads_and_plans() {
    let header = lib_header_from_path(&library()).expect("abi_stable header");
    let m: EngineModRef = header
        .init_root_module::<EngineModRef>()
        .expect("root module");
    let fake = FakeHost::new();
    let host = NativeHost(&fake);
    let h = || host.rhost();

    let mut engine = (m.configure())(RSlice::from_slice(&[]), h())
        .into_result()
        .expect("configure");
    let info = RTaskInfo::from(&TaskInfo::named("p", "db", "mysqld"));
    let bad = [Tuple2(RString::from("idle_rounds"), RString::from("x"))];
    let e = (m.new_task())(&mut engine, &info, RSlice::from_slice(&bad), h())
        .into_result()
        .expect_err("bad value");
    assert_eq!(
        EngineError::from(e).to_string(),
        "key `idle_rounds`: expected an integer in 1..=255, found `x`"
    );
    let one = [Tuple2(RString::from("idle_rounds"), RString::from("1"))];
    (m.new_task())(&mut engine, &info, RSlice::from_slice(&one), h())
        .into_result()
        .expect("new task");
    let scan = RScanResult {
        pid: 42,
        passes: 1,
        addrs: vec![0x1000, 0x2000].into(),
        lens: vec![1, 1].into(),
        counts: vec![0, 1].into(),
        sizes: vec![0, 0].into(),
    };
    let actions = (m.plan())(
        &mut engine,
        "db".into(),
        RRoundInfo {
            number: 1,
            passes: 1,
        },
        RSlice::from_slice(std::slice::from_ref(&scan)),
        h(),
    )
    .into_result()
    .expect("plan");
    assert_eq!(
        actions
            .iter()
            .map(|a| Action::try_from(a).expect("valid action"))
            .collect::<Vec<_>>(),
        vec![Action::SwapOut {
            pid: 42,
            runs: PageRun::of_base_pages(&[0x1000])
        }]
    );
    // The engine's log line came back through the native host.
    assert_eq!(
        fake.logs(),
        [(
            etmem_sdk::LogLevel::Debug,
            "task db round 1: swap out 1 pages".to_string()
        )]
    );
    let text = (m.command())(
        &mut engine,
        "showidle".into(),
        ROption::RSome("db".into()),
        h(),
    )
    .into_result()
    .expect("command");
    assert_eq!(
        text.as_str(),
        "task db: 0 pages tracked, 1 swapped out in total\n"
    );
    (m.drop_task())(&mut engine, "db".into())
        .into_result()
        .expect("drop");
}
