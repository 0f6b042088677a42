//! What a Redis backend has been through, for metrics and tests.

/// Counters of a [`RedisBackend`](super::RedisBackend) since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Values under this backend's prefix that were not valid records
    /// (written by another program, truncated, or of another type); each
    /// was answered as a miss and deleted.
    pub corrupted: u64,
    /// Calls that failed because a server was unreachable or too slow, or
    /// that its circuit breaker refused.
    pub failures: u64,
    /// How many times a circuit breaker opened.
    pub breaker_trips: u64,
    /// Circuit breakers open now (one per server connection; a cluster has
    /// one per primary).
    pub open_breakers: usize,
    /// Server connections that are up now.
    pub connected: usize,
    /// Server connections held (one, or one per cluster node known), not
    /// counting the subscriber connections of
    /// [`track_removals`](super::RedisBackendBuilder::track_removals).
    pub connections: usize,
    /// Eviction and expiry notifications that arrived faster than they
    /// were counted and were dropped, so
    /// [`removals`](cache_core::Backend::removals) may fall short by up to
    /// this many. Zero unless removals are tracked.
    pub missed_notifications: u64,
}
