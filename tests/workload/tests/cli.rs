//! Runs the real binary: the layout file matches /proc/PID/maps, every page is present,
//! and SIGUSR1 / SIGTERM produce throughput lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etmem_workload::{Class, Layout};

fn rss_kb_of_vma(pid: u32, start: u64) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let head = format!("{start:x}-");
    let mut in_vma = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !first.ends_with(':') {
            in_vma = line.starts_with(&head);
        } else if in_vma && line.starts_with("Rss:") {
            return line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .expect("rss");
        }
    }
    panic!("no vma at {start:x}");
}

#[test]
fn layout_matches_the_process_and_reports_come_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout_path = dir.path().join("layout.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_etmem-workload"))
        .args([
            "--hot",
            "256K",
            "--warm",
            "128K",
            "--cold",
            "1M",
            "--period-ms",
            "5",
        ])
        .args(["--warm-every", "2", "--access", "write", "--layout"])
        .arg(&layout_path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn workload");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    assert!(
        line.starts_with(&format!("WORKLOAD ready pid={} ", child.id())),
        "{line}"
    );

    let t0 = Instant::now();
    while !layout_path.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "no layout file");
        std::thread::sleep(Duration::from_millis(10));
    }
    let layout =
        Layout::from_json(&std::fs::read_to_string(&layout_path).expect("read")).expect("parse");
    assert_eq!(layout.pid, child.id());
    assert_eq!(layout.warm_every, 2);
    assert_eq!(layout.regions.len(), 3);
    let hot = layout.region(Class::Hot).expect("hot");
    let warm = layout.region(Class::Warm).expect("warm");
    let cold = layout.region(Class::Cold).expect("cold");
    assert_eq!(hot.len, 256 << 10);
    assert_eq!(warm.len, 128 << 10);
    assert_eq!(cold.len, 1 << 20);
    assert!(hot.end < warm.start && warm.end < cold.start);
    for r in [hot, warm, cold] {
        assert_eq!(r.pages * layout.page_size, r.len);
        assert_eq!(
            rss_kb_of_vma(layout.pid, r.start) * 1024,
            r.len,
            "{:?} fully present",
            r.class
        );
    }

    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: signalling our own child, which is still running.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    line.clear();
    out.read_line(&mut line).expect("usr1 line");
    assert!(line.starts_with("WORKLOAD report=usr1 "), "{line}");
    let touches: u64 = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("touches="))
        .and_then(|v| v.parse().ok())
        .expect("touches=");
    assert!(touches >= hot.pages, "at least one hot round: {line}");

    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    line.clear();
    out.read_line(&mut line).expect("exit line");
    assert!(line.starts_with("WORKLOAD report=exit "), "{line}");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn bad_size_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_etmem-workload"))
        .args(["--hot", "12Q"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("size `12Q`: unknown unit `Q`"), "{err}");
}
