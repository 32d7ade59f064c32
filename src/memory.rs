//! How the process keeps its heap small: one heap for every thread, and free memory handed
//! back to the system after work that used a lot of it.
//!
//! glibc gives each thread that allocates its own arena and keeps what a thread frees there.
//! A grain's threads come and go (blocking work, the serving loops), and the memory of a
//! search or an import stayed behind in the arena of a thread that had since exited:
//! idle memory varied between 9.6 and 11 MB from one run to the next, 8.6–8.9 MB with one
//! arena (docs/performance.md). Small allocations still come from per-thread caches without
//! a lock; in the tiles benchmark the two serving loops' throughput and p99 with one arena
//! could not be told apart from those with glibc's default (docs/performance.md, Tiles).

/// Makes every thread allocate from the one main heap. Call before starting threads.
pub fn use_one_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no memory is touched.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the heap's free memory back to the system.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages; live allocations are untouched.
    unsafe {
        libc::malloc_trim(0);
    }
}
