//! The DAMON tracker against the FakeKernel's temp tree: it adds, configures, reads and
//! removes only its own kdamond, refuses one someone else uses, and releases on exit.
//! Nothing here writes to the real /proc or /sys (nor under /sys/kernel/mm/damon).

mod common;

use common::{fake_with, map_for};
use etmem_kernel::fake::FakeKdamond;
use etmem_kernel::track::{DamonAttrs, DamonTracker};
use etmem_kernel::{FakeKernel, Kernel, TrackError, Tracker, TrackerChoice};

/// A file of the fake DAMON sysfs tree, trimmed.
fn read(f: &FakeKernel, rel: &str) -> String {
    std::fs::read_to_string(f.damon_dir().join(rel))
        .expect(rel)
        .trim()
        .to_owned()
}

#[test]
fn damon_adds_configures_reads_and_removes_its_own_kdamond() {
    let f = fake_with(20, 0x10000, 0x30000);
    f.add_damon(
        &[FakeKdamond {
            running: false,
            nr_contexts: 0,
        }],
        1,
    )
    .expect("damon");
    let h = f.open_process(20).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    // passes 3 s apart: one aggregation per pass, 20 samples in it
    t.set_pass_window(std::time::Duration::from_secs(3));
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    assert_eq!(t.kdamond_index(), Some(1));
    assert_eq!(read(&f, "nr_kdamonds"), "2");
    assert_eq!(read(&f, "1/state"), "on");
    assert_eq!(read(&f, "1/contexts/nr_contexts"), "1");
    assert_eq!(read(&f, "1/contexts/0/operations"), "vaddr");
    assert_eq!(read(&f, "1/contexts/0/targets/0/pid_target"), "20");
    assert_eq!(
        read(&f, "1/contexts/0/monitoring_attrs/intervals/aggr_us"),
        "3000000"
    );
    assert_eq!(
        read(&f, "1/contexts/0/monitoring_attrs/intervals/sample_us"),
        "150000"
    );
    assert_eq!(
        read(&f, "1/contexts/0/monitoring_attrs/nr_regions/min"),
        "100"
    );
    assert_eq!(read(&f, "1/contexts/0/schemes/0/action"), "stat");
    assert_eq!(
        read(&f, "1/contexts/0/schemes/0/access_pattern/sz/max"),
        u64::MAX.to_string()
    );
    // DAMON starts from the tracked mapping's own edges, cut at a 128 KiB multiple
    assert_eq!(read(&f, "1/contexts/0/targets/0/regions/nr_regions"), "2");
    assert_eq!(
        read(&f, "1/contexts/0/targets/0/regions/0/start"),
        0x10000.to_string()
    );
    assert_eq!(
        read(&f, "1/contexts/0/targets/0/regions/0/end"),
        0x20000.to_string()
    );
    assert_eq!(
        read(&f, "1/contexts/0/targets/0/regions/1/end"),
        0x30000.to_string()
    );
    assert_eq!(read(&f, "0/state"), "off", "kdamond 0 untouched");
    f.set_tried_regions(
        1,
        &[
            (0x10000, 0x20000, 0),
            (0x20000, 0x28000, 5),
            (0x28000, 0x40000, 1),
        ],
    )
    .expect("regions");
    // every page present but 0x26000 (swapped out) and 0x2e000 (never touched)
    let mut pm = vec![1u64 << 63; 32];
    pm[(0x26000 - 0x10000) / 0x1000] = 1 << 62;
    pm[(0x2e000 - 0x10000) / 0x1000] = 0;
    f.set_pagemap(20, 0x10000, &pm).expect("pagemap");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(read(&f, "1/state"), "update_schemes_tried_regions");
    t.pass(&h, &mut m).expect("pass");
    // DAMON started from 16-page regions: beside a region read 5 times of 20, all of an
    // unaccessed 16-page region counts once a pass (the read edge is that uncertain)
    assert_eq!(m.get(0x10000), Some(2));
    assert_eq!(m.get(0x27000), Some(10));
    assert_eq!(m.get(0x2f000), Some(2));
    // DAMON's region covers them, pagemap says they are not in memory
    assert_eq!(m.get(0x26000), None, "swapped out: absent");
    assert_eq!(m.get(0x2e000), None, "never touched: absent");
    t.stop().expect("stop");
    assert_eq!(read(&f, "1/state"), "off");
    assert_eq!(read(&f, "1/contexts/nr_contexts"), "0");
    assert_eq!(read(&f, "nr_kdamonds"), "1", "ours removed");
}

#[test]
fn damon_refuses_when_someone_else_uses_it() {
    for (existing, needle) in [
        (
            FakeKdamond {
                running: true,
                nr_contexts: 1,
            },
            "kdamond 0 is running and is not ours",
        ),
        (
            FakeKdamond {
                running: false,
                nr_contexts: 1,
            },
            "kdamond 0 is off but configured by someone else",
        ),
    ] {
        let f = fake_with(21, 0x10000, 0x30000);
        f.add_damon(&[existing], 1).expect("damon");
        let h = f.open_process(21).expect("open");
        let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
        let e = t.start(&h, &map_for(&f, &h)).expect_err("must fail");
        assert!(matches!(e, TrackError::DamonInUse(_)), "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert_eq!(read(&f, "nr_kdamonds"), "1", "nr_kdamonds untouched");
        assert_eq!(
            read(&f, "0/state"),
            if existing.running { "on" } else { "off" }
        );
        assert_eq!(read(&f, "1/state"), "off");
        // auto skips DAMON and says why when nothing else is there
        let e = f.tracker(TrackerChoice::Auto).expect_err("must fail");
        assert!(
            matches!(e, TrackError::NoneAvailable(ref v) if v.len() == 4),
            "{e}"
        );
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn damon_leaves_nr_kdamonds_alone_when_another_appears() {
    let f = fake_with(22, 0x10000, 0x30000);
    f.add_damon(&[], 2).expect("damon");
    let h = f.open_process(22).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    t.start(&h, &map_for(&f, &h)).expect("start");
    assert_eq!(t.kdamond_index(), Some(0));
    // someone else adds a kdamond after ours
    std::fs::write(f.damon_dir().join("nr_kdamonds"), "2\n").expect("w");
    std::fs::write(f.damon_dir().join("1/state"), "on\n").expect("w");
    t.stop().expect("stop");
    assert_eq!(read(&f, "nr_kdamonds"), "2", "not renumbered");
    assert_eq!(read(&f, "1/state"), "on", "theirs untouched");
    assert_eq!(read(&f, "0/state"), "off");
}

#[test]
fn release_removes_our_kdamond_and_refuses_new_ones() {
    let f = fake_with(30, 0x10000, 0x20000);
    f.add_damon(&[], 2).expect("damon");
    let h = f.open_process(30).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    t.start(&h, &map_for(&f, &h)).expect("start");
    assert_eq!(read(&f, "nr_kdamonds"), "1");
    assert_eq!(read(&f, "0/state"), "on");
    // etmemd exits while the tracker is alive (a pass on a blocking thread)
    let failed = f.linux().release_trackers();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(read(&f, "0/state"), "off");
    assert_eq!(read(&f, "0/contexts/nr_contexts"), "0");
    assert_eq!(read(&f, "nr_kdamonds"), "0");
    // the tracker's own stop afterwards touches nothing (someone else may own it now)
    std::fs::write(f.damon_dir().join("nr_kdamonds"), "1\n").expect("write");
    std::fs::write(f.damon_dir().join("0/state"), "on\n").expect("write");
    t.stop().expect("stop");
    assert_eq!(read(&f, "0/state"), "on");
    assert_eq!(read(&f, "nr_kdamonds"), "1");
    // and no new kdamond of ours appears under a released tree
    std::fs::write(f.damon_dir().join("0/state"), "off\n").expect("write");
    std::fs::write(f.damon_dir().join("nr_kdamonds"), "0\n").expect("write");
    let e = t.start(&h, &map_for(&f, &h)).expect_err("closed");
    assert!(e.to_string().contains("exiting"), "{e}");
    assert_eq!(read(&f, "nr_kdamonds"), "0");
}

#[test]
fn damon_counts_pages_written_since_the_last_pass_where_soft_dirty_works() {
    let f = fake_with(50, 0x10000, 0x14000);
    f.enable_soft_dirty().expect("soft-dirty");
    f.add_damon(&[], 1).expect("damon");
    let h = f.open_process(50).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    let clear_refs = || std::fs::read_to_string(f.proc_root().join("50/clear_refs")).expect("cr");
    assert_eq!(clear_refs(), "4", "soft-dirty cleared at start");
    std::fs::write(f.proc_root().join("50/clear_refs"), "").expect("reset");
    // DAMON saw nothing (a hot page whose TLB entry stayed cached looks idle to it); the
    // second page was written since
    f.set_tried_regions(0, &[(0x10000, 0x14000, 0)])
        .expect("regions");
    let p = 1u64 << 63;
    f.set_pagemap(50, 0x10000, &[p, p | 1 << 55, p, p])
        .expect("pagemap");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(m.get(0x10000), Some(0));
    assert_eq!(m.get(0x11000), Some(1), "written: counted");
    assert_eq!(clear_refs(), "4", "cleared again for the next pass");
    t.stop().expect("stop");
}

#[test]
fn cold_pages_of_a_region_damon_saw_accessed_are_told_apart_by_the_written_ones() {
    // one 16-page mapping, one DAMON region over it that DAMON saw accessed in 3 of 20
    // samples; pages 0..4 were written (hot, in one mapping with cold ones)
    let f = fake_with(51, 0x10000, 0x20000);
    f.enable_soft_dirty().expect("soft-dirty");
    f.add_damon(&[], 1).expect("damon");
    let h = f.open_process(51).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    f.set_tried_regions(0, &[(0x10000, 0x20000, 3)])
        .expect("regions");
    let p = 1u64 << 63;
    let pm: Vec<u64> = (0..16)
        .map(|i| if i < 4 { p | 1 << 55 } else { p })
        .collect();
    f.set_pagemap(51, 0x10000, &pm).expect("pagemap");
    t.pass(&h, &mut m).expect("pass");
    for i in 0..16u64 {
        let want = if i < 4 { Some(4) } else { Some(0) };
        assert_eq!(m.get(0x10000 + i * 0x1000), want, "page {i}");
    }
    // next pass: DAMON saw 12 of 20 samples accessed, more than 4 written pages of 16
    // can explain: pages only read are among the others, so the whole region counts
    f.set_tried_regions(0, &[(0x10000, 0x20000, 12)])
        .expect("regions");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(m.get(0x10000), Some(4 + 13));
    assert_eq!(m.get(0x1f000), Some(12));
    t.stop().expect("stop");
}

#[test]
fn regions_come_through_the_tracepoint_where_tracefs_serves_and_its_instance_goes_with_the_kdamond()
{
    let f = fake_with(52, 0x10000, 0x14000);
    f.add_damon(&[], 1).expect("damon");
    // tracefs with the damon_aggregated event and our instance
    let inst = etmem_kernel::fake::fake_trace_instance(
        f.sys_root(),
        &format!("etmemd-{}", std::process::id()),
    )
    .expect("instance");
    std::fs::write(f.damon_dir().join("0/pid"), "93\n").expect("kthread pid");
    let h = f.open_process(52).expect("open");
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    let mut m = map_for(&f, &h);
    t.start(&h, &m).expect("start");
    let filter = inst.join("events/damon/damon_aggregated/filter");
    assert_eq!(
        std::fs::read_to_string(&filter).expect("filter"),
        "common_pid == 93",
        "only our kdamond's events"
    );
    // sysfs would say every region was idle; the tracepoint says the second page was used
    f.set_tried_regions(0, &[(0x10000, 0x14000, 0)])
        .expect("regions");
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic).tv_sec + 5;
    let line = |s: u64, e: u64, n: u64| {
        format!(
            "kdamond.0-93 [001] ..... {ts}.000100: damon_aggregated: target_id=0 \
             nr_regions=3 {s}-{e}: {n} 4\n"
        )
    };
    let text = line(0x10000, 0x11000, 0) + &line(0x11000, 0x12000, 7) + &line(0x12000, 0x14000, 0);
    std::fs::write(inst.join("trace_pipe"), text).expect("events");
    f.set_pagemap(52, 0x10000, &[1 << 63; 4]).expect("pagemap");
    t.pass(&h, &mut m).expect("pass");
    assert_eq!(m.get(0x11000), Some(7), "the tracepoint's count");
    // the unaccessed neighbours count once: DAMON started from this whole 4-page
    // mapping, its edge beside a read region is no finer (refine's tests split them)
    assert_eq!(m.get(0x10000), Some(1));
    assert_eq!(m.get(0x13000), Some(1));
    assert_eq!(
        read(&f, "0/state"),
        "on",
        "no update_schemes_tried_regions written"
    );
    // stop: the kdamond goes, and our instance with it (the kernel empties it on rmdir;
    // the test does)
    for p in [
        "trace_pipe",
        "trace",
        "trace_clock",
        "buffer_size_kb",
        "tracing_on",
    ] {
        let _ = std::fs::remove_file(inst.join(p));
    }
    std::fs::remove_dir_all(inst.join("events")).expect("events");
    t.stop().expect("stop");
    assert!(!inst.exists(), "instance removed");
}
