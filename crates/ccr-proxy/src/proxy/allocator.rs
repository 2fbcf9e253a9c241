//! How the proxy asks the C allocator to handle its large per-request buffers.
//!
//! Each Claude Code request carries a few buffers of tens to hundreds of KB (the
//! body as read, the translated body as sent) that live as long as the request. glibc
//! serves them from per-thread arenas by default (its mmap threshold rises to the size
//! of each large block freed, up to 32 MB), and 32 such requests at once leave those
//! arenas fragmented: measured with the peer benchmark's 76 KB stream at concurrency
//! 32, peak RSS 38–41 MiB with the default, 35–37 MiB with buffers from 64 KB on
//! given their own mappings (once the arena's free space is used up), returned to the
//! system when freed. The price is a map and an unmap per large buffer: ~0.05 ms per
//! 76 KB request, against prefills of seconds.
//! musl (the release builds) has no arenas and no such knob.

/// Allocations from this size on get their own mapping.
pub const OWN_MAPPING_FROM_BYTES: usize = 64 * 1024;

/// Apply the proxy's allocator settings; call once, before the runtime starts threads.
pub fn tune_for_proxy() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = OWN_MAPPING_FROM_BYTES as nix::libc::c_int;
        // SAFETY: mallopt only sets a process-wide allocator parameter.
        let ok = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, threshold) };
        if ok != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) was refused; the default stays");
        }
    }
}
