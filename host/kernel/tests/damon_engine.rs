//! The damon engine's DAMOS schemes against the FakeKernel's temp DAMON tree: one target
//! and its own scheme per process on one kdamond of ours, the values written (text, no NUL
//! byte: spec B14), removal (the kdamond with the last one), and the refusals: bad values,
//! the access tracker on the same kdamond, other attributes, debugfs-only kernels. Nothing
//! here writes to the real /proc or /sys.

use etmem_kernel::access::AccessMap;
use etmem_kernel::track::{DamonAttrs, DamonTracker, DamosAction, DamosScheme};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel, TrackError, Tracker, VmaFilter};
use std::path::Path;

const SLOTS: usize = 4;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A fake kernel with processes `pids` and a free DAMON tree of one kdamond directory with
/// [`SLOTS`] targets and schemes (what the kernel makes when `nr_*` is written).
fn fake(pids: &[u32]) -> FakeKernel {
    let f = FakeKernel::new().expect("fake");
    for &pid in pids {
        f.add_process(&FakeProcess::new(pid, "app").anon(0x10000, 0x30000))
            .expect("process");
    }
    f.add_damon(&[], 1).expect("damon");
    let ctx = f.damon_dir().join("0/contexts/0");
    for t in 0..SLOTS {
        let td = ctx.join(format!("targets/{t}"));
        write(&td.join("pid_target"), "0\n");
        write(&td.join("regions/nr_regions"), "0\n");
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

/// A file of `kdamonds/0`, exactly as written (no trim: a NUL byte would show).
fn raw(f: &FakeKernel, rel: &str) -> String {
    let p = f.damon_dir().join("0").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ctx(f: &FakeKernel, rel: &str) -> String {
    raw(f, &format!("contexts/0/{rel}")).trim().to_owned()
}

fn nr_kdamonds(f: &FakeKernel) -> String {
    std::fs::read_to_string(f.damon_dir().join("nr_kdamonds"))
        .expect("nr_kdamonds")
        .trim()
        .to_owned()
}

/// The example config's values (conf/damon.ini).
fn attrs() -> DamonAttrs {
    DamonAttrs {
        sample_us: 5000,
        aggr_us: 100_000,
        update_us: 1_000_000,
        min_nr_regions: 10,
        max_nr_regions: 1000,
    }
}

fn pageout() -> DamosScheme {
    DamosScheme {
        min_size: 4096,
        max_size: 1 << 30,
        min_acc: 0,
        max_acc: 0,
        min_age: 10,
        max_age: u32::MAX,
        action: DamosAction::Pageout,
    }
}

#[test]
fn each_process_gets_a_target_and_its_scheme_and_the_last_removal_removes_the_kdamond() {
    let f = fake(&[60, 61]);
    let (ha, hb) = (
        f.open_process(60).expect("a"),
        f.open_process(61).expect("b"),
    );
    f.damon_scheme_availability().expect("free DAMON");
    let a = f
        .damon_apply_scheme(&ha, attrs(), pageout())
        .expect("apply a");
    assert_eq!(nr_kdamonds(&f), "1");
    assert_eq!(raw(&f, "state"), "on", "turned on, no NUL byte");
    assert_eq!(raw(&f, "contexts/nr_contexts"), "1");
    assert_eq!(ctx(&f, "operations"), "vaddr");
    for (file, v) in [
        ("intervals/sample_us", "5000"),
        ("intervals/aggr_us", "100000"),
        ("intervals/update_us", "1000000"),
        ("nr_regions/min", "10"),
        ("nr_regions/max", "1000"),
    ] {
        assert_eq!(
            raw(&f, &format!("contexts/0/monitoring_attrs/{file}")),
            v,
            "{file}"
        );
    }
    assert_eq!(raw(&f, "contexts/0/targets/0/pid_target"), "60");
    assert_eq!(
        ctx(&f, "targets/0/regions/nr_regions"),
        "0",
        "DAMON's own regions"
    );
    assert_eq!(raw(&f, "contexts/0/schemes/0/action"), "pageout");
    for (what, min, max) in [
        ("sz", "4096", "1073741824"),
        ("nr_accesses", "0", "0"),
        ("age", "10", "4294967295"),
    ] {
        let p = format!("contexts/0/schemes/0/access_pattern/{what}");
        assert_eq!(raw(&f, &format!("{p}/min")), min, "{what}");
        assert_eq!(raw(&f, &format!("{p}/max")), max, "{what}");
    }
    assert_eq!(
        ctx(&f, "schemes/0/filters/nr_filters"),
        "0",
        "one target: no filter"
    );
    assert_eq!(a.kdamond_index(), Some(0));

    // a second process (another task of the project, or another pid): the same kdamond,
    // committed while it runs, each scheme filtered to its own target
    let b = f
        .damon_apply_scheme(&hb, attrs(), pageout())
        .expect("apply b");
    assert_eq!(nr_kdamonds(&f), "1", "no second kdamond");
    assert_eq!(raw(&f, "state"), "commit");
    assert_eq!(ctx(&f, "targets/nr_targets"), "2");
    assert_eq!(ctx(&f, "targets/1/pid_target"), "61");
    assert_eq!(ctx(&f, "schemes/nr_schemes"), "2");
    for i in 0..2 {
        assert_eq!(ctx(&f, &format!("schemes/{i}/action")), "pageout");
        assert_eq!(ctx(&f, &format!("schemes/{i}/filters/0/type")), "target");
        assert_eq!(
            ctx(&f, &format!("schemes/{i}/filters/0/damon_target_idx")),
            i.to_string()
        );
        assert_eq!(ctx(&f, &format!("schemes/{i}/filters/0/matching")), "N");
    }
    // the user's attributes as written: not multiplied per target as the tracker's are
    assert_eq!(ctx(&f, "monitoring_attrs/nr_regions/min"), "10");

    a.remove().expect("remove a");
    assert_eq!(ctx(&f, "targets/nr_targets"), "1");
    assert_eq!(ctx(&f, "targets/0/pid_target"), "61");
    // dropping removes too: the last one takes the kdamond away
    drop(b);
    assert_eq!(raw(&f, "state"), "off");
    assert_eq!(raw(&f, "contexts/nr_contexts"), "0");
    assert_eq!(nr_kdamonds(&f), "0", "nr_kdamonds as before");
}

#[test]
fn bad_values_are_refused_before_anything_is_written() {
    let f = fake(&[62]);
    let h = f.open_process(62).expect("p");
    let mut s = pageout();
    s.min_age = 20;
    s.max_age = 10;
    let e = f.damon_apply_scheme(&h, attrs(), s).expect_err("min > max");
    assert!(
        e.to_string().contains("min_age 20 is above max_age 10"),
        "{e}"
    );
    let mut a = attrs();
    a.aggr_us = 100;
    let e = f
        .damon_apply_scheme(&h, a, pageout())
        .expect_err("aggr < sample");
    assert!(
        e.to_string().contains("aggr_interval 100 µs is below"),
        "{e}"
    );
    let mut a = attrs();
    a.min_nr_regions = 2;
    assert!(f.damon_apply_scheme(&h, a, pageout()).is_err());
    assert_eq!(nr_kdamonds(&f), "0", "nothing written");
    assert_eq!(
        DamosAction::from_name("pageout"),
        Some(DamosAction::Pageout)
    );
    assert_eq!(DamosAction::from_name("migrate_hot"), None);
}

#[test]
fn the_tracker_and_the_engine_never_share_our_kdamond_nor_do_other_attributes() {
    let f = fake(&[63, 64, 65]);
    let (h1, h2, h3) = (
        f.open_process(63).expect("1"),
        f.open_process(64).expect("2"),
        f.open_process(65).expect("3"),
    );
    let s = f
        .damon_apply_scheme(&h1, attrs(), pageout())
        .expect("apply");
    // the access tracker: refused, and `auto` knows before trying
    let mut t = DamonTracker::new(f.linux(), DamonAttrs::default());
    let vmas = f.vmas(&h2, &VmaFilter::default()).expect("vmas");
    let r = t.start(&h2, &AccessMap::new(&vmas, f.page_sizes()));
    assert!(
        matches!(r, Err(TrackError::DamonInUse(ref m)) if m.contains("damon engine's schemes (pid(s) 63)")),
        "{r:?}"
    );
    let why = etmem_kernel::probe(f.linux())
        .tracker(etmem_kernel::TrackerKind::Damon)
        .cloned()
        .expect("damon listed");
    assert!(
        why.as_ref().is_err_and(|m| m.contains("damon engine")),
        "{why:?}"
    );
    // other attributes: refused, naming both
    let mut other = attrs();
    other.aggr_us = 200_000;
    let r = f.damon_apply_scheme(&h3, other, pageout());
    assert!(
        matches!(r, Err(TrackError::DamonInUse(ref m)) if m.contains("aggr 100000 µs") && m.contains("aggr 200000 µs")),
        "{r:?}"
    );
    assert_eq!(ctx(&f, "targets/nr_targets"), "1", "nothing added");
    drop(s);
    assert_eq!(nr_kdamonds(&f), "0");
    // the other way round: the tracker first, then the engine is refused
    t.start(&h2, &AccessMap::new(&vmas, f.page_sizes()))
        .expect("tracker on a free DAMON");
    assert!(
        f.damon_scheme_availability()
            .is_err_and(|m| m.contains("access tracker (pid(s) 64)"))
    );
    let r = f.damon_apply_scheme(&h1, attrs(), pageout());
    assert!(
        matches!(r, Err(TrackError::DamonInUse(ref m)) if m.contains("serves the DAMON access tracker")),
        "{r:?}"
    );
    t.stop().expect("stop");
    assert_eq!(nr_kdamonds(&f), "0");
}

#[test]
fn a_kernel_with_damon_in_debugfs_only_is_named() {
    let f = FakeKernel::new().expect("fake");
    f.add_process(&FakeProcess::new(66, "app").anon(0x10000, 0x30000))
        .expect("process");
    write(&f.sys_root().join("kernel/debug/damon/monitor_on"), "off\n");
    let why = f.damon_scheme_availability().expect_err("no sysfs");
    assert!(why.contains("only offered through debugfs"), "{why}");
    // what `etmemd --probe` prints
    let report = etmem_kernel::probe(f.linux()).to_string();
    assert!(
        report.contains("engine damon: missing: DAMON is only offered through debugfs"),
        "{report}"
    );
    let h = f.open_process(66).expect("p");
    let e = f
        .damon_apply_scheme(&h, attrs(), pageout())
        .expect_err("no sysfs");
    assert!(e.to_string().contains("debugfs"), "{e}");
}

#[test]
fn a_kdamond_someone_else_runs_is_not_touched() {
    let f = FakeKernel::new().expect("fake");
    f.add_process(&FakeProcess::new(67, "app").anon(0x10000, 0x30000))
        .expect("process");
    f.add_damon(
        &[etmem_kernel::fake::FakeKdamond {
            running: true,
            nr_contexts: 1,
        }],
        1,
    )
    .expect("damon");
    let h = f.open_process(67).expect("p");
    let r = f.damon_apply_scheme(&h, attrs(), pageout());
    assert!(
        matches!(r, Err(TrackError::DamonInUse(ref m)) if m.contains("kdamond 0 is running and is not ours")),
        "{r:?}"
    );
    assert_eq!(nr_kdamonds(&f), "1");
    assert_eq!(raw(&f, "state").trim(), "on", "left as it was");
}
