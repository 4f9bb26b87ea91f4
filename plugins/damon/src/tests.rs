//! The damon engine against the SDK's FakeHost: keys, one scheme per pid and task, pids
//! that leave, stop.

use super::*;
use etmem_sdk::testing::{FakeHost, Harness};

fn params(extra: &[(&str, &str)]) -> Params {
    let mut p = vec![
        ("min_size", "4096"),
        ("max_size", "1073741824"),
        ("min_acc", "0"),
        ("max_acc", "0"),
        ("min_age", "10"),
        ("max_age", "4294967295"),
        ("action", "pageout"),
        ("sample_interval", "5000"),
        ("aggr_interval", "100000"),
        ("update_interval", "1000000"),
        ("min_nr_regions", "10"),
        ("max_nr_regions", "1000"),
    ];
    for (k, v) in extra {
        p.retain(|(x, _)| x != k);
        p.push((k, v));
    }
    Params::from_pairs(p)
}

fn scans(pids: &[Pid]) -> Vec<ScanResult> {
    pids.iter()
        .map(|&p| ScanResult::from_column_vecs(p, 0, vec![], vec![], vec![], vec![]).expect("scan"))
        .collect()
}

fn harness() -> Harness<Damon> {
    let mut h = Harness::<Damon>::configure(&params(&[]), FakeHost::new()).expect("configure");
    h.new_task(&TaskInfo::named("p", "a", "app"), &Params::default())
        .expect("task a");
    h.new_task(&TaskInfo::named("p", "b", "db"), &Params::default())
        .expect("task b");
    h
}

#[test]
fn keys_are_read_and_bad_ones_refused() {
    let h = Harness::<Damon>::configure(&params(&[]), FakeHost::new()).expect("configure");
    drop(h);
    let bad = Harness::<Damon>::configure(&params(&[("action", "migrate")]), FakeHost::new());
    assert!(
        matches!(bad, Err(EngineError::InvalidParam { ref key, .. }) if key == "action"),
        "{bad:?}"
    );
    let unknown = Harness::<Damon>::configure(&params(&[("speed", "1")]), FakeHost::new());
    assert!(matches!(unknown, Err(EngineError::UnknownParam(ref k)) if k == "speed"));
    let page = Params::from_pairs(
        params(&[])
            .pairs()
            .iter()
            .filter(|(k, _)| k != "aggr_interval")
            .cloned(),
    );
    let r = Harness::<Damon>::configure(&page, FakeHost::new());
    assert!(
        matches!(r, Err(EngineError::Failed(ref m)) if m.contains("scan_type=region")),
        "{r:?}"
    );
}

#[test]
fn every_pid_of_every_task_gets_the_scheme_once_and_leavers_lose_it() {
    let mut h = harness();
    let r = Round::default();
    assert!(h.plan("a", &r, &scans(&[10, 11])).expect("plan").is_empty());
    assert!(h.plan("b", &r, &scans(&[20])).expect("plan").is_empty());
    // again: nothing new is asked
    h.plan("a", &r, &scans(&[10, 11])).expect("plan");
    let applied = h.host.damon_schemes();
    let who: Vec<(&str, Pid)> = applied.iter().map(|a| (a.task.as_str(), a.pid)).collect();
    assert_eq!(who, [("a", 10), ("a", 11), ("b", 20)]);
    let a = &applied[0];
    assert_eq!(a.scheme.action, "pageout");
    assert_eq!((a.scheme.min_age, a.scheme.max_age), (10, u32::MAX));
    assert_eq!((a.attrs.sample_us, a.attrs.aggr_us), (5000, 100_000));
    let applies = h
        .host
        .calls()
        .iter()
        .filter(|c| **c == "damon-apply-scheme")
        .count();
    assert_eq!(applies, 3);
    // pid 11 left
    h.plan("a", &r, &scans(&[10])).expect("plan");
    let who: Vec<Pid> = h.host.damon_schemes().iter().map(|a| a.pid).collect();
    assert_eq!(who, [10, 20]);
    // stop: task a's schemes go, b's stay
    h.stop_task("a").expect("stop");
    let who: Vec<Pid> = h.host.damon_schemes().iter().map(|a| a.pid).collect();
    assert_eq!(who, [20]);
    // started again: applied again
    h.plan("a", &r, &scans(&[10])).expect("plan");
    assert_eq!(h.host.damon_schemes().len(), 2);
}

#[test]
fn a_refusal_is_the_plan_error_and_is_asked_again_next_round() {
    let mut h = Harness::<Damon>::configure(
        &params(&[]),
        FakeHost::new().refusing_damon("damon: kdamond 0 is running and is not ours"),
    )
    .expect("configure");
    h.new_task(&TaskInfo::named("p", "a", "app"), &Params::default())
        .expect("task");
    let r = h.plan("a", &Round::default(), &scans(&[10]));
    assert!(matches!(r, Err(EngineError::Host(ref m)) if m.contains("not ours")));
    let _ = h.plan("a", &Round::default(), &scans(&[10]));
    let applies = h
        .host
        .calls()
        .iter()
        .filter(|c| **c == "damon-apply-scheme")
        .count();
    assert_eq!(applies, 2);
}

#[test]
fn no_engine_command() {
    let mut h = harness();
    assert!(matches!(
        h.command("showhostpages", None),
        Err(EngineError::UnknownCommand(_))
    ));
}
