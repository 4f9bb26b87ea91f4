//! Recorded rounds for parity tests: the same [`Fixture`] driven through the built-in
//! engine, the native `.so` and the wasm component must make the same host calls, above
//! all the same `cgroup-reclaim`s. psi plans with no process and no scan (the daemon calls
//! `plan` with none each `interval`); what drives it is what the host answers to
//! `cgroup-glob` and `cgroup-memory`, so a round here carries, besides its plan calls, the
//! cgroups the host knows during that round. It must not touch the machine.
//!
//! Seven rounds of a cgroup v2 machine with 3 GiB of free swap and two tasks, keys as the
//! daemon hands them (every key written out):
//! * `batch` (`cg_dir=batch/*`, `conf/psi.ini`'s keys: pressure 0.1, rate 0.05, floor
//!   `limit_min_bytes` 100 MiB, at most 512 MiB a round):
//!   * `batch/a`: ~800 MiB, no limit, calm: reclaimed every round; five reclaims raise
//!     its rate to 0.06 from round 6; the floor is `limit_min_bytes` plus its unreclaimable
//!     23 MiB;
//!   * `batch/b`: ~690 MiB, `memory.low` 400 MiB is its floor, swap nearly full (12 MiB of
//!     room for its anonymous pages); avg10 over 0.1 in rounds 1 and 2: left alone twice,
//!     which lowers its rate to 0.04; reclaimed at 0.04 in rounds 3 to 7, whose five
//!     reclaims raise it back to 0.05 (after round 7's reclaim);
//!   * `batch/c`: 300 MiB, `memory.min` 150 MiB is its floor; gone from the glob in round
//!     5 and back (a cgroup made again) in round 6: the engine forgets it, so its four
//!     earlier reclaims do not count and round 7 still reclaims at 0.05 (kept, it would
//!     reclaim at 0.06).
//! * `web` (`cg_dir=web/*`: pressure 1.5, rate 0.1 within 0.02..=0.12, floor a quarter of
//!   the limit, at most 64 MiB a round):
//!   * `web/api`: 1 GiB limit (floor 256 MiB), 160 MiB of swap room; rounds 1 to 3 ask for
//!     more than 64 MiB (capped); avg60 1.8 (avg10 0.9) in rounds 4 and 5: left alone twice
//!     on avg60 alone, rate 0.09, which rounds 6 and 7 reclaim at;
//!   * `web/static`: 120 MiB with a 512 MiB limit, its floor (128 MiB) is above its usage:
//!     never reclaimed.
//!
//! [`expected_reclaims`] lists the reclaims the rounds must give, with the rate each uses;
//! the crate's tests check each amount against [`crate::formula`].

pub use etmem_sdk::testing::fixture::PlanCall;

use etmem_sdk::testing::FakeHost;
use etmem_sdk::{CgroupMemory, MemInfo, Params, Round, SystemFacts, TaskInfo};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

/// What the host answers for one cgroup during a round: `cgroup-glob(task)` lists `path`,
/// `cgroup-memory(task, path)` answers `memory`.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupAnswer {
    /// the task whose `cg_dir` matches it
    pub task: String,
    /// its path below the cgroup root
    pub path: String,
    /// its figures during the round
    pub memory: CgroupMemory,
}

/// One round: its info, the plan calls in order, and the cgroups the host knows.
#[derive(Debug, Clone, PartialEq)]
pub struct PsiRound {
    /// passed to every plan call of the round
    pub round: Round,
    /// in call order (no scans: psi has none)
    pub plans: Vec<PlanCall>,
    /// what `cgroup-glob` and `cgroup-memory` answer during the round
    pub cgroups: Vec<CgroupAnswer>,
}

/// The engine's configuration, its tasks, what the host answers, and the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixture {
    /// `configure` params (psi has no engine keys; a psi project adds none)
    pub engine_params: Params,
    /// `new_task` calls, in order
    pub tasks: Vec<(TaskInfo, Params)>,
    /// `system-facts` (the free swap bounds what anonymous memory can go)
    pub facts: SystemFacts,
    /// the rounds
    pub rounds: Vec<PsiRound>,
}

impl Fixture {
    /// A [`FakeHost`] answering as the fixture says during round `index` (no cgroup past
    /// the last round). The host's cgroup ids count up per task in the order of
    /// [`PsiRound::cgroups`]; the rounds list a task's cgroups in the same order, with
    /// the one that comes and goes last, so every cgroup keeps its id from round to round.
    pub fn host(&self, index: usize) -> FakeHost {
        let mut h = FakeHost::new().with_system_facts(self.facts.clone());
        if let Some(r) = self.rounds.get(index) {
            for c in &r.cgroups {
                h = h.with_cgroup(&c.task, &c.path, c.memory);
            }
        }
        h
    }
}

/// One reclaim the rounds must give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedReclaim {
    /// the task
    pub task: &'static str,
    /// the cgroup
    pub cgroup: &'static str,
    /// bytes asked for
    pub bytes: u64,
    /// the cgroup's rate that round
    pub rate: f64,
}

/// A v2 cgroup of `file` + `anon` + `kernel` bytes (kernel: neither, so unreclaimable),
/// no limits, pressure `avg10`/`avg60`.
fn v2(file: u64, anon: u64, kernel: u64, avg10: f64, avg60: f64) -> CgroupMemory {
    CgroupMemory {
        v2: true,
        usage: file + anon + kernel,
        limit: u64::MAX,
        min: 0,
        low: 0,
        file,
        anon,
        swap_limit: u64::MAX,
        swap_usage: 0,
        pressure_avg10: avg10,
        pressure_avg60: avg60,
    }
}

fn answer(task: &str, path: &str, memory: CgroupMemory) -> CgroupAnswer {
    CgroupAnswer {
        task: task.into(),
        path: path.into(),
        memory,
    }
}

/// The cgroups of round `n` (1-based), as the module docs describe them.
fn cgroups(n: u64) -> Vec<CgroupAnswer> {
    let i = n - 1;
    let mut out = Vec::new();
    // batch/a: page cache shrinking as it is reclaimed (partly refilled), anon growing
    let avg10 = [0.02, 0.05, 0.01, 0.03, 0.06, 0.02, 0.04][i as usize % 7];
    out.push(answer(
        "batch",
        "batch/a",
        CgroupMemory {
            swap_usage: 40 * MIB,
            ..v2(
                612 * MIB - i * 21 * MIB + 123 * KIB * n,
                190 * MIB + i * 4 * MIB,
                23 * MIB + 300 * KIB,
                avg10,
                0.04,
            )
        },
    ));
    // batch/b: under pressure in rounds 1 and 2 (avg10), calm after
    let (avg10, avg60) = match n {
        1 | 2 => (0.35, 0.08),
        3 => (0.01, 0.09),
        _ => (0.01, 0.05),
    };
    out.push(answer(
        "batch",
        "batch/b",
        CgroupMemory {
            limit: 2048 * MIB,
            min: 64 * MIB,
            low: 400 * MIB,
            swap_limit: 512 * MIB,
            swap_usage: 500 * MIB,
            ..v2(
                420 * MIB - i * 3 * MIB,
                250 * MIB + 777 * KIB,
                30 * MIB,
                avg10,
                avg60,
            )
        },
    ));
    // batch/c: gone in round 5 (listed last: the others keep their ids)
    if n != 5 {
        out.push(answer(
            "batch",
            "batch/c",
            CgroupMemory {
                min: 150 * MIB,
                swap_usage: 2 * MIB,
                ..v2(200 * MIB + n * 37 * KIB, 90 * MIB, 10 * MIB, 0.0, 0.01)
            },
        ));
    }
    // web/api: more than the 64 MiB cap in rounds 1 to 3; avg60 at 1.8 in rounds 4 and 5
    let (file, avg10, avg60) = match n {
        1..=3 => (500 * MIB, 0.3, 0.6),
        4 | 5 => (320 * MIB, 0.9, 1.8),
        _ => (320 * MIB, 0.3, 0.6),
    };
    out.push(answer(
        "web",
        "web/api",
        CgroupMemory {
            limit: 1024 * MIB,
            swap_limit: 256 * MIB,
            swap_usage: 96 * MIB,
            ..v2(file + 5 * KIB * n, 380 * MIB, 20 * MIB, avg10, avg60)
        },
    ));
    // web/static: at its floor; swap not accounted (no room for its anonymous pages)
    out.push(answer(
        "web",
        "web/static",
        CgroupMemory {
            limit: 512 * MIB,
            swap_limit: 0,
            ..v2(4 * MIB, 100 * MIB, 16 * MIB, 0.0, 0.0)
        },
    ));
    out
}

/// A psi task's params as the daemon hands them: every key, defaults written out;
/// `values` in the order of [`crate::TASK_KEYS`] (`cg_dir` last).
fn task_keys(cg_dir: &str, values: [&str; 7]) -> Params {
    let mut pairs: Vec<(&str, &str)> = crate::TASK_KEYS.iter().copied().zip(values).collect();
    pairs.push(("cg_dir", cg_dir));
    Params::from_pairs(pairs)
}

/// Seven rounds of the tasks `batch` and `web` (module docs).
pub fn rounds() -> Fixture {
    let rounds = (1..=7u64)
        .map(|n| PsiRound {
            round: Round {
                number: n,
                passes: 0,
            },
            plans: ["batch", "web"]
                .into_iter()
                .map(|task| PlanCall {
                    task: task.into(),
                    scans: Vec::new(),
                })
                .collect(),
            cgroups: cgroups(n),
        })
        .collect();
    Fixture {
        engine_params: Params::new(),
        tasks: vec![
            (
                TaskInfo::named("psi_demo", "batch", "cgroup_v2"),
                task_keys(
                    "batch/*",
                    [
                        "0.1",
                        "0.05",
                        "0.5",
                        "0.01",
                        "0.1",
                        "104857600",
                        "536870912",
                    ],
                ),
            ),
            (
                TaskInfo::named("psi_demo", "web", "cgroup_v2"),
                task_keys(
                    "web/*",
                    ["1.5", "0.1", "0.12", "0.02", "0.25", "0", "67108864"],
                ),
            ),
        ],
        facts: SystemFacts {
            meminfo: MemInfo {
                mem_total_kb: 16 << 20,
                mem_free_kb: 2 << 20,
                mem_available_kb: 6 << 20,
                swap_total_kb: 4 << 20,
                swap_free_kb: 3 << 20,
                swap_cached_kb: 0,
            },
            nodes: Vec::new(),
        },
        rounds,
    }
}

/// The reclaims of each round of [`rounds`], in call order, with the rate each uses
/// (computed by hand from the module docs' figures; the crate's tests check them against
/// [`crate::formula::amount`] and the engine).
pub fn expected_reclaims() -> Vec<Vec<ExpectedReclaim>> {
    let r = |task, cgroup, bytes, rate| ExpectedReclaim {
        task,
        cgroup,
        bytes,
        rate,
    };
    vec![
        vec![
            r("batch", "batch/a", 36_810_752, 0.05),
            r("batch", "batch/c", 7_864_320, 0.05),
            r("web", "web/api", 67_108_864, 0.1),
        ],
        vec![
            r("batch", "batch/a", 35_926_016, 0.05),
            r("batch", "batch/c", 7_864_320, 0.05),
            r("web", "web/api", 67_108_864, 0.1),
        ],
        vec![
            r("batch", "batch/a", 35_041_280, 0.05),
            r("batch", "batch/b", 12_361_728, 0.04),
            r("batch", "batch/c", 7_868_416, 0.05),
            r("web", "web/api", 67_108_864, 0.1),
        ],
        vec![
            r("batch", "batch/a", 34_152_448, 0.05),
            r("batch", "batch/b", 12_234_752, 0.04),
            r("batch", "batch/c", 7_868_416, 0.05),
        ],
        vec![
            r("batch", "batch/a", 33_267_712, 0.05),
            r("batch", "batch/b", 12_107_776, 0.04),
        ],
        vec![
            r("batch", "batch/a", 38_862_848, 0.06),
            r("batch", "batch/b", 11_984_896, 0.04),
            r("batch", "batch/c", 7_872_512, 0.05),
            r("web", "web/api", 43_790_336, 0.09),
        ],
        vec![
            r("batch", "batch/a", 37_797_888, 0.06),
            r("batch", "batch/b", 11_857_920, 0.04),
            r("batch", "batch/c", 7_876_608, 0.05),
            r("web", "web/api", 43_790_336, 0.09),
        ],
    ]
}
