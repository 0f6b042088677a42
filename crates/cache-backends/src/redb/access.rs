//! The in-memory batch of reads waiting to be written as access times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

/// The latest access tick of each key read since the last flush.
///
/// A read must never cost a write transaction, so it only lands here; the
/// writer thread moves the whole batch into the file in its next
/// transaction. Keeping one tick per key bounds the buffer by the number of
/// distinct keys read, not by the number of reads.
#[derive(Debug)]
pub(super) struct AccessBuffer {
    ticks: Mutex<HashMap<Box<[u8]>, u64>>,
    capacity: usize,
    /// Set once a full buffer has asked the writer for a flush, so that a
    /// burst of reads sends one request rather than one per read.
    flush_requested: AtomicBool,
}

impl AccessBuffer {
    /// A buffer that asks for a flush once it holds `capacity` keys.
    pub(super) fn new(capacity: usize) -> Self {
        AccessBuffer {
            ticks: Mutex::new(HashMap::new()),
            capacity,
            flush_requested: AtomicBool::new(false),
        }
    }

    /// Notes a read of `key` at `tick`, as [`record_all`] does.
    ///
    /// [`record_all`]: Self::record_all
    #[cfg(test)]
    pub(super) fn record(&self, key: &[u8], tick: u64) -> bool {
        self.record_all([(key, tick)])
    }

    /// Notes that each key was read at its tick, under one lock for the
    /// whole batch. Returns `true` when the caller should ask the writer to
    /// flush the buffer now.
    ///
    /// A full buffer still refreshes the keys it holds but drops reads of
    /// new keys until it is flushed: those entries keep their older access
    /// time, which makes eviction slightly less exact but keeps memory
    /// bounded however fast reads arrive.
    pub(super) fn record_all<'k>(&self, reads: impl IntoIterator<Item = (&'k [u8], u64)>) -> bool {
        let mut ticks = self.ticks.lock();
        for (key, tick) in reads {
            if let Some(held) = ticks.get_mut(key) {
                *held = tick;
            } else if ticks.len() < self.capacity {
                ticks.insert(key.into(), tick);
            }
        }
        ticks.len() >= self.capacity && !self.flush_requested.swap(true, Ordering::AcqRel)
    }

    /// Takes the batch, leaving the buffer empty.
    pub(super) fn take(&self) -> HashMap<Box<[u8]>, u64> {
        let batch = std::mem::take(&mut *self.ticks.lock());
        self.flush_requested.store(false, Ordering::Release);
        batch
    }

    /// Whether no read is waiting to be written.
    pub(super) fn is_empty(&self) -> bool {
        self.ticks.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_tick_per_key_and_asks_for_one_flush_when_full() {
        let buffer = AccessBuffer::new(2);
        assert!(!buffer.record(b"a", 1));
        assert!(!buffer.record(b"a", 5));
        assert!(buffer.record(b"b", 2), "the second key fills the buffer");
        assert!(!buffer.record(b"c", 3), "one request per fill");
        let batch = buffer.take();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch.get(&b"a"[..]), Some(&5));
        assert!(
            !batch.contains_key(&b"c"[..]),
            "a full buffer drops new keys"
        );
        assert!(buffer.is_empty());
        assert!(!buffer.record(b"c", 4));
        assert!(buffer.record(b"d", 6), "a flushed buffer asks again");
    }
}
