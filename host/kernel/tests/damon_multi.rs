//! Several processes on DAMON at once, against the FakeKernel's temp tree: one kdamond of
//! ours, one target and one `target`-filtered `stat` scheme per process, targets added and
//! removed with `commit` while it runs, each pass reading its own scheme, dead processes
//! dropped, the kdamond removed with the last tracker. Nothing here writes to the real
//! /proc or /sys (nor under /sys/kernel/mm/damon).

use etmem_kernel::access::AccessMap;
use etmem_kernel::track::{DamonAttrs, DamonTracker};
use etmem_kernel::{
    FakeKernel, FakeProcess, Kernel, ProcessHandle, TrackError, Tracker, TrackerChoice, VmaFilter,
};
use std::path::Path;
use std::time::Duration;

/// Targets and schemes the fake tree offers (the kernel creates them when `nr_targets` /
/// `nr_schemes` is written; plain files cannot).
const SLOTS: usize = 4;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A fake kernel with processes `pids` (each mapping 0x10000..0x30000) and a free DAMON
/// tree of one kdamond directory with [`SLOTS`] targets and schemes (filters included).
fn fake(pids: &[u32]) -> FakeKernel {
    let f = FakeKernel::new().expect("fake");
    for &pid in pids {
        f.add_process(&FakeProcess::new(pid, "vm").anon(0x10000, 0x30000))
            .expect("process");
    }
    f.add_damon(&[], 1).expect("damon");
    let ctx = f.damon_dir().join("0/contexts/0");
    for t in 0..SLOTS {
        let td = ctx.join(format!("targets/{t}"));
        write(&td.join("pid_target"), "0\n");
        write(&td.join("regions/nr_regions"), "0\n");
        for r in 0..4 {
            write(&td.join(format!("regions/{r}/start")), "0\n");
            write(&td.join(format!("regions/{r}/end")), "0\n");
        }
        let sd = ctx.join(format!("schemes/{t}"));
        write(&sd.join("action"), "stat\n");
        for a in ["sz", "nr_accesses", "age"] {
            write(&sd.join(format!("access_pattern/{a}/min")), "0\n");
            write(&sd.join(format!("access_pattern/{a}/max")), "0\n");
        }
        write(&sd.join("filters/nr_filters"), "0\n");
        for file in ["type", "damon_target_idx", "matching"] {
            write(&sd.join(format!("filters/0/{file}")), "\n");
        }
        std::fs::create_dir_all(sd.join("tried_regions")).expect("tried");
    }
    f
}

/// A file of the fake DAMON tree (relative to `kdamonds/0`), trimmed.
fn read(f: &FakeKernel, rel: &str) -> String {
    let p = f.damon_dir().join("0").join(rel);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

fn ctx(f: &FakeKernel, rel: &str) -> String {
    read(f, &format!("contexts/0/{rel}"))
}

/// What `update_schemes_tried_regions` leaves in scheme `scheme`.
fn set_tried(f: &FakeKernel, scheme: usize, regions: &[(u64, u64, u64)]) {
    let t = f
        .damon_dir()
        .join(format!("0/contexts/0/schemes/{scheme}/tried_regions"));
    let _ = std::fs::remove_dir_all(&t);
    std::fs::create_dir_all(&t).expect("tried");
    for (i, (s, e, n)) in regions.iter().enumerate() {
        write(&t.join(format!("{i}/start")), &format!("{s}\n"));
        write(&t.join(format!("{i}/end")), &format!("{e}\n"));
        write(&t.join(format!("{i}/nr_accesses")), &format!("{n}\n"));
    }
}

fn map_for(f: &FakeKernel, p: &ProcessHandle) -> AccessMap {
    let vmas = f.vmas(p, &VmaFilter::default()).expect("vmas");
    AccessMap::new(&vmas, f.page_sizes())
}

/// Every page of `pid`'s mapping present.
fn all_present(f: &FakeKernel, pid: u32) {
    f.set_pagemap(pid, 0x10000, &[1u64 << 63; 32])
        .expect("pagemap");
}

fn tracker(f: &FakeKernel, window_s: u64) -> DamonTracker {
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    t.set_pass_window(Duration::from_secs(window_s));
    t
}

#[test]
fn two_processes_share_one_kdamond_with_a_filtered_scheme_each() {
    let f = fake(&[40, 41]);
    let (ha, hb) = (
        f.open_process(40).expect("a"),
        f.open_process(41).expect("b"),
    );
    let (mut ta, mut tb) = (tracker(&f, 10), tracker(&f, 10));
    ta.start(&ha, &map_for(&f, &ha)).expect("start a");
    assert_eq!(read(&f, "state"), "on");
    assert_eq!(ctx(&f, "targets/nr_targets"), "1");
    assert_eq!(
        ctx(&f, "schemes/0/filters/nr_filters"),
        "0",
        "one target needs no filter"
    );
    tb.start(&hb, &map_for(&f, &hb)).expect("start b");
    assert_eq!(ta.kdamond_index(), Some(0));
    assert_eq!(tb.kdamond_index(), Some(0), "the same kdamond");
    let kd = f.damon_dir();
    assert_eq!(
        std::fs::read_to_string(kd.join("nr_kdamonds"))
            .expect("n")
            .trim(),
        "1",
        "no second kdamond"
    );
    assert_eq!(read(&f, "state"), "commit", "added while it runs");
    assert_eq!(ctx(&f, "targets/nr_targets"), "2");
    assert_eq!(ctx(&f, "targets/0/pid_target"), "40");
    assert_eq!(ctx(&f, "targets/1/pid_target"), "41");
    assert_eq!(
        ctx(&f, "targets/0/regions/nr_regions"),
        "0",
        "a target that keeps its index keeps DAMON's adapted regions"
    );
    // its mapping, cut at the multiple of a 128 KiB piece
    assert_eq!(ctx(&f, "targets/1/regions/nr_regions"), "2");
    assert_eq!(ctx(&f, "targets/1/regions/0/start"), 0x10000.to_string());
    assert_eq!(ctx(&f, "targets/1/regions/0/end"), 0x20000.to_string());
    assert_eq!(ctx(&f, "targets/1/regions/1/end"), 0x30000.to_string());
    assert_eq!(ctx(&f, "schemes/nr_schemes"), "2");
    for i in 0..2 {
        assert_eq!(ctx(&f, &format!("schemes/{i}/action")), "stat");
        assert_eq!(ctx(&f, &format!("schemes/{i}/filters/nr_filters")), "1");
        assert_eq!(ctx(&f, &format!("schemes/{i}/filters/0/type")), "target");
        assert_eq!(
            ctx(&f, &format!("schemes/{i}/filters/0/damon_target_idx")),
            i.to_string()
        );
        assert_eq!(
            ctx(&f, &format!("schemes/{i}/filters/0/matching")),
            "N",
            "regions of other targets are filtered out"
        );
        assert_eq!(
            ctx(&f, &format!("schemes/{i}/access_pattern/sz/max")),
            u64::MAX.to_string()
        );
    }
    // the region limits apply to the whole context: once per target
    assert_eq!(ctx(&f, "monitoring_attrs/nr_regions/min"), "200");
    assert_eq!(ctx(&f, "monitoring_attrs/nr_regions/max"), "2000");
    // each pass reads its own scheme
    all_present(&f, 40);
    all_present(&f, 41);
    set_tried(&f, 0, &[(0x10000, 0x20000, 20), (0x20000, 0x30000, 0)]);
    set_tried(&f, 1, &[(0x10000, 0x30000, 3)]);
    let (mut ma, mut mb) = (map_for(&f, &ha), map_for(&f, &hb));
    ta.pass(&ha, &mut ma).expect("pass a");
    tb.pass(&hb, &mut mb).expect("pass b");
    assert_eq!(ma.get(0x10000), Some(20));
    // beside the read region, 6/20 of the largest (16-page) initial region count once
    assert_eq!(ma.get(0x24000), Some(1));
    assert_eq!(ma.get(0x25000), Some(0));
    assert_eq!(mb.get(0x10000), Some(3));
    assert_eq!(mb.get(0x28000), Some(3));
    tb.stop().expect("stop b");
    assert_eq!(ctx(&f, "targets/nr_targets"), "1", "b's target removed");
    assert_eq!(ctx(&f, "targets/0/pid_target"), "40");
    assert_eq!(ctx(&f, "schemes/nr_schemes"), "1");
    assert_eq!(read(&f, "state"), "commit");
    assert_eq!(ctx(&f, "monitoring_attrs/nr_regions/min"), "100");
    ta.stop().expect("stop a");
    assert_eq!(read(&f, "state"), "off");
    assert_eq!(read(&f, "contexts/nr_contexts"), "0");
    assert_eq!(
        std::fs::read_to_string(kd.join("nr_kdamonds"))
            .expect("n")
            .trim(),
        "0",
        "the last tracker removes the kdamond"
    );
}

#[test]
fn passes_together_share_one_update_and_a_second_pass_waits_for_a_new_one() {
    let f = fake(&[50, 51]);
    let (ha, hb) = (
        f.open_process(50).expect("a"),
        f.open_process(51).expect("b"),
    );
    all_present(&f, 50);
    all_present(&f, 51);
    let (mut ta, mut tb) = (tracker(&f, 10), tracker(&f, 10));
    ta.start(&ha, &map_for(&f, &ha)).expect("a");
    tb.start(&hb, &map_for(&f, &hb)).expect("b");
    let state = f.damon_dir().join("0/state");
    let mark = || std::fs::write(&state, "marked\n").expect("mark");
    mark();
    ta.pass(&ha, &mut map_for(&f, &ha)).expect("pass a");
    assert_eq!(read(&f, "state"), "update_schemes_tried_regions");
    mark();
    tb.pass(&hb, &mut map_for(&f, &hb)).expect("pass b");
    assert_eq!(
        read(&f, "state"),
        "marked",
        "b reads the update a's pass just made"
    );
    ta.pass(&ha, &mut map_for(&f, &ha)).expect("pass a again");
    assert_eq!(
        read(&f, "state"),
        "update_schemes_tried_regions",
        "a never reads the same update twice"
    );
}

#[test]
fn the_longest_pass_window_sets_the_aggregation() {
    let f = fake(&[60, 61]);
    let (ha, hb) = (
        f.open_process(60).expect("a"),
        f.open_process(61).expect("b"),
    );
    let (mut ta, mut tb) = (tracker(&f, 1), tracker(&f, 4));
    ta.start(&ha, &map_for(&f, &ha)).expect("a");
    assert_eq!(ctx(&f, "monitoring_attrs/intervals/aggr_us"), "1000000");
    tb.start(&hb, &map_for(&f, &hb)).expect("b");
    assert_eq!(ctx(&f, "monitoring_attrs/intervals/aggr_us"), "4000000");
    assert_eq!(ctx(&f, "monitoring_attrs/intervals/sample_us"), "200000");
    tb.stop().expect("b");
    assert_eq!(ctx(&f, "monitoring_attrs/intervals/aggr_us"), "1000000");
    ta.stop().expect("a");
}

#[test]
fn an_exited_process_leaves_and_the_others_keep_being_tracked() {
    let f = fake(&[70, 71, 72]);
    let h: Vec<ProcessHandle> = [70, 71, 72]
        .iter()
        .map(|&p| f.open_process(p).expect("open"))
        .collect();
    let mut t: Vec<DamonTracker> = (0..3).map(|_| tracker(&f, 10)).collect();
    t[0].start(&h[0], &map_for(&f, &h[0])).expect("a");
    t[1].start(&h[1], &map_for(&f, &h[1])).expect("b");
    // a exits; c's start commits without it (the kernel refuses a pid that is gone)
    f.remove_process(70).expect("exit");
    t[2].start(&h[2], &map_for(&f, &h[2])).expect("c");
    assert_eq!(ctx(&f, "targets/nr_targets"), "2");
    assert_eq!(ctx(&f, "targets/0/pid_target"), "71");
    assert_eq!(ctx(&f, "targets/1/pid_target"), "72");
    assert_eq!(
        ctx(&f, "targets/0/regions/nr_regions"),
        "2",
        "b moved from target 1 to 0: its mapping (two pieces) is its regions again"
    );
    assert_eq!(ctx(&f, "schemes/1/filters/0/damon_target_idx"), "1");
    // a's pass says its process is gone; its stop changes nothing
    let e = t[0]
        .pass(&h[0], &mut AccessMap::new(&[], f.page_sizes()))
        .expect_err("gone");
    assert!(e.is_gone(), "{e}");
    std::fs::write(f.damon_dir().join("0/state"), "on\n").expect("w");
    t[0].stop().expect("stop a");
    assert_eq!(read(&f, "state"), "on", "nothing to commit for a");
    // c reads scheme 1 (its target's index)
    all_present(&f, 72);
    set_tried(&f, 0, &[(0x10000, 0x30000, 1)]);
    set_tried(&f, 1, &[(0x10000, 0x30000, 9)]);
    let mut mc = map_for(&f, &h[2]);
    t[2].pass(&h[2], &mut mc).expect("pass c");
    assert_eq!(mc.get(0x20000), Some(9));
    // b exits too, then c stops: the kdamond goes
    f.remove_process(71).expect("exit b");
    t[2].stop().expect("stop c");
    assert_eq!(read(&f, "state"), "off");
    assert_eq!(read(&f, "contexts/nr_contexts"), "0");
    drop(t);
    assert_eq!(
        std::fs::read_to_string(f.damon_dir().join("nr_kdamonds"))
            .expect("n")
            .trim(),
        "0"
    );
}

#[test]
fn a_kdamond_stopped_by_itself_is_turned_on_again_for_a_new_process() {
    let f = fake(&[80, 81]);
    let (ha, hb) = (
        f.open_process(80).expect("a"),
        f.open_process(81).expect("b"),
    );
    let mut ta = tracker(&f, 10);
    ta.start(&ha, &map_for(&f, &ha)).expect("a");
    // a exits and the kernel stops the kdamond (no valid target left)
    f.remove_process(80).expect("exit");
    std::fs::write(f.damon_dir().join("0/state"), "off\n").expect("w");
    let mut tb = tracker(&f, 10);
    tb.start(&hb, &map_for(&f, &hb)).expect("b");
    assert_eq!(read(&f, "state"), "on");
    assert_eq!(ctx(&f, "targets/nr_targets"), "1");
    assert_eq!(ctx(&f, "targets/0/pid_target"), "81");
    assert_eq!(ctx(&f, "targets/0/regions/nr_regions"), "2");
    drop(ta);
    assert_eq!(read(&f, "state"), "on", "a's stop leaves b alone");
    drop(tb);
    assert_eq!(read(&f, "state"), "off");
}

#[test]
fn a_target_that_cannot_be_added_is_refused_naming_the_pids_and_the_file() {
    let f = fake(&[90, 91]);
    let (ha, hb) = (
        f.open_process(90).expect("a"),
        f.open_process(91).expect("b"),
    );
    let mut ta = tracker(&f, 10);
    ta.start(&ha, &map_for(&f, &ha)).expect("a");
    std::fs::remove_file(f.damon_dir().join("0/contexts/0/targets/1/pid_target")).expect("rm");
    let mut tb = tracker(&f, 10);
    let e = tb.start(&hb, &map_for(&f, &hb)).expect_err("refused");
    let msg = e.to_string();
    assert!(msg.contains("pid(s) 90, 91"), "{msg}");
    assert!(msg.contains("targets/1/pid_target"), "{msg}");
    assert_eq!(tb.kdamond_index(), None);
    // a is still tracked: the next change writes a's target alone
    assert_eq!(ta.kdamond_index(), Some(0));
    drop(tb);
    ta.stop().expect("stop");
    assert_eq!(read(&f, "state"), "off");
}

#[test]
fn release_removes_the_shared_kdamond_and_later_stops_touch_nothing() {
    let f = fake(&[100, 101]);
    let (ha, hb) = (
        f.open_process(100).expect("a"),
        f.open_process(101).expect("b"),
    );
    let (mut ta, mut tb) = (tracker(&f, 10), tracker(&f, 10));
    ta.start(&ha, &map_for(&f, &ha)).expect("a");
    tb.start(&hb, &map_for(&f, &hb)).expect("b");
    let failed = f.linux().release_trackers();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(read(&f, "state"), "off");
    assert_eq!(read(&f, "contexts/nr_contexts"), "0");
    // someone else takes DAMON; our trackers' stops must not touch it
    std::fs::write(f.damon_dir().join("nr_kdamonds"), "1\n").expect("w");
    std::fs::write(f.damon_dir().join("0/state"), "on\n").expect("w");
    let e = tb.pass(&hb, &mut map_for(&f, &hb)).expect_err("released");
    assert!(e.to_string().contains("released"), "{e}");
    ta.stop().expect("a");
    tb.stop().expect("b");
    assert_eq!(read(&f, "state"), "on");
    // and DAMON is closed to us: auto does not offer it
    let e = f.tracker(TrackerChoice::Only(etmem_kernel::TrackerKind::Damon));
    assert!(matches!(e, Err(TrackError::Unavailable { .. })), "{e:?}");
}
