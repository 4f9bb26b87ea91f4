//! The cslide flow control as pure functions (spec §5.3 steps 5-7): pages bucketed by
//! `[count][node]`, statistics, and the three phases (move hot, prefetch, move cold) per
//! node pair with the exact capacity formulas of C etmem.
//!
//! Values in, values out: this module must not call the host, log or keep state. Sizes are
//! bytes in i64 (the C code mixes signed and unsigned; the formulas need the sign of
//! `reserve - free`); page sizes are the real ones (B21 fixed), not an assumed 2 MiB.

use etmem_sdk::ScanResult;

/// One hot/cold node pair (the first number of a `node_pair` entry is the hot node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePair {
    /// DRAM node
    pub hot: u32,
    /// slower (AEP/PMEM/CXL) node
    pub cold: u32,
}

/// Parses `node_pair`: `hot,cold` pairs separated by `;` or whitespace (spaces around `,`
/// and `;` allowed); a `;`-separated piece may also be `hot cold`. Each node at most once.
/// The error says what is wrong.
pub fn parse_node_pairs(s: &str) -> Result<Vec<NodePair>, String> {
    let node = |t: &str| -> Result<u32, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{t}` is not a node number"));
        }
        t.parse::<u32>()
            .ok()
            .filter(|n| *n <= i32::MAX as u32)
            .ok_or_else(|| format!("node `{t}` out of range"))
    };
    let mut pairs = Vec::new();
    for piece in s.split(';') {
        let piece = piece.trim();
        if piece.is_empty() {
            return Err("empty pair".into());
        }
        let glued = piece
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(",");
        let words: Vec<&str> = glued.split_whitespace().collect();
        if words.len() == 2 && !glued.contains(',') {
            pairs.push(NodePair {
                hot: node(words[0])?,
                cold: node(words[1])?,
            });
            continue;
        }
        for w in words {
            let mut parts = w.split(',');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(h), Some(c), None) => pairs.push(NodePair {
                    hot: node(h)?,
                    cold: node(c)?,
                }),
                _ => return Err(format!("`{w}` is not a `hot,cold` pair")),
            }
        }
    }
    let mut seen = Vec::new();
    for p in &pairs {
        for n in [p.hot, p.cold] {
            if seen.contains(&n) {
                return Err(format!("node {n} appears more than once"));
            }
            seen.push(n);
        }
    }
    Ok(pairs)
}

/// One page of one pid, with its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePage {
    /// start address
    pub addr: u64,
    /// access count, clamped to `max_count` (B4 fixed)
    pub count: u32,
    /// current node
    pub node: u32,
    /// bytes
    pub size: u64,
}

/// The pages of one pid of one task, with their nodes (pages whose node is unknown are
/// dropped, as C does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidPages {
    /// the task
    pub task: String,
    /// the process
    pub pid: u32,
    /// in address order
    pub pages: Vec<NodePage>,
}

impl PidPages {
    /// Joins a scan with the nodes the host reported (`nodes[i]` for page `i`; negative:
    /// not present, dropped), clamping counts to `max_count`.
    pub fn from_scan(task: &str, scan: &ScanResult, nodes: &[i32], max_count: u32) -> PidPages {
        let pages = scan
            .pages()
            .zip(nodes)
            .filter_map(|(p, &n)| {
                Some(NodePage {
                    addr: p.addr,
                    count: u32::from(p.count).min(max_count),
                    node: u32::try_from(n).ok()?,
                    size: p.size.bytes(),
                })
            })
            .collect();
        PidPages {
            task: task.to_string(),
            pid: scan.pid(),
            pages,
        }
    }
}

/// Hot and cold KiB of one pid (or of the host) on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStat {
    /// KiB of pages with `count >= hot_threshold`
    pub hot_kb: u64,
    /// KiB of the other pages
    pub cold_kb: u64,
}

/// Statistics of one pid (step 6): per node (indexed by node number, `nodes` entries),
/// hot and cold KiB with the real page sizes.
pub fn pid_stats(pages: &PidPages, hot_threshold: u32, nodes: usize) -> Vec<NodeStat> {
    let mut out = vec![NodeStat::default(); nodes];
    for p in &pages.pages {
        if let Some(s) = out.get_mut(p.node as usize) {
            if p.count >= hot_threshold {
                s.hot_kb += p.size / 1024;
            } else {
                s.cold_kb += p.size / 1024;
            }
        }
    }
    out
}

/// The flow-control state of one pair during a round (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairState {
    /// free huge-page bytes on the hot node
    pub free: i64,
    /// free huge-page bytes on the cold node
    pub cold_free: i64,
    /// the host's cold bytes on the hot node
    pub cold: i64,
    /// bytes left to migrate this round (`node_mig_quota` MiB at the start)
    pub quota: i64,
    /// bytes to keep free on the hot node (`node_hot_reserve` MiB)
    pub reserve: i64,
    /// hot bytes moved in beyond `free`: as many cold bytes must leave
    pub cold_replaced: i64,
}

impl PairState {
    /// The state at the start of a round.
    pub fn new(free: i64, cold_free: i64, cold: i64, quota: i64, reserve: i64) -> PairState {
        PairState {
            free,
            cold_free,
            cold,
            quota,
            reserve,
            cold_replaced: 0,
        }
    }

    /// Phase 1 capacity: `quota` if `quota < free`; else `free + (quota-free)/2` capped at
    /// `free + cold_free`; then capped at `cold + free`.
    pub fn move_hot_capacity(&self) -> i64 {
        let cap = if self.quota < self.free {
            self.quota
        } else {
            (self.free + (self.quota - self.free) / 2).min(self.free + self.cold_free)
        };
        cap.min(self.cold + self.free)
    }

    /// Book-keeping after phase 1 moved `moved` bytes to the hot node.
    pub fn after_move_hot(&mut self, moved: i64) {
        if moved > self.free {
            self.cold_replaced += moved - self.free;
            self.quota -= self.free + 2 * (moved - self.free);
            self.cold_free += self.free;
            self.free = 0;
        } else {
            self.free -= moved;
            self.quota -= moved;
            self.cold_free += moved;
        }
    }

    /// Phase 2 capacity: `min(free-reserve, quota)` if `free > reserve`, else 0.
    pub fn prefetch_capacity(&self) -> i64 {
        if self.free > self.reserve {
            (self.free - self.reserve).min(self.quota)
        } else {
            0
        }
    }

    /// Book-keeping after phase 2 moved `moved` bytes to the hot node.
    pub fn after_prefetch(&mut self, moved: i64) {
        self.free -= moved;
        self.quota -= moved;
        self.cold_free += moved;
    }

    /// Phase 3 capacity: `clamp(min(quota, reserve-free), 0, cold_free) + cold_replaced`.
    pub fn move_cold_capacity(&self) -> i64 {
        self.quota
            .min(self.reserve - self.free)
            .max(0)
            .min(self.cold_free.max(0))
            + self.cold_replaced
    }
}

/// The pages chosen for one pid and one pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairMoves {
    /// to the pair's hot node
    pub hot_list: Vec<u64>,
    /// to the pair's cold node
    pub cold_list: Vec<u64>,
}

/// The decisions of one round: per pid (same order as the input), per pair (same order as
/// the pairs), the pages to move; and the bytes moved per pair per phase.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoundPlan {
    /// `moves[pid index][pair index]`
    pub moves: Vec<Vec<PairMoves>>,
    /// bytes per pair: [move hot, prefetch, move cold]
    pub moved: Vec<[i64; 3]>,
}

/// Page indices of one pid by `[count][node index]`.
type Buckets = Vec<Vec<Vec<usize>>>;

/// What the three selection walks share.
struct Walker<'a> {
    pids: &'a [PidPages],
    buckets: &'a [Buckets],
    pairs: &'a [NodePair],
    /// the pairs' nodes, sorted: a node's index in the buckets
    nodes: &'a [u32],
}

impl Walker<'_> {
    /// One selection walk: for each count of `counts`, for each pid, for each pair, the
    /// pages of that bucket on the pair's cold node (hot node when `to_cold`) are taken
    /// while they fit in the pair's capacity left (whole pages). Returns the bytes taken
    /// per pair.
    fn select(
        &self,
        counts: impl Iterator<Item = u32>,
        caps: &[i64],
        to_cold: bool,
        moves: &mut [Vec<PairMoves>],
    ) -> Vec<i64> {
        let mut used = vec![0i64; self.pairs.len()];
        let done = |used: &[i64]| used.iter().zip(caps).all(|(u, c)| u >= c);
        'walk: for c in counts {
            for (pi, pid) in self.pids.iter().enumerate() {
                for (k, pair) in self.pairs.iter().enumerate() {
                    if done(&used) {
                        break 'walk;
                    }
                    let from = if to_cold { pair.hot } else { pair.cold };
                    let Ok(ni) = self.nodes.binary_search(&from) else {
                        continue;
                    };
                    let Some(list) = self.buckets[pi].get(c as usize).and_then(|b| b.get(ni))
                    else {
                        continue;
                    };
                    for &i in list {
                        if used[k] >= caps[k] {
                            break;
                        }
                        let page = &pid.pages[i];
                        let size = i64::try_from(page.size).unwrap_or(i64::MAX);
                        if used[k] + size > caps[k] {
                            continue;
                        }
                        used[k] += size;
                        let m = &mut moves[pi][k];
                        if to_cold {
                            m.cold_list.push(page.addr);
                        } else {
                            m.hot_list.push(page.addr);
                        }
                    }
                }
            }
        }
        used
    }
}

/// Step 7: the three phases over every pid of the engine. `states[k]` is the initial state
/// of `pairs[k]`; counts run `0..=max_count`; `hot_threshold` is already clamped to
/// `max_count + 1`.
pub fn plan_round(
    pids: &[PidPages],
    pairs: &[NodePair],
    states: &mut [PairState],
    hot_threshold: u32,
    max_count: u32,
) -> RoundPlan {
    // Dense node index over the pairs' nodes.
    let mut nodes: Vec<u32> = pairs.iter().flat_map(|p| [p.hot, p.cold]).collect();
    nodes.sort_unstable();
    let buckets: Vec<Buckets> = pids
        .iter()
        .map(|pid| {
            let mut b = vec![vec![Vec::new(); nodes.len()]; max_count as usize + 1];
            for (i, p) in pid.pages.iter().enumerate() {
                if let Ok(ni) = nodes.binary_search(&p.node) {
                    b[p.count.min(max_count) as usize][ni].push(i);
                }
            }
            b
        })
        .collect();
    let walker = Walker {
        pids,
        buckets: &buckets,
        pairs,
        nodes: &nodes,
    };
    let mut moves = vec![vec![PairMoves::default(); pairs.len()]; pids.len()];
    let mut moved = vec![[0i64; 3]; pairs.len()];

    // 1. move hot: counts max..=hot_threshold, cold-node pages to the hot node.
    let caps: Vec<i64> = states.iter().map(PairState::move_hot_capacity).collect();
    let used = walker.select((hot_threshold..=max_count).rev(), &caps, false, &mut moves);
    for (k, s) in states.iter_mut().enumerate() {
        s.after_move_hot(used[k]);
        moved[k][0] = used[k];
    }

    // 2. prefetch: counts hot_threshold-1 down to 0, cold-node pages to the hot node.
    let caps: Vec<i64> = states.iter().map(PairState::prefetch_capacity).collect();
    let cold_counts = 0..hot_threshold.min(max_count + 1);
    let used = walker.select(cold_counts.clone().rev(), &caps, false, &mut moves);
    for (k, s) in states.iter_mut().enumerate() {
        s.after_prefetch(used[k]);
        moved[k][1] = used[k];
    }

    // 3. move cold: counts 0 up to hot_threshold-1, hot-node pages to the cold node.
    let caps: Vec<i64> = states.iter().map(PairState::move_cold_capacity).collect();
    let used = walker.select(cold_counts, &caps, true, &mut moves);
    for (k, u) in used.iter().enumerate() {
        moved[k][2] = *u;
    }
    RoundPlan { moves, moved }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: i64 = 1 << 20;

    #[test]
    fn node_pairs_parse_like_the_config_layer() {
        let p = |h, c| NodePair { hot: h, cold: c };
        assert_eq!(parse_node_pairs("0,2;1,3"), Ok(vec![p(0, 2), p(1, 3)]));
        assert_eq!(parse_node_pairs("0,2 1,3"), Ok(vec![p(0, 2), p(1, 3)]));
        assert_eq!(parse_node_pairs("0 2; 1 , 3"), Ok(vec![p(0, 2), p(1, 3)]));
        assert_eq!(parse_node_pairs("1,0"), Ok(vec![p(1, 0)]));
        for bad in [
            "", "0", "0,", "0,2;", "0,2;0,3", "0,0", "a,b", "0,1,2", "0 1 2 3", "-1,2",
        ] {
            assert!(parse_node_pairs(bad).is_err(), "{bad:?}");
        }
    }

    // Capacity cases, computed by hand from the spec's formulas (MiB).
    #[test]
    fn move_hot_capacity_cases() {
        // quota < free: the quota. 100 < 200; cold+free = 250 does not cap.
        assert_eq!(
            PairState::new(200 * MB, 0, 50 * MB, 100 * MB, 0).move_hot_capacity(),
            100 * MB
        );
        // quota >= free: free + (quota-free)/2 = 100 + 200/2 = 200; free+cold_free = 1100.
        assert_eq!(
            PairState::new(100 * MB, 1000 * MB, 500 * MB, 300 * MB, 0).move_hot_capacity(),
            200 * MB
        );
        // ... capped at free + cold_free = 100 + 50 = 150.
        assert_eq!(
            PairState::new(100 * MB, 50 * MB, 500 * MB, 300 * MB, 0).move_hot_capacity(),
            150 * MB
        );
        // ... capped at cold + free = 20 + 100 = 120.
        assert_eq!(
            PairState::new(100 * MB, 1000 * MB, 20 * MB, 300 * MB, 0).move_hot_capacity(),
            120 * MB
        );
        // no free hot memory: (0 + 1024/2) = 512, cold 300 caps at 300.
        assert_eq!(
            PairState::new(0, 1000 * MB, 300 * MB, 1024 * MB, 0).move_hot_capacity(),
            300 * MB
        );
        // odd bytes: (quota-free)/2 truncates: 0 + 3/2 = 1.
        assert_eq!(PairState::new(0, 10, 10, 3, 0).move_hot_capacity(), 1);
    }

    #[test]
    fn move_hot_bookkeeping() {
        // moved beyond free: 100 MiB free, 160 moved: 60 replaced, quota 300-100-120 = 80.
        let mut s = PairState::new(100 * MB, 1000 * MB, 500 * MB, 300 * MB, 10 * MB);
        s.after_move_hot(160 * MB);
        assert_eq!(
            s,
            PairState {
                free: 0,
                cold_free: 1100 * MB,
                cold: 500 * MB,
                quota: 80 * MB,
                reserve: 10 * MB,
                cold_replaced: 60 * MB
            }
        );
        // within free: free 200-50, quota 100-50, cold_free 0+50.
        let mut s = PairState::new(200 * MB, 0, 0, 100 * MB, 0);
        s.after_move_hot(50 * MB);
        assert_eq!(
            (s.free, s.quota, s.cold_free, s.cold_replaced),
            (150 * MB, 50 * MB, 50 * MB, 0)
        );
    }

    #[test]
    fn prefetch_and_move_cold_capacity_cases() {
        // free 150 > reserve 100: min(50, quota 80) = 50.
        let s = PairState::new(150 * MB, 0, 0, 80 * MB, 100 * MB);
        assert_eq!(s.prefetch_capacity(), 50 * MB);
        // quota smaller: min(50, 20) = 20.
        assert_eq!(
            PairState::new(150 * MB, 0, 0, 20 * MB, 100 * MB).prefetch_capacity(),
            20 * MB
        );
        // free <= reserve: 0.
        assert_eq!(
            PairState::new(100 * MB, 0, 0, 80 * MB, 100 * MB).prefetch_capacity(),
            0
        );

        // move cold: min(quota 80, reserve 100 - free 30 = 70) = 70, cold_free 500: 70 + 0.
        assert_eq!(
            PairState::new(30 * MB, 500 * MB, 0, 80 * MB, 100 * MB).move_cold_capacity(),
            70 * MB
        );
        // cold_free clamps: min(80,70)=70 -> 40.
        assert_eq!(
            PairState::new(30 * MB, 40 * MB, 0, 80 * MB, 100 * MB).move_cold_capacity(),
            40 * MB
        );
        // reserve - free negative clamps to 0, plus cold_replaced.
        let mut s = PairState::new(300 * MB, 500 * MB, 0, 80 * MB, 100 * MB);
        assert_eq!(s.move_cold_capacity(), 0);
        s.cold_replaced = 60 * MB;
        assert_eq!(s.move_cold_capacity(), 60 * MB);
    }

    fn pages(spec: &[(u64, u32, u32)]) -> PidPages {
        PidPages {
            task: "vm".into(),
            pid: 9,
            pages: spec
                .iter()
                .map(|&(addr, count, node)| NodePage {
                    addr,
                    count,
                    node,
                    size: 2 * MB as u64,
                })
                .collect(),
        }
    }

    #[test]
    fn a_full_round_swaps_hot_and_cold_within_the_quota() {
        // loop=1: counts 0..=3, hot_threshold 2. Node 0 hot (DRAM), node 1 cold.
        // Hot node: no free huge page, 3 cold pages (count 0) there; cold node: 2 hot pages
        // (count 3, 2) and a warm one (count 1).
        let pid = pages(&[
            (0x20_0000, 0, 0),
            (0x40_0000, 0, 0),
            (0x60_0000, 1, 0),
            (0x80_0000, 3, 1),
            (0xa0_0000, 2, 1),
            (0xc0_0000, 1, 1),
            (0xe0_0000, 3, 0),
        ]);
        let pairs = [NodePair { hot: 0, cold: 1 }];
        // free 0, cold_free 100 MiB, cold on hot node 6 MiB, quota 8 MiB, reserve 0.
        let mut st = [PairState::new(0, 100 * MB, 6 * MB, 8 * MB, 0)];
        // move hot cap: quota >= free: 0 + 8/2 = 4 MiB, min(0+100) , min(6+0): 4 MiB = 2 pages.
        let plan = plan_round(std::slice::from_ref(&pid), &pairs, &mut st, 2, 3);
        assert_eq!(plan.moves[0][0].hot_list, vec![0x80_0000, 0xa0_0000]);
        // bookkeeping: moved 4 > free 0: replaced 4, quota 8 - 0 - 8 = 0; prefetch 0;
        // move cold cap = clamp(min(0, 0-0),0,cold_free) + 4 = 4 MiB: counts 0 then 1.
        assert_eq!(plan.moves[0][0].cold_list, vec![0x20_0000, 0x40_0000]);
        assert_eq!(plan.moved[0], [4 * MB, 0, 4 * MB]);
        assert_eq!(st[0].quota, 0);
        // Never more than the quota per pair per round.
        assert!(plan.moved[0].iter().sum::<i64>() <= 8 * MB);
    }

    #[test]
    fn prefetch_fills_free_hot_memory_above_the_reserve() {
        let pid = pages(&[
            (0x20_0000, 3, 1),
            (0x40_0000, 1, 1),
            (0x60_0000, 0, 1),
            (0x80_0000, 0, 0),
        ]);
        let pairs = [NodePair { hot: 0, cold: 1 }];
        // free 10 MiB, reserve 4 MiB, quota 100 MiB: hot cap min(quota<free? no) = 10 +
        // 90/2 = 55, min(10+50=60), min(cold 2 + 10 = 12) = 12: one hot page (2 MiB).
        let mut st = [PairState::new(10 * MB, 50 * MB, 2 * MB, 100 * MB, 4 * MB)];
        let plan = plan_round(std::slice::from_ref(&pid), &pairs, &mut st, 2, 3);
        // free 8, quota 98 -> prefetch cap min(8-4, 98) = 4 MiB: counts 1 then 0.
        assert_eq!(
            plan.moves[0][0].hot_list,
            vec![0x20_0000, 0x40_0000, 0x60_0000]
        );
        // free 4, quota 94: move cold cap = clamp(min(94, 4-4=0)) + 0 = 0.
        assert!(plan.moves[0][0].cold_list.is_empty());
        assert_eq!(plan.moved[0], [2 * MB, 4 * MB, 0]);
        assert_eq!(
            (st[0].free, st[0].quota, st[0].cold_free),
            (4 * MB, 94 * MB, 56 * MB)
        );
    }

    #[test]
    fn reserve_pushes_cold_pages_out_and_stats_use_real_sizes() {
        let mut pid = pages(&[(0x20_0000, 0, 0), (0x40_0000, 1, 0), (0x60_0000, 2, 0)]);
        pid.pages.push(NodePage {
            addr: 0x80_0000,
            count: 0,
            node: 0,
            size: 4096,
        });
        let pairs = [NodePair { hot: 0, cold: 1 }];
        // free 0 < reserve 3 MiB: move cold cap = min(quota 100, 3-0) = 3 MiB: count 0 first:
        // 0x200000 (2 MiB) + 0x800000 (4 KiB) fit; 0x400000 (count 1, 2 MiB) does not.
        let mut st = [PairState::new(0, 50 * MB, 0, 100 * MB, 3 * MB)];
        let plan = plan_round(std::slice::from_ref(&pid), &pairs, &mut st, 2, 3);
        assert!(plan.moves[0][0].hot_list.is_empty());
        assert_eq!(plan.moves[0][0].cold_list, vec![0x20_0000, 0x80_0000]);
        let stats = pid_stats(&pid, 2, 2);
        assert_eq!(
            stats[0],
            NodeStat {
                hot_kb: 2048,
                cold_kb: 4096 + 4
            }
        );
        assert_eq!(stats[1], NodeStat::default());
    }

    #[test]
    fn hot_threshold_zero_makes_everything_hot_and_above_max_everything_cold() {
        let pid = pages(&[(0x20_0000, 0, 1), (0x40_0000, 3, 0)]);
        let pairs = [NodePair { hot: 0, cold: 1 }];
        let mut st = [PairState::new(100 * MB, 100 * MB, 0, 100 * MB, 0)];
        let plan = plan_round(std::slice::from_ref(&pid), &pairs, &mut st, 0, 3);
        assert_eq!(plan.moves[0][0].hot_list, vec![0x20_0000]);
        assert!(plan.moves[0][0].cold_list.is_empty());
        // hot_threshold 4 = loop*3+1: no page is hot; reserve big: the hot-node page leaves.
        let mut st = [PairState::new(0, 100 * MB, 2 * MB, 100 * MB, 50 * MB)];
        let plan = plan_round(std::slice::from_ref(&pid), &pairs, &mut st, 4, 3);
        assert!(plan.moves[0][0].hot_list.is_empty());
        assert_eq!(plan.moves[0][0].cold_list, vec![0x40_0000]);
    }
}
