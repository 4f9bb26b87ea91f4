//! The `cslide` engine of etmem (spec §5.3): migrate pages between the nodes of each
//! `node_pair` (hot = DRAM, cold = a slower tier), hot pages up, cold pages down, within
//! a per-pair quota per round.
//!
//! Scheduling is per engine: each round the host scans every started task of the engine,
//! then calls [`Task::plan`] for each task in turn. The quotas are per engine and round,
//! so the first `plan` call of a round plans the whole engine (the other tasks' scans come
//! from [`Host::task_scan`]) and every task is handed its share. A task that joins a round
//! already planned (added or restarted mid-round) is planned alone with what is left of
//! the quotas.
//!
//! Per round: the node of every page ([`Host::task_page_nodes`]), statistics (hot/cold KiB
//! per node and pid with the real page sizes, B21), the three-phase flow control of
//! [`policy`], then [`Action::Migrate`]s: for each pid and pair the cold list to the cold
//! node, then the hot list to the hot node.
//!
//! Differences from C etmem, on purpose:
//! * a task whose page nodes cannot be read is left out of the round; C aborts the round
//!   of every task (B24);
//! * the `[time] ` prefix of `showhostpages`/`showtaskpages` is UTC (C uses the local time
//!   zone through the non-thread-safe `localtime`, B30); a wasm build has no clock and
//!   leaves the prefix out, as C does when `localtime` fails.
//!
//! Written only against `etmem-sdk`; it must not touch the machine.

pub mod policy;
pub mod show;
pub mod testdata;

use etmem_sdk::command::{CommandRequest, Output};
use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, NodeMemory, PageRun, PageSize, Params, Pid, Round,
    ScanResult, Task, TaskInfo,
};
use policy::{NodePair, NodeStat, PairState, PidPages};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// `addrs`, pages of `pages`, as runs in address order (each page with its size).
fn runs_of(pages: &[policy::NodePage], addrs: &[u64]) -> Vec<PageRun> {
    let mut addrs = addrs.to_vec();
    addrs.sort_unstable();
    PageRun::coalesce(addrs.into_iter().map(|a| {
        let bytes = pages
            .binary_search_by_key(&a, |p| p.addr)
            .map_or(PageSize::Size4K.bytes(), |i| pages[i].size);
        let size = [PageSize::Size2M, PageSize::Size1G]
            .into_iter()
            .find(|s| s.bytes() == bytes)
            .unwrap_or(PageSize::Size4K);
        (a, size)
    }))
}

/// The engine's configuration (`[engine]` keys and the project's `loop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// (hot, cold) pairs in file order
    pub pairs: Vec<NodePair>,
    /// `hot_threshold`, clamped to `loop*3+1` when `loop` is known
    pub hot_threshold: u32,
    /// `node_mig_quota`, MiB per pair per round
    pub quota_mb: u64,
    /// `node_hot_reserve`, MiB
    pub reserve_mb: u64,
    /// the project's `loop`
    pub loops: Option<u32>,
}

/// The engine (shared with its tasks: the round plan spans all of them).
#[derive(Debug)]
pub struct Cslide {
    shared: Arc<Mutex<Shared>>,
}

/// One task: its name and the engine's shared state.
#[derive(Debug)]
pub struct CslideTask {
    name: String,
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct TaskEntry {
    info: TaskInfo,
    stopped: bool,
}

/// Statistics of the last round (step 6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// seconds since the epoch when they were taken; `None` without a clock
    pub time: Option<u64>,
    /// node memory at that round, sorted by node
    pub nodes: Vec<NodeMemory>,
    /// per task: per pid, per node number
    pub tasks: BTreeMap<String, Vec<(Pid, Vec<NodeStat>)>>,
}

impl Stats {
    /// The host totals per node number (sums over every pid).
    pub fn host(&self) -> Vec<NodeStat> {
        let mut out: Vec<NodeStat> = Vec::new();
        for per_node in self.tasks.values().flatten().map(|(_, s)| s) {
            if out.len() < per_node.len() {
                out.resize(per_node.len(), NodeStat::default());
            }
            for (o, s) in out.iter_mut().zip(per_node) {
                o.hot_kb += s.hot_kb;
                o.cold_kb += s.cold_kb;
            }
        }
        out
    }
}

/// The plan of the round in progress.
#[derive(Debug)]
struct Epoch {
    round: u64,
    pending: BTreeMap<String, Vec<Action>>,
    handed: BTreeSet<String>,
    /// per pair: what is left for a task joining this round
    left: Vec<PairState>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    tasks: BTreeMap<String, TaskEntry>,
    epoch: Option<Epoch>,
    stats: Stats,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while planning is caught at the boundary and poisons the engine; the data
    // itself stays consistent enough to drop.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn yes_no(params: &Params, key: &str) -> Result<bool, EngineError> {
    match params.raw(key) {
        None => Err(EngineError::MissingParam(key.to_string())),
        Some("yes") => Ok(true),
        Some("no") => Ok(false),
        Some(v) => Err(EngineError::invalid_param(key, v, "`yes` or `no`")),
    }
}

fn mb_key(params: &Params, key: &str) -> Result<u64, EngineError> {
    let v = params
        .get_in::<i64>(key, 0..=i64::from(i32::MAX))?
        .ok_or_else(|| EngineError::MissingParam(key.to_string()))?;
    Ok(v.unsigned_abs())
}

/// The current time in seconds since the epoch, where the build has a clock.
fn now() -> Option<u64> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
    #[cfg(target_arch = "wasm32")]
    {
        None
    }
}

impl Engine for Cslide {
    type Task = CslideTask;

    /// `node_pair`, `hot_threshold` (clamped to `loop*3+1`), `node_mig_quota` and
    /// `node_hot_reserve` are required; unknown keys are ignored (the host's config layer
    /// already decided about them).
    fn configure(params: &Params, _host: &dyn Host) -> Result<Cslide, EngineError> {
        let raw_pairs = params
            .raw("node_pair")
            .ok_or_else(|| EngineError::MissingParam("node_pair".to_string()))?;
        let pairs = policy::parse_node_pairs(raw_pairs).map_err(|why| {
            EngineError::invalid_param("node_pair", raw_pairs, format!("`hot,cold` pairs ({why})"))
        })?;
        let loops = params.get_in::<u32>("loop", 1..=120)?;
        let ht = params
            .get_in::<i64>("hot_threshold", 0..=i64::from(i32::MAX))?
            .ok_or_else(|| EngineError::MissingParam("hot_threshold".to_string()))?;
        let ht = u32::try_from(ht).unwrap_or(u32::MAX);
        let hot_threshold = match loops {
            Some(l) => ht.min(l * 3 + 1),
            None => ht,
        };
        let config = Config {
            pairs,
            hot_threshold,
            quota_mb: mb_key(params, "node_mig_quota")?,
            reserve_mb: mb_key(params, "node_hot_reserve")?,
            loops,
        };
        Ok(Cslide {
            shared: Arc::new(Mutex::new(Shared {
                config,
                tasks: BTreeMap::new(),
                epoch: None,
                stats: Stats::default(),
            })),
        })
    }

    /// `vm_flags` (exactly `ht`), `anon_only` and `ign_host` (`yes`/`no`) are required;
    /// the host applies them when it scans. Unknown keys are ignored.
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<CslideTask, EngineError> {
        match params.raw("vm_flags") {
            None => return Err(EngineError::MissingParam("vm_flags".to_string())),
            Some("ht") => {}
            Some(v) => return Err(EngineError::invalid_param("vm_flags", v, "exactly `ht`")),
        }
        yes_no(params, "anon_only")?;
        yes_no(params, "ign_host")?;
        let mut s = lock(&self.shared);
        s.tasks.insert(
            task.name.clone(),
            TaskEntry {
                info: task.clone(),
                stopped: false,
            },
        );
        Ok(CslideTask {
            name: task.name.clone(),
            shared: self.shared.clone(),
        })
    }

    /// `showhostpages` and `showtaskpages -t <task>` (texts of [`show`]), each also as
    /// JSON (`<cmd> -o json`, see [`etmem_sdk::command`]). Both fail when the engine has no
    /// task.
    fn command(
        &mut self,
        cmd: &str,
        task: Option<(&TaskInfo, &mut CslideTask)>,
        host: &dyn Host,
    ) -> Result<String, EngineError> {
        let req = CommandRequest::parse(cmd);
        let name = req.name;
        if !matches!(name, "showhostpages" | "showtaskpages") {
            return Err(req.unknown());
        }
        let s = lock(&self.shared);
        let mut stats = s.stats.clone();
        if stats.nodes.is_empty() {
            // No round yet: the node list of the machine, with zero pages.
            stats.nodes = host.system_facts().nodes;
            stats.nodes.sort_by_key(|n| n.node);
        }
        let no_task = || EngineError::failed(format!("{name}: no task of this engine is started"));
        if name == "showhostpages" {
            if s.tasks.is_empty() {
                return Err(no_task());
            }
            return Ok(match req.output {
                Output::Text => show::host_pages(&stats),
                Output::Json => show::host_pages_json(&stats),
            });
        }
        let (info, _) = task.ok_or_else(|| EngineError::TaskRequired(name.to_string()))?;
        if s.tasks.is_empty() {
            return Err(no_task());
        }
        let first = stats.tasks.get(&info.name).and_then(|v| v.first());
        let (pid, per_node) = match first {
            Some((pid, per_node)) => (*pid, per_node.clone()),
            None => match (info.target_type.as_str(), info.target_value.parse::<Pid>()) {
                ("pid", Ok(pid)) => (pid, Vec::new()),
                _ => {
                    return Err(EngineError::failed(format!(
                        "showtaskpages: task `{}` has no pid scanned yet",
                        info.name
                    )));
                }
            },
        };
        Ok(match req.output {
            Output::Text => show::task_pages(&stats, pid, &per_node),
            Output::Json => show::task_pages_json(&stats, &info.name, pid, &per_node),
        })
    }
}

/// One task's scans and pages for a round.
struct Input {
    task: String,
    pids: Vec<PidPages>,
}

impl Shared {
    fn loops(&self, round: &Round) -> u32 {
        self.config.loops.unwrap_or(round.passes.max(1))
    }

    /// Node memory of every node of the pairs, or why the round is skipped.
    fn node_memory(&self, host: &dyn Host) -> Result<Vec<NodeMemory>, String> {
        let mut nodes = host.system_facts().nodes;
        nodes.sort_by_key(|n| n.node);
        for p in &self.config.pairs {
            for n in [p.hot, p.cold] {
                match nodes.iter().find(|m| m.node == n) {
                    None => return Err(format!("node {n} of node_pair is not on this host")),
                    Some(m) if m.huge_total_kb == 0 => {
                        return Err(format!("node {n} has no 2 MiB huge pages configured"));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(nodes)
    }

    /// The pages of each scan of `task` with their nodes; `None` (logged) when the host
    /// cannot say where they are.
    fn input(
        &self,
        task: &str,
        scans: &[ScanResult],
        max_count: u32,
        host: &dyn Host,
    ) -> Option<Input> {
        let mut pids = Vec::with_capacity(scans.len());
        for scan in scans {
            let addrs: Vec<u64> = scan.pages().map(|p| p.addr).collect();
            match host.task_page_nodes(task, scan.pid(), &addrs) {
                Ok(nodes) if nodes.len() == scan.len() => {
                    pids.push(PidPages::from_scan(task, scan, &nodes, max_count));
                }
                Ok(nodes) => {
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "cslide task `{task}` pid {}: {} nodes for {} pages; task left out of this round",
                            scan.pid(),
                            nodes.len(),
                            scan.len()
                        ),
                    );
                    return None;
                }
                Err(e) => {
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "cslide task `{task}` pid {}: page nodes: {e}; task left out of this round",
                            scan.pid()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(Input {
            task: task.to_string(),
            pids,
        })
    }

    /// Plans `inputs` from `states`, records their statistics, and returns each task's
    /// actions plus the pair states left.
    fn plan_inputs(
        &mut self,
        inputs: &[Input],
        mut states: Vec<PairState>,
        max_count: u32,
        node_count: usize,
    ) -> (BTreeMap<String, Vec<Action>>, Vec<PairState>) {
        let ht = self.config.hot_threshold.min(max_count + 1);
        let pids: Vec<PidPages> = inputs.iter().flat_map(|i| i.pids.iter().cloned()).collect();
        let before = states.clone();
        let plan = policy::plan_round(&pids, &self.config.pairs, &mut states, ht, max_count);
        let mut actions: BTreeMap<String, Vec<Action>> = inputs
            .iter()
            .map(|i| (i.task.clone(), Vec::new()))
            .collect();
        for (pid, per_pair) in pids.iter().zip(&plan.moves) {
            let list = actions.entry(pid.task.clone()).or_default();
            for (pair, m) in self.config.pairs.iter().zip(per_pair) {
                for (addrs, node) in [(&m.cold_list, pair.cold), (&m.hot_list, pair.hot)] {
                    if !addrs.is_empty() {
                        list.push(Action::Migrate {
                            pid: pid.pid,
                            runs: runs_of(&pid.pages, addrs),
                            node,
                        });
                    }
                }
            }
        }
        for input in inputs {
            let per_pid = input
                .pids
                .iter()
                .map(|p| (p.pid, policy::pid_stats(p, ht, node_count)))
                .collect();
            self.stats.tasks.insert(input.task.clone(), per_pid);
        }
        // What a task joining this round may still use.
        let left = before
            .iter()
            .zip(&plan.moved)
            .map(|(b, [hot, pre, cold])| {
                let up = hot + pre;
                PairState::new(
                    (b.free - up + cold).max(0),
                    (b.cold_free + up - cold).max(0),
                    0,
                    (b.quota - up - cold).max(0),
                    b.reserve,
                )
            })
            .collect();
        (actions, left)
    }

    /// A new round: plan every started task of the engine; returns `task`'s share.
    fn new_round(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Vec<Action> {
        let max_count = self.loops(round).saturating_mul(3);
        let mut inputs = Vec::new();
        let others: Vec<String> = self
            .tasks
            .iter()
            .filter(|(n, e)| n.as_str() != task && !e.stopped)
            .map(|(n, _)| n.clone())
            .collect();
        if let Some(i) = self.input(task, scans, max_count, host) {
            inputs.push(i);
        }
        for other in others {
            match host.task_scan(&other) {
                Ok(s) if !s.is_empty() => {
                    if let Some(i) = self.input(&other, &s, max_count, host) {
                        inputs.push(i);
                    }
                }
                Ok(_) => {}
                Err(e) => host.log(
                    LogLevel::Debug,
                    &format!("cslide task `{other}`: no scan this round: {e}"),
                ),
            }
        }
        let mut epoch = Epoch {
            round: round.number,
            pending: BTreeMap::new(),
            handed: BTreeSet::from([task.to_string()]),
            left: Vec::new(),
        };
        let nodes = match self.node_memory(host) {
            Ok(n) => n,
            Err(why) => {
                host.log(
                    LogLevel::Warn,
                    &format!("cslide round {}: skipped: {why}", round.number),
                );
                // Every task of this round gets nothing.
                epoch.pending = inputs
                    .iter()
                    .map(|i| (i.task.clone(), Vec::new()))
                    .collect();
                self.epoch = Some(epoch);
                return Vec::new();
            }
        };
        let node_count = nodes
            .iter()
            .map(|n| n.node as usize + 1)
            .chain(
                self.config
                    .pairs
                    .iter()
                    .map(|p| p.hot.max(p.cold) as usize + 1),
            )
            .max()
            .unwrap_or(0);
        self.stats = Stats {
            time: now(),
            nodes: nodes.clone(),
            tasks: BTreeMap::new(),
        };
        // First the statistics of every pid: `cold` is the host's cold bytes on a hot node.
        let ht = self.config.hot_threshold.min(max_count + 1);
        let mut host_cold = vec![0u64; node_count];
        for p in inputs.iter().flat_map(|i| &i.pids) {
            for (n, s) in policy::pid_stats(p, ht, node_count).iter().enumerate() {
                host_cold[n] += s.cold_kb;
            }
        }
        let mem = |n: u32| {
            nodes
                .iter()
                .find(|m| m.node == n)
                .copied()
                .unwrap_or_default()
        };
        let as_bytes = |kb: u64| i64::try_from(kb.saturating_mul(1024)).unwrap_or(i64::MAX);
        let states: Vec<PairState> = self
            .config
            .pairs
            .iter()
            .map(|p| {
                PairState::new(
                    as_bytes(mem(p.hot).huge_free_kb),
                    as_bytes(mem(p.cold).huge_free_kb),
                    as_bytes(host_cold.get(p.hot as usize).copied().unwrap_or(0)),
                    as_bytes(self.config.quota_mb.saturating_mul(1024)),
                    as_bytes(self.config.reserve_mb.saturating_mul(1024)),
                )
            })
            .collect();
        let (mut actions, left) = self.plan_inputs(&inputs, states, max_count, node_count);
        let mine = actions.remove(task).unwrap_or_default();
        epoch.pending = actions;
        epoch.left = left;
        self.epoch = Some(epoch);
        mine
    }

    /// A task joining a round already planned: planned alone with what is left.
    fn join_round(
        &mut self,
        task: &str,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Vec<Action> {
        let max_count = self.loops(round).saturating_mul(3);
        let Some(input) = self.input(task, scans, max_count, host) else {
            return Vec::new();
        };
        let Some(left) = self.epoch.as_ref().map(|e| e.left.clone()) else {
            return Vec::new();
        };
        if left.is_empty() {
            return Vec::new(); // the round was skipped
        }
        let node_count = self
            .stats
            .tasks
            .values()
            .flatten()
            .map(|(_, s)| s.len())
            .chain(
                self.config
                    .pairs
                    .iter()
                    .map(|p| p.hot.max(p.cold) as usize + 1),
            )
            .max()
            .unwrap_or(0);
        let ht = self.config.hot_threshold.min(max_count + 1);
        let mut cold = vec![0u64; node_count];
        for p in &input.pids {
            for (n, s) in policy::pid_stats(p, ht, node_count).iter().enumerate() {
                cold[n] += s.cold_kb;
            }
        }
        let states = left
            .iter()
            .zip(&self.config.pairs)
            .map(|(l, p)| {
                let mut s = *l;
                s.cold = i64::try_from(cold.get(p.hot as usize).copied().unwrap_or(0) * 1024)
                    .unwrap_or(i64::MAX);
                s
            })
            .collect();
        let (mut actions, left) =
            self.plan_inputs(std::slice::from_ref(&input), states, max_count, node_count);
        if let Some(e) = self.epoch.as_mut() {
            e.left = left;
            e.handed.insert(task.to_string());
        }
        actions.remove(task).unwrap_or_default()
    }
}

impl Task for CslideTask {
    fn plan(
        &mut self,
        round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let mut s = lock(&self.shared);
        if let Some(e) = s.tasks.get_mut(&self.name) {
            e.stopped = false;
        }
        let same_round = s
            .epoch
            .as_ref()
            .is_some_and(|e| e.round == round.number && !e.handed.contains(&self.name));
        if !same_round {
            return Ok(s.new_round(&self.name, round, scans, host));
        }
        let share = s.epoch.as_mut().and_then(|e| {
            let share = e.pending.remove(&self.name);
            if share.is_some() {
                e.handed.insert(self.name.clone());
            }
            share
        });
        match share {
            Some(actions) => Ok(actions),
            None => Ok(s.join_round(&self.name, round, scans, host)),
        }
    }

    /// A stopped task is left out of later rounds until it is planned again; the round in
    /// progress is forgotten (project stop stops every task).
    fn stop_task(&mut self, _host: &dyn Host) {
        let mut s = lock(&self.shared);
        if let Some(e) = s.tasks.get_mut(&self.name) {
            e.stopped = true;
        }
        s.epoch = None;
    }
}

impl Drop for CslideTask {
    fn drop(&mut self) {
        let mut s = lock(&self.shared);
        s.tasks.remove(&self.name);
        s.stats.tasks.remove(&self.name);
        if let Some(e) = s.epoch.as_mut() {
            e.pending.remove(&self.name);
        }
    }
}

impl CslideTask {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Cslide {
    /// The engine's configuration.
    pub fn config(&self) -> Config {
        lock(&self.shared).config.clone()
    }

    /// The statistics of the last round.
    pub fn stats(&self) -> Stats {
        lock(&self.shared).stats.clone()
    }

    /// The started tasks (not stopped since they were last planned or added).
    pub fn started_tasks(&self) -> Vec<TaskInfo> {
        lock(&self.shared)
            .tasks
            .values()
            .filter(|e| !e.stopped)
            .map(|e| e.info.clone())
            .collect()
    }
}

// The plug-in export (an abi_stable root module, or the wasm component's exports). Left out
// when etmemd compiles this engine in (feature `builtin`): two engines' root-module symbols
// would clash in one binary, and a built-in engine needs no export.
#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Cslide);

#[cfg(test)]
mod tests;
