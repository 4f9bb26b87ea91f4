//! `/proc/PID/maps` (`etmem_kernel::parse::parse_maps`).
//!
//! Invariants: no panic; every VMA has `start <= end`; smaps' parser reads a maps text the
//! same way; a VMA printed back as a maps line parses to the same VMA.
#![no_main]

use etmem_kernel::parse::{Vma, parse_maps, parse_smaps};
use libfuzzer_sys::fuzz_target;

/// A VMA as the kernel prints it in maps (`show_map_vma`).
fn show(v: &Vma) -> String {
    let p = &v.perms;
    format!(
        "{:x}-{:x} {}{}{}{} {:08x} {:02x}:{:02x} {} {}",
        v.start,
        v.end,
        if p.read { 'r' } else { '-' },
        if p.write { 'w' } else { '-' },
        if p.exec { 'x' } else { '-' },
        if p.shared { 's' } else { 'p' },
        v.offset,
        v.dev_major,
        v.dev_minor,
        v.inode,
        v.path
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(vmas) = parse_maps(data) else {
        return;
    };
    for v in &vmas {
        assert!(v.start <= v.end, "{v:?}");
        assert!(v.vm_flags.is_none() && v.rss_kb.is_none());
        let again = parse_maps(show(v).as_bytes());
        assert_eq!(
            again.as_deref(),
            Ok(std::slice::from_ref(v)),
            "{:?}",
            show(v)
        );
        let _ = (v.is_anonymous(), v.is_special(), v.len());
    }
    assert_eq!(parse_smaps(data).as_ref(), Ok(&vmas));
});
