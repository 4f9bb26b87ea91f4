//! etmemd: the RPC codec and server of the etmem daemon, its command line, logging and
//! systemd start-up. The `etmemd` binary is a thin wiring of these with the daemon core
//! (`etmem-host`).
//!
//! Nothing here touches projects, engines or the kernel: the core does, behind
//! [`etmem_host::ActionHandler`].

pub mod cli;
pub mod codec;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod systemd;
