//! The proxy's allocator setting (`ccr_setup::proxy::allocator`): large per-request
//! buffers get mappings of their own instead of arena space. Its own test binary, so
//! that nothing else in the process moves glibc's counters.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use ccr_setup::proxy::allocator::{tune_for_proxy, OWN_MAPPING_FROM_BYTES};
use nix::libc;

/// Bytes glibc holds in mappings of their own (`mallinfo2().hblkhd`).
fn mapped_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.hblkhd
}

/// Eight 76 KB buffers, the size of a Claude Code request body: with the setting at
/// least six have their own mapping (an arena's free space may still serve the first
/// ones); without it none does (glibc's default threshold is 128 KB: tried).
#[test]
fn large_buffers_get_their_own_mappings() {
    tune_for_proxy();
    let size = OWN_MAPPING_FROM_BYTES + 12 * 1024;
    let before = mapped_bytes();
    let buffers: Vec<Vec<u8>> = (0..8).map(|_| Vec::with_capacity(size)).collect();
    let mapped = mapped_bytes().saturating_sub(before);
    assert!(
        mapped >= 6 * size,
        "{mapped} bytes mapped for {} buffers of {size}",
        buffers.len()
    );
}
