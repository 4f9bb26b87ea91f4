//! How etmemd's async runtime is sized, where that matters to its footprint. The runtime
//! itself is built by the binary (and by tests that measure what etmemd would hold).

/// The most threads the runtime's blocking pool may run at once: engine calls, scans,
/// actions and tracker drops run there. Tokio's default is 512, and the pool grows past
/// what is needed: a burst of calls awaited one after the other (an `obj add` or `obj del`
/// of 10,000 tasks makes 10,000 engine calls) starts a new thread whenever the previous
/// one has not yet marked itself idle when the next call comes, which on a busy machine is
/// often (up to 48 threads seen for one such file on 2 cores). Each thread keeps its stack
/// pages and malloc's per-thread cache, spread over the arena, for its keep-alive time and
/// after (`docs/hardening.md`, "Bounded memory"). The work is CPU-bound and short (engine
/// calls on one engine are serialized anyway), so a few threads per CPU are enough: calls
/// beyond the limit wait in the pool's queue; no blocking call waits for a queued one.
pub fn max_blocking_threads() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (2 * cpus + 1).max(8)
}
