//! Issue 12's smaller findings with the real binaries: silent root peers do not delay a
//! real `etmem project show`, and a refused (non-root) `etmem` always ends the same way.

use etmem_e2e::{Daemon, bin_dir};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NO_PROJECT: &str = "no project exists\n\n";

/// `etmem project show` through the CLI: its run and how long it took.
fn timed_show(d: &Daemon) -> Duration {
    let t0 = Instant::now();
    let r = d.etmem(&["project", "show"]);
    let took = t0.elapsed();
    r.expect_code(0);
    assert_eq!(r.stdout, NO_PROJECT);
    took
}

#[test]
fn five_hundred_silent_peers_do_not_delay_project_show() {
    let mut d = Daemon::start("silent", &[]);
    let quiet = timed_show(&d);
    let addr = SocketAddr::from_abstract_name(d.socket.as_bytes()).expect("abstract address");
    let t0 = Instant::now();
    let silent: Vec<UnixStream> = (0..500)
        .map(|_| UnixStream::connect_addr(&addr).expect("silent connect"))
        .collect();
    let opened = t0.elapsed();
    let mut runs: Vec<Duration> = (0..5).map(|_| timed_show(&d)).collect();
    runs.sort();
    println!(
        "etmem project show: {quiet:?} alone; with 500 silent root peers (opened in \
         {opened:?}): min {:?}, median {:?}, max {:?} over 5 runs",
        runs[0], runs[2], runs[4]
    );
    assert!(runs[4] < Duration::from_secs(2), "{runs:?}");
    drop(silent);
    assert!(d.alive(), "daemon died: {}", d.log_text());
}

#[test]
fn a_refused_peer_always_exits_186() {
    let mut d = Daemon::start("refused", &[]);
    for i in 0..20 {
        let out = Command::new(bin_dir().join("etmem"))
            .args(["project", "show", "-s", &d.socket])
            .uid(65534)
            .gid(65534)
            .stdin(Stdio::null())
            .output()
            .expect("run etmem as nobody");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(186), "run {i}: {out:#?}");
        assert!(
            stdout.starts_with(
                "connection closed by peer\netmem_client_recv failed.\netmem: error -70\n"
            ),
            "run {i}: {stdout}"
        );
    }
    // root is still served
    d.etmem(&["project", "show"]).expect_code(0);
    assert!(d.alive(), "daemon died: {}", d.log_text());
    assert!(
        d.log_text().contains("permition denied"),
        "refusals are logged: {}",
        d.log_text()
    );
}
