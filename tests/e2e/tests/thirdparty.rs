//! Third-party native engines through the real binaries: the idle-swap example and the
//! panicking fixture, installed root:root 0500 in the daemon's fetch directory
//! (`ETMEMD_FETCH_DIR`), added with `etmem obj add`, driven with `etmem engine`.

use etmem_e2e::{Daemon, install_engine, native_engine, write_config};
use std::path::Path;

/// A thirdparty config: project `proj` (page scan), engine `eng` from `libname`, and with
/// `task` a task `t` on pid 1 (never started here: see below).
fn conf(proj: &str, eng: &str, libname: &str, ops: &str, task: bool) -> String {
    let mut s = format!(
        "[project]\nname={proj}\nscan_type=page\nloop=1\ninterval=1\nsleep=1\n\n\
         [engine]\nname=thirdparty\nproject={proj}\neng_name={eng}\nlibname={libname}\n\
         ops_name={ops}\n"
    );
    if task {
        s.push_str(&format!(
            "\n[task]\nproject={proj}\nengine={eng}\nname=t\ntype=pid\nvalue=1\n"
        ));
    }
    s
}

fn fetch_dir_with(crates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    for c in crates {
        install_engine(&native_engine(c), dir.path());
    }
    dir
}

fn daemon(tag: &str, fetch: &Path) -> Daemon {
    Daemon::start(tag, &[("ETMEMD_FETCH_DIR", fetch)])
}

#[test]
fn idle_swap_commands_answer_through_etmem() {
    let fetch = fetch_dir_with(&["sdk/examples/idle-swap"]);
    let cdir = tempfile::tempdir().expect("temp dir");
    // No task: this machine's kernel offers no access tracker, so a project with tasks
    // cannot start here (the kernel lab starts those); an engine-level command needs none.
    let c = write_config(
        cdir.path(),
        "tp.ini",
        &conf("P", "E", "libidle_swap.so", "idle_swap", false),
    );
    let mut d = daemon("tp", fetch.path());
    d.etmem(&["obj", "add", "-f", c.to_str().expect("utf-8")])
        .expect_code(0);

    // C etmem: engine commands need a started project.
    let r = d.etmem(&["engine", "status", "-n", "P", "-e", "E"]);
    r.expect_code(186);
    assert!(
        r.stdout.starts_with("error: invalid parameters\n"),
        "{r:#?}"
    );
    d.etmem(&["project", "start", "-n", "P"]).expect_code(0);

    let r = d.etmem(&["engine", "status", "-n", "P", "-e", "E"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "idle-swap: 0 task(s) added\n");

    let r = d.etmem(&["engine", "showidle", "-n", "P", "-e", "E"]);
    r.expect_code(186);
    assert!(r.stdout.contains("showidle"), "{r:#?}");

    let r = d.etmem(&["engine", "nosuchcmd", "-n", "P", "-e", "E"]);
    r.expect_code(186);
    assert!(r.stdout.contains("nosuchcmd"), "{r:#?}");
    assert!(r.stdout.contains("etmem_client_recv failed."), "{r:#?}");
    d.etmem(&["project", "stop", "-n", "P"]).expect_code(0);
    d.etmem(&["obj", "del", "-f", c.to_str().expect("utf-8")])
        .expect_code(0);
    assert!(d.alive(), "daemon died: {}", d.log_text());
}

#[test]
fn a_wrong_ops_name_is_refused_with_what_the_library_exports() {
    let fetch = fetch_dir_with(&["sdk/examples/idle-swap"]);
    let cdir = tempfile::tempdir().expect("temp dir");
    let c = write_config(
        cdir.path(),
        "tp.ini",
        &conf("P", "E", "libidle_swap.so", "my_engine_ops", false),
    );
    let d = daemon("tp-ops", fetch.path());
    let r = d.etmem(&["obj", "add", "-f", c.to_str().expect("utf-8")]);
    r.expect_code(186);
    assert!(
        r.stdout
            .contains("exports no engine `my_engine_ops` (it exports `idle_swap`)"),
        "{r:#?}"
    );
    assert_eq!(
        d.etmem(&["project", "show"]).stdout,
        "no project exists\n\n"
    );
}

#[test]
fn a_panicking_engine_is_quarantined_and_other_projects_still_answer() {
    let fetch = fetch_dir_with(&["tests/fixtures/engines/native-panic"]);
    let cdir = tempfile::tempdir().expect("temp dir");
    let bad = write_config(
        cdir.path(),
        "bad.ini",
        &conf("B", "boomer", "libnative_panic.so", "native_panic", false),
    );
    let good = write_config(
        cdir.path(),
        "good.ini",
        &conf("G", "fine", "libnative_panic.so", "native_panic", false),
    );
    let mut d = daemon("tp-panic", fetch.path());
    for c in [&bad, &good] {
        d.etmem(&["obj", "add", "-f", c.to_str().expect("utf-8")])
            .expect_code(0);
    }
    for p in ["B", "G"] {
        d.etmem(&["project", "start", "-n", p]).expect_code(0);
    }
    let r = d.etmem(&["engine", "ping", "-n", "B", "-e", "boomer"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "pong\n");

    // The engine panics inside the library: the daemon survives and says why.
    let r = d.etmem(&["engine", "boom", "-n", "B", "-e", "boomer"]);
    r.expect_code(186);
    assert!(
        r.stdout.contains("native-panic fixture: boom requested"),
        "{r:#?}"
    );
    assert!(d.alive(), "daemon died: {}", d.log_text());
    // Later commands get the failure with its reason.
    let r = d.etmem(&["engine", "ping", "-n", "B", "-e", "boomer"]);
    r.expect_code(186);
    assert!(
        r.stdout.contains("native-panic fixture: boom requested"),
        "{r:#?}"
    );
    // Another project of the same daemon, same library, still answers.
    let r = d.etmem(&["project", "show", "-n", "G"]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("project: G\n"), "{r:#?}");
    let r = d.etmem(&["engine", "ping", "-n", "G", "-e", "fine"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "pong\n");
}
