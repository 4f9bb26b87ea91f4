use super::*;

/// The page-by-page form of [`AccessMap::record_run`] (its first implementation: one
/// range lookup per page): the reference the run form must match.
impl AccessMap {
    fn record_run_per_page(&mut self, addr: u64, page_size: u64, nr: u64, w: u8) {
        let sizes = self.sizes;
        let mut a = addr;
        for _ in 0..nr {
            if page_size != sizes.pte {
                self.record_huge_per_page(a, page_size, w);
                a = a.saturating_add(page_size);
                continue;
            }
            let Some(i) = self.run_index(a) else {
                // skip to the next run if the page starts in a gap
                let next = self.runs.partition_point(|r| r.start <= a);
                match self.runs.get(next) {
                    Some(r) if r.start < addr.saturating_add(nr.saturating_mul(page_size)) => {
                        a = a.saturating_add(page_size);
                        continue;
                    }
                    _ => return,
                }
            };
            let r = &mut self.runs[i];
            if let Some(f) = r.fixed {
                // hugetlb: one count per huge page, whatever size the tracker reports
                // (pagemap gives every base page of it); never split
                let huge = a & !(f - 1);
                if a == huge
                    && let Some(slot) = usize::try_from((huge - r.start) / sizes.pte)
                        .ok()
                        .and_then(|s| r.counts.get_mut(s))
                {
                    bump(slot, w);
                }
                a = a.saturating_add(page_size);
                continue;
            }
            let (pmd_base, pud_base) = (r.start / sizes.pmd, r.start / sizes.pud);
            if page_size == sizes.pte {
                // a base page inside a chunk marked huge: the huge page was split
                set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, false);
                set_bit(&mut r.pud, a / sizes.pud - pud_base, false);
            } else if page_size == sizes.pmd {
                set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, true);
                r.huge = true;
            } else if page_size == sizes.pud {
                set_bit(&mut r.pud, a / sizes.pud - pud_base, true);
                r.huge = true;
            }
            let first = a.max(r.start);
            if let Some(slot) = usize::try_from((first - r.start) / sizes.pte)
                .ok()
                .and_then(|s| r.counts.get_mut(s))
            {
                bump(slot, w);
            }
            a = a.saturating_add(page_size);
        }
    }
}

impl AccessMap {
    /// One huge page of the reference: in a hugetlb range holding its start, as that range
    /// counts; in any other range it overlaps, one huge slot when it lies wholly inside,
    /// else its base pages inside.
    fn record_huge_per_page(&mut self, a: u64, page_size: u64, w: u8) {
        let sizes = self.sizes;
        let b = a.saturating_add(page_size);
        for r in &mut self.runs {
            if r.end <= a || r.start >= b {
                continue;
            }
            if let Some(f) = r.fixed {
                if r.start <= a
                    && a < r.end
                    && a.is_multiple_of(f)
                    && let Some(slot) = usize::try_from((a - r.start) / sizes.pte)
                        .ok()
                        .and_then(|s| r.counts.get_mut(s))
                {
                    bump(slot, w);
                }
                continue;
            }
            let (pmd_base, pud_base) = (r.start / sizes.pmd, r.start / sizes.pud);
            if a >= r.start && b <= r.end {
                if page_size == sizes.pmd {
                    set_bit(&mut r.pmd, a / sizes.pmd - pmd_base, true);
                    r.huge = true;
                } else if page_size == sizes.pud {
                    set_bit(&mut r.pud, a / sizes.pud - pud_base, true);
                    r.huge = true;
                }
                if let Some(slot) = usize::try_from((a - r.start) / sizes.pte)
                    .ok()
                    .and_then(|s| r.counts.get_mut(s))
                {
                    bump(slot, w);
                }
                continue;
            }
            let mut p = a.max(r.start) / sizes.pte * sizes.pte;
            while p < b.min(r.end) {
                set_bit(&mut r.pmd, p / sizes.pmd - pmd_base, false);
                set_bit(&mut r.pud, p / sizes.pud - pud_base, false);
                if let Some(slot) = usize::try_from((p - r.start) / sizes.pte)
                    .ok()
                    .and_then(|s| r.counts.get_mut(s))
                {
                    bump(slot, w);
                }
                p += sizes.pte;
            }
        }
    }
}

const K: u64 = 4096;
const M2: u64 = 2 << 20;

fn vma(start: u64, end: u64) -> Vma {
    Vma {
        start,
        end,
        ..Vma::default()
    }
}

#[test]
fn base_pages_counts_and_absent() {
    let mut m = AccessMap::new(&[vma(0x10000, 0x20000)], PageSizes::X86_64);
    assert_eq!(m.tracked_base_pages(), 16);
    m.record_run(0x10000, K, 2, 1);
    m.record_run(0x11000, K, 1, 3);
    m.record_run(0x13000, K, 1, 0);
    m.finish_pass();
    assert_eq!(m.get(0x10000), Some(1));
    assert_eq!(m.get(0x11fff), Some(4));
    assert_eq!(m.get(0x12000), None);
    assert_eq!(m.get(0x13000), Some(0));
    assert_eq!(m.get(0x30000), None);
    let v: Vec<_> = m.iter().collect();
    assert_eq!(
        v,
        vec![
            PageAccess {
                addr: 0x10000,
                page_size: K,
                count: 1
            },
            PageAccess {
                addr: 0x11000,
                page_size: K,
                count: 4
            },
            PageAccess {
                addr: 0x13000,
                page_size: K,
                count: 0
            },
        ]
    );
    assert_eq!(m.passes(), 1);
}

#[test]
fn bump_all_is_bump_on_every_slot() {
    use crate::access::{bump, bump_all};
    for w in [0u8, 1, 3, 200, 254, 255] {
        let mut all: Vec<u8> = (0..=255).collect();
        let mut each = all.clone();
        bump_all(&mut all, w);
        for slot in &mut each {
            bump(slot, w);
        }
        assert_eq!(all, each, "weight {w}");
    }
}

#[test]
fn saturates_below_absent() {
    let mut m = AccessMap::new(&[vma(0, K)], PageSizes::X86_64);
    for _ in 0..200 {
        m.record_run(0, K, 1, 3);
    }
    assert_eq!(m.get(0), Some(MAX_COUNT));
}

/// Found by the `idle_pages` fuzz target: a huge page record reaching past its VMA's end
/// (maps that changed since they were read) made the map report a 2 MiB page overlapping
/// the next VMA's pages.
#[test]
fn a_huge_page_across_a_vma_edge_counts_as_its_base_pages() {
    const M: u64 = 1 << 20;
    let mut map = AccessMap::new(&[vma(0, M), vma(M, 4 * M)], PageSizes::X86_64);
    // a PMD page at 0 (over both VMAs), one wholly inside the second at 2 MiB
    map.record_run(0, M2, 2, 1);
    map.finish_pass();
    let pages: Vec<PageAccess> = map.iter().collect();
    let mut end = 0;
    for p in &pages {
        assert!(p.addr >= end, "{p:?} overlaps the page before it");
        end = p.addr + p.page_size;
    }
    let base: Vec<u64> = pages
        .iter()
        .filter(|p| p.page_size == K)
        .map(|p| p.addr)
        .collect();
    assert_eq!(base, (0..2 * M).step_by(4096).collect::<Vec<_>>());
    assert!(pages.iter().all(|p| p.count == 1));
    assert_eq!(
        pages
            .iter()
            .filter(|p| p.page_size == M2)
            .map(|p| p.addr)
            .collect::<Vec<_>>(),
        vec![2 * M]
    );
}

#[test]
fn huge_pages_are_one_slot() {
    let mut m = AccessMap::new(&[vma(0, 3 * M2)], PageSizes::X86_64);
    m.record_run(M2, M2, 1, 1);
    m.record_run(0, K, 1, 0);
    let v: Vec<_> = m.iter().collect();
    assert_eq!(
        v,
        vec![
            PageAccess {
                addr: 0,
                page_size: K,
                count: 0
            },
            PageAccess {
                addr: M2,
                page_size: M2,
                count: 1
            },
        ]
    );
    assert_eq!(m.get(M2 + 5 * K), Some(1));
    // the huge page is split later: base records inside clear the huge mark
    m.record_run(M2 + K, K, 1, 1);
    assert_eq!(m.get(M2), Some(1));
    assert_eq!(m.get(M2 + K), Some(1));
    assert_eq!(m.get(M2 + 2 * K), None);
}

#[test]
fn hugetlb_vmas_hold_huge_pages_whatever_the_tracker_reports() {
    let s = PageSizes::from_shift(12).expect("4k");
    let m2 = s.pmd;
    let ht = Vma {
        kernel_page_kb: Some(2048),
        ..vma(4 * m2, 8 * m2)
    };
    let base = Vma {
        kernel_page_kb: Some(4),
        ..vma(8 * m2, 8 * m2 + 2 * 4096)
    };
    let mut m = AccessMap::new(&[ht, base], s);
    // DAMON regions split mid huge page: each huge page counts once, from the region
    // holding its first base page
    m.record_region(4 * m2, 5 * m2 + 4096, 3);
    m.record_region(5 * m2 + 4096, 8 * m2 + 4096, 0);
    // pagemap-like trackers report every base page of a huge page: counted once
    m.record_run(6 * m2, s.pte, 512, 1);
    m.record_run(8 * m2, s.pte, 1, 2);
    let got: Vec<(u64, u64, u8)> = m.iter().map(|p| (p.addr, p.page_size, p.count)).collect();
    assert_eq!(
        got,
        vec![
            (4 * m2, m2, 3),
            (5 * m2, m2, 3),
            (6 * m2, m2, 1),
            (7 * m2, m2, 0),
            (8 * m2, s.pte, 2),
        ]
    );
    assert_eq!(m.get(6 * m2 + 12345), Some(1));
}

#[test]
fn pages_outside_and_across_gaps() {
    let mut m = AccessMap::new(
        &[vma(0x1000, 0x3000), vma(0x8000, 0x9000)],
        PageSizes::X86_64,
    );
    m.record_run(0x0, K, 10, 1);
    let v: Vec<_> = m.iter().map(|p| p.addr).collect();
    assert_eq!(v, vec![0x1000, 0x2000, 0x8000]);
}

#[test]
fn regions_fill_pages() {
    let mut m = AccessMap::new(
        &[vma(0x1000, 0x5000), vma(0x9000, 0xb000)],
        PageSizes::X86_64,
    );
    m.record_region(0x2000, 0xa000, 7);
    let v: Vec<_> = m.iter().map(|p| (p.addr, p.count)).collect();
    assert_eq!(v, vec![(0x2000, 7), (0x3000, 7), (0x4000, 7), (0x9000, 7)]);
    m.record_region(0x0, 0x100000, 1);
    assert_eq!(m.get(0x1000), Some(1));
    assert_eq!(m.get(0x2000), Some(8));
}

#[test]
fn overlapping_vmas_are_clipped() {
    let m = AccessMap::new(
        &[vma(0x3000, 0x6000), vma(0x1000, 0x4000)],
        PageSizes::X86_64,
    );
    assert_eq!(
        m.ranges().collect::<Vec<_>>(),
        vec![(0x1000, 0x4000), (0x4000, 0x6000)]
    );
}

#[test]
fn bookkeeping_is_under_two_bytes_per_page() {
    let m = AccessMap::new(
        &[vma(0, 1 << 30), vma(2 << 30, (2 << 30) + 4096 * 7)],
        PageSizes::X86_64,
    );
    let per_page = m.bookkeeping_bytes() as f64 / m.tracked_base_pages() as f64;
    assert!(per_page <= 2.0, "{per_page}");
    assert!(per_page >= 1.0, "{per_page}");
}

/// xorshift64*: a seeded generator for the randomized tests (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Random VMAs from `base`: plain ones of any page length, 2 MiB-aligned ones, and now
/// and then a hugetlb one (2 MiB pages), with gaps of a page or more between them.
fn random_vmas(rng: &mut Rng, base: u64) -> Vec<Vma> {
    let mut vmas = Vec::new();
    let mut a = base;
    for _ in 0..1 + rng.below(5) {
        a += rng.below(3) * K + rng.below(2) * M2;
        let (len, hugetlb) = match rng.below(6) {
            0 => (M2 * (1 + rng.below(3)), true),
            1 => (M2 * (1 + rng.below(4)), false),
            _ => (K * (1 + rng.below(1500)), false),
        };
        if hugetlb || rng.below(3) == 0 {
            a = a.next_multiple_of(M2);
        }
        let mut v = vma(a, a + len);
        if hugetlb {
            v.kernel_page_kb = Some(2048);
        }
        vmas.push(v);
        a += len;
    }
    vmas
}

/// Every slot and huge-page bit of two maps over the same VMAs agree, and each one's
/// `for_each_page` gives the pages of its `iter`.
fn assert_same(fast: &AccessMap, slow: &AccessMap, what: &str) {
    for m in [fast, slow] {
        let mut each = Vec::new();
        m.for_each_page(|addr, page_size, count| {
            each.push(PageAccess {
                addr,
                page_size,
                count,
            });
        });
        assert_eq!(each, m.iter().collect::<Vec<_>>(), "{what}: for_each_page");
        assert!(m.present_slots() >= each.len(), "{what}: present_slots");
        let mut runs: Vec<(u64, u64, u64, u8)> = Vec::new();
        m.for_each_run(|addr, page_size, pages, count| {
            assert!(pages > 0, "{what}: empty run at {addr:#x}");
            runs.push((addr, page_size, pages, count));
        });
        let expanded: Vec<PageAccess> = runs
            .iter()
            .flat_map(|&(addr, page_size, pages, count)| {
                (0..pages).map(move |i| PageAccess {
                    addr: addr + i * page_size,
                    page_size,
                    count,
                })
            })
            .collect();
        assert_eq!(expanded, each, "{what}: for_each_run");
    }
    assert_eq!(
        fast.iter().collect::<Vec<_>>(),
        slow.iter().collect::<Vec<_>>(),
        "{what}"
    );
    for (f, s) in fast.runs.iter().zip(&slow.runs) {
        assert_eq!(f.counts, s.counts, "{what}: slots of {:#x}", f.start);
        assert_eq!(f.pmd, s.pmd, "{what}: PMD bits of {:#x}", f.start);
        assert_eq!(f.pud, s.pud, "{what}: PUD bits of {:#x}", f.start);
    }
}

#[test]
fn runs_match_the_page_by_page_reference_on_random_records() {
    let sizes = PageSizes::X86_64;
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let base = 0x7f00_0000_0000 + rng.below(64) * K;
        let vmas = random_vmas(&mut rng, base);
        let top = vmas.last().map_or(base, |v| v.end);
        let mut fast = AccessMap::new(&vmas, sizes);
        let mut slow = fast.clone();
        for _ in 0..300 {
            let page_size = match rng.below(20) {
                0..=13 => sizes.pte,
                14..=18 => sizes.pmd,
                _ => sizes.pud,
            };
            // anywhere from before the first VMA to past the last, crossing edges
            let span = top - base + 4 * M2;
            let mut addr = (base - 2 * M2 + rng.below(span)) / K * K;
            if rng.below(4) != 0 {
                addr = addr / page_size * page_size;
            }
            let nr = 1 + rng.below(if page_size == sizes.pte { 700 } else { 6 });
            let w = u8::try_from(rng.below(4)).unwrap_or(0);
            fast.record_run(addr, page_size, nr, w);
            slow.record_run_per_page(addr, page_size, nr, w);
        }
        assert_same(&fast, &slow, &format!("seed {seed}"));
    }
}

/// The pages of an idle_pages stream one by one, decoded without the module's
/// decoder: the reference for [`decoded_streams_match_the_page_by_page_reference`].
fn reference_decode(bytes: &[u8], sizes: PageSizes, map: &mut AccessMap) {
    use crate::parse::idle_pages::IdlePageType;
    let mut cur: Option<u64> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        if b == 0xA0 {
            let Some(a) = bytes.get(i..i + 8) else { return };
            cur = Some(u64::from_be_bytes(a.try_into().expect("8 bytes")));
            i += 8;
            continue;
        }
        let kind = IdlePageType::from_code(b >> 4).expect("known type");
        let Some(mut a) = cur else { return };
        let size = sizes.size_of(kind);
        for _ in 0..b & 0xF {
            let aligned = a.is_multiple_of(size);
            if !kind.is_hole() && aligned {
                if kind == IdlePageType::PmdIdlePtes {
                    for p in 0..sizes.pmd / sizes.pte {
                        map.record_run_per_page(a + p * sizes.pte, sizes.pte, 1, 0);
                    }
                } else {
                    map.record_run_per_page(a, size, 1, kind.weight());
                }
            }
            // a misaligned record is skipped whole, as the decoder does
            if !aligned {
                a += u64::from(b & 0xF) * size;
                break;
            }
            a += size;
        }
        cur = Some(a);
    }
}

#[test]
fn decoded_streams_match_the_page_by_page_reference() {
    use crate::parse::idle_pages::{StreamItem, decode_idle_pages, encode_stream};
    let sizes = PageSizes::X86_64;
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let base = 0x7f00_0000_0000 + rng.below(64) * K;
        let vmas = random_vmas(&mut rng, base);
        let top = vmas.last().map_or(base, |v| v.end);
        // a stream as the kernel writes it: an address, then records, now and then a
        // new address (anywhere: before, inside, after the VMAs, maybe misaligned)
        let mut items = vec![StreamItem::Addr(base.saturating_sub(rng.below(8) * K))];
        for _ in 0..400 {
            if rng.below(30) == 0 {
                let a = (base - M2 + rng.below(top - base + 2 * M2)) / K * K;
                items.push(StreamItem::Addr(a));
                continue;
            }
            // mostly single 4 KiB pages, a quarter accessed (the shape), then
            // runs, huge pages, whole PMDs of idle PTEs and holes
            let (t, nr) = match rng.below(10) {
                0..=4 => (if rng.below(4) == 0 { 0 } else { 5 }, 1),
                5 => (3, 1 + rng.below(15)),
                6 => (
                    [1, 4, 6][usize::try_from(rng.below(3)).unwrap_or(0)],
                    1 + rng.below(3),
                ),
                7 => (7, 1),
                8 => (8, 1 + rng.below(15)),
                _ => (if rng.below(2) == 0 { 9 } else { 2 }, 1),
            };
            items.push(StreamItem::Rec(t, u8::try_from(nr).unwrap_or(1)));
        }
        let mut stream = encode_stream(&items);
        // a read can end anywhere, inside an address record too
        if rng.below(3) == 0 {
            stream.truncate(usize::try_from(rng.below(stream.len() as u64)).unwrap_or(0));
        }
        let mut fast = AccessMap::new(&vmas, sizes);
        let mut slow = fast.clone();
        decode_idle_pages(&stream, sizes, |r| {
            fast.record_run(r.addr, r.page_size, r.nr_pages, r.kind.weight());
        })
        .expect("decode");
        reference_decode(&stream, sizes, &mut slow);
        assert_same(&fast, &slow, &format!("seed {seed}"));
    }
}
