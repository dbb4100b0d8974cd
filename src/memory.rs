//! The process's memory: which allocator the shipped binary uses, and giving
//! freed memory back to the OS when the daemon goes idle.
//!
//! musl's own allocator (mallocng) maps and unmaps memory constantly (`strace -c`
//! of `run --once` at N = 500: 396 `mmap` and 385 `munmap` calls, against 16 and 11
//! with glibc), so the static musl amd64 binary the image ships uses mimalloc.
//! glibc builds keep glibc's malloc. Not for aarch64: Debian has no aarch64 musl C
//! compiler, and an allocator compiled against glibc's headers but linked with musl
//! is an ABI gamble. Numbers: docs/performance.md.

/// The allocator of the static musl amd64 binary (and of anything else built for
/// that target: its tests and benchmarks measure the same allocator).
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 3's option numbers (`mi_option_e` in include/mimalloc.h, the version
/// libmimalloc-sys builds by default); its Rust binding names only version 2's.
#[cfg(all(target_env = "musl", target_arch = "x86_64"))]
mod option {
    use libmimalloc_sys::mi_option_t;
    pub const ARENA_EAGER_COMMIT: mi_option_t = 4;
    pub const PURGE_DELAY: mi_option_t = 15;
    /// mimalloc's default purge delay, in milliseconds.
    pub const PURGE_DELAY_DEFAULT: std::ffi::c_long = 10;

    /// Sets `option` to `value`.
    pub fn set(option: mi_option_t, value: std::ffi::c_long) {
        // SAFETY: mi_option_set stores an integer in mimalloc's option table
        // (any thread, any time); every value is valid for these options.
        unsafe { libmimalloc_sys::mi_option_set(option, value) }
    }
}

/// Sets mimalloc's options; `main` calls it first, before anything allocates,
/// when mimalloc has reserved nothing yet. A no-op with any other allocator.
///
/// Two of mimalloc's defaults trade memory for speed in ways a sidecar in every
/// pod should not: arenas committed eagerly (on Linux, because it overcommits),
/// and freed memory returned to the OS only after a delay, during later
/// allocator calls, which an idle daemon never makes, so the daemon returns
/// it itself once idle ([`idle`]). Idle RSS with the system
/// roots and 10 CAs, probes on: 14.9 MiB with the defaults, 4.6 MiB with these
/// (docs/performance.md). `run --once` takes the delay back ([`one_shot`]).
pub fn tune_allocator() {
    #[cfg(all(target_env = "musl", target_arch = "x86_64"))]
    {
        option::set(option::ARENA_EAGER_COMMIT, 0);
        option::set(option::PURGE_DELAY, 0);
    }
}

/// `run --once`: the process exits right after its one reconcile and returns
/// everything then, so returning freed memory while it runs only costs time:
/// at N = 500, 89 `madvise` calls and 1.4 ms (docs/performance.md). Restores
/// mimalloc's default delay. A no-op with any other allocator.
pub(crate) fn one_shot() {
    #[cfg(all(target_env = "musl", target_arch = "x86_64"))]
    option::set(option::PURGE_DELAY, option::PURGE_DELAY_DEFAULT);
}

/// The daemon went idle (half a second without a reconcile): return the
/// free memory of this thread's heap to the OS now (mimalloc's heaps are per
/// thread, so both the runtime thread and the worker's call it). A no-op
/// with any other allocator.
pub(crate) fn idle() {
    #[cfg(all(target_env = "musl", target_arch = "x86_64"))]
    // SAFETY: mi_collect only walks mimalloc's own structures; `force` makes
    // it purge now.
    unsafe {
        libmimalloc_sys::mi_collect(true)
    };
}
