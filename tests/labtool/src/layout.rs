//! The workload's layout (its pid, page size and regions by class, from the JSON the
//! workload writes), which every check but `probe` and `recycled-pid` reads, and the
//! workload's anonymous mappings. It only reads; it must not act on the process.
//!
//! Any class name is accepted (`hot`, `warm`, `cooled`, `cold`). In normal mode a class has
//! one region; a `--mixed` workload's layout has many per class (its runs of pages).

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
        Layout::parse(&text, path)
    }

    /// A layout file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Layout> {
        let v: serde_json::Value = serde_json::from_str(text)
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

    /// The first region of a class (in normal mode, the only one).
    pub fn region(&self, class: &str) -> anyhow::Result<&Region> {
        self.regions
            .iter()
            .find(|r| r.class == class)
            .with_context(|| format!("layout has no `{class}` region"))
    }

    /// The classes present, each once: hot, cooled, warm, cold first (in that order), then
    /// any other in file order.
    pub fn classes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = ["hot", "cooled", "warm", "cold"]
            .into_iter()
            .filter(|c| self.regions.iter().any(|r| r.class == *c))
            .collect();
        for r in &self.regions {
            if !out.contains(&r.class.as_str()) {
                out.push(&r.class);
            }
        }
        out
    }

    /// The pages of the first region of a class.
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
            ..Default::default()
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = r#"{"pid":42,"page_size":4096,"hugetlb":false,"node":null,"access":"write","period_ms":100,"warm_every":10,"mixed":true,"move_after":9.0,"regions":[{"class":"cold","start":4096,"end":12288,"len":8192,"pages":2},{"class":"hot","start":12288,"end":16384,"len":4096,"pages":1},{"class":"cold","start":16384,"end":20480,"len":4096,"pages":1},{"class":"hot","start":20480,"end":24576,"len":4096,"pages":1},{"class":"cooled","start":24576,"end":32768,"len":8192,"pages":2}]}"#;

    #[test]
    fn mixed_layouts_have_many_regions_per_class() {
        let l = Layout::parse(MIXED, Path::new("mixed.json")).expect("parse");
        assert_eq!(l.pid, 42);
        assert_eq!(l.regions.len(), 5);
        assert_eq!(l.classes(), vec!["hot", "cooled", "cold"]);
        assert_eq!(l.region("hot").expect("hot").start, 12288);
        let of = |c: &str| l.regions.iter().filter(|r| r.class == c).count();
        assert_eq!((of("hot"), of("cold"), of("cooled")), (2, 2, 1));
        assert_eq!(l.pages("cooled").expect("cooled").len(), 2);
        assert!(l.region("warm").is_err());
    }

    #[test]
    fn unknown_classes_come_last_in_file_order() {
        let text = MIXED.replace("\"cooled\"", "\"tepid\"");
        let l = Layout::parse(&text, Path::new("x.json")).expect("parse");
        assert_eq!(l.classes(), vec!["hot", "cold", "tepid"]);
    }
}
