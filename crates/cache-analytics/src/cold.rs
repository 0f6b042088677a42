//! [`ColdKeys`]: keys not touched within a window, from a bounded sample.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::Clock;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::shard::shard_count;

/// A key that has not been touched within the window asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdKey {
    /// The key.
    pub key: Bytes,
    /// When it was last touched, in unix milliseconds.
    pub last_touch_ms: u64,
}

/// The last touch of a sample of keys, for finding those gone cold.
///
/// Tracking every key would cost memory in proportion to the key space, so
/// this follows a sample of at most [`capacity`](Self::new) keys, chosen by
/// a keyed hash of the key: a key is followed when its hash falls in the
/// sampled part of the hash space, which starts as all of it and halves
/// each time the sample is full (keys outside the new half are dropped).
/// This is adaptive sampling (Wegman's, as in Flajolet's "adaptive
/// sampling", 1990): the sample stays a uniform random subset of the keys
/// touched, and a key in it has *every* touch recorded, so a key reported
/// cold really was untouched for the window. Sampling calls instead would
/// make a key touched rarely but regularly look cold.
///
/// The approximations, then: a cold key outside the sample is not reported
/// (with `n` distinct keys and capacity `c`, roughly `c / n` of the cold
/// keys are seen when `n > c`), and a key the tier itself dropped (evicted
/// or expired) stays tracked, and so reported cold, until it is
/// [`forget`](Self::forget)-ed or pushed out by a halving. The sample only
/// shrinks until [`clear`](Self::clear).
///
/// The keys are spread over a few shards by hash, each with its own mutex
/// and share of the capacity; a touch of a key outside the sample costs a
/// hash and an atomic load, and takes no lock.
///
/// ```
/// use cache_analytics::ColdKeys;
/// use cache_core::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new(0);
/// let cold = ColdKeys::new(1024, clock.clock());
/// cold.touch(b"old");
/// clock.advance(Duration::from_secs(60));
/// cold.touch(b"new");
/// let found = cold.cold(Duration::from_secs(30), 10);
/// assert_eq!(found.len(), 1);
/// assert_eq!(&found[0].key[..], b"old");
/// ```
#[derive(Debug)]
pub struct ColdKeys {
    shards: Box<[ColdShard]>,
    per_shard: usize,
    hasher: RandomState,
    clock: Clock,
}

#[derive(Debug, Default)]
struct ColdShard {
    /// How many times this shard's sample has halved: a key is followed
    /// when its hash has at least this many leading zeros. Mirrored outside
    /// the mutex so that keys outside the sample are turned away without
    /// locking.
    level: AtomicU32,
    keys: Mutex<HashMap<Bytes, Tracked, RandomState>>,
}

#[derive(Clone, Copy, Debug)]
struct Tracked {
    hash: u64,
    last_touch_ms: u64,
}

impl ColdKeys {
    /// Follows at most `capacity` keys (at least one per shard), reading
    /// touch times from `clock`.
    pub fn new(capacity: usize, clock: Clock) -> Self {
        let shards = shard_count();
        ColdKeys {
            shards: (0..shards).map(|_| ColdShard::default()).collect(),
            per_shard: capacity.div_ceil(shards).max(1),
            hasher: RandomState::default(),
            clock,
        }
    }

    fn locate(&self, key: &[u8]) -> (u64, &ColdShard) {
        let hash = self.hasher.hash_one(key);
        // The low bits pick the shard and the high bits decide sampling, so
        // the two choices are independent.
        let shard = &self.shards[(hash as usize) % self.shards.len()];
        (hash, shard)
    }

    /// Records that `key` was touched now.
    pub fn touch(&self, key: &[u8]) {
        let (hash, shard) = self.locate(key);
        if hash.leading_zeros() < shard.level.load(Ordering::Relaxed) {
            return;
        }
        let now = self.clock.now_ms();
        let mut keys = shard.keys.lock();
        if let Some(tracked) = keys.get_mut(key) {
            tracked.last_touch_ms = tracked.last_touch_ms.max(now);
            return;
        }
        let mut level = shard.level.load(Ordering::Relaxed);
        while keys.len() >= self.per_shard && level < u64::BITS {
            level += 1;
            keys.retain(|_, t| t.hash.leading_zeros() >= level);
        }
        shard.level.store(level, Ordering::Relaxed);
        if hash.leading_zeros() >= level && keys.len() < self.per_shard {
            let tracked = Tracked {
                hash,
                last_touch_ms: now,
            };
            keys.insert(Bytes::copy_from_slice(key), tracked);
        }
    }

    /// Stops following `key`, which is gone from the tier.
    pub fn forget(&self, key: &[u8]) {
        let (_, shard) = self.locate(key);
        shard.keys.lock().remove(key);
    }

    /// Forgets every key and widens the sample back to all keys.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut keys = shard.keys.lock();
            keys.clear();
            shard.level.store(0, Ordering::Relaxed);
        }
    }

    /// The number of keys followed.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.keys.lock().len()).sum()
    }

    /// The share of touched keys that are followed: 1 until the sample
    /// first fills, then halving (the average over the shards).
    pub fn sampled_fraction(&self) -> f64 {
        let sum: f64 = self
            .shards
            .iter()
            .map(|s| 0.5f64.powi(s.level.load(Ordering::Relaxed) as i32))
            .sum();
        sum / self.shards.len() as f64
    }

    /// Up to `limit` followed keys last touched `window` or longer ago,
    /// coldest first.
    pub fn cold(&self, window: Duration, limit: usize) -> Vec<ColdKey> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let now = self.clock.now_ms();
        let mut found: Vec<ColdKey> = Vec::new();
        for shard in &self.shards {
            let keys = shard.keys.lock();
            found.extend(
                keys.iter()
                    .filter(|(_, t)| now.saturating_sub(t.last_touch_ms) >= window_ms)
                    .map(|(key, t)| ColdKey {
                        key: key.clone(),
                        last_touch_ms: t.last_touch_ms,
                    }),
            );
        }
        coldest_first(found, limit)
    }
}

/// The `limit` coldest of `found`: least recently touched first, ties by
/// key.
pub(crate) fn coldest_first(mut found: Vec<ColdKey>, limit: usize) -> Vec<ColdKey> {
    found.sort_by(|a, b| {
        a.last_touch_ms
            .cmp(&b.last_touch_ms)
            .then_with(|| a.key.cmp(&b.key))
    });
    found.truncate(limit);
    found
}

#[cfg(test)]
mod tests {
    use cache_core::ManualClock;

    use super::*;

    #[test]
    fn the_sample_stays_within_capacity_and_keeps_touching_its_keys() {
        let clock = ManualClock::new(0);
        let cold = ColdKeys::new(100, clock.clock());
        for i in 0..10_000u32 {
            cold.touch(&i.to_le_bytes());
        }
        let tracked = cold.tracked();
        assert!(tracked <= 100 + cold.shards.len(), "{tracked} followed");
        assert!(tracked > 0);
        assert!(cold.sampled_fraction() < 0.05);
        // Every key still followed is touched again later, so none is cold.
        clock.advance(Duration::from_secs(10));
        for i in 0..10_000u32 {
            cold.touch(&i.to_le_bytes());
        }
        assert!(cold.cold(Duration::from_secs(5), usize::MAX).is_empty());
    }

    #[test]
    fn forgotten_and_cleared_keys_are_not_reported() {
        let clock = ManualClock::new(0);
        let cold = ColdKeys::new(64, clock.clock());
        cold.touch(b"a");
        cold.touch(b"b");
        cold.forget(b"a");
        clock.advance(Duration::from_secs(1));
        let keys: Vec<_> = cold
            .cold(Duration::ZERO, 10)
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, [Bytes::from_static(b"b")]);
        cold.clear();
        assert_eq!(cold.tracked(), 0);
        assert_eq!(cold.sampled_fraction(), 1.0);
    }
}
