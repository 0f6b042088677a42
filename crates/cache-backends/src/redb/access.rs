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
            flush_requested: AtomicBool::new(false),
        }
    }

    /// Notes that each key was read, in this order, under one lock for the
    /// whole batch. Returns `true` when the caller should ask the writer to
    /// flush the buffer now.
    ///
    /// A full buffer still moves the keys it holds to the front but drops
    /// reads of new keys until it is flushed: those entries keep their
    /// older access time, which makes eviction slightly less exact but
    /// keeps memory bounded however fast reads arrive.
    pub(super) fn record_all<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> bool {
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
        latest.len() >= self.capacity && !self.flush_requested.swap(true, Ordering::AcqRel)
    }

    /// Takes the batch, leaving the buffer empty: the keys read, least
    /// recently read first.
    pub(super) fn take(&self) -> Vec<Box<[u8]>> {
        let reads = std::mem::take(&mut *self.reads.lock());
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
        assert!(!buffer.record_all([&b"a"[..]]));
        assert!(buffer.record_all([&b"b"[..]]), "the second key fills it");
        assert!(!buffer.record_all([&b"a"[..]]), "a held key moves up");
        assert!(!buffer.record_all([&b"c"[..]]), "one request per fill");
        let keys = buffer.take();
        assert_eq!(
            keys,
            vec![Box::from(&b"b"[..]), Box::from(&b"a"[..])],
            "a full buffer drops new keys; the latest read comes last"
        );
        assert!(buffer.is_empty());
        assert!(!buffer.record_all([&b"c"[..], &b"d"[..], &b"c"[..]][..1].iter().copied()));
        assert!(
            buffer.record_all([&b"d"[..]]),
            "a flushed buffer asks again"
        );
        assert_eq!(
            buffer.take(),
            vec![Box::from(&b"c"[..]), Box::from(&b"d"[..])]
        );
    }
}
