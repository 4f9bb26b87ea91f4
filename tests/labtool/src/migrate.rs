//! `etmem-lab migrate`: migrate one class of the workload to a node within a quota, then
//! check with move_pages queries where every page is. It must not move other classes.

use crate::layout::Layout;
use crate::{Outcome, reasons};
use etmem_kernel::{Kernel, LinuxKernel};
use std::path::Path;
use std::time::Instant;

pub fn migrate(path: &Path, class: &str, to: u32, quota: u64) -> Outcome {
    let layout = Layout::read(path)?;
    let k = LinuxKernel::default();
    let p = k.open_process(layout.pid)?;
    let pages = layout.pages(class)?;
    let quota_pages = usize::try_from(quota / layout.page_size)?.min(pages.len());
    let before: Vec<u64> = pages.iter().map(|p| p.addr).collect();
    let nodes_before = k.page_nodes(&p, &before)?;
    let already = nodes_before.iter().filter(|n| **n == Ok(to)).count();
    let t = Instant::now();
    let rep = k.migrate(&p, &pages, to, quota)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!("migrate: {rep} in {ms:.1} ms ({already} pages were on node {to} before)");
    let nodes = k.page_nodes(&p, &before)?;
    let in_quota = nodes[..quota_pages]
        .iter()
        .filter(|n| **n == Ok(to))
        .count() as u64;
    let beyond = nodes[quota_pages..]
        .iter()
        .filter(|n| **n == Ok(to))
        .count() as u64;
    let mut other_on_to = 0u64;
    for r in layout.regions.iter().filter(|r| r.class != class) {
        let addrs: Vec<u64> = (r.start..r.end)
            .step_by(usize::try_from(layout.page_size)?)
            .collect();
        other_on_to += k
            .page_nodes(&p, &addrs)?
            .iter()
            .filter(|n| **n == Ok(to))
            .count() as u64;
    }
    // move_pages reports per page; a few pages may be busy (reported, not assumed moved)
    let ok = in_quota == rep.done_pages
        && beyond == 0
        && other_on_to == 0
        && already == 0
        && rep.done_pages as f64 >= 0.95 * quota_pages as f64;
    Ok((
        ok,
        format!(
            "to={to} requested={} quota_pages={quota_pages} done={} on_node={in_quota} beyond_quota_on_node={beyond} other_on_node={other_on_to} ms={ms:.1}{}",
            rep.requested_pages,
            rep.done_pages,
            reasons(&rep)
        ),
    ))
}
