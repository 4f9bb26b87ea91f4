//! The memdcd engine end to end: the real server and daemon core on a fake kernel (fake
//! procfs with an `idle_pages` stream and smaps `VmFlags`), `conf/memdcd.ini` pointed at a
//! fake process and at a fake memdcd listening on a socket file. `obj add`, `project
//! show` (as for slide), `project start`; the fake memdcd must receive every scanned page
//! of the `us` VMA, hot and cold with their counts, and none of the other VMA, in
//! memdcd's messages, one connection each.

mod common;

use common::{Served, frame, write_conf};
use etmem_host::EngineRegistry;
use etmem_host::engine::Scheduling;
use etmem_kernel::{FakeKernel, FakeProcess, Kernel};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

const PID: u32 = 4242;
/// The `us` VMA: 600 pages (two messages).
const US: (u64, u64) = (0x10_0000, 0x10_0000 + 600 * 4096);
/// An anonymous VMA without `us`: scanned by the host, never sent.
const OTHER: (u64, u64) = (0x100_0000, 0x100_0000 + 100 * 4096);

/// Writes the idle_pages stream of `range` (alternately 7 accessed and 5 idle pages) and
/// returns each page with its count (accessed 1, idle 0; one pass).
fn stream(fake: &FakeKernel, range: (u64, u64)) -> Vec<(u64, u64, i32)> {
    let mut pages = Vec::new();
    let mut at = range.0;
    let mut accessed = false;
    fake.write_idle_pages_stream(PID, range, 4096, |left| {
        accessed = !accessed;
        let nr = left.min(if accessed { 7 } else { 5 });
        for _ in 0..nr {
            pages.push((at, 4096, i32::from(accessed)));
            at += 4096;
        }
        // PTE accessed (0) or idle (5)
        (if accessed { 0 } else { 5 }, nr)
    })
    .expect("idle_pages");
    pages
}

/// The fake machine: process `PID` with the two VMAs and their idle_pages streams;
/// returns the pages of the `us` VMA.
fn machine(fake: &FakeKernel) -> Vec<(u64, u64, i32)> {
    fake.enable_idle_pages().expect("etmem_scan");
    let mut p = FakeProcess::new(PID, "redis-server")
        .anon(US.0, US.1)
        .anon(OTHER.0, OTHER.1);
    if let Some(f) = p.vmas[0].vm_flags.as_mut() {
        f.push("us".into());
    }
    fake.add_process(&p).expect("process");
    // one file holds both streams, each at its addresses: the second writer truncates, so
    // the first stream's bytes are put back after it
    stream(fake, OTHER);
    let path = fake.proc_root().join(format!("{PID}/idle_pages"));
    let bytes = std::fs::read(&path).expect("stream");
    let other = bytes[OTHER.0 as usize..].to_vec();
    let pages = stream(fake, US);
    fake.write_at(PID, "idle_pages", OTHER.0, &other)
        .expect("stream back");
    pages
}

/// `conf/memdcd.ini` pointed at `PID` and at `sock`, with 1 s rounds.
fn conf(sock: &Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conf/memdcd.ini"
    ))
    .expect("conf/memdcd.ini");
    let out: String = text
        .lines()
        .map(|l| match l {
            "type=name" => "type=pid".to_string(),
            "value=redis-server" => format!("value={PID}"),
            "Sock=-" => format!("Sock={}", sock.display()),
            "interval=5" => "interval=1".to_string(),
            other => other.to_string(),
        })
        .map(|l| l + "\n")
        .collect();
    for want in ["type=pid", "Sock=/", "interval=1"] {
        assert!(out.contains(want), "conf/memdcd.ini changed: no `{want}`");
    }
    out
}

/// A fake memdcd: every connection's request goes to the channel; it closes without a word.
fn fake_memdcd(path: &Path) -> mpsc::Receiver<Vec<u8>> {
    let l = UnixListener::bind(path).expect("bind");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut req = Vec::new();
            let _ = c.read_to_end(&mut req);
            if tx.send(req).is_err() {
                return;
            }
        }
    });
    rx
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(m[at..at + 4].try_into().expect("4"))
}
fn u64_at(m: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(m[at..at + 8].try_into().expect("8"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conf_memdcd_ini_adds_starts_and_feeds_a_fake_memdcd() {
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    let want = machine(&fake);
    let dir = tempfile::tempdir().expect("dir");
    let sock = dir.path().join("memdcd.sock");
    let received = fake_memdcd(&sock);
    let file = write_conf(dir.path(), "memdcd.ini", &conf(&sock));

    let kernel: Arc<dyn Kernel> = fake.clone();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_memdcd::Memdcd>("memdcd", Scheduling::PerTask);
    let srv = Served::start(kernel, registry, "memdcd");

    assert_eq!(srv.request(frame(0, "-", &file)).await, [0xFF]);
    let show = |started: &str| {
        format!(
            "project: memdcd_demo\n\
             number   type     value            name             engine           started \n\
             1        pid      {PID:<16} redis            memdcd           {started:<8}\n"
        )
        .into_bytes()
    };
    let mut s = show("false");
    s.push(0xFF);
    assert_eq!(srv.request(frame(4, "-", "-")).await, s);
    assert_eq!(srv.request(frame(2, "memdcd_demo", "-")).await, [0xFF]);

    let first = received
        .recv_timeout(Duration::from_secs(30))
        .expect("a message within 30 s");
    let second = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the second message");
    let mut got = Vec::new();
    for (k, m) in [&first, &second].into_iter().enumerate() {
        assert_eq!(m.len(), 12336);
        assert_eq!(u32_at(m, 0), 0, "cmd_type");
        assert_eq!(u32_at(m, 8), PID, "pid");
        assert_eq!(u32_at(m, 12), 1, "enable_uswap");
        assert_eq!(u32_at(m, 16), 0xFFFF_FF01, "type");
        assert_eq!(u64_at(m, 32), 600, "total_length");
        assert_eq!(u32_at(m, 40), [0, 2][k], "START then END");
        let n = u64_at(m, 24) as usize / 24;
        assert_eq!(n, [512, 88][k]);
        for j in 0..n {
            let at = 48 + j * 24;
            got.push((u64_at(m, at), u64_at(m, at + 8), u32_at(m, at + 16) as i32));
        }
    }
    assert_eq!(
        got, want,
        "every page of the `us` VMA, in order, with its count"
    );

    let mut s = show("true");
    s.push(0xFF);
    assert_eq!(srv.request(frame(4, "memdcd_demo", "-")).await, s);
    assert_eq!(srv.request(frame(3, "memdcd_demo", "-")).await, [0xFF]);
    assert_eq!(srv.request(frame(1, "-", &file)).await, [0xFF]);
    // what the fake kernel saw: exchanges with the socket file, none elsewhere
    let ex = fake.unix_exchanges();
    assert!(ex.len() >= 2);
    assert!(
        ex.iter()
            .all(|(a, _)| *a == etmem_kernel::UnixAddr::Path(sock.clone()))
    );
    srv.stop().await;
}
