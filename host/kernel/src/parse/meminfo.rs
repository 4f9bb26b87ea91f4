//! `/proc/PID/status` (VmRSS, VmSwap), `/proc/meminfo` and per-node
//! `/sys/devices/system/node/nodeN/meminfo` (spec §6.3). Values are in kB as the kernel
//! prints them. This module never opens files.

/// The value in kB of `key:` in a `Key: value kB` text. The key may be preceded by a
/// `Node N ` prefix (per-node meminfo). The value is the first run of digits after the
/// colon (C etmem's rule).
fn kb_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let line = match line.strip_prefix("Node ") {
            Some(rest) => rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start(),
            None => line,
        };
        let (k, v) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let digits: String = v
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    })
}

/// The memory fields of `/proc/PID/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcStatus {
    /// `VmRSS` in kB (absent for kernel threads)
    pub vm_rss_kb: Option<u64>,
    /// `VmSwap` in kB
    pub vm_swap_kb: Option<u64>,
    /// `VmLck` in kB: memory locked with mlock (VM_LOCKED), which the kernel never swaps
    pub vm_lck_kb: Option<u64>,
}

/// Parses `/proc/PID/status`.
pub fn parse_status(bytes: &[u8]) -> ProcStatus {
    let text = String::from_utf8_lossy(bytes);
    ProcStatus {
        vm_rss_kb: kb_value(&text, "VmRSS"),
        vm_swap_kb: kb_value(&text, "VmSwap"),
        vm_lck_kb: kb_value(&text, "VmLck"),
    }
}

/// The fields of `/proc/meminfo` (or a node's meminfo) etmem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemInfo {
    /// `MemTotal`
    pub mem_total_kb: Option<u64>,
    /// `MemFree`
    pub mem_free_kb: Option<u64>,
    /// `MemAvailable` (not in per-node files)
    pub mem_available_kb: Option<u64>,
    /// `SwapCached`
    pub swap_cached_kb: Option<u64>,
    /// `SwapTotal`
    pub swap_total_kb: Option<u64>,
    /// `SwapFree`
    pub swap_free_kb: Option<u64>,
}

/// Parses `/proc/meminfo` or `/sys/devices/system/node/nodeN/meminfo`.
pub fn parse_meminfo(bytes: &[u8]) -> MemInfo {
    let t = String::from_utf8_lossy(bytes);
    MemInfo {
        mem_total_kb: kb_value(&t, "MemTotal"),
        mem_free_kb: kb_value(&t, "MemFree"),
        mem_available_kb: kb_value(&t, "MemAvailable"),
        swap_cached_kb: kb_value(&t, "SwapCached"),
        swap_total_kb: kb_value(&t, "SwapTotal"),
        swap_free_kb: kb_value(&t, "SwapFree"),
    }
}

/// One huge page pool of a NUMA node
/// (`/sys/devices/system/node/nodeN/hugepages/hugepages-<size>kB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HugePool {
    /// the page size in kB, from the directory name
    pub size_kb: u64,
    /// `nr_hugepages`: pages in the pool
    pub total: u64,
    /// `free_hugepages`: pages not in use
    pub free: u64,
}

impl HugePool {
    /// The pool's size in kB.
    pub fn total_kb(&self) -> u64 {
        self.total.saturating_mul(self.size_kb)
    }

    /// The pool's free size in kB.
    pub fn free_kb(&self) -> u64 {
        self.free.saturating_mul(self.size_kb)
    }
}

/// The page size in kB named by a huge page pool directory, `hugepages-2048kB` → 2048.
pub fn parse_hugepages_dir_name(name: &str) -> Option<u64> {
    let kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?;
    if kb.is_empty() || !kb.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    kb.parse().ok().filter(|&v| v > 0)
}

/// A sysfs counter such as `nr_hugepages`: one decimal number and a newline.
pub fn parse_counter(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pool_names_and_counters() {
        assert_eq!(parse_hugepages_dir_name("hugepages-2048kB"), Some(2048));
        assert_eq!(
            parse_hugepages_dir_name("hugepages-1048576kB"),
            Some(1 << 20)
        );
        for bad in [
            "hugepages-kB",
            "hugepages-2048",
            "hugepages-0kB",
            "huge-2048kB",
            "hugepages--1kB",
        ] {
            assert_eq!(parse_hugepages_dir_name(bad), None, "{bad}");
        }
        assert_eq!(parse_counter("16\n"), Some(16));
        assert_eq!(parse_counter("x\n"), None);
        let p = HugePool {
            size_kb: 2048,
            total: 16,
            free: 4,
        };
        assert_eq!((p.total_kb(), p.free_kb()), (32768, 8192));
    }

    #[test]
    fn status_rss_swap_and_locked() {
        let s = b"Name:\tmysqld\nVmPeak:\t 9000 kB\nVmLck:\t     512 kB\nVmRSS:\t    1234 kB\nRssAnon:\t 1000 kB\nVmSwap:\t      56 kB";
        assert_eq!(
            parse_status(s),
            ProcStatus {
                vm_rss_kb: Some(1234),
                vm_swap_kb: Some(56),
                vm_lck_kb: Some(512),
            }
        );
        // kernel thread: no Vm lines
        assert_eq!(parse_status(b"Name:\tkthreadd\n"), ProcStatus::default());
    }

    #[test]
    fn meminfo_global_and_per_node() {
        let g = b"MemTotal:        1000000 kB\nMemFree:          500000 kB\nMemAvailable:     700000 kB\nBuffers: 1 kB\nCached: 2 kB\nSwapCached:           30 kB\nSwapTotal:        262144 kB\nSwapFree:         262000 kB\n";
        let m = parse_meminfo(g);
        assert_eq!(m.mem_total_kb, Some(1_000_000));
        assert_eq!(m.mem_free_kb, Some(500_000));
        assert_eq!(m.mem_available_kb, Some(700_000));
        assert_eq!(m.swap_cached_kb, Some(30));
        assert_eq!(m.swap_total_kb, Some(262_144));
        assert_eq!(m.swap_free_kb, Some(262_000));
        let n = b"Node 1 MemTotal:       524288 kB\nNode 1 MemFree:        520000 kB\nNode 1 MemUsed:           4288 kB\n";
        let m = parse_meminfo(n);
        assert_eq!(m.mem_total_kb, Some(524_288));
        assert_eq!(m.mem_free_kb, Some(520_000));
        assert_eq!(m.mem_available_kb, None);
    }
}
