//! Engine-level tests through the SDK's harness (the same glue as the exported forms).

use super::*;
use etmem_sdk::testing::{FakeHost, Harness};

const H: u64 = 2 << 20;
const VM1: u64 = 0x7f00_0000_0000;

/// The fixture's engine on `host`, with the fixture's tasks.
fn harness_on(f: &testdata::Fixture, host: FakeHost) -> Harness<Cslide> {
    let mut h = Harness::<Cslide>::configure(&f.engine_params, host).expect("configure");
    for (info, params) in &f.tasks {
        h.new_task(info, params).expect("new task");
    }
    h
}

fn fixture_harness() -> (testdata::Fixture, Harness<Cslide>) {
    let f = testdata::rounds();
    let h = harness_on(&f, f.host(0));
    (f, h)
}

/// How many times the engine called the host's `call`.
fn calls(h: &Harness<Cslide>, call: &str) -> usize {
    h.host.calls().iter().filter(|c| **c == call).count()
}

fn migrate(pid: u32, addrs: &[u64], node: u32) -> Action {
    Action::Migrate {
        pid,
        runs: PageRun::coalesce(addrs.iter().map(|&a| (a, PageSize::Size2M))),
        node,
    }
}

/// vm1's (pid 300) planned moves: `cold` pages to node 1, then pages 0 and 2 (hot) to node
/// 0.
fn vm1_moves(cold: &[u64]) -> Vec<Action> {
    vec![migrate(300, cold, 1), migrate(300, &[VM1, VM1 + 2 * H], 0)]
}

fn migrated_bytes(actions: &[Action]) -> u64 {
    actions
        .iter()
        .map(|a| a.runs().iter().map(PageRun::bytes).sum::<u64>())
        .sum()
}

#[test]
fn first_plan_call_plans_the_whole_engine_within_the_quota() {
    let (f, mut h) = fixture_harness();
    let r = &f.rounds[0];
    let vm1 = h
        .plan("vm1", &r.round, &r.plans[0].scans)
        .expect("plan vm1");
    // Hand-computed (see testdata): move hot cap 0 + 8/2 = 4 MiB: vm1's count-2 pages on
    // node 1 (pages 0 and 2); quota left 0, cold_replaced 4 MiB: two count-0 pages of vm1
    // leave node 0 (pages 4 and 5). Cold list first, as C migrates.
    assert_eq!(vm1, vm1_moves(&[VM1 + 4 * H, VM1 + 5 * H]));
    assert_eq!(calls(&h, "task-scan"), 1);
    let vm2 = h
        .plan("vm2", &r.round, &r.plans[1].scans)
        .expect("plan vm2");
    assert_eq!(vm2, vec![]);
    // vm2's share came from the round's plan: no second scan fetch, no second plan.
    assert_eq!(calls(&h, "task-scan"), 1);
    assert_eq!(calls(&h, "system-facts"), 1);
    // 8 MiB quota per pair per round: both directions together.
    assert!(migrated_bytes(&vm1) + migrated_bytes(&vm2) <= 8 << 20);
}

#[test]
fn show_texts_report_the_round_statistics() {
    let (f, mut h) = fixture_harness();
    assert_eq!(
        h.command("showtaskpages", None),
        Err(EngineError::TaskRequired("showtaskpages".into()))
    );
    let r = &f.rounds[0];
    h.plan("vm1", &r.round, &r.plans[0].scans).expect("plan");
    let text = h.command("showhostpages", None).expect("showhostpages");
    // `[` + asctime (24 characters) + `] `
    assert!(text.starts_with('['), "{text:?}");
    assert_eq!(&text[25..27], "] ");
    assert_eq!(
        &text[27..],
        "host pages info (KB):\n \
         node      total       used        hot       cold\n    \
         0      65536      20480       4096      16384\n    \
         1      65536       8192       6144       2048\n"
    );
    let text = h
        .command("showtaskpages", Some("vm1"))
        .expect("showtaskpages");
    assert_eq!(
        &text[27..],
        "task 300 pages info (KB):\n \
         node       used        hot       cold\n    \
         0       8192          0       8192\n    \
         1       8192       6144       2048\n"
    );
    assert_eq!(
        h.command("showpages", None),
        Err(EngineError::UnknownCommand("showpages".into()))
    );
    // the JSON forms carry the figures of the texts
    let json = h
        .command("showtaskpages -o json", Some("vm1"))
        .expect("showtaskpages -o json");
    let time = &json[..json.find(",\"task\"").expect("task key")];
    assert!(time.starts_with("{\"time\":"), "{json}");
    assert_eq!(
        &json[time.len()..],
        concat!(
            r#","task":"vm1","pid":300,"nodes":[{"node":0,"used_kb":8192,"hot_kb":0,"cold_kb":8192},"#,
            r#"{"node":1,"used_kb":8192,"hot_kb":6144,"cold_kb":2048}]}"#,
            "\n"
        )
    );
    let host = h
        .command("showhostpages -o json", None)
        .expect("showhostpages -o json");
    assert!(
        host.ends_with(
            r#""nodes":[{"node":0,"total_kb":65536,"used_kb":20480,"hot_kb":4096,"cold_kb":16384},{"node":1,"total_kb":65536,"used_kb":8192,"hot_kb":6144,"cold_kb":2048}]}
"#
        ),
        "{host}"
    );
    // a command it does not know, in JSON: what the host reads as "no JSON"
    let e = h
        .command("showpages -o json", None)
        .expect_err("unknown command");
    assert!(etmem_sdk::command::is_no_json(&e, "showpages"), "{e}");
    assert_eq!(
        h.command("showtaskpages -o json", None),
        Err(EngineError::TaskRequired("showtaskpages".into()))
    );
}

#[test]
fn show_before_a_round_and_without_tasks() {
    let f = testdata::rounds();
    let mut h = Harness::<Cslide>::configure(&f.engine_params, f.host(0)).expect("configure");
    let e = h.command("showhostpages", None).expect_err("no task");
    assert_eq!(
        e.to_string(),
        "showhostpages: no task of this engine is started"
    );
    for (info, params) in &f.tasks {
        h.new_task(info, params).expect("new task");
    }
    // No round yet: the epoch, and the machine's nodes with zero pages; the task's pid from
    // its `type=pid` value.
    let text = h
        .command("showtaskpages", Some("vm2"))
        .expect("showtaskpages");
    assert_eq!(
        text,
        "[Thu Jan  1 00:00:00 1970] task 400 pages info (KB):\n \
         node       used        hot       cold\n    \
         0          0          0          0\n    \
         1          0          0          0\n"
    );
    h.drop_task("vm1").expect("drop");
    h.drop_task("vm2").expect("drop");
    assert!(h.command("showhostpages", None).is_err());
}

#[test]
fn each_round_is_planned_once_and_a_new_round_number_replans() {
    let (f, mut h) = fixture_harness();
    for (i, r) in f.rounds.iter().enumerate() {
        h.host = f.host(i);
        let a = h
            .plan("vm1", &r.round, &r.plans[0].scans)
            .expect("plan vm1");
        let b = h
            .plan("vm2", &r.round, &r.plans[1].scans)
            .expect("plan vm2");
        assert!(migrated_bytes(&a) + migrated_bytes(&b) <= 8 << 20);
        assert_eq!(calls(&h, "task-scan"), 1);
    }
    // The same task planned twice in one round number is a new round (the host never does
    // that within a round): it is planned again rather than handed nothing.
    let r = &f.rounds[2];
    let again = h.plan("vm1", &r.round, &r.plans[0].scans).expect("plan");
    assert!(!again.is_empty());
}

#[test]
fn a_task_joining_a_planned_round_gets_what_is_left() {
    let (f, mut h) = fixture_harness();
    h.stop_task("vm1").expect("stop");
    h.stop_task("vm2").expect("stop");
    // Restart: vm2 first; vm1 is still marked stopped, so vm2 is planned alone.
    let r = &f.rounds[0];
    let vm2 = h
        .plan("vm2", &r.round, &r.plans[1].scans)
        .expect("plan vm2");
    assert_eq!(calls(&h, "task-scan"), 0);
    // vm2 alone: no vm2 page on node 1, so nothing moves up; free 0 < reserve 2 MiB: move
    // cold cap = min(quota 8, 2 - 0) = 2 MiB: one count-0 page of vm2.
    assert_eq!(vm2, vec![migrate(400, &[0x7e00_0000_0000 + 2 * H], 1)]);
    // vm1 joins the round with what is left: free 2, cold_free 30, quota 6 MiB. Move hot
    // cap 2 + (6-2)/2 = 4 MiB (pages 0 and 2), quota then 6-2-4 = 0, cold_replaced 2 MiB:
    // one count-0 page (page 4) leaves node 0. 8 MiB in all.
    let vm1 = h
        .plan("vm1", &r.round, &r.plans[0].scans)
        .expect("plan vm1");
    assert_eq!(vm1, vm1_moves(&[VM1 + 4 * H]));
    assert!(
        migrated_bytes(&vm1) + migrated_bytes(&vm2) <= 8 << 20,
        "{vm1:?}"
    );
}

#[test]
fn a_node_without_huge_pages_skips_the_round() {
    let mut f = testdata::rounds();
    f.facts.nodes[1].huge_total_kb = 0;
    let mut h = harness_on(&f, f.host(0));
    let r = &f.rounds[0];
    assert_eq!(h.plan("vm1", &r.round, &r.plans[0].scans), Ok(vec![]));
    assert_eq!(h.plan("vm2", &r.round, &r.plans[1].scans), Ok(vec![]));
    assert!(h.host.logs().iter().any(|(l, m)| *l == LogLevel::Warn
        && m == "cslide round 1: skipped: node 1 has no 2 MiB huge pages configured"));
}

#[test]
fn a_task_whose_nodes_are_unknown_is_left_out() {
    let f = testdata::rounds();
    // The host knows vm2's nodes only.
    let host = FakeHost::new()
        .with_system_facts(f.facts.clone())
        .with_scans("vm2", f.rounds[0].plans[1].scans.clone())
        .with_page_nodes("vm2", 400, &f.page_nodes[1].2);
    let mut h = harness_on(&f, host);
    let r = &f.rounds[0];
    assert_eq!(h.plan("vm1", &r.round, &r.plans[0].scans), Ok(vec![]));
    assert!(
        h.host.logs().iter().any(|(l, m)| *l == LogLevel::Warn
            && m.starts_with("cslide task `vm1` pid 300: page nodes:"))
    );
    // vm2 was still planned in that round.
    assert!(
        !h.plan("vm2", &r.round, &r.plans[1].scans)
            .expect("plan")
            .is_empty()
    );
}

#[test]
fn engine_and_task_keys() {
    let e = |pairs: &[(&str, &str)]| {
        Harness::<Cslide>::configure(&Params::from_pairs(pairs.iter().copied()), FakeHost::new())
            .map(|_| ())
    };
    let base = [
        ("node_pair", "0,1"),
        ("hot_threshold", "100"),
        ("node_mig_quota", "1024"),
        ("node_hot_reserve", "0"),
        ("loop", "3"),
    ];
    assert_eq!(e(&base), Ok(()));
    let c = Cslide::configure(&Params::from_pairs(base), &FakeHost::new()).expect("configure");
    // clamped to loop*3+1
    assert_eq!(c.config().hot_threshold, 10);
    assert_eq!(
        e(&base[1..]),
        Err(EngineError::MissingParam("node_pair".into()))
    );
    let mut bad = base;
    bad[0] = ("node_pair", "0,1;1,2");
    assert_eq!(
        e(&bad).expect_err("dup").to_string(),
        "key `node_pair`: expected `hot,cold` pairs (node 1 appears more than once), found `0,1;1,2`"
    );
    bad = base;
    bad[2] = ("node_mig_quota", "-1");
    assert!(e(&bad).is_err());

    let mut h = Harness::<Cslide>::configure(&Params::from_pairs(base), FakeHost::new())
        .expect("configure");
    let info = TaskInfo::named("p", "vm", "qemu");
    let t = |pairs: &[(&str, &str)]| Params::from_pairs(pairs.iter().copied());
    assert_eq!(
        h.new_task(
            &info,
            &t(&[
                ("vm_flags", "ht us"),
                ("anon_only", "no"),
                ("ign_host", "no")
            ])
        )
        .expect_err("vm_flags")
        .to_string(),
        "key `vm_flags`: expected exactly `ht`, found `ht us`"
    );
    assert_eq!(
        h.new_task(
            &info,
            &t(&[
                ("vm_flags", "ht"),
                ("anon_only", "true"),
                ("ign_host", "no")
            ])
        )
        .expect_err("anon_only")
        .to_string(),
        "key `anon_only`: expected `yes` or `no`, found `true`"
    );
    assert_eq!(
        h.new_task(&info, &t(&[("vm_flags", "ht"), ("anon_only", "no")])),
        Err(EngineError::MissingParam("ign_host".into()))
    );
    h.new_task(
        &info,
        &t(&[
            ("vm_flags", "ht"),
            ("anon_only", "no"),
            ("ign_host", "yes"),
            ("x", "1"),
        ]),
    )
    .expect("unknown keys ignored");
}
