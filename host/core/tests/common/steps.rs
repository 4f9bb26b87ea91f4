//! The steps the daemon tests repeat: a daemon on a fresh machine, files of one kind of
//! section, adding a file that must succeed or fail, checking a failure's result and
//! detail, waiting on the paused clock. It holds no assertion of its own beyond the ones
//! a test asks for by calling it.

use super::{Machine, Recorder, daemon, file, slide};
use etmem_config::{ConfigFile, EngineConf, ProjectConf, TaskConf};
use etmem_host::{ActionError, DaemonHandle, DelTargets, Reply};
use etmem_proto::OptResult;
use std::sync::Arc;
use std::time::Duration;

/// A fresh [`super::machine`], a recorder and a daemon of recording engines on it. Keep
/// the machine alive for as long as the daemon runs.
pub fn daemon_up() -> (Machine, Arc<Recorder>, DaemonHandle) {
    let m = super::machine();
    let rec = Recorder::new();
    let d = daemon(&m, &rec);
    (m, rec, d)
}

/// Sleeps `n` seconds (of tokio's paused clock, in these tests).
pub async fn secs(n: u64) {
    tokio::time::sleep(Duration::from_secs(n)).await;
}

/// The failure `r` must be.
#[track_caller]
pub fn err(r: Result<Reply, ActionError>) -> ActionError {
    r.expect_err("expected a failure")
}

/// A file of project sections only.
pub fn projects_file(projects: Vec<ProjectConf>) -> ConfigFile {
    file(projects, Vec::new(), Vec::new())
}

/// A file of engine sections only.
pub fn engines_file(engines: Vec<EngineConf>) -> ConfigFile {
    file(Vec::new(), engines, Vec::new())
}

/// A file of task sections only.
pub fn tasks_file(tasks: Vec<TaskConf>) -> ConfigFile {
    file(Vec::new(), Vec::new(), tasks)
}

/// A file of `project`, a slide engine in it and `tasks`.
pub fn slide_file(project: ProjectConf, tasks: Vec<TaskConf>) -> ConfigFile {
    let engine = slide(&project.name);
    file(vec![project], vec![engine], tasks)
}

/// Adds `f`, which must succeed.
pub async fn add(d: &DaemonHandle, f: ConfigFile) {
    d.add_config(&f).await.expect("add");
}

/// Adds `f`, which must fail: the failure.
pub async fn add_fails(d: &DaemonHandle, f: ConfigFile) -> ActionError {
    d.add_config(&f)
        .await
        .expect_err("expected the add to fail")
}

/// Asserts that the detail of `e` contains `needle`.
#[track_caller]
pub fn assert_detail(e: &ActionError, needle: &str) {
    assert!(
        e.detail.contains(needle),
        "detail {:?} lacks {needle:?}",
        e.detail
    );
}

/// Asserts that `e` answered `result` with a detail containing each of `needles`.
#[track_caller]
pub fn assert_failure(e: &ActionError, result: OptResult, needles: &[&str]) {
    assert_eq!(e.result, result, "{}", e.detail);
    for n in needles {
        assert_detail(e, n);
    }
}

/// What deletes the tasks named (project, engine, task).
pub fn del_tasks(tasks: &[(&str, &str, &str)]) -> DelTargets {
    DelTargets {
        tasks: tasks
            .iter()
            .map(|(p, e, t)| (p.to_string(), e.to_string(), t.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// What deletes the engines named (project, engine).
pub fn del_engines(engines: &[(&str, &str)]) -> DelTargets {
    DelTargets {
        engines: engines
            .iter()
            .map(|(p, e)| (p.to_string(), e.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// What deletes the projects named.
pub fn del_projects(projects: &[&str]) -> DelTargets {
    DelTargets {
        projects: projects.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    }
}
