//! What the log holds, in memory: every dirty key with its latest write,
//! in the order the keys became dirty, and each key's retry state. The
//! log's writer thread changes it right after each commit, so it never
//! shows a write that is not durable, nor misses one that is.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry as MapEntry;
use std::time::Instant;

use bytes::Bytes;

use super::record::Queued;

type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One dirty key.
#[derive(Debug)]
pub(crate) struct DirtyKey {
    /// Its latest write, as the log holds it.
    pub(crate) latest: Queued,
    /// The number of the write that made it dirty, its place in the
    /// flush order (rewrites of a dirty key keep its place, so a key
    /// written over and over is still flushed in its turn).
    pub(crate) since: u64,
    /// Failed tries of its latest write.
    pub(crate) tries: u32,
    /// Not to be tried again before this moment (after a failure).
    pub(crate) not_before: Option<Instant>,
    /// A flush of it is under way.
    pub(crate) in_flight: bool,
    /// Appends under way that were let in as rewrites of it, taking no
    /// room of their own.
    pub(crate) rewrites: usize,
}

/// Every dirty key.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    keys: Map<Bytes, DirtyKey>,
    /// `since` → key, the oldest first.
    order: BTreeMap<u64, Bytes>,
    /// The dead letters' keys and values (`None`: a removal): the latest
    /// acknowledged write of each of those keys, which the store never
    /// took, so reads answer it too.
    dead: Map<Bytes, Option<Bytes>>,
    /// Room promised to appends under way, for the bound: appends of clean
    /// keys, and rewrites whose key was settled before they landed (each
    /// makes its key dirty again).
    pub(crate) reserved: usize,
}

/// A write taken for a flush.
#[derive(Debug, Clone)]
pub(crate) struct Taken {
    pub(crate) key: Bytes,
    pub(crate) write: Queued,
    pub(crate) tries: u32,
}

impl Dirty {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains_key(key)
    }

    /// The latest write of `key` if the store has not taken it (the key
    /// is dirty, or its write is a dead letter): `Some(None)` is a removal.
    pub(crate) fn latest(&self, key: &[u8]) -> Option<Option<Bytes>> {
        match self.keys.get(key) {
            Some(k) => Some(k.latest.value.clone()),
            None => self.dead.get(key).cloned(),
        }
    }

    /// The number of `key`'s latest write, if it is dirty.
    pub(crate) fn latest_seq(&self, key: &[u8]) -> Option<u64> {
        self.keys.get(key).map(|k| k.latest.seq)
    }

    /// Notes a dead letter of `key`.
    pub(crate) fn dead_added(&mut self, key: Bytes, value: Option<Bytes>) {
        self.dead.insert(key, value);
    }

    /// Notes that `key`'s dead letter is gone.
    pub(crate) fn dead_removed(&mut self, key: &[u8]) {
        self.dead.remove(key);
    }

    /// How many dead letters there are.
    pub(crate) fn dead_len(&self) -> usize {
        self.dead.len()
    }

    /// The `since` of the oldest dirty key.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.order.first_key_value().map(|(seq, _)| *seq)
    }

    /// Notes a write the log made durable; `true` if the key was clean
    /// before (it takes room of its own).
    pub(crate) fn write(&mut self, key: Bytes, write: Queued) -> bool {
        match self.keys.entry(key) {
            MapEntry::Occupied(mut e) => {
                let k = e.get_mut();
                k.latest = write;
                // A new write is tried afresh: its predecessor's failures
                // are not its own.
                k.tries = 0;
                k.not_before = None;
                false
            }
            MapEntry::Vacant(e) => {
                let since = write.seq;
                self.order.insert(since, e.key().clone());
                e.insert(DirtyKey {
                    latest: write,
                    since,
                    tries: 0,
                    not_before: None,
                    in_flight: false,
                    rewrites: 0,
                });
                true
            }
        }
    }

    /// Up to `n` writes ready to be tried now, the keys dirty longest
    /// first, marked in flight.
    pub(crate) fn take_ready(&mut self, n: usize, now: Instant) -> Vec<Taken> {
        let mut taken = Vec::new();
        for key in self.order.values() {
            if taken.len() == n {
                break;
            }
            let k = self.keys.get_mut(key).expect("ordered keys are dirty");
            if k.in_flight || k.not_before.is_some_and(|at| at > now) {
                continue;
            }
            k.in_flight = true;
            taken.push(Taken {
                key: key.clone(),
                write: k.latest.clone(),
                tries: k.tries,
            });
        }
        taken
    }

    /// The earliest moment a key waiting after a failure may be tried.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.keys
            .values()
            .filter(|k| !k.in_flight)
            .filter_map(|k| k.not_before)
            .min()
    }

    /// Whether any key can be tried now.
    pub(crate) fn any_ready(&self, now: Instant) -> bool {
        self.keys
            .values()
            .any(|k| !k.in_flight && k.not_before.is_none_or(|at| at <= now))
    }

    /// Write `seq` of `key` reached the store, or the dead-letter list:
    /// the key is clean unless it was written again meanwhile. `true` if
    /// it is clean now.
    pub(crate) fn settled(&mut self, key: &[u8], seq: u64) -> bool {
        let Some(k) = self.keys.get_mut(key) else {
            return false;
        };
        if k.latest.seq != seq {
            // Written again while it was flushed: the newer write waits
            // its turn, from now on.
            k.in_flight = false;
            let since = k.since;
            let key = self.order.remove(&since).expect("dirty keys are ordered");
            let k = self.keys.get_mut(&key).expect("just found");
            k.since = k.latest.seq;
            self.order.insert(k.since, key);
            return false;
        }
        let k = self.keys.remove(key).expect("just found");
        self.order.remove(&k.since);
        // Its rewrites under way will make it dirty again: they need room
        // now.
        self.reserved += k.rewrites;
        true
    }

    /// Lets an append of `key` in if the bound of `max` dirty keys allows
    /// it: a rewrite of a dirty key takes no room, any other append takes
    /// one. `Some(true)` for a rewrite, `Some(false)` for an append that
    /// took room, `None` if there is none.
    pub(crate) fn admit(&mut self, key: &[u8], max: usize) -> Option<bool> {
        if let Some(k) = self.keys.get_mut(key) {
            k.rewrites += 1;
            return Some(true);
        }
        if self.keys.len() + self.reserved < max {
            self.reserved += 1;
            return Some(false);
        }
        None
    }

    /// An append let in by [`admit`](Self::admit) is done or abandoned:
    /// `rewrite` is its key if it was let in as a rewrite.
    pub(crate) fn release(&mut self, rewrite: Option<&[u8]>) {
        if let Some(k) = rewrite.and_then(|key| self.keys.get_mut(key))
            && k.rewrites > 0
        {
            k.rewrites -= 1;
            return;
        }
        // A rewrite whose key was settled meanwhile holds room now.
        self.reserved -= 1;
    }

    /// Write `seq` of `key` failed: it is tried again after `not_before`,
    /// unless a newer write replaced it.
    pub(crate) fn failed(&mut self, key: &[u8], seq: u64, not_before: Instant) {
        if let Some(k) = self.keys.get_mut(key) {
            k.in_flight = false;
            if k.latest.seq == seq {
                k.tries += 1;
                k.not_before = Some(not_before);
            }
        }
    }

    /// A flush given up half way (its commit failed): the write is tried
    /// again at once.
    pub(crate) fn released(&mut self, key: &[u8]) {
        if let Some(k) = self.keys.get_mut(key) {
            k.in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(seq: u64, v: &'static [u8]) -> Queued {
        Queued {
            seq,
            value: Some(Bytes::from_static(v)),
        }
    }

    #[test]
    fn rewrites_keep_the_first_place_and_the_last_value() {
        let mut d = Dirty::default();
        assert!(d.write(Bytes::from_static(b"a"), put(1, b"a1")));
        assert!(d.write(Bytes::from_static(b"b"), put(2, b"b1")));
        assert!(!d.write(Bytes::from_static(b"a"), put(3, b"a2")));
        assert_eq!(d.len(), 2);
        let now = Instant::now();
        let taken = d.take_ready(10, now);
        let keys: Vec<_> = taken.iter().map(|t| t.key.clone()).collect();
        assert_eq!(keys, [&b"a"[..], &b"b"[..]]);
        assert_eq!(taken[0].write, put(3, b"a2"));
        assert!(d.take_ready(10, now).is_empty(), "in flight");
    }

    #[test]
    fn a_key_written_during_its_flush_stays_dirty_with_the_newer_write() {
        let mut d = Dirty::default();
        d.write(Bytes::from_static(b"a"), put(1, b"a1"));
        let now = Instant::now();
        d.take_ready(10, now);
        d.write(Bytes::from_static(b"a"), put(5, b"a2"));
        assert!(!d.settled(b"a", 1));
        assert_eq!(d.latest(b"a"), Some(Some(Bytes::from_static(b"a2"))));
        assert_eq!(d.oldest(), Some(5));
        let taken = d.take_ready(10, now);
        assert_eq!(taken[0].write.seq, 5);
        assert!(d.settled(b"a", 5));
        assert_eq!(d.len(), 0);
        assert_eq!(d.oldest(), None);
    }

    #[test]
    fn a_rewrite_takes_no_room_until_its_key_is_settled_before_it_lands() {
        let mut d = Dirty::default();
        d.write(Bytes::from_static(b"a"), put(1, b"a1"));
        assert_eq!(d.admit(b"a", 2), Some(true), "a rewrite of a dirty key");
        assert_eq!(d.admit(b"b", 2), Some(false), "room for a second key");
        assert_eq!(d.admit(b"c", 2), None, "no room for a third");
        // `a` is saved before its rewrite lands: the rewrite will make it
        // dirty again, so it holds room now.
        let now = Instant::now();
        d.take_ready(10, now);
        assert!(d.settled(b"a", 1));
        assert_eq!(d.reserved, 2);
        assert_eq!(d.admit(b"c", 2), None);
        d.write(Bytes::from_static(b"a"), put(2, b"a2"));
        d.release(Some(b"a"));
        d.write(Bytes::from_static(b"b"), put(3, b"b1"));
        d.release(None);
        assert_eq!((d.len(), d.reserved), (2, 0));
        assert_eq!(d.admit(b"c", 2), None);
    }

    #[test]
    fn a_failed_write_waits_for_its_retry_time() {
        let mut d = Dirty::default();
        d.write(Bytes::from_static(b"a"), put(1, b"a1"));
        let now = Instant::now();
        d.take_ready(10, now);
        let later = now + std::time::Duration::from_secs(1);
        d.failed(b"a", 1, later);
        assert!(d.take_ready(10, now).is_empty());
        assert!(!d.any_ready(now));
        assert_eq!(d.next_retry(), Some(later));
        let taken = d.take_ready(10, later);
        assert_eq!(taken[0].tries, 1);
    }
}
