//! obj add / obj del / project show / engine commands through the daemon handle.

mod common;

use common::*;
use etmem_host::{Action, ActionError, ActionHandler, DaemonHandle, DelTargets};
use etmem_proto::OptResult;

fn err(r: Result<etmem_host::Reply, ActionError>) -> ActionError {
    r.expect_err("expected a failure")
}

async fn show_all(d: &DaemonHandle) -> String {
    d.handle(Action::ProjectShow { project: None })
        .await
        .expect("show never fails")
        .output
}

fn base() -> etmem_config::ConfigFile {
    file(
        vec![project("p", 2, 10, 3)],
        vec![slide("p")],
        vec![slide_task("p", "t", pid("100"), 2)],
    )
}

#[tokio::test(start_paused = true)]
async fn add_duplicates_and_missing_parents() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    d.add_config(&base()).await.expect("add");

    let e = err(d
        .add_config(&file(vec![project("p", 1, 1, 1)], vec![], vec![]))
        .await);
    assert_eq!(e.result, OptResult::ProExisted);
    assert!(
        e.detail.contains("project `p` already exists"),
        "{}",
        e.detail
    );
    assert!(
        e.detail.starts_with("/etc/etmem/test.ini: [project] #0"),
        "{}",
        e.detail
    );

    let e = err(d
        .add_config(&file(
            vec![project("q", 1, 1, 1), project("q", 1, 1, 1)],
            vec![],
            vec![],
        ))
        .await);
    assert_eq!(e.result, OptResult::ProExisted);
    assert!(e.detail.contains("[project] #1"), "{}", e.detail);
    assert!(e.detail.contains("defined twice"), "{}", e.detail);

    let e = err(d
        .add_config(&file(vec![], vec![slide("nope")], vec![]))
        .await);
    assert_eq!(e.result, OptResult::ProNoExist);
    assert!(
        e.detail.contains("project `nope` does not exist"),
        "{}",
        e.detail
    );

    let e = err(d.add_config(&file(vec![], vec![slide("p")], vec![])).await);
    assert_eq!(e.result, OptResult::EngExisted);
    assert!(
        e.detail
            .contains("engine `slide` already exists in project `p`")
    );

    let e = err(d
        .add_config(&file(
            vec![project("q", 1, 1, 1)],
            vec![slide("q"), slide("q")],
            vec![],
        ))
        .await);
    assert_eq!(e.result, OptResult::EngExisted);

    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![slide_task("x", "t", pid("100"), 1)],
        ))
        .await);
    assert_eq!(e.result, OptResult::ProNoExist);

    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![cslide_task("p", "t", pid("200"))],
        ))
        .await);
    assert_eq!(e.result, OptResult::EngNoExist);
    assert!(
        e.detail
            .contains("engine `cslide` does not exist in project `p`")
    );

    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![slide_task("p", "t", pid("100"), 1)],
        ))
        .await);
    assert_eq!(e.result, OptResult::TaskExisted);
    assert!(e.detail.contains("task `t` already exists"), "{}", e.detail);

    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![
                slide_task("p", "u", pid("100"), 1),
                slide_task("p", "u", pid("100"), 1),
            ],
        ))
        .await);
    assert_eq!(e.result, OptResult::TaskExisted);
    assert!(e.detail.contains("[task] #1"), "{}", e.detail);

    let e = err(d.add_config(&file(vec![], vec![], vec![])).await);
    assert_eq!(e.result, OptResult::Inval);

    // None of the failures above left anything behind.
    assert_eq!(
        show_all(&d)
            .await
            .lines()
            .filter(|l| l.starts_with("project:"))
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn add_contextual_checks() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    d.add_config(&file(
        vec![project("p", 2, 10, 3), psi_project("ps")],
        vec![],
        vec![],
    ))
    .await
    .expect("add");

    // T ≤ loop*3
    let e = err(d
        .add_config(&file(
            vec![],
            vec![slide("p")],
            vec![slide_task("p", "t", pid("100"), 7)],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .ends_with("task `t` in project `p`: key `T`: expected 0..=6 (loop*3), found 7"),
        "{}",
        e.detail
    );

    // engine type vs scan_type (B7)
    let e = err(d.add_config(&file(vec![], vec![slide("ps")], vec![])).await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("a slide engine needs a project with scan_type=page, found scan_type=psi"),
        "{}",
        e.detail
    );
    let e = err(d.add_config(&file(vec![], vec![damon("p")], vec![])).await);
    assert!(
        e.detail.contains("needs a project with scan_type=region"),
        "{}",
        e.detail
    );

    // not implemented engines
    let e = err(d
        .add_config(&file(
            vec![],
            vec![engine("ps", etmem_config::EngineKind::Psi)],
            vec![],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail.contains("the psi engine is not implemented yet"),
        "{}",
        e.detail
    );
    let e = err(d
        .add_config(&file(vec![], vec![thirdparty("p", "mine")], vec![]))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("engine library `/usr/lib/libmy.so`: cannot resolve it"),
        "{}",
        e.detail
    );

    // node_pair must cover nodes 0 and 1 exactly once
    let e = err(d
        .add_config(&file(vec![], vec![cslide("p", &[(0, 2)], 1)], vec![]))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("key `node_pair`: node 2 is not a NUMA node of this machine (nodes 0,1)"),
        "{}",
        e.detail
    );
    let e = err(d
        .add_config(&file(vec![], vec![cslide("p", &[], 1)], vec![]))
        .await);
    assert!(
        e.detail.contains("node 0 of this machine is in no pair"),
        "{}",
        e.detail
    );

    // cslide task pid must resolve at add time
    let e = err(d
        .add_config(&file(
            vec![],
            vec![cslide("p", &[(0, 1)], 1)],
            vec![cslide_task("p", "vm", pid("999"))],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("cannot resolve type=pid value=999 at add time: no process 999"),
        "{}",
        e.detail
    );

    // hot_threshold clamped to loop*3+1, pid fixed at add, max_threads clamped
    let mut big = cslide_task("p", "vm", comm("qemu"));
    big.max_threads = 100;
    let mut zero = slide_task("p", "s", pid("100"), 1);
    zero.max_threads = 0;
    d.add_config(&file(
        vec![],
        vec![cslide("p", &[(1, 0)], 50), slide("p")],
        vec![big, zero],
    ))
    .await
    .expect("add");
    assert!(
        rec.events().contains(&"create cslide hot=7".to_string()),
        "{:?}",
        rec.events()
    );
    // the machine has 2 CPUs: 100 is clamped to 2*2+1, 0 to 1 (engines never see it)
    let vm = d.task_info("p", "cslide", "vm").expect("task vm");
    assert_eq!((vm.max_threads, vm.fixed_pid), (5, Some(200)));
    let s = d.task_info("p", "slide", "s").expect("task s");
    assert_eq!((s.max_threads, s.fixed_pid), (1, None));
    assert!(d.task_info("p", "slide", "vm").is_none());
    d.start_project("p").await.expect("start");
    let ev = rec.events();
    assert!(ev.contains(&"new vm".to_string()), "{ev:?}");
    assert!(ev.contains(&"new s".to_string()), "{ev:?}");
    assert_eq!(d.show(Some("p")).output.matches("true").count(), 2);
}

#[tokio::test(start_paused = true)]
async fn add_is_all_or_nothing() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    // project and engine fine, the 3rd section (task) fails: nothing is added
    let e = err(d
        .add_config(&file(
            vec![project("p", 1, 10, 1)],
            vec![slide("p")],
            vec![slide_task("p", "t", pid("100"), 4)],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert_eq!(show_all(&d).await, "no project exists\n\n");
    // the same file, fixed, now adds
    d.add_config(&file(
        vec![project("p", 1, 10, 1)],
        vec![slide("p")],
        vec![slide_task("p", "t", pid("100"), 3)],
    ))
    .await
    .expect("add");
    assert!(show_all(&d).await.contains("t                slide"));
}

#[tokio::test(start_paused = true)]
async fn show_text_golden() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    d.add_config(&file(
        vec![project("first", 1, 10, 1), project("second", 1, 10, 1)],
        vec![
            slide("first"),
            cslide("first", &[(0, 1)], 1),
            slide("second"),
        ],
        vec![
            slide_task("first", "a", pid("100"), 1),
            slide_task("first", "b", comm("mysqld"), 1),
            cslide_task("first", "vm", pid("200")),
            slide_task("second", "c", pid("101"), 1),
        ],
    ))
    .await
    .expect("add");
    d.start_project("second").await.expect("start");
    let want = "\
project: second
number   type     value            name             engine           started \n\
1        pid      101              c                slide            true    \n\
project: first
number   type     value            name             engine           started \n\
1        pid      200              vm               cslide           false   \n\
1        name     mysqld           b                slide            false   \n\
2        pid      100              a                slide            false   \n";
    assert_eq!(show_all(&d).await, want);
    let one = d.show(Some("second")).output;
    assert_eq!(
        one,
        want.lines()
            .take(3)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert_eq!(
        d.show(Some("zzz")).output,
        "project: project zzz is not existed\n\n"
    );
    // a project with no task: name and header only
    d.add_config(&file(vec![project("empty", 1, 1, 1)], vec![], vec![]))
        .await
        .expect("add");
    assert_eq!(
        d.show(Some("empty")).output,
        "project: empty\nnumber   type     value            name             engine           started \n"
    );
}

#[tokio::test(start_paused = true)]
async fn del_order_classes_and_last_failure() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    d.add_config(&base()).await.expect("add");
    d.start_project("p").await.expect("start");

    let e = err(d
        .del_objects(&DelTargets {
            tasks: vec![("p".into(), "slide".into(), "zz".into())],
            ..Default::default()
        })
        .await);
    assert_eq!(e.result, OptResult::TaskNoExist);
    assert!(
        e.detail
            .contains("task `zz` does not exist in engine `slide` of project `p`")
    );
    let e = err(d
        .del_objects(&DelTargets {
            engines: vec![("p".into(), "cslide".into())],
            ..Default::default()
        })
        .await);
    assert_eq!(e.result, OptResult::EngNoExist);

    // the task is deleted (stopped first), the failing engine delete goes on, and the last
    // failure (the missing project) is the answer
    let e = err(d
        .del_objects(&DelTargets {
            projects: vec!["gone".into()],
            engines: vec![("p".into(), "cslide".into())],
            tasks: vec![("p".into(), "slide".into(), "t".into())],
        })
        .await);
    assert_eq!(e.result, OptResult::ProNoExist);
    assert!(e.detail.contains("project `gone` does not exist"));
    assert!(rec.events().contains(&"stop t".to_string()));
    assert!(!d.show(Some("p")).output.contains(" t "));

    d.del_objects(&DelTargets {
        projects: vec!["p".into()],
        ..Default::default()
    })
    .await
    .expect("del project");
    assert_eq!(show_all(&d).await, "no project exists\n\n");
}

#[tokio::test(start_paused = true)]
async fn start_stop_results_and_b6_rollback() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    let e = err(d.start_project("p").await);
    assert_eq!(e.result, OptResult::ProNoExist);
    let e = err(d.stop_project("p").await);
    assert_eq!(e.result, OptResult::ProNoExist);

    d.add_config(&file(
        vec![project("p", 1, 10, 1)],
        vec![slide("p")],
        vec![
            slide_task("p", "a", pid("100"), 1),
            slide_task("p", "bad", pid("100"), 1),
            slide_task("p", "c", pid("100"), 1),
        ],
    ))
    .await
    .expect("add");
    let e = err(d.stop_project("p").await);
    assert_eq!(e.result, OptResult::ProStopped);

    // a task its engine refuses at add is not added; nothing of the file is
    *rec.fail_start.lock().expect("lock") = Some("bad2".into());
    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![
                slide_task("p", "d", pid("100"), 1),
                slide_task("p", "bad2", pid("100"), 1),
            ],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("task `bad2` in project `p`: task `bad2` refuses"),
        "{}",
        e.detail
    );
    assert!(
        rec.events().contains(&"drop d".to_string()),
        "{:?}",
        rec.events()
    );
    assert!(!d.show(Some("p")).output.contains(" d "));
    *rec.fail_start.lock().expect("lock") = None;
    d.start_project("p").await.expect("start");
    let e = err(d.start_project("p").await);
    assert_eq!(e.result, OptResult::ProStarted);
    assert_eq!(d.show(Some("p")).output.matches("true").count(), 3);
    d.stop_project("p").await.expect("stop");
    let e = err(d.stop_project("p").await);
    assert_eq!(e.result, OptResult::ProStopped);
}

#[tokio::test(start_paused = true)]
async fn task_that_cannot_start_in_started_project_is_not_added() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    d.add_config(&base()).await.expect("add");
    d.start_project("p").await.expect("start");
    *rec.fail_start.lock().expect("lock") = Some("bad".into());
    let e = err(d
        .add_config(&file(
            vec![],
            vec![],
            vec![
                slide_task("p", "ok", pid("100"), 1),
                slide_task("p", "bad", pid("100"), 1),
            ],
        ))
        .await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("task `bad` in project `p`: task `bad` refuses"),
        "{}",
        e.detail
    );
    let shown = d.show(Some("p")).output;
    assert!(
        !shown.contains(" ok ") && !shown.contains(" bad "),
        "{shown}"
    );
    assert!(rec.events().contains(&"drop ok".to_string()));
}

#[tokio::test(start_paused = true)]
async fn engine_command_checks_in_order() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    let cmd = |p: &str, e: &str, c: &str, t: Option<&str>| Action::EngineCmd {
        project: p.into(),
        engine: e.into(),
        cmd: c.into(),
        task: t.map(Into::into),
    };
    let e = err(d.handle(cmd("", "slide", "x", None)).await);
    assert_eq!(e.result, OptResult::Inval);
    let e = err(d.handle(cmd("p", "slide", "x", None)).await);
    assert_eq!(e.result, OptResult::ProNoExist);
    d.add_config(&file(
        vec![project("p", 1, 10, 1)],
        vec![slide("p"), cslide("p", &[(0, 1)], 2)],
        vec![cslide_task("p", "vm", pid("200"))],
    ))
    .await
    .expect("add");
    let e = err(d.handle(cmd("p", "slide", "x", None)).await);
    assert_eq!(e.result, OptResult::Inval);
    assert!(
        e.detail.contains("project `p` is not started"),
        "{}",
        e.detail
    );
    d.start_project("p").await.expect("start");
    let e = err(d.handle(cmd("p", "memdcd", "x", None)).await);
    assert_eq!(e.result, OptResult::EngNoExist);
    let e = err(d
        .handle(cmd("p", "cslide", "showtaskpages", Some("nope")))
        .await);
    assert_eq!(e.result, OptResult::TaskNoExist);
    let out = d
        .handle(cmd("p", "cslide", "hello", Some("vm")))
        .await
        .expect("hello");
    assert_eq!(out.output, "hello from cslide vm\n");
    let e = err(d.handle(cmd("p", "cslide", "frob", None)).await);
    assert_eq!(e.result, OptResult::Inval);
    assert_eq!(
        e.detail,
        "engine `cslide` of project `p`: unknown command `frob`"
    );
    d.shutdown().await;
    assert_eq!(show_all(&d).await, "no project exists\n\n");
}

#[tokio::test(start_paused = true)]
async fn obj_add_of_unreadable_file_fails_with_a_reason() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    let missing = m.dir.path().join("missing.ini");
    let e = err(d
        .handle(Action::ObjAdd {
            file: missing.display().to_string(),
        })
        .await);
    assert_ne!(e.result, OptResult::Success);
    assert!(!e.detail.is_empty());
    let e = err(d
        .handle(Action::ObjDel {
            file: missing.display().to_string(),
        })
        .await);
    assert_ne!(e.result, OptResult::Success);
}

fn write_conf(m: &Machine, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = m.dir.path().join(name);
    std::fs::write(&path, text).expect("write conf");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

const PROJECT_INI: &str = "[project]\nname=db\nloop=3\ninterval=60\nsleep=2\n\n\
[engine]\nname=slide\nproject=db\n\n\
[task]\nproject=db\nengine=slide\nname=bg\ntype=name\nvalue=mysqld\nT=2\n";

#[tokio::test(start_paused = true)]
async fn obj_add_and_del_of_real_files_through_actions() {
    let m = machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    // the task (3rd section) breaks T ≤ loop*3: nothing is added
    let bad = write_conf(&m, "bad.ini", &PROJECT_INI.replace("T=2", "T=10"));
    let e = err(d.handle(Action::ObjAdd { file: bad }).await);
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .contains("key `T`: expected 0..=9 (loop*3), found 10"),
        "{}",
        e.detail
    );
    assert_eq!(show_all(&d).await, "no project exists\n\n");

    let good = write_conf(&m, "db.ini", PROJECT_INI);
    d.handle(Action::ObjAdd { file: good.clone() })
        .await
        .expect("add");
    d.handle(Action::ProjectStart {
        project: "db".into(),
    })
    .await
    .expect("start");
    let task = write_conf(
        &m,
        "task.ini",
        "[task]\nproject=db\nengine=slide\nname=vm\ntype=pid\nvalue=200\nT=1\n",
    );
    d.handle(Action::ObjAdd { file: task.clone() })
        .await
        .expect("add task");
    assert_eq!(
        show_all(&d).await,
        "project: db\n\
         number   type     value            name             engine           started \n\
         1        pid      200              vm               slide            true    \n\
         2        name     mysqld           bg               slide            true    \n"
    );
    d.handle(Action::ObjDel { file: task })
        .await
        .expect("del task");
    d.handle(Action::ObjDel { file: good.clone() })
        .await
        .expect("del project");
    let ev = rec.events();
    assert!(ev.contains(&"stop vm".to_string()) && ev.contains(&"stop bg".to_string()));
    assert_eq!(show_all(&d).await, "no project exists\n\n");
    // everything is gone: the last failure (the project) is the answer
    let e = err(d.handle(Action::ObjDel { file: good }).await);
    assert_eq!(e.result, OptResult::ProNoExist);
    assert_eq!(e.detail, "project `db` does not exist");
}
