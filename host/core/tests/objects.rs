//! obj add / obj del / project show / engine commands through the daemon handle.

mod common;

use common::steps::*;
use common::*;
use etmem_host::{Action, ActionHandler, DaemonHandle, DelTargets};
use etmem_proto::OptResult;

async fn show_all(d: &DaemonHandle) -> String {
    d.handle(Action::ProjectShow { project: None })
        .await
        .expect("show never fails")
        .output
}

fn base() -> etmem_config::ConfigFile {
    slide_file(
        project("p", 2, 10, 3),
        vec![slide_task("p", "t", pid("100"), 2)],
    )
}

#[tokio::test(start_paused = true)]
async fn add_duplicates_and_missing_parents() {
    let (_m, _rec, d) = daemon_up();
    add(&d, base()).await;

    let e = add_fails(&d, projects_file(vec![project("p", 1, 1, 1)])).await;
    assert_failure(&e, OptResult::ProExisted, &["project `p` already exists"]);
    assert!(
        e.detail.starts_with("/etc/etmem/test.ini: [project] #0"),
        "{}",
        e.detail
    );

    let q = || project("q", 1, 1, 1);
    let u = || slide_task("p", "u", pid("100"), 1);
    // (file, answer, what its detail says)
    let cases = [
        (
            projects_file(vec![q(), q()]),
            OptResult::ProExisted,
            &["[project] #1", "defined twice"][..],
        ),
        (
            engines_file(vec![slide("nope")]),
            OptResult::ProNoExist,
            &["project `nope` does not exist"],
        ),
        (
            engines_file(vec![slide("p")]),
            OptResult::EngExisted,
            &["engine `slide` already exists in project `p`"],
        ),
        (
            file(vec![q()], vec![slide("q"), slide("q")], vec![]),
            OptResult::EngExisted,
            &[],
        ),
        (
            tasks_file(vec![slide_task("x", "t", pid("100"), 1)]),
            OptResult::ProNoExist,
            &[],
        ),
        (
            tasks_file(vec![cslide_task("p", "t", pid("200"))]),
            OptResult::EngNoExist,
            &["engine `cslide` does not exist in project `p`"],
        ),
        (
            tasks_file(vec![slide_task("p", "t", pid("100"), 1)]),
            OptResult::TaskExisted,
            &["task `t` already exists"],
        ),
        (
            tasks_file(vec![u(), u()]),
            OptResult::TaskExisted,
            &["[task] #1"],
        ),
        (file(vec![], vec![], vec![]), OptResult::Inval, &[]),
    ];
    for (f, result, needles) in cases {
        assert_failure(&add_fails(&d, f).await, result, needles);
    }

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
    let (_m, rec, d) = daemon_up();
    add(
        &d,
        projects_file(vec![project("p", 2, 10, 3), psi_project("ps")]),
    )
    .await;

    // T ≤ loop*3
    let e = add_fails(
        &d,
        file(
            vec![],
            vec![slide("p")],
            vec![slide_task("p", "t", pid("100"), 7)],
        ),
    )
    .await;
    assert_eq!(e.result, OptResult::InterErr);
    assert!(
        e.detail
            .ends_with("task `t` in project `p`: key `T`: expected 0..=6 (loop*3), found 7"),
        "{}",
        e.detail
    );

    // engine type vs scan_type (B7)
    let e = add_fails(&d, engines_file(vec![slide("ps")])).await;
    assert_failure(
        &e,
        OptResult::InterErr,
        &["a slide engine needs a project with scan_type=page, found scan_type=psi"],
    );
    let e = add_fails(&d, engines_file(vec![damon("p")])).await;
    assert_detail(&e, "needs a project with scan_type=region");

    // (engine, what the detail says): engines not implemented, then node_pair must cover
    // nodes 0 and 1 exactly once
    let cases = [
        (
            engine("ps", etmem_config::EngineKind::Psi),
            "the psi engine is not implemented yet",
        ),
        (
            thirdparty("p", "mine"),
            "engine library `/usr/lib/libmy.so`: cannot resolve it",
        ),
        (
            cslide("p", &[(0, 2)], 1),
            "key `node_pair`: node 2 is not a NUMA node of this machine (nodes 0,1)",
        ),
    ];
    for (engine, needle) in cases {
        let e = add_fails(&d, engines_file(vec![engine])).await;
        assert_failure(&e, OptResult::InterErr, &[needle]);
    }
    let e = add_fails(&d, engines_file(vec![cslide("p", &[], 1)])).await;
    assert_detail(&e, "node 0 of this machine is in no pair");

    // cslide task pid must resolve at add time
    let e = add_fails(
        &d,
        file(
            vec![],
            vec![cslide("p", &[(0, 1)], 1)],
            vec![cslide_task("p", "vm", pid("999"))],
        ),
    )
    .await;
    assert_failure(
        &e,
        OptResult::InterErr,
        &["cannot resolve type=pid value=999 at add time: no process 999"],
    );

    // hot_threshold clamped to loop*3+1, pid fixed at add, max_threads clamped
    let mut big = cslide_task("p", "vm", comm("qemu"));
    big.max_threads = 100;
    let mut zero = slide_task("p", "s", pid("100"), 1);
    zero.max_threads = 0;
    add(
        &d,
        file(
            vec![],
            vec![cslide("p", &[(1, 0)], 50), slide("p")],
            vec![big, zero],
        ),
    )
    .await;
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
    let (_m, _rec, d) = daemon_up();
    let with_t = |t| {
        slide_file(
            project("p", 1, 10, 1),
            vec![slide_task("p", "t", pid("100"), t)],
        )
    };
    // project and engine fine, the 3rd section (task) fails: nothing is added
    let e = add_fails(&d, with_t(4)).await;
    assert_eq!(e.result, OptResult::InterErr);
    assert_eq!(show_all(&d).await, "no project exists\n\n");
    // the same file, fixed, now adds
    add(&d, with_t(3)).await;
    assert!(show_all(&d).await.contains("t                slide"));
}

#[tokio::test(start_paused = true)]
async fn show_text_golden() {
    let (_m, _rec, d) = daemon_up();
    add(
        &d,
        file(
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
        ),
    )
    .await;
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
    add(&d, projects_file(vec![project("empty", 1, 1, 1)])).await;
    assert_eq!(
        d.show(Some("empty")).output,
        "project: empty\nnumber   type     value            name             engine           started \n"
    );
}

#[tokio::test(start_paused = true)]
async fn del_order_classes_and_last_failure() {
    let (_m, rec, d) = daemon_up();
    add(&d, base()).await;
    d.start_project("p").await.expect("start");

    let e = err(d.del_objects(&del_tasks(&[("p", "slide", "zz")])).await);
    assert_failure(
        &e,
        OptResult::TaskNoExist,
        &["task `zz` does not exist in engine `slide` of project `p`"],
    );
    let e = err(d.del_objects(&del_engines(&[("p", "cslide")])).await);
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
    assert_failure(
        &e,
        OptResult::ProNoExist,
        &["project `gone` does not exist"],
    );
    assert!(rec.events().contains(&"stop t".to_string()));
    assert!(!d.show(Some("p")).output.contains(" t "));

    d.del_objects(&del_projects(&["p"]))
        .await
        .expect("del project");
    assert_eq!(show_all(&d).await, "no project exists\n\n");
}

/// Adds slide tasks `ok` then `bad` to project `p` while the engine refuses to start
/// `bad`: the add fails, naming `bad`.
async fn add_with_refused_task(d: &DaemonHandle, rec: &Recorder, ok: &str, bad: &str) {
    *rec.fail_start.lock().expect("lock") = Some(bad.into());
    let e = add_fails(
        d,
        tasks_file(vec![
            slide_task("p", ok, pid("100"), 1),
            slide_task("p", bad, pid("100"), 1),
        ]),
    )
    .await;
    let why = format!("task `{bad}` in project `p`: task `{bad}` refuses");
    assert_failure(&e, OptResult::InterErr, &[&why]);
}

#[tokio::test(start_paused = true)]
async fn swap_flag_without_idle_pages_refuses_the_start_and_says_why() {
    // the fake machine's tracker is soft-dirty: it cannot limit a scan to the VMAs a
    // process marked with MADV_SWAPFLAG, and scanning them all would swap what it did not
    // offer
    let (_m, rec, d) = daemon_up();
    let mut t = slide_task("p", "t", pid("100"), 1);
    t.swap_flag = true;
    add(&d, slide_file(project("p", 1, 10, 1), vec![t])).await;
    let e = err(d.start_project("p").await);
    assert_failure(
        &e,
        OptResult::InterErr,
        &["task `t`", "access tracker is softdirty", "MADV_SWAPFLAG"],
    );
    secs(30).await;
    assert!(rec.rounds().is_empty(), "{:?}", rec.rounds());
    assert!(d.show(Some("p")).output.contains("false"));
}

#[tokio::test(start_paused = true)]
async fn start_stop_results_and_b6_rollback() {
    let (_m, rec, d) = daemon_up();
    let e = err(d.start_project("p").await);
    assert_eq!(e.result, OptResult::ProNoExist);
    let e = err(d.stop_project("p").await);
    assert_eq!(e.result, OptResult::ProNoExist);

    let t = |name| slide_task("p", name, pid("100"), 1);
    add(
        &d,
        slide_file(project("p", 1, 10, 1), vec![t("a"), t("bad"), t("c")]),
    )
    .await;
    let e = err(d.stop_project("p").await);
    assert_eq!(e.result, OptResult::ProStopped);

    // a task its engine refuses at add is not added; nothing of the file is
    add_with_refused_task(&d, &rec, "d", "bad2").await;
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
    let (_m, rec, d) = daemon_up();
    add(&d, base()).await;
    d.start_project("p").await.expect("start");
    add_with_refused_task(&d, &rec, "ok", "bad").await;
    let shown = d.show(Some("p")).output;
    assert!(
        !shown.contains(" ok ") && !shown.contains(" bad "),
        "{shown}"
    );
    assert!(rec.events().contains(&"drop ok".to_string()));
}

#[tokio::test(start_paused = true)]
async fn engine_command_checks_in_order() {
    let (_m, _rec, d) = daemon_up();
    let cmd = |p: &str, e: &str, c: &str, t: Option<&str>| Action::EngineCmd {
        project: p.into(),
        engine: e.into(),
        cmd: c.into(),
        task: t.map(Into::into),
        json: false,
    };
    for (project, result) in [("", OptResult::Inval), ("p", OptResult::ProNoExist)] {
        let e = err(d.handle(cmd(project, "slide", "x", None)).await);
        assert_eq!(e.result, result);
    }
    add(
        &d,
        file(
            vec![project("p", 1, 10, 1)],
            vec![slide("p"), cslide("p", &[(0, 1)], 2)],
            vec![cslide_task("p", "vm", pid("200"))],
        ),
    )
    .await;
    let e = err(d.handle(cmd("p", "slide", "x", None)).await);
    assert_failure(&e, OptResult::Inval, &["project `p` is not started"]);
    d.start_project("p").await.expect("start");
    for (engine, command, task, result) in [
        ("memdcd", "x", None, OptResult::EngNoExist),
        (
            "cslide",
            "showtaskpages",
            Some("nope"),
            OptResult::TaskNoExist,
        ),
    ] {
        let e = err(d.handle(cmd("p", engine, command, task)).await);
        assert_eq!(e.result, result);
    }
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
    // -o json: an engine that answers `hello -o json` as unknown gives no JSON for it
    let json = |c: &str, t: Option<&str>| Action::EngineCmd {
        project: "p".into(),
        engine: "cslide".into(),
        cmd: c.into(),
        task: t.map(Into::into),
        json: true,
    };
    let e = err(d.handle(json("hello", Some("vm"))).await);
    assert_failure(
        &e,
        OptResult::Inval,
        &["engine `cslide` of project `p` gives no JSON for command `hello`"],
    );
    // the checks before the engine call are the same
    let e = err(d.handle(json("hello", Some("nope"))).await);
    assert_eq!(e.result, OptResult::TaskNoExist);
    d.shutdown().await;
    assert_eq!(show_all(&d).await, "no project exists\n\n");
}

#[tokio::test(start_paused = true)]
async fn heatmap_finds_the_task_and_says_what_is_wrong() {
    use etmem_host::action::HeatmapFormat;
    let (_m, _rec, d) = daemon_up();
    let heat = |p: &str, e: Option<&str>, t: &str, format| Action::TaskHeatmap {
        project: p.into(),
        engine: e.map(Into::into),
        task: t.into(),
        format,
    };
    let e = err(d.handle(heat("p", None, "vm", HeatmapFormat::Text)).await);
    assert_eq!(e.result, OptResult::ProNoExist);
    add(
        &d,
        file(
            vec![project("p", 1, 10, 1)],
            vec![slide("p"), cslide("p", &[(0, 1)], 2)],
            vec![cslide_task("p", "vm", pid("200"))],
        ),
    )
    .await;
    // a project not started yet: no round, said so
    let out = d
        .handle(heat("p", None, "vm", HeatmapFormat::Text))
        .await
        .expect("heatmap");
    assert_eq!(
        out.output,
        "heatmap of project `p` engine `cslide` task `vm`: no round yet\n"
    );
    let out = d
        .handle(heat("p", Some("cslide"), "vm", HeatmapFormat::Json))
        .await
        .expect("heatmap json");
    assert!(
        out.output
            .starts_with(r#"{"project":"p","engine":"cslide","task":"vm","unit_bytes":4096,"columns":0,"bounds":[],"rows":[]}"#),
        "{}",
        out.output
    );
    let e = err(d.handle(heat("p", None, "nope", HeatmapFormat::Text)).await);
    assert_failure(
        &e,
        OptResult::TaskNoExist,
        &["task `nope` does not exist in project `p`"],
    );
    let e = err(d
        .handle(heat("p", Some("slide"), "vm", HeatmapFormat::Text))
        .await);
    assert_eq!(e.result, OptResult::TaskNoExist);
    let e = err(d
        .handle(heat("p", Some("memdcd"), "vm", HeatmapFormat::Text))
        .await);
    assert_eq!(e.result, OptResult::EngNoExist);
    d.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn obj_add_of_unreadable_file_fails_with_a_reason() {
    let (m, _rec, d) = daemon_up();
    let missing = m.dir.path().join("missing.ini").display().to_string();
    let e = err(d
        .handle(Action::ObjAdd {
            file: missing.clone(),
        })
        .await);
    assert_ne!(e.result, OptResult::Success);
    assert!(!e.detail.is_empty());
    let e = err(d.handle(Action::ObjDel { file: missing }).await);
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
    let (m, rec, d) = daemon_up();
    // the task (3rd section) breaks T ≤ loop*3: nothing is added
    let bad = write_conf(&m, "bad.ini", &PROJECT_INI.replace("T=2", "T=10"));
    let e = err(d.handle(Action::ObjAdd { file: bad }).await);
    assert_failure(
        &e,
        OptResult::InterErr,
        &["key `T`: expected 0..=9 (loop*3), found 10"],
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

#[tokio::test(start_paused = true)]
async fn show_as_json_lists_the_same_tasks_and_refuses_a_missing_project() {
    let (_m, _rec, d) = daemon_up();
    add(&d, base()).await;
    let json = |project: Option<&str>| {
        let d = d.clone();
        let project = project.map(str::to_string);
        async move { d.handle(Action::ProjectShowJson { project }).await }
    };
    let all = json(None).await.expect("json").output;
    assert_eq!(
        all,
        "{\"projects\":[{\"name\":\"p\",\"started\":false,\"dry_run\":false,\"tracker\":null,\
         \"tasks\":[{\"number\":1,\"type\":\"pid\",\"value\":\"100\",\"name\":\"t\",\
         \"engine\":\"slide\",\"started\":false}]}]}\n"
    );
    assert_eq!(json(Some("p")).await.expect("json").output, all);
    assert!(
        show_all(&d).await.contains("t "),
        "the text form is unchanged"
    );
    let e = json(Some("nope")).await.expect_err("missing");
    assert_failure(
        &e,
        OptResult::ProNoExist,
        &["project `nope` does not exist"],
    );
}
