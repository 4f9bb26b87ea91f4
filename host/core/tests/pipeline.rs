//! The round pipeline with real capabilities on a FakeKernel: scans, validated actions,
//! quarantine of faulting engines, third-party file rules.

mod common;

use common::*;
use etmem_host::{Action as HostAction, ActionError, ActionHandler, DaemonOptions, Reply};
use etmem_kernel::PageRef;
use etmem_proto::OptResult;
use etmem_sdk::Action;
use std::time::Duration;

async fn secs(n: u64) {
    tokio::time::sleep(Duration::from_secs(n)).await;
}

fn err(r: Result<Reply, ActionError>) -> ActionError {
    r.expect_err("expected a failure")
}

fn page(addr: u64) -> PageRef {
    PageRef { addr, size: 4096 }
}

async fn started(
    m: &Machine,
    rec: &std::sync::Arc<Recorder>,
    options: DaemonOptions,
) -> etmem_host::DaemonHandle {
    let d = daemon_with(m, rec, options);
    d.add_config(&file(
        vec![project("p", 2, 5, 1)],
        vec![slide("p")],
        vec![slide_task("p", "t", pid("100"), 1)],
    ))
    .await
    .expect("add");
    d.start_project("p").await.expect("start");
    d
}

#[tokio::test(start_paused = true)]
async fn idle_pages_are_swapped_exactly() {
    let m = machine();
    let rec = Recorder::new();
    rec.set_behave("slide", Behave::SwapIdle);
    let _d = started(&m, &rec, DaemonOptions::default()).await;
    secs(9).await;
    let r = rec.rounds();
    assert_eq!(r.len(), 1, "{r:?}");
    // two passes: the soft-dirty page counts 2, the others 0; the child's page too
    assert_eq!(
        r[0].pages,
        vec![
            (100, 0x10000, 2),
            (100, 0x11000, 0),
            (100, 0x12000, 0),
            (100, 0x13000, 0),
            (101, 0x20000, 0)
        ]
    );
    let calls = m.fake.swap_calls();
    let got: Vec<(u32, Vec<PageRef>)> = calls.iter().map(|c| (c.pid, c.pages.clone())).collect();
    assert_eq!(
        got,
        vec![
            (100, vec![page(0x11000), page(0x12000), page(0x13000)]),
            (101, vec![page(0x20000)])
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn bad_actions_are_refused_and_never_executed() {
    let m = machine();
    let rec = Recorder::new();
    for bad in [
        // pid 200 is not a process of the task
        Action::SwapOut {
            pid: 200,
            runs: etmem_sdk::PageRun::of_base_pages(&[0x30000]),
        },
        // outside the VMAs
        Action::SwapOut {
            pid: 100,
            runs: etmem_sdk::PageRun::of_base_pages(&[0x50000]),
        },
        // misaligned
        Action::Migrate {
            pid: 100,
            runs: etmem_sdk::PageRun::of_base_pages(&[0x11001]),
            node: 1,
        },
    ] {
        rec.set_behave("slide", Behave::Actions(vec![bad]));
        let d = started(&m, &rec, DaemonOptions::default()).await;
        secs(9).await;
        d.shutdown().await;
    }
    assert_eq!(rec.rounds().len(), 3);
    assert!(m.fake.calls().is_empty(), "{:?}", m.fake.calls());
}

#[tokio::test(start_paused = true)]
async fn a_dry_run_moves_nothing_and_reports_what_a_real_run_then_moves() {
    let run = |dry_run: bool| async move {
        let m = machine();
        let rec = Recorder::new();
        rec.set_behave("slide", Behave::SwapIdle);
        let d = daemon_with(&m, &rec, DaemonOptions::default());
        d.add_config(&file(
            vec![etmem_config::ProjectConf {
                dry_run,
                ..project("p", 2, 5, 1)
            }],
            vec![slide("p")],
            vec![slide_task("p", "t", pid("100"), 1)],
        ))
        .await
        .expect("add");
        let before = d.stats("p").expect("stats");
        assert_eq!(before.len(), 1);
        assert_eq!((before[0].2.rounds, before[0].2.last.dry_run), (0, dry_run));
        d.start_project("p").await.expect("start");
        secs(9).await;
        let stats = d.stats("p").expect("stats");
        let swapped: u64 = m
            .fake
            .swap_calls()
            .iter()
            .flat_map(|c| c.pages.iter().map(|p| p.size))
            .sum();
        (stats, swapped)
    };
    let (dry, dry_swapped) = run(true).await;
    assert_eq!(dry_swapped, 0, "a dry run swaps nothing");
    let (real, real_swapped) = run(false).await;
    assert_eq!(
        real_swapped,
        4 * 4096,
        "the idle pages of pid 100 and its child"
    );
    let (engine, task, s) = &dry[0];
    assert_eq!((engine.as_str(), task.as_str()), ("slide", "t"));
    assert_eq!((s.rounds, s.last_round), (1, 1));
    assert!(s.last.dry_run && s.total.dry_run);
    assert_eq!(
        s.last.swap_bytes, real_swapped,
        "what the dry run would have moved"
    );
    assert!(s.last_error.is_none());
    assert_eq!(
        etmem_host::stats_text("p", &dry),
        "project p engine slide task t: 1 round(s), last round 1: dry run, would move: swap \
         out 16 KiB; over all rounds: swap out 16 KiB\n"
    );
    assert_eq!(
        etmem_host::stats_json("p", &dry),
        "{\"project\":\"p\",\"tasks\":[{\"engine\":\"slide\",\"task\":\"t\",\"rounds\":1,\
         \"last_round\":1,\"last\":{\"dry_run\":true,\"swap_bytes\":16384,\"migrate_bytes\":{}},\
         \"total\":{\"dry_run\":true,\"swap_bytes\":16384,\"migrate_bytes\":{}},\
         \"last_error\":null}]}\n"
    );
    let metrics = etmem_host::metrics_text(&[etmem_host::ProjectStats {
        project: "p\"q".into(),
        started: true,
        dry_run: true,
        tasks: dry.clone(),
    }]);
    for line in [
        "etmem_project_started{project=\"p\\\"q\",dry_run=\"true\"} 1",
        "etmem_task_rounds_total{project=\"p\\\"q\",engine=\"slide\",task=\"t\"} 1",
        "etmem_task_swapped_bytes_total{project=\"p\\\"q\",engine=\"slide\",task=\"t\",dry_run=\"true\"} 16384",
        "etmem_task_last_round_failed{project=\"p\\\"q\",engine=\"slide\",task=\"t\"} 0",
        "# TYPE etmem_task_migrated_bytes_total counter",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    let r = &real[0].2;
    assert!(!r.last.dry_run);
    assert_eq!(
        (r.rounds, r.last.swap_bytes, r.total.swap_bytes),
        (1, real_swapped, real_swapped)
    );
    assert_eq!(
        err(d_stats_of_nothing()).to_string(),
        "error: project is not exist: project `nope` does not exist"
    );
}

/// `stats` of a project that does not exist.
fn d_stats_of_nothing() -> Result<Reply, ActionError> {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon_with(&m, &rec, DaemonOptions::default());
    d.stats("nope").map(|_| Reply::default())
}

#[tokio::test(start_paused = true)]
async fn the_round_quota_caps_actions() {
    let m = machine();
    let rec = Recorder::new();
    rec.set_behave(
        "slide",
        Behave::Actions(vec![Action::SwapOut {
            pid: 100,
            runs: etmem_sdk::PageRun::of_base_pages(&[0x11000, 0x12000, 0x13000]),
        }]),
    );
    let _d = started(
        &m,
        &rec,
        DaemonOptions {
            round_quota_bytes: Some(8192),
        },
    )
    .await;
    secs(9).await;
    let calls = m.fake.swap_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].pages, vec![page(0x11000), page(0x12000)]);
    // the next round has its own quota
    secs(7).await;
    assert_eq!(m.fake.swap_calls().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_process_that_exits_mid_round_ends_it_quietly() {
    let m = machine();
    let rec = Recorder::new();
    rec.set_behave("slide", Behave::SwapIdle);
    let d = started(&m, &rec, DaemonOptions::default()).await;
    // round 1 starts at 5 s, its trackers start: the process leaves during the warm-up sleep
    secs(5).await;
    tokio::task::yield_now().await;
    m.fake.remove_process(100).expect("rm");
    secs(20).await;
    assert!(rec.rounds().is_empty(), "{:?}", rec.rounds());
    assert!(m.fake.swap_calls().is_empty());
    // it comes back: rounds go on
    let mut p = etmem_kernel::FakeProcess::new(100, "mysqld").anon(0x10000, 0x14000);
    p.start_time = 2000;
    m.fake.add_process(&p).expect("add");
    m.fake
        .set_pagemap(100, 0x10000, &[PRESENT, PRESENT, PRESENT, PRESENT])
        .expect("pagemap");
    secs(10).await;
    assert!(!rec.rounds().is_empty());
    assert!(!m.fake.swap_calls().is_empty());
    assert_eq!(d.show(Some("p")).output.matches("true").count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_engine_is_quarantined_and_others_keep_running() {
    let m = machine();
    let rec = Recorder::new();
    rec.set_behave("slide", Behave::Panic);
    let d = daemon(&m, &rec);
    d.add_config(&file(
        vec![project("p", 1, 5, 1), project("q", 1, 5, 1)],
        vec![slide("p"), cslide("q", &[(0, 1)], 1)],
        vec![
            slide_task("p", "t", pid("100"), 1),
            cslide_task("q", "vm", pid("200")),
        ],
    ))
    .await
    .expect("add");
    d.start_project("p").await.expect("start p");
    d.start_project("q").await.expect("start q");
    secs(8).await;
    let show = d.show(Some("p")).output;
    assert!(!show.contains("true"), "{show}");
    let text = "engine `slide` of project `p` failed: panicked: boom in plan of t; delete it \
                with obj del and add it again";
    let e = err(d
        .handle(HostAction::EngineCmd {
            project: "p".into(),
            engine: "slide".into(),
            cmd: "hello".into(),
            task: None,
            json: false,
        })
        .await);
    assert_eq!((e.result, e.detail.as_str()), (OptResult::InterErr, text));
    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![slide_task("p", "u", pid("200"), 1)],
        ))
        .await);
    assert!(e.detail.ends_with(text), "{}", e.detail);
    d.stop_project("p").await.expect("stop");
    let e = err(d.start_project("p").await);
    assert!(e.detail.ends_with(text), "{}", e.detail);
    // the other project goes on
    let before = rec.rounds().iter().filter(|r| r.project == "q").count();
    secs(20).await;
    let after = rec.rounds().iter().filter(|r| r.project == "q").count();
    assert!(after > before, "{before} {after}");
    // deleting the failed engine works, and it can be added again
    d.del_objects(&etmem_host::DelTargets {
        engines: vec![("p".into(), "slide".into())],
        ..Default::default()
    })
    .await
    .expect("del");
    rec.set_behave("slide", Behave::Nothing);
    d.add_config(&file(
        vec![],
        vec![slide("p")],
        vec![slide_task("p", "t", pid("100"), 1)],
    ))
    .await
    .expect("add again");
    d.start_project("p").await.expect("start again");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_command_quarantines() {
    let m = machine();
    let rec = Recorder::new();
    let d = started(&m, &rec, DaemonOptions::default()).await;
    let e = err(d
        .handle(HostAction::EngineCmd {
            project: "p".into(),
            engine: "slide".into(),
            cmd: "panic".into(),
            task: None,
            json: false,
        })
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail.contains("panicked: boom in command"),
        "{}",
        e.detail
    );
    assert!(!d.show(Some("p")).output.contains("true"));
}

mod thirdparty {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn lib(m: &Machine, name: &str, mode: u32) -> String {
        let path = m.dir.path().join(name);
        std::fs::write(&path, b"\0asm").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path.display().to_string()
    }

    async fn add(m: &Machine, libname: &str) -> ActionError {
        let rec = Recorder::new();
        let mut reg = recording_registry(&rec);
        reg.set_fetch_dir(m.dir.path());
        let d = etmem_host::Daemon::start(m.kernel.clone(), reg);
        let mut e = thirdparty("p", "mine");
        if let etmem_config::EngineKind::Thirdparty(t) = &mut e.kind {
            t.libname = libname.to_string();
        }
        err(d
            .add_config(&file(vec![project("p", 1, 5, 1)], vec![e], vec![]))
            .await)
    }

    #[tokio::test(start_paused = true)]
    async fn file_rules_have_exact_texts() {
        let m = machine();
        let dir = std::fs::canonicalize(m.dir.path()).expect("dir");
        let at = "/etc/etmem/test.ini: [engine] #0: engine `mine` in project `p`: ";
        let e = add(&m, "missing.so").await;
        assert_eq!(e.result, OptResult::InterErr);
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/missing.so`: cannot resolve it: No such file or \
                 directory (os error 2)",
                m.dir.path().display()
            )
        );
        lib(&m, "open.so", 0o755);
        let e = add(&m, "open.so").await;
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/open.so`: mode 0755, a native engine must have mode \
                 0500 or 0700",
                dir.display()
            )
        );
        let owned = lib(&m, "owned.so", 0o500);
        std::os::unix::fs::chown(&owned, Some(1000), Some(1000)).expect("chown");
        let e = add(&m, &owned).await;
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/owned.so`: owned by 1000:1000, must be owned by \
                 root:root",
                dir.display()
            )
        );
        lib(&m, "w.wasm", 0o664);
        let e = add(&m, "w.wasm").await;
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/w.wasm`: mode 0664, a wasm engine must not be \
                 writable by group or others",
                dir.display()
            )
        );
        lib(&m, "engine.py", 0o500);
        let e = add(&m, "engine.py").await;
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/engine.py`: not an engine file: engines end in `.so` \
                 (native) or `.wasm` (WebAssembly component)",
                dir.display()
            )
        );
        lib(&m, "ok.so", 0o700);
        let e = add(&m, "ok.so").await;
        assert_eq!(
            e.detail,
            format!(
                "{at}engine library `{}/ok.so`: this daemon has no loader for `.so` engines \
                 (loaders: none)",
                dir.display()
            )
        );
    }
}
