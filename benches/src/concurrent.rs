//! The caches the throughput and memory benchmarks set side by side,
//! behind one small interface so each benchmark is written once.

use std::fmt;

use tiercache::memory::MemoryCache;

/// A `u64 → u64` cache shared between threads, as the throughput and
/// memory benchmarks drive it.
///
/// The methods are the peers' own, called directly: the benchmarks are
/// generic over this trait, so no call goes through a virtual table.
pub trait ConcurrentCache: Send + Sync {
    /// A new, empty cache built by the crate's defaults, holding at most
    /// `capacity` entries.
    fn with_capacity(capacity: u64) -> Self
    where
        Self: Sized;

    /// The value for `key`, if the cache has it; counts as a use.
    fn get(&self, key: u64) -> Option<u64>;

    /// Stores `value` under `key`, replacing any earlier value.
    fn insert(&self, key: u64, value: u64);

    /// Applies whatever maintenance the cache defers (moka's pending
    /// tasks), so that [`entry_count`](Self::entry_count) and memory use
    /// are settled; a no-op for caches that defer nothing.
    fn sync(&self) {}

    /// How many entries the cache holds, as the crate counts them.
    fn entry_count(&self) -> u64;
}

/// Every cache the throughput and memory benchmarks compare, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CacheKind {
    /// `tiercache::memory::MemoryCache::builder().max_capacity(n).build()`.
    Tiercache,
    /// `moka::sync::Cache::new(n)`.
    Moka,
    /// `quick_cache::sync::Cache::new(n)`.
    QuickCache,
    /// `foyer_memory::CacheBuilder::new(n).build()`: foyer's default
    /// eviction (LRU) and weighter (every entry weighs 1).
    Foyer,
}

impl CacheKind {
    /// Every cache, tiercache first, then the peers.
    pub const ALL: [Self; 4] = [Self::Tiercache, Self::Moka, Self::QuickCache, Self::Foyer];

    /// The name in benchmark ids, on the command line and in JSON.
    pub fn id(self) -> &'static str {
        match self {
            Self::Tiercache => "tiercache",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::Foyer => "foyer",
        }
    }

    /// The column header in reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tiercache => "tiercache",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::Foyer => "foyer (LRU)",
        }
    }

    /// The cache named `id` (as [`CacheKind::id`] spells it, case
    /// insensitive).
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.id().eq_ignore_ascii_case(id.trim()))
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl ConcurrentCache for MemoryCache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        MemoryCache::builder().max_capacity(capacity).build()
    }

    fn get(&self, key: u64) -> Option<u64> {
        MemoryCache::get(self, &key)
    }

    fn insert(&self, key: u64, value: u64) {
        MemoryCache::insert(self, key, value);
    }

    fn entry_count(&self) -> u64 {
        MemoryCache::entry_count(self)
    }
}

impl ConcurrentCache for moka::sync::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        moka::sync::Cache::new(capacity)
    }

    fn get(&self, key: u64) -> Option<u64> {
        moka::sync::Cache::get(self, &key)
    }

    fn insert(&self, key: u64, value: u64) {
        moka::sync::Cache::insert(self, key, value);
    }

    fn sync(&self) {
        self.run_pending_tasks();
    }

    fn entry_count(&self) -> u64 {
        moka::sync::Cache::entry_count(self)
    }
}

impl ConcurrentCache for quick_cache::sync::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        quick_cache::sync::Cache::new(usize::try_from(capacity).expect("capacity fits usize"))
    }

    fn get(&self, key: u64) -> Option<u64> {
        quick_cache::sync::Cache::get(self, &key)
    }

    fn insert(&self, key: u64, value: u64) {
        quick_cache::sync::Cache::insert(self, key, value);
    }

    fn entry_count(&self) -> u64 {
        self.len() as u64
    }
}

impl ConcurrentCache for foyer_memory::Cache<u64, u64> {
    fn with_capacity(capacity: u64) -> Self {
        foyer_memory::CacheBuilder::new(usize::try_from(capacity).expect("capacity fits usize"))
            .build()
    }

    fn get(&self, key: u64) -> Option<u64> {
        // Entries are reference-counted handles; copy the value out and
        // drop the handle at once so the cache is free to evict it.
        foyer_memory::Cache::get(self, &key).map(|entry| *entry.value())
    }

    fn insert(&self, key: u64, value: u64) {
        drop(foyer_memory::Cache::insert(self, key, value));
    }

    fn entry_count(&self) -> u64 {
        // The default weighter weighs every entry 1, so usage counts them.
        self.usage() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: ConcurrentCache>() {
        let cache = C::with_capacity(1_000);
        assert_eq!(cache.get(1), None);
        cache.insert(1, 10);
        cache.insert(2, 20);
        cache.insert(2, 21);
        cache.sync();
        assert_eq!(cache.get(1), Some(10));
        assert_eq!(cache.get(2), Some(21));
        assert_eq!(cache.entry_count(), 2);
    }

    #[test]
    fn every_cache_gets_what_was_inserted() {
        round_trip::<MemoryCache<u64, u64>>();
        round_trip::<moka::sync::Cache<u64, u64>>();
        round_trip::<quick_cache::sync::Cache<u64, u64>>();
        round_trip::<foyer_memory::Cache<u64, u64>>();
    }

    #[test]
    fn ids_round_trip() {
        for kind in CacheKind::ALL {
            assert_eq!(CacheKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(CacheKind::from_id("arc"), None);
    }
}
