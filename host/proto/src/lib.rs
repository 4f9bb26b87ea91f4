//! The etmem wire protocol and the command-line conventions shared by `etmemd` and `etmem`.
//!
//! This crate is pure: it encodes and decodes bytes and knows nothing of sockets, the daemon
//! or its objects. Everything here must stay byte-compatible with C etmem
//! (spec §3): the C client drives our daemon and our client drives a C daemon.

pub mod frame;
pub mod getopt;
pub mod heatmap;
pub mod reply;
pub mod socket;

pub use frame::{Command, FrameError, Request};
pub use reply::{OptResult, TAG_FAILURE, TAG_SUCCESS};
