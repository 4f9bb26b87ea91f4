//! Issue 12: slide and cslide, built in as etmemd runs them, for 1,500 steps (3,000 s of
//! tokio's paused clock, about 1,600 rounds, a few seconds of real time) over a kernel
//! that fails at random, while the maps change, a child ends and restarts and the cslide
//! target's pid is recycled. The scenario and what it asserts are in
//! `common/faults.rs` (shared with etmem-host-wasm's tests/faults.rs, which runs the same
//! with the engines loaded as third-party `.so` and `.wasm`); `ETMEM_FAULT_SEED`,
//! `ETMEM_FAULT_RATE`, `ETMEM_FAULT_STEPS` and `ETMEM_FAULT_LOG=1` are described there.

mod common;

use common::faults;
use etmem_host::{EngineRegistry, Scheduling};

#[test]
fn slide_and_cslide_survive_a_kernel_that_fails_at_random() {
    let mut registry = EngineRegistry::builtin();
    registry.register_builtin::<etmem_plugin_slide::Slide>("slide", Scheduling::PerTask);
    registry.register_builtin::<etmem_plugin_cslide::Cslide>("cslide", Scheduling::PerEngine);
    faults::run("built-in", registry, &faults::builtin_config(), 1500);
}
