//! What the disk tier has done, for metrics and tests.

use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::Removals;
use parking_lot::Mutex;

/// A snapshot of the disk tier's counters, from [`RedbBackend::stats`].
///
/// [`RedbBackend::stats`]: super::RedbBackend::stats
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedbStats {
    /// Key and record bytes held after the last commit; the quantity that
    /// `max_bytes` bounds.
    pub used_bytes: u64,
    /// Records that failed their integrity check and were deleted.
    pub corrupted: u64,
    /// Entries evicted to keep the file within `max_bytes`.
    pub evicted: u64,
    /// Expired entries deleted by the sweeper.
    pub expired: u64,
    /// Durable commits made since the tier was opened (with
    /// [`Durability::Periodic`](super::Durability::Periodic), the periodic
    /// flushes among them).
    pub durable_commits: u64,
    /// Keys looked up by the tier's reader threads: every lookup made
    /// inside a tokio runtime, and those made outside one when
    /// [`inline_reads`](super::RedbBackendBuilder::inline_reads) is off.
    /// The other lookups ran on their callers' threads.
    pub handed_off: u64,
    /// Times the tier closed and reopened its file to recover from an I/O
    /// error (redb refuses every transaction after one until then).
    pub reopens: u64,
}

/// What one write transaction changed in the counters, applied only once
/// it has committed so that a failed commit counts nothing.
#[derive(Clone, Debug, Default)]
pub(super) struct Delta {
    pub(super) corrupted: u64,
    pub(super) evicted: u64,
    pub(super) expired: u64,
    /// The evicted and expired entries by class, where the record said.
    pub(super) classes: Removals,
}

/// The live counters behind [`RedbStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    used_bytes: AtomicU64,
    corrupted: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    durable_commits: AtomicU64,
    handed_off: AtomicU64,
    reopens: AtomicU64,
    /// Evictions and expirations per class; written once per commit that
    /// removed something, on the writer thread.
    classes: Mutex<Removals>,
}

impl Counters {
    /// Counters for a file that already holds `used_bytes`.
    pub(super) fn new(used_bytes: u64) -> Self {
        let counters = Counters::default();
        counters.used_bytes.store(used_bytes, Ordering::Relaxed);
        counters
    }

    /// Records a committed transaction.
    pub(super) fn committed(&self, used_bytes: u64, delta: Delta, durable: bool) {
        self.used_bytes.store(used_bytes, Ordering::Relaxed);
        self.corrupted.fetch_add(delta.corrupted, Ordering::Relaxed);
        self.evicted.fetch_add(delta.evicted, Ordering::Relaxed);
        self.expired.fetch_add(delta.expired, Ordering::Relaxed);
        if !delta.classes.by_class.is_empty() {
            self.classes.lock().merge(&delta.classes);
        }
        if durable {
            self.durable_commits.fetch_add(1, Ordering::Release);
        }
    }

    /// Records a reopen of the file, which now holds `used_bytes`.
    pub(super) fn reopened(&self, used_bytes: u64) {
        self.used_bytes.store(used_bytes, Ordering::Relaxed);
        self.reopens.fetch_add(1, Ordering::Relaxed);
    }

    /// Records `keys` lookups served by a reader thread.
    pub(super) fn handed_off(&self, keys: usize) {
        self.handed_off.fetch_add(keys as u64, Ordering::Relaxed);
    }

    /// Evictions and expirations, in all and per class.
    pub(super) fn removals(&self) -> Removals {
        let by_class = self.classes.lock().by_class.clone();
        let mut removals = Removals::default();
        removals.evicted = self.evicted.load(Ordering::Relaxed);
        removals.expired = self.expired.load(Ordering::Relaxed);
        removals.by_class = by_class;
        removals
    }

    /// The current values.
    pub(super) fn snapshot(&self) -> RedbStats {
        RedbStats {
            used_bytes: self.used_bytes.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            durable_commits: self.durable_commits.load(Ordering::Acquire),
            handed_off: self.handed_off.load(Ordering::Relaxed),
            reopens: self.reopens.load(Ordering::Relaxed),
        }
    }
}
