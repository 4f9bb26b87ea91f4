//! C etmem's psi reclaim formula (spec §5.7) as C meant it, and the per-cgroup adaptive
//! rate. Pure: figures in, bytes out; no host, no clock.
//!
//! * `reclaimable = file + min(anon, swap headroom)`, where the headroom is
//!   `swap_limit - swap_usage` (v1: memory+swap limit minus memory+swap usage, as C), and
//!   also at most the machine's free swap when the host says it (C does not look: with no
//!   swap, anonymous memory cannot go anywhere);
//! * `floor = max(limit_min_bytes + (usage - reclaimable), memory.min, memory.low,
//!   limit * limit_min_ratio)`, the last term 0 when the limit is above `LONG_MAX / 2`
//!   (no limit);
//! * `amount = min((usage - floor) * rate, reclaim_max_bytes)`, rounded down to 4 KiB.
//!
//! Bug B1 (C compares and subtracts the addresses of two stack variables, so it reclaims
//! about nothing) is fixed: the computed amount is reclaimed. Bug B2 (C keeps an adaptive
//! rate per cgroup but uses the task's) is fixed: `rate` is the cgroup's [`Rate`].

use etmem_sdk::CgroupMemory;

/// Reclaim granularity: amounts are rounded down to it.
pub const GRANULE: u64 = 4096;
/// How much one adaptive step moves a rate.
pub const RATE_STEP: f64 = 0.01;
/// Successful reclaims that raise a rate one step.
pub const SUCCESSES_PER_STEP: u32 = 5;
/// Pressure skips that lower a rate one step.
pub const SKIPS_PER_STEP: u32 = 2;
/// C's `LONG_MAX / 2`: limits above it mean "no limit".
pub const NO_LIMIT_ABOVE: u64 = (i64::MAX as u64) / 2;

/// The task keys the formula uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Keys {
    /// `limit_min_bytes`
    pub limit_min_bytes: u64,
    /// `limit_min_ratio`
    pub limit_min_ratio: f64,
    /// `reclaim_max_bytes`
    pub reclaim_max_bytes: u64,
}

/// Bytes of `m` the kernel could reclaim: file pages, plus anonymous pages that have swap
/// to go to (`swap_free`: the machine's free swap, when known).
pub fn reclaimable(m: &CgroupMemory, swap_free: Option<u64>) -> u64 {
    let mut headroom = m.swap_limit.saturating_sub(m.swap_usage);
    if let Some(free) = swap_free {
        headroom = headroom.min(free);
    }
    m.file.saturating_add(m.anon.min(headroom))
}

/// The usage the cgroup must keep.
pub fn floor(m: &CgroupMemory, k: &Keys, swap_free: Option<u64>) -> u64 {
    let unreclaimable = m.usage.saturating_sub(reclaimable(m, swap_free));
    let by_limit = if m.limit > NO_LIMIT_ABOVE {
        0
    } else {
        // a float product, as C; saturating on the way back
        (m.limit as f64 * k.limit_min_ratio) as u64
    };
    k.limit_min_bytes
        .saturating_add(unreclaimable)
        .max(m.min)
        .max(m.low)
        .max(by_limit)
}

/// What to reclaim from the cgroup this round at `rate` (0: nothing).
pub fn amount(m: &CgroupMemory, k: &Keys, rate: f64, swap_free: Option<u64>) -> u64 {
    let floor = floor(m, k, swap_free);
    let Some(over) = m.usage.checked_sub(floor).filter(|o| *o > 0) else {
        return 0;
    };
    let want = ((over as f64) * rate) as u64;
    want.min(k.reclaim_max_bytes) / GRANULE * GRANULE
}

/// True when the cgroup's pressure is at or over `limit` (C: `max(avg10, avg60) >= limit`).
pub fn under_pressure(m: &CgroupMemory, limit: f64) -> bool {
    m.pressure_avg10.max(m.pressure_avg60) >= limit
}

/// The adaptive reclaim rate of one cgroup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// the rate now, in `min..=max`
    pub value: f64,
    min: f64,
    max: f64,
    successes: u32,
    skips: u32,
}

impl Rate {
    /// Starts at `initial` (the task's `reclaim_rate`), kept within `min..=max` (when
    /// `min > max`, `max` wins).
    pub fn new(initial: f64, min: f64, max: f64) -> Rate {
        let min = min.min(max);
        Rate {
            value: initial.clamp(min, max),
            min,
            max,
            successes: 0,
            skips: 0,
        }
    }

    /// A reclaim went through: every [`SUCCESSES_PER_STEP`] in a row raise the rate one
    /// step, up to the max.
    pub fn success(&mut self) {
        self.skips = 0;
        self.successes += 1;
        if self.successes >= SUCCESSES_PER_STEP {
            self.successes = 0;
            self.value = round_step(self.value + RATE_STEP).min(self.max);
        }
    }

    /// The cgroup was skipped for pressure: every [`SKIPS_PER_STEP`] in a row lower the
    /// rate one step, down to the min.
    pub fn pressure_skip(&mut self) {
        self.successes = 0;
        self.skips += 1;
        if self.skips >= SKIPS_PER_STEP {
            self.skips = 0;
            self.value = round_step(self.value - RATE_STEP).max(self.min);
        }
    }
}

/// Rounds to 1e-9 so that repeated steps of 0.01 land on 0.05, 0.06... exactly enough to
/// compare and print.
fn round_step(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const KEYS: Keys = Keys {
        limit_min_bytes: 0,
        limit_min_ratio: 0.1,
        reclaim_max_bytes: 1 << 30,
    };

    fn mem(file: u64, anon: u64) -> CgroupMemory {
        CgroupMemory {
            v2: true,
            usage: file.saturating_add(anon),
            limit: u64::MAX,
            file,
            anon,
            swap_limit: u64::MAX,
            ..CgroupMemory::default()
        }
    }

    #[test]
    fn everything_reclaimable_no_limit() {
        let m = mem(300 * MIB, 100 * MIB);
        assert_eq!(reclaimable(&m, None), 400 * MIB);
        assert_eq!(floor(&m, &KEYS, None), 0);
        // 400 MiB * 0.05 = 20 MiB
        assert_eq!(amount(&m, &KEYS, 0.05, None), 20 * MIB);
    }

    #[test]
    fn limit_above_long_max_half_counts_as_none() {
        let mut m = mem(100 * MIB, 0);
        // v1's "unlimited"
        m.limit = 9_223_372_036_854_771_712;
        assert_eq!(floor(&m, &KEYS, None), 0);
        m.limit = NO_LIMIT_ABOVE + 1;
        assert_eq!(floor(&m, &KEYS, None), 0);
        // at LONG_MAX/2 exactly it is a limit: 10 % of it is above the usage
        m.limit = NO_LIMIT_ABOVE;
        assert_eq!(amount(&m, &KEYS, 0.5, None), 0);
        // a real limit: floor 10 % of 200 MiB = 20 MiB
        m.limit = 200 * MIB;
        assert_eq!(floor(&m, &KEYS, None), 20 * MIB);
        assert_eq!(amount(&m, &KEYS, 0.5, None), 40 * MIB);
    }

    #[test]
    fn floor_takes_the_largest_term() {
        let mut m = mem(100 * MIB, 50 * MIB);
        // no swap room: anon is unreclaimable, plus limit_min_bytes
        m.swap_limit = 10 * MIB;
        m.swap_usage = 10 * MIB;
        let k = Keys {
            limit_min_bytes: 5 * MIB,
            ..KEYS
        };
        assert_eq!(floor(&m, &k, None), 55 * MIB);
        m.min = 60 * MIB;
        assert_eq!(floor(&m, &k, None), 60 * MIB);
        m.low = 70 * MIB;
        assert_eq!(floor(&m, &k, None), 70 * MIB);
        // usage at or below the floor: nothing
        m.low = 150 * MIB;
        assert_eq!(amount(&m, &k, 0.5, None), 0);
        m.low = 500 * MIB;
        assert_eq!(amount(&m, &k, 0.5, None), 0);
    }

    #[test]
    fn swap_headroom_and_free_swap_bound_anon() {
        let mut m = mem(0, 100 * MIB);
        m.swap_limit = 30 * MIB;
        assert_eq!(reclaimable(&m, None), 30 * MIB);
        m.swap_limit = u64::MAX;
        assert_eq!(reclaimable(&m, Some(10 * MIB)), 10 * MIB);
        assert_eq!(reclaimable(&m, Some(0)), 0);
        // v1 memsw: limit below usage (no room) saturates to 0
        m.swap_limit = 50 * MIB;
        m.swap_usage = 60 * MIB;
        assert_eq!(reclaimable(&m, None), 0);
    }

    #[test]
    fn amounts_round_down_to_4k_and_stop_at_the_max() {
        let m = mem(10_000_000, 0);
        // 10,000,000 * 0.05 = 500,000 -> 499,712 (122 pages)
        assert_eq!(amount(&m, &KEYS, 0.05, None), 499_712);
        assert_eq!(amount(&m, &KEYS, 0.05, None) % GRANULE, 0);
        // less than a page: nothing
        assert_eq!(amount(&mem(8000, 0), &KEYS, 0.5, None), 0);
        let k = Keys {
            reclaim_max_bytes: 1_000_000,
            ..KEYS
        };
        assert_eq!(amount(&mem(100 * MIB, 0), &k, 0.5, None), 999_424);
        // huge figures do not overflow
        let mut big = mem(u64::MAX, u64::MAX);
        big.usage = u64::MAX;
        assert_eq!(amount(&big, &KEYS, 0.5, None), 1 << 30);
    }

    #[test]
    fn pressure_is_the_larger_average_at_or_over_the_limit() {
        let mut m = mem(1, 1);
        m.pressure_avg10 = 0.05;
        m.pressure_avg60 = 0.09;
        assert!(!under_pressure(&m, 0.1));
        m.pressure_avg60 = 0.1;
        assert!(under_pressure(&m, 0.1));
        m.pressure_avg60 = 0.0;
        m.pressure_avg10 = 3.0;
        assert!(under_pressure(&m, 0.1));
    }

    #[test]
    fn rate_steps_after_five_successes_and_two_skips_within_bounds() {
        let mut r = Rate::new(0.05, 0.01, 0.07);
        for _ in 0..4 {
            r.success();
        }
        assert_eq!(r.value, 0.05);
        r.success();
        assert_eq!(r.value, 0.06);
        for _ in 0..5 {
            r.success();
        }
        assert_eq!(r.value, 0.07);
        for _ in 0..5 {
            r.success();
        }
        assert_eq!(r.value, 0.07, "capped at reclaim_rate_max");
        r.pressure_skip();
        assert_eq!(r.value, 0.07);
        r.pressure_skip();
        assert_eq!(r.value, 0.06);
        for _ in 0..20 {
            r.pressure_skip();
        }
        assert_eq!(r.value, 0.01, "floored at reclaim_rate_min");
        // a success between two skips breaks the run
        let mut r = Rate::new(0.05, 0.01, 0.5);
        r.pressure_skip();
        r.success();
        r.pressure_skip();
        assert_eq!(r.value, 0.05);
    }

    #[test]
    fn rate_starts_within_bounds() {
        assert_eq!(Rate::new(0.9, 0.01, 0.5).value, 0.5);
        assert_eq!(Rate::new(0.001, 0.01, 0.5).value, 0.01);
        assert_eq!(Rate::new(0.3, 0.6, 0.5).value, 0.5);
    }
}
