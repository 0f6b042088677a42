//! Per-tier counters.

/// Counters of one tier since the cache was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TierStats {
    /// `"hot"` for the in-memory tier, otherwise the backend's name.
    pub name: String,
    /// Lookups this tier answered.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
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
