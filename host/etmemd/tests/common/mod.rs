//! What the daemon tests with a fake kernel share: an etmemd serving on an abstract socket,
//! C's request frame, one request and its whole reply, a config file written 0600.

#![allow(dead_code)] // each test binary uses its own part

use etmem_host::{Daemon, EngineRegistry};
use etmem_kernel::Kernel;
use etmem_proto::socket::abstract_addr;
use etmemd::server::{ServerConfig, bind, serve};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// An etmemd (the daemon core and the RPC server) on abstract socket `name`.
pub struct Served {
    pub name: String,
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Starts a daemon on `kernel` with `registry`, on a socket named after `label` and
    /// this process.
    pub fn start(kernel: Arc<dyn Kernel>, registry: EngineRegistry, label: &str) -> Served {
        let daemon = Daemon::start(kernel, registry);
        let name = format!("etmemd-{label}-test-{}", std::process::id());
        let listener =
            tokio::net::UnixListener::from_std(bind(&name).expect("bind")).expect("listener");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let done = tokio::spawn(serve(
            listener,
            Arc::new(daemon),
            ServerConfig::default(),
            async {
                let _ = rx.await;
            },
        ));
        Served { name, stop, done }
    }

    /// Sends `frame` and reads the whole reply.
    pub async fn request(&self, frame: String) -> Vec<u8> {
        request(&self.name, frame).await
    }

    /// Stops the server (waits up to 2 s for it).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.done).await;
    }
}

/// Sends `frame` to the etmemd on abstract socket `name` and reads the whole reply.
pub async fn request(name: &str, frame: String) -> Vec<u8> {
    let addr = abstract_addr(name).expect("addr");
    tokio::task::spawn_blocking(move || {
        let mut s = UnixStream::connect_addr(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(frame.as_bytes()).expect("send");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .await
    .expect("client")
}

/// C's request frame for command `cmd` (no engine command).
pub fn frame(cmd: u32, proj: &str, file: &str) -> String {
    format!("proj_name {proj} file_name {file} cmd {cmd} eng_name - eng_cmd - task_name -")
}

/// Writes `text` to `dir/file_name` with mode 0600 (as etmemd wants a config file) and
/// returns its path.
pub fn write_conf(dir: &Path, file_name: &str, text: &str) -> String {
    let file = dir.join(file_name);
    std::fs::write(&file, text).expect("conf");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    file.to_str().expect("utf-8").to_string()
}
