//! Entry points for the fuzz targets under `fuzz/` into parsers that are crate-private:
//! the `damon_aggregated` trace line, the assembler of aggregations, and the kdamond state
//! file. Not an API: values come out as plain tuples and strings so that no private type
//! leaks, and nothing here is used by the daemon.

use crate::track::damon::{state, trace};
use std::path::Path;

/// One parsed trace line: `(ts_ns, target, nr_regions, start, end, nr_accesses)`.
pub type DamonEvent = (u64, u64, u64, u64, u64, u64);

/// One complete aggregation: `(target, seq, regions)`, each region `(start, end, nr_accesses)`.
pub type DamonBlock = (u64, u64, Vec<(u64, u64, u64)>);

/// [`trace::parse_line`] on one line of `trace_pipe`.
pub fn damon_trace_line(line: &str) -> Option<DamonEvent> {
    trace::parse_line(line).map(|e| {
        (
            e.ts_ns,
            e.target,
            e.nr_regions,
            e.start,
            e.end,
            e.nr_accesses,
        )
    })
}

/// Feeds every line of `text` that parses to an assembler, as `Feed::drain` does, and
/// returns the newest complete aggregation of each target seen (ascending by target).
pub fn damon_assemble(text: &str) -> Vec<DamonBlock> {
    let mut asm = trace::Assembler::default();
    let mut targets = Vec::new();
    for line in text.split('\n') {
        if let Some(e) = trace::parse_line(line) {
            targets.push(e.target);
            asm.push(e);
        }
    }
    targets.sort_unstable();
    targets.dedup();
    targets
        .into_iter()
        .filter_map(|t| asm.newer(t, 0).map(|b| (t, b.seq, b.regions.clone())))
        .collect()
}

/// Parses a kdamond state file for kdamond `index`; on success, the record rendered again.
pub fn damon_state(index: u64, text: &str) -> Result<String, String> {
    state::parse(Path::new("damon-fuzz.state"), index, text)
        .map(|r| r.render())
        .map_err(|e| e.to_string())
}
