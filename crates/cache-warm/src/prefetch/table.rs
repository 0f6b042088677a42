//! One shard of the successor table: for each learned key (by hash), the
//! keys seen to follow it and how often.
//!
//! **Counting.** A node holds the key's `total` (transitions out of it) and
//! up to `per_node` candidates `(successor, count)`. A new successor takes a
//! free candidate slot; when none is free, every candidate's count is
//! decremented and the new successor is not recorded (the Misra–Gries
//! frequent-items scheme). So a count never exceeds the true number of
//! times its successor followed, and undercounts it by at most
//! `total / (per_node + 1)`: a successor that follows often cannot be
//! pushed out by a stream of one-off successors, and `count / total` is a
//! conservative estimate of its probability.
//!
//! **Aging.** The shard counts the transitions it learns; every `period` of
//! them it starts a new epoch. A node records the epoch it was last brought
//! up to date in, and when it is next touched its counts are halved once for
//! each epoch it missed. Old habits so fade by half every `period`
//! transitions without a sweep over the table, a changed sequence is
//! relearned, and successors of keys that stopped being read fall below the
//! minimum count.
//!
//! **Eviction.** The shard holds at most `capacity` nodes in a slab. When a
//! new key needs a node and the slab is full, the node with the smallest
//! (aged) total among `SAMPLE` slots spread from a rotating hand is
//! replaced: nodes that are learned from often, or were until recently,
//! survive, while the one-off keys of a scan or of a workload without
//! sequence replace one another.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::mem::size_of;

use super::prehashed::Prehashed;
use crate::PrefetchSettings;

/// How many slots an eviction compares.
const SAMPLE: usize = 8;

/// The largest shift a `u32` count can take; a node that missed more
/// epochs than this has every count at zero.
const MAX_SHIFT: u32 = 31;

/// The estimated bytes one learned key costs in a shard's index map: its
/// `(hash, slot)` entry and control byte, doubled because the map's bucket
/// count is rounded up to a power of two and kept below 7/8 full.
const INDEX_BYTES: usize = 2 * (size_of::<(u64, u32)>() + 1);

/// A successor of a learned key.
struct Candidate<K> {
    key: K,
    hash: u64,
    count: u32,
}

/// A learned key: its hash, its transitions out, and the epoch its counts
/// were last aged to. Its candidates are stored apart, in the shard's
/// `candidates` slab, so that nodes stay small and contiguous.
struct Node {
    hash: u64,
    total: u32,
    epoch: u32,
}

/// The estimated bytes a learned key with `per_node` candidates costs: its
/// node, its candidate slots and its index entry. Keys that own heap memory
/// (a `String`'s characters) cost that memory on top.
pub(super) fn bytes_per_key<K>(per_node: usize) -> usize {
    size_of::<Node>() + per_node * size_of::<Option<Candidate<K>>>() + INDEX_BYTES
}

/// One shard of the successor table.
pub(super) struct SuccessorTable<K> {
    index: HashMap<u64, u32, Prehashed>,
    nodes: Vec<Node>,
    /// `per_node` slots for each node, in node order.
    candidates: Vec<Option<Candidate<K>>>,
    per_node: usize,
    capacity: usize,
    hand: usize,
    epoch: u32,
    ticks: u32,
    period: u32,
}

impl<K: Clone> SuccessorTable<K> {
    /// A shard of at most `capacity` nodes with `per_node` candidates each,
    /// halving its counts every `period` learned transitions.
    pub(super) fn new(capacity: usize, per_node: usize, period: u32) -> Self {
        debug_assert!(capacity >= 1 && (1..=PrefetchSettings::MAX_CANDIDATES).contains(&per_node));
        SuccessorTable {
            index: HashMap::with_capacity_and_hasher(capacity, Prehashed::default()),
            // The slabs are reserved whole so that filling them never
            // reallocates (nor overshoots the memory bound by doubling).
            nodes: Vec::with_capacity(capacity),
            candidates: Vec::with_capacity(capacity * per_node),
            per_node,
            capacity,
            hand: 0,
            epoch: 0,
            ticks: 0,
            period: period.max(1),
        }
    }

    /// How many keys the shard has learned successors for.
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Records that `next` (whose hash is `next_hash`) followed the key
    /// whose hash is `prev`.
    pub(super) fn learn(&mut self, prev: u64, next_hash: u64, next: &K) {
        self.tick();
        let slot = match self.index.get(&prev) {
            Some(&slot) => slot as usize,
            None => self.insert(prev),
        };
        self.age(slot);
        let node = &mut self.nodes[slot];
        node.total = node.total.saturating_add(1);
        let candidates = &mut self.candidates[slot * self.per_node..][..self.per_node];
        let mut free = None;
        for (i, candidate) in candidates.iter_mut().enumerate() {
            match candidate {
                Some(c) if c.hash == next_hash => {
                    c.count = c.count.saturating_add(1);
                    return;
                }
                None if free.is_none() => free = Some(i),
                _ => {}
            }
        }
        if let Some(i) = free {
            candidates[i] = Some(Candidate {
                key: next.clone(),
                hash: next_hash,
                count: 1,
            });
            return;
        }
        for candidate in candidates.iter_mut() {
            if let Some(c) = candidate {
                c.count -= 1;
                if c.count == 0 {
                    *candidate = None;
                }
            }
        }
    }

    /// The successors of the key whose hash is `hash` that followed it at
    /// least `min_count` times and in at least `threshold` of its
    /// transitions, most frequent first; `None` when there are none.
    pub(super) fn likely(
        &mut self,
        hash: u64,
        threshold: f64,
        min_count: u32,
    ) -> Option<Predictions<K>> {
        let slot = *self.index.get(&hash)? as usize;
        self.age(slot);
        let total = self.nodes[slot].total;
        let passes = |c: &&Candidate<K>| {
            c.count >= min_count && f64::from(c.count) >= threshold * f64::from(total)
        };
        let candidates = &self.candidates[slot * self.per_node..][..self.per_node];
        // Most lookups predict nothing; they return here without building
        // (or cloning into) the result.
        if !candidates.iter().flatten().any(|c| passes(&c)) {
            return None;
        }
        let mut predictions = Predictions::new(total);
        for c in candidates.iter().flatten().filter(passes) {
            predictions.push(c.key.clone(), c.hash, c.count);
        }
        predictions.sort();
        Some(predictions)
    }

    /// Counts one learned transition, starting a new epoch every `period`.
    fn tick(&mut self) {
        self.ticks += 1;
        if self.ticks >= self.period {
            self.ticks = 0;
            self.epoch = self.epoch.wrapping_add(1);
        }
    }

    /// How far behind the shard's epoch a node is, capped where every count
    /// would be zero.
    fn missed_epochs(&self, node: &Node) -> u32 {
        self.epoch.wrapping_sub(node.epoch).min(MAX_SHIFT + 1)
    }

    /// Brings the node in `slot` up to the current epoch by halving its
    /// counts once per epoch missed, dropping candidates that reach zero.
    fn age(&mut self, slot: usize) {
        let shift = self.missed_epochs(&self.nodes[slot]);
        if shift == 0 {
            return;
        }
        let node = &mut self.nodes[slot];
        node.epoch = self.epoch;
        node.total = node.total.checked_shr(shift).unwrap_or(0);
        for candidate in &mut self.candidates[slot * self.per_node..][..self.per_node] {
            if let Some(c) = candidate {
                c.count = c.count.checked_shr(shift).unwrap_or(0);
                if c.count == 0 {
                    *candidate = None;
                }
            }
        }
    }

    /// Gives the key whose hash is `hash` an empty node, evicting one if the
    /// shard is full, and returns its slot.
    fn insert(&mut self, hash: u64) -> usize {
        let node = Node {
            hash,
            total: 0,
            epoch: self.epoch,
        };
        let slot = if self.nodes.len() < self.capacity {
            self.nodes.push(node);
            self.candidates
                .extend(std::iter::repeat_with(|| None).take(self.per_node));
            self.nodes.len() - 1
        } else {
            let slot = self.victim();
            self.index.remove(&self.nodes[slot].hash);
            self.nodes[slot] = node;
            self.candidates[slot * self.per_node..][..self.per_node].fill_with(|| None);
            slot
        };
        // The slab never exceeds `capacity`, which the settings keep far
        // below `u32::MAX` (it is a memory budget divided by ~100 bytes).
        self.index.insert(hash, slot as u32);
        slot
    }

    /// The slot with the smallest aged total among a few spread across the
    /// slab. The sampled slots are a stride apart (not adjacent) because
    /// nodes learned at the same time sit side by side: an adjacent sample
    /// could hold only the strong keys learned first and evict one of them.
    fn victim(&mut self) -> usize {
        let len = self.nodes.len();
        let sample = SAMPLE.min(len);
        let stride = len / sample;
        let start = self.hand % len;
        self.hand = self.hand.wrapping_add(1);
        (0..sample)
            .map(|i| (start + i * stride) % len)
            .min_by_key(|&slot| {
                let node = &self.nodes[slot];
                node.total
                    .checked_shr(self.missed_epochs(node))
                    .unwrap_or(0)
            })
            .unwrap_or(start)
    }
}

/// The likely successors of one key, kept on the stack so that a lookup
/// that predicts allocates nothing beyond the clones of the keys it
/// predicts.
pub(super) struct Predictions<K> {
    items: [Option<(K, u64, u32)>; PrefetchSettings::MAX_CANDIDATES],
    len: usize,
    total: u32,
}

impl<K> Predictions<K> {
    fn new(total: u32) -> Self {
        Predictions {
            items: Default::default(),
            len: 0,
            total,
        }
    }

    fn push(&mut self, key: K, hash: u64, count: u32) {
        self.items[self.len] = Some((key, hash, count));
        self.len += 1;
    }

    fn sort(&mut self) {
        self.items[..self.len]
            .sort_unstable_by_key(|item| Reverse(item.as_ref().map_or(0, |i| i.2)));
    }

    /// How many successors were predicted.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The predicted keys with their hashes and estimated probabilities,
    /// most likely first.
    pub(super) fn into_entries(self) -> impl Iterator<Item = (K, u64, f64)> {
        let total = f64::from(self.total.max(1));
        self.items
            .into_iter()
            .flatten()
            .map(move |(key, hash, count)| (key, hash, f64::from(count) / total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Transitions from key 1 in a shard that never ages.
    fn table(capacity: usize, per_node: usize) -> SuccessorTable<u64> {
        SuccessorTable::new(capacity, per_node, u32::MAX)
    }

    fn learn(t: &mut SuccessorTable<u64>, prev: u64, next: u64, times: usize) {
        for _ in 0..times {
            t.learn(prev, next, &next);
        }
    }

    fn predicted(
        t: &mut SuccessorTable<u64>,
        key: u64,
        threshold: f64,
        min_count: u32,
    ) -> Vec<(u64, f64)> {
        t.likely(key, threshold, min_count)
            .map(|p| p.into_entries().map(|(k, _, p)| (k, p)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn predicts_by_probability_and_minimum_count() {
        let mut t = table(4, 4);
        learn(&mut t, 1, 2, 6);
        learn(&mut t, 1, 3, 3);
        learn(&mut t, 1, 4, 1);
        assert_eq!(predicted(&mut t, 1, 0.25, 1), vec![(2, 0.6), (3, 0.3)]);
        assert_eq!(predicted(&mut t, 1, 0.1, 4), vec![(2, 0.6)]);
        assert_eq!(predicted(&mut t, 1, 0.7, 1), vec![]);
        assert!(t.likely(9, 0.1, 1).is_none());
    }

    #[test]
    fn one_off_successors_do_not_displace_a_frequent_one() {
        let mut t = table(4, 2);
        learn(&mut t, 1, 2, 10);
        // A hundred distinct successors, one each: with two slots, each
        // either takes the free slot or costs every count one.
        for next in 100..200 {
            learn(&mut t, 1, next, 1);
            learn(&mut t, 1, 2, 1);
        }
        let p = predicted(&mut t, 1, 0.0, 1);
        assert_eq!(p[0].0, 2);
        // Counts never overstate: 110 real transitions to 2 of 210.
        assert!(p[0].1 <= 110.0 / 210.0);
    }

    #[test]
    fn a_full_node_replaces_successors_after_decrementing_them() {
        let mut t = table(4, 2);
        learn(&mut t, 1, 2, 2);
        learn(&mut t, 1, 3, 2);
        // Two arrivals of 4 decrement 2 and 3 to zero; the third takes a slot.
        learn(&mut t, 1, 4, 3);
        assert_eq!(predicted(&mut t, 1, 0.0, 1), vec![(4, 1.0 / 7.0)]);
    }

    #[test]
    fn counts_halve_per_epoch_so_a_changed_sequence_is_relearned() {
        // A new epoch every 16 transitions.
        let mut t = SuccessorTable::new(4, 4, 16);
        learn(&mut t, 1, 2, 160);
        let before = predicted(&mut t, 1, 0.0, 1);
        assert_eq!(before, vec![(2, 1.0)]);
        learn(&mut t, 1, 3, 64);
        let after = predicted(&mut t, 1, 0.0, 1);
        assert_eq!(after[0].0, 3, "{after:?}");
        // Without the halvings, 2 would still lead 160 to 64.
        let mut unaged = table(4, 4);
        learn(&mut unaged, 1, 2, 160);
        learn(&mut unaged, 1, 3, 64);
        assert_eq!(predicted(&mut unaged, 1, 0.0, 1)[0].0, 2);
    }

    #[test]
    fn aging_is_applied_to_untouched_nodes_when_next_read() {
        let mut t = SuccessorTable::new(8, 4, 4);
        learn(&mut t, 1, 2, 8);
        // Sixteen transitions elsewhere: four epochs, so 8 >> 4 = 0.
        learn(&mut t, 5, 6, 16);
        assert!(t.likely(1, 0.0, 1).is_none());
    }

    #[test]
    fn the_shard_is_bounded_and_evicts_weak_nodes_first() {
        let mut t = table(16, 2);
        // Eight strong keys, then a scan of a thousand one-off keys.
        for key in 0..8 {
            learn(&mut t, key, key + 1000, 50);
        }
        for key in 10_000..11_000 {
            learn(&mut t, key, key + 1, 1);
            assert!(t.len() <= 16);
        }
        assert_eq!(t.len(), 16);
        for key in 0..8 {
            assert_eq!(
                predicted(&mut t, key, 0.5, 3),
                vec![(key + 1000, 1.0)],
                "key {key}"
            );
        }
    }

    #[test]
    fn a_shard_of_one_node_still_learns() {
        let mut t = table(1, 1);
        learn(&mut t, 1, 2, 3);
        learn(&mut t, 3, 4, 3);
        assert_eq!(t.len(), 1);
        assert_eq!(predicted(&mut t, 3, 0.5, 3), vec![(4, 1.0)]);
        assert!(t.likely(1, 0.0, 1).is_none());
    }

    #[test]
    fn bytes_per_key_counts_the_candidates() {
        let one = bytes_per_key::<u64>(1);
        let four = bytes_per_key::<u64>(4);
        assert_eq!(four - one, 3 * size_of::<Option<Candidate<u64>>>());
        assert!(bytes_per_key::<[u8; 64]>(4) > four);
    }
}
