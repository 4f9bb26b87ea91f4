//! The RPC server on a real abstract socket, with a stand-in handler: exact reply bytes,
//! malformed and oversized frames, silent and vanishing clients, peer credentials, and
//! concurrency.

use etmem_host::{Action, ActionError, ActionHandler, Reply};
use etmem_proto::OptResult;
use etmem_proto::socket::abstract_addr;
use etmemd::server::{ServerConfig, bind, serve};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIG_REPLY: usize = 8 << 20;

/// Answers from the action alone, so each client can check it got its own reply.
#[derive(Default)]
struct EchoHandler {
    calls: AtomicUsize,
}

impl ActionHandler for EchoHandler {
    async fn handle(&self, action: Action) -> Result<Reply, ActionError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match action {
            Action::ProjectStart { project } => Ok(Reply {
                output: format!("started {project}\n"),
            }),
            Action::ProjectStop { project } => Err(ActionError::new(
                OptResult::ProStopped,
                format!("project `{project}` is not started"),
            )),
            Action::ProjectShow { project } if project.as_deref() == Some("big") => Ok(Reply {
                output: "x".repeat(BIG_REPLY),
            }),
            Action::ProjectShow { project } => Ok(Reply {
                output: format!("show {}\n", project.unwrap_or_default()),
            }),
            Action::ObjAdd { file } | Action::ObjDel { file } => Ok(Reply {
                output: format!("file {file}\n"),
            }),
            Action::EngineCmd { project, .. } => Ok(Reply {
                output: format!("engine {project}\n"),
            }),
            Action::TaskHeatmap { task, .. } => Ok(Reply {
                output: format!("heatmap {task}\n"),
            }),
            Action::ProjectShowJson { .. } => Ok(Reply {
                output: "{}\n".to_string(),
            }),
            Action::ProjectStats { project, .. } => Ok(Reply {
                output: format!("stats {project}\n"),
            }),
        }
    }
}

struct TestServer {
    name: String,
    handler: Arc<EchoHandler>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "etmemd-rpc-test-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn start(tag: &str, config: ServerConfig) -> TestServer {
    let name = unique_name(tag);
    let std_listener = bind(&name).expect("bind test socket");
    let listener = tokio::net::UnixListener::from_std(std_listener).expect("tokio listener");
    let handler = Arc::new(EchoHandler::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, handler.clone(), config, async {
        let _ = rx.await;
    }));
    TestServer {
        name,
        handler,
        stop: Some(tx),
        done,
    }
}

impl TestServer {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(2), self.done)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task");
    }
}

fn connect(name: &str) -> UnixStream {
    let addr = abstract_addr(name).expect("addr");
    let s = UnixStream::connect_addr(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// Sends `frame` in one write and reads until EOF. A reset (the server closed with our
/// bytes unread) counts as the end too: the C client sees no reply either way.
fn exchange(name: &str, frame: &[u8]) -> Vec<u8> {
    let mut s = connect(name);
    let _ = s.write_all(frame);
    read_all(&mut s)
}

fn read_all(s: &mut UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

fn frame(proj: &str, cmd: u32) -> Vec<u8> {
    format!("proj_name {proj} file_name - cmd {cmd} eng_name - eng_cmd - task_name -").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_bytes_are_output_text_detail_tag() {
    let srv = start("bytes", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        assert_eq!(exchange(&n, &frame("p1", 2)), b"started p1\n\xff");
        assert_eq!(
            exchange(&n, &frame("p1", 3)),
            b"error: project has been stopped\nproject `p1` is not started\xfe"
        );
        assert_eq!(
            exchange(&n, b"proj_name - file_name /etc/etmem/a.ini cmd 0 eng_name - eng_cmd - task_name -"),
            b"file /etc/etmem/a.ini\n\xff"
        );
        assert_eq!(
            exchange(&n, b"proj_name - file_name - cmd 0 eng_name - eng_cmd - task_name -"),
            b"error: invalid parameters\nobj add: config file is missing (field `file_name` was sent as `-`)\xfe"
        );
        assert_eq!(
            exchange(&n, &frame("p1", 17)),
            b"error: invalid parameters\nrequest: unknown command number 17, expected 0..=9\xfe"
        );
    })
    .await;
    // the two codec errors never reached the handler
    assert_eq!(srv.handler.calls.load(Ordering::SeqCst), 3);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_frames_get_no_reply_and_serving_goes_on() {
    let srv = start("bad", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        // 513 bytes: one more than C's buffer
        let mut long = frame("p", 2);
        long.resize(513, b'x');
        assert_eq!(exchange(&n, &long), b"");
        let mut very_long = frame("p", 2);
        very_long.resize(4096, b'y');
        assert_eq!(exchange(&n, &very_long), b"");
        for bad in [
            &b"hello world"[..],
            b"proj_name -x file_name - cmd 2 eng_name - eng_cmd - task_name -",
            b"proj_name p file_name - cmd 2x eng_name - eng_cmd - task_name -",
            b"proj_name p file_name - cmd 2 eng_name - eng_cmd - task_name",
        ] {
            assert_eq!(exchange(&n, bad), b"", "{}", String::from_utf8_lossy(bad));
        }
        // exactly 512 bytes is a frame (trailing bytes after the last value are ignored)
        let mut max = frame("p512", 2);
        max.push(b' ');
        max.resize(512, b'z');
        assert_eq!(exchange(&n, &max), b"started p512\n\xff");
        assert_eq!(exchange(&n, &frame("after", 2)), b"started after\n\xff");
    })
    .await;
    assert_eq!(srv.handler.calls.load(Ordering::SeqCst), 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_split_across_writes_is_reassembled() {
    let srv = start("split", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        let f = frame("splitproj", 2);
        let mut s = connect(&n);
        s.write_all(&f[..20]).expect("first part");
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(&f[20..]).expect("second part");
        assert_eq!(read_all(&mut s), b"started splitproj\n\xff");
    })
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_times_out_without_blocking_others() {
    let config = ServerConfig {
        first_byte_timeout: Duration::from_millis(3000),
        request_timeout: Duration::from_millis(3000),
        ..ServerConfig::default()
    };
    let srv = start("silent", config);
    let n = srv.name.clone();
    blocking(move || {
        let t0 = Instant::now();
        let mut silent = connect(&n);
        for i in 0..5 {
            let p = format!("busy{i}");
            let mut expected = format!("started {p}\n").into_bytes();
            expected.push(0xFF);
            assert_eq!(exchange(&n, &frame(&p, 2)), expected);
        }
        assert!(
            t0.elapsed() < Duration::from_millis(2500),
            "other clients waited for the silent one: {:?}",
            t0.elapsed()
        );
        assert_eq!(read_all(&mut silent), b"");
        let waited = t0.elapsed();
        assert!(
            waited >= Duration::from_millis(2900) && waited < Duration::from_secs(8),
            "silent client closed after {waited:?}"
        );
    })
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_reply_does_not_disturb_the_server() {
    let srv = start("leave", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        for _ in 0..3 {
            let mut s = connect(&n);
            s.write_all(&frame("big", 4)).expect("send");
            let mut head = [0u8; 16];
            s.read_exact(&mut head).expect("start of the reply");
            assert_eq!(&head, b"xxxxxxxxxxxxxxxx");
            drop(s);
        }
        // a whole big reply still arrives intact
        let whole = exchange(&n, &frame("big", 4));
        assert_eq!(whole.len(), BIG_REPLY + 1);
        assert_eq!(whole.last(), Some(&0xFF));
        assert_eq!(exchange(&n, &frame("next", 2)), b"started next\n\xff");
    })
    .await;
    srv.stop().await;
}

/// Changes the calling thread's real, effective and saved gid then uid: the raw
/// setresgid/setresuid syscalls (rustix's `set_thread_res_*`), which on Linux change only
/// the calling thread, unlike libc's wrappers that change every thread of the process.
fn set_thread_creds(uid: u32, gid: u32) {
    use rustix::process::{Gid, Uid};
    let g = Gid::from_raw(gid);
    rustix::thread::set_thread_res_gid(g, g, g).expect("setresgid");
    let u = Uid::from_raw(uid);
    rustix::thread::set_thread_res_uid(u, u, u).expect("setresuid");
}

/// Connects from a thread whose credentials alone are changed (raw setresgid/setresuid
/// change only the calling thread on Linux), and reads what the server sends.
fn connect_as(name: String, uid: u32, gid: u32, send: bool) -> Vec<u8> {
    std::thread::spawn(move || {
        set_thread_creds(uid, gid);
        let mut s = connect(&name);
        if send {
            let _ = s.write_all(&frame("intruder", 2));
        }
        read_all(&mut s)
    })
    .join()
    .expect("client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_uid_0_and_gid_0_are_served() {
    let srv = start("cred", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        assert_eq!(connect_as(n.clone(), 65534, 65534, false), b"");
        assert_eq!(connect_as(n.clone(), 65534, 65534, true), b"");
        // root with a non-zero gid is refused too (B28: C checks uid and gid)
        assert_eq!(connect_as(n.clone(), 0, 65534, true), b"");
        assert_eq!(exchange(&n, &frame("root", 2)), b"started root\n\xff");
    })
    .await;
    assert_eq!(srv.handler.calls.load(Ordering::SeqCst), 1);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_clients_each_get_their_own_reply() {
    let srv = start("many", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        let clients: Vec<_> = (0..100)
            .map(|i| {
                let n = n.clone();
                std::thread::spawn(move || {
                    let p = format!("proj{i}");
                    (p.clone(), exchange(&n, &frame(&p, 2)))
                })
            })
            .collect();
        for c in clients {
            let (p, reply) = c.join().expect("client");
            let mut expected = format!("started {p}\n").into_bytes();
            expected.push(0xFF);
            assert_eq!(reply, expected);
        }
    })
    .await;
    assert_eq!(srv.handler.calls.load(Ordering::SeqCst), 100);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting_promptly_despite_idle_clients() {
    let srv = start("stop", ServerConfig::default());
    let n = srv.name.clone();
    let idle = blocking({
        let n = n.clone();
        move || connect(&n)
    })
    .await;
    let t0 = Instant::now();
    srv.stop().await;
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(idle);
    let refused = UnixStream::connect_addr(&abstract_addr(&n).expect("addr"));
    assert!(refused.is_err(), "socket still accepts after shutdown");
}

/// Opens `n` connections that send nothing (kept open by the caller).
fn silent_clients(name: &str, n: usize) -> Vec<UnixStream> {
    (0..n).map(|_| connect(name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_silent_clients_do_not_delay_a_request() {
    let srv = start("flood", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        let t0 = Instant::now();
        let silent = silent_clients(&n, 500);
        let opened = t0.elapsed();
        let t1 = Instant::now();
        assert_eq!(exchange(&n, &frame("legit", 4)), b"show legit\n\xff");
        let took = t1.elapsed();
        println!("500 silent clients opened in {opened:?}; a request then took {took:?}");
        assert!(took < Duration::from_secs(2), "request took {took:?}");
        drop(silent);
    })
    .await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_beyond_max_idle_close_the_oldest() {
    let config = ServerConfig {
        max_idle: 8,
        first_byte_timeout: Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let srv = start("evict", config);
    let n = srv.name.clone();
    blocking(move || {
        let mut silent = silent_clients(&n, 20);
        let t0 = Instant::now();
        for i in 0..5 {
            let p = format!("evict{i}");
            let mut expected = format!("show {p}\n").into_bytes();
            expected.push(0xFF);
            assert_eq!(exchange(&n, &frame(&p, 4)), expected);
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
        // the oldest silent clients were closed to make room; the newest stay open
        assert_eq!(read_all(&mut silent[0]), b"");
        let newest = silent.last_mut().expect("20 clients");
        newest
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let still_open = newest.read(&mut byte).expect_err("no byte, no EOF");
        assert_eq!(still_open.kind(), std::io::ErrorKind::WouldBlock);
    })
    .await;
    srv.stop().await;
}

/// What a refused client (uid/gid 65534) sees when it sends its frame `delay` after
/// connecting: `eof` (clean close), `reset` (ECONNRESET on recv), `send: <error>` or
/// `data` (it was served).
fn refused_outcome(name: String, delay: Duration) -> String {
    std::thread::spawn(move || {
        set_thread_creds(65534, 65534);
        let mut s = connect(&name);
        std::thread::sleep(delay);
        // MSG_NOSIGNAL, as both clients do (C dies of SIGPIPE instead)
        let f = frame("intruder", 4);
        if let Err(e) = rustix::net::send(&s, &f, rustix::net::SendFlags::NOSIGNAL) {
            return format!("send: {}", std::io::Error::from(e));
        }
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => "eof".to_owned(),
            Ok(_) => "data".to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => "reset".to_owned(),
            Err(e) => format!("recv: {e}"),
        }
    })
    .join()
    .expect("client thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_peer_always_reads_end_of_file() {
    let srv = start("refused", ServerConfig::default());
    let n = srv.name.clone();
    blocking(move || {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..60u64 {
            // at once, and after the daemon has certainly checked the credentials
            let delay = Duration::from_millis([0, 1, 20, 200][(i % 4) as usize]);
            *seen.entry(refused_outcome(n.clone(), delay)).or_default() += 1;
        }
        println!("refused peer outcomes: {seen:?}");
        assert_eq!(seen.keys().collect::<Vec<_>>(), ["eof"], "{seen:?}");
        assert_eq!(exchange(&n, &frame("root", 2)), b"started root\n\xff");
    })
    .await;
    assert_eq!(srv.handler.calls.load(Ordering::SeqCst), 1);
    srv.stop().await;
}
