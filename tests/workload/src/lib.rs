//! etmem-workload: a process whose hot, warm and cold memory is known in advance, so the
//! kernel lab can compare what etmemd did against the truth.
//!
//! The library holds the pure parts (size parsing, the layout file, the mixed mode's page
//! classes) and the memory regions; `main.rs` only wires them to the command line and the
//! touch schedule.
//! Nothing here talks to etmemd or reads other processes.

pub mod layout;
pub mod mem;
pub mod mixed;
pub mod report;
pub mod size;

pub use layout::{Access, Class, Layout, RegionLayout};
pub use mixed::{MixedArgs, MixedError, Pattern, Run};
pub use size::{SizeError, parse_size};
