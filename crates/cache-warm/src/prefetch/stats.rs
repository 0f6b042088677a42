//! What the prefetcher has done, and how well its predictions served.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::WarmOutcome;

/// A snapshot of a [`Prefetcher`](crate::Prefetcher)'s counters, from
/// [`Prefetcher::stats`](crate::Prefetcher::stats).
///
/// Every prediction is either skipped because the cache already holds it
/// (`predicted - issued - deduplicated - dropped` of them, while running),
/// or `issued`, `deduplicated` or `dropped`; every issued key ends `warmed`,
/// `present`, `missing` or `failed`, or is still `queued` or `in_flight`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrefetchStats {
    /// Lookups observed.
    pub observed: u64,
    /// Observed lookups that missed.
    pub misses: u64,
    /// Keys the successor table holds successors for now.
    pub learned_keys: u64,
    /// Successors predicted after lookups (before the presence check).
    pub predicted: u64,
    /// Predicted keys queued to be fetched.
    pub issued: u64,
    /// Predicted keys not queued because they were already queued or in
    /// flight.
    pub deduplicated: u64,
    /// Predicted keys not queued because the queue was full.
    pub dropped: u64,
    /// Fetches that put the key's value in the cache.
    pub warmed: u64,
    /// Fetches that found the key already in the cache.
    pub present: u64,
    /// Fetches that found no value for the key.
    pub missing: u64,
    /// Fetches that failed (or panicked).
    pub failed: u64,
    /// Reads that hit a prefetched entry before any other read of it.
    pub used: u64,
    /// Prefetched entries forgotten unread: past the tracking bound, or
    /// read as a miss (evicted before use).
    pub unused: u64,
    /// Keys waiting to be fetched now.
    pub queued: u64,
    /// Fetches running now.
    pub in_flight: u64,
}

impl PrefetchStats {
    /// The share of prefetched entries that were read: `used / warmed`, or
    /// 1.0 when nothing was warmed (no prefetch was wasted).
    pub fn precision(&self) -> f64 {
        if self.warmed == 0 {
            1.0
        } else {
            self.used as f64 / self.warmed as f64
        }
    }

    /// The share of would-be misses the prefetcher turned into hits:
    /// `used / (used + misses)`, or 0.0 when there were neither.
    pub fn coverage(&self) -> f64 {
        let would_miss = self.used + self.misses;
        if would_miss == 0 {
            0.0
        } else {
            self.used as f64 / would_miss as f64
        }
    }
}

/// The counts of fetch outcomes, written by the fetch tasks.
#[derive(Default)]
pub(super) struct OutcomeCounts {
    warmed: AtomicU64,
    present: AtomicU64,
    missing: AtomicU64,
    failed: AtomicU64,
}

impl OutcomeCounts {
    /// Counts one outcome.
    pub(super) fn record(&self, outcome: &WarmOutcome) {
        let counter = match outcome {
            WarmOutcome::Warmed => &self.warmed,
            WarmOutcome::Present => &self.present,
            WarmOutcome::Missing => &self.missing,
            WarmOutcome::Failed(_) => &self.failed,
        };
        // The counts are read only for stats, which need no ordering with
        // other memory.
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counts into `stats`.
    pub(super) fn fill(&self, stats: &mut PrefetchStats) {
        stats.warmed = self.warmed.load(Ordering::Relaxed);
        stats.present = self.present.load(Ordering::Relaxed);
        stats.missing = self.missing.load(Ordering::Relaxed);
        stats.failed = self.failed.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_and_coverage() {
        let mut s = PrefetchStats::default();
        assert_eq!(s.precision(), 1.0);
        assert_eq!(s.coverage(), 0.0);
        s.warmed = 10;
        s.used = 4;
        s.misses = 12;
        assert_eq!(s.precision(), 0.4);
        assert_eq!(s.coverage(), 0.25);
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        let counts = OutcomeCounts::default();
        counts.record(&WarmOutcome::Warmed);
        counts.record(&WarmOutcome::Warmed);
        counts.record(&WarmOutcome::Missing);
        counts.record(&WarmOutcome::Failed(cache_core::Error::new(
            cache_core::ErrorKind::Backend,
            "down",
        )));
        let mut s = PrefetchStats::default();
        counts.fill(&mut s);
        assert_eq!((s.warmed, s.present, s.missing, s.failed), (2, 0, 1, 1));
    }
}
