//! The prefetched keys not yet read, followed to measure precision.
//!
//! A prefetched key is followed until it is read or until `bound` later
//! prefetches (of keys in the same shard) have been made, whichever comes
//! first; a key forgotten unread counts as unused. The order is a ring of
//! `(hash, sequence number)` in prefetch order and the live keys are a map
//! from hash to sequence number: a read removes the key from the map only,
//! and the ring's stale entry is skipped when it comes round. So both stay
//! within `bound` entries without any search of the ring.

use std::collections::{HashMap, VecDeque};

use super::prehashed::Prehashed;

/// The prefetched, unread keys of one shard.
pub(super) struct Tracker {
    live: HashMap<u64, u64, Prehashed>,
    order: VecDeque<(u64, u64)>,
    bound: usize,
    next: u64,
}

impl Tracker {
    /// A tracker following the last `bound` prefetches.
    pub(super) fn new(bound: usize) -> Self {
        let bound = bound.max(1);
        Tracker {
            live: HashMap::with_capacity_and_hasher(bound, Prehashed::default()),
            order: VecDeque::with_capacity(bound),
            bound,
            next: 0,
        }
    }

    /// Follows a key just prefetched, and returns how many prefetches were
    /// forgotten unread to make room (or because this key was prefetched
    /// again before its last prefetch was read, which means the cache
    /// dropped it unread).
    pub(super) fn insert(&mut self, hash: u64) -> u64 {
        let mut unused = 0;
        if self.order.len() == self.bound
            && let Some((old, seq)) = self.order.pop_front()
            && self.live.get(&old) == Some(&seq)
        {
            self.live.remove(&old);
            unused += 1;
        }
        let seq = self.next;
        self.next += 1;
        if self.live.insert(hash, seq).is_some() {
            unused += 1;
        }
        self.order.push_back((hash, seq));
        unused
    }

    /// A read of the key whose hash is `hash`: whether it was a prefetched
    /// key not read before (it is then no longer followed).
    pub(super) fn take(&mut self, hash: u64) -> bool {
        // Most reads find the map empty or without the key; neither case
        // touches the ring.
        !self.live.is_empty() && self.live.remove(&hash).is_some()
    }

    /// How many prefetched keys are followed.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_takes_a_followed_key_once() {
        let mut t = Tracker::new(4);
        assert_eq!(t.insert(1), 0);
        assert!(t.take(1));
        assert!(!t.take(1));
        assert!(!t.take(2));
    }

    #[test]
    fn the_oldest_unread_key_is_forgotten_past_the_bound() {
        let mut t = Tracker::new(3);
        for hash in 1..=3 {
            assert_eq!(t.insert(hash), 0);
        }
        assert_eq!(t.insert(4), 1);
        assert!(!t.take(1), "the oldest was forgotten");
        assert!(t.take(2) && t.take(3) && t.take(4));
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn read_keys_are_not_counted_when_their_turn_comes() {
        let mut t = Tracker::new(2);
        t.insert(1);
        assert!(t.take(1));
        t.insert(2);
        // The ring drops 1's stale entry; 1 was read, so nothing is unused.
        assert_eq!(t.insert(3), 0);
        assert!(t.len() <= 2);
    }

    #[test]
    fn prefetching_a_key_again_unread_counts_the_first_as_unused() {
        let mut t = Tracker::new(8);
        t.insert(1);
        assert_eq!(t.insert(1), 1);
        assert_eq!(t.len(), 1);
        // The earlier ring entry no longer matches and is not counted again.
        for hash in 10..17 {
            assert_eq!(t.insert(hash), 0, "hash {hash}");
        }
        assert!(t.take(1));
    }

    #[test]
    fn the_tracker_stays_bounded() {
        let mut t = Tracker::new(16);
        let mut unused = 0;
        for hash in 0..10_000 {
            unused += t.insert(hash);
            if hash % 3 == 0 {
                t.take(hash);
            }
            assert!(t.len() <= 16);
        }
        assert!(unused > 6_000);
    }
}
