//! The round loops (tokio tasks) of started tasks and engines, and the round pipeline.
//!
//! A per-task engine (slide-like) runs a task's first round `interval` after its start,
//! then `interval` after the END of each round (spec §5.2, B19 end-to-start). A per-engine
//! engine (cslide-like) has one worker for all its working tasks, on their fixed pids,
//! waiting `interval` between rounds (spec §5.3).
//!
//! One round: resolve the pids (main pid, plus direct children for per-task engines) into
//! process handles; when a process's tracker starts in this round, one `sleep` so that its
//! first pass sees a full window (a fresh tracker has seen no access yet); `loop` passes of
//! the project's access tracker over every process, each followed by `sleep`; each
//! process's access map becomes a `ScanResult`; the engine's `plan` (per task; for a
//! per-engine engine, each working task in turn once all were scanned and published, so
//! `task-scan` of any of its tasks answers this round's scans, and with one round number,
//! the worker's, for every task of the round); every returned action is checked and carried
//! out by the engine's host ([`crate::caps`]). Up to `max_threads` processes of a task are
//! scanned or acted on at once, on blocking threads. A main process that exits mid-round
//! ends that task's round quietly (debug); a child that exits is only dropped from the
//! round.
//!
//! Stopping is aborting the tokio task: every wait is an await point, so a stop never waits
//! for a sleep to end (an engine call in flight finishes on its thread, and its result is
//! dropped). An engine fault quarantines the engine ([`crate::model::quarantine`]).
//!
//! Every task round that reaches its plan ends with one info line of what it cost
//! ([`RoundCost`]): memory tracked, wall and thread CPU time of the scan (the `sleep`s
//! between passes left out), of the plan and of the actions. Measuring never changes what
//! a round does.

use crate::engine::{ScanParams, Scheduling, TaskInfo};
use crate::model::{EngineCell, State, quarantine};
use crate::plugin::{Action, CallError, Round, ScanResult};
use crate::record::{self, RecordedAction, RecordedRound, RecordedScan, Recorder};
use crate::round_cost::{Moved, RoundCost, ScanPart, Stopwatch, add_cpu};
use etmem_config::TaskTarget;
use etmem_kernel::track::{SCAN_AS_HUGE, SCAN_IGN_HOST, VMA_SCAN_FLAG};
use etmem_kernel::{
    AccessMap, Kernel, Pid, ProcessHandle, ProcessTarget, ScanFlags, Tracker, TrackerChoice,
    TrackerKind, VmaFilter,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::sleep;

/// The started tasks of a per-engine worker, shared between the daemon (which changes it
/// on start/stop) and the worker (which reads it at the start of every round).
pub(crate) type WorkingSet = Arc<Mutex<Vec<Arc<TaskInfo>>>>;

/// What a round loop needs.
#[derive(Clone)]
pub(crate) struct RoundEnv {
    pub kernel: Arc<dyn Kernel>,
    pub state: Weak<Mutex<State>>,
    pub cell: Arc<EngineCell>,
    pub scan: ScanParams,
    /// `None` for cgroup scheduling (no scan)
    pub tracker: Option<TrackerKind>,
    pub scheduling: Scheduling,
}

/// What a target means to the kernel layer.
pub(crate) fn process_target(t: &TaskTarget) -> ProcessTarget {
    match t {
        TaskTarget::Pid(v) => ProcessTarget::Pid(v.clone()),
        TaskTarget::Name(v) => ProcessTarget::Comm(v.clone()),
    }
}

/// One process of a task: its handle and its tracker, kept across rounds.
#[derive(Debug)]
struct Proc {
    handle: Arc<ProcessHandle>,
    tracker: Box<dyn Tracker>,
    started: bool,
}

/// A process during a round: its tracker and this round's access map.
struct Scanning {
    pid: Pid,
    main: bool,
    /// its tracker was started in this round's `prepare`
    fresh: bool,
    proc_: Proc,
    map: AccessMap,
}

/// The scan state of one task, kept across its rounds.
struct TaskScanner {
    task: Arc<TaskInfo>,
    procs: BTreeMap<Pid, Proc>,
}

impl TaskScanner {
    fn new(task: Arc<TaskInfo>) -> TaskScanner {
        TaskScanner {
            task,
            procs: BTreeMap::new(),
        }
    }
}

fn who(env: &RoundEnv, task: &str) -> String {
    format!(
        "project `{}` engine `{}` task `{task}`",
        env.cell.project, env.cell.name
    )
}

/// Which VMAs a task scans: its `anon_only` / `vm_flags` keys when given (cslide), else
/// anonymous VMAs for per-task engines (spec §6.3) and every VMA for per-engine ones.
fn vma_filter(task: &TaskInfo, scheduling: Scheduling) -> VmaFilter {
    let anon_only = task
        .params
        .get::<bool>("anon_only")
        .ok()
        .flatten()
        .unwrap_or(scheduling == Scheduling::PerTask);
    let vm_flags = task
        .params
        .raw("vm_flags")
        .map(|v| v.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    VmaFilter {
        anon_only,
        vm_flags,
        ..Default::default()
    }
}

/// The etmem_scan flags of a task's scans (spec §5.2 step 2.2, §5.3): `swap_flag=yes` asks
/// for `VMA_SCAN_FLAG`; `ign_host` (cslide) always adds `SCAN_AS_HUGE`, and `yes` also
/// `SCAN_IGN_HOST`.
pub(crate) fn scan_flags(task: &TaskInfo) -> ScanFlags {
    let scan = match task.params.get::<bool>("ign_host") {
        Ok(Some(true)) => SCAN_AS_HUGE | SCAN_IGN_HOST,
        Ok(Some(false)) => SCAN_AS_HUGE,
        _ => 0,
    };
    ScanFlags {
        scan,
        vma: if task.swap_flag { VMA_SCAN_FLAG } else { 0 },
    }
}

/// Drops `x` on a blocking thread when it holds anything: dropping a tracker can wait on
/// the kernel (a DAMON tracker takes the DAMON lock, which a pass may hold for an
/// aggregation interval, then writes sysfs), which must not stall a runtime worker.
fn drop_blocking<T: Send + 'static>(x: T)
where
    for<'a> &'a T: IntoIterator,
{
    if (&x).into_iter().next().is_some() {
        drop(tokio::task::spawn_blocking(move || drop(x)));
    }
}

/// Opens (or keeps) the task's processes for this round, prepares their maps and starts
/// new trackers, adding the time it took to `cost`. `None` when the round cannot run
/// (logged).
async fn prepare(
    env: &RoundEnv,
    s: &mut TaskScanner,
    cost: &mut RoundCost,
) -> Option<Vec<Scanning>> {
    let task = s.task.clone();
    let w = who(env, &task.name);
    let pids = match task.fixed_pid {
        Some(p) => vec![p],
        None => {
            let kernel = env.kernel.clone();
            let target = process_target(&task.target);
            let children = env.scheduling == Scheduling::PerTask;
            let r = tokio::task::spawn_blocking(move || {
                let sw = Stopwatch::start();
                (kernel.resolve(&target, children), sw.stop())
            })
            .await;
            match r.map(|(r, t)| {
                cost.add_scan(ScanPart::Prepare, t);
                r
            }) {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    // the processes are gone: their trackers go too (a DAMON tracker
                    // removes its target or kdamond), not at the task's stop
                    drop_blocking(std::mem::take(&mut s.procs));
                    tracing::info!("{w}: round skipped: {e}");
                    return None;
                }
                Err(e) => {
                    tracing::warn!("{w}: round skipped: {e}");
                    return None;
                }
            }
        }
    };
    let main = pids.first().copied();
    let mut old = std::mem::take(&mut s.procs);
    let kernel = env.kernel.clone();
    let filter = vma_filter(&task, env.scheduling);
    let flags = scan_flags(&task);
    let Some(tracker) = env.tracker else {
        tracing::warn!("{w}: round skipped: the project has no access tracker");
        return None;
    };
    let pass_window = env.scan.sleep;
    let w2 = w.clone();
    let r = tokio::task::spawn_blocking(move || {
        let sw = Stopwatch::start();
        let sizes = kernel.page_sizes();
        let mut out = Vec::new();
        for pid in pids {
            let kept = old.remove(&pid).filter(|p| p.handle.check().is_ok());
            let proc_ = match kept {
                Some(p) => p,
                None => {
                    let handle = match kernel.open_process(pid) {
                        Ok(h) => Arc::new(h),
                        Err(e) => {
                            tracing::debug!("{w2}: pid {pid} left before its scan: {e}");
                            if Some(pid) == main {
                                return None;
                            }
                            continue;
                        }
                    };
                    let tracker =
                        match kernel
                            .tracker(TrackerChoice::Only(tracker))
                            .and_then(|mut t| {
                                t.set_pass_window(pass_window);
                                t.set_scan_flags(flags)?;
                                Ok(t)
                            }) {
                            Ok(t) => t,
                            Err(e) => {
                                tracing::warn!("{w2}: pid {pid}: {e}");
                                return None;
                            }
                        };
                    Proc {
                        handle,
                        tracker,
                        started: false,
                    }
                }
            };
            let vmas = match kernel.vmas(&proc_.handle, &filter) {
                Ok(v) => v,
                Err(e) if e.is_gone() || matches!(e, etmem_kernel::KernelError::NoProcess(_)) => {
                    tracing::debug!("{w2}: pid {pid} left before its scan: {e}");
                    if Some(pid) == main {
                        return None;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!("{w2}: pid {pid}: {e}");
                    continue;
                }
            };
            let map = AccessMap::new(&vmas, sizes);
            let mut sc = Scanning {
                pid,
                main: Some(pid) == main,
                fresh: false,
                proc_,
                map,
            };
            if !sc.proc_.started {
                match sc.proc_.tracker.start(&sc.proc_.handle, &sc.map) {
                    Ok(()) => {
                        sc.proc_.started = true;
                        sc.fresh = true;
                    }
                    Err(e) if e.is_gone() => {
                        tracing::debug!("{w2}: pid {pid} left before its scan: {e}");
                        if sc.main {
                            return None;
                        }
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!("{w2}: pid {pid}: tracker start: {e}");
                        continue;
                    }
                }
            }
            out.push(sc);
        }
        Some((out, sw.stop()))
    })
    .await;
    match r {
        Ok(Some((v, t))) => {
            cost.add_scan(ScanPart::Prepare, t);
            Some(v)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("{w}: round skipped: {e}");
            None
        }
    }
}

/// One tracker pass over `procs`, `max` at once, its time added to `cost`. Returns false
/// when the task's main process left (the round ends).
async fn pass(
    env: &RoundEnv,
    task: &TaskInfo,
    procs: &mut Vec<Scanning>,
    cost: &mut RoundCost,
) -> bool {
    let w = who(env, &task.name);
    let mut done = Vec::new();
    let mut main_gone = false;
    let max = task.max_threads.max(1);
    while !procs.is_empty() {
        let batch: Vec<Scanning> = procs.drain(..procs.len().min(max)).collect();
        let started = Instant::now();
        let mut cpu = Some(Duration::ZERO);
        let jobs: Vec<_> = batch
            .into_iter()
            .map(|mut sc| {
                tokio::task::spawn_blocking(move || {
                    let sw = Stopwatch::start();
                    let r = sc
                        .proc_
                        .handle
                        .check()
                        .map_err(etmem_kernel::TrackError::from)
                        .and_then(|()| sc.proc_.tracker.pass(&sc.proc_.handle, &mut sc.map));
                    (sc, r, sw.stop().1)
                })
            })
            .collect();
        for j in jobs {
            let j = j.await.map(|(sc, r, c)| {
                cpu = add_cpu(cpu, c);
                (sc, r)
            });
            match j {
                Ok((sc, Ok(()))) => done.push(sc),
                Ok((sc, Err(e))) if e.is_gone() => {
                    tracing::debug!("{w}: pid {} left during the round: {e}", sc.pid);
                    main_gone |= sc.main;
                }
                Ok((sc, Err(e))) => {
                    tracing::warn!("{w}: pid {}: scan pass: {e}", sc.pid);
                    main_gone |= sc.main;
                }
                Err(e) => {
                    tracing::warn!("{w}: a scan pass did not complete: {e}");
                    main_gone = true;
                }
            }
        }
        cost.add_scan(ScanPart::Passes, (started.elapsed(), cpu));
    }
    *procs = done;
    !main_gone
}

/// The scan result of one process.
fn scan_result(sc: &Scanning, loops: u32) -> Option<ScanResult> {
    scan_result_of(sc.pid, &sc.map, loops)
}

/// What an engine's `plan` receives for process `pid` whose round (`loops` passes) left
/// `map`: every present page (huge pages once), ascending, as runs of equal pages. `None`
/// only for a map that is not in address order, which
/// [`AccessMap`](etmem_kernel::access::AccessMap) never is.
pub fn scan_result_of(
    pid: etmem_kernel::Pid,
    map: &etmem_kernel::access::AccessMap,
    loops: u32,
) -> Option<ScanResult> {
    let sizes = map.sizes();
    // the scan result's columns, written directly (a VM-sized map is millions of runs)
    let (mut addrs, mut lens, mut counts, mut codes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    map.for_each_run(|addr, page_size, pages, count| {
        let Some(size) = crate::caps::sdk_page_size(page_size, sizes) else {
            return;
        };
        // a run longer than u32::MAX pages (16 TiB of base pages) goes in pieces
        let mut left = pages;
        let mut at = addr;
        while left > 0 {
            let n = u32::try_from(left).unwrap_or(u32::MAX);
            addrs.push(at);
            lens.push(n);
            counts.push(count);
            codes.push(size.code());
            left -= u64::from(n);
            at += u64::from(n) * page_size;
        }
    });
    ScanResult::from_column_vecs(pid, loops, addrs, lens, counts, codes).ok()
}

/// One task's scanned round: its processes, their scan results, what the scan cost.
type Scanned = (Vec<Arc<ProcessHandle>>, Vec<ScanResult>, RoundCost);

/// Scans several tasks together: every pass over all their processes, then one `sleep`.
/// Returns, per task, its processes and scan results (`None`: no round for that task).
async fn scan_tasks(env: &RoundEnv, scanners: &mut [TaskScanner]) -> Vec<Option<Scanned>> {
    let mut rounds: Vec<Option<Vec<Scanning>>> = Vec::new();
    let mut costs = vec![RoundCost::default(); scanners.len()];
    for (s, cost) in scanners.iter_mut().zip(costs.iter_mut()) {
        rounds.push(prepare(env, s, cost).await);
    }
    if rounds.iter().all(Option::is_none) {
        return rounds.into_iter().map(|_| None).collect();
    }
    let tasks: Vec<Arc<TaskInfo>> = scanners.iter().map(|s| s.task.clone()).collect();
    // A tracker started just now has seen nothing yet: its first pass would call every
    // page idle (cslide with loop=1 would demote hot pages in its first round). So a round
    // that starts a tracker first waits one `sleep`, and every pass covers a full window.
    if rounds.iter().flatten().flatten().any(|sc| sc.fresh) {
        sleep(env.scan.sleep).await;
    }
    for _ in 0..env.scan.loops {
        for ((task, r), cost) in tasks.iter().zip(rounds.iter_mut()).zip(costs.iter_mut()) {
            if let Some(procs) = r
                && !pass(env, task, procs, cost).await
            {
                tracing::debug!(
                    "{}: the task's process left; its round ends",
                    who(env, &task.name)
                );
                *r = None;
            }
        }
        sleep(env.scan.sleep).await;
    }
    let mut out = Vec::new();
    for ((s, r), mut cost) in scanners.iter_mut().zip(rounds).zip(costs) {
        match r {
            None => out.push(None),
            Some(procs) => {
                let sw = Stopwatch::start();
                let handles = procs.iter().map(|p| p.proc_.handle.clone()).collect();
                let scans = procs
                    .iter()
                    .filter_map(|p| scan_result(p, env.scan.loops))
                    .collect();
                cost.pids = procs.len();
                cost.tracked_bytes = procs
                    .iter()
                    .flat_map(|p| p.map.ranges())
                    .map(|(start, end)| end - start)
                    .sum();
                for sc in procs {
                    s.procs.insert(sc.pid, sc.proc_);
                }
                cost.add_scan(ScanPart::Results, sw.stop());
                out.push(Some((handles, scans, cost)));
            }
        }
    }
    out
}

/// Tells the engine's host that `task`'s round begins on `procs` with `scans`: from now on
/// they are its current processes and what `task-scan` answers (for every task of the
/// engine, so a per-engine engine sees all of this round's scans from its first `plan`).
fn publish(
    env: &RoundEnv,
    task: &TaskInfo,
    procs: Vec<Arc<ProcessHandle>>,
    scans: Vec<ScanResult>,
) {
    env.cell.host.begin_round(&task.name, procs);
    env.cell.host.set_scans(&task.name, scans);
}

/// `plan` of one task (its round already published), then its actions; logs the round's
/// cost. Returns false when the engine faulted.
async fn plan_and_act(
    env: &RoundEnv,
    task: &TaskInfo,
    number: u64,
    scans: Vec<ScanResult>,
    mut cost: RoundCost,
) -> bool {
    let w = who(env, &task.name);
    // the access history of `project heatmap`, from the scans the engine gets
    env.cell.record_heat(&task.name, number, &scans);
    let round = Round {
        number,
        passes: env.scan.loops,
    };
    let name = task.name.clone();
    let started = Instant::now();
    let recording = task
        .record
        .clone()
        .filter(|r| r.wants_more())
        .map(|r| (r, round_record(env, task, &round)));
    let r = env
        .cell
        .call(move |e, h| match recording {
            None => e.plan(&name, &round, &scans, h),
            Some((recorder, mut line)) => {
                let (rec, href) = record::recording(h);
                let r = e.plan(&name, &round, &scans, &href);
                if let Ok(actions) = &r {
                    line.scans = scans.iter().map(RecordedScan::of).collect();
                    line.host = rec.take();
                    line.actions = actions.iter().map(RecordedAction::of).collect();
                    record_line(&recorder, &line);
                }
                r
            }
        })
        .await;
    cost.plan = started.elapsed();
    let actions = match r {
        Ok(a) => a,
        Err(CallError::Fault(why)) => {
            quarantine(&env.state, &env.cell, &why);
            return false;
        }
        Err(CallError::Engine(e)) => {
            tracing::warn!("{w}: round {number}: plan failed: {e}");
            env.cell
                .record_round(&task.name, number, Err(format!("plan failed: {e}")));
            return true;
        }
    };
    tracing::debug!(
        "{w}: round {number}: plan returned {} action(s)",
        actions.len()
    );
    act(env, task, actions, &mut cost).await;
    env.cell.record_round(&task.name, number, Ok(&cost.moved));
    tracing::info!("{w}: round {number}: {cost}");
    true
}

/// The recorded round of `task` before its plan (scans, host answers and actions are
/// filled in around the call).
fn round_record(env: &RoundEnv, task: &TaskInfo, round: &Round) -> RecordedRound {
    RecordedRound {
        format: record::FORMAT.to_string(),
        version: record::VERSION,
        project: task.project.clone(),
        engine: task.engine.clone(),
        task: task.name.clone(),
        target_type: task.target.type_name().to_string(),
        target_value: task.target.value().to_string(),
        round: round.number,
        passes: round.passes,
        engine_params: record::pairs(&env.cell.params),
        task_params: record::pairs(&task.params),
        scans: Vec::new(),
        host: Vec::new(),
        actions: Vec::new(),
    }
}

/// Appends `line` to the task's record file; logs the last round recorded and a failure.
fn record_line(recorder: &Recorder, line: &RecordedRound) {
    let w = format!(
        "project `{}` engine `{}` task `{}`",
        line.project, line.engine, line.task
    );
    match recorder.write(line) {
        Ok(n) if !recorder.wants_more() => tracing::info!(
            "{w}: round {}: recorded, {n} round(s) in {}: recording done",
            line.round,
            recorder.path().display()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("{w}: round {}: {e}", line.round),
    }
}

/// Carries out `actions` through the engine's host, up to `max_threads` pids at once,
/// adding their time and pages to `cost`.
async fn act(env: &RoundEnv, task: &TaskInfo, actions: Vec<Action>, cost: &mut RoundCost) {
    let mut by_pid: BTreeMap<Pid, Vec<Action>> = BTreeMap::new();
    for a in actions {
        let pid = match &a {
            Action::SwapOut { pid, .. } | Action::Migrate { pid, .. } => *pid,
        };
        by_pid.entry(pid).or_default().push(a);
    }
    let groups: Vec<Vec<Action>> = by_pid.into_values().collect();
    cost.moved.dry_run = env.cell.host.dry_run();
    let started = Instant::now();
    for chunk in groups.chunks(task.max_threads.max(1)) {
        let jobs: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|list| {
                let host = env.cell.host.clone();
                let name = task.name.clone();
                tokio::task::spawn_blocking(move || {
                    let sw = Stopwatch::start();
                    let mut pages = 0;
                    let mut moved = Moved::default();
                    for a in &list {
                        // refusals and failures are logged by the host
                        if let Ok(Some(rep)) = host.act(&name, a, "plan") {
                            pages += rep.done_pages;
                            match a {
                                Action::SwapOut { .. } => moved.swap_bytes += rep.done_bytes,
                                Action::Migrate { node, .. } => {
                                    *moved.migrate_bytes.entry(*node).or_default() +=
                                        rep.done_bytes;
                                }
                            }
                        }
                    }
                    (pages, moved, sw.stop().1)
                })
            })
            .collect();
        for j in jobs {
            match j.await {
                Ok((pages, moved, cpu)) => {
                    cost.act_pages += pages;
                    cost.moved.add(&moved);
                    cost.act_cpu = add_cpu(cost.act_cpu, cpu);
                }
                Err(e) => {
                    tracing::warn!("{}: an action did not complete: {e}", who(env, &task.name))
                }
            }
        }
    }
    cost.act = started.elapsed();
}

/// Spawns the round loop of one started per-task task.
pub(crate) fn spawn_task_rounds(env: RoundEnv, task: Arc<TaskInfo>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut scanner = [TaskScanner::new(task.clone())];
        let mut round = 0u64;
        loop {
            sleep(env.scan.interval).await;
            if env.cell.failure().is_some() {
                return;
            }
            round += 1;
            let mut res = scan_tasks(&env, &mut scanner).await;
            let Some(Some((procs, scans, cost))) = res.pop() else {
                // no round this time: the task has no current process and no scan (as in
                // the per-engine worker), so the host lets go of the last round's
                // processes, whose handles (pidfds) would otherwise stay open for as long
                // as the rounds are skipped
                publish(&env, &task, Vec::new(), Vec::new());
                continue;
            };
            publish(&env, &task, procs, scans.clone());
            if !plan_and_act(&env, &task, round, scans, cost).await {
                return;
            }
        }
    })
}

/// How often a region task's pids are resolved again and handed to `plan`.
pub(crate) const REGION_PERIOD: Duration = Duration::from_secs(2);

/// Spawns the round loop of one started task of a region project (damon): its first round
/// at once, then one every [`REGION_PERIOD`]. A round resolves the task's main pid (no
/// children, as C), makes it the task's current process and hands `plan` a scan result
/// without pages for it; the engine applies its DAMON scheme through the host. No process:
/// no current process and no scan (the host's DAMON target of an exited process is gone
/// with it). Logs at info only when the task's pids change.
pub(crate) fn spawn_region_rounds(
    kernel: Arc<dyn Kernel>,
    state: Weak<Mutex<State>>,
    cell: Arc<EngineCell>,
    task: Arc<TaskInfo>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = format!(
            "project `{}` engine `{}` task `{}`",
            cell.project, cell.name, task.name
        );
        let mut round = 0u64;
        let mut last: Option<Vec<Pid>> = None;
        let mut first = true;
        // the last plan failure, said at warn once while it stays the same
        let mut failing: Option<String> = None;
        loop {
            if !first {
                sleep(REGION_PERIOD).await;
            }
            first = false;
            if cell.failure().is_some() {
                return;
            }
            let k = kernel.clone();
            let target = process_target(&task.target);
            let opened = tokio::task::spawn_blocking(move || {
                let pids = k.resolve(&target, false)?;
                let mut procs = Vec::new();
                for pid in pids {
                    match k.open_process(pid) {
                        Ok(h) => procs.push(Arc::new(h)),
                        Err(e) => tracing::debug!("pid {pid} left before its round: {e}"),
                    }
                }
                Ok::<_, etmem_kernel::KernelError>(procs)
            })
            .await;
            let procs = match opened {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    if last.as_ref().is_none_or(|l| !l.is_empty()) {
                        tracing::info!("{w}: no process: {e}");
                    }
                    last = Some(Vec::new());
                    cell.host.begin_round(&task.name, Vec::new());
                    cell.host.set_scans(&task.name, Vec::new());
                    continue;
                }
                Err(e) => {
                    tracing::warn!("{w}: round skipped: {e}");
                    continue;
                }
            };
            let pids: Vec<Pid> = procs.iter().map(|p| p.pid()).collect();
            let scans: Vec<ScanResult> = pids
                .iter()
                .filter_map(|&pid| {
                    ScanResult::from_column_vecs(
                        pid,
                        0,
                        Vec::new(),
                        Vec::new(),
                        Vec::new(),
                        Vec::new(),
                    )
                    .ok()
                })
                .collect();
            if last.as_ref() != Some(&pids) {
                tracing::info!("{w}: process(es) {pids:?}");
                last = Some(pids);
            }
            cell.host.begin_round(&task.name, procs);
            cell.host.set_scans(&task.name, scans.clone());
            round += 1;
            let name = task.name.clone();
            let r = Round {
                number: round,
                passes: 0,
            };
            let planned = cell.call(move |e, h| e.plan(&name, &r, &scans, h)).await;
            if planned.is_ok() && failing.take().is_some() {
                tracing::info!("{w}: round {round}: plan succeeded again");
            }
            match planned {
                Ok(actions) if actions.is_empty() => {}
                Ok(actions) => {
                    // a region engine leaves the work to DAMON; what it returns is still
                    // checked and carried out like any plan's
                    let mut cost = RoundCost::default();
                    let env = RoundEnv {
                        kernel: kernel.clone(),
                        state: state.clone(),
                        cell: cell.clone(),
                        scan: ScanParams {
                            loops: 0,
                            interval: REGION_PERIOD,
                            sleep: Duration::ZERO,
                        },
                        tracker: None,
                        scheduling: Scheduling::Region,
                    };
                    act(&env, &task, actions, &mut cost).await;
                }
                Err(CallError::Fault(why)) => {
                    quarantine(&state, &cell, &why);
                    return;
                }
                Err(CallError::Engine(e)) => {
                    let e = e.to_string();
                    if failing.as_deref() == Some(e.as_str()) {
                        tracing::debug!("{w}: round {round}: plan failed: {e}");
                    } else {
                        tracing::warn!("{w}: round {round}: plan failed: {e}");
                        failing = Some(e);
                    }
                }
            }
        }
    })
}

/// Spawns the round loop of one started cgroup task (psi): every `interval` (end to
/// start), `plan` with no process and no scan; the engine reclaims through the cgroup
/// capabilities, which the host checks and carries out.
pub(crate) fn spawn_cgroup_rounds(env: RoundEnv, task: Arc<TaskInfo>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut round = 0u64;
        loop {
            sleep(env.scan.interval).await;
            if env.cell.failure().is_some() {
                return;
            }
            round += 1;
            publish(&env, &task, Vec::new(), Vec::new());
            if !plan_and_act(&env, &task, round, Vec::new(), RoundCost::default()).await {
                return;
            }
        }
    })
}

/// Spawns the worker of a per-engine engine; it runs until aborted (when its last task
/// stops or the engine is deleted) or the engine faults.
pub(crate) fn spawn_engine_worker(env: RoundEnv, working: WorkingSet) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut round = 0u64;
        let mut scanners: Vec<TaskScanner> = Vec::new();
        loop {
            sleep(env.scan.interval).await;
            if env.cell.failure().is_some() {
                return;
            }
            let tasks: Vec<Arc<TaskInfo>> = working
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            // keep the scanners (and their trackers) of tasks still working, in order
            let mut old = std::mem::take(&mut scanners);
            for t in &tasks {
                let s = match old.iter().position(|s| Arc::ptr_eq(&s.task, t)) {
                    Some(i) => old.swap_remove(i),
                    None => TaskScanner::new(t.clone()),
                };
                scanners.push(s);
            }
            drop_blocking(old);
            if scanners.is_empty() {
                continue;
            }
            // one round number for every task of this round (the engine's round)
            round += 1;
            let results = scan_tasks(&env, &mut scanners).await;
            // every task's scans are published before the first plan: a task without a
            // round this time has no current process and no scan
            let mut planned = Vec::new();
            for (t, r) in tasks.iter().zip(results) {
                match r {
                    Some((procs, scans, cost)) => {
                        publish(&env, t, procs, scans.clone());
                        planned.push((t, scans, cost));
                    }
                    None => publish(&env, t, Vec::new(), Vec::new()),
                }
            }
            for (t, scans, cost) in planned {
                if !plan_and_act(&env, t, round, scans, cost).await {
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etmem_config::TaskEngineConf;

    fn task(swap_flag: bool, params: &[(&str, &str)]) -> TaskInfo {
        TaskInfo {
            project: "p".into(),
            engine: "e".into(),
            name: "t".into(),
            target: TaskTarget::Pid("1".into()),
            swap_flag,
            max_threads: 1,
            keys: TaskEngineConf::Damon,
            params: crate::plugin::Params::from_pairs(params.iter().copied()),
            fixed_pid: None,
            record: None,
        }
    }

    #[test]
    fn scan_flags_follow_swap_flag_and_ign_host() {
        assert_eq!(scan_flags(&task(false, &[])), ScanFlags::default());
        assert_eq!(
            scan_flags(&task(true, &[])),
            ScanFlags {
                scan: 0,
                vma: VMA_SCAN_FLAG
            }
        );
        // ign_host present: always SCAN_AS_HUGE; yes adds SCAN_IGN_HOST (spec 5.3)
        let flags = |v| scan_flags(&task(false, &[("ign_host", v), ("vm_flags", "ht")])).scan;
        assert_eq!(flags("no"), SCAN_AS_HUGE);
        assert_eq!(flags("yes"), SCAN_AS_HUGE | SCAN_IGN_HOST);
    }
}
