//! Small sysfs and procfs texts: node and CPU lists (`parse_id_list`), node distance rows,
//! memory tier and huge page pool names, counters, and `/proc/PID/stat` (whose comm is
//! chosen by the process). The first byte picks the parser.
//!
//! Invariants: no panic, no huge allocation; an id list is ascending without duplicates.
#![no_main]

use etmem_kernel::parse::{
    parse_counter, parse_distance_row, parse_hugepages_dir_name, parse_id_list,
    parse_memory_tier_name, parse_stat_ppid, parse_stat_starttime,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 6 {
        0 => {
            if let Some(ids) = parse_id_list(&text) {
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            }
        }
        1 => {
            let _ = parse_distance_row(&text);
        }
        2 => {
            let _ = parse_memory_tier_name(&text);
        }
        3 => {
            if let Some(kb) = parse_hugepages_dir_name(&text) {
                assert!(kb > 0);
            }
        }
        4 => {
            let _ = parse_counter(&text);
        }
        _ => {
            let _ = (parse_stat_ppid(&text), parse_stat_starttime(&text));
        }
    }
});
