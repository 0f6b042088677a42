//! The last key read by each stream, so that each lookup can be learned as
//! the successor of the one before it in the same stream.
//!
//! The table is a fixed number of slots indexed by the stream id's hash,
//! each holding one `(stream id, last key hash)`. Two streams that share a
//! slot evict each other: the next lookup of either finds the other's id
//! and learns nothing, so a collision loses one transition and never
//! teaches a false one. Its size does not grow with the number of streams,
//! which the caller chooses and may never reuse.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// How many streams are followed at once (a power of two).
pub(super) const STREAM_SLOTS: usize = 1024;

#[derive(Clone, Copy, Default)]
struct Slot {
    occupied: bool,
    stream: u64,
    last: u64,
}

/// The last key of each recently active stream.
pub(super) struct Streams {
    slots: Box<[Mutex<Slot>]>,
    hasher: RandomState,
}

impl Streams {
    /// An empty table.
    pub(super) fn new() -> Self {
        Streams {
            slots: (0..STREAM_SLOTS)
                .map(|_| Mutex::new(Slot::default()))
                .collect(),
            hasher: RandomState::default(),
        }
    }

    /// Records `key_hash` as the last key of `stream`, and returns the key
    /// it read before, if its slot still holds it.
    pub(super) fn advance(&self, stream: u64, key_hash: u64) -> Option<u64> {
        // A mask keeps the index in range; the slot count is a power of two.
        let index = self.hasher.hash_one(stream) as usize & (STREAM_SLOTS - 1);
        let mut slot = self.slots[index].lock();
        let previous = (slot.occupied && slot.stream == stream).then_some(slot.last);
        *slot = Slot {
            occupied: true,
            stream,
            last: key_hash,
        };
        previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_remembers_its_own_last_key() {
        let streams = Streams::new();
        assert_eq!(streams.advance(1, 10), None);
        assert_eq!(streams.advance(2, 20), None);
        assert_eq!(streams.advance(1, 11), Some(10));
        assert_eq!(streams.advance(2, 21), Some(20));
        assert_eq!(streams.advance(1, 12), Some(11));
    }

    #[test]
    fn colliding_streams_lose_a_transition_rather_than_mix() {
        let streams = Streams::new();
        // Far more streams than slots: some share a slot, and no stream may
        // ever see another stream's key as its own previous one.
        let n = 4 * STREAM_SLOTS as u64;
        for stream in 0..n {
            streams.advance(stream, stream * 1000);
        }
        let mut kept = 0;
        for stream in 0..n {
            if let Some(last) = streams.advance(stream, stream * 1000 + 1) {
                assert_eq!(last, stream * 1000);
                kept += 1;
            }
        }
        assert!(kept < n);
    }
}
