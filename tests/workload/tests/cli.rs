//! Runs the real binary: the layout file matches /proc/PID/maps, every page is present,
//! and SIGUSR1 / SIGTERM produce throughput lines.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etmem_workload::{Class, Layout};

/// Starts the workload `cmd` writing its layout to `layout`, and reads its ready line
/// (returned in the buffer, with the child and its stdout).
fn spawn_ready(
    mut cmd: Command,
    layout: &std::path::Path,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = cmd
        .arg("--layout")
        .arg(layout)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn workload");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("ready line");
    (child, out, line)
}

/// SIGTERM to the workload `child`: it prints its exit report on `out` and exits 0.
fn terminate(mut child: std::process::Child, out: &mut impl BufRead) {
    // SAFETY: signalling our own child, which is still running.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let mut line = String::new();
    out.read_line(&mut line).expect("exit line");
    assert!(line.starts_with("WORKLOAD report=exit "), "{line}");
    assert!(child.wait().expect("wait").success());
}

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
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etmem-workload"));
    cmd.args([
        "--hot",
        "256K",
        "--warm",
        "128K",
        "--cold",
        "1M",
        "--period-ms",
        "5",
    ])
    .args(["--warm-every", "2", "--access", "write"]);
    let (child, mut out, mut line) = spawn_ready(cmd, &layout_path);
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

    terminate(child, &mut out);
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

/// The `/proc/PID/maps` range holding `addr`.
fn vma_of(pid: u32, addr: u64) -> (u64, u64) {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    for line in maps.lines() {
        let range = line.split_whitespace().next().expect("range");
        let (a, b) = range.split_once('-').expect("a-b");
        let a = u64::from_str_radix(a, 16).expect("hex");
        let b = u64::from_str_radix(b, 16).expect("hex");
        if (a..b).contains(&addr) {
            return (a, b);
        }
    }
    panic!("no vma holds {addr:x}");
}

#[test]
fn mixed_is_one_vma_and_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout_path = dir.path().join("layout.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_etmem-workload"));
    cmd.args(["--mixed", "1M", "--hot-block", "64K", "--stride", "256K"])
        .args(["--hot-offset", "8K", "--move-after", "0.2", "--warm", "0"])
        .args(["--period-ms", "5", "--access", "read"]);
    let (child, mut out, mut line) = spawn_ready(cmd, &layout_path);
    assert!(line.starts_with("WORKLOAD ready "), "{line}");
    let layout =
        Layout::from_json(&std::fs::read_to_string(&layout_path).expect("read")).expect("parse");
    assert!(layout.mixed);
    assert_eq!(layout.move_after, Some(0.2));
    let page = layout.page_size;
    // 4 hot runs of 16 pages: ranks 0..32 stay hot, 32..64 cool.
    assert_eq!(layout.class_pages(Class::Hot), 32);
    assert_eq!(layout.class_pages(Class::Cooled), 32);
    assert_eq!(layout.class_pages(Class::Cold), 256 - 64);
    let first = layout.regions.first().expect("regions");
    let last = layout.regions.last().expect("regions");
    assert_eq!(first.class, Class::Cold);
    assert_eq!(first.len, 8 << 10);
    for w in layout.regions.windows(2) {
        assert_eq!(w[0].end, w[1].start);
        assert_ne!(w[0].class, w[1].class);
    }
    assert_eq!(last.end - first.start, 1 << 20);
    assert_eq!(
        vma_of(layout.pid, first.start),
        (first.start, last.end),
        "one VMA"
    );
    assert_eq!(rss_kb_of_vma(layout.pid, first.start) * 1024, 256 * page);

    line.clear();
    out.read_line(&mut line).expect("moved line");
    assert!(
        line.starts_with(&format!("WORKLOAD moved pid={} t=0.", layout.pid)),
        "{line}"
    );
    assert!(line.trim_end().ends_with(" cooled_pages=32"), "{line}");

    terminate(child, &mut out);
}

#[test]
fn mixed_bad_combinations_are_clear_errors() {
    for (args, want) in [
        (
            &["--mixed", "1M", "--hot-block", "512K", "--stride", "256K"][..],
            "--hot-block 524288 bytes is larger than --stride 262144 bytes",
        ),
        (
            &["--mixed", "1M", "--stride", "2M"],
            "--stride 2097152 bytes is larger than --mixed 1048576 bytes",
        ),
        (&["--mixed", "1M", "--hot-block", "0"], "--hot-block 0:"),
        (&["--mixed", "1M", "--hot", "4M"], "--hot 4194304:"),
        (&["--mixed", "1M", "--hugetlb"], "cannot be used with"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_etmem-workload"))
            .args(args)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
