use super::*;
use etmem_sdk::testing::{FakeHost, Harness};
use etmem_sdk::{CgroupMemory, MemInfo, SystemFacts};

const MIB: u64 = 1 << 20;

fn mem(file: u64, anon: u64, avg10: f64) -> CgroupMemory {
    CgroupMemory {
        v2: true,
        usage: file + anon,
        limit: u64::MAX,
        file,
        anon,
        swap_limit: u64::MAX,
        pressure_avg10: avg10,
        ..CgroupMemory::default()
    }
}

fn facts(swap_free_kb: u64) -> SystemFacts {
    SystemFacts {
        meminfo: MemInfo {
            mem_total_kb: 1 << 20,
            swap_total_kb: 1 << 20,
            swap_free_kb,
            ..MemInfo::default()
        },
        nodes: Vec::new(),
    }
}

fn harness(host: FakeHost, keys: &[(&str, &str)]) -> Harness<Psi> {
    let mut h = Harness::<Psi>::configure(&Params::new(), host).expect("configure");
    let task = TaskInfo::named("p", "t", "cgroup_v1");
    h.new_task(&task, &Params::from_pairs(keys.iter().copied()))
        .expect("new task");
    h
}

fn round(h: &mut Harness<Psi>, n: u64) {
    let r = Round {
        number: n,
        passes: 0,
    };
    assert!(h.plan("t", &r, &[]).expect("plan").is_empty());
}

#[test]
fn reclaims_the_computed_amount_at_each_cgroups_own_rate() {
    let host = FakeHost::new()
        .with_system_facts(facts(1 << 20))
        .with_cgroup("t", "batch/a", mem(300 * MIB, 100 * MIB, 0.0))
        .with_cgroup("t", "batch/b", mem(100 * MIB, 0, 5.0));
    let mut h = harness(host, &[("cg_dir", "batch/*"), ("reclaim_rate", "0.1")]);
    round(&mut h, 1);
    let r = h.host.cgroup_reclaims();
    // B1 fixed: 10 % of 400 MiB; b is over the pressure limit and left alone
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].cgroup, "batch/a");
    assert_eq!(r[0].bytes, 40 * MIB);
    // the next round starts from what is left: 10 % of 360 MiB, 4 KiB rounded
    round(&mut h, 2);
    let r = h.host.cgroup_reclaims();
    assert_eq!(r[1].bytes, (36 * MIB) / 4096 * 4096);
}

#[test]
fn pressure_lowers_only_that_cgroups_rate_and_successes_raise_it() {
    let host = FakeHost::new()
        .with_system_facts(facts(1 << 20))
        .with_cgroup("t", "a", mem(1 << 40, 0, 0.0))
        .with_cgroup("t", "b", mem(1 << 40, 0, 1.0));
    let mut h = harness(
        host,
        &[
            ("cg_dir", "*"),
            ("reclaim_rate", "0.05"),
            ("pressure", "0.5"),
        ],
    );
    for n in 1..=5 {
        round(&mut h, n);
    }
    let out = h.command("showcg", Some("t")).expect("showcg");
    assert!(out.contains("cgroup a rate 0.06"), "{out}");
    // b: 5 skips, two steps down
    assert!(out.contains("cgroup b rate 0.03"), "{out}");
    assert!(out.contains("pressure_skips 5"), "{out}");
    // B2 fixed: the sixth reclaim of a uses its rate, 0.06, not the task's 0.05
    round(&mut h, 6);
    let r = h.host.cgroup_reclaims();
    let last = r.last().expect("reclaim");
    assert_eq!(last.cgroup, "a");
    let expected_usage = (1u64 << 40) - r[..5].iter().map(|x| x.bytes).sum::<u64>();
    // capped by reclaim_max_bytes (1 GiB) at these sizes: lower the usage to see the rate
    assert_eq!(last.bytes, (1 << 30).min(expected_usage));
}

#[test]
fn rate_used_is_the_cgroups_after_it_moved() {
    let host = FakeHost::new()
        .with_system_facts(facts(1 << 20))
        .with_cgroup("t", "a", mem(100 * MIB, 0, 0.0));
    let mut h = harness(
        host,
        &[
            ("cg_dir", "a"),
            ("reclaim_rate", "0.05"),
            ("limit_min_bytes", "0"),
        ],
    );
    for n in 1..=5 {
        // hold the usage steady so each amount shows the rate alone
        h.host.set_cgroup_memory("a", mem(100 * MIB, 0, 0.0));
        round(&mut h, n);
    }
    h.host.set_cgroup_memory("a", mem(100 * MIB, 0, 0.0));
    round(&mut h, 6);
    let r = h.host.cgroup_reclaims();
    assert_eq!(r[0].bytes, (5 * MIB) / 4096 * 4096);
    assert_eq!(r[5].bytes, (6 * MIB) / 4096 * 4096);
}

#[test]
fn anon_needs_swap_and_the_floor_holds() {
    let host =
        FakeHost::new()
            .with_system_facts(facts(0))
            .with_cgroup("t", "a", mem(0, 100 * MIB, 0.0));
    let mut h = harness(host, &[("cg_dir", "a"), ("reclaim_rate", "0.5")]);
    round(&mut h, 1);
    assert!(h.host.cgroup_reclaims().is_empty(), "no swap: nothing");
    let mut m = mem(100 * MIB, 0, 0.0);
    m.low = 90 * MIB;
    h.host.set_cgroup_memory("a", m);
    round(&mut h, 2);
    assert_eq!(h.host.cgroup_reclaims()[0].bytes, 5 * MIB);
}

#[test]
fn a_refused_glob_fails_the_round() {
    let host = FakeHost::new().with_system_facts(facts(1 << 20));
    let mut h = harness(host, &[("cg_dir", "x")]);
    let r = Round {
        number: 1,
        passes: 0,
    };
    assert!(matches!(h.plan("t", &r, &[]), Err(EngineError::Host(_))));
    assert!(h.host.cgroup_reclaims().is_empty());
}

#[test]
fn keys_are_checked() {
    let mut h = Harness::<Psi>::configure(&Params::new(), FakeHost::new()).expect("configure");
    let task = TaskInfo::named("p", "t", "cgroup_v1");
    let bad = |kv: &[(&str, &str)]| Params::from_pairs(kv.iter().copied());
    assert!(matches!(
        h.new_task(&task, &bad(&[])),
        Err(EngineError::MissingParam(k)) if k == "cg_dir"
    ));
    assert!(
        h.new_task(&task, &bad(&[("cg_dir", "a"), ("pressure", "0")]))
            .is_err()
    );
    assert!(
        h.new_task(&task, &bad(&[("cg_dir", "a"), ("bogus", "1")]))
            .is_err()
    );
    let k = PsiKeys::from_params(&bad(&[("cg_dir", "a")])).expect("defaults");
    assert_eq!(
        (
            k.pressure,
            k.reclaim_rate,
            k.reclaim_rate_max,
            k.reclaim_rate_min
        ),
        (0.1, 0.05, 0.5, 0.01)
    );
    assert_eq!(k.formula.reclaim_max_bytes, 1 << 30);
    assert_eq!(k.formula.limit_min_ratio, 0.1);
}

/// The parity fixture (`testdata`) does what its docs say: reclaims C's amounts (checked
/// against `formula`) at rates that move, skips under pressure, holds a cgroup at its
/// floor, and forgets the cgroup that left the glob.
#[test]
fn parity_fixture_reclaims_skips_moves_rates_and_forgets_a_vanished_cgroup() {
    let f = testdata::rounds();
    let expected = testdata::expected_reclaims();
    assert_eq!(expected.len(), f.rounds.len());
    let swap_free = f.facts.meminfo.swap_free_kb * 1024;
    let keys = |task: &str| {
        let (_, params) = f
            .tasks
            .iter()
            .find(|(t, _)| t.name == task)
            .expect("fixture task");
        PsiKeys::from_params(params).expect("fixture keys")
    };
    let memory = |round: usize, path: &str| {
        f.rounds[round]
            .cgroups
            .iter()
            .find(|c| c.path == path)
            .map(|c| c.memory)
            .expect("fixture cgroup")
    };

    // each expected amount is C's formula (B1 fixed) at the rate stated, and a real one
    for (i, round) in expected.iter().enumerate() {
        for e in round {
            let m = memory(i, e.cgroup);
            let k = keys(e.task);
            assert!(!formula::under_pressure(&m, k.pressure), "{e:?}");
            assert_eq!(
                formula::amount(&m, &k.formula, e.rate, Some(swap_free)),
                e.bytes,
                "round {}: {e:?}",
                i + 1
            );
            assert!(
                e.bytes >= 4 * MIB && e.bytes.is_multiple_of(formula::GRANULE),
                "{e:?}"
            );
        }
    }
    // the figures bind what the docs say they bind
    let (batch, web) = (keys("batch"), keys("web"));
    let b = memory(3, "batch/b");
    assert_eq!(formula::floor(&b, &batch.formula, Some(swap_free)), b.low);
    let c = memory(0, "batch/c");
    assert_eq!(formula::floor(&c, &batch.formula, Some(swap_free)), c.min);
    let api = memory(0, "web/api");
    assert_eq!(
        formula::floor(&api, &web.formula, Some(swap_free)),
        256 * MIB
    );
    assert_eq!(
        formula::amount(&api, &web.formula, 0.1, Some(swap_free)),
        64 * MIB
    );
    assert!((api.usage - 256 * MIB) / 10 > 64 * MIB, "the cap binds");
    let api = memory(3, "web/api");
    assert!(api.pressure_avg10 < web.pressure && formula::under_pressure(&api, web.pressure));
    let st = memory(0, "web/static");
    assert!(formula::floor(&st, &web.formula, Some(swap_free)) > st.usage);
    // kept across its absence, batch/c would have reached 0.06 by round 7
    assert_ne!(
        formula::amount(&memory(6, "batch/c"), &batch.formula, 0.06, Some(swap_free)),
        expected[6][2].bytes
    );

    // the engine, one fresh host per round as the daemon's rounds see the machine
    let mut h = Harness::<Psi>::configure(&f.engine_params, f.host(0)).expect("configure");
    for (info, params) in &f.tasks {
        h.new_task(info, params).expect("new task");
    }
    for (i, r) in f.rounds.iter().enumerate() {
        h.host = f.host(i);
        for p in &r.plans {
            assert!(
                h.plan(&p.task, &r.round, &p.scans)
                    .expect("plan")
                    .is_empty()
            );
        }
        let got: Vec<(String, String, u64)> = h
            .host
            .cgroup_reclaims()
            .into_iter()
            .map(|c| (c.task, c.cgroup, c.bytes))
            .collect();
        let want: Vec<(String, String, u64)> = expected[i]
            .iter()
            .map(|e| (e.task.to_string(), e.cgroup.to_string(), e.bytes))
            .collect();
        assert_eq!(got, want, "round {}", i + 1);
    }

    // where the rates ended, what each cgroup gave, how often each was left alone
    let sum = |path: &str, rounds: std::ops::Range<usize>| -> u64 {
        expected[rounds]
            .iter()
            .flatten()
            .filter(|e| e.cgroup == path)
            .map(|e| e.bytes)
            .sum()
    };
    let batch_out = h.command("showcg", Some("batch")).expect("showcg batch");
    assert_eq!(
        batch_out,
        format!(
            "task batch cg_dir batch/* pressure 0.1\n\
             cgroup batch/a rate 0.06 reclaimed {} pressure_skips 0\n\
             cgroup batch/b rate 0.05 reclaimed {} pressure_skips 2\n\
             cgroup batch/c rate 0.05 reclaimed {} pressure_skips 0\n",
            sum("batch/a", 0..7),
            sum("batch/b", 0..7),
            // forgotten in round 5: only what it gave since
            sum("batch/c", 5..7),
        )
    );
    let web_out = h.command("showcg", Some("web")).expect("showcg web");
    assert_eq!(
        web_out,
        format!(
            "task web cg_dir web/* pressure 1.5\n\
             cgroup web/api rate 0.09 reclaimed {} pressure_skips 2\n\
             cgroup web/static rate 0.10 reclaimed 0 pressure_skips 0\n",
            sum("web/api", 0..7),
        )
    );
}
