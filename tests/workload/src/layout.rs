//! The layout file: which address ranges of the workload are hot, warm and cold.
//!
//! Written once, after every page has been touched, so a reader that sees the file knows
//! all pages are present. Pure: builds and renders JSON; writing the file is the caller's.
//!
//! Example:
//! ```json
//! {"pid":42,"page_size":4096,"hugetlb":false,"node":1,"access":"rw","period_ms":100,
//!  "warm_every":10,"regions":[{"class":"hot","start":140000000000,"end":140000065536,
//!  "len":65536,"pages":16}]}
//! ```

use serde::{Deserialize, Serialize};

/// How often a region is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Every period.
    Hot,
    /// Every `warm_every` periods.
    Warm,
    /// Only once, at start.
    Cold,
}

impl Class {
    /// The lowercase name used in the layout and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Hot => "hot",
            Class::Warm => "warm",
            Class::Cold => "cold",
        }
    }
}

/// What a touch does to a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read one word of the page.
    Read,
    /// Write one word of the page.
    Write,
    /// Read then write one word of the page.
    Rw,
}

/// One region of the workload: `[start, end)` in the workload's address space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionLayout {
    /// Hot, warm or cold.
    pub class: Class,
    /// First byte address.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// `end - start`, in bytes (the requested size rounded up to the page size).
    pub len: u64,
    /// `len / page_size`.
    pub pages: u64,
}

/// The whole layout file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The workload's process id.
    pub pid: u32,
    /// Page size of every region, in bytes (4096, or 2 MiB with `--hugetlb`).
    pub page_size: u64,
    /// Whether the regions are hugetlbfs pages.
    pub hugetlb: bool,
    /// The NUMA node the regions are bound to, if any.
    pub node: Option<u32>,
    /// What a touch does.
    pub access: Access,
    /// Milliseconds between two touches of the hot region (0: back to back).
    pub period_ms: u64,
    /// The warm region is touched every this many periods.
    pub warm_every: u64,
    /// Regions of non-zero size, in address order (hot, warm, cold).
    pub regions: Vec<RegionLayout>,
}

impl Layout {
    /// The region of a class, if it was mapped.
    pub fn region(&self, class: Class) -> Option<&RegionLayout> {
        self.regions.iter().find(|r| r.class == class)
    }

    /// The layout as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain structs of integers, bools and enums cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a layout file's text.
    pub fn from_json(text: &str) -> Result<Layout, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Layout {
        Layout {
            pid: 42,
            page_size: 4096,
            hugetlb: false,
            node: Some(1),
            access: Access::Rw,
            period_ms: 100,
            warm_every: 10,
            regions: vec![
                RegionLayout {
                    class: Class::Hot,
                    start: 0x7000_0000_0000,
                    end: 0x7000_0001_0000,
                    len: 0x1_0000,
                    pages: 16,
                },
                RegionLayout {
                    class: Class::Cold,
                    start: 0x7000_0002_0000,
                    end: 0x7000_0002_2000,
                    len: 0x2000,
                    pages: 2,
                },
            ],
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).expect("json");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["page_size"], 4096);
        assert_eq!(v["hugetlb"], false);
        assert_eq!(v["node"], 1);
        assert_eq!(v["access"], "rw");
        assert_eq!(v["warm_every"], 10);
        assert_eq!(v["regions"][0]["class"], "hot");
        assert_eq!(v["regions"][0]["start"], 0x7000_0000_0000u64);
        assert_eq!(v["regions"][0]["end"], 0x7000_0001_0000u64);
        assert_eq!(v["regions"][0]["pages"], 16);
        assert_eq!(v["regions"][1]["class"], "cold");
        assert_eq!(v["regions"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn no_node_is_null() {
        let mut l = sample();
        l.node = None;
        let v: serde_json::Value = serde_json::from_str(&l.to_json()).expect("json");
        assert!(v["node"].is_null());
    }

    #[test]
    fn round_trips() {
        let l = sample();
        assert_eq!(Layout::from_json(&l.to_json()).expect("parse"), l);
        assert_eq!(l.region(Class::Cold).map(|r| r.pages), Some(2));
        assert_eq!(l.region(Class::Warm), None);
    }

    #[test]
    fn rejects_unknown_class() {
        let text = sample().to_json().replace("\"hot\"", "\"lukewarm\"");
        assert!(Layout::from_json(&text).is_err());
    }
}
