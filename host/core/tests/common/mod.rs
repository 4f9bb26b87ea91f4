//! Test kit: a fake /proc and /sys tree, config values built directly, and a recording
//! engine registered in place of slide and cslide.

#![allow(dead_code)]

pub mod faults;
pub mod steps;

use etmem_config::{
    ConfigFile, CslideEngineConf, CslideTaskConf, DamonAction, DamonEngineConf, EngineConf,
    EngineKind, ProjectConf, ScanConf, SectionPos, SlideTaskConf, TaskConf, TaskEngineConf,
    TaskTarget, ThirdpartyEngineConf,
};
use etmem_host::plugin::{HostRef, Params, load_builtin};
use etmem_host::{Daemon, DaemonHandle, DaemonOptions, EngineRegistry, Scheduling};
use etmem_kernel::{FakeKernel, FakeProcess, Kernel};
use etmem_sdk::{Action, Engine, EngineError, Host, Round, ScanResult, Task, TaskInfo};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use tokio::time::Instant;

pub const PRESENT: u64 = 1 << 63;
pub const SOFT_DIRTY: u64 = 1 << 55;

/// A fake machine (FakeKernel, soft-dirty tracking): 2 CPUs, NUMA nodes 0-1, processes
/// 100 `mysqld` (pages 0x10000..0x14000, the first one accessed; child 101 `worker`, page
/// 0x20000) and 200 `qemu` (pages 0x30000..0x32000).
pub struct Machine {
    pub fake: Arc<FakeKernel>,
    pub kernel: Arc<dyn Kernel>,
    pub dir: tempfile::TempDir,
}

pub fn machine() -> Machine {
    let fake = Arc::new(FakeKernel::new().expect("fake kernel"));
    fake.set_nodes(&[0, 1], 1 << 20, 1 << 19).expect("nodes");
    fake.enable_soft_dirty().expect("soft-dirty");
    let mut p = FakeProcess::new(100, "mysqld").anon(0x10000, 0x14000);
    p.vm_rss_kb = 16;
    fake.add_process(&p).expect("100");
    fake.set_pagemap(
        100,
        0x10000,
        &[PRESENT | SOFT_DIRTY, PRESENT, PRESENT, PRESENT],
    )
    .expect("pagemap");
    let mut c = FakeProcess::new(101, "worker").anon(0x20000, 0x21000);
    c.ppid = 100;
    fake.add_process(&c).expect("101");
    fake.set_pagemap(101, 0x20000, &[PRESENT]).expect("pagemap");
    fake.add_process(&FakeProcess::new(200, "qemu").anon(0x30000, 0x32000))
        .expect("200");
    fake.set_pagemap(200, 0x30000, &[PRESENT, PRESENT])
        .expect("pagemap");
    let kernel: Arc<dyn Kernel> = fake.clone();
    Machine {
        fake,
        kernel,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

/// What `task_scan` answered: (pid, addr, count) of every page, or the error text.
pub type Peeked = Result<Vec<(u32, u64, u8)>, String>;

/// One `plan` call of the recording engine.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRec {
    pub project: String,
    /// engine type (`slide` / `cslide`)
    pub engine: String,
    pub task: String,
    pub round: u64,
    /// seconds from the recorder's origin to the plan call
    pub decided: f64,
    /// the pids of the scan results
    pub pids: Vec<u32>,
    /// (pid, addr, count) of every scanned page
    pub pages: Vec<(u32, u64, u8)>,
    /// what `host.task_scan` answered, during this plan, for each task in
    /// [`Recorder::peek`]: its (pid, addr, count), or the error text
    pub peeked: Vec<(String, Peeked)>,
}

/// What the recording engines do in `plan` (besides recording).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Behave {
    #[default]
    Nothing,
    /// swap out every page with count 0
    SwapIdle,
    /// these actions, as given
    Actions(Vec<Action>),
    /// panic
    Panic,
}

static RECS: LazyLock<Mutex<HashMap<u64, Arc<Recorder>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
static NEXT: AtomicU64 = AtomicU64::new(1);

/// What the recording engines saw.
#[derive(Debug)]
pub struct Recorder {
    pub id: u64,
    pub origin: Mutex<Instant>,
    pub rounds: Mutex<Vec<RoundRec>>,
    /// "create <type> hot=<h>", "new <task>", "stop <task>", "drop <task>"
    pub events: Mutex<Vec<String>>,
    /// `new-task` of a task of this name fails
    pub fail_start: Mutex<Option<String>>,
    /// per engine type
    pub behave: Mutex<HashMap<String, Behave>>,
    /// tasks whose `task_scan` every `plan` records (in [`RoundRec::peeked`])
    pub peek: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        let r = Arc::new(Recorder {
            id,
            origin: Mutex::new(Instant::now()),
            rounds: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            fail_start: Mutex::new(None),
            behave: Mutex::new(HashMap::new()),
            peek: Mutex::new(Vec::new()),
        });
        RECS.lock().expect("lock").insert(id, r.clone());
        r
    }
    pub fn reset_origin(&self) {
        *self.origin.lock().expect("lock") = Instant::now();
    }
    pub fn rounds(&self) -> Vec<RoundRec> {
        self.rounds.lock().expect("lock").clone()
    }
    pub fn events(&self) -> Vec<String> {
        self.events.lock().expect("lock").clone()
    }
    pub fn set_behave(&self, kind: &str, b: Behave) {
        self.behave.lock().expect("lock").insert(kind.into(), b);
    }
    fn secs(&self, t: Instant) -> f64 {
        let o = *self.origin.lock().expect("lock");
        t.duration_since(o).as_secs_f64()
    }
    fn event(&self, e: String) {
        self.events.lock().expect("lock").push(e);
    }
}

/// The recording engine: an SDK engine, registered as a built-in.
pub struct RecEngine {
    rec: Arc<Recorder>,
    kind: String,
}

pub struct RecTask {
    rec: Arc<Recorder>,
    kind: String,
    info: TaskInfo,
}

impl Engine for RecEngine {
    type Task = RecTask;
    fn configure(params: &Params, _host: &dyn Host) -> Result<RecEngine, EngineError> {
        let id: u64 = params.require("test_rec")?;
        let kind: String = params.require("test_kind")?;
        let rec = RECS
            .lock()
            .expect("lock")
            .get(&id)
            .cloned()
            .ok_or_else(|| EngineError::failed("no recorder"))?;
        let hot = params.raw("hot_threshold").unwrap_or("-").to_string();
        rec.event(format!("create {kind} hot={hot}"));
        Ok(RecEngine { rec, kind })
    }
    fn new_task(
        &mut self,
        task: &TaskInfo,
        _params: &Params,
        _host: &dyn Host,
    ) -> Result<RecTask, EngineError> {
        if self.rec.fail_start.lock().expect("lock").as_deref() == Some(task.name.as_str()) {
            return Err(EngineError::failed(format!("task `{}` refuses", task.name)));
        }
        self.rec.event(format!("new {}", task.name));
        Ok(RecTask {
            rec: self.rec.clone(),
            kind: self.kind.clone(),
            info: task.clone(),
        })
    }
    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut RecTask)>,
        _host: &dyn Host,
    ) -> Result<String, EngineError> {
        match cmd {
            "hello" => Ok(format!(
                "hello from {} {}\n",
                self.kind,
                task.map(|(t, _)| t.name.clone()).unwrap_or_default()
            )),
            "panic" => panic!("boom in command"),
            other => Err(EngineError::UnknownCommand(other.to_string())),
        }
    }
}

impl Task for RecTask {
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let peek = self.rec.peek.lock().expect("lock").clone();
        let peeked = peek
            .into_iter()
            .map(|t| {
                let r = host
                    .task_scan(&t)
                    .map(|v| {
                        v.iter()
                            .flat_map(|s| s.pages().map(|p| (s.pid(), p.addr, p.count)))
                            .collect()
                    })
                    .map_err(|e| e.to_string());
                (t, r)
            })
            .collect();
        let rec = RoundRec {
            project: self.info.project.clone(),
            engine: self.kind.clone(),
            task: self.info.name.clone(),
            round: round.number,
            decided: self.rec.secs(Instant::now()),
            pids: scans.iter().map(|s| s.pid()).collect(),
            pages: scans
                .iter()
                .flat_map(|s| s.pages().map(|p| (s.pid(), p.addr, p.count)))
                .collect(),
            peeked,
        };
        self.rec.rounds.lock().expect("lock").push(rec);
        let b = self
            .rec
            .behave
            .lock()
            .expect("lock")
            .get(&self.kind)
            .cloned()
            .unwrap_or_default();
        match b {
            Behave::Nothing => Ok(Vec::new()),
            Behave::SwapIdle => Ok(scans
                .iter()
                .map(|s| Action::SwapOut {
                    pid: s.pid(),
                    runs: s
                        .runs()
                        .filter(|r| r.count == 0)
                        .map(|r| r.page_run())
                        .collect(),
                })
                .collect()),
            Behave::Actions(a) => Ok(a),
            Behave::Panic => panic!("boom in plan of {}", self.info.name),
        }
    }
    fn stop_task(&mut self, _host: &dyn Host) {
        self.rec.event(format!("stop {}", self.info.name));
    }
}

impl Drop for RecTask {
    fn drop(&mut self) {
        self.rec.event(format!("drop {}", self.info.name));
    }
}

/// A registry with slide (per task) and cslide (per engine) as recording engines.
pub fn recording_registry(rec: &Arc<Recorder>) -> EngineRegistry {
    let mut r = EngineRegistry::builtin();
    for (name, sched) in [
        ("slide", Scheduling::PerTask),
        ("cslide", Scheduling::PerEngine),
    ] {
        let id = rec.id;
        r.register_factory(
            name,
            sched,
            Arc::new(move |params: &Params, host: &HostRef| {
                let mut pairs = params.pairs().to_vec();
                pairs.push(("test_rec".into(), id.to_string()));
                pairs.push(("test_kind".into(), name.to_string()));
                load_builtin::<RecEngine>(name, &Params::from_pairs(pairs), host)
            }),
        );
    }
    r
}

pub fn daemon(m: &Machine, rec: &Arc<Recorder>) -> DaemonHandle {
    Daemon::start(m.kernel.clone(), recording_registry(rec))
}

pub fn daemon_with(m: &Machine, rec: &Arc<Recorder>, options: DaemonOptions) -> DaemonHandle {
    Daemon::start_with(m.kernel.clone(), recording_registry(rec), options)
}

fn pairs(v: &[(&str, String)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn project(name: &str, loops: u32, interval: u32, sleep: u32) -> ProjectConf {
    ProjectConf {
        pos: SectionPos::default(),
        name: name.into(),
        scan: ScanConf::Page {
            loops,
            interval,
            sleep,
        },
        sysmem_threshold: None,
        swapcache_wmark: None,
        dry_run: false,
        raw: pairs(&[
            ("name", name.to_string()),
            ("loop", loops.to_string()),
            ("interval", interval.to_string()),
            ("sleep", sleep.to_string()),
        ]),
    }
}

pub fn psi_project(name: &str) -> ProjectConf {
    ProjectConf {
        scan: ScanConf::Psi { interval: 5 },
        ..project(name, 1, 1, 1)
    }
}

pub fn engine(project: &str, kind: EngineKind) -> EngineConf {
    let mut raw = pairs(&[
        ("project", project.to_string()),
        ("name", kind.type_name().to_string()),
    ]);
    match &kind {
        EngineKind::Cslide(c) => {
            let list: Vec<String> = c
                .node_pairs
                .iter()
                .map(|(h, c)| format!("{h},{c}"))
                .collect();
            raw.extend(pairs(&[
                ("node_pair", list.join(";")),
                ("hot_threshold", c.hot_threshold.to_string()),
                ("node_mig_quota", c.node_mig_quota_mb.to_string()),
                ("node_hot_reserve", c.node_hot_reserve_mb.to_string()),
            ]));
        }
        EngineKind::Thirdparty(t) => {
            raw.extend(pairs(&[
                ("eng_name", t.eng_name.clone()),
                ("libname", t.libname.clone()),
                ("ops_name", t.ops_name.clone()),
            ]));
            raw.extend(t.params.iter().cloned());
        }
        _ => {}
    }
    EngineConf {
        pos: SectionPos::default(),
        project: project.into(),
        kind,
        round_quota_bytes: None,
        raw,
    }
}

pub fn slide(project: &str) -> EngineConf {
    engine(project, EngineKind::Slide)
}

pub fn cslide(project: &str, pairs: &[(u32, u32)], hot: u64) -> EngineConf {
    engine(
        project,
        EngineKind::Cslide(CslideEngineConf {
            node_pairs: pairs.to_vec(),
            hot_threshold: hot,
            node_mig_quota_mb: 1024,
            node_hot_reserve_mb: 512,
        }),
    )
}

pub fn damon(project: &str) -> EngineConf {
    engine(
        project,
        EngineKind::Damon(DamonEngineConf {
            min_size: 0,
            max_size: 1,
            min_acc: 0,
            max_acc: 1,
            min_age: 0,
            max_age: 1,
            action: DamonAction::Pageout,
        }),
    )
}

pub fn thirdparty(project: &str, eng_name: &str) -> EngineConf {
    engine(
        project,
        EngineKind::Thirdparty(ThirdpartyEngineConf {
            eng_name: eng_name.into(),
            libname: "/usr/lib/libmy.so".into(),
            ops_name: "my_ops".into(),
            params: Vec::new(),
        }),
    )
}

pub fn slide_task(project: &str, name: &str, target: TaskTarget, t: u32) -> TaskConf {
    let raw = pairs(&[
        ("project", project.to_string()),
        ("engine", "slide".to_string()),
        ("name", name.to_string()),
        ("type", target.type_name().to_string()),
        ("value", target.value().to_string()),
        ("T", t.to_string()),
    ]);
    TaskConf {
        pos: SectionPos::default(),
        project: project.into(),
        engine: "slide".into(),
        name: name.into(),
        target,
        swap_flag: false,
        max_threads: 1,
        record: None,
        engine_keys: TaskEngineConf::Slide(SlideTaskConf {
            t,
            swap_threshold_kb: None,
            dram_percent: None,
        }),
        raw,
    }
}

pub fn cslide_task(project: &str, name: &str, target: TaskTarget) -> TaskConf {
    let raw = pairs(&[
        ("project", project.to_string()),
        ("engine", "cslide".to_string()),
        ("name", name.to_string()),
        ("type", target.type_name().to_string()),
        ("value", target.value().to_string()),
        ("vm_flags", "ht".to_string()),
        ("anon_only", "no".to_string()),
        ("ign_host", "yes".to_string()),
    ]);
    TaskConf {
        raw,
        engine: "cslide".into(),
        engine_keys: TaskEngineConf::Cslide(CslideTaskConf {
            anon_only: false,
            ign_host: true,
        }),
        ..slide_task(project, name, target, 1)
    }
}

pub fn pid(v: &str) -> TaskTarget {
    TaskTarget::Pid(v.into())
}

pub fn comm(v: &str) -> TaskTarget {
    TaskTarget::Name(v.into())
}

/// A file at `/etc/etmem/test.ini` with the sections numbered in order.
pub fn file(
    mut projects: Vec<ProjectConf>,
    mut engines: Vec<EngineConf>,
    mut tasks: Vec<TaskConf>,
) -> ConfigFile {
    for (i, p) in projects.iter_mut().enumerate() {
        p.pos.index = i;
    }
    for (i, e) in engines.iter_mut().enumerate() {
        e.pos.index = i;
    }
    for (i, t) in tasks.iter_mut().enumerate() {
        t.pos.index = i;
    }
    ConfigFile {
        path: PathBuf::from("/etc/etmem/test.ini"),
        projects,
        engines,
        tasks,
        warnings: Vec::new(),
    }
}
