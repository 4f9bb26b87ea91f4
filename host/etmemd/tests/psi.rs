//! The psi engine end to end: the real server and daemon core on a fake kernel whose
//! cgroup v1 tree (openEuler's layout: patterns under `cpuacct`, memory files under
//! `memory`) has two cgroups `conf/psi.ini`'s `cg_dir=batch/*` matches, one of them under
//! pressure, and one it does not match. `obj add` of the example as it is (but for a 1 s
//! interval), `project show` as C prints it, `project start`; the fake kernel must see
//! `memory.reclaim` writes of the amount C's formula computes (B1 fixed) for the calm
//! cgroup only; `engine showcg` reports each cgroup, other engine commands fail as C's
//! (psi has no `eng_mgt_func`: OPT_INVAL). With PSI off the engine cannot be added.

mod common;

use common::{Served, frame, write_conf};
use etmem_host::EngineRegistry;
use etmem_host::engine::Scheduling;
use etmem_kernel::{CgroupVersion, FakeCgroup, FakeKernel, Kernel, RecordedCall};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

/// `conf/psi.ini` with a 1 s interval instead of 10.
fn conf() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../conf/psi.ini"))
        .expect("conf/psi.ini");
    assert!(text.contains("\ninterval=10\n"), "conf/psi.ini changed");
    for want in [
        "cg_dir=batch/*",
        "pressure=0.1",
        "reclaim_rate=0.05",
        "limit_min_bytes=104857600",
        "reclaim_max_bytes=536870912",
    ] {
        assert!(text.contains(want), "conf/psi.ini changed: no `{want}`");
    }
    text.replace("\ninterval=10\n", "\ninterval=1\n")
}

fn engine_frame(proj: &str, eng_cmd: &str, task: &str) -> String {
    format!("proj_name {proj} file_name - cmd 5 eng_name psi eng_cmd {eng_cmd} task_name {task}")
}

fn reclaims(fake: &FakeKernel) -> Vec<(String, u64)> {
    fake.calls()
        .into_iter()
        .filter_map(|c| match c {
            RecordedCall::CgroupReclaim { path, bytes } => Some((path, bytes)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conf_psi_ini_adds_starts_and_reclaims_the_calm_cgroup_only() {
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    // batch/a: 300 MiB of page cache and 100 MiB anonymous, no memory+swap limit, calm
    let calm = FakeCgroup::new("batch/a", 300 * MIB, 100 * MIB);
    fake.add_cgroup(CgroupVersion::V1, &calm).expect("batch/a");
    // batch/b: as much, under pressure (avg10 5 % >= pressure=0.1)
    let mut busy = FakeCgroup::new("batch/b", 300 * MIB, 100 * MIB);
    busy.avg10 = 5.0;
    fake.add_cgroup(CgroupVersion::V1, &busy).expect("batch/b");
    // not matched by batch/*
    fake.add_cgroup(CgroupVersion::V1, &FakeCgroup::new("other", 300 * MIB, 0))
        .expect("other");

    let dir = tempfile::tempdir().expect("dir");
    let file = write_conf(dir.path(), "psi.ini", &conf());

    let kernel: Arc<dyn Kernel> = fake.clone();
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_psi::Psi>("psi", Scheduling::Cgroup);
    let srv = Served::start(kernel, registry, "psi");

    assert_eq!(srv.request(frame(0, "-", &file)).await, [0xFF]);
    let show = |started: &str| {
        let mut s = format!(
            "project: psi_demo\n\
             number   type     value            name             engine           started \n\
             1        name     cgroup_v1        batch_jobs       psi              {started:<8}\n"
        )
        .into_bytes();
        s.push(0xFF);
        s
    };
    assert_eq!(srv.request(frame(4, "-", "-")).await, show("false"));
    assert_eq!(srv.request(frame(2, "psi_demo", "-")).await, [0xFF]);
    assert_eq!(srv.request(frame(4, "psi_demo", "-")).await, show("true"));

    // the first round comes after one interval
    let t0 = Instant::now();
    while reclaims(&fake).len() < 2 && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = reclaims(&fake);
    assert!(got.len() >= 2, "two rounds of reclaim within 20 s: {got:?}");
    assert!(
        got.iter().all(|(p, _)| p == "batch/a"),
        "only the calm matched cgroup: {got:?}"
    );
    // C's formula with its values (B1 fixed): everything is reclaimable (no memory+swap
    // limit, swap free on the fake machine), so floor = limit_min_bytes = 100 MiB and the
    // first amount is (400 - 100) MiB * reclaim_rate 0.05 = 15 MiB
    assert_eq!(got[0].1, 15 * MIB, "first amount");
    // the fake kernel took it all: the next is 5 % of what is left above the floor
    assert_eq!(
        got[1].1,
        (385 - 100) * MIB / 20 / 4096 * 4096,
        "second amount"
    );

    let out = srv
        .request(engine_frame("psi_demo", "showcg", "batch_jobs"))
        .await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("task batch_jobs cg_dir batch/* pressure 0.1\n"),
        "{text}"
    );
    assert!(
        text.contains("cgroup batch/a rate 0.05 reclaimed "),
        "{text}"
    );
    let b = text
        .lines()
        .find(|l| l.starts_with("cgroup batch/b "))
        .unwrap_or_else(|| panic!("no batch/b in {text}"));
    let skips: u64 = b
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{b}"));
    assert!(
        b.contains(" reclaimed 0 ") && skips >= 2,
        "left alone for pressure every round: {b}"
    );
    assert!(!text.contains("cgroup other"), "{text}");
    // C's psi engine has no engine commands: anything else is OPT_INVAL
    let out = srv
        .request(engine_frame("psi_demo", "showtaskpages", "batch_jobs"))
        .await;
    assert!(
        out.starts_with(b"error: invalid parameters") && out.ends_with(&[0xFE]),
        "{}",
        String::from_utf8_lossy(&out)
    );

    assert_eq!(srv.request(frame(3, "psi_demo", "-")).await, [0xFF]);
    let after_stop = reclaims(&fake).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(reclaims(&fake).len(), after_stop, "nothing after stop");
    assert_eq!(srv.request(frame(1, "-", &file)).await, [0xFF]);
    // as C: without /proc/pressure/memory (PSI off) the psi engine cannot be added, and
    // the file adds nothing (all or nothing)
    std::fs::remove_file(fake.proc_root().join("pressure/memory")).expect("psi off");
    let out = srv.request(frame(0, "-", &file)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("error: etmemd has internal error")
            && text.contains("engine `psi` in project `psi_demo`: ")
            && text.contains("pressure/memory")
            && out.ends_with(&[0xFE]),
        "{text}"
    );
    let shown = srv.request(frame(4, "-", "-")).await;
    assert!(!String::from_utf8_lossy(&shown).contains("psi_demo"));
    srv.stop().await;
}
