//! A frequency sketch that ages: the popularity estimate behind admission.

/// Approximate access counts of recently seen keys, in 4-bit saturating
/// counters (a count-min sketch).
///
/// Each key maps to one 64-byte block (eight words) and to four counters in
/// four different words of that block, so an update touches one cache line.
/// The estimate is the smallest of the four. When the number of increments
/// reaches the sample size (ten per key the sketch was sized for),
/// every counter is halved, so old popularity fades and the sketch follows
/// the workload.
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Vec<Block>,
    /// Mask selecting a block from a hash.
    block_mask: u64,
    additions: u64,
    sample_size: u64,
    /// The number of keys the table was sized for (a power of two).
    sized_for: u64,
    /// Agings so far, wrapping: counts copied out of the sketch age by
    /// the difference (see [`aged`]).
    epoch: u8,
}

/// A count copied out of the sketch at `epoch`, aged to `now` as the
/// sketch would have aged it (halved once per aging).
#[inline]
pub(crate) fn aged(count: u8, epoch: u8, now: u8) -> u8 {
    let agings = now.wrapping_sub(epoch);
    if agings >= 4 { 0 } else { count >> agings }
}

/// Eight words of counters, aligned so that a block is one cache line (a
/// block straddling two lines would cost two misses per update).
#[derive(Clone, Copy, Debug, Default)]
#[repr(align(64))]
struct Block([u64; 8]);

/// The most keys a sketch is sized for (its table is then 256 MiB).
const MAX_ENTRIES: u64 = 1 << 26;
/// The fewest keys a table is sized for, whatever the cache's capacity.
/// Below it, collisions between the keys seen in one aging period blur
/// small caches' estimates: 1,024 raised the mean hit ratio over the shared
/// traces by 0.3 points (up to 1.3 on the smallest rows), and 4,096 gave no
/// more.
const MIN_TABLE_KEYS: u64 = 1_024;
/// The largest value a counter holds.
const MAX_COUNT: u64 = 15;
/// Every nibble's low three bits: halving keeps these after a shift.
const HALF_MASK: u64 = 0x7777_7777_7777_7777;

impl FrequencySketch {
    /// A sketch for about `entries` distinct hot keys.
    pub(crate) fn new(entries: u64) -> Self {
        let mut s = FrequencySketch {
            table: Vec::new(),
            block_mask: 0,
            additions: 0,
            sample_size: 0,
            sized_for: 0,
            epoch: 0,
        };
        s.resize(entries);
        s
    }

    fn resize(&mut self, entries: u64) {
        let entries = entries.clamp(8, MAX_ENTRIES).next_power_of_two();
        // Eight counters per key, in half a word: the published design uses
        // a whole word, but counts that coarse do not change which of two
        // entries is more popular often enough to show in hit ratios, and
        // the sketch is a large share of the memory per entry.
        //
        // A small cache still sees many distinct keys between two agings
        // (ten per entry), which crowd a table sized for the cache alone;
        // the table never goes below `MIN_TABLE_KEYS` keys' worth (4 KiB).
        let blocks = (entries.max(MIN_TABLE_KEYS) / 16).max(1);
        self.table = vec![Block::default(); blocks as usize];
        self.block_mask = blocks - 1;
        self.additions = 0;
        self.sample_size = 10 * entries;
        self.sized_for = entries;
        // The counts start over, so counts copied out earlier must too:
        // four agings take any count to zero.
        self.epoch = self.epoch.wrapping_add(4);
    }

    /// Grows the sketch if it was sized for fewer keys than `entries`; the
    /// counts start over, which only matters once per doubling.
    pub(crate) fn ensure_capacity(&mut self, entries: u64) {
        if entries > self.sized_for && self.sized_for < MAX_ENTRIES {
            self.resize(entries);
        }
    }

    /// The block and the four (word, nibble) positions of a hash.
    #[inline]
    fn slots(&self, hash: u64) -> (usize, [(usize, u32); 4]) {
        // The table of the hash map and the choice of partition use the
        // key hash's own bits; re-mixing keeps the sketch independent of
        // both, so keys of one partition still spread over the sketch.
        let h = (hash ^ (hash >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let h = h ^ (h >> 32);
        let block = (h & self.block_mask) as usize;
        let c = h.rotate_right(24).wrapping_mul(0x94D0_49BB_1331_11EB);
        let mut out = [(0usize, 0u32); 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let bits = c >> (i * 8);
            // Word `2i` or `2i + 1` of the block: four distinct words.
            let word = (i << 1) + (bits & 1) as usize;
            let nibble = ((bits >> 1) & 15) as u32;
            *slot = (word, nibble << 2);
        }
        (block, out)
    }

    /// The estimated count of a key, 0 to 15.
    #[cfg(test)]
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let (block, slots) = self.slots(hash);
        let words = &self.table[block].0;
        slots
            .iter()
            .map(|&(w, shift)| (words[w] >> shift) & MAX_COUNT)
            .min()
            .unwrap_or(0) as u8
    }

    /// Counts one access to a key.
    #[cfg(test)]
    pub(crate) fn increment(&mut self, hash: u64) {
        self.increment_and_estimate(hash);
    }

    /// Counts one access to a key and returns its estimated count after
    /// it (one block read).
    #[inline]
    pub(crate) fn increment_and_estimate(&mut self, hash: u64) -> u8 {
        let (block, slots) = self.slots(hash);
        let words = &mut self.table[block].0;
        let mut added = 0;
        let mut estimate = MAX_COUNT;
        for (w, shift) in slots {
            let word = &mut words[w];
            let count = (*word >> shift) & MAX_COUNT;
            let add = u64::from(count < MAX_COUNT);
            *word += add << shift;
            added |= add;
            estimate = estimate.min(count + add);
        }
        self.additions += added;
        if self.additions >= self.sample_size {
            self.age();
            estimate >>= 1;
        }
        estimate as u8
    }

    /// How many agings the sketch has gone through, wrapping.
    #[inline]
    pub(crate) fn epoch(&self) -> u8 {
        self.epoch
    }

    /// Counts `n` accesses that were recorded outside the table (on a
    /// resident entry's own count), so that the sketch ages on schedule.
    #[inline]
    pub(crate) fn note_additions(&mut self, n: u8) {
        self.additions += u64::from(n);
        if self.additions >= self.sample_size {
            self.age();
        }
    }

    /// Raises a key's counters to at least `count`: hands back the count an
    /// entry kept while resident, when it leaves, so the key's popularity
    /// is remembered if it returns. Counts no addition (they were counted
    /// when they happened).
    #[inline]
    pub(crate) fn raise_to(&mut self, hash: u64, count: u8) {
        let (block, slots) = self.slots(hash);
        let words = &mut self.table[block].0;
        let count = u64::from(count.min(MAX_COUNT as u8));
        for (w, shift) in slots {
            let word = &mut words[w];
            let current = (*word >> shift) & MAX_COUNT;
            if current < count {
                *word += (count - current) << shift;
            }
        }
    }

    /// Halves every counter.
    fn age(&mut self) {
        for word in self.table.iter_mut().flat_map(|b| b.0.iter_mut()) {
            *word = (*word >> 1) & HALF_MASK;
        }
        self.additions /= 2;
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// Checks that the counters and the addition count are in range.
    pub(crate) fn validate(&self) {
        assert!(
            self.additions < self.sample_size,
            "sketch missed its aging point"
        );
        assert!(self.table.len().is_power_of_two());
        assert_eq!(self.block_mask, self.table.len() as u64 - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u64) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(7).hash_one(i)
    }

    #[test]
    fn counts_saturate_at_fifteen() {
        let mut s = FrequencySketch::new(1024);
        for n in 1..=20u64 {
            s.increment(hash(1));
            assert_eq!(u64::from(s.frequency(hash(1))), n.min(15));
        }
        assert_eq!(s.frequency(hash(2)), 0);
    }

    #[test]
    fn hot_keys_outrank_cold_ones() {
        let mut s = FrequencySketch::new(512);
        for round in 0..10 {
            for k in 0..50 {
                s.increment(hash(k));
            }
            // A scan of one-hit keys.
            for k in 0..100 {
                s.increment(hash(10_000 + round * 100 + k));
            }
        }
        let hot: u32 = (0..50).map(|k| u32::from(s.frequency(hash(k)))).sum();
        let cold: u32 = (0..50)
            .map(|k| u32::from(s.frequency(hash(10_000 + k))))
            .sum();
        assert!(hot > 5 * cold.max(1), "hot {hot} cold {cold}");
    }

    #[test]
    fn copied_counts_age_with_the_sketch() {
        assert_eq!(aged(12, 3, 3), 12);
        assert_eq!(aged(12, 3, 4), 6);
        assert_eq!(aged(12, 3, 6), 1);
        assert_eq!(aged(15, 3, 7), 0);
        // The epoch wraps.
        assert_eq!(aged(12, 255, 0), 6);
        let mut s = FrequencySketch::new(64);
        let epoch = s.epoch();
        // Growing starts the counts over, so copies read as zero.
        s.ensure_capacity(1 << 12);
        assert_eq!(aged(15, epoch, s.epoch()), 0);
    }

    #[test]
    fn a_returned_count_raises_but_never_lowers() {
        let mut s = FrequencySketch::new(1024);
        s.increment(hash(1));
        s.raise_to(hash(1), 9);
        assert_eq!(s.frequency(hash(1)), 9);
        s.raise_to(hash(1), 4);
        assert_eq!(s.frequency(hash(1)), 9);
        s.raise_to(hash(1), 40);
        assert_eq!(s.frequency(hash(1)), 15);
        // A returned count is not a new access: no step toward aging.
        assert_eq!(s.additions, 1);
    }

    #[test]
    fn aging_halves_counts() {
        let mut s = FrequencySketch::new(8);
        for _ in 0..12 {
            s.increment(hash(1));
        }
        let before = s.frequency(hash(1));
        assert_eq!(before, 12);
        // Drive the sketch to its sample size with other keys.
        let mut k = 100;
        let mut prev = s.additions;
        loop {
            s.increment(hash(k));
            k += 1;
            if s.additions < prev {
                break;
            }
            prev = s.additions;
        }
        assert!(s.frequency(hash(1)) < before, "aging lowers counts");
        s.validate();
    }
}
