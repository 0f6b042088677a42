//! The synchronous, concurrent, typed memory cache.

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::{
    Clock, LoaderErrors, Result, SingleFlight, StripedCounters, expiry_after, loader_error,
};
use parking_lot::{Mutex, RwLock};

use super::RemovalCause;
use super::builder::{MemoryCacheBuilder, check_capacity};
use super::chooser::WindowChooser;
use super::expiry::{ExpiryRule, NEVER};
use super::shard::{Read, Removed, Shard, key_hash};

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;
pub(crate) type Listener<K, V> = Arc<dyn Fn(K, V, RemovalCause) + Send + Sync>;
pub(crate) type PartitionFn<K> = Arc<dyn Fn(&K) -> usize + Send + Sync>;

/// A concurrent in-memory cache of typed values, bounded by count or weight.
///
/// Cloning the handle is cheap; clones share the same entries. Values are
/// returned by clone, so wrap values that are costly to clone in `Arc`.
///
/// What stays is decided by an adaptive W-TinyLFU policy: a frequency
/// sketch admits a newcomer only if it is more popular than the entry it
/// would displace, and the size of a recency window in front of it follows
/// the workload, so that both frequency-heavy and recency-heavy workloads
/// are served well. The window is chosen by simulating a few window sizes
/// on a sample of the keys (by a hill climber when a weigher is set).
///
/// The key space is split into partitions, each behind its own
/// reader-writer lock with its own policy, so threads touching different
/// partitions never contend, and readers of one partition do not exclude
/// each other: a hit only marks the entry, and the policy catches up on the
/// next write. Capacity is split evenly between partitions and each is kept
/// within its share on every write, so the total never exceeds
/// `max_capacity`, even momentarily.
///
/// Expired entries are never returned. A timer wheel reclaims them within
/// about a second of their expiry as writes advance it; they are also
/// removed when touched, when eviction reaches them, or by
/// [`purge_expired`](Self::purge_expired). Until then they count in
/// [`entry_count`](Self::entry_count).
///
/// ```
/// use cache_backends::memory::MemoryCache;
/// let cache: MemoryCache<u64, u64> = MemoryCache::builder().max_capacity(10_000).build();
/// cache.insert(1, 10);
/// assert_eq!(cache.get(&1), Some(10));
/// assert_eq!(cache.get_with(2, || 20), 20);
/// assert_eq!(cache.entry_count(), 2);
/// ```
pub struct MemoryCache<K, V> {
    inner: Arc<Inner<K, V>>,
}

struct Inner<K, V> {
    shards: Box<[RwLock<Shard<K, V>>]>,
    hasher: foldhash::fast::RandomState,
    partition_fn: Option<PartitionFn<K>>,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    /// The listener runs before the partition's lock is released.
    listener_in_lock: bool,
    ttl: Option<Duration>,
    rule: ExpiryRule,
    clock: Clock,
    /// The capacity, which [`MemoryCache::set_capacity`] may change.
    max_capacity: AtomicU64,
    /// Held by a resize, so that two resizes do not interleave their
    /// partitions' shares.
    resizing: Mutex<()>,
    /// Loads in flight; "not found" is part of a load's outcome, though
    /// the engine's own loaders always find a value.
    flights: SingleFlight<K, Option<V>>,
    exact_reads: bool,
    chooser: Option<WindowChooser>,
    /// Evictions and expirations, counted after each write's lock is
    /// released.
    /// Evicted (0) and expired (1) entries.
    removals: StripedCounters<2>,
}

mod listing;
mod restore;

impl<K, V> Clone for MemoryCache<K, V> {
    fn clone(&self) -> Self {
        MemoryCache {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> fmt::Debug for MemoryCache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache")
            .field(
                "max_capacity",
                &self.inner.max_capacity.load(Ordering::Relaxed),
            )
            .field("partitions", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

/// The default partition count: enough to spread threads (eight per core),
/// but never so many that a small cache's partitions hold only a handful of
/// entries each, which would make eviction noticeably less exact.
pub(crate) fn default_partitions(max_capacity: u64) -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    let by_threads = (cores * 8).next_power_of_two();
    let by_capacity = usize::try_from(max_capacity / 256)
        .unwrap_or(usize::MAX)
        .max(1);
    by_threads.min(by_capacity).max(1)
}

impl<K, V> MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts configuring a cache.
    pub fn builder() -> MemoryCacheBuilder<K, V> {
        MemoryCacheBuilder::default()
    }

    /// A cache holding at most `max_capacity` entries, with no expiry.
    pub fn new(max_capacity: u64) -> Self {
        Self::builder().max_capacity(max_capacity).build()
    }

    pub(crate) fn from_builder(b: MemoryCacheBuilder<K, V>) -> Self {
        let n = b
            .partitions
            .unwrap_or_else(|| default_partitions(b.max_capacity));
        let seed = foldhash::fast::RandomState::default().hash_one(0u64);
        // One hasher for the cache and its partitions: they recompute the
        // hashes the cache hands them.
        let hasher = foldhash::fast::RandomState::default();
        // Ghost caches count entries, so the chooser serves caches bounded
        // by count; with a weigher the hill climber sizes the window.
        let chooser = b
            .weigher
            .is_none()
            .then(|| WindowChooser::new(b.max_capacity, seed.rotate_left(17)));
        let shards = (0..n)
            .map(|i| {
                let capacity = partition_share(b.max_capacity, n, i);
                let climbs = chooser.is_none();
                let mut shard = Shard::new(
                    capacity,
                    n,
                    seed.wrapping_add(i as u64),
                    climbs,
                    hasher.clone(),
                    b.weigher.is_some(),
                );
                if let Some(chooser) = &chooser {
                    let (share, rejects) = chooser.config();
                    shard.set_window_share(share);
                    shard.set_rejects(rejects);
                }
                RwLock::new(shard)
            })
            .collect();
        MemoryCache {
            inner: Arc::new(Inner {
                shards,
                hasher,
                partition_fn: b.partition_fn,
                weigher: b.weigher,
                listener: b.listener,
                listener_in_lock: b.listener_in_lock,
                ttl: b.time_to_live,
                rule: ExpiryRule {
                    tti_ms: b
                        .time_to_idle
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                },
                clock: b.clock,
                max_capacity: AtomicU64::new(b.max_capacity),
                resizing: Mutex::new(()),
                flights: SingleFlight::new(),
                exact_reads: b.exact_reads,
                chooser,
                removals: StripedCounters::new(),
            }),
        }
    }

    #[inline]
    fn locate(&self, key: &K) -> (u32, &RwLock<Shard<K, V>>) {
        let hash = key_hash(&self.inner.hasher, key);
        let n = self.inner.shards.len();
        let idx = match &self.inner.partition_fn {
            Some(f) => f(key) % n,
            // Multiply-and-shift maps the low half of the hash onto the
            // partitions without a division. The choice rests on the top
            // bits of that half, which the table inside the partition uses
            // neither for its bucket index (the lowest bits, unless a
            // partition holds hundreds of millions of entries) nor for its
            // control byte (the top seven bits of the whole hash).
            None => ((u64::from(hash as u32) * n as u64) >> 32) as usize,
        };
        // The partition keeps the low half of the hash.
        (hash as u32, &self.inner.shards[idx])
    }

    fn removed(&self) -> Removed<K, V> {
        Removed::new(self.inner.listener.is_some())
    }

    /// Releases a partition's lock and reports what the change removed:
    /// after the lock is released, or before it with
    /// [`listener_in_lock`](super::MemoryCacheBuilder::listener_in_lock),
    /// so that the listener sees each key's removals in the order of the
    /// key's other changes.
    #[inline]
    fn release<G>(&self, guard: G, removed: Removed<K, V>) {
        if self.inner.listener_in_lock {
            self.notify(removed);
            drop(guard);
        } else {
            drop(guard);
            self.notify(removed);
        }
    }

    fn notify(&self, removed: Removed<K, V>) {
        if removed.evicted > 0 || removed.expired > 0 {
            self.inner.removals.add(EVICTED, removed.evicted);
            self.inner.removals.add(EXPIRED, removed.expired);
        }
        if let Some(listener) = &self.inner.listener {
            for (k, v, cause) in removed.into_items() {
                listener(k, v, cause);
            }
        }
    }

    /// The value for `key`, if present and unexpired; counts as a use.
    ///
    /// A hit takes only its partition's shared lock and changes no queue,
    /// so concurrent readers do not serialise.
    #[inline]
    pub fn get(&self, key: &K) -> Option<V> {
        let (hash, shard) = self.locate(key);
        if let Some(chooser) = &self.inner.chooser {
            chooser.record(hash);
        }
        if self.inner.exact_reads {
            return self.get_exact(hash, key, shard);
        }
        let clock = &self.inner.clock;
        // Bound first, so the shared lock is released before an expired
        // entry is removed under the exclusive one.
        let found = shard
            .read()
            .read(hash, key, self.inner.rule, || clock.now_ms());
        self.answer(found, hash, key, shard)
    }

    /// What a read found, as `get` returns it; an expired entry is removed.
    #[inline]
    fn answer(&self, found: Read<V>, hash: u32, key: &K, shard: &RwLock<Shard<K, V>>) -> Option<V> {
        match found {
            Read::Hit(v) => Some(v),
            Read::Miss => None,
            Read::Expired => self.remove_expired(hash, key, shard),
        }
    }

    /// `get` with the hit's bookkeeping applied at once (the hidden
    /// `exact_reads` option); kept out of line so the usual path stays small.
    #[cold]
    #[inline(never)]
    fn get_exact(&self, hash: u32, key: &K, shard: &RwLock<Shard<K, V>>) -> Option<V> {
        let clock = &self.inner.clock;
        let found = shard
            .write()
            .read_exact(hash, key, self.inner.rule, || clock.now_ms());
        self.answer(found, hash, key, shard)
    }

    /// Removes an entry a reader found expired; a miss.
    #[cold]
    #[inline(never)]
    fn remove_expired(&self, hash: u32, key: &K, shard: &RwLock<Shard<K, V>>) -> Option<V> {
        let mut removed = self.removed();
        let mut guard = shard.write();
        guard.remove_expired(
            hash,
            key,
            self.inner.rule,
            self.inner.clock.now_ms(),
            &mut removed,
        );
        self.release(guard, removed);
        None
    }

    /// Whether `key` has a live entry; does not count as a use.
    pub fn contains_key(&self, key: &K) -> bool {
        self.contains_key_where(key, |_| true)
    }

    /// Whether `key` has a live entry whose value `matches` accepts; does
    /// not count as a use. The byte tier and the typed cache use it to leave
    /// negative entries out, which hold no value.
    pub fn contains_key_where(&self, key: &K, matches: impl FnOnce(&V) -> bool) -> bool {
        let (hash, shard) = self.locate(key);
        shard.read().contains(
            hash,
            key,
            self.inner.rule,
            || self.inner.clock.now_ms(),
            matches,
        )
    }

    /// Stores a value, replacing any earlier one; it expires after the
    /// cache's time-to-live, if one is set.
    pub fn insert(&self, key: K, value: V) {
        self.insert_inner(key, value, NEVER);
    }

    /// Stores a value that expires after `ttl` (or the cache's time-to-live,
    /// whichever comes first). A zero or unrepresentable `ttl` is an error
    /// and changes nothing.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        let at = expiry_after(self.inner.clock.now_ms(), ttl)?;
        self.insert_inner(key, value, at);
        Ok(())
    }

    /// Stores a value expiring at an absolute time in unix milliseconds
    /// (`None`: only the cache's time-to-live applies). This is how a value
    /// promoted from a lower tier keeps its remaining lifetime. A time
    /// already past removes any earlier value and stores nothing.
    pub fn insert_with_expiry(&self, key: K, value: V, expires_at_ms: Option<u64>) {
        self.insert_inner(key, value, expires_at_ms.unwrap_or(NEVER));
    }

    fn insert_inner(&self, key: K, value: V, expires_at: u64) {
        self.insert_where(key, value, expires_at, None, None);
    }

    /// The one insert: unconditional for `restore: None` and `still:
    /// None`; for `restore: Some(frequency)`, only if the key has no live
    /// entry, with the frequency remembered first; with `still`, only if
    /// it answers `true` under the partition's lock.
    fn insert_where(
        &self,
        key: K,
        value: V,
        expires_at: u64,
        restore: Option<u8>,
        still: Option<&dyn Fn() -> bool>,
    ) -> bool {
        let clock = &self.inner.clock;
        let ttl_deadline = self.inner.ttl.map_or(NEVER, |ttl| {
            clock
                .now_ms()
                .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
        });
        let expires_at = expires_at.min(ttl_deadline);
        let weight = self.inner.weigher.as_ref().map_or(1, |w| w(&key, &value));
        let (hash, shard) = self.locate(&key);
        let mut removed = self.removed();
        let (feed, guard) = {
            let mut shard = shard.write();
            if still.is_some_and(|still| !still()) {
                return false;
            }
            if let Some(frequency) = restore {
                if shard.contains(hash, &key, self.inner.rule, || clock.now_ms(), |_| true) {
                    return false;
                }
                shard.remember_frequency(hash, frequency);
            }
            shard.insert(
                hash,
                key,
                value,
                weight,
                expires_at,
                self.inner.rule,
                || clock.now_ms(),
                &mut removed,
            );
            match &self.inner.chooser {
                Some(chooser) if chooser.due(shard.writes()) => {
                    // The configuration the ghosts chose at their last
                    // feed; this one's verdict reaches the partition on its
                    // next due write.
                    let (share, rejects) = chooser.config();
                    shard.set_window_share(share);
                    shard.set_rejects(rejects);
                    (true, shard)
                }
                _ => (false, shard),
            }
        };
        self.release(guard, removed);
        // The ghosts are fed after the partition's lock is released, so
        // feeding them never holds up the partition's readers and writers.
        if feed && let Some(chooser) = &self.inner.chooser {
            chooser.feed();
        }
        true
    }

    /// Removes `key`, returning its value if it was live.
    pub fn remove(&self, key: &K) -> Option<V> {
        let (hash, shard) = self.locate(key);
        let mut removed = self.removed();
        let mut guard = shard.write();
        let v = guard.remove(
            hash,
            key,
            self.inner.rule,
            || self.inner.clock.now_ms(),
            &mut removed,
        );
        self.release(guard, removed);
        v
    }

    /// Removes `key` only if it is live and `matches` accepts its value,
    /// returning the value removed. The test and the removal happen under
    /// the partition's write lock, so no insert of the key can land between
    /// them: a caller that removes a value it found damaged, or one it saw
    /// earlier, never removes a newer value written meanwhile.
    ///
    /// ```
    /// use cache_backends::memory::MemoryCache;
    /// let cache: MemoryCache<u32, String> = MemoryCache::builder().max_capacity(10).build();
    /// cache.insert(1, "new".to_string());
    /// assert_eq!(cache.remove_if(&1, |v| v == "old"), None);
    /// assert_eq!(cache.remove_if(&1, |v| v == "new"), Some("new".to_string()));
    /// assert_eq!(cache.get(&1), None);
    /// ```
    pub fn remove_if(&self, key: &K, matches: impl FnOnce(&V) -> bool) -> Option<V> {
        let (hash, shard) = self.locate(key);
        let mut removed = self.removed();
        let mut guard = shard.write();
        let v = guard.remove_if(
            hash,
            key,
            self.inner.rule,
            || self.inner.clock.now_ms(),
            matches,
            &mut removed,
        );
        self.release(guard, removed);
        v
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.inner.shards.iter() {
            let mut removed = self.removed();
            let mut guard = shard.write();
            guard.clear(&mut removed);
            self.release(guard, removed);
        }
    }

    /// Removes every expired entry now, returning how many.
    pub fn purge_expired(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let mut total = 0;
        for shard in self.inner.shards.iter() {
            let mut removed = self.removed();
            let mut guard = shard.write();
            guard.purge_expired(self.inner.rule, now, &mut removed);
            total += removed.count();
            self.release(guard, removed);
        }
        total
    }

    /// The number of entries held, including expired ones not yet removed.
    /// Exact once no writes are in flight.
    pub fn entry_count(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.read().len() as u64)
            .sum()
    }

    /// The total weight held (equal to [`entry_count`](Self::entry_count)
    /// without a weigher).
    pub fn weighted_size(&self) -> u64 {
        self.inner.shards.iter().map(|s| s.read().weight()).sum()
    }

    /// Entries evicted to keep the cache within capacity (or refused
    /// admission) since it was built.
    pub fn evicted_count(&self) -> u64 {
        self.inner.removals.get(EVICTED)
    }

    /// Entries removed because they expired, since the cache was built.
    pub fn expired_count(&self) -> u64 {
        self.inner.removals.get(EXPIRED)
    }

    /// The capacity: as configured, or as [`set_capacity`](Self::set_capacity)
    /// last set it.
    pub fn max_capacity(&self) -> u64 {
        self.inner.max_capacity.load(Ordering::Acquire)
    }

    /// Whether [`set_capacity`](Self::set_capacity) would accept
    /// `max_capacity`: the builder's rules (at least 1), and at least one
    /// unit for each of the partitions the cache was built with.
    pub fn check_capacity(&self, max_capacity: u64) -> Result<()> {
        check_capacity(max_capacity, Some(self.inner.shards.len()))
    }

    /// Changes the capacity at run time, as the builder's
    /// [`max_capacity`](MemoryCacheBuilder::max_capacity) sets it (entries,
    /// or total weight with a weigher). A value the builder would refuse (zero,
    /// or less than one unit per partition: the partition count stays as
    /// built) is an error and changes nothing.
    ///
    /// The partitions' shares are split again as the builder splits them.
    /// A shrink evicts at once, each partition down to its new share,
    /// through the usual eviction path: entries already expired first, then
    /// the policy's victims, each reported to the eviction listener (cause
    /// [`Size`](RemovalCause::Size), or `Expired`) and counted by
    /// [`evicted_count`](Self::evicted_count). A grow lets the partitions
    /// hold more from now on.
    ///
    /// Exact once quiescent: when this returns and no write is running,
    /// [`weighted_size`](Self::weighted_size) is at most the new capacity.
    /// Partitions are resized one after another, each under its own lock,
    /// so writes carry on meanwhile; while a resize runs, the total stays
    /// within the larger of the old and the new capacity, and within what
    /// [`max_capacity`](Self::max_capacity) reports (a grow reports the new
    /// capacity first, a shrink once every partition is done). Resizes do
    /// not overlap: a second one waits for the first.
    ///
    /// What the policy keeps: each partition's window keeps its share of
    /// the capacity (the window chooser's share, where it sizes the
    /// window), protected gets 80% of the rest as in a new partition, the
    /// hill climber's step follows the capacity and its current period
    /// starts over, and the memory of rejected candidates starts afresh for
    /// half the new share. The frequency sketch is kept (popularity does
    /// not change with the capacity, and the sketch grows by itself as
    /// entries arrive), and so are the window chooser's ghosts: they
    /// simulate the capacity the cache was built with, and what they choose
    /// is a share of the capacity, which the partitions apply to their new
    /// one; rebuilding them would lose their scores and leave the cache on
    /// the starting configuration until they filled again.
    ///
    /// ```
    /// use cache_backends::memory::MemoryCache;
    /// let cache: MemoryCache<u64, u64> = MemoryCache::builder()
    ///     .max_capacity(1_000)
    ///     .partitions(2)
    ///     .build();
    /// (0..1_000).for_each(|i| cache.insert(i, i));
    /// cache.set_capacity(10).unwrap();
    /// assert_eq!(cache.max_capacity(), 10);
    /// assert!(cache.weighted_size() <= 10);
    /// assert!(cache.set_capacity(1).is_err(), "two partitions need two units");
    /// assert_eq!(cache.max_capacity(), 10);
    /// ```
    pub fn set_capacity(&self, max_capacity: u64) -> Result<()> {
        let n = self.inner.shards.len();
        self.check_capacity(max_capacity)?;
        let _resizing = self.inner.resizing.lock();
        let grows = max_capacity > self.max_capacity();
        if grows {
            self.inner
                .max_capacity
                .store(max_capacity, Ordering::Release);
        }
        let clock = &self.inner.clock;
        for (i, shard) in self.inner.shards.iter().enumerate() {
            let mut removed = self.removed();
            let mut guard = shard.write();
            let config = self.inner.chooser.as_ref().map(|c| c.config());
            guard.set_capacity(
                partition_share(max_capacity, n, i),
                n,
                config.map(|(share, _)| share),
                self.inner.rule,
                || clock.now_ms(),
                &mut removed,
            );
            if let Some((_, rejects)) = config {
                guard.set_rejects(rejects);
            }
            self.release(guard, removed);
        }
        if !grows {
            self.inner
                .max_capacity
                .store(max_capacity, Ordering::Release);
        }
        Ok(())
    }

    /// The number of partitions.
    pub fn partition_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The clock this cache reads.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The value for `key`, computing and storing it with `init` on a miss.
    /// Concurrent callers for the same key wait for one `init` instead of
    /// each running their own.
    pub fn get_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        // A failing `try_get_with` on the same key does not answer this
        // caller: its own loader, which cannot fail, runs instead.
        self.load_blocking(key, LoaderErrors::Retried, || Ok(init()))
            .expect("this caller's own loader cannot fail")
    }

    /// Like [`get_with`](Self::get_with) with a fallible loader. A loader
    /// error reaches every caller waiting on the key (as an error of kind
    /// `Loader` whose source is the loader's error) and is not cached.
    pub fn try_get_with<E>(&self, key: K, init: impl FnOnce() -> Result<V, E>) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.load_blocking(key, LoaderErrors::Shared, || init().map_err(loader_error))
    }

    /// The async form of [`get_with`](Self::get_with): the future runs only
    /// in the one caller that leads the load.
    pub async fn get_with_async(&self, key: K, init: impl Future<Output = V>) -> V {
        // See `get_with`: another caller's loader error is not ours.
        self.load(key, LoaderErrors::Retried, async { Ok(init.await) })
            .await
            .expect("this caller's own loader cannot fail")
    }

    /// The async form of [`try_get_with`](Self::try_get_with).
    pub async fn try_get_with_async<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.load(key, LoaderErrors::Shared, async {
            init.await.map_err(loader_error)
        })
        .await
    }

    /// The synchronous loading methods: a hit, or one `init` per key through
    /// the flights, its value stored.
    fn load_blocking(
        &self,
        key: K,
        errors: LoaderErrors,
        init: impl FnOnce() -> Result<V>,
    ) -> Result<V> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let loaded = self.inner.flights.get_or_load_blocking(
            &key,
            errors,
            || Ok(self.get(&key)),
            || init().map(Some),
            |v| self.store_loaded(&key, v),
        );
        Self::loaded(loaded)
    }

    /// The asynchronous loading methods, as [`load_blocking`](Self::load_blocking).
    async fn load(
        &self,
        key: K,
        errors: LoaderErrors,
        init: impl Future<Output = Result<V>>,
    ) -> Result<V> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let key = &key;
        let loaded = self
            .inner
            .flights
            .get_or_load(
                key,
                errors,
                || async { Ok(self.get(key)) },
                || async { init.await.map(Some) },
                |v| async { self.store_loaded(key, v) },
            )
            .await;
        Self::loaded(loaded)
    }

    /// Stores what a load produced. The engine's loaders always produce a
    /// value, so there is no "not found" to remember.
    fn store_loaded(&self, key: &K, loaded: Option<V>) -> Result<()> {
        if let Some(v) = loaded {
            self.insert(key.clone(), v);
        }
        Ok(())
    }

    /// A load's outcome as the loading methods return it. Every loader the
    /// engine hands its flights yields a value and `look` only ends a
    /// flight with one, so a flight never ends with "not found".
    fn loaded(loaded: Result<Option<V>>) -> Result<V> {
        loaded.map(|v| v.expect("the engine's loads always yield a value"))
    }

    /// Checks every internal invariant of every partition: list links,
    /// table membership, counts, weights and capacity. Panics on the first
    /// violation. Meant for tests; it locks each partition in turn.
    pub fn validate(&self) {
        let mut total_capacity = 0;
        for shard in self.inner.shards.iter() {
            let s = shard.read();
            s.validate(self.inner.rule);
            total_capacity += s.capacity();
        }
        assert_eq!(
            total_capacity,
            self.max_capacity(),
            "partition capacities must add up to max_capacity"
        );
    }
}

/// The share of `max_capacity` that partition `i` of `partitions` holds:
/// an even split, the remainder spread one unit each over the first
/// partitions.
fn partition_share(max_capacity: u64, partitions: usize, i: usize) -> u64 {
    let n = partitions as u64;
    max_capacity / n + u64::from((i as u64) < max_capacity % n)
}

/// The removal counter of evictions.
const EVICTED: usize = 0;
/// The removal counter of expirations.
const EXPIRED: usize = 1;

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use cache_core::ManualClock;
    use parking_lot::Mutex;

    use super::*;

    #[test]
    fn entries_page_lists_live_entries_with_their_counts() {
        let clock = ManualClock::new(1_000);
        let cache: MemoryCache<u32, u32> = MemoryCache::builder()
            .max_capacity(1_000)
            .partitions(4)
            .clock(clock.clock())
            .build();
        for k in 0..100 {
            cache.insert(k, k * 10);
        }
        cache.insert_with_expiry(1_000, 0, Some(1_500));
        for _ in 0..6 {
            cache.get(&7);
        }
        clock.advance(Duration::from_secs(1));
        let (mut all, mut next) = cache.entries_page((0, 0), 7);
        while let Some(from) = next {
            let (more, after) = cache.entries_page(from, 7);
            assert!(more.len() <= 7);
            all.extend(more);
            next = after;
        }
        all.sort();
        // The expired entry is left out; every value is its key's.
        assert_eq!(all.len(), 100);
        assert!(all.iter().all(|&(k, v, _)| v == k * 10));
        // The key read six times counts more than one never read.
        let count = |key| all.iter().find(|e| e.0 == key).map(|e| e.2).unwrap();
        assert!(count(7) > count(8), "{} vs {}", count(7), count(8));
    }

    #[test]
    fn insert_if_absent_never_replaces_a_live_entry() {
        let clock = ManualClock::new(1_000);
        let cache: MemoryCache<u32, &str> = MemoryCache::builder()
            .max_capacity(100)
            .clock(clock.clock())
            .build();
        cache.insert(1, "newer");
        assert!(!cache.insert_if_absent(1, "restored", None, 3));
        assert_eq!(cache.get(&1), Some("newer"));
        assert!(cache.insert_if_absent(2, "restored", Some(2_000), 3));
        assert_eq!(cache.get(&2), Some("restored"));
        // An expired entry is no obstacle.
        clock.advance(Duration::from_secs(2));
        assert!(cache.insert_if_absent(2, "again", None, 0));
        assert_eq!(cache.get(&2), Some("again"));
        cache.validate();
    }

    #[test]
    fn a_remembered_frequency_carries_into_admission() {
        // A full partition of popular residents: strangers are mostly
        // turned away, newcomers remembered as popular mostly get in.
        let cache: MemoryCache<u32, u32> = MemoryCache::builder()
            .max_capacity(200)
            .partitions(1)
            .build();
        for k in 0..200 {
            cache.insert(k, k);
        }
        for _ in 0..6 {
            for k in 0..200 {
                cache.get(&k);
            }
        }
        let admitted =
            |keys: std::ops::Range<u32>| keys.clone().filter(|k| cache.get(k).is_some()).count();
        for k in 1_000..1_100 {
            cache.insert(k, k);
        }
        let strangers = admitted(1_000..1_100);
        for k in 2_000..2_100 {
            cache.remember_frequency(&k, 15);
            cache.insert(k, k);
        }
        let remembered = admitted(2_000..2_100);
        assert!(
            remembered > strangers + 25,
            "remembered {remembered}, strangers {strangers}"
        );
    }

    #[test]
    fn remove_if_removes_only_a_live_value_it_accepts() {
        let clock = ManualClock::new(1_000);
        let causes = Arc::new(Mutex::new(Vec::new()));
        let seen = causes.clone();
        let cache: MemoryCache<u32, String> = MemoryCache::builder()
            .max_capacity(100)
            .clock(clock.clock())
            .eviction_listener(move |k, _, cause| seen.lock().push((k, cause)))
            .build();
        cache.insert(1, "one".to_string());
        cache.insert_with_expiry(2, "two".to_string(), Some(2_000));

        // A value the predicate refuses stays, and nothing is reported.
        assert_eq!(cache.remove_if(&1, |v| v == "uno"), None);
        assert_eq!(cache.get(&1).as_deref(), Some("one"));
        // An absent key asks nothing.
        assert_eq!(cache.remove_if(&9, |_| panic!("no value to test")), None);
        // An accepted value is removed, returned, and reported as explicit.
        assert_eq!(cache.remove_if(&1, |v| v == "one").as_deref(), Some("one"));
        assert_eq!(cache.get(&1), None);
        // An expired value is reclaimed as an expiry, never returned.
        clock.advance(Duration::from_secs(1));
        assert_eq!(cache.remove_if(&2, |_| true), None);
        assert_eq!(cache.entry_count(), 0);
        assert_eq!(
            *causes.lock(),
            [(1, RemovalCause::Explicit), (2, RemovalCause::Expired)]
        );
        cache.validate();
    }

    /// Writers and compare-and-delete callers race on one key: a caller
    /// only ever removes the exact value it tested, so every value a writer
    /// wrote is either still there or was removed by a caller that named it.
    #[test]
    fn remove_if_never_removes_a_value_it_did_not_accept() {
        let cache: MemoryCache<u32, u64> = MemoryCache::builder().max_capacity(100).build();
        let removed = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let cache = &cache;
                s.spawn(move || {
                    for i in 0..5_000u64 {
                        cache.insert(0, t * 1_000_000 + i);
                    }
                });
            }
            for _ in 0..2 {
                let (cache, removed) = (&cache, &removed);
                s.spawn(move || {
                    for _ in 0..5_000 {
                        // Only values from the first writer are accepted.
                        if let Some(v) = cache.remove_if(&0, |v| *v < 1_000_000) {
                            removed.lock().push(v);
                        }
                    }
                });
            }
        });
        assert!(removed.lock().iter().all(|v| *v < 1_000_000));
        cache.validate();
    }
}
