//! The process's memory allocator, where it matters to etmemd's footprint: glibc's malloc
//! keeps freed memory (and one arena per thread that ever allocated) resident, so a daemon
//! that once held 10,000 projects stays at that size after they are deleted.
//!
//! Only glibc has these knobs; elsewhere both calls do nothing.

/// Limits malloc to two arenas (glibc starts one per thread up to eight per core; each
/// keeps what it once held). Call at start, before threads are spawned.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; it takes plain integers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives the allocator's free memory back to the kernel (after a large delete).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas to the kernel;
    // no allocation is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}
