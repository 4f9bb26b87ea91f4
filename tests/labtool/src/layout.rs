//! The workload's layout (its pid, page size and regions by class, from the JSON the
//! workload writes), which every check but `probe` and `recycled-pid` reads, and the
//! workload's anonymous mappings. It only reads; it must not act on the process.

use anyhow::Context;
use etmem_kernel::{Kernel, LinuxKernel, PageRef, ProcessHandle, Vma, VmaFilter};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Region {
    pub class: String,
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub pid: u32,
    pub page_size: u64,
    pub regions: Vec<Region>,
}

impl Layout {
    pub fn read(path: &Path) -> anyhow::Result<Layout> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading layout `{}`", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing layout `{}`", path.display()))?;
        let num = |v: &serde_json::Value, k: &str| -> anyhow::Result<u64> {
            v[k].as_u64()
                .with_context(|| format!("layout `{}`: `{k}` is not a number", path.display()))
        };
        let mut regions = Vec::new();
        for r in v["regions"]
            .as_array()
            .context("layout: no `regions` array")?
        {
            regions.push(Region {
                class: r["class"]
                    .as_str()
                    .context("layout: region without class")?
                    .to_owned(),
                start: num(r, "start")?,
                end: num(r, "end")?,
            });
        }
        Ok(Layout {
            pid: u32::try_from(num(&v, "pid")?).context("layout: pid")?,
            page_size: num(&v, "page_size")?,
            regions,
        })
    }

    pub fn region(&self, class: &str) -> anyhow::Result<&Region> {
        self.regions
            .iter()
            .find(|r| r.class == class)
            .with_context(|| format!("layout has no `{class}` region"))
    }

    pub fn pages(&self, class: &str) -> anyhow::Result<Vec<PageRef>> {
        let r = self.region(class)?;
        Ok((r.start..r.end)
            .step_by(usize::try_from(self.page_size)?)
            .map(|addr| PageRef {
                addr,
                size: self.page_size,
            })
            .collect())
    }
}

/// The workload's anonymous mappings: the ones etmemd scans.
pub fn anon_vmas(k: &LinuxKernel, p: &ProcessHandle) -> anyhow::Result<Vec<Vma>> {
    Ok(k.vmas(
        p,
        &VmaFilter {
            anon_only: true,
            vm_flags: vec![],
        },
    )?)
}
