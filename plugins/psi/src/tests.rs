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
