//! Step 3 of the data flow: merge, with `go tool covdata`'s semantics.
//!
//! - [`counters`]: within a group (one binary), add up the counter files
//!   function by function (`set` mode: 1 if any run hit the block; otherwise
//!   a sum that saturates at 2^32-1).
//! - [`groups`]: across groups, attach counts to the meta-data's blocks and
//!   collapse identical blocks (same package, file, function, literal flag,
//!   position and statement count) into one, using the first group's mode.

pub mod counters;
pub mod groups;

/// A fast, non-cryptographic hasher for the merge tables (keys are small
/// integers and short names; no untrusted-key DoS concern for a CLI).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut a = [0u8; 8];
            a[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(a));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub(crate) type FxBuild = std::hash::BuildHasherDefault<FxHasher>;
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;
