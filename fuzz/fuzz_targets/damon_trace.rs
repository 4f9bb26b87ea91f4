//! `trace_pipe` lines of the `damon:damon_aggregated` event and the assembler that puts
//! them back together into aggregations (`etmem_kernel::track::damon::trace`).
//!
//! Invariants: no panic; a parsed line printed back as the kernel prints it parses to the
//! same event; every complete aggregation has ascending, non-overlapping, non-empty regions.
#![no_main]

use etmem_kernel::fuzzing::{damon_assemble, damon_trace_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let Some((ts, target, nr, start, end, acc)) = damon_trace_line(line) else {
            continue;
        };
        let again = format!(
            "kdamond.0-93 [001] ..... {}.{:06}: damon_aggregated: target_id={target} \
             nr_regions={nr} {start}-{end}: {acc} 0",
            ts / 1_000_000_000,
            ts % 1_000_000_000 / 1000
        );
        let got = damon_trace_line(&again);
        // the kernel prints microseconds: compare at that resolution
        assert_eq!(
            got.map(|(t, a, b, c, d, e)| (t / 1000, a, b, c, d, e)),
            Some((ts / 1000, target, nr, start, end, acc)),
            "{again:?}"
        );
    }
    for (_target, seq, regions) in damon_assemble(&text) {
        assert!(seq > 0);
        assert!(!regions.is_empty());
        for w in regions.windows(2) {
            assert!(w[0].1 <= w[1].0, "{regions:?}");
        }
        for r in &regions {
            assert!(r.0 < r.1, "{regions:?}");
        }
    }
});
