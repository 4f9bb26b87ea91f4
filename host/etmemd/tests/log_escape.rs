//! Control characters from outside reach the log escaped, on both sinks, through the
//! real subscriber (`etmemd::logging::subscriber`), the real server and the real daemon
//! core on a fake kernel. One test per path the text comes in by: a request value, a
//! config file value, an engine's log message.

use etmem_host::engine::Scheduling;
use etmem_host::{Daemon, EngineRegistry};
use etmem_kernel::{FakeKernel, Kernel};
use etmem_proto::socket::abstract_addr;
use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel as EngineLogLevel, Params, Round, ScanResult, Task,
    TaskInfo,
};
use etmemd::cli::LogLevel;
use etmemd::logging::{SyslogLayer, subscriber};
use etmemd::server::{ServerConfig, bind, serve};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Everything logged in this test process: syslog lines and the stderr bytes.
#[derive(Default)]
struct Captured {
    syslog: Mutex<Vec<String>>,
    stderr: Mutex<Vec<u8>>,
}

#[derive(Clone)]
struct StderrBuf(&'static Captured);

impl Write for StderrBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.stderr.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrBuf {
    type Writer = StderrBuf;
    fn make_writer(&'a self) -> StderrBuf {
        self.clone()
    }
}

/// Installs etmemd's subscriber (debug level, stderr copy without colours) once, globally,
/// so that events from every thread (engine calls run on blocking threads) are seen.
fn captured() -> &'static Captured {
    static C: OnceLock<&'static Captured> = OnceLock::new();
    C.get_or_init(|| {
        let c: &'static Captured = Box::leak(Box::default());
        let syslog = SyslogLayer::with_sink(move |_, text| {
            if let Ok(mut v) = c.syslog.lock() {
                v.push(text.to_string_lossy().into_owned());
            }
        });
        tracing::subscriber::set_global_default(subscriber(
            LogLevel::Debug,
            syslog,
            Some((StderrBuf(c), false)),
        ))
        .expect("first subscriber of this process");
        c
    })
}

/// The syslog lines and stderr lines that contain `marker`, after checking that none of
/// them holds a raw control character and that no stderr line starts with `forged` (the
/// text after the payload's newline).
fn lines_with(marker: &str, forged: &str) -> (Vec<String>, Vec<String>) {
    let c = captured();
    let syslog: Vec<String> = c
        .syslog
        .lock()
        .expect("lock")
        .iter()
        .filter(|l| l.contains(marker))
        .cloned()
        .collect();
    let stderr = String::from_utf8_lossy(&c.stderr.lock().expect("lock")).into_owned();
    let stderr: Vec<String> = stderr.lines().map(str::to_owned).collect();
    for line in &stderr {
        assert!(!line.starts_with(forged), "forged stderr line: {line:?}");
    }
    let stderr: Vec<String> = stderr.into_iter().filter(|l| l.contains(marker)).collect();
    for line in syslog.iter().chain(&stderr) {
        assert!(!line.chars().any(char::is_control), "raw control: {line:?}");
    }
    (syslog, stderr)
}

/// Asserts `escaped` shows up on both sinks in a line containing `marker`.
fn assert_logged_escaped(marker: &str, forged: &str, escaped: &str) {
    let (syslog, stderr) = lines_with(marker, forged);
    assert!(
        syslog.iter().any(|l| l.contains(escaped)),
        "syslog has no line with {escaped:?}: {syslog:#?}"
    );
    assert!(
        stderr.iter().any(|l| l.contains(escaped)),
        "stderr has no line with {escaped:?}: {stderr:#?}"
    );
}

/// An engine (registered as `slide`) whose new-task logs text with control characters:
/// the task name and a newline that tries to forge a line, and an ESC sequence.
struct Loud;

struct LoudTask;

impl Engine for Loud {
    type Task = LoudTask;

    fn configure(_: &Params, _: &dyn Host) -> Result<Self, EngineError> {
        Ok(Loud)
    }

    fn new_task(
        &mut self,
        task: &TaskInfo,
        _: &Params,
        host: &dyn Host,
    ) -> Result<LoudTask, EngineError> {
        host.log(
            EngineLogLevel::Warn,
            &format!("engine-marker {}\nFORGED-eng line\x1b[2J\r", task.name),
        );
        Ok(LoudTask)
    }
}

impl Task for LoudTask {
    fn plan(
        &mut self,
        _: &Round,
        _: &[ScanResult],
        _: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        Ok(Vec::new())
    }
}

/// A real daemon core on a fake kernel behind the real server, on a fresh socket.
struct Served {
    name: String,
    _fake: Arc<FakeKernel>,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

async fn serve_daemon(tag: &str) -> Served {
    static N: AtomicUsize = AtomicUsize::new(0);
    captured();
    let name = format!(
        "etmemd-log-escape-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    let kernel: Arc<dyn Kernel> = fake.clone();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<Loud>("slide", Scheduling::PerTask);
    let daemon = Daemon::start(kernel, registry);
    let listener =
        tokio::net::UnixListener::from_std(bind(&name).expect("bind")).expect("tokio listener");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(serve(
        listener,
        Arc::new(daemon),
        ServerConfig::default(),
        async {
            let _ = rx.await;
        },
    ));
    Served {
        name,
        _fake: fake,
        stop,
        done,
    }
}

impl Served {
    /// Sends `frame` and returns the reply bytes.
    async fn request(&self, frame: Vec<u8>) -> Vec<u8> {
        let addr = abstract_addr(&self.name).expect("addr");
        tokio::task::spawn_blocking(move || {
            let mut s = UnixStream::connect_addr(&addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            s.write_all(&frame).expect("send");
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            out
        })
        .await
        .expect("client thread")
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.done).await;
    }
}

fn obj_add(path: &std::path::Path) -> Vec<u8> {
    format!(
        "proj_name - file_name {} cmd 0 eng_name - eng_cmd - task_name -",
        path.display()
    )
    .into_bytes()
}

fn obj_del(path: &std::path::Path) -> Vec<u8> {
    format!(
        "proj_name - file_name {} cmd 1 eng_name - eng_cmd - task_name -",
        path.display()
    )
    .into_bytes()
}

fn config_file(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("conf.ini");
    std::fs::write(&p, text).expect("write config");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_value_is_escaped_in_the_log() {
    let srv = serve_daemon("request").await;
    let reply = srv
        .request(
            b"proj_name req-marker\nFORGED-req\x1b[31m\x07 file_name - cmd 2 eng_name - eng_cmd - task_name -"
                .to_vec(),
        )
        .await;
    assert_eq!(reply.last(), Some(&0xFE), "the project does not exist");
    // the debug `request:` line and the `request ... failed` line
    assert_logged_escaped(
        "req-marker",
        "FORGED-req",
        "req-marker\\nFORGED-req\\x1b[31m\\x07",
    );
    let (syslog, _) = lines_with("req-marker", "FORGED-req");
    assert!(
        syslog.iter().any(|l| l.starts_with("request `")),
        "{syslog:#?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_value_is_escaped_in_the_log() {
    let srv = serve_daemon("config").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = config_file(
        dir.path(),
        "[project]\nname=p\nloop=1\ninterval=cfg-marker\x1b]0;title\x07\x7f\nsleep=1\n",
    );
    let reply = srv.request(obj_add(&conf)).await;
    assert_eq!(
        reply.last(),
        Some(&0xFE),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_logged_escaped(
        "cfg-marker",
        "FORGED-cfg",
        "cfg-marker\\x1b]0;title\\x07\\x7f",
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_log_message_is_escaped_in_the_log() {
    let srv = serve_daemon("engine").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = config_file(
        dir.path(),
        "[project]\nname=p\nscan_type=page\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=slide\nproject=p\n\
         [task]\nproject=p\nengine=slide\nname=t1\ntype=name\nvalue=mysqld\nT=1\nmax_threads=1\n",
    );
    let reply = srv.request(obj_add(&conf)).await;
    assert_eq!(
        reply.last(),
        Some(&0xFF),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert_logged_escaped(
        "engine-marker",
        "FORGED-eng",
        "engine-marker t1\\nFORGED-eng line\\x1b[2J\\r",
    );
    let (syslog, _) = lines_with("engine-marker", "FORGED-eng");
    assert!(
        syslog
            .iter()
            .any(|l| l.starts_with("engine `slide` of project `p`: ")),
        "{syslog:#?}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obj_add_and_obj_del_say_at_info_what_they_did() {
    let srv = serve_daemon("objlog").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = config_file(
        dir.path(),
        "[project]\nname=objlog-marker\x1b\nscan_type=page\nloop=1\ninterval=1\nsleep=1\n\
         [engine]\nname=slide\nproject=objlog-marker\x1b\n\
         [task]\nproject=objlog-marker\x1b\nengine=slide\nname=t1\ntype=name\nvalue=mysqld\nT=1\n",
    );
    let reply = srv.request(obj_add(&conf)).await;
    assert_eq!(
        reply.last(),
        Some(&0xFF),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let reply = srv.request(obj_del(&conf)).await;
    assert_eq!(
        reply.last(),
        Some(&0xFF),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let (syslog, stderr) = lines_with("objlog-marker", "FORGED-objlog");
    let path = conf.display().to_string();
    let added = format!(
        "obj add `{path}` ({path}): added 1 project (`objlog-marker\\x1b`), 1 engine (`slide`), \
         1 task (`t1`)"
    );
    let deleted = format!(
        "obj del `{path}`: deleted 1 project (`objlog-marker\\x1b`), 1 engine (`slide`), 1 task \
         (`t1`)"
    );
    for want in [&added, &deleted] {
        assert!(
            syslog.iter().any(|l| l == want),
            "no {want:?} in {syslog:#?}"
        );
        assert!(
            stderr
                .iter()
                .any(|l| l.contains(want.as_str()) && l.contains("INFO")),
            "no {want:?} at INFO in {stderr:#?}"
        );
    }
    srv.stop().await;
}
