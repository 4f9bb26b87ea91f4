//! `/proc/meminfo`, a node's `meminfo` and `/proc/PID/status`
//! (`etmem_kernel::parse::parse_meminfo`, `parse_status`).
//!
//! Invariants: no panic; a value found is the one a line `Key: value kB` printed back
//! from it gives.
#![no_main]

use etmem_kernel::parse::{parse_meminfo, parse_status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let m = parse_meminfo(data);
    let s = parse_status(data);
    if let Some(total) = m.mem_total_kb {
        let again = parse_meminfo(format!("MemTotal:       {total} kB\n").as_bytes());
        assert_eq!(again.mem_total_kb, Some(total));
    }
    if let Some(rss) = s.vm_rss_kb {
        let again = parse_status(format!("VmRSS:\t{rss} kB\n").as_bytes());
        assert_eq!(again.vm_rss_kb, Some(rss));
    }
});
