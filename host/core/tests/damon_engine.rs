//! The damon engine (plugins/damon, compiled in as etmemd does) through the daemon, on the
//! FakeKernel's DAMON tree: `conf/damon.ini` loads and starts (its task's process gets a
//! target and the pageout scheme), a second task added to the started project gets its
//! own, `project stop` removes our kdamond, deleting a started project does too (B13), a
//! dry run applies nothing, and there is no engine command (as C).

use etmem_host::{Action, ActionHandler, Daemon, DaemonHandle, EngineRegistry, Scheduling};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// Processes 300 `java` and 301 `db`, a free DAMON tree with room for 4 targets.
fn machine() -> Arc<FakeKernel> {
    let f = Arc::new(FakeKernel::new().expect("fake"));
    f.set_nodes(&[0], 1 << 20, 1 << 19).expect("nodes");
    for (pid, comm) in [(300, "java"), (301, "db")] {
        f.add_process(&FakeProcess::new(pid, comm).anon(0x10000, 0x30000))
            .expect("process");
    }
    f.add_damon(&[], 1).expect("damon");
    let ctx = f.damon_dir().join("0/contexts/0");
    for t in 0..4 {
        write(&ctx.join(format!("targets/{t}/pid_target")), "0\n");
        write(&ctx.join(format!("targets/{t}/regions/nr_regions")), "0\n");
        let sd = ctx.join(format!("schemes/{t}"));
        write(&sd.join("action"), "stat\n");
        for a in ["sz", "nr_accesses", "age"] {
            write(&sd.join(format!("access_pattern/{a}/min")), "0\n");
            write(&sd.join(format!("access_pattern/{a}/max")), "0\n");
        }
        write(&sd.join("filters/nr_filters"), "0\n");
        for file in ["type", "damon_target_idx", "matching"] {
            write(&sd.join(format!("filters/0/{file}")), "\n");
        }
    }
    f
}

fn daemon(f: &Arc<FakeKernel>) -> DaemonHandle {
    let mut r = EngineRegistry::builtin();
    r.register_builtin::<etmem_plugin_damon::Damon>("damon", Scheduling::Region);
    let kernel: Arc<dyn Kernel> = f.clone();
    Daemon::start(kernel, r)
}

/// `text` as a 0600 config file in `dir`.
fn conf(dir: &Path, name: &str, text: &str) -> String {
    let p: PathBuf = dir.join(name);
    std::fs::write(&p, text).expect("write conf");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p.to_str().expect("utf-8").to_owned()
}

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/damon.ini"))
        .expect("conf/damon.ini")
}

fn kd(f: &FakeKernel, rel: &str) -> String {
    std::fs::read_to_string(f.damon_dir().join(rel))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Waits (5 s at most) for `rel` under `kdamonds/` to read `want`.
async fn wait_for(f: &FakeKernel, rel: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while kd(f, rel) != want {
        assert!(
            Instant::now() < deadline,
            "{rel}: `{}`, expected `{want}`",
            kd(f, rel)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ok(d: &DaemonHandle, a: Action) -> String {
    let what = format!("{a:?}");
    d.handle(a)
        .await
        .unwrap_or_else(|e| panic!("{what}: {:?} {}", e.result, e.detail))
        .output
}

fn start(p: &str) -> Action {
    Action::ProjectStart { project: p.into() }
}

#[tokio::test]
async fn the_example_starts_applies_per_task_and_stop_and_delete_remove_the_kdamond() {
    let f = machine();
    let d = daemon(&f);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = conf(dir.path(), "damon.ini", &example());
    ok(&d, Action::ObjAdd { file: file.clone() }).await;
    let show = ok(&d, Action::ProjectShow { project: None }).await;
    assert!(show.contains("project: damon_demo"), "{show}");
    assert!(
        show.contains("name     java             java_app         damon            false"),
        "{show}"
    );
    assert_eq!(kd(&f, "nr_kdamonds"), "0", "nothing before start");

    ok(&d, start("damon_demo")).await;
    wait_for(&f, "0/state", "on").await;
    assert_eq!(kd(&f, "nr_kdamonds"), "1");
    assert_eq!(kd(&f, "0/contexts/0/targets/0/pid_target"), "300");
    assert_eq!(kd(&f, "0/contexts/0/schemes/0/action"), "pageout");
    let ap = "0/contexts/0/schemes/0/access_pattern";
    assert_eq!(kd(&f, &format!("{ap}/age/min")), "10");
    assert_eq!(kd(&f, &format!("{ap}/age/max")), "4294967295");
    assert_eq!(kd(&f, &format!("{ap}/sz/max")), "1073741824");
    let at = "0/contexts/0/monitoring_attrs";
    assert_eq!(kd(&f, &format!("{at}/intervals/sample_us")), "5000");
    assert_eq!(kd(&f, &format!("{at}/intervals/aggr_us")), "100000");
    assert_eq!(kd(&f, &format!("{at}/nr_regions/max")), "1000");
    let show = ok(&d, Action::ProjectShow { project: None }).await;
    assert!(show.contains("damon            true"), "{show}");

    // a second task added to the started project starts at once: its own target and scheme
    let more = conf(
        dir.path(),
        "more.ini",
        "[task]\nproject=damon_demo\nengine=damon\nname=db\ntype=name\nvalue=db\n",
    );
    ok(&d, Action::ObjAdd { file: more.clone() }).await;
    wait_for(&f, "0/state", "commit").await;
    assert_eq!(kd(&f, "0/contexts/0/targets/nr_targets"), "2");
    assert_eq!(kd(&f, "0/contexts/0/targets/1/pid_target"), "301");
    assert_eq!(kd(&f, "0/contexts/0/schemes/1/action"), "pageout");
    assert_eq!(
        kd(&f, "0/contexts/0/schemes/1/filters/0/damon_target_idx"),
        "1"
    );

    // no engine command (C's damon engine has none)
    let e = d
        .handle(Action::EngineCmd {
            project: "damon_demo".into(),
            engine: "damon".into(),
            cmd: "showtaskpages".into(),
            task: None,
            json: false,
        })
        .await
        .expect_err("no command");
    assert_eq!(e.result, etmem_proto::OptResult::Inval, "{}", e.detail);

    // stop: the kdamond goes
    ok(
        &d,
        Action::ProjectStop {
            project: "damon_demo".into(),
        },
    )
    .await;
    assert_eq!(kd(&f, "nr_kdamonds"), "0", "removed on stop");
    assert_eq!(kd(&f, "0/state"), "off");

    // start again, then delete the started project (B13): the kdamond goes too
    ok(&d, start("damon_demo")).await;
    // both tasks' targets: `on` for the first, `commit` for the second
    wait_for(&f, "0/state", "commit").await;
    assert_eq!(kd(&f, "0/contexts/0/targets/nr_targets"), "2");
    ok(&d, Action::ObjDel { file: more }).await;
    assert_eq!(
        kd(&f, "0/contexts/0/targets/nr_targets"),
        "1",
        "the deleted task's target goes"
    );
    ok(&d, Action::ObjDel { file }).await;
    assert_eq!(kd(&f, "nr_kdamonds"), "0", "removed on delete");
    assert_eq!(kd(&f, "0/contexts/nr_contexts"), "0");
    d.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_applies_nothing() {
    let f = machine();
    let d = daemon(&f);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = example().replace("scan_type=region\n", "scan_type=region\ndry_run=yes\n");
    assert!(text.contains("dry_run=yes"));
    let file = conf(dir.path(), "dry.ini", &text);
    ok(&d, Action::ObjAdd { file }).await;
    ok(&d, start("damon_demo")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kd(&f, "nr_kdamonds"),
        "0",
        "a dry run writes nothing to DAMON"
    );
    ok(
        &d,
        Action::ProjectStop {
            project: "damon_demo".into(),
        },
    )
    .await;
    d.shutdown().await;
}

#[tokio::test]
async fn a_region_project_takes_only_the_damon_engine() {
    let f = machine();
    let d = daemon(&f);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}\n[engine]\nname=thirdparty\nproject=damon_demo\neng_name=mine\nlibname=/usr/lib/x.so\nops_name=x\n",
        example()
    );
    let file = conf(dir.path(), "tp.ini", &text);
    let e = d
        .handle(Action::ObjAdd { file })
        .await
        .expect_err("refused");
    assert!(
        e.detail
            .contains("scan_type=region takes only the damon engine"),
        "{}",
        e.detail
    );
    d.shutdown().await;
}
