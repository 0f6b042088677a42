//! The in-memory batch of reads waiting to be written as access times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// The keys read since the last flush, each with the place of its latest
/// read in the order of reads.
#[derive(Debug, Default)]
struct Reads {
    latest: HashMap<Box<[u8]>, u64, RandomState>,
    /// The place the next read takes.
    next: u64,
}

/// The keys read since the last flush, in the order of their latest reads.
///
/// A read must never cost a write transaction, so it only lands here; the
/// writer thread moves the whole batch into the file in a later
/// transaction, where each key takes the next access tick in the order of
/// its latest read. Counting places here, under the lock every read takes
/// anyway, keeps the shared tick counter (a contended atomic) off the read
/// path. Keeping one place per key bounds the buffer by the number of
/// distinct keys read, not by the number of reads.
#[derive(Debug)]
pub(super) struct AccessBuffer {
    reads: Mutex<Reads>,
    capacity: usize,
    /// Whether the buffer holds `capacity` keys, so that reads can skip
    /// the lock until it is taken.
    full: AtomicBool,
    /// Set once a full buffer has asked the writer for a flush, so that a
    /// burst of reads sends one request rather than one per read.
    flush_requested: AtomicBool,
}

impl AccessBuffer {
    /// A buffer that asks for a flush once it holds `capacity` keys.
    pub(super) fn new(capacity: usize) -> Self {
        AccessBuffer {
            reads: Mutex::new(Reads::default()),
            capacity,
            full: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
        }
    }

    /// Notes that each key was read, in this order, under one lock for the
    /// whole batch. Returns `true` when the caller should ask the writer to
    /// flush the buffer now.
    ///
    /// A full buffer drops reads until it is flushed, without taking its
    /// lock: the entries read meanwhile keep their older access time (and
    /// the keys it holds their place in it), which makes eviction slightly
    /// less exact but keeps memory bounded, and reads cheap, however fast
    /// they arrive.
    pub(super) fn record_all<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> bool {
        if self.full.load(Ordering::Relaxed) {
            return false;
        }
        let mut reads = self.reads.lock();
        let Reads { latest, next } = &mut *reads;
        for key in keys {
            if let Some(place) = latest.get_mut(key) {
                *place = *next;
            } else if latest.len() < self.capacity {
                latest.insert(key.into(), *next);
            } else {
                continue;
            }
            *next += 1;
        }
        if latest.len() < self.capacity {
            return false;
        }
        self.full.store(true, Ordering::Relaxed);
        !self.flush_requested.swap(true, Ordering::AcqRel)
    }

    /// Takes the batch, leaving the buffer empty: the keys read, least
    /// recently read first.
    pub(super) fn take(&self) -> Vec<Box<[u8]>> {
        let reads = {
            let mut held = self.reads.lock();
            self.full.store(false, Ordering::Relaxed);
            std::mem::take(&mut *held)
        };
        self.flush_requested.store(false, Ordering::Release);
        let mut keys: Vec<(Box<[u8]>, u64)> = reads.latest.into_iter().collect();
        keys.sort_unstable_by_key(|&(_, place)| place);
        keys.into_iter().map(|(key, _)| key).collect()
    }

    /// Whether no read is waiting to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.reads.lock().latest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_of_latest_reads_and_asks_for_one_flush_when_full() {
        let buffer = AccessBuffer::new(2);
        let keys = |list: &[&str]| -> Vec<Box<[u8]>> {
            list.iter().map(|k| Box::from(k.as_bytes())).collect()
        };
        assert!(!buffer.record_all([&b"a"[..]]));
        assert!(buffer.record_all([&b"b"[..]]), "the second key fills it");
        assert!(!buffer.record_all([&b"a"[..]]), "one request per fill");
        assert!(!buffer.record_all([&b"c"[..]]));
        assert_eq!(
            buffer.take(),
            keys(&["a", "b"]),
            "a full buffer drops every read until it is taken"
        );
        assert!(buffer.is_empty());
        assert!(
            buffer.record_all([&b"c"[..], &b"a"[..], &b"c"[..]]),
            "a taken buffer asks again when it fills"
        );
        assert_eq!(
            buffer.take(),
            keys(&["a", "c"]),
            "the latest read comes last"
        );
    }
}
