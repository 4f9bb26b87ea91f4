//! The `etmemd` binary: the command-line matrix of C etmemd (spec §1.1) with exact stdout,
//! stderr and exit statuses; bind failure; SIGTERM/SIGINT/SIGPIPE; `-m` start-up.

use rustix::process::Signal;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_etmemd");

const USAGE: &str = "
usage of etmemd:
    etmemd [options]

options:
    -l|--log-level <log-level>  Log level
    -s|--socket <sockect name>  Socket name to listen to
    -m|--mode-systemctl         mode used to start(systemctl)
    -h|--help                   Show this message
";

const LEGEND: &str = "
[0] for debug level
[1] for info level
[2] for warning level
[3] for error level
default level is error

";

const FAILED: &str = "fail to parse parameters to start etmemd\n";

fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "etmemd-cli-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs etmemd with `args`, which must make it exit on its own (within 10 s).
fn run_to_exit(args: &[&str]) -> Ran {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn etmemd");
    let status = wait_for(&mut child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("etmemd {args:?} did not exit"));
    let out = child.wait_with_output().expect("output");
    Ran {
        status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True if an abstract unix socket named `@name` is in /proc/net/unix.
fn listening(name: &str) -> bool {
    let table = std::fs::read_to_string("/proc/net/unix").expect("/proc/net/unix");
    let want = format!("@{name}");
    table
        .lines()
        .any(|l| l.split_whitespace().nth(7) == Some(want.as_str()))
}

fn wait_listening(name: &str) {
    let t0 = Instant::now();
    while !listening(name) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "etmemd never listened on @{name}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon in the foreground, killed if the test fails before stopping it.
struct Daemon {
    child: Child,
    name: String,
}

impl Daemon {
    fn start(tag: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(tag, extra, &[])
    }

    /// Like [`Daemon::start`], with `env` added to etmemd's environment.
    fn start_with_env(tag: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let name = unique_name(tag);
        let mut args = extra.to_vec();
        args.extend(["-s", name.as_str()]);
        let child = Command::new(BIN)
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn etmemd");
        wait_listening(&name);
        Daemon { child, name }
    }

    fn signal(&self, sig: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        let pid = rustix::process::Pid::from_raw(pid).expect("child pid is not 0");
        rustix::process::kill_process(pid, sig).expect("kill");
    }

    /// Sends `sig` and returns the exit status and how long the exit took.
    fn stop_with(mut self, sig: Signal) -> (ExitStatus, Duration, String) {
        self.signal(sig);
        let t0 = Instant::now();
        let status = wait_for(&mut self.child, Duration::from_secs(10)).expect("daemon exits");
        let took = t0.elapsed();
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            use std::io::Read;
            let _ = out.read_to_string(&mut stdout);
        }
        (status, took, stdout)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn help_forms_print_the_usage_and_exit_0() {
    for args in [&["-h"][..], &["-help"], &["--help"], &["--he"]] {
        let r = run_to_exit(args);
        assert_eq!(r.status.code(), Some(0), "{args:?}");
        assert_eq!(r.stdout, USAGE, "{args:?}");
        assert_eq!(r.stderr, "", "{args:?}");
    }
}

#[test]
fn version_is_our_addition_as_the_sole_argument() {
    let ran = run_to_exit(&["--version"]);
    assert_eq!(ran.status.code(), Some(0), "stderr: {}", ran.stderr);
    assert_eq!(ran.stdout, etmemd::cli::version_text());
    assert!(
        ran.stdout.starts_with("etmemd (etmem-rs) "),
        "{}",
        ran.stdout
    );
    // with other options it is an unknown option, as in C
    let ran = run_to_exit(&["--version", "-s", "x"]);
    assert_eq!(ran.status.code(), Some(255), "stdout: {}", ran.stdout);
}

#[test]
fn valid_command_lines_serve_until_sigterm() {
    for extra in [&["-l", "0"][..], &[], &["--log-level=2"]] {
        let d = Daemon::start("ok", extra);
        let (status, took, stdout) = d.stop_with(Signal::TERM);
        assert_eq!(status.code(), Some(0), "{extra:?}");
        assert!(
            took < Duration::from_secs(1),
            "{extra:?}: exit took {took:?}"
        );
        assert_eq!(stdout, "", "{extra:?}");
    }
}

#[test]
fn sigint_exits_0_and_sigpipe_is_ignored() {
    let d = Daemon::start("sig", &[]);
    d.signal(Signal::PIPE);
    std::thread::sleep(Duration::from_millis(100));
    assert!(listening(&d.name), "SIGPIPE killed the daemon");
    let (status, took, _) = d.stop_with(Signal::INT);
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(1), "exit took {took:?}");
}

#[test]
fn invalid_command_lines_exit_255_with_cs_texts() {
    let u = USAGE;
    let f = FAILED;
    let long_name = "n".repeat(107);
    let cases: Vec<(Vec<&str>, String, String)> = vec![
        (
            vec![],
            format!("error: socket name of rpc to listen must be provided\n{u}{f}"),
            String::new(),
        ),
        (
            vec!["-d"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: invalid option -- 'd'\n"),
        ),
        (
            vec!["help"],
            format!("warn: useless parameters passed in\n{f}"),
            String::new(),
        ),
        (
            vec!["---help"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: unrecognized option '---help'\n"),
        ),
        (
            vec!["-l"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: option requires an argument -- 'l'\n"),
        ),
        (
            vec!["-l", "0"],
            format!("error: socket name of rpc to listen must be provided\n{u}{f}"),
            String::new(),
        ),
        (
            vec!["-l", "0", "-s"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: option requires an argument -- 's'\n"),
        ),
        (
            vec!["-l", "0", "1", "-s"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: option requires an argument -- 's'\n"),
        ),
        (
            vec!["-l", "0", "-l", "0"],
            format!("error: socket name of rpc to listen must be provided\n{u}{f}"),
            String::new(),
        ),
        (
            vec!["-s", "a", "-s", "b"],
            format!("error: parse sock parameter repeated\n{f}"),
            String::new(),
        ),
        (
            vec!["-l", "0", "-s", "x", "-m", "y"],
            format!("error: invalid parameters!\n{f}"),
            String::new(),
        ),
        (
            vec!["-l", "0", "-h", "-s", "x"],
            format!("{u}warn: useless parameters passed in\n{f}"),
            String::new(),
        ),
        (
            vec!["-l", "0", "-h"],
            format!("{u}warn: useless parameters passed in\n{f}"),
            String::new(),
        ),
        (
            vec!["-l", "0", "-d", "file"],
            format!("error: parse parameters failed\n{u}{f}"),
            format!("{BIN}: invalid option -- 'd'\n"),
        ),
        (
            vec!["-l", "4", "-s", "x"],
            format!("error: invalid log level [4]\n{LEGEND}{f}"),
            String::new(),
        ),
        // C stops at the bad level: glibc never gets to diagnose the later `-d`
        (
            vec!["-l", "9", "-d"],
            format!("error: invalid log level [9]\n{LEGEND}{f}"),
            String::new(),
        ),
        (vec!["-s", ""], f.to_owned(), String::new()),
    ];
    for (args, stdout, stderr) in cases {
        let r = run_to_exit(&args);
        assert_eq!(r.status.code(), Some(255), "{args:?}");
        assert_eq!(r.stdout, stdout, "{args:?}");
        assert_eq!(r.stderr, stderr, "{args:?}");
    }
    // syslog-only reasons in C; we mirror the log on stderr
    let r = run_to_exit(&["-s", &long_name]);
    assert_eq!(r.status.code(), Some(255));
    assert_eq!(r.stdout, FAILED);
    assert!(
        r.stderr
            .contains("length of socket name to listen should be less than 107"),
        "{}",
        r.stderr
    );
    let r = run_to_exit(&["-l", "zero", "-s", "x"]);
    assert_eq!(r.status.code(), Some(255));
    assert_eq!(r.stdout, FAILED);
    assert!(
        r.stderr.contains("invalid value, must be type of int."),
        "{}",
        r.stderr
    );
}

#[test]
fn a_taken_socket_name_fails_with_a_reason_and_status_1() {
    let first = Daemon::start("taken", &[]);
    let r = run_to_exit(&["-s", &first.name]);
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(
        r.stdout,
        format!(
            "fail to start rpc server of etmemd\nsocket bind @{} fail: Address already in use (os error 98)\n",
            first.name
        )
    );
    // the first daemon is unharmed
    assert!(listening(&first.name));
    let (status, _, _) = first.stop_with(Signal::TERM);
    assert_eq!(status.code(), Some(0));
}

/// Runs `etmemd -s NAME -m` with the pid file in a temporary directory; returns the
/// parent's status and the pid file's path.
fn start_systemd_mode(name: &str, dir: &tempfile::TempDir) -> (ExitStatus, std::path::PathBuf) {
    let pid_file = dir.path().join("etmemd.pid");
    let mut parent = Command::new(BIN)
        .args(["-l", "0", "-s", name, "-m"])
        .env("ETMEMD_PID_FILE", &pid_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn etmemd -m");
    let status = wait_for(&mut parent, Duration::from_secs(10)).expect("parent exits");
    (status, pid_file)
}

fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // reaped late by a container init: a zombie has exited all the same
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn systemd_mode_writes_the_pid_file_and_the_parent_exits_0_once_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique_name("systemd");
    let (status, pid_file) = start_systemd_mode(&name, &dir);
    assert_eq!(status.code(), Some(0));
    // the child already listens when the parent has exited
    assert!(listening(&name));
    let text = std::fs::read_to_string(&pid_file).expect("pid file");
    assert!(
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
        "pid file holds {text:?}"
    );
    let mode = std::fs::metadata(&pid_file)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pid: i32 = text.parse().expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("daemon runs");
    assert!(String::from_utf8_lossy(&cmdline).contains(&name));
    let rpid = rustix::process::Pid::from_raw(pid).expect("daemon pid is not 0");
    rustix::process::kill_process(rpid, Signal::TERM).expect("kill");
    let t0 = Instant::now();
    while !process_gone(pid) {
        assert!(t0.elapsed() < Duration::from_secs(1), "daemon still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!listening(&name));
}

#[test]
fn systemd_mode_parent_exits_1_when_the_child_cannot_bind() {
    let first = Daemon::start("systemd-taken", &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, pid_file) = start_systemd_mode(&first.name, &dir);
    assert_eq!(status.code(), Some(1));
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .parse()
        .expect("pid");
    let t0 = Instant::now();
    while !process_gone(pid) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "failed child still runs"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_binary_serves_the_daemon_core() {
    use std::io::{Read, Write};
    let d = Daemon::start("core", &[]);
    let addr = etmem_proto::socket::abstract_addr(&d.name).expect("addr");
    let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"proj_name nosuchproject file_name - cmd 2 eng_name - eng_cmd - task_name -")
        .expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("reply");
    assert!(
        reply.starts_with(b"error: project is not exist"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_eq!(reply.last(), Some(&0xFE));
    let (status, _, _) = d.stop_with(Signal::TERM);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_metrics_file_is_written_only_when_asked_and_a_bad_setting_does_not_stop_etmemd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("etmemd.prom");
    let start = |tag: &str, path: &str| {
        Daemon::start_with_env(
            tag,
            &[],
            &[
                ("ETMEMD_METRICS_FILE", path),
                ("ETMEMD_METRICS_INTERVAL", "1"),
            ],
        )
    };
    let d = start("metrics", file.to_str().expect("utf-8"));
    let t0 = Instant::now();
    while !file.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&file).expect("metrics file written");
    for family in [
        "# TYPE etmem_project_started gauge",
        "# TYPE etmem_task_rounds_total counter",
        "# TYPE etmem_task_swapped_bytes_total counter",
        "# TYPE etmem_task_migrated_bytes_total counter",
        "# TYPE etmem_task_last_round_failed gauge",
    ] {
        assert!(text.contains(family), "{family} missing from:\n{text}");
    }
    let (status, _, _) = d.stop_with(Signal::TERM);
    assert_eq!(status.code(), Some(0));
    // a relative path is refused (logged) and etmemd serves as usual
    let d = start("metrics-bad", "etmemd.prom");
    assert!(listening(&d.name));
    let (status, _, _) = d.stop_with(Signal::TERM);
    assert_eq!(status.code(), Some(0));
    assert!(!Path::new("etmemd.prom").exists());
}
