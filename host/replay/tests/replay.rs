//! etmem-replay against real recordings: the daemon core records a slide task on a fake
//! kernel (`record_scans`, `record_rounds`), then the file is replayed through slide and
//! compared with what the host decided and did; bad files give errors naming file and line;
//! a native `.so` engine replays too.

use etmem_host::record::{self, RecordedRound};
use etmem_host::{Daemon, EngineRegistry, Scheduling};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel};
use etmem_replay::{EngineChoice, Overrides, ReplayError, replay, round_text};
use etmem_sdk::Action;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const PRESENT: u64 = 1 << 63;
const SOFT_DIRTY: u64 = 1 << 55;

/// Pid 100 `mysqld`: pages 0x10000..0x18000, the first two written every round (soft-dirty
/// set again below), the other six idle.
fn fake() -> Arc<FakeKernel> {
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    fake.set_nodes(&[0], 1 << 20, 1 << 19).expect("nodes");
    fake.enable_soft_dirty().expect("soft-dirty");
    let mut p = FakeProcess::new(100, "mysqld").anon(0x10000, 0x18000);
    p.vm_rss_kb = 32;
    fake.add_process(&p).expect("100");
    let mut pm = vec![PRESENT; 8];
    pm[0] |= SOFT_DIRTY;
    pm[1] |= SOFT_DIRTY;
    fake.set_pagemap(100, 0x10000, &pm).expect("pagemap");
    fake
}

fn config(record: &Path, rounds: u32) -> etmem_config::ConfigFile {
    let text = format!(
        "[project]\nname=p\nloop=2\ninterval=5\nsleep=1\n\n\
         [engine]\nname=slide\nproject=p\n\n\
         [task]\nproject=p\nengine=slide\nname=db\ntype=pid\nvalue=100\nT=1\n\
         record_scans={}\nrecord_rounds={rounds}\n",
        record.display()
    );
    etmem_config::parse_for_add(&text, Path::new("/etc/etmem/rec.ini")).expect("config")
}

/// Runs the daemon core with the real slide on the fake kernel until `rounds` rounds are
/// recorded to `path` (and a few rounds more, to see that recording stops).
async fn record_slide(fake: &Arc<FakeKernel>, path: &Path, rounds: u32) {
    let kernel: Arc<dyn Kernel> = fake.clone();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_slide::Slide>("slide", Scheduling::PerTask);
    let d = Daemon::start(kernel, registry);
    d.add_config(&config(path, rounds)).await.expect("add");
    d.start_project("p").await.expect("start");
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if fake.swap_calls().len() > rounds as usize + 1 {
            break;
        }
    }
    d.stop_project("p").await.expect("stop");
}

#[tokio::test(start_paused = true)]
async fn a_recorded_slide_task_replays_to_the_same_actions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.scans");
    let fake = fake();
    record_slide(&fake, &path, 3).await;

    let rounds: Vec<RecordedRound> = record::read_file(&path).expect("the record");
    assert_eq!(
        rounds.iter().map(|r| r.round).collect::<Vec<_>>(),
        [1, 2, 3],
        "three rounds, then recording stops"
    );
    let first = &rounds[0];
    assert_eq!(
        (first.project.as_str(), first.engine.as_str()),
        ("p", "slide")
    );
    assert_eq!(
        (first.task.as_str(), first.target_value.as_str()),
        ("db", "100")
    );
    assert_eq!(first.passes, 2);
    assert_eq!(first.task_params, [("T".to_string(), "1".to_string())]);
    assert!(
        first
            .engine_params
            .contains(&("loop".to_string(), "2".to_string())),
        "{:?}",
        first.engine_params
    );
    assert_eq!(first.scans.len(), 1);
    assert_eq!(first.scans[0].pid, 100);
    // the record holds nothing of the host's own keys
    assert!(
        !first
            .task_params
            .iter()
            .any(|(k, _)| k.starts_with("record_"))
    );

    // what the host did in round 1: the pages slide chose, checked, swapped
    let swapped: Vec<u64> = fake.swap_calls()[0].pages.iter().map(|p| p.addr).collect();
    assert_eq!(
        swapped,
        (0x12000..0x18000).step_by(0x1000).collect::<Vec<_>>()
    );

    let replayed =
        replay(&EngineChoice::Slide, &rounds, &Overrides::default(), &path).expect("replay");
    assert_eq!(replayed.len(), 3);
    for r in &replayed {
        assert!(r.same_as_recorded(), "{}", round_text(r));
    }
    let actions = replayed[0].actions.as_ref().expect("round 1 planned");
    let planned: Vec<u64> = actions
        .iter()
        .filter(|a| matches!(a, Action::SwapOut { .. }))
        .flat_map(|a| a.runs().iter().flat_map(|r| r.addrs()).collect::<Vec<_>>())
        .collect();
    assert_eq!(planned, swapped, "replay plans what the host swapped");
    let text = round_text(&replayed[0]);
    assert!(
        text.starts_with("round 1 task `db`: 1 scan(s), ")
            && text.contains("swap out pid 100: 1 run(s), 0.0 MiB 0x12000-0x18000")
            && text.contains("as recorded"),
        "{text}"
    );

    // an override reaches the engine: T=0 swaps nothing
    let o = Overrides {
        task: vec![("T".into(), "0".into())],
        ..Overrides::default()
    };
    let quiet = replay(&EngineChoice::Slide, &rounds, &o, &path).expect("replay T=0");
    assert!(
        quiet.iter().all(|r| r.actions == Ok(Vec::new())),
        "{quiet:?}"
    );
    assert!(!quiet[0].same_as_recorded());
    // a key slide refuses is the engine's error, named
    let o = Overrides {
        task: vec![("T".into(), "lots".into())],
        ..Overrides::default()
    };
    let e = replay(&EngineChoice::Slide, &rounds, &o, &path).expect_err("bad T");
    assert!(
        e.to_string()
            .starts_with("engine `slide`: task `db`: new-task: "),
        "{e}"
    );
}

/// One valid line: pid 100, four idle pages at 0x1000, slide's `T=1`.
fn line_of(path: &Path) -> String {
    let mut r = RecordedRound {
        format: record::FORMAT.into(),
        version: record::VERSION,
        project: "p".into(),
        engine: "slide".into(),
        task: "db".into(),
        target_type: "pid".into(),
        target_value: "100".into(),
        round: 1,
        passes: 1,
        engine_params: vec![("loop".into(), "1".into())],
        task_params: vec![("T".into(), "1".into())],
        scans: Vec::new(),
        host: Vec::new(),
        actions: Vec::new(),
    };
    r.scans.push(record::RecordedScan {
        pid: 100,
        passes: 1,
        addrs: vec![0x1000],
        lens: vec![4],
        counts: vec![0],
        sizes: vec![0],
    });
    let _ = path;
    serde_line(&r)
}

fn serde_line(r: &RecordedRound) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("one");
    record::Recorder::new(&p, 1).write(r).expect("write");
    std::fs::read_to_string(&p)
        .expect("read")
        .trim_end()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn read_err(path: &Path) -> String {
    match record::read_file(path) {
        Ok(r) => panic!("read {}: {r:?}", path.display()),
        Err(e) => ReplayError::from(e).to_string(),
    }
}

#[test]
fn bad_files_are_refused_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = line_of(dir.path());
    let ok = write(dir.path(), "ok", &format!("{good}\n{good}\n"));
    assert_eq!(record::read_file(&ok).expect("good file").len(), 2);

    let cut = write(
        dir.path(),
        "cut",
        &format!("{good}\n{}", &good[..good.len() - 20]),
    );
    let e = read_err(&cut);
    assert!(
        e.starts_with(&format!(
            "record file `{}`: line 2: not a JSON object",
            cut.display()
        )),
        "{e}"
    );

    let v9 = write(
        dir.path(),
        "v9",
        &good.replace("\"version\":1", "\"version\":9"),
    );
    assert_eq!(
        read_err(&v9),
        format!(
            "record file `{}`: line 1: format `etmem-scans` version 9: this etmem reads \
             version 1 only",
            v9.display()
        )
    );

    let missing = dir.path().join("missing.scans");
    let e = read_err(&missing);
    assert!(
        e.starts_with(&format!(
            "record file `{}`: cannot read it: ",
            missing.display()
        )),
        "{e}"
    );

    let empty = write(dir.path(), "empty", "\n");
    assert!(read_err(&empty).ends_with("line 1: no recorded round in the file"));

    // a scan that is not one (runs out of order) is refused at replay, naming the line
    let bad_scan = good.replace("\"addrs\":[4096]", "\"addrs\":[4096,0]");
    let bad_scan = bad_scan.replace("\"lens\":[4]", "\"lens\":[4,1]");
    let bad_scan = bad_scan.replace("\"counts\":[0]", "\"counts\":[0,0]");
    let bad_scan = bad_scan.replace("\"sizes\":[0]", "\"sizes\":[0,0]");
    let p = write(dir.path(), "badscan", &format!("{good}\n{bad_scan}\n"));
    let rounds = record::read_file(&p).expect("parses");
    let e = replay(&EngineChoice::Slide, &rounds, &Overrides::default(), &p).expect_err("bad scan");
    assert!(
        e.to_string().starts_with(&format!(
            "record file `{}`: line 2: scan of pid 100:",
            p.display()
        )),
        "{e}"
    );
}

/// Builds the native-panic fixture's sibling, the SDK example `idle-swap`, as a `.so` with
/// scripts/build-engine (native only) into `out`.
fn build_idle_swap(out: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("engines");
    let st = std::process::Command::new(root.join("scripts/build-engine"))
        .arg(root.join("sdk/examples/idle-swap"))
        .arg(out)
        .env("BUILD_ENGINE_FORMS", "native")
        .env("ENGINE_TARGET_DIR", target)
        .status()
        .expect("run scripts/build-engine");
    assert!(st.success(), "build-engine failed");
    out.join("libidle_swap.so")
}

#[test]
fn a_native_engine_replays_a_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let so = build_idle_swap(dir.path());
    // four idle pages of pid 100, seen over three rounds
    let good = line_of(dir.path());
    let text: String = (1..=3)
        .map(|n| good.replace("\"round\":1", &format!("\"round\":{n}")) + "\n")
        .collect();
    let p = write(dir.path(), "idle.scans", &text);
    let rounds = record::read_file(&p).expect("rounds");
    let engine = EngineChoice::parse(so.to_str().expect("utf-8"), None).expect("a .so");
    let o = Overrides {
        engine: Vec::new(),
        task: vec![("idle_rounds".into(), "2".into())],
    };
    // slide's `T` is not an idle-swap key: the engine's refusal, named
    let e = replay(&engine, &rounds, &Overrides::default(), &p).expect_err("T is unknown");
    assert!(e.to_string().contains("new-task: unknown key `T`"), "{e}");
    let only_idle: Vec<RecordedRound> = rounds
        .iter()
        .cloned()
        .map(|mut r| {
            r.task_params.clear();
            r
        })
        .collect();
    let replayed = replay(&engine, &only_idle, &o, &p).expect("replay");
    let pages: Vec<u64> = replayed
        .iter()
        .map(|r| {
            r.actions
                .as_ref()
                .expect("planned")
                .iter()
                .map(Action::page_count)
                .sum()
        })
        .collect();
    // due after 2 idle rounds; swapped pages start counting again
    assert_eq!(pages, [0, 4, 0], "{replayed:?}");
    let wrong =
        EngineChoice::parse(so.to_str().expect("utf-8"), Some("other".into())).expect("a .so");
    let e = replay(&wrong, &only_idle, &o, &p).expect_err("no such engine");
    assert!(e.to_string().contains("exports no engine `other`"), "{e}");
}
