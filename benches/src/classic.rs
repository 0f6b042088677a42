//! Classic eviction policies from the literature, at exact capacity: ARC
//! and LIRS, as reference points beside the peer crates.
//!
//! Both keep their lists in one `Slab` of index-linked nodes, as [`Lru`]
//! does, so that every access is O(1) (LIRS's bound on non-resident entries
//! adds an O(log n) ordered map).
//!
//! [`Lru`]: crate::Lru

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::FixedState;

use crate::Policy;
use crate::slab::{List, NIL, Slab};

/// The largest capacity either policy accepts: its nodes (ghosts and
/// non-resident entries included) must fit the slab's `u32` indices.
const MAX_CAPACITY: usize = (NIL / 8) as usize;

/// The four lists of [`Arc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArcList {
    /// Resident, seen once since it (re)entered the cache.
    T1,
    /// Resident, seen at least twice.
    T2,
    /// Ghost: recently evicted from `T1`.
    B1,
    /// Ghost: recently evicted from `T2`.
    B2,
}

/// A key of [`Arc`] and the list it is in.
#[derive(Debug, Clone, Copy)]
struct ArcNode {
    key: u64,
    list: ArcList,
}

/// ARC, the Adaptive Replacement Cache (Megiddo & Modha, FAST '03), over
/// `u64` keys (no values: the simulator only counts hits). Not to be
/// confused with `std::sync::Arc`.
///
/// Resident keys are split between `T1` (seen once recently) and `T2`
/// (seen at least twice); the ghost lists `B1` and `B2` remember as many
/// keys again, evicted from `T1` and `T2`. A hit in a ghost list moves the
/// target size `p` of `T1` (a real number) towards the list that would have
/// hit: up by max(1, |B2|/|B1|) on a `B1` hit, down by max(1, |B1|/|B2|) on a
/// `B2` hit. Every list is ordered most recently used first, and the cache
/// never holds more than its capacity.
#[derive(Debug)]
pub struct Arc {
    capacity: usize,
    /// `p`: the target size of `T1`, in `0.0..=capacity`.
    target: f64,
    slots: HashMap<u64, u32, FixedState>,
    slab: Slab<ArcNode>,
    /// `T1`, `T2`, `B1`, `B2`, indexed by [`ArcList`].
    lists: [List; 4],
}

impl Arc {
    /// An empty ARC holding at most `capacity` keys (and remembering as
    /// many evicted ones).
    ///
    /// # Panics
    ///
    /// If `capacity` is above 536,870,910, too many for the slab's `u32`
    /// indices.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity <= MAX_CAPACITY, "capacity {capacity} is too large");
        Self {
            capacity,
            target: 0.0,
            slots: HashMap::with_capacity_and_hasher(2 * capacity, FixedState::default()),
            slab: Slab::new(),
            lists: [List::EMPTY; 4],
        }
    }

    /// The number of resident keys (`T1` and `T2`).
    pub fn len(&self) -> usize {
        self.list(ArcList::T1).len + self.list(ArcList::T2).len
    }

    /// Whether no key is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of evicted keys remembered (`B1` and `B2`).
    pub fn ghosts(&self) -> usize {
        self.list(ArcList::B1).len + self.list(ArcList::B2).len
    }

    /// Whether `key` is resident, so that accessing it would hit.
    pub fn contains(&self, key: u64) -> bool {
        self.slots
            .get(&key)
            .is_some_and(|&slot| matches!(self.slab.get(slot).list, ArcList::T1 | ArcList::T2))
    }

    /// `p`, the adaptive target size of `T1`.
    pub fn target(&self) -> f64 {
        self.target
    }

    fn list(&self, which: ArcList) -> &List {
        &self.lists[which as usize]
    }

    /// Moves `slot` to the most recently used end of `to`.
    fn move_to(&mut self, slot: u32, to: ArcList) {
        let from = self.slab.get(slot).list;
        self.slab.unlink(&mut self.lists[from as usize], slot);
        self.slab.get_mut(slot).list = to;
        self.slab.push_front(&mut self.lists[to as usize], slot);
    }

    /// Forgets the least recently used key of `which` altogether.
    fn delete_lru(&mut self, which: ArcList) {
        let slot = self.list(which).tail;
        self.slab.unlink(&mut self.lists[which as usize], slot);
        self.slots.remove(&self.slab.get(slot).key);
        self.slab.release(slot);
    }

    /// The paper's REPLACE: evicts the least recently used key of `T1` into
    /// `B1` if `T1` is over its target (or at it, when the request hit
    /// `B2`), else that of `T2` into `B2`. Called only when the cache is
    /// full.
    fn replace(&mut self, hit_b2: bool) {
        let t1 = self.list(ArcList::T1).len;
        let over = t1 as f64 > self.target || (hit_b2 && t1 as f64 == self.target);
        if t1 > 0 && (over || self.list(ArcList::T2).len == 0) {
            self.move_to(self.list(ArcList::T1).tail, ArcList::B1);
        } else {
            self.move_to(self.list(ArcList::T2).tail, ArcList::B2);
        }
    }
}

impl Policy for Arc {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&slot) = self.slots.get(&key) {
            let b1 = self.list(ArcList::B1).len as f64;
            let b2 = self.list(ArcList::B2).len as f64;
            let c = self.capacity as f64;
            return match self.slab.get(slot).list {
                ArcList::T1 | ArcList::T2 => {
                    self.move_to(slot, ArcList::T2);
                    true
                }
                ArcList::B1 => {
                    self.target = (self.target + (b2 / b1).max(1.0)).min(c);
                    self.replace(false);
                    self.move_to(slot, ArcList::T2);
                    false
                }
                ArcList::B2 => {
                    self.target = (self.target - (b1 / b2).max(1.0)).max(0.0);
                    self.replace(true);
                    self.move_to(slot, ArcList::T2);
                    false
                }
            };
        }
        if self.capacity == 0 {
            return false;
        }
        let [t1, t2, b1, b2] = self.lists.map(|l| l.len);
        if t1 + b1 == self.capacity {
            if t1 < self.capacity {
                self.delete_lru(ArcList::B1);
                self.replace(false);
            } else {
                self.delete_lru(ArcList::T1);
            }
        } else if t1 + t2 + b1 + b2 >= self.capacity {
            if t1 + t2 + b1 + b2 == 2 * self.capacity {
                self.delete_lru(ArcList::B2);
            }
            self.replace(false);
        }
        let slot = self.slab.insert(ArcNode {
            key,
            list: ArcList::T1,
        });
        self.slab
            .push_front(&mut self.lists[ArcList::T1 as usize], slot);
        self.slots.insert(key, slot);
        false
    }
}

/// The share of [`Lirs`]'s capacity given to resident HIR entries, in
/// percent (rounded, at least one entry).
const LIRS_HIR_PERCENT: usize = 1;

/// How many non-resident HIR entries [`Lirs`] keeps in its stack, as a
/// multiple of its capacity.
const LIRS_NON_RESIDENT_FACTOR: usize = 3;

/// The status of a key [`Lirs`] knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Low inter-reference recency: resident, in the stack.
    Lir,
    /// High inter-reference recency, resident: in the queue, and in the
    /// stack if seen recently enough.
    HirResident,
    /// High inter-reference recency, evicted but still in the stack.
    HirNonResident,
}

/// What [`Lirs`] knows of a key.
#[derive(Debug, Clone, Copy)]
struct LirsEntry {
    status: Status,
    /// Its node in the stack, or `NIL`.
    stack: u32,
    /// Its node in the queue of resident HIR entries, or `NIL`.
    queue: u32,
    /// When it last moved to the top of the stack: orders non-resident
    /// entries by their place in the stack.
    last_access: u64,
}

/// LIRS, the Low Inter-reference Recency Set policy (Jiang & Zhang,
/// SIGMETRICS '02), over `u64` keys (no values: the simulator only counts
/// hits).
///
/// The stack `S` holds the keys by recency down to the least recent LIR
/// key (it is pruned whenever that bottom key moves); the queue `Q` holds
/// the resident HIR keys, the next victim at its front. 1 % of the capacity
/// (rounded, at least one entry) is for resident HIR keys, the rest for LIR
/// keys. A HIR key seen again while still in `S` has a shorter reuse
/// distance than the bottom LIR key, so it turns LIR and the bottom LIR key
/// moves to the end of `Q`. Evicted HIR keys stay in `S` as non-resident
/// entries, at most 3 × capacity of them: beyond that the one lowest in the
/// stack (accessed longest ago) is forgotten. The cache never holds more
/// than its capacity.
#[derive(Debug)]
pub struct Lirs {
    capacity: usize,
    /// The most LIR keys: the capacity less the HIR share.
    lir_capacity: usize,
    /// The most non-resident HIR entries kept in the stack.
    non_resident_limit: usize,
    lir_len: usize,
    /// Counts moves to the top of the stack, for `last_access`.
    clock: u64,
    entries: HashMap<u64, LirsEntry, FixedState>,
    slab: Slab<u64>,
    /// `S`: most recent at the head (top), the bottom at the tail.
    stack: List,
    /// `Q`: the next victim at the head, the newest at the tail.
    queue: List,
    /// The non-resident entries by `last_access`, lowest in the stack first.
    non_resident: BTreeMap<u64, u64>,
}

impl Lirs {
    /// An empty LIRS holding at most `capacity` keys. With one entry of
    /// capacity there is no room for a LIR key and every key is HIR: it
    /// keeps the last key requested.
    ///
    /// # Panics
    ///
    /// If `capacity` is above 536,870,910, too many for the slab's `u32`
    /// indices.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity <= MAX_CAPACITY, "capacity {capacity} is too large");
        let hir = ((capacity * LIRS_HIR_PERCENT + 50) / 100).max(1);
        Self {
            capacity,
            lir_capacity: capacity.saturating_sub(hir),
            non_resident_limit: LIRS_NON_RESIDENT_FACTOR * capacity,
            lir_len: 0,
            clock: 0,
            entries: HashMap::with_capacity_and_hasher(capacity, FixedState::default()),
            slab: Slab::new(),
            stack: List::EMPTY,
            queue: List::EMPTY,
            non_resident: BTreeMap::new(),
        }
    }

    /// The number of resident keys (LIR and resident HIR).
    pub fn len(&self) -> usize {
        self.lir_len + self.queue.len
    }

    /// Whether no key is resident.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of evicted HIR keys remembered in the stack.
    pub fn non_resident(&self) -> usize {
        self.non_resident.len()
    }

    /// Whether `key` is resident, so that accessing it would hit.
    pub fn contains(&self, key: u64) -> bool {
        self.entries
            .get(&key)
            .is_some_and(|e| e.status != Status::HirNonResident)
    }

    fn entry_mut(&mut self, key: u64) -> &mut LirsEntry {
        self.entries.get_mut(&key).expect("the key has an entry")
    }

    /// Moves `key`, which has an entry, to the top of the stack, adding it
    /// to the stack if it is not there.
    fn move_to_top(&mut self, key: u64) {
        self.clock += 1;
        let clock = self.clock;
        let entry = self.entry_mut(key);
        entry.last_access = clock;
        let slot = entry.stack;
        if slot == NIL {
            let slot = self.slab.insert(key);
            self.slab.push_front(&mut self.stack, slot);
            self.entry_mut(key).stack = slot;
        } else {
            self.slab.unlink(&mut self.stack, slot);
            self.slab.push_front(&mut self.stack, slot);
        }
    }

    /// Removes HIR entries from the bottom of the stack until a LIR key is
    /// at the bottom, forgetting the non-resident ones.
    fn prune(&mut self) {
        while self.stack.tail != NIL {
            let slot = self.stack.tail;
            let key = self.slab.get(slot);
            let entry = self.entries[&key];
            if entry.status == Status::Lir {
                break;
            }
            self.slab.unlink(&mut self.stack, slot);
            self.slab.release(slot);
            if entry.status == Status::HirNonResident {
                self.entries.remove(&key);
                self.non_resident.remove(&entry.last_access);
            } else {
                self.entry_mut(key).stack = NIL;
            }
        }
    }

    /// Turns the LIR key at the bottom of the stack into a resident HIR key
    /// at the end of the queue, then prunes the stack.
    fn demote_bottom(&mut self) {
        let slot = self.stack.tail;
        let key = self.slab.get(slot);
        self.slab.unlink(&mut self.stack, slot);
        self.slab.release(slot);
        let queued = self.slab.insert(key);
        self.slab.push_back(&mut self.queue, queued);
        let entry = self.entry_mut(key);
        debug_assert_eq!(entry.status, Status::Lir);
        entry.status = Status::HirResident;
        entry.stack = NIL;
        entry.queue = queued;
        self.lir_len -= 1;
        self.prune();
    }

    /// If the cache is full, evicts the resident HIR key at the front of
    /// the queue: it stays in the stack as non-resident if it is there.
    fn evict_if_full(&mut self) {
        if self.len() < self.capacity {
            return;
        }
        let slot = self.queue.head;
        let key = self.slab.get(slot);
        self.slab.unlink(&mut self.queue, slot);
        self.slab.release(slot);
        let entry = self.entry_mut(key);
        entry.queue = NIL;
        if entry.stack == NIL {
            self.entries.remove(&key);
        } else {
            entry.status = Status::HirNonResident;
            let last_access = entry.last_access;
            self.non_resident.insert(last_access, key);
        }
    }

    /// Forgets the non-resident entries lowest in the stack until at most
    /// the limit remain.
    fn bound_non_resident(&mut self) {
        while self.non_resident.len() > self.non_resident_limit {
            let (_, key) = self
                .non_resident
                .pop_first()
                .expect("over the limit, so not empty");
            let entry = self.entries.remove(&key).expect("the key has an entry");
            self.slab.unlink(&mut self.stack, entry.stack);
            self.slab.release(entry.stack);
        }
    }

    /// Makes `key`, which has an entry but is not in the queue, a resident
    /// HIR key at the end of the queue and the top of the stack.
    fn enqueue_hir(&mut self, key: u64) {
        let slot = self.slab.insert(key);
        self.slab.push_back(&mut self.queue, slot);
        let entry = self.entry_mut(key);
        entry.status = Status::HirResident;
        entry.queue = slot;
        self.move_to_top(key);
    }

    /// Makes `key`, which has an entry but is not in the queue, a LIR key at
    /// the top of the stack, and the bottom LIR key a resident HIR one.
    fn promote(&mut self, key: u64) {
        self.entry_mut(key).status = Status::Lir;
        self.lir_len += 1;
        self.move_to_top(key);
        self.demote_bottom();
    }
}

impl Policy for Lirs {
    fn access(&mut self, key: u64) -> bool {
        if self.capacity == 0 {
            return false;
        }
        let Some(&entry) = self.entries.get(&key) else {
            if self.lir_len < self.lir_capacity {
                // Warming up: the first keys fill the LIR set.
                self.entries.insert(
                    key,
                    LirsEntry {
                        status: Status::Lir,
                        stack: NIL,
                        queue: NIL,
                        last_access: 0,
                    },
                );
                self.lir_len += 1;
                self.move_to_top(key);
            } else {
                self.evict_if_full();
                self.entries.insert(
                    key,
                    LirsEntry {
                        status: Status::HirResident,
                        stack: NIL,
                        queue: NIL,
                        last_access: 0,
                    },
                );
                self.enqueue_hir(key);
                self.bound_non_resident();
            }
            return false;
        };
        match entry.status {
            Status::Lir => {
                self.move_to_top(key);
                self.prune();
                true
            }
            Status::HirResident => {
                if entry.stack != NIL && self.lir_capacity > 0 {
                    self.slab.unlink(&mut self.queue, entry.queue);
                    self.slab.release(entry.queue);
                    self.entry_mut(key).queue = NIL;
                    self.promote(key);
                } else {
                    self.move_to_top(key);
                    self.slab.unlink(&mut self.queue, entry.queue);
                    self.slab.push_back(&mut self.queue, entry.queue);
                }
                true
            }
            Status::HirNonResident => {
                self.evict_if_full();
                self.non_resident.remove(&entry.last_access);
                if self.lir_capacity > 0 {
                    self.promote(key);
                } else {
                    self.enqueue_hir(key);
                }
                self.bound_non_resident();
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Lru, zipf_keys};

    /// A skewed popular set with a scan mixed in, over `len` requests.
    fn mixed_trace(len: usize) -> Vec<u64> {
        zipf_keys(500, 0.9, len, 7)
            .into_iter()
            .enumerate()
            .map(|(i, k)| if i % 5 == 0 { 1_000_000 + i as u64 } else { k })
            .collect()
    }

    #[test]
    fn arc_never_exceeds_its_capacity_and_hits_only_resident_keys() {
        let keys = mixed_trace(20_000);
        for capacity in [0, 1, 2, 3, 10, 100] {
            let mut arc = Arc::new(capacity);
            let mut hits = 0;
            for &key in &keys {
                let resident = arc.contains(key);
                assert_eq!(arc.access(key), resident, "capacity {capacity}");
                hits += u64::from(resident);
                assert!(arc.len() <= capacity, "capacity {capacity}");
                assert!(arc.len() + arc.ghosts() <= 2 * capacity);
                assert!((0.0..=capacity as f64).contains(&arc.target()));
            }
            assert_eq!(arc.len(), capacity, "a full cache at capacity {capacity}");
            assert!(capacity == 0 || hits > 0, "capacity {capacity}");
        }
    }

    #[test]
    fn lirs_never_exceeds_its_capacity_and_hits_only_resident_keys() {
        let keys = mixed_trace(20_000);
        for capacity in [0, 1, 2, 3, 10, 100] {
            let mut lirs = Lirs::new(capacity);
            let mut hits = 0;
            for &key in &keys {
                let resident = lirs.contains(key);
                assert_eq!(lirs.access(key), resident, "capacity {capacity}");
                hits += u64::from(resident);
                assert!(lirs.len() <= capacity, "capacity {capacity}");
                assert!(lirs.non_resident() <= 3 * capacity);
                assert!(lirs.stack.len <= lirs.entries.len());
            }
            assert_eq!(lirs.len(), capacity, "a full cache at capacity {capacity}");
            assert!(capacity == 0 || hits > 0, "capacity {capacity}");
        }
    }

    #[test]
    fn arc_follows_a_hand_traced_sequence() {
        let mut arc = Arc::new(2);
        // Hand-computed: (key, hit, p after the access).
        let steps: [(u64, bool, f64); 10] = [
            (1, false, 0.0), // T1 [1]
            (2, false, 0.0), // T1 [2 1]
            (1, true, 0.0),  // T1 [2], T2 [1]
            (3, false, 0.0), // T1 [3], T2 [1], B1 [2]
            (2, false, 1.0), // B1 hit: T1 [3], T2 [2], B2 [1]
            (1, false, 0.0), // B2 hit: T2 [1 2], B1 [3]
            (2, true, 0.0),  // T2 [2 1], B1 [3]
            (4, false, 0.0), // T1 [4], T2 [2], B1 [3], B2 [1]
            (3, false, 1.0), // B1 hit: T1 [4], T2 [3], B2 [2 1]
            (5, false, 1.0), // forgets 1: T1 [5 4], B2 [3 2]
        ];
        for (i, &(key, hit, target)) in steps.iter().enumerate() {
            assert_eq!(arc.access(key), hit, "step {i}: key {key}");
            assert_eq!(arc.target(), target, "step {i}: key {key}");
        }
        assert!(arc.contains(5) && arc.contains(4));
        assert_eq!((arc.len(), arc.ghosts()), (2, 2));
        assert!(!arc.access(1), "1 was forgotten, not a ghost");
    }

    #[test]
    fn lirs_follows_a_hand_traced_sequence() {
        // Capacity 3: two LIR entries, one resident HIR.
        let mut lirs = Lirs::new(3);
        let steps: [(u64, bool); 10] = [
            (1, false), // LIR; S [1]
            (2, false), // LIR; S [2 1]
            (3, false), // HIR; S [3 2 1], Q [3]
            (4, false), // evicts 3 (non-resident); S [4 3 2 1], Q [4]
            (3, false), // evicts 4; 3 turns LIR, 1 HIR; S [3 4 2], Q [1]
            (1, true),  // S [1 3 4 2], Q [1]
            (2, true),  // prunes 4, forgotten; S [2 1 3], Q [1]
            (4, false), // evicts 1 (non-resident); S [4 2 1 3], Q [4]
            (1, false), // evicts 4; 1 turns LIR, 3 HIR; S [1 4 2], Q [3]
            (3, true),  // S [3 1 4 2], Q [3]
        ];
        for (i, &(key, hit)) in steps.iter().enumerate() {
            assert_eq!(lirs.access(key), hit, "step {i}: key {key}");
        }
        assert!(lirs.contains(1) && lirs.contains(2) && lirs.contains(3));
        assert_eq!((lirs.len(), lirs.non_resident()), (3, 1));
    }

    #[test]
    fn lirs_keeps_most_of_a_loop_larger_than_the_cache() {
        // A loop over capacity + 1 keys: LRU always evicts the next key.
        let capacity = 100;
        let keys: Vec<u64> = (0..50).flat_map(|_| 0..=capacity as u64).collect();
        let warm_up = 2 * (capacity + 1);

        let mut lru = Lru::new(capacity);
        assert_eq!(crate::replay(&mut lru, &keys, |_| {}), 0);

        let mut lirs = Lirs::new(capacity);
        let mut hits = 0;
        for (i, &key) in keys.iter().enumerate() {
            let hit = lirs.access(key);
            if i >= warm_up {
                hits += u64::from(hit);
            }
        }
        let ratio = hits as f64 / (keys.len() - warm_up) as f64;
        assert!(ratio > 0.9, "LIRS hit ratio {ratio} on the loop");
    }

    #[test]
    fn arc_keeps_the_reused_set_through_a_scan() {
        let capacity = 100;
        let hot: Vec<u64> = (0..50).collect();
        let mut arc = Arc::new(capacity);
        let mut lru = Lru::new(capacity);
        // Each hot key twice, then a scan of new keys four times the cache.
        for &key in hot.iter().chain(&hot) {
            arc.access(key);
            lru.access(key);
        }
        for key in 1_000..1_000 + 4 * capacity as u64 {
            assert!(!arc.access(key) && !lru.access(key));
        }
        let arc_hits = hot.iter().filter(|&&k| arc.access(k)).count();
        let lru_hits = hot.iter().filter(|&&k| lru.access(k)).count();
        assert_eq!((arc_hits, lru_hits), (hot.len(), 0));
        assert_eq!(arc.target(), 0.0, "a scan has no ghost hits to adapt to");
    }

    #[test]
    fn lirs_keeps_its_lir_set_through_a_scan() {
        let capacity = 100;
        let hot: Vec<u64> = (0..50).collect();
        let mut lirs = Lirs::new(capacity);
        for &key in hot.iter().chain(&hot) {
            lirs.access(key);
        }
        for key in 1_000..1_000 + 10 * capacity as u64 {
            assert!(!lirs.access(key));
            assert!(lirs.non_resident() <= 3 * capacity);
        }
        assert_eq!(lirs.non_resident(), 3 * capacity, "the bound is reached");
        assert!(hot.iter().all(|&k| lirs.access(k)));
    }

    #[test]
    fn tiny_capacities() {
        for capacity in [0, 1] {
            let mut arc = Arc::new(capacity);
            let mut lirs = Lirs::new(capacity);
            let arc_hits: Vec<bool> = [1, 1, 2, 1, 1].iter().map(|&k| arc.access(k)).collect();
            let lirs_hits: Vec<bool> = [1, 1, 2, 1, 1].iter().map(|&k| lirs.access(k)).collect();
            let expected = if capacity == 0 {
                [false; 5]
            } else {
                [false, true, false, false, true]
            };
            assert_eq!(arc_hits, expected, "ARC at capacity {capacity}");
            assert_eq!(lirs_hits, expected, "LIRS at capacity {capacity}");
            assert_eq!(arc.is_empty(), capacity == 0);
            assert_eq!(lirs.is_empty(), capacity == 0);
        }
    }
}
