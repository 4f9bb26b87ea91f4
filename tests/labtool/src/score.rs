//! `etmem-lab score`: how many pages of each class of the workload are in swap right now
//! (pagemap's swapped bit), and the workload's major faults so far. A measurement, not a
//! check: it passes whenever it could read. It only reads the workload's pagemap and stat;
//! it must not act on the process.
//!
//! Back-to-back regions (a `--mixed` workload's runs) are read as one pagemap range, so a
//! 512 MiB mapping is one read however many runs it has.

use crate::Outcome;
use crate::layout::{Layout, Region};
use anyhow::{Context, bail};
use etmem_kernel::parse::PagemapEntry;
use etmem_kernel::{Kernel, LinuxKernel};
use std::path::Path;

/// Base pages, present and swapped pages of one class.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    pages: u64,
    present: u64,
    swapped: u64,
}

/// The regions as spans of back-to-back regions: `(start, end, region indices)`, in address
/// order.
fn spans(regions: &[Region]) -> Vec<(u64, u64, Vec<usize>)> {
    let mut order: Vec<usize> = (0..regions.len()).collect();
    order.sort_by_key(|&i| regions[i].start);
    let mut out: Vec<(u64, u64, Vec<usize>)> = Vec::new();
    for i in order {
        let r = &regions[i];
        match out.last_mut() {
            Some((_, end, idx)) if *end == r.start => {
                *end = r.end;
                idx.push(i);
            }
            _ => out.push((r.start, r.end, vec![i])),
        }
    }
    out
}

/// Counts each class's pages from pagemap entries. `read(start, n)` returns the entries of
/// `n` base pages from `start`; `page` is the base page size.
fn tally(
    layout: &Layout,
    page: u64,
    mut read: impl FnMut(u64, usize) -> anyhow::Result<Vec<PagemapEntry>>,
) -> anyhow::Result<Vec<(&str, Tally)>> {
    let classes = layout.classes();
    let mut out: Vec<(&str, Tally)> = classes.iter().map(|c| (*c, Tally::default())).collect();
    for (start, end, idx) in spans(&layout.regions) {
        let n = usize::try_from((end - start) / page)?;
        let e = read(start, n)?;
        if e.len() != n {
            bail!(
                "pagemap of pid {}: {} entries from {start:#x}, expected {n}",
                layout.pid,
                e.len()
            );
        }
        for i in idx {
            let r = &layout.regions[i];
            let from = usize::try_from((r.start - start) / page)?;
            let to = usize::try_from((r.end - start) / page)?;
            let t = match out.iter_mut().find(|(c, _)| *c == r.class) {
                Some((_, t)) => t,
                None => bail!("class `{}` missing from the class list", r.class),
            };
            for e in &e[from..to] {
                t.pages += 1;
                t.present += u64::from(e.present());
                t.swapped += u64::from(e.swapped());
            }
        }
    }
    Ok(out)
}

/// Field 12 of `/proc/PID/stat` (major faults), counting fields after the `)` that ends the
/// command name (which may hold spaces and parentheses).
fn parse_majflt(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // Fields 3 (state) onwards: field 12 is the tenth.
    rest.split_whitespace().nth(9)?.parse().ok()
}

/// The summary line: `<class>_pages=N <class>_present=N <class>_swapped=N
/// <class>_swapped_pct=P` for each class, then `majflt=N`.
fn line(tallies: &[(&str, Tally)], majflt: u64) -> String {
    let mut s = String::new();
    for (c, t) in tallies {
        let pct = if t.pages == 0 {
            0.0
        } else {
            t.swapped as f64 * 100.0 / t.pages as f64
        };
        s.push_str(&format!(
            "{c}_pages={} {c}_present={} {c}_swapped={} {c}_swapped_pct={pct:.3} ",
            t.pages, t.present, t.swapped
        ));
    }
    s.push_str(&format!("majflt={majflt}"));
    s
}

pub fn score(path: &Path) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let page = k.page_sizes().pte;
    let tallies = tally(&layout, page, |start, n| Ok(k.pagemap(&p, start, n)?))?;
    let stat_path = p.path("stat");
    let stat = std::fs::read_to_string(&stat_path)
        .with_context(|| format!("reading `{}`", stat_path.display()))?;
    let majflt = parse_majflt(&stat)
        .with_context(|| format!("`{}`: no major fault count", stat_path.display()))?;
    for (c, t) in &tallies {
        eprintln!(
            "score: pid {} {c}: {} pages, {} present, {} swapped",
            layout.pid, t.pages, t.present, t.swapped
        );
    }
    Ok((true, line(&tallies, majflt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESENT: PagemapEntry = PagemapEntry(1 << 63);
    const SWAPPED: PagemapEntry = PagemapEntry(1 << 62);
    const NONE: PagemapEntry = PagemapEntry(0);

    fn region(class: &str, start: u64, pages: u64) -> Region {
        Region {
            class: class.into(),
            start,
            end: start + pages * 4096,
        }
    }

    #[test]
    fn back_to_back_regions_are_one_span() {
        let rs = vec![
            region("hot", 0x10000, 2),
            region("cold", 0x12000, 3),
            region("warm", 0x20000, 1),
            region("hot", 0x15000, 1),
        ];
        assert_eq!(
            spans(&rs),
            vec![
                (0x10000, 0x16000, vec![0, 1, 3]),
                (0x20000, 0x21000, vec![2])
            ]
        );
    }

    #[test]
    fn counts_each_class_over_all_its_runs() {
        let layout = Layout {
            pid: 7,
            page_size: 4096,
            regions: vec![
                region("hot", 0x10000, 2),
                region("cold", 0x12000, 3),
                region("cooled", 0x15000, 1),
                region("hot", 0x16000, 1),
                region("cold", 0x17000, 2),
            ],
        };
        // Page by page from 0x10000: hot P P, cold S S P, cooled S, hot P, cold S N.
        let map = [
            PRESENT, PRESENT, SWAPPED, SWAPPED, PRESENT, SWAPPED, PRESENT, SWAPPED, NONE,
        ];
        let mut reads = Vec::new();
        let t = tally(&layout, 4096, |start, n| {
            reads.push((start, n));
            let from = ((start - 0x10000) / 4096) as usize;
            Ok(map[from..from + n].to_vec())
        })
        .expect("tally");
        assert_eq!(reads, vec![(0x10000, 9)], "one read for the one span");
        let get = |c: &str| t.iter().find(|(n, _)| *n == c).map(|(_, t)| *t);
        assert_eq!(
            get("hot"),
            Some(Tally {
                pages: 3,
                present: 3,
                swapped: 0
            })
        );
        assert_eq!(
            get("cold"),
            Some(Tally {
                pages: 5,
                present: 1,
                swapped: 3
            })
        );
        assert_eq!(
            get("cooled"),
            Some(Tally {
                pages: 1,
                present: 0,
                swapped: 1
            })
        );
        assert_eq!(
            line(&t, 4),
            "hot_pages=3 hot_present=3 hot_swapped=0 hot_swapped_pct=0.000 \
             cooled_pages=1 cooled_present=0 cooled_swapped=1 cooled_swapped_pct=100.000 \
             cold_pages=5 cold_present=1 cold_swapped=3 cold_swapped_pct=60.000 majflt=4"
        );
    }

    #[test]
    fn a_short_pagemap_read_is_an_error() {
        let layout = Layout {
            pid: 7,
            page_size: 4096,
            regions: vec![region("hot", 0x10000, 4)],
        };
        let e = tally(&layout, 4096, |_, _| Ok(vec![PRESENT])).expect_err("short");
        assert_eq!(
            e.to_string(),
            "pagemap of pid 7: 1 entries from 0x10000, expected 4"
        );
    }

    #[test]
    fn majflt_is_field_12_even_with_odd_names() {
        let stat = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 120 0 7 0 3 1 0 0 20 0";
        assert_eq!(parse_majflt(stat), Some(7));
        assert_eq!(parse_majflt("1234 (x) S 1"), None);
    }
}
