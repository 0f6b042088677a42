//! One shard of the prefetcher's per-key state: the successor table for the
//! keys that hash to it, the prefetched-unread tracker for the same keys,
//! and the counters a lookup of those keys updates.
//!
//! Keeping the three under one lock means that a lookup takes a single
//! lock for everything it does about its own key (count it, check whether it
//! was prefetched, predict its successors), and that the counters, written
//! on every lookup, are spread over the shards rather than contended in one
//! place.

use super::table::{Predictions, SuccessorTable};
use super::tracker::Tracker;
use crate::PrefetchStats;

/// The state of the keys that hash to one shard.
///
/// It is aligned to 128 bytes so that two shards (and their locks, which
/// sit beside them in the shard array) never share a cache line, nor the
/// pair of lines x86 processors fetch together: lookups on different
/// threads then contend only when their keys share a shard.
#[repr(align(128))]
pub(super) struct Shard<K> {
    pub(super) table: SuccessorTable<K>,
    tracker: Tracker,
    observed: u64,
    misses: u64,
    predicted: u64,
    used: u64,
    unused: u64,
}

impl<K: Clone> Shard<K> {
    /// A shard of at most `capacity` learned keys with `per_node`
    /// successors each, aging every `period` transitions, following up to
    /// `tracked` prefetched keys.
    pub(super) fn new(capacity: usize, per_node: usize, period: u32, tracked: usize) -> Self {
        Shard {
            table: SuccessorTable::new(capacity, per_node, period),
            tracker: Tracker::new(tracked),
            observed: 0,
            misses: 0,
            predicted: 0,
            used: 0,
            unused: 0,
        }
    }

    /// Counts a lookup of the key whose hash is `hash`, and returns its
    /// likely successors.
    pub(super) fn read(
        &mut self,
        hash: u64,
        hit: bool,
        threshold: f64,
        min_count: u32,
    ) -> Option<Predictions<K>> {
        self.observed += 1;
        if !hit {
            self.misses += 1;
        }
        if self.tracker.take(hash) {
            // A prefetched key read as a miss was evicted before its use.
            if hit {
                self.used += 1;
            } else {
                self.unused += 1;
            }
        }
        let predictions = self.table.likely(hash, threshold, min_count)?;
        self.predicted += predictions.len() as u64;
        Some(predictions)
    }

    /// Follows a key just prefetched into the cache.
    pub(super) fn prefetched(&mut self, hash: u64) {
        self.unused += self.tracker.insert(hash);
    }

    /// Adds the shard's counters to `stats`.
    pub(super) fn add_to(&self, stats: &mut PrefetchStats) {
        stats.observed += self.observed;
        stats.misses += self.misses;
        stats.predicted += self.predicted;
        stats.used += self.used;
        stats.unused += self.unused;
        stats.learned_keys += self.table.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetched_key_counts_used_on_a_hit_and_unused_on_a_miss() {
        let mut shard: Shard<u64> = Shard::new(8, 4, 1000, 8);
        shard.prefetched(1);
        shard.prefetched(2);
        assert!(shard.read(1, true, 0.5, 1).is_none());
        shard.read(2, false, 0.5, 1);
        // Read again: no longer followed, so counted neither way.
        shard.read(1, true, 0.5, 1);
        let mut stats = PrefetchStats::default();
        shard.add_to(&mut stats);
        assert_eq!((stats.observed, stats.misses), (3, 1));
        assert_eq!((stats.used, stats.unused), (1, 1));
    }

    #[test]
    fn reads_return_and_count_predictions() {
        let mut shard: Shard<u64> = Shard::new(8, 4, 1000, 8);
        for _ in 0..3 {
            shard.table.learn(1, 2, &2);
        }
        let p: Vec<_> = shard
            .read(1, true, 0.5, 3)
            .unwrap()
            .into_entries()
            .collect();
        assert_eq!(p, vec![(2, 2, 1.0)]);
        let mut stats = PrefetchStats::default();
        shard.add_to(&mut stats);
        assert_eq!((stats.predicted, stats.learned_keys), (1, 1));
    }
}
