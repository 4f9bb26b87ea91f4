//! The state file a kdamond of ours leaves under `/run/etmemd` (read back by a restarted
//! etmemd: `etmem_kernel::track::damon::state::parse`).
//!
//! Invariants: no panic; a parsed record rendered again parses to the same text.
#![no_main]

use etmem_kernel::fuzzing::damon_state;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // the first byte picks the kdamond index the file is named for
    let Some((&index, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let index = u64::from(index % 4);
    if let Ok(rendered) = damon_state(index, text) {
        assert_eq!(damon_state(index, &rendered), Ok(rendered.clone()));
    }
});
