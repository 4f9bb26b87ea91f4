//! Pure parsers of kernel text and binary records. No function here opens a file, reads a
//! clock or calls the kernel: bytes in, typed values out, so every rule is unit-tested.

pub mod idle_pages;
pub mod maps;
pub mod meminfo;
pub mod numa;
pub mod pagemap;
pub mod psi;

pub use idle_pages::{IdleDecodeError, IdlePageType, IdleRun, PageSizes, decode_idle_pages};
pub use maps::{MapsError, Perms, Vma, VmaFilter, parse_maps, parse_smaps};
pub use meminfo::{
    HugePool, MemInfo, ProcStatus, parse_counter, parse_hugepages_dir_name, parse_meminfo,
    parse_status,
};
pub use numa::{parse_distance_row, parse_memory_tier_name};
pub use pagemap::{PagemapEntry, decode_pagemap};
pub use psi::{Psi, PsiLine, parse_psi};

/// The most ids a CPU or node list may hold: more than any kernel has (NR_CPUS is at most
/// 8192, MAX_NUMNODES 1024), few enough that a list such as `0-4294967295` is refused
/// instead of expanded into 16 GiB.
pub const MAX_ID_LIST_LEN: usize = 1 << 16;

/// Parses a sysfs CPU/node list such as `0-3,5,7-8` into ascending ids. `None` when a
/// piece is not a number or a range, or the list holds more than [`MAX_ID_LIST_LEN`] ids.
pub fn parse_id_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || usize::try_from(b - a).ok()? >= MAX_ID_LIST_LEN - out.len() {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                if out.len() >= MAX_ID_LIST_LEN {
                    return None;
                }
                out.push(part.parse().ok()?)
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// The parent pid from the contents of `/proc/PID/stat`. The comm field may contain spaces
/// and parentheses, so the fields after the *last* `)` are used.
pub fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// The start time of a process (field 22 of `/proc/PID/stat`, clock ticks since boot).
/// Fields are counted after the *last* `)`, so a hostile comm cannot shift them.
pub fn parse_stat_starttime(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // after `)` the first field is field 3 (state); field 22 is the 20th one.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists() {
        assert_eq!(parse_id_list("0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_id_list("0\n"), Some(vec![0]));
        assert_eq!(parse_id_list(""), Some(vec![]));
        assert_eq!(parse_id_list("3-1"), None);
        assert_eq!(parse_id_list("x"), None);
    }

    /// Found by reviewing the `sysfs` fuzz target's harness (issue 12), which reported it
    /// as `out-of-memory (malloc(17179869184))`: a range was expanded before any bound.
    #[test]
    fn id_lists_larger_than_any_kernel_are_refused() {
        assert_eq!(parse_id_list("0-4294967295"), None);
        assert_eq!(parse_id_list("0-65536"), None);
        let max = u32::try_from(MAX_ID_LIST_LEN - 1).expect("small");
        assert_eq!(
            parse_id_list(&format!("0-{max}")).map(|v| v.len()),
            Some(MAX_ID_LIST_LEN)
        );
        // the bound is on the whole list, not on each range
        assert_eq!(parse_id_list(&format!("0-{max},70000")), None);
        assert_eq!(
            parse_id_list(&format!("1-{max},0")).map(|v| v.len()),
            Some(MAX_ID_LIST_LEN)
        );
    }

    #[test]
    fn stat_ppid_with_hostile_comm() {
        assert_eq!(parse_stat_ppid("42 (a) b) S 7 42 42 0"), Some(7));
        assert_eq!(parse_stat_ppid("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn stat_starttime() {
        let stat =
            "77 (we ird) n) S 1 77 77 0 -1 4194560 100 0 0 0 3 4 0 0 20 0 1 0 123456 1000 50";
        assert_eq!(parse_stat_starttime(stat), Some(123456));
        assert_eq!(parse_stat_starttime("1 (x) S 0 1"), None);
    }
}
