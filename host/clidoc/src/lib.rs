//! The one clap description of the `etmem` and `etmemd` command lines, for documents only:
//! shell completions (bash, zsh, fish) and man pages (`etmem.1`, `etmemd.8`), written by the
//! `etmem-gen-docs` binary.
//!
//! The binaries do not use it: they parse with glibc getopt, as C etmem does
//! (`etmem_proto::getopt`), and must not depend on clap or on this crate (scripts/test checks
//! it with `cargo tree`). [`drift::compare`] checks this description against their getopt
//! tables; the drift tests live in `host/etmem` and `host/etmemd`.

pub mod commands;
pub mod drift;
pub mod generate;

pub use commands::{etmem, etmemd};
pub use drift::{Accepts, Drift, compare};
pub use generate::{GenDocsError, write_all};
