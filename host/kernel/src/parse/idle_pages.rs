//! The byte stream of openEuler's `/proc/PID/idle_pages` (etmem_scan.ko), spec §6.1.
//!
//! * `0xA0` followed by 8 bytes of big-endian address sets the current address; an `0xA0`
//!   without 8 following bytes stops the parse (truncated read).
//! * any other byte `b` is `type = b >> 4`, `nr = b & 0xF`: `nr` consecutive pages of that
//!   type at the current address, which then advances by `nr * size(type)`.
//! * `PMD_IDLE_PTES` is expanded to `nr * (PMD/PTE)` idle PTE pages, using the real
//!   ratio of the page sizes (B21), not a fixed 512.
//! * holes only advance the address; entries not aligned to their size class are ignored
//!   (the address still advances, so later entries stay in step with the kernel).
//! * a data byte before any address is an error.
//!
//! This module only decodes bytes; it never opens or reads the file.

use thiserror::Error;

/// Why an idle_pages stream could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdleDecodeError {
    /// A page record came before any `0xA0` address record (C: `parse address fail`).
    #[error(
        "idle_pages: parse address fail: byte {byte:#04x} at offset {offset} before any address"
    )]
    NoAddress {
        /// the byte
        byte: u8,
        /// its offset in the stream
        offset: usize,
    },
    /// A byte with an unknown type (11..=15) or a PIP command other than `0xA0`.
    #[error("idle_pages: unknown record {byte:#04x} at offset {offset}")]
    UnknownRecord {
        /// the byte
        byte: u8,
        /// its offset in the stream
        offset: usize,
    },
    /// The address advanced past the end of the address space.
    #[error("idle_pages: address overflow at offset {offset}")]
    Overflow {
        /// offset of the record that overflowed
        offset: usize,
    },
}

/// The page types of spec §6.1 (kernel `enum ProcIdlePageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdlePageType {
    /// 0: accessed PTE page
    PteAccess,
    /// 1: accessed PMD (huge) page
    PmdAccess,
    /// 2: present PUD (1G) page
    PudPresent,
    /// 3: dirty PTE page
    PteDirty,
    /// 4: dirty PMD page
    PmdDirty,
    /// 5: idle PTE page
    PteIdle,
    /// 6: idle PMD page
    PmdIdle,
    /// 7: a whole PMD of idle PTEs (expanded to PTE pages)
    PmdIdlePtes,
    /// 8: PTE-sized hole
    PteHole,
    /// 9: PMD-sized hole
    PmdHole,
}

impl IdlePageType {
    /// The type of a code 0..=9.
    pub fn from_code(code: u8) -> Option<Self> {
        use IdlePageType::*;
        Some(match code {
            0 => PteAccess,
            1 => PmdAccess,
            2 => PudPresent,
            3 => PteDirty,
            4 => PmdDirty,
            5 => PteIdle,
            6 => PmdIdle,
            7 => PmdIdlePtes,
            8 => PteHole,
            9 => PmdHole,
            _ => return None,
        })
    }

    /// etmemd's weight: 1 accessed/present, 3 dirty, 0 idle and holes.
    pub fn weight(self) -> u8 {
        use IdlePageType::*;
        match self {
            PteAccess | PmdAccess | PudPresent => 1,
            PteDirty | PmdDirty => 3,
            PteIdle | PmdIdle | PmdIdlePtes | PteHole | PmdHole => 0,
        }
    }

    /// True for the two hole types.
    pub fn is_hole(self) -> bool {
        matches!(self, IdlePageType::PteHole | IdlePageType::PmdHole)
    }
}

/// The three page sizes of spec §6.1 for a base page shift `s`: PTE `2^s`,
/// PMD `2^((s-3)*2+3)`, PUD `2^((s-3)*3+3)`, all u64 (B21).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSizes {
    /// base page
    pub pte: u64,
    /// PMD-mapped page
    pub pmd: u64,
    /// PUD-mapped page
    pub pud: u64,
}

impl PageSizes {
    /// Sizes for a page shift (12 for 4 KiB, 14 for 16 KiB, 16 for 64 KiB).
    /// `None` for shifts the formula cannot express in 64 bits.
    pub fn from_shift(s: u32) -> Option<Self> {
        if !(4..=20).contains(&s) {
            return None;
        }
        Some(PageSizes {
            pte: 1u64 << s,
            pmd: 1u64 << ((s - 3) * 2 + 3),
            pud: 1u64.checked_shl((s - 3) * 3 + 3)?,
        })
    }

    /// Sizes for 4 KiB base pages: 4 KiB, 2 MiB, 1 GiB.
    pub const X86_64: PageSizes = PageSizes {
        pte: 4096,
        pmd: 2 << 20,
        pud: 1 << 30,
    };

    /// The size of one page of `t` (for PMD_IDLE_PTES: the PMD it covers).
    pub fn size_of(&self, t: IdlePageType) -> u64 {
        use IdlePageType::*;
        match t {
            PteAccess | PteDirty | PteIdle | PteHole => self.pte,
            PmdAccess | PmdDirty | PmdIdle | PmdIdlePtes | PmdHole => self.pmd,
            PudPresent => self.pud,
        }
    }
}

/// One decoded run of records: `nr_pages` pages of `page_size` bytes starting at `addr`, all of
/// type `kind` (after PMD_IDLE_PTES expansion, `kind` is `PteIdle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleRun {
    /// first page
    pub addr: u64,
    /// bytes per page
    pub page_size: u64,
    /// number of pages
    pub nr_pages: u64,
    /// type of every page of the run
    pub kind: IdlePageType,
}

/// What a decode saw besides the runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeSummary {
    /// the address after the last record (where a follow-up read should start);
    /// `None` if the stream held no address
    pub next_addr: Option<u64>,
    /// records ignored because their address was not aligned to their size class
    pub misaligned: u64,
    /// true when an `0xA0` without its 8 address bytes ended the stream
    pub truncated: bool,
    /// pages of non-idle, non-hole types (C's `use_rss`)
    pub rss_pages: u64,
}

/// Decodes one idle_pages read, calling `sink` for every non-hole run in stream order:
/// records that continue one another (same kind and page size, each starting where the last
/// ended) come as one run, so a long run costs the sink one call, not one per record of 15
/// pages.
pub fn decode_idle_pages(
    bytes: &[u8],
    sizes: PageSizes,
    mut sink: impl FnMut(IdleRun),
) -> Result<DecodeSummary, IdleDecodeError> {
    let mut sum = DecodeSummary::default();
    // the run being built and the address after it: records of one kind that follow each
    // other are one run
    let mut pending: Option<(IdleRun, u64)> = None;
    let r = decode_records(bytes, sizes, &mut sum, |run, end| match pending.as_mut() {
        Some((p, p_end)) if p.kind == run.kind && *p_end == run.addr => {
            p.nr_pages += run.nr_pages;
            *p_end = end;
        }
        _ => {
            if let Some((done, _)) = pending.replace((run, end)) {
                sink(done);
            }
        }
    });
    // what came before an error is recorded too, as it was before runs were joined
    if let Some((done, _)) = pending {
        sink(done);
    }
    r.map(|()| sum)
}

/// The records of `bytes`, one call of `each` per non-hole aligned record with the address
/// after it; fills `sum`.
#[inline]
fn decode_records(
    bytes: &[u8],
    sizes: PageSizes,
    sum: &mut DecodeSummary,
    mut each: impl FnMut(IdleRun, u64),
) -> Result<(), IdleDecodeError> {
    let mut cur: Option<u64> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let offset = i;
        i += 1;
        if b == 0xA0 {
            let Some(addr) = bytes.get(i..i + 8) else {
                sum.truncated = true;
                break;
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(addr);
            cur = Some(u64::from_be_bytes(a));
            i += 8;
            continue;
        }
        let Some(kind) = IdlePageType::from_code(b >> 4) else {
            return Err(IdleDecodeError::UnknownRecord { byte: b, offset });
        };
        let nr = u64::from(b & 0x0F);
        let Some(addr) = cur else {
            return Err(IdleDecodeError::NoAddress { byte: b, offset });
        };
        let size = sizes.size_of(kind);
        let next = nr
            .checked_mul(size)
            .and_then(|len| addr.checked_add(len))
            .ok_or(IdleDecodeError::Overflow { offset })?;
        cur = Some(next);
        if nr == 0 || kind.is_hole() {
            continue;
        }
        if addr & (size - 1) != 0 {
            sum.misaligned += 1;
            continue;
        }
        sum.rss_pages += nr * u64::from(kind.weight() > 0);
        let run = if kind == IdlePageType::PmdIdlePtes {
            IdleRun {
                addr,
                page_size: sizes.pte,
                nr_pages: nr * (sizes.pmd / sizes.pte),
                kind: IdlePageType::PteIdle,
            }
        } else {
            IdleRun {
                addr,
                page_size: size,
                nr_pages: nr,
                kind,
            }
        };
        each(run, next);
    }
    sum.next_addr = cur;
    Ok(())
}

/// The byte count etmemd passes to `read` for `[start, end)` (spec §6.1):
/// `((end - start) >> 3) / pagesize`, at least 20.
pub fn read_count(start: u64, end: u64, page_size: u64) -> usize {
    let n = (end.saturating_sub(start) >> 3) / page_size.max(1);
    usize::try_from(n).unwrap_or(usize::MAX).max(20)
}

/// Test helper and documentation of the format: encodes records into a stream.
/// `Addr(a)` emits `0xA0` + big-endian `a`; `Rec(t, nr)` emits `t << 4 | nr`.
#[derive(Debug, Clone, Copy)]
pub enum StreamItem {
    /// set the current address
    Addr(u64),
    /// nr (1..=15) pages of type code t (0..=9)
    Rec(u8, u8),
}

/// Encodes [`StreamItem`]s as the kernel would.
pub fn encode_stream(items: &[StreamItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for it in items {
        match *it {
            StreamItem::Addr(a) => {
                out.push(0xA0);
                out.extend_from_slice(&a.to_be_bytes());
            }
            StreamItem::Rec(t, nr) => out.push(t << 4 | (nr & 0xF)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::StreamItem::{Addr, Rec};
    use super::*;

    fn decode(bytes: &[u8], sizes: PageSizes) -> (Vec<IdleRun>, DecodeSummary) {
        let mut runs = Vec::new();
        let s = decode_idle_pages(bytes, sizes, |r| runs.push(r)).expect("decode");
        (runs, s)
    }

    const K: u64 = 4096;
    const M2: u64 = 2 << 20;

    #[test]
    fn page_sizes_formula() {
        assert_eq!(PageSizes::from_shift(12), Some(PageSizes::X86_64));
        let p16 = PageSizes::from_shift(16).expect("64k");
        assert_eq!(p16.pte, 64 << 10);
        assert_eq!(p16.pmd, 512 << 20);
        assert_eq!(p16.pud, 4 << 40); // overflowed an int shift in C (B21)
        let p14 = PageSizes::from_shift(14).expect("16k");
        assert_eq!(p14.pmd, 32 << 20);
        assert_eq!(PageSizes::from_shift(40), None);
    }

    #[test]
    fn records_that_continue_each_other_come_as_one_run() {
        let base = 0x7f00_0000_0000u64;
        let run = |addr, nr_pages, kind| IdleRun {
            addr,
            page_size: K,
            nr_pages,
            kind,
        };
        let s = encode_stream(&[
            Addr(base),
            Rec(0, 15),
            Rec(0, 15),
            Rec(0, 1),           // 31 accessed: one run
            Rec(5, 2),           // another kind: a new run
            Addr(base + 33 * K), // an address where the last ended: the run goes on
            Rec(5, 1),
            Rec(8, 1), // a hole ends it
            Rec(5, 1),
            Addr(base + 100 * K), // an address elsewhere ends it
            Rec(5, 1),
        ]);
        let (runs, sum) = decode(&s, PageSizes::X86_64);
        assert_eq!(
            runs,
            vec![
                run(base, 31, IdlePageType::PteAccess),
                run(base + 31 * K, 3, IdlePageType::PteIdle),
                run(base + 35 * K, 1, IdlePageType::PteIdle),
                run(base + 100 * K, 1, IdlePageType::PteIdle),
            ]
        );
        assert_eq!(sum.rss_pages, 31);
        // whole PMDs of idle PTEs join idle PTEs around them
        let s = encode_stream(&[Addr(base + M2 - K), Rec(5, 1), Rec(7, 1), Rec(5, 1)]);
        let (runs, _) = decode(&s, PageSizes::X86_64);
        assert_eq!(runs, vec![run(base + M2 - K, 514, IdlePageType::PteIdle)]);
        // what came before an error is still given
        let mut got = Vec::new();
        let err = decode_idle_pages(
            &[0xA0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0x01, 0x02, 0xF1],
            PageSizes::X86_64,
            |r| got.push(r),
        );
        assert!(matches!(
            err,
            Err(IdleDecodeError::UnknownRecord { byte: 0xF1, .. })
        ));
        assert_eq!(got, vec![run(0x1000, 3, IdlePageType::PteAccess)]);
    }

    #[test]
    fn every_type() {
        let base = 0x7f00_0000_0000u64;
        let s = encode_stream(&[
            Addr(base),
            Rec(0, 2),       // 2 PTE accessed
            Rec(3, 1),       // 1 PTE dirty
            Rec(5, 3),       // 3 PTE idle
            Rec(8, 2),       // 2 PTE holes
            Addr(base + M2), // jump to a PMD boundary
            Rec(1, 1),       // PMD accessed
            Rec(4, 1),       // PMD dirty
            Rec(6, 1),       // PMD idle
            Rec(9, 1),       // PMD hole
            Rec(7, 1),       // PMD of idle PTEs
            Addr(1 << 30),
            Rec(2, 1), // PUD present
        ]);
        let (runs, sum) = decode(&s, PageSizes::X86_64);
        let expect = vec![
            IdleRun {
                addr: base,
                page_size: K,
                nr_pages: 2,
                kind: IdlePageType::PteAccess,
            },
            IdleRun {
                addr: base + 2 * K,
                page_size: K,
                nr_pages: 1,
                kind: IdlePageType::PteDirty,
            },
            IdleRun {
                addr: base + 3 * K,
                page_size: K,
                nr_pages: 3,
                kind: IdlePageType::PteIdle,
            },
            IdleRun {
                addr: base + M2,
                page_size: M2,
                nr_pages: 1,
                kind: IdlePageType::PmdAccess,
            },
            IdleRun {
                addr: base + 2 * M2,
                page_size: M2,
                nr_pages: 1,
                kind: IdlePageType::PmdDirty,
            },
            IdleRun {
                addr: base + 3 * M2,
                page_size: M2,
                nr_pages: 1,
                kind: IdlePageType::PmdIdle,
            },
            // hole at 4*M2, then PMD_IDLE_PTES at 5*M2 expanded to 512 PTEs
            IdleRun {
                addr: base + 5 * M2,
                page_size: K,
                nr_pages: 512,
                kind: IdlePageType::PteIdle,
            },
            IdleRun {
                addr: 1 << 30,
                page_size: 1 << 30,
                nr_pages: 1,
                kind: IdlePageType::PudPresent,
            },
        ];
        assert_eq!(runs, expect);
        assert_eq!(sum.next_addr, Some(2 << 30));
        assert_eq!(sum.misaligned, 0);
        assert!(!sum.truncated);
        // rss: 2 + 1 + 1 + 1 + 1 (accessed, dirty, pmd acc, pmd dirty, pud)
        assert_eq!(sum.rss_pages, 6);
    }

    #[test]
    fn weights() {
        use IdlePageType::*;
        for (t, w) in [
            (PteAccess, 1),
            (PmdAccess, 1),
            (PudPresent, 1),
            (PteDirty, 3),
            (PmdDirty, 3),
            (PteIdle, 0),
            (PmdIdle, 0),
            (PmdIdlePtes, 0),
            (PteHole, 0),
            (PmdHole, 0),
        ] {
            assert_eq!(t.weight(), w, "{t:?}");
        }
    }

    #[test]
    fn pmd_idle_ptes_uses_the_real_ratio() {
        let p16 = PageSizes::from_shift(16).expect("64k");
        let s = encode_stream(&[Addr(0), Rec(7, 2)]);
        let (runs, sum) = decode(&s, p16);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].page_size, 64 << 10);
        assert_eq!(runs[0].nr_pages, 2 * 8192); // 512 MiB / 64 KiB per PMD
        assert_eq!(sum.next_addr, Some(2 * (512 << 20)));
    }

    #[test]
    fn holes_advance_only() {
        let s = encode_stream(&[Addr(0x10000), Rec(8, 15), Rec(8, 1), Rec(0, 1)]);
        let (runs, _) = decode(&s, PageSizes::X86_64);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].addr, 0x10000 + 16 * K);
    }

    #[test]
    fn misaligned_entries_are_ignored_but_advance() {
        // a PMD record at a 4K-aligned, not 2M-aligned address
        let s = encode_stream(&[Addr(0x1000), Rec(1, 1), Rec(0, 1)]);
        let (runs, sum) = decode(&s, PageSizes::X86_64);
        assert_eq!(sum.misaligned, 1);
        assert_eq!(
            runs,
            vec![IdleRun {
                addr: 0x1000 + M2,
                page_size: K,
                nr_pages: 1,
                kind: IdlePageType::PteAccess
            }]
        );
    }

    #[test]
    fn data_before_address_is_an_error() {
        assert_eq!(
            decode_idle_pages(&[0x01], PageSizes::X86_64, |_| {}),
            Err(IdleDecodeError::NoAddress {
                byte: 0x01,
                offset: 0
            })
        );
        let e = decode_idle_pages(&[0x51, 0xA0], PageSizes::X86_64, |_| {}).expect_err("must fail");
        assert!(e.to_string().contains("parse address fail"), "{e}");
    }

    #[test]
    fn unknown_records_are_errors() {
        let mut s = encode_stream(&[Addr(0)]);
        s.push(0xB1);
        assert_eq!(
            decode_idle_pages(&s, PageSizes::X86_64, |_| {}),
            Err(IdleDecodeError::UnknownRecord {
                byte: 0xB1,
                offset: 9
            })
        );
        let mut s = encode_stream(&[Addr(0)]);
        s.push(0xA3);
        assert!(decode_idle_pages(&s, PageSizes::X86_64, |_| {}).is_err());
    }

    #[test]
    fn truncated_address_stops_the_parse() {
        let mut s = encode_stream(&[Addr(0x2000), Rec(0, 1)]);
        s.extend_from_slice(&[0xA0, 0, 0, 0]);
        let (runs, sum) = decode(&s, PageSizes::X86_64);
        assert_eq!(runs.len(), 1);
        assert!(sum.truncated);
        assert_eq!(sum.next_addr, Some(0x3000));
        let (runs, sum) = decode(&[0xA0], PageSizes::X86_64);
        assert!(runs.is_empty() && sum.truncated && sum.next_addr.is_none());
    }

    #[test]
    fn overflow_is_an_error() {
        let s = encode_stream(&[Addr(u64::MAX - 0xFFF), Rec(0, 2)]);
        assert!(matches!(
            decode_idle_pages(&s, PageSizes::X86_64, |_| {}),
            Err(IdleDecodeError::Overflow { .. })
        ));
    }

    #[test]
    fn zero_count_records_are_no_ops() {
        let s = encode_stream(&[Addr(0x1000), Rec(0, 0), Rec(5, 1)]);
        let (runs, sum) = decode(&s, PageSizes::X86_64);
        assert_eq!(
            runs,
            vec![IdleRun {
                addr: 0x1000,
                page_size: K,
                nr_pages: 1,
                kind: IdlePageType::PteIdle
            }]
        );
        assert_eq!(sum.next_addr, Some(0x2000));
    }

    #[test]
    fn read_count_rule() {
        assert_eq!(read_count(0, 4096 * 8 * 100, 4096), 100);
        assert_eq!(read_count(0, 4096, 4096), 20);
        assert_eq!(read_count(0x1000, 0x1000, 4096), 20);
    }
}
