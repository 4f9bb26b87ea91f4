//! The layout file: which address ranges of the workload are hot, warm, cooled and cold.
//!
//! Written once, after every page has been touched, so a reader that sees the file knows
//! all pages are present. Pure: builds and renders JSON; writing the file is the caller's.
//!
//! Example (normal mode: one region per class, each its own mapping):
//! ```json
//! {"pid":42,"page_size":4096,"hugetlb":false,"node":1,"access":"rw","period_ms":100,
//!  "warm_every":10,"mixed":false,"move_after":null,"regions":[{"class":"hot",
//!  "start":140000000000,"end":140000065536,"len":65536,"pages":16}]}
//! ```
//!
//! In mixed mode (`"mixed":true`) the regions are the maximal runs of one class inside the
//! one mapping, in address order, so a class may have many regions; `cooled` regions
//! (present only with `"move_after"` a number of seconds) are hot until then, cold after.
//! The field order of a region object is fixed: the lab's shell scripts match it with sed.

use serde::{Deserialize, Serialize};

/// How often a region is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Every period.
    Hot,
    /// Every `warm_every` periods.
    Warm,
    /// Every period until `--move-after`, never after (mixed mode only).
    Cooled,
    /// Only once, at start.
    Cold,
}

impl Class {
    /// The lowercase name used in the layout and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Class::Hot => "hot",
            Class::Warm => "warm",
            Class::Cooled => "cooled",
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
    /// Hot, warm, cooled or cold.
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Whether this is the mixed mode (one mapping, regions are runs inside it). Absent in
    /// files written before the mixed mode: false.
    #[serde(default)]
    pub mixed: bool,
    /// Seconds after ready at which the cooled pages stop being touched (mixed mode with
    /// `--move-after`), else null.
    #[serde(default)]
    pub move_after: Option<f64>,
    /// Regions of non-zero size, in address order: hot, warm, cold in normal mode; the
    /// maximal runs of hot, cooled and cold pages in mixed mode.
    pub regions: Vec<RegionLayout>,
}

impl Layout {
    /// The first region of a class, if any (in normal mode, the only one).
    pub fn region(&self, class: Class) -> Option<&RegionLayout> {
        self.regions.iter().find(|r| r.class == class)
    }

    /// Every region of a class, in address order.
    pub fn regions_of(&self, class: Class) -> impl Iterator<Item = &RegionLayout> {
        self.regions.iter().filter(move |r| r.class == class)
    }

    /// Pages of a class, over all its regions.
    pub fn class_pages(&self, class: Class) -> u64 {
        self.regions_of(class).map(|r| r.pages).sum()
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
            mixed: false,
            move_after: None,
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
        assert_eq!(v["mixed"], false);
        assert!(v["move_after"].is_null());
    }

    #[test]
    fn region_objects_keep_the_field_order_the_lab_scripts_match() {
        // tests/lab/lib.sh lab_region: {"class":..,"start":..,"end":..,"len":..,"pages":..}
        let text = sample().to_json();
        assert!(
            text.contains(
                r#"{"class":"hot","start":123145302310912,"end":123145302376448,"len":65536,"pages":16}"#
            ),
            "{text}"
        );
        assert!(text.contains(r#""warm_every":10,"mixed":false,"move_after":null,"regions":["#));
    }

    fn mixed_sample() -> Layout {
        let run = |class, start: u64, pages: u64| RegionLayout {
            class,
            start,
            end: start + pages * 4096,
            len: pages * 4096,
            pages,
        };
        let base = 0x7000_0000_0000;
        Layout {
            mixed: true,
            move_after: Some(8.5),
            regions: vec![
                run(Class::Hot, base, 2),
                run(Class::Cold, base + 0x2000, 6),
                run(Class::Hot, base + 0x8000, 1),
                run(Class::Cooled, base + 0x9000, 1),
                run(Class::Cold, base + 0xa000, 6),
                run(Class::Cooled, base + 0x10000, 2),
            ],
            ..sample()
        }
    }

    #[test]
    fn mixed_round_trips_with_many_regions_per_class() {
        let l = mixed_sample();
        let text = l.to_json();
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["mixed"], true);
        assert_eq!(v["move_after"], 8.5);
        assert_eq!(v["regions"][3]["class"], "cooled");
        let back = Layout::from_json(&text).expect("parse");
        assert_eq!(back, l);
        assert_eq!(back.region(Class::Hot).map(|r| r.pages), Some(2));
        assert_eq!(back.regions_of(Class::Cold).count(), 2);
        assert_eq!(back.class_pages(Class::Hot), 3);
        assert_eq!(back.class_pages(Class::Cooled), 3);
        assert_eq!(back.class_pages(Class::Cold), 12);
        assert_eq!(back.class_pages(Class::Warm), 0);
    }

    #[test]
    fn files_without_the_mixed_fields_still_parse() {
        let text = sample()
            .to_json()
            .replace(r#""mixed":false,"move_after":null,"#, "");
        assert!(!text.contains("mixed"));
        let l = Layout::from_json(&text).expect("parse");
        assert!(!l.mixed);
        assert_eq!(l.move_after, None);
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
