//! What the log's thread, the flusher and the callers of write-back share:
//! the dirty keys, the counters, and the signals between them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::dirty::Dirty;
use crate::report::WriteBackStats;

#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) dirty: Mutex<Dirty>,
    /// The flusher has work: a full batch, a flush waiting, or closing.
    pub(crate) work: Notify,
    /// Writes settled: flushes waiting look again.
    pub(crate) progress: Notify,
    /// Room in the log was freed: appends waiting for it look again.
    pub(crate) space: Notify,
    /// Flushes waiting, which want the flusher not to wait for a batch.
    pub(crate) hurry: AtomicUsize,
    /// The last handle is gone: the flusher stops.
    pub(crate) closed: AtomicBool,
    /// The number of the last write the log made durable.
    pub(crate) last_seq: AtomicU64,
    /// How many dirty keys make a batch worth flushing at once: a full
    /// batch, or a full log when it holds fewer keys than a batch (writers
    /// then wait for room). The log's thread wakes the flusher at it.
    pub(crate) full_batch: AtomicUsize,
    pub(crate) counters: Counters,
}

/// Running totals since the cache opened.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) appended: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) saved: AtomicU64,
    pub(crate) deleted: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) corrupted: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) full: AtomicU64,
}

impl Shared {
    pub(crate) fn note_commit(&self, last_seq: u64, appended: usize) {
        self.last_seq.fetch_max(last_seq, Ordering::AcqRel);
        self.counters.commits.fetch_add(1, Ordering::Relaxed);
        self.counters
            .appended
            .fetch_add(appended as u64, Ordering::Relaxed);
    }

    /// Counts a write moved to the dead-letter list.
    pub(crate) fn dead_added(&self) {
        self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    /// After a commit's effects are in: wakes the flusher if a batch is
    /// full, appends if room was freed, flushes if writes settled.
    pub(crate) fn after_publish(&self, dirty: usize, freed: bool, settled: bool) {
        if dirty >= self.full_batch.load(Ordering::Relaxed) {
            self.work.notify_one();
        }
        if freed {
            self.space.notify_waiters();
        }
        if settled {
            self.progress.notify_waiters();
        }
    }

    pub(crate) fn stats(&self) -> WriteBackStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (dirty, dead_letters) = {
            let d = self.dirty.lock();
            (d.len() as u64, d.dead_len() as u64)
        };
        WriteBackStats {
            dirty,
            dead_letters,
            appended: get(&c.appended),
            log_commits: get(&c.commits),
            saved: get(&c.saved),
            deleted: get(&c.deleted),
            retries: get(&c.retries),
            dead_lettered: get(&c.dead_lettered),
            corrupted: get(&c.corrupted),
            replayed: get(&c.replayed),
            full: get(&c.full),
        }
    }
}
