//! The WASI 0.2 context of an engine instance: enough for a `wasm32-wasip2` build (whose std
//! imports WASI) to link and run, granting nothing of the machine.
//!
//! What a guest gets (from wasmtime-wasi's defaults and the settings below):
//! * **Files:** no preopened directory, so every path is refused (`std::fs` fails).
//! * **Environment and arguments:** empty; no initial working directory.
//! * **Stdio:** stdin closed (end of stream), stdout and stderr discarded.
//! * **Network:** TCP, UDP and name lookup are disabled; no address passes the check.
//! * **Clocks:** the wall clock is frozen at the Unix epoch and the monotonic clock at 0:
//!   the guest learns neither the date nor how long anything took.
//! * **Waiting:** `wasi:io/poll` (`poll`, `pollable.block`) traps with a reason: a wait
//!   would block the daemon's thread outside the call deadline, and with frozen clocks
//!   there is nothing to wait for. `std::thread::sleep` is therefore a fault.
//! * **Random:** both generators and the insecure seed are deterministic (fixed seed per
//!   instance), so instances behave reproducibly; hash maps get fixed keys. An engine must
//!   not rely on WASI randomness for anything secret.
//! * **Exit:** `wasi:cli/exit` ends the call with a fault (the instance is quarantined).
//! * **What remains:** the guest can tell that it runs under WASI, and a stream write or read
//!   returns at once. Host memory used by WASI calls is bounded (random reads are capped at
//!   64 KiB; the resource table lives in the instance's store).
//!
//! This module must not grant anything: no directory, variable, socket or real clock.

use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Duration;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::clocks::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{WasiCtx, WasiView};

/// The WASI packages whose interfaces a component may import (any 0.2 version the linker
/// accepts).
pub const PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
];

/// The reason a wait traps with.
pub const NO_WAITING: &str =
    "waiting (wasi:io/poll, e.g. std::thread::sleep) is not granted to engines";

/// The name under which wasmtime-wasi 48 links `wasi:io/poll` (components importing an
/// older 0.2 version are matched to it by semver). Move it with the wasmtime pin: the
/// test of `std::thread::sleep` fails if this no longer shadows the real one.
const POLL: &str = "wasi:io/poll@0.2.12";

/// A wall clock stopped at the Unix epoch.
struct FrozenWall;

impl HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// A monotonic clock stopped at 0.
struct FrozenMonotonic;

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The seed of the deterministic generators (any fixed value).
const SEED: u64 = 0x6574_6d65_6d5f_7761; // "etmem_wa"

/// A WASI context that grants nothing (see the module docs).
pub fn nothing_granted() -> WasiCtx {
    let mut b = WasiCtx::builder();
    b.wall_clock(FrozenWall)
        .monotonic_clock(FrozenMonotonic)
        .secure_random(StdRng::seed_from_u64(SEED))
        .insecure_random(StdRng::seed_from_u64(SEED ^ 1))
        .insecure_random_seed(u128::from(SEED))
        .max_random_size(64 << 10)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .socket_addr_check(|_, _| Box::pin(async { false }));
    b.build()
}

/// Adds WASI 0.2 (synchronous bindings) to `linker`, with waiting replaced by a trap.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "poll",
        |_store, (_list,): (Vec<Resource<DynPollable>>,)| -> wasmtime::Result<(Vec<u32>,)> {
            Err(wasmtime::Error::msg(NO_WAITING))
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |_store, (_p,): (Resource<DynPollable>,)| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(NO_WAITING))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
