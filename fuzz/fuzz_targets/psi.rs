//! `/proc/pressure/memory` and a cgroup's `memory.pressure` (`etmem_kernel::parse::parse_psi`).
//!
//! Invariants: no panic; a parsed file printed back as the kernel prints it parses to the
//! same values.
#![no_main]

use etmem_kernel::parse::{PsiLine, parse_psi};
use libfuzzer_sys::fuzz_target;

fn show(kind: &str, l: &PsiLine) -> String {
    format!(
        "{kind} avg10={} avg60={} avg300={} total={}\n",
        l.avg10, l.avg60, l.avg300, l.total_us
    )
}

/// Equal, NaN included (a NaN prints as `NaN` whatever its sign and payload).
fn same(a: &PsiLine, b: &PsiLine) -> bool {
    let f = |x: f64, y: f64| x == y || (x.is_nan() && y.is_nan());
    f(a.avg10, b.avg10) && f(a.avg60, b.avg60) && f(a.avg300, b.avg300) && a.total_us == b.total_us
}

fuzz_target!(|data: &[u8]| {
    let Some(p) = parse_psi(data) else {
        return;
    };
    let mut text = show("some", &p.some);
    if let Some(full) = &p.full {
        text.push_str(&show("full", full));
    }
    let Some(q) = parse_psi(text.as_bytes()) else {
        panic!("printed back, does not parse: {text:?}");
    };
    assert!(same(&p.some, &q.some), "{p:?} {q:?}");
    assert_eq!(p.full.is_some(), q.full.is_some());
    if let (Some(a), Some(b)) = (&p.full, &q.full) {
        assert!(same(a, b), "{p:?} {q:?}");
    }
});
