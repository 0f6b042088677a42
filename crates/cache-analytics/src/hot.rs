//! [`HotKeys`]: the most requested keys, by the space-saving algorithm.

use std::collections::HashMap;

use bytes::Bytes;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// The most frequent keys of a stream, in bounded memory.
///
/// The space-saving algorithm (Metwally, Agrawal and El Abbadi, 2005): a
/// fixed number of slots each hold a key and a count. A key already in a
/// slot has its count raised; a new key takes the slot with the smallest
/// count and raises that count by one, so a count overestimates its key's
/// true frequency by at most the count it took over. Any key seen more than
/// `n / slots` times in `n` records is guaranteed a slot.
///
/// [`new(k)`](Self::new) keeps `k` slots plus an over-provision of half
/// as many again (at least 16), because the last of the `k` keys reported
/// are the least certain and the spare slots absorb the churn of the long
/// tail below them. [`top`](Self::top) ranks keys by their guaranteed
/// count (the estimate less what the key inherited), so a tail key that
/// has just taken over a slot does not outrank keys that earned their
/// counts. Ask for fewer keys than are tracked: on a Zipf workload
/// (s = 1, 10,000 keys) the top five are reliably found with 30 keys
/// tracked or more, not with 10. Memory is those slots: each key's bytes, two counters
/// and a map entry. A record costs one hash lookup and a sift in a min-heap
/// of the slots, under one mutex.
///
/// ```
/// use cache_analytics::HotKeys;
///
/// let hot = HotKeys::new(2);
/// for key in ["a", "b", "a", "c", "a", "b"] {
///     hot.record(key.as_bytes());
/// }
/// let top = hot.top(2);
/// assert_eq!(top[0], ("a".into(), 3));
/// assert_eq!(top[1], ("b".into(), 2));
/// ```
#[derive(Debug)]
pub struct HotKeys {
    summary: Mutex<SpaceSaving>,
}

impl HotKeys {
    /// Tracks enough keys to report the top `k` (at least one).
    pub fn new(k: usize) -> Self {
        let k = k.max(1);
        let slots = k + (k / 2).max(16);
        HotKeys {
            summary: Mutex::new(SpaceSaving::new(slots)),
        }
    }

    /// Counts one request of `key`.
    pub fn record(&self, key: &[u8]) {
        self.summary.lock().record(key);
    }

    /// Counts one request of `key` if no other thread is recording; `false`
    /// if the request was dropped. For callers that sample requests anyway,
    /// for whom a dropped sample is cheaper than a wait.
    pub fn try_record(&self, key: &[u8]) -> bool {
        match self.summary.try_lock() {
            Some(mut summary) => {
                summary.record(key);
                true
            }
            None => false,
        }
    }

    /// The `n` keys with the highest counts, highest first, each with its
    /// estimated count (never below the true count of recorded requests).
    pub fn top(&self, n: usize) -> Vec<(Bytes, u64)> {
        let summary = self.summary.lock();
        let mut slots: Vec<&Slot> = summary.slots.iter().collect();
        // Ranked by the guaranteed count rather than the estimate, so a key
        // that has just taken over a well-counted slot does not outrank the
        // keys that earned their counts.
        slots.sort_by(|a, b| {
            (b.guaranteed(), b.count)
                .cmp(&(a.guaranteed(), a.count))
                .then_with(|| a.key.cmp(&b.key))
        });
        slots
            .into_iter()
            .take(n)
            .map(|s| (s.key.clone(), s.count))
            .collect()
    }

    /// Forgets every key.
    pub fn clear(&self) {
        let mut summary = self.summary.lock();
        let capacity = summary.capacity;
        *summary = SpaceSaving::new(capacity);
    }
}

/// One tracked key.
#[derive(Debug)]
struct Slot {
    key: Bytes,
    count: u64,
    /// The count the key inherited when it took the slot over: its count
    /// overestimates its true frequency by at most this much.
    error: u64,
}

impl Slot {
    /// The fewest requests the key is sure to have had.
    fn guaranteed(&self) -> u64 {
        self.count - self.error
    }
}

/// The slots, a min-heap of them by count, and an index from key to slot.
#[derive(Debug)]
struct SpaceSaving {
    capacity: usize,
    slots: Vec<Slot>,
    /// Slot numbers ordered as a binary min-heap on their counts.
    heap: Vec<usize>,
    /// Each slot's position in `heap`.
    position: Vec<usize>,
    index: HashMap<Bytes, usize, RandomState>,
}

impl SpaceSaving {
    fn new(capacity: usize) -> Self {
        SpaceSaving {
            capacity,
            slots: Vec::with_capacity(capacity),
            heap: Vec::with_capacity(capacity),
            position: Vec::with_capacity(capacity),
            index: HashMap::with_capacity_and_hasher(capacity, RandomState::default()),
        }
    }

    fn record(&mut self, key: &[u8]) {
        if let Some(&slot) = self.index.get(key) {
            self.slots[slot].count += 1;
            self.sift_down(self.position[slot]);
            return;
        }
        let key = Bytes::copy_from_slice(key);
        if self.slots.len() < self.capacity {
            let slot = self.slots.len();
            self.slots.push(Slot {
                key: key.clone(),
                count: 1,
                error: 0,
            });
            self.heap.push(slot);
            self.position.push(slot);
            self.index.insert(key, slot);
            self.sift_up(slot);
            return;
        }
        // The new key takes over the least counted slot, inheriting its
        // count as the bound on its own overestimate.
        let slot = self.heap[0];
        let evicted = std::mem::replace(&mut self.slots[slot].key, key.clone());
        self.index.remove(&evicted);
        self.index.insert(key, slot);
        let taken = &mut self.slots[slot];
        taken.error = taken.count;
        taken.count += 1;
        self.sift_down(0);
    }

    fn count_at(&self, heap_pos: usize) -> u64 {
        self.slots[self.heap[heap_pos]].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.position[self.heap[a]] = a;
        self.position[self.heap[b]] = b;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if self.count_at(parent) <= self.count_at(pos) {
                break;
            }
            self.swap(parent, pos);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.count_at(right) < self.count_at(left) {
                right
            } else {
                left
            };
            if self.count_at(pos) <= self.count_at(child) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks the heap order and that index, position and slots agree.
    fn check(s: &SpaceSaving) {
        for pos in 1..s.heap.len() {
            assert!(s.count_at((pos - 1) / 2) <= s.count_at(pos));
        }
        for (pos, &slot) in s.heap.iter().enumerate() {
            assert_eq!(s.position[slot], pos);
        }
        assert_eq!(s.index.len(), s.slots.len());
        for (key, &slot) in &s.index {
            assert_eq!(&s.slots[slot].key, key);
        }
    }

    #[test]
    fn slots_stay_bounded_and_consistent_under_churn() {
        let mut s = SpaceSaving::new(8);
        for i in 0..10_000u32 {
            s.record(&(i % 37 + i % 5).to_le_bytes());
            if i % 97 == 0 {
                check(&s);
            }
        }
        check(&s);
        assert_eq!(s.slots.len(), 8);
        let total: u64 = s.slots.iter().map(|slot| slot.count).sum();
        assert_eq!(total, 10_000, "space saving conserves the stream's length");
    }

    #[test]
    fn a_dominant_key_is_counted_exactly_when_it_never_left() {
        let hot = HotKeys::new(1);
        for i in 0..1_000u32 {
            hot.record(b"dominant");
            hot.record(&i.to_le_bytes());
        }
        assert_eq!(hot.top(1), vec![(Bytes::from_static(b"dominant"), 1_000)]);
    }

    #[test]
    fn clear_forgets_every_key() {
        let hot = HotKeys::new(4);
        hot.record(b"a");
        assert!(hot.try_record(b"b"));
        hot.clear();
        assert!(hot.top(10).is_empty());
    }
}
