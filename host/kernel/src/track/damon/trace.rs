//! DAMON's regions read in bulk through the `damon:damon_aggregated` tracepoint.
//!
//! The sysfs way to read a kdamond's regions is `update_schemes_tried_regions`, then three
//! files per region (`start`, `end`, `nr_accesses`) in a directory per region: in the lab
//! (qemu TCG) 0.5-2.5 ms of CPU per region, 60-280 ms a pass at 100-130 regions, most of a
//! pass's cost. The kernel also emits every region of every target at the end of each
//! aggregation as one `damon_aggregated` trace event (`target_id=%lu nr_regions=%u
//! %lu-%lu: %u %u`: target index, the target's region count, start-end, nr_accesses, age).
//! We give our kdamond a trace instance of its own (`instances/etmemd-<pid>` under
//! tracefs), enable that one event there with a filter on our kdamond's thread (other
//! kdamonds on the machine are not ours to read), the `mono` clock (to drop what came
//! before a configuration change) and a small buffer, and read `trace_pipe` without
//! blocking: one read gives every region of every target, parsed here.
//!
//! A pass takes the newest *complete* aggregation of its target (the `nr_regions` events of
//! one aggregation arrive together, in address order) that ended after the last
//! configuration change and that it has not read yet, and waits for one when there is none.
//! Where tracefs, the event or the instance cannot be had, the tracker reads sysfs as
//! before (logged once).
//!
//! The instance is removed when our kdamond is (the [`Feed`] is dropped); one left by an
//! etmemd that died is removed by the next one that opens a feed.

use crate::track::{TrackError, io_err};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Per-CPU buffer of our instance, KiB: about four aggregations of 1000 regions (an
/// event takes about 56 bytes in the ring buffer); the kdamond writes from one CPU at a
/// time.
const BUFFER_KB: u64 = 256;

/// Instance names: `etmemd-<pid of the etmemd that made it>`.
const PREFIX: &str = "etmemd-";

/// One `damon_aggregated` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// trace timestamp, nanoseconds (the `mono` clock: CLOCK_MONOTONIC)
    pub ts_ns: u64,
    /// the target's index in the context
    pub target: u64,
    /// how many regions the target has in this aggregation
    pub nr_regions: u64,
    pub start: u64,
    pub end: u64,
    pub nr_accesses: u64,
}

/// Parses one line of `trace_pipe`, e.g.
/// `kdamond.0-93 [001] ..... 52.071542: damon_aggregated: target_id=0 nr_regions=2
/// 94649011245056-94649011253248: 0 7`. Other lines (other events, lost-event notes)
/// give `None`.
pub(crate) fn parse_line(line: &str) -> Option<Event> {
    let (head, rest) = line.split_once(" damon_aggregated: ")?;
    let ts = head.trim_end().strip_suffix(':')?.rsplit(' ').next()?;
    let (secs, frac) = ts.split_once('.').unwrap_or((ts, "0"));
    let frac_ns: u64 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let ts_ns = secs
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)?;
    let mut it = rest.split_ascii_whitespace();
    let target = it.next()?.strip_prefix("target_id=")?.parse().ok()?;
    let nr_regions = it.next()?.strip_prefix("nr_regions=")?.parse().ok()?;
    let (start, end) = it.next()?.strip_suffix(':')?.split_once('-')?;
    let nr_accesses = it.next()?.parse().ok()?;
    let _age: u64 = it.next()?.parse().ok()?;
    Some(Event {
        ts_ns,
        target,
        nr_regions,
        start: start.parse().ok()?,
        end: end.parse().ok()?,
        nr_accesses,
    })
}

/// `(start, end, nr_accesses)` of regions, ascending.
type Regions = Vec<(u64, u64, u64)>;

/// One target's regions in one aggregation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// the order blocks were completed in (from 1, over every target)
    pub seq: u64,
    /// when its last event was recorded
    pub ts_ns: u64,
    pub regions: Regions,
}

/// Puts events back together into each target's newest complete aggregation.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    /// per target: the block being filled and the count it expects
    open: HashMap<u64, (u64, Regions)>,
    done: HashMap<u64, Block>,
    seq: u64,
    /// events recorded before this (a configuration change) are dropped
    since_ns: u64,
}

impl Assembler {
    /// Takes one event. An aggregation whose events did not all arrive (the ring buffer
    /// overwrote some) is dropped.
    pub(crate) fn push(&mut self, e: Event) {
        if e.ts_ns < self.since_ns || e.nr_regions == 0 || e.end <= e.start {
            return;
        }
        let (want, regions) = self.open.entry(e.target).or_default();
        let continues =
            *want == e.nr_regions && regions.last().is_some_and(|&(_, end, _)| end <= e.start);
        if !continues {
            *want = e.nr_regions;
            regions.clear();
        }
        regions.push((e.start, e.end, e.nr_accesses));
        if regions.len() as u64 == *want {
            self.seq += 1;
            let block = Block {
                seq: self.seq,
                ts_ns: e.ts_ns,
                regions: std::mem::take(regions),
            };
            self.done.insert(e.target, block);
        }
    }

    /// Drops everything recorded before `ts_ns` (the targets were renumbered then).
    pub(crate) fn reset(&mut self, ts_ns: u64) {
        self.open.clear();
        self.done.clear();
        self.since_ns = ts_ns;
    }

    /// The newest complete aggregation of `target` after block `seen`, if any.
    pub(crate) fn newer(&self, target: u64, seen: u64) -> Option<&Block> {
        self.done.get(&target).filter(|b| b.seq > seen)
    }
}

/// CLOCK_MONOTONIC now, nanoseconds: the `mono` trace clock's time base.
pub(crate) fn mono_now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0))
}

/// Where tracefs is under a sysfs root (`<sys>/kernel/tracing`, or under debugfs).
fn tracefs(sys: &Path) -> Option<PathBuf> {
    ["kernel/tracing", "kernel/debug/tracing"]
        .iter()
        .map(|p| sys.join(p))
        .find(|p| p.join("events/damon/damon_aggregated").is_dir())
}

/// Where the tracepoint can serve (the tracefs root), or why not, without writing anything.
pub(crate) fn availability(sys: &Path) -> Result<PathBuf, String> {
    let Some(root) = tracefs(sys) else {
        return Err(format!(
            "no tracefs with the damon:damon_aggregated event under {}/kernel/tracing \
             (tracefs not mounted, or a kernel without CONFIG_DAMON tracepoints)",
            sys.display()
        ));
    };
    if !root.join("instances").is_dir() {
        return Err(format!("{}: no instances directory", root.display()));
    }
    Ok(root)
}

/// A trace instance of ours recording one kdamond's aggregations, and its pipe; the
/// instance is removed when the feed is closed or dropped.
#[derive(Debug)]
pub struct Feed {
    dir: PathBuf,
    /// `None` only while dropped: the kernel refuses to remove an instance whose
    /// trace_pipe is open (EBUSY)
    pipe: Option<std::fs::File>,
    /// a line cut at the end of the last read
    partial: Vec<u8>,
    pub(crate) asm: Assembler,
    /// removed already ([`Feed::close`])
    removed: bool,
}

fn write(path: &Path, value: &str) -> Result<(), TrackError> {
    std::fs::write(path, value).map_err(io_err("write", path))
}

impl Feed {
    /// Makes (or takes over) etmemd's instance (`etmemd-<our pid>`) under the tracefs of
    /// `sys`, after removing those of etmemds that no longer run, and records the kdamond
    /// thread `kthread_pid`'s aggregations from now on.
    pub(crate) fn open(sys: &Path, kthread_pid: u32) -> Result<Feed, TrackError> {
        let root = availability(sys).map_err(|reason| TrackError::Unavailable {
            kind: crate::track::TrackerKind::Damon,
            reason,
        })?;
        remove_stale(&root.join("instances"));
        Self::open_named(sys, &format!("{PREFIX}{}", std::process::id()), kthread_pid)
    }

    /// Makes (or takes over) instance `name` under the tracefs of `sys` and records the
    /// kdamond thread `kthread_pid`'s aggregations from now on (the lab's raw bench reads
    /// them as etmemd does).
    pub fn open_named(sys: &Path, name: &str, kthread_pid: u32) -> Result<Feed, TrackError> {
        let root = availability(sys).map_err(|reason| TrackError::Unavailable {
            kind: crate::track::TrackerKind::Damon,
            reason,
        })?;
        let dir = root.join("instances").join(name);
        if !dir.is_dir() {
            std::fs::create_dir(&dir).map_err(io_err("mkdir", &dir))?;
        }
        let feed = Self::set_up(&dir, kthread_pid);
        if feed.is_err() {
            let _ = std::fs::remove_dir(&dir);
        }
        feed
    }

    fn set_up(dir: &Path, kthread_pid: u32) -> Result<Feed, TrackError> {
        let ev = dir.join("events/damon/damon_aggregated");
        write(&dir.join("tracing_on"), "0")?;
        write(&dir.join("trace_clock"), "mono")?;
        write(&dir.join("buffer_size_kb"), &BUFFER_KB.to_string())?;
        write(&ev.join("filter"), &format!("common_pid == {kthread_pid}"))?;
        write(&ev.join("enable"), "1")?;
        // empty what an earlier etmemd with our pid may have left, then record
        write(&dir.join("trace"), "")?;
        write(&dir.join("tracing_on"), "1")?;
        let p = dir.join("trace_pipe");
        let pipe = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&p)
            .map_err(io_err("open", &p))?;
        Ok(Feed {
            dir: dir.to_path_buf(),
            pipe: Some(pipe),
            partial: Vec::new(),
            asm: Assembler::default(),
            removed: false,
        })
    }

    /// Records kdamond thread `kthread_pid`'s aggregations from now on (a kdamond turned on
    /// again runs in a new thread); what was recorded before is dropped.
    pub(crate) fn follow(&mut self, kthread_pid: u32) -> Result<(), TrackError> {
        let filter = self.dir.join("events/damon/damon_aggregated/filter");
        write(&filter, &format!("common_pid == {kthread_pid}"))?;
        self.asm.reset(mono_now_ns());
        Ok(())
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The newest complete aggregation of target `target` (its index in the context)
    /// completed after block `seen` (0: any), from what [`Feed::drain`] read.
    pub fn newer(&self, target: u64, seen: u64) -> Option<&Block> {
        self.asm.newer(target, seen)
    }

    /// Closes the pipe and removes the instance, saying why it could not.
    pub fn close(mut self) -> Result<(), TrackError> {
        drop(self.pipe.take());
        self.removed = true;
        std::fs::remove_dir(&self.dir).map_err(io_err("rmdir", &self.dir))
    }

    /// Reads every event recorded so far (without waiting); returns the number of events.
    pub fn drain(&mut self) -> Result<usize, TrackError> {
        let mut buf = vec![0u8; 64 << 10];
        let mut n = 0;
        let Some(pipe) = self.pipe.as_mut() else {
            return Ok(0);
        };
        loop {
            let got = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read", &self.dir.join("trace_pipe"))(e)),
            };
            self.partial.extend_from_slice(&buf[..got]);
            let cut = self
                .partial
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            for line in self.partial[..cut].split(|&b| b == b'\n') {
                if let Some(e) = std::str::from_utf8(line).ok().and_then(parse_line) {
                    self.asm.push(e);
                    n += 1;
                }
            }
            self.partial.drain(..cut);
        }
        Ok(n)
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        // closed first: an instance whose trace_pipe is open cannot be removed (EBUSY)
        drop(self.pipe.take());
        // rmdir of an instance turns its events off and frees its buffers with it
        if std::fs::remove_dir(&self.dir).is_err() {
            tracing::warn!(
                "could not remove our trace instance {}; remove it with rmdir",
                self.dir.display()
            );
        }
    }
}

/// Removes the instances of etmemds that no longer run.
fn remove_stale(instances: &Path) {
    let Ok(rd) = std::fs::read_dir(instances) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || pid == i32::try_from(std::process::id()).unwrap_or(-1) {
            continue;
        }
        // kill with signal 0 sends nothing; it only asks whether `pid` exists
        let gone = rustix::process::Pid::from_raw(pid)
            .is_some_and(|p| rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH));
        if gone {
            let dir = e.path();
            match std::fs::remove_dir(&dir) {
                Ok(()) => tracing::info!(
                    "removed the trace instance {} of a dead etmemd",
                    dir.display()
                ),
                Err(err) => {
                    tracing::warn!("trace instance {} of a dead etmemd: {err}", dir.display())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ts: u64, target: u64, n: u64, start: u64, end: u64, acc: u64) -> Event {
        Event {
            ts_ns: ts,
            target,
            nr_regions: n,
            start,
            end,
            nr_accesses: acc,
        }
    }

    #[test]
    fn a_trace_pipe_line_parses() {
        let l = "       kdamond.0-93      [001] .....    52.071542: damon_aggregated: \
                 target_id=1 nr_regions=2 94649011245056-94649011253248: 3 7";
        assert_eq!(
            parse_line(l),
            Some(ev(
                52_071_542_000,
                1,
                2,
                94_649_011_245_056,
                94_649_011_253_248,
                3
            ))
        );
        // another event, a lost-events note, a cut line
        assert_eq!(parse_line("  x-1 [000] ..... 1.0: sched_switch: a=b"), None);
        assert_eq!(parse_line("CPU:1 [LOST 12 EVENTS]"), None);
        assert_eq!(
            parse_line("k-9 [0] ..... 5.5: damon_aggregated: target_id=0 nr_regions=2 10-"),
            None
        );
    }

    #[test]
    fn complete_aggregations_are_kept_per_target_and_torn_ones_dropped() {
        let mut a = Assembler::default();
        // target 0: two regions; target 1: one region, interleaved per target as the
        // kernel emits them (each target's regions together)
        a.push(ev(10, 0, 2, 0x1000, 0x2000, 1));
        assert!(a.newer(0, 0).is_none(), "half an aggregation is not one");
        a.push(ev(10, 0, 2, 0x2000, 0x5000, 0));
        a.push(ev(11, 1, 1, 0x9000, 0xa000, 4));
        let b0 = a.newer(0, 0).expect("target 0").clone();
        assert_eq!(b0.regions, vec![(0x1000, 0x2000, 1), (0x2000, 0x5000, 0)]);
        let b1 = a.newer(1, 0).expect("target 1");
        assert!(b1.seq > b0.seq);
        assert!(a.newer(0, b0.seq).is_none(), "already read");
        // the next aggregation of target 0 lost its first event: the torn one is dropped
        // and the one after it is whole again
        a.push(ev(20, 0, 2, 0x2000, 0x5000, 9));
        a.push(ev(30, 0, 3, 0x1000, 0x1800, 0));
        a.push(ev(30, 0, 3, 0x1800, 0x2000, 2));
        assert!(a.newer(0, b0.seq).is_none());
        a.push(ev(30, 0, 3, 0x2000, 0x5000, 0));
        assert_eq!(a.newer(0, b0.seq).expect("new").regions.len(), 3);
    }

    #[test]
    fn a_reset_drops_what_was_recorded_before_it() {
        let mut a = Assembler::default();
        a.push(ev(10, 0, 1, 0x1000, 0x2000, 1));
        assert!(a.newer(0, 0).is_some());
        a.reset(15);
        assert!(a.newer(0, 0).is_none());
        a.push(ev(12, 0, 1, 0x1000, 0x2000, 1));
        assert!(a.newer(0, 0).is_none(), "recorded before the reset");
        a.push(ev(16, 0, 1, 0x1000, 0x2000, 1));
        assert!(a.newer(0, 0).is_some());
    }

    #[test]
    fn the_mono_clock_moves_forward() {
        let a = mono_now_ns();
        let b = mono_now_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn a_feed_reads_appended_lines_and_keeps_a_cut_one_for_later() {
        let td = tempfile::tempdir().expect("tmp");
        let sys = td.path();
        let dir = crate::fake::fake_trace_instance(sys, &format!("{PREFIX}{}", std::process::id()))
            .expect("instance");
        let mut f = Feed::open(sys, 77).expect("feed");
        let filter = std::fs::read_to_string(dir.join("events/damon/damon_aggregated/filter"))
            .expect("filter");
        assert_eq!(filter, "common_pid == 77");
        assert_eq!(
            std::fs::read_to_string(dir.join("trace_clock")).expect("clock"),
            "mono"
        );
        let line = |s: u64, e: u64| {
            format!(
                "kdamond.0-77 [000] ..... 5.000001: damon_aggregated: target_id=0 \
                 nr_regions=2 {s}-{e}: 1 0\n"
            )
        };
        let mut text = line(4096, 8192);
        text.push_str(&line(8192, 12288)[..30]);
        std::fs::write(dir.join("trace_pipe"), &text).expect("write");
        assert_eq!(f.drain().expect("drain"), 1);
        assert!(f.asm.newer(0, 0).is_none());
        let mut all = text.clone();
        all.push_str(&line(8192, 12288)[30..]);
        std::fs::write(dir.join("trace_pipe"), &all).expect("append");
        assert_eq!(f.drain().expect("drain"), 1);
        assert_eq!(
            f.asm.newer(0, 0).expect("block").regions,
            vec![(4096, 8192, 1), (8192, 12288, 1)]
        );
        // a kdamond turned on again runs in a new thread: the filter follows it, and what
        // was recorded before is dropped
        f.follow(78).expect("follow");
        assert_eq!(
            std::fs::read_to_string(dir.join("events/damon/damon_aggregated/filter"))
                .expect("filter"),
            "common_pid == 78"
        );
        assert!(f.asm.newer(0, 0).is_none());
        // the instance goes with the feed
        crate::fake::empty_fake_trace_instance(&dir).expect("empty");
        drop(f);
        assert!(!dir.exists());
    }
}
