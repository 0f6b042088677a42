//! A short memory of candidates the admission filter turned away.

use hashbrown::HashTable;

use super::table_hash;

/// The hashes of recent candidates that lost to their victims. A key that
/// comes back while it is still remembered was turned away too early: the
/// shard then admits it straight into main, as S3-FIFO does with its ghost
/// queue. Loops defeat this (every key returns), so the window chooser
/// turns it on only where its ghosts show that it pays.
///
/// The memory is two generations of a set: rejections go into the current
/// one, and once it holds `generation` of them it becomes the previous one
/// and the old previous one is emptied. So the last `generation` to
/// `2 × generation` rejections are remembered, without the order-keeping
/// queue and index that exact "last N" would need: an add or a take is one
/// or two table probes.
pub(crate) struct RecentRejects {
    current: HashTable<u32>,
    previous: HashTable<u32>,
    generation: usize,
}

impl RecentRejects {
    /// A memory of about `remembered` rejections on average (between two
    /// thirds and four thirds of it).
    pub(crate) fn new(remembered: usize) -> Self {
        let generation = (remembered * 2 / 3).max(1);
        RecentRejects {
            // They grow as candidates are turned away; a cache that never
            // turns one away pays nothing for them.
            current: HashTable::new(),
            previous: HashTable::new(),
            generation,
        }
    }

    /// Remembers a rejected candidate.
    pub(crate) fn add(&mut self, hash: u32) {
        let h = table_hash(hash);
        if self.current.find(h, |&x| x == hash).is_some() {
            return;
        }
        if self.current.len() >= self.generation {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
        }
        self.current.insert_unique(h, hash, |&x| table_hash(x));
    }

    /// Whether `hash` was turned away recently; it is forgotten either way.
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        let h = table_hash(hash);
        if let Ok(entry) = self.current.find_entry(h, |&x| x == hash) {
            entry.remove();
            return true;
        }
        match self.previous.find_entry(h, |&x| x == hash) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Checks the generations' bounds.
    pub(crate) fn validate(&self) {
        assert!(
            self.current.len() <= self.generation && self.previous.len() <= self.generation,
            "a rejects generation outgrew its bound"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_rejections_and_forgets_old_ones() {
        // Generations of two.
        let mut r = RecentRejects::new(3);
        for h in [10, 11, 12, 13, 14] {
            r.add(h);
            r.validate();
        }
        // 10 and 11 filled a generation, 12 and 13 the next; 14 started a
        // third, which emptied the first.
        assert!(!r.take(10) && !r.take(11), "the oldest were forgotten");
        assert!(r.take(12));
        assert!(!r.take(12), "taking forgets");
        assert!(r.take(13) && r.take(14));
        r.validate();
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
