//! etmem config files (spec §4): INI text → typed values.
//!
//! Pure with respect to the daemon: this crate reads the one file it is given and knows
//! nothing of projects that already exist, of the machine, or of the socket.

pub mod types;

pub use types::*;
