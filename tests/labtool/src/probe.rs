//! `etmem-lab probe`: print the kernel probe and check which trackers, actions and aids are
//! available. It only reads; it must not change the kernel's state.

use crate::Outcome;
use etmem_kernel::{LinuxKernel, TrackerKind};

pub fn probe(expect_available: &str, expect_missing: &str) -> Outcome {
    let k = LinuxKernel::default();
    let rep = etmem_kernel::probe(&k);
    eprint!("{rep}");
    let status = |name: &str| -> Option<bool> {
        match TrackerKind::from_name(name) {
            Some(kind) => rep.tracker(kind).map(Result::is_ok),
            None => rep
                .action(&name.replace('_', " "))
                .or(rep.action(name))
                .or(rep.aid(name))
                .map(Result::is_ok),
        }
    };
    let mut ok = true;
    let mut parts = Vec::new();
    for (list, want) in [(expect_available, true), (expect_missing, false)] {
        for name in list.split(',').filter(|s| !s.is_empty()) {
            let got = status(name);
            let word = match got {
                Some(true) => "available",
                Some(false) => "missing",
                None => "unknown",
            };
            if got != Some(want) {
                ok = false;
            }
            parts.push(format!("{name}={word}"));
        }
    }
    parts.push(format!(
        "auto={}",
        rep.auto_tracker().map_or("none", |k| k.name())
    ));
    Ok((ok, parts.join(" ")))
}
