//! Property tests of the idle_pages stream (issue 12): a stream written with
//! `encode_stream` decodes to its records, joined where one continues the last, with the
//! address after the last record. The fuzz target `fuzz/fuzz_targets/idle_pages.rs`
//! checks the decoder on mutated streams; these run in `cargo test`.

use etmem_kernel::parse::idle_pages::{
    IdlePageType, IdleRun, PageSizes, StreamItem, decode_idle_pages, encode_stream,
};
use proptest::prelude::*;

const BASE: u64 = 0x7f00_0000_0000;

fn item() -> impl Strategy<Value = StreamItem> {
    prop_oneof![
        // base-page and PMD-aligned addresses (the decoder skips misaligned PMD records)
        1 => (0u64..1 << 16).prop_map(|k| StreamItem::Addr(BASE + k * 4096)),
        1 => (0u64..1 << 8).prop_map(|k| StreamItem::Addr(BASE + k * (2 << 20))),
        8 => (0u8..=9, 0u8..=15).prop_map(|(t, nr)| StreamItem::Rec(t, nr)),
    ]
}

fn stream() -> impl Strategy<Value = Vec<StreamItem>> {
    (any::<u16>(), proptest::collection::vec(item(), 0..64)).prop_map(|(k, mut v)| {
        // a stream starts with an address
        v.insert(0, StreamItem::Addr(BASE + u64::from(k) * 4096));
        v
    })
}

/// What the format says the items mean: each record alone, then joined where one starts
/// where the last ended with the same kind. Returns the runs, the misaligned count and the
/// address after the last record.
fn model(items: &[StreamItem], s: PageSizes) -> (Vec<IdleRun>, u64, Option<u64>) {
    let mut records: Vec<IdleRun> = Vec::new();
    let (mut cur, mut misaligned) = (None, 0);
    for it in items {
        match *it {
            StreamItem::Addr(a) => cur = Some(a),
            StreamItem::Rec(t, nr) => {
                let kind = IdlePageType::from_code(t).expect("codes 0..=9");
                let addr = cur.expect("an address first");
                let size = s.size_of(kind);
                let nr = u64::from(nr);
                cur = Some(addr + nr * size);
                if nr == 0 || kind.is_hole() {
                    continue;
                }
                if addr % size != 0 {
                    misaligned += 1;
                    continue;
                }
                records.push(match kind {
                    IdlePageType::PmdIdlePtes => IdleRun {
                        addr,
                        page_size: s.pte,
                        nr_pages: nr * (s.pmd / s.pte),
                        kind: IdlePageType::PteIdle,
                    },
                    _ => IdleRun {
                        addr,
                        page_size: size,
                        nr_pages: nr,
                        kind,
                    },
                });
            }
        }
    }
    let mut runs: Vec<IdleRun> = Vec::new();
    for r in records {
        match runs.last_mut() {
            Some(l) if l.kind == r.kind && l.addr + l.nr_pages * l.page_size == r.addr => {
                l.nr_pages += r.nr_pages
            }
            _ => runs.push(r),
        }
    }
    (runs, misaligned, cur)
}

proptest! {
    #[test]
    fn a_stream_decodes_to_its_records(items in stream(), shift in prop_oneof![Just(12u32), Just(14), Just(16)]) {
        let s = PageSizes::from_shift(shift).expect("page sizes");
        let bytes = encode_stream(&items);
        let mut runs = Vec::new();
        let sum = decode_idle_pages(&bytes, s, |r| runs.push(r)).expect("a valid stream");
        let (want, misaligned, next) = model(&items, s);
        prop_assert_eq!(runs, want);
        prop_assert_eq!(sum.misaligned, misaligned);
        prop_assert_eq!(sum.next_addr, next);
        prop_assert!(!sum.truncated);
    }

    #[test]
    fn a_cut_stream_gives_a_prefix_of_the_runs(items in stream(), cut in any::<prop::sample::Index>()) {
        let s = PageSizes::X86_64;
        let bytes = encode_stream(&items);
        let mut whole = Vec::new();
        decode_idle_pages(&bytes, s, |r| whole.push(r)).expect("a valid stream");
        let part = &bytes[..cut.index(bytes.len() + 1)];
        let mut runs = Vec::new();
        decode_idle_pages(part, s, |r| runs.push(r)).expect("a cut stream still decodes");
        // every run but the last one is whole; the last may be cut short
        if let Some((last, done)) = runs.split_last() {
            prop_assert_eq!(done, &whole[..done.len()]);
            let w = whole[done.len()];
            prop_assert_eq!((last.addr, last.page_size, last.kind), (w.addr, w.page_size, w.kind));
            prop_assert!(last.nr_pages <= w.nr_pages);
        }
    }
}
