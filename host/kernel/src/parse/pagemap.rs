//! `/proc/PID/pagemap` entries: one native-endian u64 per virtual page
//! (Documentation/admin-guide/mm/pagemap.rst). This module never opens files.

/// One pagemap entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// Bit 63: the page is present in RAM.
    pub fn present(self) -> bool {
        self.0 >> 63 & 1 == 1
    }
    /// Bit 62: the page is swapped out.
    pub fn swapped(self) -> bool {
        self.0 >> 62 & 1 == 1
    }
    /// Bit 61: file-backed or shared anonymous page.
    pub fn file_or_shared(self) -> bool {
        self.0 >> 61 & 1 == 1
    }
    /// Bit 57: the PTE is userfaultfd write-protected.
    pub fn uffd_wp(self) -> bool {
        self.0 >> 57 & 1 == 1
    }
    /// Bit 56: the page is mapped exclusively (one mapping).
    pub fn exclusive(self) -> bool {
        self.0 >> 56 & 1 == 1
    }
    /// Bit 55: the PTE is soft-dirty (written since the last `clear_refs` 4).
    pub fn soft_dirty(self) -> bool {
        self.0 >> 55 & 1 == 1
    }
    /// Bits 0-54: the page frame number, when present (0 without CAP_SYS_ADMIN).
    pub fn pfn(self) -> Option<u64> {
        self.present().then_some(self.0 & ((1 << 55) - 1))
    }
    /// Bits 0-4: the swap type, when swapped.
    pub fn swap_type(self) -> Option<u8> {
        self.swapped().then_some((self.0 & 0x1f) as u8)
    }
    /// Bits 5-54: the swap offset, when swapped.
    pub fn swap_offset(self) -> Option<u64> {
        self.swapped().then_some((self.0 >> 5) & ((1 << 50) - 1))
    }
}

/// Decodes a pagemap read. Trailing bytes that do not form a whole entry are ignored
/// (the kernel only returns whole entries).
pub fn decode_pagemap(bytes: &[u8]) -> impl Iterator<Item = PagemapEntry> + '_ {
    bytes.chunks_exact(8).map(|c| {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        PagemapEntry(u64::from_ne_bytes(a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let present = PagemapEntry(1 << 63 | 1 << 56 | 1 << 55 | 0x12345);
        assert!(present.present());
        assert!(!present.swapped());
        assert!(present.exclusive());
        assert!(present.soft_dirty());
        assert_eq!(present.pfn(), Some(0x12345));
        assert_eq!(present.swap_type(), None);

        let swapped = PagemapEntry(1 << 62 | (777 << 5) | 3);
        assert!(!swapped.present());
        assert!(swapped.swapped());
        assert!(!swapped.soft_dirty());
        assert_eq!(swapped.pfn(), None);
        assert_eq!(swapped.swap_type(), Some(3));
        assert_eq!(swapped.swap_offset(), Some(777));

        let none = PagemapEntry(0);
        assert!(!none.present() && !none.swapped() && !none.file_or_shared());
        assert!(PagemapEntry(1 << 61).file_or_shared());
        assert!(PagemapEntry(1 << 57).uffd_wp());
    }

    #[test]
    fn decode_native_endian() {
        let mut b = Vec::new();
        b.extend_from_slice(&(1u64 << 63 | 5).to_ne_bytes());
        b.extend_from_slice(&(1u64 << 62).to_ne_bytes());
        b.extend_from_slice(&[1, 2, 3]);
        let v: Vec<_> = decode_pagemap(&b).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].pfn(), Some(5));
        assert!(v[1].swapped());
    }
}
