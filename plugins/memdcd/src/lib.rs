//! The `memdcd` engine of etmem (spec §5.6): hands the page lists of a task's processes to
//! the memRouter daemon `memdcd`, which decides what to move.
//!
//! Scheduling is slide's: the host re-resolves the task's pids with their direct children
//! every round, runs `loop` scan passes with `sleep` after each, and calls [`Task::plan`]
//! with one [`ScanResult`] per pid. For every pid this engine:
//! 1. asks the host for the process's VMAs whose smaps `VmFlags` hold `us` (the
//!    userfaultfd-swap areas memdcd manages), through `task-smaps-vmas`;
//! 2. keeps the scanned pages, hot and cold, that lie in those VMAs, with their counts;
//! 3. hands them to the host's `send-page-list` capability with the task's `Sock`: the
//!    host checks them, builds memdcd's 12336-byte messages and sends each on its own
//!    connection.
//!
//! The engine returns no action: memdcd moves the pages. A pid whose VMAs cannot be read
//! (it exited) is skipped with a debug line; a list memdcd refuses, or that cannot be sent,
//! makes the round's plan fail with the host's reason (the other pids are still sent).
//!
//! Written only against `etmem-sdk`: the same source is the built-in engine ([`Memdcd`]),
//! a native `.so` and a wasm component. It must not touch the machine.

use etmem_sdk::{
    Action, Engine, EngineError, Host, LogLevel, Params, Round, ScanResult, ScanRun, Task,
    TaskInfo, Vma,
};

/// What `Sock=-` stands for: the abstract socket a stock memdcd listens on.
pub const DEFAULT_SOCK: &str = "@_memdcd.server";
/// `Sock` must be shorter than this (`sun_path` holds 108 bytes).
pub const SOCK_LIMIT: usize = 108;
/// The `VmFlags` flag of the VMAs memdcd manages (userfaultfd swap).
pub const US_FLAG: &str = "us";

/// The engine; it has no key of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memdcd;

/// One task: its name and its `Sock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemdcdTask {
    name: String,
    sock: String,
}

impl MemdcdTask {
    /// The socket the task's lists go to (`-` already replaced by [`DEFAULT_SOCK`]).
    pub fn sock(&self) -> &str {
        &self.sock
    }
}

/// `Sock` as given: required, 1..108 bytes; `-` is [`DEFAULT_SOCK`].
pub fn parse_sock(params: &Params) -> Result<String, EngineError> {
    let sock = params
        .raw("Sock")
        .ok_or_else(|| EngineError::MissingParam("Sock".into()))?;
    if sock.is_empty() || sock.len() >= SOCK_LIMIT || sock == "@" {
        return Err(EngineError::invalid_param(
            "Sock",
            sock,
            format!(
                "`-`, `@name` (abstract socket) or a socket path, 1 to {} bytes",
                SOCK_LIMIT - 1
            ),
        ));
    }
    Ok(if sock == "-" { DEFAULT_SOCK } else { sock }.to_string())
}

impl Engine for Memdcd {
    type Task = MemdcdTask;

    /// memdcd has no engine key; the project keys the host adds (`loop`, ...) are not
    /// needed: the host runs the passes.
    fn configure(_params: &Params, _host: &dyn Host) -> Result<Memdcd, EngineError> {
        Ok(Memdcd)
    }

    /// Reads `Sock` (required; see [`parse_sock`]).
    fn new_task(
        &mut self,
        task: &TaskInfo,
        params: &Params,
        _host: &dyn Host,
    ) -> Result<MemdcdTask, EngineError> {
        Ok(MemdcdTask {
            name: task.name.clone(),
            sock: parse_sock(params)?,
        })
    }
}

/// The runs of `scan` clipped to `vmas` (any order): the pages that lie inside one of them.
pub fn pages_in(scan: &ScanResult, vmas: &[Vma]) -> Result<ScanResult, EngineError> {
    let mut vmas: Vec<&Vma> = vmas.iter().collect();
    vmas.sort_by_key(|v| v.start);
    let mut out: Vec<ScanRun> = Vec::new();
    for r in scan.runs() {
        let size = r.size.bytes();
        let end = r.addr.saturating_add(u64::from(r.pages) * size);
        for v in &vmas {
            // the whole pages of the run inside `v`
            let lo = r.addr.max(v.start);
            let hi = end.min(v.end);
            if hi <= lo {
                continue;
            }
            let first = (lo - r.addr).div_ceil(size);
            let last = (hi - r.addr) / size;
            if last > first {
                out.push(ScanRun {
                    addr: r.addr + first * size,
                    pages: u32::try_from(last - first).unwrap_or(u32::MAX),
                    count: r.count,
                    size: r.size,
                });
            }
        }
    }
    ScanResult::from_runs(scan.pid(), scan.passes(), out)
}

impl Task for MemdcdTask {
    fn plan(
        &mut self,
        _round: &Round,
        scans: &[ScanResult],
        host: &dyn Host,
    ) -> Result<Vec<Action>, EngineError> {
        let mut failed: Vec<EngineError> = Vec::new();
        for scan in scans {
            let pid = scan.pid();
            let vmas = match host.task_smaps_vmas(&self.name, pid, &[US_FLAG]) {
                Ok(v) => v,
                Err(e) => {
                    host.log(
                        LogLevel::Debug,
                        &format!("memdcd task `{}` pid {pid}: skipped: {e}", self.name),
                    );
                    continue;
                }
            };
            let pages = pages_in(scan, &vmas)?;
            if pages.is_empty() {
                continue;
            }
            if let Err(e) = host.send_page_list(&self.name, &self.sock, &pages) {
                failed.push(e);
            }
        }
        let n = failed.len();
        match failed.into_iter().next() {
            None => Ok(Vec::new()),
            Some(e) if n == 1 => Err(e),
            Some(e) => Err(EngineError::failed(format!(
                "{e} (and {} more page list(s) not sent)",
                n - 1
            ))),
        }
    }
}

// The plug-in export (an abi_stable root module, or the wasm component's exports). Left out
// when etmemd compiles this engine in (feature `builtin`).
#[cfg(not(feature = "builtin"))]
etmem_sdk::export_engine!(Memdcd);

#[cfg(test)]
mod tests;
