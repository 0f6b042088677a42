//! What the cache reports about itself, apart from the hot path: counters
//! per tier and of moves between tiers, compression figures, and (feature
//! `analytics`, in `report/snapshot.rs`) the snapshot of every tier, the
//! metrics and the cleanup task.

use std::hash::Hash;

use cache_core::Codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, DEMOTIONS, HOT_LOOKUPS, HOT_MISSES, PROMOTIONS};

#[cfg(feature = "analytics")]
mod snapshot;
#[cfg(feature = "analytics")]
pub use snapshot::{
    COLD_WINDOW, CacheStats, ColdKeySummary, HotKey, LOAD_EVENTS_TOTAL, TierSummary,
};

/// What one [`Cache::flush`] did, from the call until every write queued
/// before it had settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Writes the write-back flusher saved to the store meanwhile (for
    /// this flush, and for writes that came during it).
    pub saved: u64,
    /// Removals it applied to the store meanwhile.
    pub deleted: u64,
    /// Failed saves it scheduled again meanwhile.
    pub retries: u64,
    /// Writes it moved to the dead-letter list meanwhile.
    pub dead_lettered: u64,
    /// Keys still dirty when the flush returned (written after the call).
    pub dirty: u64,
    /// Entries the hot tier had evicted that the flush wrote into the warm
    /// tier (write-on-evict).
    pub demoted: u64,
    /// How long it took.
    pub elapsed: std::time::Duration,
}

impl FlushReport {
    /// The write-back part of a flush, between write-back's totals before
    /// and after it.
    #[cfg(feature = "policies")]
    pub(crate) fn between(
        before: &cache_policies::WriteBackStats,
        after: &cache_policies::WriteBackStats,
    ) -> Self {
        FlushReport {
            saved: after.saved - before.saved,
            deleted: after.deleted - before.deleted,
            retries: after.retries - before.retries,
            dead_lettered: after.dead_lettered - before.dead_lettered,
            dirty: after.dirty,
            ..FlushReport::default()
        }
    }
}

/// Counters of one tier since the cache was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    /// `"hot"` for the in-memory tier, otherwise the backend's name.
    pub name: String,
    /// Lookups this tier answered (with a value or a negative entry).
    pub hits: u64,
    /// Lookups this tier could not answer (the next tier was asked).
    pub misses: u64,
    /// Calls that failed and were skipped.
    pub errors: u64,
    /// Records that failed an integrity check or did not decode; each was
    /// treated as a miss and removed.
    pub corrupted: u64,
}

impl TierStats {
    /// Hits over lookups, 0 when there were none.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// How entries moved between tiers since the cache was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HierarchyStats {
    /// Lower-tier hits copied into the tiers above them.
    pub promotions: u64,
    /// Entries the hot tier evicted and wrote into the warm tier
    /// (write-on-evict).
    pub demotions: u64,
    /// Evicted entries not written to the warm tier because too many were
    /// waiting at once.
    pub demotions_dropped: u64,
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Promotions and demotions between tiers since the cache was built.
    pub fn hierarchy_stats(&self) -> HierarchyStats {
        let inner = self.inner();
        HierarchyStats {
            promotions: inner.counters.get(PROMOTIONS),
            demotions: inner.counters.get(DEMOTIONS),
            demotions_dropped: inner.policy.queue().map_or(0, |q| q.dropped()),
        }
    }

    /// Counters for the hot tier followed by each byte tier, in order.
    pub fn tier_stats(&self) -> Vec<TierStats> {
        let inner = self.inner();
        // A lookup is counted as it starts and its miss as it ends, so one
        // in flight may count as a hit for the moment.
        let hot = inner.counters.snapshot();
        let mut out = vec![TierStats {
            name: "hot".to_string(),
            hits: hot[HOT_LOOKUPS].saturating_sub(hot[HOT_MISSES]),
            misses: hot[HOT_MISSES],
            errors: 0,
            corrupted: 0,
        }];
        out.extend(inner.tiers.iter().map(|t| t.stats()));
        out
    }

    /// The compression statistics of each tier the builder compressed (the
    /// disk and Redis tiers, by default), in tier order with each tier's
    /// name: bytes in and out and the ratio per algorithm, and the values
    /// stored uncompressed. Each tier reports its own figures, even where
    /// two tiers share a name.
    #[cfg(feature = "compress")]
    pub fn compression_stats(&self) -> Vec<(String, cache_compress::CompressionStats)> {
        self.inner()
            .tiers
            .iter()
            .filter_map(|t| Some((t.name().to_string(), t.compression()?.compression_stats())))
            .collect()
    }

    /// Stored ÷ original bytes per data class, over every tier the builder
    /// compressed (feature `compress`), by class name.
    #[cfg(feature = "compress")]
    pub fn compression_by_class(&self) -> Vec<(String, f64)> {
        let mut by: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (_, stats) in self.compression_stats() {
            for c in stats.classes {
                let held = by.entry(c.class).or_default();
                held.0 += c.bytes_in;
                held.1 += c.bytes_out;
            }
        }
        by.into_iter()
            .filter(|(_, (given, _))| *given > 0)
            .map(|(class, (given, stored))| (class, stored as f64 / given as f64))
            .collect()
    }
}
