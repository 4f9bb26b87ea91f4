//! `/proc/PID/smaps` (`etmem_kernel::parse::parse_smaps`) and the filter that reads its
//! `VmFlags`.
//!
//! Invariants: no panic; every VMA has `start <= end`; VMAs come in the order of their
//! header lines; the filter on flags never keeps a VMA that lacks one of them.
#![no_main]

use etmem_kernel::parse::{VmaFilter, parse_smaps};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(vmas) = parse_smaps(data) else {
        return;
    };
    let headers = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(vmas.len() <= headers);
    let f = VmaFilter {
        anon_only: true,
        vm_flags: vec!["ht".to_owned()],
        ..Default::default()
    };
    for v in &vmas {
        assert!(v.start <= v.end, "{v:?}");
        if f.keep(v) {
            assert!(v.is_anonymous());
            assert!(
                v.vm_flags
                    .as_ref()
                    .is_some_and(|fl| fl.iter().any(|x| x == "ht"))
            );
        }
        let _ = (v.is_locked(), v.kernel_page_kb, v.anon_huge_kb);
    }
});
