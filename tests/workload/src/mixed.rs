//! The mixed mode's page classes: which pages of the one mapping are hot (touched every
//! period), which are cooled (hot until `--move-after`, then never touched again) and which
//! are cold (touched once, at start), as maximal runs in address order.
//!
//! A page at byte offset `o` of the mapping is hot iff
//! `(o + stride - hot_offset % stride) % stride < hot_block`: runs of `hot_block` bytes every
//! `stride` bytes, the first starting at `hot_offset`. With a move, the hot pages ranked
//! `n_hot / 2` and above (address order) are the cooled ones.
//!
//! Pure: sizes in, runs out. Mapping and touching are `mem`'s.

use thiserror::Error;

use crate::layout::Class;
use crate::size::round_up;

/// Largest mapping we accept (2^62 bytes): offsets plus a stride then fit in 64 bits.
const MAX_SIZE: u64 = 1 << 62;

/// The mixed mode's arguments as given, in bytes (not yet rounded to the page size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixedArgs {
    /// `--mixed`: size of the one mapping.
    pub size: u64,
    /// `--hot-block` (default: a quarter of the size).
    pub hot_block: Option<u64>,
    /// `--stride` (default: the size).
    pub stride: Option<u64>,
    /// `--hot-offset` (default 0).
    pub hot_offset: u64,
}

/// Why the mixed mode's arguments were refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MixedError {
    /// A size overflowed once rounded up to the page size, or the mapping is absurdly large.
    #[error("{what} {bytes}: too large")]
    TooLarge {
        /// The option.
        what: &'static str,
        /// Bytes given.
        bytes: u64,
    },
    /// `--mixed 0`.
    #[error("--mixed 0: expected at least one page")]
    EmptyMapping,
    /// `--hot-block 0`.
    #[error("--hot-block 0: expected at least one page (hot runs of zero bytes leave no hot page)")]
    EmptyBlock,
    /// `--stride 0`.
    #[error("--stride 0: expected at least one page")]
    EmptyStride,
    /// The hot block is longer than the stride.
    #[error(
        "--hot-block {block} bytes is larger than --stride {stride} bytes (both rounded up to the page size): expected hot-block <= stride"
    )]
    BlockOverStride {
        /// Hot block, rounded.
        block: u64,
        /// Stride, rounded.
        stride: u64,
    },
    /// The stride is longer than the mapping.
    #[error(
        "--stride {stride} bytes is larger than --mixed {size} bytes (both rounded up to the page size): expected stride <= size"
    )]
    StrideOverSize {
        /// Stride, rounded.
        stride: u64,
        /// Mapping size, rounded.
        size: u64,
    },
    /// The first hot run would start past the end of the mapping.
    #[error(
        "--hot-offset {offset} bytes is not inside the mapping of {size} bytes (both rounded up to the page size): expected hot-offset < size"
    )]
    OffsetOutside {
        /// Hot offset, rounded.
        offset: u64,
        /// Mapping size, rounded.
        size: u64,
    },
}

/// A validated hot pattern: every field a multiple of `page`, `0 < block <= stride <= size`,
/// `offset < size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// Mapping size in bytes.
    pub size: u64,
    /// Hot run length in bytes.
    pub block: u64,
    /// Distance between the starts of two hot runs, in bytes.
    pub stride: u64,
    /// Start of the first hot run, in bytes from the mapping's start.
    pub offset: u64,
    /// Page size in bytes (a power of two).
    pub page: u64,
}

/// One maximal run of pages of one class, in bytes from the mapping's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Hot, cooled or cold.
    pub class: Class,
    /// First byte, from the mapping's start.
    pub start: u64,
    /// Length in bytes (a multiple of the page size).
    pub len: u64,
}

fn rounded(what: &'static str, bytes: u64, page: u64) -> Result<u64, MixedError> {
    round_up(bytes, page)
        .filter(|b| *b <= MAX_SIZE)
        .ok_or(MixedError::TooLarge { what, bytes })
}

impl Pattern {
    /// Rounds every argument up to `page` (a power of two), applies the defaults (hot block
    /// a quarter of the size, rounded up; stride the size) and checks they fit together.
    pub fn new(args: &MixedArgs, page: u64) -> Result<Pattern, MixedError> {
        let size = rounded("--mixed", args.size, page)?;
        if size == 0 {
            return Err(MixedError::EmptyMapping);
        }
        let block = rounded("--hot-block", args.hot_block.unwrap_or(size / 4), page)?;
        let stride = rounded("--stride", args.stride.unwrap_or(size), page)?;
        let offset = rounded("--hot-offset", args.hot_offset, page)?;
        if block == 0 {
            return Err(MixedError::EmptyBlock);
        }
        if stride == 0 {
            return Err(MixedError::EmptyStride);
        }
        if block > stride {
            return Err(MixedError::BlockOverStride { block, stride });
        }
        if stride > size {
            return Err(MixedError::StrideOverSize { stride, size });
        }
        if offset >= size {
            return Err(MixedError::OffsetOutside { offset, size });
        }
        Ok(Pattern {
            size,
            block,
            stride,
            offset,
            page,
        })
    }

    /// Pages in the mapping.
    pub fn pages(&self) -> u64 {
        self.size / self.page
    }

    /// Whether the page at byte offset `o` is hot (before any move).
    pub fn is_hot(&self, o: u64) -> bool {
        // o < size <= 2^62 and stride <= size: no overflow.
        (o + self.stride - self.offset % self.stride) % self.stride < self.block
    }

    /// Hot pages (before any move), counted page by page.
    pub fn hot_pages(&self) -> u64 {
        (0..self.pages())
            .filter(|i| self.is_hot(i * self.page))
            .count() as u64
    }

    /// Pages the move cools: the hot pages ranked `n_hot / 2` and above.
    pub fn cooled_pages(&self) -> u64 {
        let n = self.hot_pages();
        n - n / 2
    }

    /// The class of every page as maximal runs in address order: hot and cold, or with
    /// `moving` hot, cooled and cold (hot pages ranked `n_hot / 2` and above are cooled).
    pub fn runs(&self, moving: bool) -> Vec<Run> {
        let first_cooled = if moving {
            self.hot_pages() / 2
        } else {
            u64::MAX
        };
        let mut runs: Vec<Run> = Vec::new();
        let mut rank = 0u64;
        for i in 0..self.pages() {
            let o = i * self.page;
            let class = if self.is_hot(o) {
                let cooled = rank >= first_cooled;
                rank += 1;
                if cooled { Class::Cooled } else { Class::Hot }
            } else {
                Class::Cold
            };
            match runs.last_mut() {
                Some(r) if r.class == class => r.len += self.page,
                _ => runs.push(Run {
                    class,
                    start: o,
                    len: self.page,
                }),
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;
    const M: u64 = 1024 * 1024;
    const PAGE: u64 = 4096;

    fn make(
        size: u64,
        block: Option<u64>,
        stride: Option<u64>,
        offset: u64,
    ) -> Result<Pattern, MixedError> {
        let args = MixedArgs {
            size,
            hot_block: block,
            stride,
            hot_offset: offset,
        };
        Pattern::new(&args, PAGE)
    }

    fn pattern(size: u64, block: Option<u64>, stride: Option<u64>, offset: u64) -> Pattern {
        make(size, block, stride, offset).expect("valid pattern")
    }

    fn err(size: u64, block: Option<u64>, stride: Option<u64>, offset: u64) -> MixedError {
        make(size, block, stride, offset).expect_err("invalid pattern")
    }

    /// The classes page by page, expanded from runs, checking runs are maximal and tile.
    fn classes(runs: &[Run], size: u64) -> Vec<Class> {
        let mut at = 0;
        let mut out = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            assert_eq!(r.start, at, "runs tile the mapping");
            assert!(r.len > 0 && r.len % PAGE == 0);
            if i > 0 {
                assert_ne!(runs[i - 1].class, r.class, "runs are maximal");
            }
            out.extend(std::iter::repeat_n(r.class, (r.len / PAGE) as usize));
            at += r.len;
        }
        assert_eq!(at, size);
        out
    }

    #[test]
    fn defaults_are_the_first_quarter_hot() {
        let p = pattern(128 * M, None, None, 0);
        assert_eq!((p.block, p.stride, p.offset), (32 * M, 128 * M, 0));
        assert_eq!(
            p.runs(false),
            vec![
                Run {
                    class: Class::Hot,
                    start: 0,
                    len: 32 * M
                },
                Run {
                    class: Class::Cold,
                    start: 32 * M,
                    len: 96 * M
                },
            ]
        );
    }

    #[test]
    fn blocks_every_stride() {
        let p = pattern(128 * M, Some(2 * M), Some(8 * M), 0);
        let runs = p.runs(false);
        assert_eq!(runs.len(), 32);
        for (i, r) in runs.iter().enumerate() {
            let (class, start, len) = if i % 2 == 0 {
                (Class::Hot, (i as u64 / 2) * 8 * M, 2 * M)
            } else {
                (Class::Cold, (i as u64 / 2) * 8 * M + 2 * M, 6 * M)
            };
            assert_eq!(*r, Run { class, start, len }, "run {i}");
        }
        assert_eq!(p.hot_pages(), 16 * 2 * M / PAGE);
    }

    #[test]
    fn small_chunks() {
        let p = pattern(128 * M, Some(64 * K), Some(256 * K), 0);
        let runs = p.runs(false);
        assert_eq!(runs.len(), 1024);
        assert_eq!(p.hot_pages(), 512 * 16);
        assert_eq!(runs[1].start, 64 * K);
        assert_eq!(runs[1].len, 192 * K);
    }

    #[test]
    fn odd_offset_wraps_the_first_run() {
        // 1236K hot every 5M from 700K: [700K, 1936K), [5M+700K, ...), and the run that
        // starts at -5M+700K ends before 0, so page 0 is cold.
        let p = pattern(200 * M, Some(1236 * K), Some(5 * M), 700 * K);
        let c = classes(&p.runs(false), p.size);
        let pg = |b: u64| (b / PAGE) as usize;
        assert_eq!(c[0], Class::Cold);
        assert_eq!(c[pg(700 * K) - 1], Class::Cold);
        assert_eq!(c[pg(700 * K)], Class::Hot);
        assert_eq!(c[pg(1936 * K) - 1], Class::Hot);
        assert_eq!(c[pg(1936 * K)], Class::Cold);
        assert_eq!(c[pg(5 * M + 700 * K)], Class::Hot);
        assert_eq!(p.hot_pages(), 40 * 1236 * K / PAGE);
        // Every page agrees with the formula.
        for (i, class) in c.iter().enumerate() {
            let o = i as u64 * PAGE;
            let hot = (o + 5 * M - 700 * K) % (5 * M) < 1236 * K;
            assert_eq!(*class == Class::Hot, hot, "page {i}");
        }
    }

    #[test]
    fn offset_past_a_stride_wraps_around_the_end() {
        // Stride 4 pages, block 3, offset 2 pages: pages 2,3,4 hot, 5 cold, 6,7,8 hot...
        // and page 0 (the tail of the run starting at -2) hot, page 1 cold.
        let p = pattern(12 * PAGE, Some(3 * PAGE), Some(4 * PAGE), 2 * PAGE);
        let c = classes(&p.runs(false), p.size);
        use Class::{Cold as C, Hot as H};
        assert_eq!(c, vec![H, C, H, H, H, C, H, H, H, C, H, H]);
    }

    #[test]
    fn moving_cools_the_upper_half_of_the_hot_ranks() {
        // 9 hot pages (0, 2, 3, 4, 6, 7, 8, 10, 11): ranks 0..4 stay hot, 4..9 (5 pages)
        // cool.
        let p = pattern(12 * PAGE, Some(3 * PAGE), Some(4 * PAGE), 2 * PAGE);
        assert_eq!(p.hot_pages(), 9);
        assert_eq!(p.cooled_pages(), 5);
        let c = classes(&p.runs(true), p.size);
        use Class::{Cold as C, Cooled as O, Hot as H};
        assert_eq!(c, vec![H, C, H, H, H, C, O, O, O, C, O, O]);
        // Without a move nothing is cooled.
        assert!(!p.runs(false).iter().any(|r| r.class == Class::Cooled));
    }

    #[test]
    fn moving_contiguous_hot_splits_it_in_two() {
        let p = pattern(128 * M, Some(2 * M), Some(8 * M), 0);
        let runs = p.runs(true);
        let hot: u64 = runs
            .iter()
            .filter(|r| r.class == Class::Hot)
            .map(|r| r.len)
            .sum();
        let cooled: u64 = runs
            .iter()
            .filter(|r| r.class == Class::Cooled)
            .map(|r| r.len)
            .sum();
        assert_eq!(hot, 16 * M);
        assert_eq!(cooled, 16 * M);
        assert_eq!(cooled / PAGE, p.cooled_pages());
        // The cooled runs are exactly the upper 8 of the 16 hot blocks.
        assert!(
            runs.iter()
                .filter(|r| r.class == Class::Cooled)
                .all(|r| r.start >= 64 * M)
        );
        assert!(
            runs.iter()
                .filter(|r| r.class == Class::Hot)
                .all(|r| r.start < 64 * M)
        );
    }

    #[test]
    fn rounding_is_up_to_the_page() {
        let p = pattern(10_000, Some(1), Some(5000), 1);
        assert_eq!(
            (p.size, p.block, p.stride, p.offset),
            (12288, 4096, 8192, 4096)
        );
        // A quarter of 3 pages is rounded up to one page.
        assert_eq!(pattern(3 * PAGE, None, None, 0).block, PAGE);
    }

    #[test]
    fn block_equal_to_stride_is_all_hot() {
        let p = pattern(16 * PAGE, Some(4 * PAGE), Some(4 * PAGE), PAGE);
        assert_eq!(
            p.runs(false),
            vec![Run {
                class: Class::Hot,
                start: 0,
                len: 16 * PAGE
            }]
        );
    }

    #[test]
    fn bad_combinations_are_refused() {
        assert_eq!(err(0, None, None, 0), MixedError::EmptyMapping);
        assert_eq!(err(M, Some(0), None, 0), MixedError::EmptyBlock);
        assert_eq!(err(M, Some(PAGE), Some(0), 0), MixedError::EmptyStride);
        assert_eq!(
            err(M, Some(3 * M / 4), Some(M / 2), 0),
            MixedError::BlockOverStride {
                block: 3 * M / 4,
                stride: M / 2
            }
        );
        assert_eq!(
            err(M, None, Some(2 * M), 0),
            MixedError::StrideOverSize {
                stride: 2 * M,
                size: M
            }
        );
        assert_eq!(
            err(M, None, None, M),
            MixedError::OffsetOutside { offset: M, size: M }
        );
        assert_eq!(
            err(u64::MAX, None, None, 0),
            MixedError::TooLarge {
                what: "--mixed",
                bytes: u64::MAX
            }
        );
    }

    #[test]
    fn error_text_names_the_values() {
        assert_eq!(
            err(M, Some(5000), Some(4096), 0).to_string(),
            "--hot-block 8192 bytes is larger than --stride 4096 bytes (both rounded up to the page size): expected hot-block <= stride"
        );
        assert_eq!(
            err(M, Some(0), None, 0).to_string(),
            "--hot-block 0: expected at least one page (hot runs of zero bytes leave no hot page)"
        );
    }
}
