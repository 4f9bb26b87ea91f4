//! Third-party WebAssembly engines through the real binaries: the idle-swap example and the
//! trapping fixture, built as components by `scripts/build-engine`, installed root:root 0444
//! in the daemon's fetch directory (`ETMEMD_FETCH_DIR`), added with `etmem obj add`, driven
//! with `etmem engine`. The daemon's compile cache (`ETMEMD_WASM_CACHE`) is a temporary
//! directory of each test.
//!
//! Projects are started without tasks: this machine's kernel offers no access tracker, so a
//! project with tasks cannot start here (the kernel lab starts those); engine-level commands
//! need none.

use etmem_e2e::{Daemon, install_wasm, wasm_engine, write_config};
use std::path::Path;
use std::time::Instant;

/// A task-less thirdparty config: project `proj` (page scan), engine `eng` from `libname`.
fn conf(proj: &str, eng: &str, libname: &str, ops: &str) -> String {
    format!(
        "[project]\nname={proj}\nscan_type=page\nloop=1\ninterval=1\nsleep=1\n\n\
         [engine]\nname=thirdparty\nproject={proj}\neng_name={eng}\nlibname={libname}\n\
         ops_name={ops}\n"
    )
}

/// A fetch dir (0755) holding each `(crate, installed name)` built as a component.
fn fetch_dir_with(engines: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    for (c, name) in engines {
        install_wasm(&wasm_engine(c), dir.path(), name);
    }
    dir
}

/// A daemon fetching engines from `fetch`, its wasm compile cache under `cache`.
fn daemon(tag: &str, fetch: &Path, cache: &Path) -> Daemon {
    Daemon::start(
        tag,
        &[
            ("ETMEMD_FETCH_DIR", fetch),
            ("ETMEMD_WASM_CACHE", &cache.join("wasm")),
        ],
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn idle_swap_wasm_commands_answer_through_etmem() {
    let fetch = fetch_dir_with(&[("sdk/examples/idle-swap", "idle_swap.wasm")]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let c = write_config(
        tmp.path(),
        "tp.ini",
        &conf("P", "E", "idle_swap.wasm", "idle_swap"),
    );
    let mut d = daemon("wasm", fetch.path(), tmp.path());
    let t0 = Instant::now();
    d.etmem(&["obj", "add", "-f", s(&c)]).expect_code(0);
    eprintln!("obj add of idle_swap.wasm (compile): {:?}", t0.elapsed());

    // The compiled component went to the cache directory the daemon was given.
    let cached: Vec<_> = std::fs::read_dir(tmp.path().join("wasm"))
        .expect("cache dir created")
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");

    d.etmem(&["project", "start", "-n", "P"]).expect_code(0);
    let r = d.etmem(&["engine", "status", "-n", "P", "-e", "E"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "idle-swap: 0 task(s) added\n");

    let r = d.etmem(&["engine", "nosuchcmd", "-n", "P", "-e", "E"]);
    r.expect_code(186);
    assert!(r.stdout.contains("nosuchcmd"), "{r:#?}");
    assert!(r.stdout.contains("etmem_client_recv failed."), "{r:#?}");
    // An engine error is a value: the engine still answers.
    d.etmem(&["engine", "status", "-n", "P", "-e", "E"])
        .expect_code(0);

    d.etmem(&["project", "stop", "-n", "P"]).expect_code(0);
    d.etmem(&["obj", "del", "-f", s(&c)]).expect_code(0);
    // Added again: from the daemon's in-memory cache this time.
    let t0 = Instant::now();
    d.etmem(&["obj", "add", "-f", s(&c)]).expect_code(0);
    eprintln!("obj add of idle_swap.wasm (cached): {:?}", t0.elapsed());
    assert!(d.alive(), "daemon died: {}", d.log_text());
}

#[test]
fn a_wasm_ops_name_other_than_the_file_stem_is_refused() {
    let fetch = fetch_dir_with(&[("sdk/examples/idle-swap", "idle_swap.wasm")]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let c = write_config(
        tmp.path(),
        "tp.ini",
        &conf("P", "E", "idle_swap.wasm", "my_engine_ops"),
    );
    let d = daemon("wasm-ops", fetch.path(), tmp.path());
    let r = d.etmem(&["obj", "add", "-f", s(&c)]);
    r.expect_code(186);
    assert!(
        r.stdout.contains(
            "exports no engine `my_engine_ops` (a wasm component exports one engine, named \
             after its file: `idle_swap`)"
        ),
        "{r:#?}"
    );
    assert_eq!(
        d.etmem(&["project", "show"]).stdout,
        "no project exists\n\n"
    );
}

#[test]
fn a_trapping_wasm_engine_is_quarantined_and_other_projects_still_answer() {
    let fetch = fetch_dir_with(&[("tests/fixtures/engines/wasm-trap", "wasm_trap.wasm")]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let bad = write_config(
        tmp.path(),
        "bad.ini",
        &conf("B", "trapper", "wasm_trap.wasm", "wasm_trap"),
    );
    let good = write_config(
        tmp.path(),
        "good.ini",
        &conf("G", "fine", "wasm_trap.wasm", "wasm_trap"),
    );
    let mut d = daemon("wasm-trap", fetch.path(), tmp.path());
    for c in [&bad, &good] {
        d.etmem(&["obj", "add", "-f", s(c)]).expect_code(0);
    }
    for p in ["B", "G"] {
        d.etmem(&["project", "start", "-n", p]).expect_code(0);
    }
    let r = d.etmem(&["engine", "ping", "-n", "B", "-e", "trapper"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "pong\n");

    // The guest panics (an `unreachable` trap in wasm): the daemon survives and says why.
    let r = d.etmem(&["engine", "trap", "-n", "B", "-e", "trapper"]);
    r.expect_code(186);
    let reason = "engine `trapper` of project `B` failed: wasm trap: wasm `unreachable` \
                  instruction executed";
    assert!(r.stdout.contains(reason), "{r:#?}");
    assert!(d.alive(), "daemon died: {}", d.log_text());
    // The engine is quarantined: the next command gets the failure with its reason.
    let r = d.etmem(&["engine", "ping", "-n", "B", "-e", "trapper"]);
    r.expect_code(186);
    assert!(r.stdout.contains(reason), "{r:#?}");
    // Another project of the same daemon, same component, still answers.
    let r = d.etmem(&["project", "show", "-n", "G"]);
    r.expect_code(0);
    assert!(r.stdout.starts_with("project: G\n"), "{r:#?}");
    let r = d.etmem(&["engine", "ping", "-n", "G", "-e", "fine"]);
    r.expect_code(0);
    assert_eq!(r.stdout, "pong\n");
    assert!(d.alive(), "daemon died: {}", d.log_text());
}
