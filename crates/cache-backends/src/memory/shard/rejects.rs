//! A short memory of candidates the admission filter turned away.

use hashbrown::HashTable;

use super::table_hash;

/// The hashes of the last `capacity` candidates that lost to their
/// victims, in a ring with an index for membership. A key that comes back
/// while it is still remembered was turned away too early: the shard then
/// admits it straight into main, as S3-FIFO does with its ghost queue.
/// Loops defeat this (every key returns), so the window chooser turns it on
/// only where its ghosts show that it pays.
pub(crate) struct RecentRejects {
    ring: Vec<u32>,
    next: usize,
    index: HashTable<u32>,
}

impl RecentRejects {
    pub(crate) fn new(capacity: usize) -> Self {
        RecentRejects {
            ring: Vec::with_capacity(capacity.max(1)),
            next: 0,
            index: HashTable::new(),
        }
    }

    fn find(&self, hash: u32) -> Option<u32> {
        let ring = &self.ring;
        self.index
            .find(table_hash(hash), |&pos| ring[pos as usize] == hash)
            .copied()
    }

    /// Remembers a rejected candidate, forgetting the oldest if full.
    pub(crate) fn add(&mut self, hash: u32) {
        if self.find(hash).is_some() {
            return;
        }
        let pos = if self.ring.len() < self.ring.capacity() {
            self.ring.push(hash);
            self.ring.len() - 1
        } else {
            let pos = self.next;
            let old = self.ring[pos];
            let ring = &self.ring;
            if let Ok(entry) = self.index.find_entry(table_hash(old), |&p| {
                ring[p as usize] == old && p as usize == pos
            }) {
                entry.remove();
            }
            self.ring[pos] = hash;
            self.next = (pos + 1) % self.ring.capacity();
            pos
        };
        let ring = &self.ring;
        self.index
            .insert_unique(table_hash(hash), pos as u32, |&p| {
                table_hash(ring[p as usize])
            });
    }

    /// Whether `hash` was turned away recently; it is forgotten either way.
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        let ring = &self.ring;
        match self
            .index
            .find_entry(table_hash(hash), |&p| ring[p as usize] == hash)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Checks that every remembered hash is indexed exactly once.
    pub(crate) fn validate(&self) {
        assert!(
            self.index.len() <= self.ring.len(),
            "rejects index too large"
        );
        for &pos in self.index.iter() {
            let h = self.ring[pos as usize];
            assert_eq!(self.find(h), Some(pos), "rejects index points astray");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_last_capacity_rejections() {
        let mut r = RecentRejects::new(3);
        for h in [10, 11, 12, 13] {
            r.add(h);
            r.validate();
        }
        assert!(!r.take(10), "the oldest was forgotten");
        assert!(r.take(12));
        assert!(!r.take(12), "taking forgets");
        assert!(r.take(13) && r.take(11));
        r.validate();
    }
}
