//! Belady's optimal policy: the upper bound on any policy's hits.

use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};

use foldhash::fast::FixedState;

use crate::Policy;

/// The next-use index of a request whose key is never requested again.
pub const NEVER: u32 = u32::MAX;

/// For every request `i`, the index of the next request for the same key,
/// or [`NEVER`].
///
/// Computed once per trace and shared by every capacity OPT runs at.
///
/// # Panics
///
/// If the trace has `u32::MAX` requests or more.
pub fn next_uses(keys: &[u64]) -> Vec<u32> {
    assert!(
        keys.len() < NEVER as usize,
        "a trace of {} requests is too long",
        keys.len()
    );
    let mut next = vec![NEVER; keys.len()];
    let mut seen: HashMap<u64, u32, FixedState> = HashMap::default();
    for (i, &key) in keys.iter().enumerate().rev() {
        if let Some(later) = seen.insert(key, i as u32) {
            next[i] = later;
        }
    }
    next
}

/// Whether OPT must cache every missed key, as in demand paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Every miss is cached, evicting the resident key used farthest in
    /// the future (Belady's MIN as textbooks state it).
    Demand,
    /// A missed key is cached only when it is needed sooner than some
    /// resident key, which it then evicts. This is the bound for policies
    /// that may decline to admit a key, such as TinyLFU's admission filter:
    /// it never scores below [`Admission::Demand`] at the same capacity.
    Bypass,
}

/// Belady's optimal replacement over one known trace.
///
/// It must be fed exactly the trace its `next_use` was computed from, in
/// order: each access is checked against the trace.
#[derive(Debug)]
pub struct Opt<'a> {
    capacity: usize,
    admission: Admission,
    keys: &'a [u64],
    next_use: &'a [u32],
    position: usize,
    /// Resident keys and the index of their next request.
    resident: HashMap<u64, u32, FixedState>,
    /// `(next use, key)` for resident keys, farthest first. Entries go stale
    /// when their key is requested again or evicted; an entry is current
    /// iff `resident[key]` still holds its next use, and stale entries are
    /// dropped as they reach the top.
    heap: BinaryHeap<(u32, u64)>,
}

impl<'a> Opt<'a> {
    /// OPT holding at most `capacity` keys, replaying `keys` whose next uses
    /// [`next_uses`] computed.
    ///
    /// # Panics
    ///
    /// If `keys` and `next_use` differ in length.
    pub fn new(
        capacity: usize,
        admission: Admission,
        keys: &'a [u64],
        next_use: &'a [u32],
    ) -> Self {
        assert_eq!(keys.len(), next_use.len(), "next_use is not for this trace");
        Self {
            capacity,
            admission,
            keys,
            next_use,
            position: 0,
            resident: HashMap::with_capacity_and_hasher(capacity, FixedState::default()),
            heap: BinaryHeap::with_capacity(2 * capacity),
        }
    }

    /// The number of resident keys.
    pub fn len(&self) -> usize {
        self.resident.len()
    }

    /// Whether no key is resident.
    pub fn is_empty(&self) -> bool {
        self.resident.is_empty()
    }

    /// The current top of the heap: the resident key used farthest in the
    /// future, with its next use.
    fn farthest(&mut self) -> Option<(u32, u64)> {
        while let Some(&(next, key)) = self.heap.peek() {
            if self.resident.get(&key) == Some(&next) {
                return Some((next, key));
            }
            self.heap.pop();
        }
        None
    }

    fn push(&mut self, next: u32, key: u64) {
        self.heap.push((next, key));
        // Stale entries would otherwise pile up to one per request; rebuild
        // from the resident set when they outnumber the live ones.
        if self.heap.len() > 4 * self.capacity + 1024 {
            self.heap = self.resident.iter().map(|(&k, &n)| (n, k)).collect();
        }
    }
}

impl Policy for Opt<'_> {
    fn access(&mut self, key: u64) -> bool {
        let i = self.position;
        assert_eq!(
            self.keys.get(i),
            Some(&key),
            "OPT was fed a different trace at request {i}"
        );
        self.position += 1;
        let next = self.next_use[i];
        if let Entry::Occupied(mut e) = self.resident.entry(key) {
            e.insert(next);
            self.push(next, key);
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        if self.resident.len() >= self.capacity {
            let (farthest, victim) = self.farthest().expect("a full cache has a farthest key");
            if self.admission == Admission::Bypass && next >= farthest {
                return false;
            }
            self.resident.remove(&victim);
            self.heap.pop();
        }
        self.resident.insert(key, next);
        self.push(next, key);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay;

    fn hits(keys: &[u64], capacity: usize, admission: Admission) -> u64 {
        let next = next_uses(keys);
        let mut opt = Opt::new(capacity, admission, keys, &next);
        let hits = replay(&mut opt, keys, |_| {});
        assert!(opt.len() <= capacity);
        hits
    }

    #[test]
    fn next_uses_point_at_the_next_request_for_the_key() {
        assert_eq!(
            next_uses(&[1, 2, 1, 3, 2, 1]),
            [2, 4, 5, NEVER, NEVER, NEVER]
        );
    }

    #[test]
    fn textbook_reference_string() {
        // Silberschatz, Galvin & Gagne, "Operating System Concepts": the
        // reference string below with 3 frames takes 9 page faults under
        // optimal replacement (and 15 under FIFO, 12 under LRU).
        let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(hits(&refs, 3, Admission::Demand), 20 - 9);

        let mut lru = crate::Lru::new(3);
        assert_eq!(replay(&mut lru, &refs, |_| {}), 20 - 12);
    }

    #[test]
    fn bypass_skips_keys_needed_later_than_every_resident_one() {
        // One slot, A B A: demand paging must cache B and loses A; with
        // bypass B is not admitted and A hits.
        assert_eq!(hits(&[1, 2, 1], 1, Admission::Demand), 0);
        assert_eq!(hits(&[1, 2, 1], 1, Admission::Bypass), 1);
        // The textbook string with 3 frames, traced by hand: bypass misses
        // only at requests 0, 1, 2, 3, 5 and 13 (cold misses and evictions)
        // and at 7 and 17, where 4 and 7 are never needed again and are not
        // admitted: 8 misses where demand paging takes 9.
        let refs = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];
        assert_eq!(hits(&refs, 3, Admission::Bypass), 20 - 8);
    }

    #[test]
    fn capacity_zero_never_hits() {
        assert_eq!(hits(&[1, 1, 1], 0, Admission::Demand), 0);
        assert_eq!(hits(&[1, 1, 1], 0, Admission::Bypass), 0);
    }

    #[test]
    #[should_panic(expected = "different trace")]
    fn a_different_trace_is_refused() {
        let keys = [1, 2, 3];
        let next = next_uses(&keys);
        let mut opt = Opt::new(2, Admission::Demand, &keys, &next);
        opt.access(1);
        opt.access(3);
    }
}
