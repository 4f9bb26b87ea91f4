//! Test kit: a fake /proc and /sys tree, config values built directly, and a recording
//! engine registered in place of slide and cslide.

#![allow(dead_code)]

use etmem_config::{
    ConfigFile, CslideEngineConf, CslideTaskConf, DamonAction, DamonEngineConf, EngineConf,
    EngineKind, ProjectConf, ScanConf, SectionPos, SlideTaskConf, TaskConf, TaskEngineConf,
    TaskTarget, ThirdpartyEngineConf,
};
use etmem_host::{
    BuiltinEngine, Daemon, DaemonHandle, EngineError, EngineRegistry, RoundContext, Scheduling,
    TaskInfo,
};
use etmem_kernel::{Kernel, LinuxKernel};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// A fake machine: 2 CPUs, NUMA nodes 0-1, processes 100 `mysqld` (child 101 `worker`) and
/// 200 `qemu`.
pub struct Machine {
    pub dir: tempfile::TempDir,
    pub kernel: Arc<dyn Kernel>,
}

pub fn machine() -> Machine {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc_ = dir.path().join("proc");
    let sys = dir.path().join("sys");
    for (pid, comm, ppid) in [(100, "mysqld", 1), (101, "worker", 100), (200, "qemu", 1)] {
        let d = proc_.join(pid.to_string());
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
        std::fs::write(d.join("stat"), format!("{pid} ({comm}) S {ppid} 1 1 0")).expect("stat");
    }
    std::fs::create_dir_all(sys.join("devices/system/cpu")).expect("mkdir");
    std::fs::create_dir_all(sys.join("devices/system/node")).expect("mkdir");
    std::fs::write(sys.join("devices/system/cpu/online"), "0-1\n").expect("cpu");
    std::fs::write(sys.join("devices/system/node/online"), "0-1\n").expect("node");
    let kernel: Arc<dyn Kernel> = Arc::new(LinuxKernel::with_roots(proc_, sys));
    Machine { dir, kernel }
}

/// One call of the recording engine's `round`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRec {
    pub project: String,
    pub engine: String,
    pub round: u64,
    /// seconds from the recorder's origin to the round's start
    pub began: f64,
    /// seconds from the origin to the decision step
    pub decided: f64,
    /// (task, pids)
    pub targets: Vec<(String, Vec<u32>)>,
}

/// What the recording engines saw.
#[derive(Debug)]
pub struct Recorder {
    pub origin: Mutex<Instant>,
    pub rounds: Mutex<Vec<RoundRec>>,
    /// "start <task> threads=<n> pid=<fixed>", "stop <task>", "create <engine> hot=<h>"
    pub events: Mutex<Vec<String>>,
    /// a task of this name fails to start
    pub fail_start: Mutex<Option<String>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            origin: Mutex::new(Instant::now()),
            rounds: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
            fail_start: Mutex::new(None),
        })
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
    fn secs(&self, t: Instant) -> f64 {
        let o = *self.origin.lock().expect("lock");
        t.duration_since(o).as_secs_f64()
    }
}

#[derive(Debug)]
struct RecEngine {
    rec: Arc<Recorder>,
}

impl BuiltinEngine for RecEngine {
    fn start_task(&self, task: &TaskInfo) -> Result<(), EngineError> {
        if self.rec.fail_start.lock().expect("lock").as_deref() == Some(task.name.as_str()) {
            return Err(EngineError::Failed(format!("task `{}` refuses", task.name)));
        }
        self.rec.events.lock().expect("lock").push(format!(
            "start {} threads={} pid={:?}",
            task.name, task.max_threads, task.fixed_pid
        ));
        Ok(())
    }
    fn stop_task(&self, task: &TaskInfo) {
        self.rec
            .events
            .lock()
            .expect("lock")
            .push(format!("stop {}", task.name));
    }
    fn round(&self, ctx: &RoundContext) -> Result<(), EngineError> {
        let rec = RoundRec {
            project: ctx.project.clone(),
            engine: ctx.engine.clone(),
            round: ctx.round,
            began: self.rec.secs(ctx.started_at),
            decided: self.rec.secs(Instant::now()),
            targets: ctx
                .targets
                .iter()
                .map(|t| (t.task.name.clone(), t.pids.clone()))
                .collect(),
        };
        self.rec.rounds.lock().expect("lock").push(rec);
        Ok(())
    }
}

/// The builtin registry with slide and cslide replaced by recording engines.
pub fn recording_registry(rec: &Arc<Recorder>) -> EngineRegistry {
    let mut r = EngineRegistry::builtin();
    for (name, sched) in [
        ("slide", Scheduling::PerTask),
        ("cslide", Scheduling::PerEngine),
    ] {
        let rec = rec.clone();
        r.register(
            name,
            sched,
            Arc::new(move |conf: &EngineConf, _p: &ProjectConf| {
                let hot = match &conf.kind {
                    EngineKind::Cslide(c) => c.hot_threshold.to_string(),
                    _ => "-".to_string(),
                };
                rec.events
                    .lock()
                    .expect("lock")
                    .push(format!("create {} hot={hot}", conf.name()));
                Ok(Arc::new(RecEngine { rec: rec.clone() }) as Arc<dyn BuiltinEngine>)
            }),
        );
    }
    r
}

pub fn daemon(m: &Machine, rec: &Arc<Recorder>) -> DaemonHandle {
    Daemon::start(m.kernel.clone(), recording_registry(rec))
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
    }
}

pub fn psi_project(name: &str) -> ProjectConf {
    ProjectConf {
        scan: ScanConf::Psi { interval: 5 },
        ..project(name, 1, 1, 1)
    }
}

pub fn engine(project: &str, kind: EngineKind) -> EngineConf {
    EngineConf {
        pos: SectionPos::default(),
        project: project.into(),
        kind,
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
    TaskConf {
        pos: SectionPos::default(),
        project: project.into(),
        engine: "slide".into(),
        name: name.into(),
        target,
        swap_flag: false,
        max_threads: 1,
        engine_keys: TaskEngineConf::Slide(SlideTaskConf {
            t,
            swap_threshold_kb: None,
            dram_percent: None,
        }),
    }
}

pub fn cslide_task(project: &str, name: &str, target: TaskTarget) -> TaskConf {
    TaskConf {
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
