//! `etmem-lab pageout`: swap out one class of the workload, then check with pagemap that
//! exactly those pages went (advising once more the few the kernel skipped). It must not
//! touch pages of any other class.

use crate::layout::{Layout, Region};
use crate::{Outcome, reasons};
use anyhow::bail;
use etmem_kernel::{FailReason, Kernel, LinuxKernel, PageRef, ProcessHandle, SwapMethod};
use std::path::Path;
use std::time::{Duration, Instant};

fn pagemap_counts(k: &LinuxKernel, p: &ProcessHandle, r: &Region) -> anyhow::Result<(u64, u64)> {
    let n = usize::try_from((r.end - r.start) / 4096)?;
    let e = k.pagemap(p, r.start, n)?;
    Ok((
        e.iter().filter(|e| e.swapped()).count() as u64,
        e.iter().filter(|e| e.present()).count() as u64,
    ))
}

pub fn pageout(
    path: &Path,
    class: &str,
    method: &str,
    quota: Option<u64>,
    outside: bool,
) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let method = match method {
        "pageout" => SwapMethod::Pageout,
        "swap_pages" => SwapMethod::SwapPages,
        "auto" => SwapMethod::Auto,
        m => bail!("unknown method `{m}`"),
    };
    let mut pages = layout.pages(class)?;
    let quota = quota.unwrap_or(u64::MAX);
    let expect = pages
        .iter()
        .scan(0u64, |used, pg| {
            *used += pg.size;
            Some(*used <= quota)
        })
        .filter(|x| *x)
        .count() as u64;
    if outside {
        pages.push(PageRef {
            addr: 0x1000,
            size: 4096,
        });
    }
    let t = Instant::now();
    let rep = k.swap_out(&p, &pages, quota, method)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!("pageout: {rep} in {ms:.1} ms");
    let mut swapped_class = 0;
    let mut swapped_other = 0;
    for r in &layout.regions {
        let (sw, pr) = pagemap_counts(&k, &p, r)?;
        eprintln!("pageout: region {}: swapped {sw} present {pr}", r.class);
        if r.class == class {
            swapped_class = sw;
        } else {
            swapped_other += sw;
        }
    }
    // MADV_PAGEOUT "done" means advised: the kernel skips pages it cannot isolate (e.g.
    // still in another CPU's LRU-add batch). List them, and advise them once more, as the
    // next round of an engine would.
    let r = layout.region(class)?;
    let n = usize::try_from((r.end - r.start) / 4096)?;
    let first_pass = swapped_class;
    let missed: Vec<u64> = k
        .pagemap(&p, r.start, n)?
        .iter()
        .enumerate()
        .filter(|(i, e)| (*i as u64) < expect && !e.swapped())
        .map(|(i, _)| r.start + i as u64 * 4096)
        .collect();
    let mut retry_done = 0;
    if !missed.is_empty() {
        let idx: Vec<String> = missed
            .iter()
            .map(|a| ((a - r.start) / 4096).to_string())
            .collect();
        eprintln!(
            "pageout: {} advised pages not swapped, page indices {}",
            missed.len(),
            idx.join(",")
        );
        let again: Vec<PageRef> = missed
            .iter()
            .map(|a| PageRef {
                addr: *a,
                size: 4096,
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        retry_done = k.swap_out(&p, &again, u64::MAX, method)?.done_pages;
        swapped_class = pagemap_counts(&k, &p, r)?.0;
        swapped_other = 0;
        for o in layout.regions.iter().filter(|o| o.class != class) {
            swapped_other += pagemap_counts(&k, &p, o)?.0;
        }
    }
    let refused_ok = !outside || rep.failed.get(&FailReason::OutsideVma) == Some(&1);
    // A page still in a CPU's LRU-add batch (at most FOLIO_BATCH_SIZE = 31 per CPU) cannot
    // be isolated until that CPU drains its batch; anything beyond that is a failure.
    let held = expect - swapped_class.min(expect);
    let ncpu = k.nr_cpus()? as u64;
    let ok = rep.done_pages == expect
        && held <= 31 * ncpu
        && swapped_class <= expect
        && swapped_other == 0
        && refused_ok;
    Ok((
        ok,
        format!(
            "method={} class={class} requested={} done={} expected={expect} swapped_first={first_pass} retried={} retry_done={retry_done} swapped={swapped_class} not_reclaimed={held} swapped_other={swapped_other} ms={ms:.1}{}",
            rep.method,
            rep.requested_pages,
            rep.done_pages,
            missed.len(),
            reasons(&rep)
        ),
    ))
}
