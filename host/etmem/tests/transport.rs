//! The client against a fake daemon: a std `UnixListener` on a unique abstract name that
//! records the exact bytes of the request and answers with canned bytes (spec §2.5, §3.1,
//! §3.4). Proves the frames, the tag handling, and each transport failure's output.

mod common;

use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the fake daemon does after reading the request.
enum Script {
    /// Write each chunk with one `write`, waiting until the client has read the previous
    /// one so that it receives them separately, then close.
    Chunks(Vec<Vec<u8>>),
    /// Keep the connection open without a byte for this long, then close.
    Silent(Duration),
}

struct FakeDaemon {
    name: String,
    thread: JoinHandle<Vec<u8>>,
}

impl FakeDaemon {
    fn start(script: Script) -> FakeDaemon {
        let name = unique_name();
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract address");
        let listener = UnixListener::bind_addr(&addr).expect("bind fake daemon");
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let mut buf = [0u8; 4096];
            let n = conn.read(&mut buf).expect("read request");
            let request = buf[..n].to_vec();
            match script {
                Script::Chunks(chunks) => {
                    for (i, chunk) in chunks.iter().enumerate() {
                        if i > 0 {
                            wait_until_consumed(&conn);
                        }
                        // The client may already have stopped reading (a tag at a chunk
                        // end), so a failed write is part of some scenarios.
                        let _ = conn.write_all(chunk);
                    }
                }
                Script::Silent(d) => std::thread::sleep(d),
            }
            request
        });
        FakeDaemon { name, thread }
    }

    /// The exact bytes the client sent.
    fn request(self) -> Vec<u8> {
        self.thread.join().expect("fake daemon thread")
    }
}

/// Waits until the client has read everything written so far, so that the next write
/// arrives as a separate `recv` chunk (the test is about chunk boundaries).
fn wait_until_consumed(conn: &std::os::unix::net::UnixStream) {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut queued: libc::c_int = 0;
        // SAFETY: SIOCOUTQ writes one int (bytes not yet read by the peer) to `queued`.
        let rc = unsafe { libc::ioctl(conn.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        assert_eq!(rc, 0, "SIOCOUTQ");
        if queued == 0 || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn unique_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "etmem-client-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Runs `etmem` with `args` where `@` stands for the daemon's socket name.
fn run_against(daemon: &FakeDaemon, args: &[&str]) -> std::process::Output {
    let args: Vec<&str> = args
        .iter()
        .map(|a| if *a == "@" { daemon.name.as_str() } else { a })
        .collect();
    common::run(&args)
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ok() -> Script {
    Script::Chunks(vec![vec![0xFF]])
}

/// Each command's frame, byte for byte; the first three are spec §3.1's own examples.
#[test]
fn frames_are_byte_identical_to_c() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["project", "start", "-n", "test", "-s", "@"],
            "proj_name test file_name - cmd 2 eng_name - eng_cmd - task_name -",
        ),
        (
            &["obj", "add", "-f", "/etc/etmem/slide_conf.yaml", "-s", "@"],
            "proj_name - file_name /etc/etmem/slide_conf.yaml cmd 0 eng_name - eng_cmd - task_name -",
        ),
        (
            &[
                "engine",
                "showtaskpages",
                "-n",
                "test",
                "-e",
                "cslide",
                "-t",
                "t1",
                "-s",
                "@",
            ],
            "proj_name test file_name - cmd 5 eng_name cslide eng_cmd showtaskpages task_name t1",
        ),
        (
            &["obj", "del", "--file=rel/conf.ini", "--socket", "@"],
            "proj_name - file_name rel/conf.ini cmd 1 eng_name - eng_cmd - task_name -",
        ),
        (
            &["project", "stop", "--name", "p1", "-s", "@"],
            "proj_name p1 file_name - cmd 3 eng_name - eng_cmd - task_name -",
        ),
        (
            &["project", "show", "-s", "@"],
            "proj_name - file_name - cmd 4 eng_name - eng_cmd - task_name -",
        ),
        (
            &["project", "show", "-n", "p1", "-s", "@"],
            "proj_name p1 file_name - cmd 4 eng_name - eng_cmd - task_name -",
        ),
        (
            &[
                "engine",
                "showhostpages",
                "--proj_name",
                "vm",
                "--engine=cslide",
                "-s",
                "@",
            ],
            "proj_name vm file_name - cmd 5 eng_name cslide eng_cmd showhostpages task_name -",
        ),
        (
            // last value wins
            &[
                "project", "start", "-n", "a", "-n", "b", "-s", "x", "-s", "@",
            ],
            "proj_name b file_name - cmd 2 eng_name - eng_cmd - task_name -",
        ),
    ];
    for (args, frame) in cases {
        let daemon = FakeDaemon::start(ok());
        let out = run_against(&daemon, args);
        assert_eq!(stdout(&out), "", "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
        assert_eq!(common::code(&out), 0, "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&daemon.request()),
            *frame,
            "{args:?}"
        );
    }
}

#[test]
fn success_reply_prints_output_without_tag() {
    let text = "project: test, started: true\n  engine: slide\n";
    let mut reply = text.as_bytes().to_vec();
    reply.push(0xFF);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let out = run_against(&daemon, &["project", "show", "-s", "@"]);
    assert_eq!(stdout(&out), text);
    assert_eq!(common::code(&out), 0);
}

/// `project stats` (ours, wire command 6) against a daemon that does not know it, as a C
/// etmemd answers an unknown command: its text, then C's failure sequence, exit 186.
#[test]
fn project_stats_refused_by_a_c_daemon_says_so_and_exits_186() {
    let mut reply = b"error: invalid parameters\n".to_vec();
    reply.push(0xFE);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let out = run_against(&daemon, &["project", "stats", "-n", "p", "-s", "@"]);
    let expected = common::expand(
        "error: invalid parameters\n\netmem_client_recv failed.\netmem: error -70\n{{project}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 186);
    assert_eq!(
        daemon.request(),
        b"proj_name p file_name - cmd 6 eng_name - eng_cmd - task_name -"
    );
}

/// `engine <cmd> -o json` (ours, wire command 8) and `project heatmap` (ours, wire
/// command 9) against a C etmemd, which answers both as unknown commands: its text, then
/// C's failure sequence with the object's help, exit 186.
#[test]
fn engine_json_and_heatmap_refused_by_a_c_daemon_say_so_and_exit_186() {
    let cases: &[(&[&str], &str, &str)] = &[
        (
            &[
                "engine",
                "showtaskpages",
                "-n",
                "p",
                "-e",
                "cslide",
                "-t",
                "vm",
                "-o",
                "json",
                "-s",
                "@",
            ],
            "proj_name p file_name - cmd 8 eng_name cslide eng_cmd showtaskpages task_name vm",
            "{{engine}}",
        ),
        (
            &[
                "project", "heatmap", "-n", "p", "-t", "vm", "-o", "svg", "-s", "@",
            ],
            "proj_name p file_name - cmd 9 eng_name - eng_cmd svg task_name vm",
            "{{project}}",
        ),
    ];
    for (args, frame, help) in cases {
        let mut reply = b"error: invalid parameters\n".to_vec();
        reply.push(0xFE);
        let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
        let out = run_against(&daemon, args);
        let expected = common::expand(&format!(
            "error: invalid parameters\n\netmem_client_recv failed.\netmem: error -70\n{help}\n"
        ));
        assert_eq!(stdout(&out), expected, "{args:?}");
        assert_eq!(common::code(&out), 186, "{args:?}");
        assert_eq!(String::from_utf8_lossy(&daemon.request()), *frame);
    }
}

/// `project heatmap -f FILE`: the reply goes to FILE, nothing to stdout; a FILE that
/// cannot be written is `etmem: error -5`, exit 251; a refused request with `-f` prints the
/// daemon's text as any other.
#[test]
fn heatmap_to_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("h.svg");
    let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n";
    let mut reply = svg.as_bytes().to_vec();
    reply.push(0xFF);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let file = path.to_str().expect("utf-8 path");
    let out = run_against(
        &daemon,
        &[
            "project", "heatmap", "-n", "p", "-t", "t", "-o", "svg", "-f", file, "-s", "@",
        ],
    );
    assert_eq!(stdout(&out), "");
    assert_eq!(common::code(&out), 0);
    assert_eq!(std::fs::read_to_string(&path).expect("written"), svg);

    let mut reply = b"x".to_vec();
    reply.push(0xFF);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let bad = dir.path().join("no/such/dir/h.txt");
    let bad = bad.to_str().expect("utf-8 path");
    let out = run_against(
        &daemon,
        &[
            "project", "heatmap", "-n", "p", "-t", "t", "-f", bad, "-s", "@",
        ],
    );
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("write {bad} failed: No such file or directory")),
        "{text}"
    );
    assert!(text.contains("\netmem: error -5\n"), "{text}");
    assert_eq!(common::code(&out), 251);

    let mut reply = b"error: task is not exist\ntask `t` does not exist in project `p`".to_vec();
    reply.push(0xFE);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let out = run_against(
        &daemon,
        &[
            "project", "heatmap", "-n", "p", "-t", "t", "-f", file, "-s", "@",
        ],
    );
    assert!(
        stdout(&out).starts_with(
            "error: task is not exist\ntask `t` does not exist in project `p`\netmem_client_recv failed."
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(common::code(&out), 186);
}

#[test]
fn failure_reply_is_spec_2_5_sequence() {
    let mut reply = b"error: project is not exist".to_vec();
    reply.push(0xFE);
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let out = run_against(&daemon, &["project", "start", "-n", "nope", "-s", "@"]);
    let expected = common::expand(
        "error: project is not exist\netmem_client_recv failed.\netmem: error -70\n{{project}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 186);
}

#[test]
fn tag_byte_inside_a_chunk_does_not_end_the_reply() {
    let daemon = FakeDaemon::start(Script::Chunks(vec![
        b"abc\xFFdef\xFEghi\n".to_vec(),
        b"tail\n\xFF".to_vec(),
    ]));
    let out = run_against(&daemon, &["engine", "cmd", "-n", "p", "-e", "e", "-s", "@"]);
    assert_eq!(out.stdout, b"abc\xFFdef\xFEghi\ntail\n");
    assert_eq!(common::code(&out), 0);
}

#[test]
fn tag_byte_at_a_511_byte_boundary_ends_the_reply_early() {
    // C reads 511 bytes at a time and looks only at the last byte of each read (spec §3.4).
    let mut reply = vec![b'x'; 700];
    reply[510] = 0xFF;
    reply[699] = 0xFF;
    let daemon = FakeDaemon::start(Script::Chunks(vec![reply]));
    let out = run_against(&daemon, &["project", "show", "-s", "@"]);
    assert_eq!(out.stdout, vec![b'x'; 510]);
    assert_eq!(common::code(&out), 0);
}

#[test]
fn nul_in_a_chunk_cuts_that_chunk_like_printf() {
    let daemon = FakeDaemon::start(Script::Chunks(vec![
        b"seen\0hidden".to_vec(),
        b"again\n\xFF".to_vec(),
    ]));
    let out = run_against(&daemon, &["project", "show", "-s", "@"]);
    assert_eq!(stdout(&out), "seenagain\n");
    assert_eq!(common::code(&out), 0);
}

#[test]
fn close_without_reply_is_186() {
    let daemon = FakeDaemon::start(Script::Chunks(vec![]));
    let out = run_against(&daemon, &["obj", "add", "-f", "x.ini", "-s", "@"]);
    let expected = common::expand(
        "connection closed by peer\netmem_client_recv failed.\netmem: error -70\n{{obj}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 186);
    assert_eq!(
        daemon.request(),
        b"proj_name - file_name x.ini cmd 0 eng_name - eng_cmd - task_name -"
    );
}

#[test]
fn partial_output_then_close_prints_both() {
    let daemon = FakeDaemon::start(Script::Chunks(vec![b"half a reply".to_vec()]));
    let out = run_against(&daemon, &["project", "show", "-s", "@"]);
    let expected = common::expand(
        "half a replyconnection closed by peer\netmem_client_recv failed.\netmem: error -70\n{{project}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 186);
}

#[test]
fn no_daemon_is_positive_errno_111() {
    let name = unique_name();
    let out = common::run(&["project", "show", "-s", &name]);
    let expected = common::expand(
        "etmem connect to server failed: Connection refused\netmem_client_conn failed.\netmem: error 111\n{{project}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 111);
}

/// `obj add` with a file name that makes the frame exactly `len` bytes.
fn file_for_frame_len(len: usize) -> String {
    let base = "proj_name - file_name  cmd 0 eng_name - eng_cmd - task_name -".len();
    "f".repeat(len - base)
}

#[test]
fn request_of_513_bytes_is_refused_after_connect() {
    let file = file_for_frame_len(513);
    let frame = format!("proj_name - file_name {file} cmd 0 eng_name - eng_cmd - task_name -");
    assert_eq!(frame.len(), 513);
    let daemon = FakeDaemon::start(ok());
    let out = run_against(&daemon, &["obj", "add", "-f", &file, "-s", "@"]);
    let expected = common::expand(&format!(
        "send message {frame} too long, should not longer than 512\netmem_client_send failed.\netmem: error -1\n{{{{obj}}}}\n"
    ));
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 255);
    // connected (C connects first), but nothing was sent
    assert_eq!(daemon.request(), b"");
}

#[test]
fn request_of_512_bytes_is_sent_whole() {
    let file = file_for_frame_len(512);
    let daemon = FakeDaemon::start(ok());
    let out = run_against(&daemon, &["obj", "del", "-f", &file, "-s", "@"]);
    assert_eq!(common::code(&out), 0);
    let request = daemon.request();
    assert_eq!(request.len(), 512);
    assert_eq!(
        request,
        format!("proj_name - file_name {file} cmd 1 eng_name - eng_cmd - task_name -").as_bytes()
    );
}

#[test]
fn silent_daemon_times_out_after_10_seconds() {
    let daemon = FakeDaemon::start(Script::Silent(Duration::from_secs(13)));
    let start = Instant::now();
    let out = run_against(&daemon, &["project", "stop", "-n", "p", "-s", "@"]);
    let elapsed = start.elapsed();
    let expected = common::expand(
        "recv failed: Resource temporarily unavailable\netmem_client_recv failed.\netmem: error -70\n{{project}}\n",
    );
    assert_eq!(stdout(&out), expected);
    assert_eq!(common::code(&out), 186);
    assert!(
        elapsed >= Duration::from_millis(9500) && elapsed < Duration::from_secs(13),
        "timed out after {elapsed:?}"
    );
}
