//! Which shard a thread writes to, and the per-thread coin that decides
//! which calls are sampled.

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// The most shards a sharded structure uses. Each latency shard may grow to
/// a few hundred kilobytes, so the count is capped rather than following
/// the core count of large machines.
const MAX_SHARDS: usize = 8;

/// Hands each thread a distinct number, so threads spread over the shards
/// round-robin instead of by a hash that could put two busy threads on one.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_INDEX: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    static COIN: Cell<u64> = Cell::new(seed(THREAD_INDEX.with(|i| *i)));
}

/// The number of shards for this machine: its parallelism rounded up to a
/// power of two (so a shard is picked with a mask), at most [`MAX_SHARDS`].
pub(crate) fn shard_count() -> usize {
    thread::available_parallelism()
        .map_or(4, NonZeroUsize::get)
        .next_power_of_two()
        .min(MAX_SHARDS)
}

/// This thread's number; a sharded structure takes it modulo its shards.
#[inline]
pub(crate) fn thread_index() -> usize {
    THREAD_INDEX.with(|i| *i)
}

/// Whether this call is one of the `1 in n` sampled: always for `n <= 1`.
///
/// A per-thread xorshift generator rather than a counter, so a workload
/// that alternates operations with the sampling period does not have one
/// of them sampled every time and the other never.
#[inline]
pub(crate) fn one_in(n: u32) -> bool {
    if n <= 1 {
        return true;
    }
    COIN.with(|c| {
        let mut x = c.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.set(x);
        (x >> 32) % u64::from(n) == 0
    })
}

/// A non-zero xorshift seed from a thread number (splitmix64's finaliser).
fn seed(index: usize) -> u64 {
    let mut z = (index as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_one_always_samples() {
        assert!((0..1000).all(|_| one_in(1)));
        assert!((0..1000).all(|_| one_in(0)));
    }

    #[test]
    fn one_in_n_samples_about_one_call_in_n() {
        let sampled = (0..100_000).filter(|_| one_in(10)).count();
        assert!((9_000..11_000).contains(&sampled), "{sampled} of 100000");
    }

    #[test]
    fn shard_counts_are_powers_of_two_within_the_cap() {
        let n = shard_count();
        assert!(n.is_power_of_two() && n <= MAX_SHARDS);
    }

    #[test]
    fn threads_get_distinct_indices() {
        let here = thread_index();
        let there = thread::spawn(thread_index).join().unwrap();
        assert_ne!(here, there);
    }
}
