//! A hasher for maps keyed by hashes the prefetcher has already computed.

use std::hash::{BuildHasherDefault, Hasher};

/// The `BuildHasher` of the prefetcher's internal maps, whose keys are
/// already the seeded foldhash of a cache key: hashing them again would only
/// cost time, and they are as hard to aim at as the seed is to guess.
pub(super) type Prehashed = BuildHasherDefault<PassThrough>;

/// Hands a `u64` key through unchanged.
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys reach this hasher; this fold keeps it correct (if
        // slower) should another key type ever be used with it.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
