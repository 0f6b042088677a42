//! A short memory of candidates the admission filter turned away.

use super::table_hash;

/// Slots per bucket: four `u32` hashes, a quarter of a cache line, so an
/// add or a take reads one line.
const WAYS: usize = 4;

/// The hashes of recent candidates that lost to their victims. A key that
/// comes back while it is still remembered was turned away too early: the
/// shard then admits it straight into main, as S3-FIFO does with its ghost
/// queue. Loops defeat this (every key returns), so the window chooser
/// turns it on only where its ghosts show that it pays.
///
/// The memory is a set-associative array of hashes: a hash maps to a
/// bucket of four slots kept newest first, and a new rejection pushes the
/// bucket's oldest out. So each bucket remembers its last four rejections
/// and the whole about the last `remembered`, without the order-keeping
/// queue and index that exact "last N" would need, without tombstones or
/// rehashing, and in four bytes per remembered key.
pub(crate) struct RecentRejects {
    /// Empty until the first rejection, so a cache that never turns a
    /// candidate away pays nothing; then `buckets × WAYS` slots, 0 for
    /// empty.
    slots: Vec<u32>,
    buckets: usize,
}

impl RecentRejects {
    /// A memory of about `remembered` rejections (rounded up to a power of
    /// two, and at least one bucket).
    pub(crate) fn new(remembered: usize) -> Self {
        RecentRejects {
            slots: Vec::new(),
            buckets: remembered.div_ceil(WAYS).next_power_of_two(),
        }
    }

    /// The bucket of `hash` (its first slot), and the value stored for it:
    /// the hash itself, with 0 kept for empty slots.
    #[inline]
    fn locate(&self, hash: u32) -> (usize, u32) {
        // The high bits of the multiplied hash, which the table's own
        // probing uses least.
        let bucket = (table_hash(hash) >> 32) as usize & (self.buckets - 1);
        (bucket * WAYS, hash.max(1))
    }

    /// Remembers a rejected candidate.
    pub(crate) fn add(&mut self, hash: u32) {
        if self.slots.is_empty() {
            self.slots = vec![0; self.buckets * WAYS];
        }
        let (start, tag) = self.locate(hash);
        let bucket = &mut self.slots[start..start + WAYS];
        // Already remembered: it moves to the front. Otherwise the oldest
        // (the last slot) makes room.
        let end = bucket.iter().position(|&t| t == tag).unwrap_or(WAYS - 1);
        bucket.copy_within(0..end, 1);
        bucket[0] = tag;
    }

    /// Whether `hash` was turned away recently; it is forgotten either way.
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (start, tag) = self.locate(hash);
        let bucket = &mut self.slots[start..start + WAYS];
        match bucket.iter().position(|&t| t == tag) {
            Some(i) => {
                // The newer ones stay newer: close the gap from behind.
                bucket.copy_within(i + 1.., i);
                bucket[WAYS - 1] = 0;
                true
            }
            None => false,
        }
    }

    /// Checks the memory's shape: whole buckets, and no hash twice in one.
    pub(crate) fn validate(&self) {
        assert!(
            self.buckets.is_power_of_two(),
            "a rejects memory of {} buckets",
            self.buckets
        );
        assert!(
            self.slots.is_empty() || self.slots.len() == self.buckets * WAYS,
            "the rejects memory lost its shape"
        );
        for bucket in self.slots.chunks(WAYS) {
            for (i, &t) in bucket.iter().enumerate() {
                assert!(
                    t == 0 || !bucket[i + 1..].contains(&t),
                    "a rejected hash remembered twice"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_rejections_and_forgets_old_ones() {
        // One bucket of four.
        let mut r = RecentRejects::new(4);
        for h in [10, 11, 12, 13, 14] {
            r.add(h);
            r.validate();
        }
        assert!(!r.take(10), "the oldest was pushed out");
        assert!(r.take(12));
        assert!(!r.take(12), "taking forgets");
        // Taking 12 made room: 15 pushes nobody out.
        r.add(15);
        assert!(r.take(11) && r.take(13) && r.take(14) && r.take(15));
        r.validate();
    }

    #[test]
    fn a_repeated_rejection_is_renewed_not_duplicated() {
        let mut r = RecentRejects::new(4);
        for h in [1, 2, 3, 4, 1, 5] {
            r.add(h);
            r.validate();
        }
        // 1 came back to the front, so 2 was the oldest when 5 arrived.
        assert!(r.take(1) && !r.take(2));
        assert!(r.take(3) && r.take(4) && r.take(5));
    }

    #[test]
    fn a_hash_of_zero_is_remembered_too() {
        let mut r = RecentRejects::new(64);
        assert!(
            !r.take(0),
            "nothing is remembered before the first rejection"
        );
        r.add(0);
        assert!(r.take(0));
        assert!(!r.take(0));
    }

    #[test]
    fn holds_about_what_it_was_sized_for() {
        let mut r = RecentRejects::new(1_024);
        for h in 0..10_000u32 {
            r.add(h.wrapping_mul(0x9E37_79B9));
        }
        r.validate();
        let recent = (9_000..10_000u32)
            .filter(|&h| r.take(h.wrapping_mul(0x9E37_79B9)))
            .count();
        let old = (0..1_000u32)
            .filter(|&h| r.take(h.wrapping_mul(0x9E37_79B9)))
            .count();
        // Buckets fill unevenly, so not all of the last 1,000 survive.
        assert!(recent > 600, "only {recent} of the last 1,000 remembered");
        assert_eq!(old, 0, "rejections 9,000 back are forgotten");
    }

    #[test]
    fn adding_twice_remembers_once() {
        let mut r = RecentRejects::new(30);
        r.add(7);
        r.add(7);
        assert!(r.take(7));
        assert!(!r.take(7));
    }
}
