//! Allocator tuning for the daemon process.
//!
//! glibc serves allocations above its mmap threshold with their own
//! mappings, returned to the system when freed, but it raises that
//! threshold after the first large free. From then on every login's
//! 19 MiB argon2 buffer comes from the heap and stays resident (tether-bench
//! `clients`: 433 MiB after 1,000 logins). A fixed threshold keeps such
//! buffers mapped per use, so their memory goes back after each login.

/// Allocations of at least this many bytes get their own mapping.
#[cfg(target_env = "gnu")]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Fix the allocator's mmap threshold. Call it first thing in `main`,
/// before other threads exist.
pub fn tune() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; it is called
    // before any other thread allocates.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
