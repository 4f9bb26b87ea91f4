use etmem_sdk::{Action, EngineError, Params, Policy, ScanResult};

/// Swaps out the runs of pages no scan pass saw accessed, once a process has at least
/// `min_pages` of them (an `[engine]` or `[task]` key, 1..=65536, default 1).
pub struct SwapIdle { min_pages: u64 }

impl Policy for SwapIdle {
    const KEYS: &'static [&'static str] = &["min_pages"];
    fn new(params: &Params) -> Result<SwapIdle, EngineError> {
        Ok(SwapIdle { min_pages: params.get_in("min_pages", 1..=65536)?.unwrap_or(1) })
    }
    fn decide(&mut self, scan: &ScanResult) -> Result<Vec<Action>, EngineError> {
        let runs: Vec<_> = scan.runs().filter(|r| r.count == 0).map(|r| r.page_run()).collect();
        let pages: u64 = runs.iter().map(|r| u64::from(r.pages)).sum();
        let pid = scan.pid();
        Ok((pages >= self.min_pages).then_some(Action::SwapOut { pid, runs }).into_iter().collect())
    }
}

etmem_sdk::export_policy!(SwapIdle);
