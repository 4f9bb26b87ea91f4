//! `etmem-lab churn`: process churn for the `churn` scenario. Forks short-lived children
//! in three groups, each named by `prctl(PR_SET_NAME)` (what `type=name` tasks match):
//!
//! * `churn`: the tracked name's short-lived processes (the long-lived one of that name is
//!   the scenario's workload, started before with a lower pid);
//! * `flip`: the only processes of a second tracked name, so that task's target changes
//!   every few seconds and often exits during a round;
//! * `decoy`: a name no task tracks. Decoys take the pids the others leave (the scenario
//!   lowers `pid_max`), and every child maps the same range at the same address, filled
//!   once and never touched again, in an address space forked from one parent: an action
//!   planned for a flip that landed on the decoy now holding its pid would swap the
//!   decoy's pages. Each child reports, just before it exits, how much of its range is in
//!   swap (`Swap:` of its VMA in smaps).
//!
//! Summary: per group, children started and how many had pages in swap; how often a decoy
//! got the pid of a flip that had exited less than `reuse-window` seconds before; fork
//! failures. Passes when no decoy had a page in swap, every child reported and no fork
//! failed; the scenario judges the rest.

use anyhow::{Context, bail};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::Outcome;

/// Where every child maps its range (free in the parent, so free in each forked child).
const RANGE_ADDR: usize = 0x7e00_0000_0000;

/// A group of children: name, starts per minute, life in milliseconds (min..=max).
#[derive(Debug, Clone)]
pub struct Group {
    /// `churn`, `flip` or `decoy`
    pub kind: &'static str,
    /// the comm the children take
    pub name: String,
    /// starts per minute (0: none)
    pub per_min: u32,
    /// life of each child, milliseconds, drawn uniformly in this range
    pub life_ms: (u64, u64),
}

/// What `etmem-lab churn` does.
#[derive(Debug)]
pub struct ChurnArgs {
    /// seconds of starts
    pub secs: u64,
    /// the groups
    pub groups: Vec<Group>,
    /// KiB each child maps and fills
    pub mem_kb: u64,
    /// the file children append their reports to
    pub report: PathBuf,
    /// a decoy on a flip's pid counts when the flip exited at most this long before
    pub reuse_window: Duration,
}

/// Parses `MIN-MAX` (milliseconds).
pub fn parse_life(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("`{s}': expected MIN-MAX milliseconds"))?;
    let a: u64 = a.parse().map_err(|e| format!("`{s}': {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("`{s}': {e}"))?;
    if a > b {
        return Err(format!("`{s}': MIN above MAX"));
    }
    Ok((a, b))
}

/// xorshift64: the children's lives (no need for more).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn in_range(&mut self, (a, b): (u64, u64)) -> u64 {
        a + self.next() % (b - a + 1)
    }
}

/// The child's side: name, map and fill the range, live, report, exit. Never returns.
fn child(name: &str, kind: &str, mem: usize, life: Duration, report: &std::fs::File) -> ! {
    let code = match child_body(name, kind, mem, life, report) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("churn child {kind}: {e:#}");
            1
        }
    };
    // SAFETY: _exit ends this forked child at once, without running the parent's atexit
    // handlers or flushing its copies of the parent's buffers.
    unsafe { libc::_exit(code) }
}

fn child_body(
    name: &str,
    kind: &str,
    mem: usize,
    life: Duration,
    mut report: &std::fs::File,
) -> anyhow::Result<()> {
    let cname = std::ffi::CString::new(name).context("name holds a NUL")?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string (at most 16 bytes are used) from
    // `cname`, alive for the call.
    if unsafe { libc::prctl(libc::PR_SET_NAME, cname.as_ptr(), 0, 0, 0) } != 0 {
        bail!("prctl(PR_SET_NAME): {}", std::io::Error::last_os_error());
    }
    // SAFETY: a new private anonymous mapping at a fixed address that must be free
    // (MAP_FIXED_NOREPLACE fails instead of replacing anything); no existing memory is
    // touched.
    let p = unsafe {
        libc::mmap(
            RANGE_ADDR as *mut libc::c_void,
            mem,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED || p as usize != RANGE_ADDR {
        bail!(
            "mmap at {RANGE_ADDR:#x}: {}",
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: `p` is our new mapping of `mem` writable bytes; nothing else refers to it.
    let range = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), mem) };
    for (i, page) in range.chunks_mut(4096).enumerate() {
        page.fill(u8::try_from(i % 251).unwrap_or(1) | 1);
    }
    std::thread::sleep(life);
    let smaps = std::fs::read_to_string("/proc/self/smaps").context("reading smaps")?;
    let head = format!("{RANGE_ADDR:x}-");
    let swap_kb = smaps
        .lines()
        .skip_while(|l| !l.starts_with(&head))
        .skip(1)
        .take_while(|l| !l.starts_with("VmFlags:"))
        .find_map(|l| l.strip_prefix("Swap:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no Swap line for the range in smaps")?;
    // one write of a short line on an O_APPEND file: the children's lines never mix
    let line = format!("{kind} {} {swap_kb}\n", std::process::id());
    report
        .write_all(line.as_bytes())
        .context("writing the report")?;
    Ok(())
}

/// A child of ours: its group.
struct Live {
    kind: &'static str,
}

/// Per group: started, reported, with pages in swap, KiB in swap.
#[derive(Default)]
struct Tally {
    started: u64,
    reported: u64,
    swapped: u64,
    swap_kb: u64,
}

pub fn churn(a: &ChurnArgs) -> Outcome {
    let mem = usize::try_from(a.mem_kb)?
        .checked_mul(1024)
        .context("--mem-kb too large")?;
    let report = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&a.report)
        .with_context(|| format!("creating {}", a.report.display()))?;
    drop(report);
    let report = std::fs::OpenOptions::new()
        .append(true)
        .open(&a.report)
        .with_context(|| format!("opening {}", a.report.display()))?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(a.secs);
    let mut next: Vec<Option<Instant>> = a
        .groups
        .iter()
        .map(|g| (g.per_min > 0).then_some(t0))
        .collect();
    let mut live: HashMap<i32, Live> = HashMap::new();
    // pid -> when a flip holding it exited
    let mut flip_exit: HashMap<i32, Instant> = HashMap::new();
    let mut tally: HashMap<&'static str, Tally> = HashMap::new();
    let (mut fork_failed, mut decoy_on_flip_pid, mut reused) = (0u64, 0u64, 0u64);
    let mut seen_pids: std::collections::HashSet<i32> = Default::default();
    let max_life = a.groups.iter().map(|g| g.life_ms.1).max().unwrap_or(0);
    let wait_until = end + Duration::from_millis(max_life) + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        if now < end {
            for (g, at) in a.groups.iter().zip(next.iter_mut()) {
                while let Some(t) = *at {
                    if t > now {
                        break;
                    }
                    *at = Some(t + Duration::from_secs(60) / g.per_min.max(1));
                    let life = Duration::from_millis(rng.in_range(g.life_ms));
                    // SAFETY: this process has one thread (no lock can be held by another
                    // thread across the fork); the child only maps, fills, sleeps, reads
                    // its smaps, writes a line and _exits.
                    let pid = unsafe { libc::fork() };
                    if pid < 0 {
                        fork_failed += 1;
                        continue;
                    }
                    if pid == 0 {
                        child(&g.name, g.kind, mem, life, &report);
                    }
                    tally.entry(g.kind).or_default().started += 1;
                    if !seen_pids.insert(pid) {
                        reused += 1;
                    }
                    if g.kind == "decoy"
                        && flip_exit
                            .get(&pid)
                            .is_some_and(|t| now.duration_since(*t) <= a.reuse_window)
                    {
                        decoy_on_flip_pid += 1;
                    }
                    live.insert(pid, Live { kind: g.kind });
                }
            }
        } else if live.is_empty() {
            break;
        } else if now > wait_until {
            bail!(
                "{} children still alive {max_life} ms after the end",
                live.len()
            );
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status of a child of ours into `status`.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if let Some(l) = live.remove(&pid)
                && l.kind == "flip"
            {
                flip_exit.insert(pid, Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = std::fs::read_to_string(&a.report)
        .with_context(|| format!("reading {}", a.report.display()))?;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(kind), Some(kb)) = (f.first(), f.get(2).and_then(|v| v.parse::<u64>().ok()))
        else {
            bail!("bad report line `{l}'");
        };
        let Some(g) = a.groups.iter().find(|g| g.kind == *kind) else {
            bail!("report line of no group: `{l}'");
        };
        let t = tally.entry(g.kind).or_default();
        t.reported += 1;
        t.swap_kb += kb;
        t.swapped += u64::from(kb > 0);
    }
    let secs = t0.elapsed().as_secs_f64();
    let mut line = format!("churn_seed={seed} churn_secs={}", a.secs);
    let mut all_reported = true;
    for g in &a.groups {
        let t = tally.remove(g.kind).unwrap_or_default();
        all_reported &= t.reported == t.started;
        line += &format!(
            " {k}_started={} {k}_reported={} {k}_swapped={} {k}_swap_kb={}",
            t.started,
            t.reported,
            t.swapped,
            t.swap_kb,
            k = g.kind
        );
        if g.kind == "decoy" && t.swapped > 0 {
            line += " decoy_violation=1";
        }
    }
    line += &format!(
        " pids_reused={reused} decoy_on_flip_pid={decoy_on_flip_pid} fork_failed={fork_failed} spawner_secs={secs:.1}"
    );
    let decoys_clean = !line.contains("decoy_violation");
    Ok((decoys_clean && all_reported && fork_failed == 0, line))
}

#[cfg(test)]
mod tests {
    use super::parse_life;

    #[test]
    fn lives_parse_as_min_dash_max() {
        assert_eq!(parse_life("200-2000"), Ok((200, 2000)));
        assert_eq!(parse_life("5-5"), Ok((5, 5)));
        assert!(parse_life("9-1").is_err());
        assert!(parse_life("100").is_err());
        assert!(parse_life("a-2").is_err());
    }
}
