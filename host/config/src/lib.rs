//! etmem config files (spec §4): INI text → typed values.
//!
//! Pure with respect to the daemon: this crate reads the one file it is given and knows
//! nothing of projects that already exist, of the machine, or of the socket.
//!
//! Two stages: `doc` turns the text into an INI document (rust-ini plus a light line
//! pre-scan), [`parse`] turns the document into [`ConfigFile`] (add) or [`ObjectIds`]
//! (del). [`file`] applies C's file rules before either. Every failure is a
//! [`ConfigError`] whose [`ConfigError::result`] is the C error class and whose Display is
//! the precise reason.
//!
//! # Differences from C
//!
//! - Several `[project]`, `[engine]` or `[task]` sections are separate objects; C
//!   (GKeyFile) merges same-named groups into one, keys of both mixed.
//! - A key repeated inside one section is an error; C keeps the last value silently.
//! - A value with trailing whitespace is an error that says so; C keeps the whitespace and
//!   then fails with a generic message (or, for free-form strings, keeps it silently).
//! - Integers are strict decimal with an optional sign, and a value outside the key's
//!   range is an error, also where C truncates to 32 bits first (`loop=4294967297` is 1
//!   in C) or saturates to i64. Keys C does not range-check (DAMON sizes, region
//!   intervals, DAMON acc/age) still reject negative numbers, which C wraps to huge
//!   unsigned values. Exception kept on purpose: psi `limit_min_bytes` and
//!   `reclaim_max_bytes` follow `strtoul`, where `-1` is the maximum (bug B25).
//! - Doubles (psi keys) are Rust decimal floats: `1e-2` works, C's hexadecimal floats
//!   (`0x10`), `inf` and `nan` are rejected.
//! - Unknown keys in known sections and unknown sections are ignored like C, and reported
//!   in [`ConfigFile::warnings`].
//! - Lines rust-ini would read differently from GKeyFile are refused with a syntax error
//!   instead of being guessed at: a key containing `:`, a value ending in `\` (rust-ini
//!   line continuation). CRLF line ends are accepted.
//! - `node_pair` pieces are `hot,cold` pairs separated by `;` or spaces, or `hot cold`
//!   alone between `;`; anything else, and a node given twice, is refused here.
//! - Syntax errors carry the line number; the whole file is validated before the core
//!   applies anything (C applies sections one by one without rollback).
//! - The file is first opened with `O_PATH` and checked with `fstat`, then reopened
//!   through that descriptor, so the file checked is the file read and a fifo, device or
//!   socket is refused ("is a character device, expected a regular file") without ever
//!   being opened.

mod doc;
pub mod error;
pub mod file;
pub mod parse;
pub mod types;

pub use error::{ConfigError, KeyProblem, MAX_CONFIG_FILE_SIZE, SectionKind, SectionRef};
pub use file::{load_for_add, load_for_del, read_checked};
pub use parse::{parse_for_add, parse_for_del};
pub use types::*;
