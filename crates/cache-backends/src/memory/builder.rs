//! Configuration of a [`MemoryCache`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Clock, Error, ErrorKind, Result, validate_ttl};

use super::RemovalCause;
use super::cache::{Listener, MemoryCache, PartitionFn, Weigher};

/// Builds a [`MemoryCache`]; start from [`MemoryCache::builder`].
pub struct MemoryCacheBuilder<K, V> {
    pub(crate) max_capacity: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) time_to_idle: Option<Duration>,
    pub(crate) listener: Option<Listener<K, V>>,
    pub(crate) listener_in_lock: bool,
    pub(crate) partitions: Option<usize>,
    pub(crate) partition_fn: Option<PartitionFn<K>>,
    pub(crate) clock: Clock,
    pub(crate) exact_reads: bool,
}

impl<K, V> Default for MemoryCacheBuilder<K, V> {
    fn default() -> Self {
        MemoryCacheBuilder {
            max_capacity: u64::MAX,
            weigher: None,
            time_to_live: None,
            time_to_idle: None,
            listener: None,
            listener_in_lock: false,
            partitions: None,
            partition_fn: None,
            clock: Clock::system(),
            exact_reads: false,
        }
    }
}

impl<K, V> fmt::Debug for MemoryCacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("weigher", &self.weigher.is_some())
            .field("time_to_live", &self.time_to_live)
            .field("time_to_idle", &self.time_to_idle)
            .field("listener", &self.listener.is_some())
            .field("partitions", &self.partitions)
            .field("partition_fn", &self.partition_fn.is_some())
            .finish()
    }
}

impl<K, V> MemoryCacheBuilder<K, V>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The most the cache holds: a number of entries, or the total weight
    /// when a [`weigher`](Self::weigher) is set. Unbounded by default.
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// Gives each entry a weight (for example its size in bytes), so that
    /// `max_capacity` bounds the total weight instead of the count.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// Entries expire this long after they were written.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Entries expire this long after they were last read or written.
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.time_to_idle = Some(tti);
        self
    }

    /// Called with every entry that leaves the cache and why. It runs on the
    /// thread that caused the removal, after the cache's internal lock is
    /// released, so it may call back into the cache.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Runs the [`eviction_listener`](Self::eviction_listener) before the
    /// partition's lock is released rather than after, so that it sees the
    /// removal of a key before any later change of that key can happen: a
    /// caller that changes a key after its value was evicted knows the
    /// listener has already been told. The listener must then be quick and
    /// must not call into the cache, which would deadlock.
    pub fn listener_in_lock(mut self, in_lock: bool) -> Self {
        self.listener_in_lock = in_lock;
        self
    }

    /// Splits the cache into this many independent partitions, each with an
    /// equal share of the capacity and its own eviction. By default the
    /// count follows the machine's parallelism and the capacity.
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Chooses the partition of each key (taken modulo the partition count)
    /// instead of hashing, for example to keep one tenant's keys together so
    /// one tenant cannot evict another's.
    pub fn partition_fn(mut self, f: impl Fn(&K) -> usize + Send + Sync + 'static) -> Self {
        self.partition_fn = Some(Arc::new(f));
        self
    }

    /// The clock used for expiry (a manual clock in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Applies each hit's reordering at once, under the partition's
    /// exclusive lock, instead of deferring it to the next eviction scan.
    /// Hits then serialise, so this is only for measuring what the
    /// deferred bookkeeping costs in hit ratio (the trace simulator's
    /// "exact" column).
    #[doc(hidden)]
    pub fn exact_reads(mut self, exact: bool) -> Self {
        self.exact_reads = exact;
        self
    }

    /// Builds the cache, or explains which setting is invalid.
    pub fn try_build(self) -> Result<MemoryCache<K, V>> {
        for ttl in [self.time_to_live, self.time_to_idle].into_iter().flatten() {
            validate_ttl(ttl)?;
        }
        check_capacity(self.max_capacity, self.partitions)?;
        if self.partitions == Some(0) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "partitions must be at least 1",
            ));
        }
        if self.partition_fn.is_some() && self.partitions.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a partition function needs an explicit partition count",
            ));
        }
        Ok(MemoryCache::from_builder(self))
    }

    /// Builds the cache.
    ///
    /// # Panics
    ///
    /// If a setting is invalid (a zero capacity or TTL, zero partitions, or
    /// more partitions than capacity); [`try_build`](Self::try_build)
    /// returns the error instead.
    pub fn build(self) -> MemoryCache<K, V> {
        match self.try_build() {
            Ok(c) => c,
            Err(e) => panic!("invalid MemoryCache configuration: {e}"),
        }
    }
}

/// Checks that `max_capacity` can be shared by `partitions` (when the
/// caller chose the count): the builder's rule, which
/// [`MemoryCache::set_capacity`] applies too.
pub(crate) fn check_capacity(max_capacity: u64, partitions: Option<usize>) -> Result<()> {
    if max_capacity == 0 {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            "max_capacity must be at least 1",
        ));
    }
    if let Some(p) = partitions
        && (p as u64) > max_capacity
    {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("{p} partitions cannot share a capacity of {max_capacity}"),
        ));
    }
    Ok(())
}
