//! A restarted etmemd and the kdamond a dead etmemd left running, against the FakeKernel's
//! temp tree: reclaimed only when its state file names it, records its current kthread pid
//! and its owner is gone; refused (naming why) otherwise. State files live in the fake
//! tree's own `run/etmemd`. Nothing here writes to the real /proc, /sys or /run.

mod common;

use common::{fake_with, map_for};
use etmem_kernel::fake::FakeKdamond;
use etmem_kernel::track::{DamonAttrs, DamonTracker};
use etmem_kernel::{FakeKernel, Kernel, TrackError, Tracker, TrackerKind};
use std::path::PathBuf;

const KTHREAD: u32 = 4242;

/// Our own pid and start time (the owner a live etmemd records).
fn me() -> (u32, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let start = etmem_kernel::parse::parse_stat_starttime(&stat).expect("start time");
    (std::process::id(), start)
}

/// Process 40 and a kdamond 0 running with one context (kthread pid [`KTHREAD`]), as a
/// dead or live etmemd leaves it, plus a spare directory.
fn leftover() -> FakeKernel {
    let f = fake_with(40, 0x10000, 0x30000);
    f.add_damon(
        &[FakeKdamond {
            running: true,
            nr_contexts: 1,
        }],
        1,
    )
    .expect("damon");
    std::fs::write(f.damon_dir().join("0/pid"), format!("{KTHREAD}\n")).expect("pid");
    f
}

fn state_file(f: &FakeKernel, index: u64) -> PathBuf {
    f.linux().state_dir().join(format!("damon-{index}.state"))
}

fn write_state(f: &FakeKernel, index: u64, text: &str) {
    let p = state_file(f, index);
    std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
    std::fs::write(p, text).expect("state file");
}

fn record(index: u64, kthread: u32, owner: (u32, u64)) -> String {
    format!(
        "index={index}\nkthread_pid={kthread}\nowner_pid={}\nowner_start={}\n",
        owner.0, owner.1
    )
}

fn sys(f: &FakeKernel, rel: &str) -> String {
    std::fs::read_to_string(f.damon_dir().join(rel))
        .expect(rel)
        .trim()
        .to_owned()
}

fn start(f: &FakeKernel) -> (DamonTracker, Result<(), TrackError>) {
    let h = f.open_process(40).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    let r = t.start(&h, &map_for(f, &h));
    (t, r)
}

fn refused(f: &FakeKernel) -> String {
    let (t, r) = start(f);
    let e = r.expect_err("refused");
    assert!(matches!(e, TrackError::DamonInUse(_)), "{e:?}");
    assert_eq!(t.kdamond_index(), None);
    assert_eq!(sys(f, "0/state"), "on", "the kdamond is left alone");
    assert_eq!(sys(f, "0/contexts/nr_contexts"), "1");
    e.to_string()
}

#[test]
fn a_leftover_of_a_dead_etmemd_is_reclaimed_and_ours_is_recorded() {
    let f = leftover();
    // the owner's pid now belongs to a process that started later: the owner is gone
    let (pid, begun) = me();
    write_state(&f, 0, &record(0, KTHREAD, (pid, begun + 1)));
    // a state file of a kdamond index that no longer exists is stale
    write_state(&f, 5, &record(5, 77, (pid, begun + 1)));
    etmem_kernel::track::availability(f.linux(), TrackerKind::Damon)
        .expect("a reclaimable leftover does not make DAMON unavailable");
    assert_eq!(sys(&f, "0/state"), "on", "availability writes nothing");

    let (mut t, r) = start(&f);
    r.expect("reclaimed, then tracked");
    assert_eq!(t.kdamond_index(), Some(0), "the reclaimed slot is ours now");
    assert_eq!(sys(&f, "nr_kdamonds"), "1", "no second kdamond");
    assert_eq!(sys(&f, "0/state"), "on");
    assert_eq!(sys(&f, "0/contexts/0/targets/nr_targets"), "1");
    assert_eq!(sys(&f, "0/contexts/0/targets/0/pid_target"), "40");
    assert!(!state_file(&f, 5).exists(), "stale file removed");
    let ours = std::fs::read_to_string(state_file(&f, 0)).expect("ours recorded");
    assert_eq!(
        ours,
        record(0, KTHREAD, (pid, begun)),
        "rewritten with us as owner"
    );
    let dir = f.linux().state_dir();
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("meta").permissions().mode() & 0o777
    };
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&state_file(&f, 0)), 0o600);

    t.stop().expect("stop");
    assert_eq!(sys(&f, "0/state"), "off");
    assert_eq!(sys(&f, "nr_kdamonds"), "0");
    assert!(!state_file(&f, 0).exists(), "removed with the kdamond");
}

#[test]
fn a_live_owners_kdamond_is_refused_naming_the_owner() {
    let f = leftover();
    let (pid, begun) = me();
    write_state(&f, 0, &record(0, KTHREAD, (pid, begun)));
    let msg = refused(&f);
    assert!(msg.contains("kdamond 0 is running"), "{msg}");
    assert!(
        msg.contains(&format!("etmemd pid {pid}, which is alive")),
        "{msg}"
    );
    assert!(state_file(&f, 0).exists(), "a live owner's file is kept");
    assert!(etmem_kernel::track::availability(f.linux(), TrackerKind::Damon).is_err());
}

#[test]
fn a_kthread_pid_mismatch_is_refused_and_the_stale_file_removed() {
    let f = leftover();
    let (pid, begun) = me();
    write_state(&f, 0, &record(0, 999, (pid, begun + 1)));
    let msg = refused(&f);
    assert!(
        msg.contains(&format!(
            "names kthread pid 999 but the kdamond's pid is {KTHREAD}"
        )),
        "{msg}"
    );
    assert!(msg.contains("stale file removed"), "{msg}");
    assert!(!state_file(&f, 0).exists());
    // with no file left, it is refused as anyone's kdamond
    let msg = refused(&f);
    assert!(msg.contains("is running and is not ours"), "{msg}");
}

#[test]
fn a_malformed_state_file_is_refused_saying_why() {
    let f = leftover();
    write_state(&f, 0, &format!("index=0\nkthread_pid={KTHREAD}\n"));
    let msg = refused(&f);
    assert!(msg.contains("damon-0.state"), "{msg}");
    assert!(msg.contains("key `owner_pid` missing"), "{msg}");
    assert!(msg.contains("not treated as ours"), "{msg}");
}

#[test]
fn an_unrecorded_kdamond_is_refused_as_before() {
    let f = leftover();
    let msg = refused(&f);
    assert!(
        msg.contains("kdamond 0 is running and is not ours"),
        "{msg}"
    );
}
