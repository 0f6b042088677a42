//! An exact LRU: the baseline every policy in the simulator is compared to.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::Policy;
use crate::slab::{List, NIL, Slab};

/// An exact least-recently-used cache of `u64` keys (no values: the
/// simulator only counts hits).
///
/// Resident keys live in a slab of nodes linked into a doubly linked list,
/// most recently used at the head; a map takes a key to its slot. Every
/// access is O(1) and the victim is always the true least recently used key.
#[derive(Debug)]
pub struct Lru {
    capacity: usize,
    slots: HashMap<u64, u32, FixedState>,
    nodes: Slab<u64>,
    /// Most recently used first.
    order: List,
}

impl Lru {
    /// An empty LRU holding at most `capacity` keys.
    ///
    /// # Panics
    ///
    /// If `capacity` does not fit the slab's `u32` indices.
    pub fn new(capacity: usize) -> Self {
        assert!(capacity < NIL as usize, "capacity {capacity} is too large");
        Self {
            capacity,
            slots: HashMap::with_capacity_and_hasher(capacity, FixedState::default()),
            nodes: Slab::with_capacity(capacity),
            order: List::EMPTY,
        }
    }

    /// The number of keys held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The keys held, most recently used first.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        let mut slot = self.order.head;
        std::iter::from_fn(move || {
            if slot == NIL {
                return None;
            }
            let key = self.nodes.get(slot);
            slot = self.nodes.next(slot);
            Some(key)
        })
    }
}

impl Policy for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&slot) = self.slots.get(&key) {
            if slot != self.order.head {
                self.nodes.unlink(&mut self.order, slot);
                self.nodes.push_front(&mut self.order, slot);
            }
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        let slot = if self.slots.len() < self.capacity {
            self.nodes.insert(key)
        } else {
            // Reuse the least recently used key's node for the newcomer.
            let victim = self.order.tail;
            self.nodes.unlink(&mut self.order, victim);
            let old = std::mem::replace(self.nodes.get_mut(victim), key);
            self.slots.remove(&old);
            victim
        };
        self.slots.insert(key, slot);
        self.nodes.push_front(&mut self.order, slot);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_key() {
        let mut lru = Lru::new(3);
        // Hand-computed: capacity 3, MRU first after each step.
        let steps: [(u64, bool, &[u64]); 10] = [
            (1, false, &[1]),
            (2, false, &[2, 1]),
            (3, false, &[3, 2, 1]),
            (1, true, &[1, 3, 2]),
            (4, false, &[4, 1, 3]), // evicts 2
            (2, false, &[2, 4, 1]), // evicts 3
            (1, true, &[1, 2, 4]),
            (3, false, &[3, 1, 2]), // evicts 4
            (3, true, &[3, 1, 2]),
            (4, false, &[4, 3, 1]), // evicts 2
        ];
        for (i, &(key, hit, resident)) in steps.iter().enumerate() {
            assert_eq!(lru.access(key), hit, "step {i}: key {key}");
            assert_eq!(lru.keys().collect::<Vec<_>>(), resident, "step {i}");
        }
        assert_eq!(lru.len(), 3);
    }

    #[test]
    fn capacity_one_and_zero() {
        let mut one = Lru::new(1);
        let hits: Vec<bool> = [1, 1, 2, 1, 1].iter().map(|&k| one.access(k)).collect();
        assert_eq!(hits, [false, true, false, false, true]);

        let mut zero = Lru::new(0);
        assert!(!zero.access(1) && !zero.access(1));
        assert!(zero.is_empty());
    }
}
