//! The async, typed, tiered cache.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{
    Classes, Clock, Codec, DynBackend, Entry, Flags, Limits, Lookup, Meta, Placement, Postcard,
    Result, SingleFlight, StripedCounters, expiry_after,
};
use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::CacheBuilder;
use crate::hot::{ClassNames, Evicted, HotTier, Slot};
use crate::options::InsertOptions;
use crate::promotion::HitWindow;
use crate::stats::{HierarchyStats, TierStats};
use crate::tier::Tier;

mod load;
mod observe;

use observe::{Sampled, Tracked};

/// A typed cache over a hierarchy of tiers: an in-memory hot tier holding
/// `V` itself, then any number of byte tiers (disk, Redis, ...) in order.
///
/// - [`get`](Self::get) answers from the hot tier without decoding; on a
///   hot miss it asks each lower tier in turn, and a hit there is decoded
///   once and promoted into every tier above it with its *remaining* time
///   to live.
/// - [`insert`](Self::insert) writes through to every tier;
///   [`remove`](Self::remove) removes from every tier.
/// - A tier that fails is skipped and counted (see
///   [`tier_stats`](Self::tier_stats)); the call is answered from the other
///   tiers. Only errors caused by the caller's input (an oversized key or
///   value, an invalid TTL, a value the codec cannot encode) are returned,
///   and they are detected before any tier is changed.
/// - [`get_with`](Self::get_with) and [`try_get_with`](Self::try_get_with)
///   run the loader once per key however many callers wait.
///
/// Cloning the handle is cheap and clones share everything.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use tiercache::Cache;
///
/// let cache: Cache<u64, String> = Cache::builder()
///     .max_capacity(10_000)
///     .time_to_live(Duration::from_secs(300))
///     .build()
///     .await?;
/// cache.insert(1, "one".to_string()).await?;
/// assert_eq!(cache.get(&1).await?, Some("one".to_string()));
/// let two = cache.get_with(2, async { "two".to_string() }).await?;
/// assert_eq!(two, "two");
/// # Ok::<(), tiercache::Error>(())
/// # }).unwrap();
/// ```
pub struct Cache<K, V, C = Postcard> {
    inner: Arc<Inner<K, V, C>>,
}

struct Inner<K, V, C> {
    hot: HotTier<K, V>,
    tiers: Vec<Tier>,
    codec: C,
    clock: Clock,
    time_to_live: Option<Duration>,
    limits: Limits,
    classes: Classes,
    class_names: ClassNames,
    /// `None` promotes on every lower-tier hit.
    promotion: Option<HitWindow>,
    /// Set with write-on-evict: what the hot tier evicted, waiting for the
    /// warm tier. `None` writes through.
    evicted: Option<Arc<Evicted<K, V>>>,
    #[cfg_attr(not(feature = "compress"), allow(dead_code))]
    compressed: Vec<CompressedTier>,
    #[cfg(feature = "analytics")]
    hot_analytics: Option<Arc<crate::report::HotAnalytics>>,
    #[cfg(feature = "analytics")]
    tier_analytics: Vec<cache_analytics::Analytics<Arc<dyn DynBackend>>>,
    flights: SingleFlight<K, V>,
    /// Hot lookups and misses, promotions and demotions, by the indexes
    /// below. Striped: every hot lookup adds to one, from every thread.
    counters: StripedCounters<4>,
    /// A lookup is sampled by analytics when the running count of its
    /// thread's lookup counter has these bits clear (sampling one in
    /// `mask + 1`); all bits set, and so only the first, without analytics.
    #[cfg_attr(not(feature = "analytics"), allow(dead_code))]
    sample_mask: u64,
}

/// Lookups of the hot tier, counted as they start: the running count of
/// a thread's copy also decides which lookups analytics samples.
const HOT_LOOKUPS: usize = 0;
/// Lookups it could not answer.
const HOT_MISSES: usize = 1;
/// Lower-tier hits copied into the tiers above.
const PROMOTIONS: usize = 2;
/// Hot-tier evictions written into the warm tier.
const DEMOTIONS: usize = 3;

/// Everything [`Cache::from_parts`] assembles, from the builder.
pub(crate) struct Parts<K, V, C> {
    pub(crate) hot: HotTier<K, V>,
    pub(crate) tiers: Vec<Arc<dyn DynBackend>>,
    pub(crate) codec: C,
    pub(crate) clock: Clock,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) classes: Classes,
    pub(crate) promotion: Option<HitWindow>,
    pub(crate) evicted: Option<Arc<Evicted<K, V>>>,
    pub(crate) compressed: Vec<CompressedTier>,
    #[cfg(feature = "analytics")]
    pub(crate) hot_analytics: Option<Arc<crate::report::HotAnalytics>>,
    #[cfg(feature = "analytics")]
    pub(crate) tier_analytics: Vec<cache_analytics::Analytics<Arc<dyn DynBackend>>>,
}

/// A tier the builder wrapped in compression, and how to read its
/// statistics.
pub(crate) struct CompressedTier {
    #[cfg_attr(not(feature = "compress"), allow(dead_code))]
    pub(crate) name: String,
    #[cfg(feature = "compress")]
    pub(crate) stats: Box<dyn Fn() -> cache_compress::CompressionStats + Send + Sync>,
}

impl<K, V, C> Clone for Cache<K, V, C> {
    fn clone(&self) -> Self {
        Cache {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V, C: Codec> fmt::Debug for Cache<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("hot", &self.inner.hot)
            .field(
                "tiers",
                &self
                    .inner
                    .tiers
                    .iter()
                    .map(|t| t.backend.dyn_name())
                    .collect::<Vec<_>>(),
            )
            .field("codec", &self.inner.codec.name())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V, Postcard>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Starts configuring a cache.
    pub fn builder() -> CacheBuilder<K, V, Postcard> {
        CacheBuilder::default()
    }
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    pub(crate) fn from_parts(parts: Parts<K, V, C>) -> Self {
        #[cfg(feature = "analytics")]
        let sample_mask = parts
            .hot_analytics
            .as_ref()
            .map_or(u64::MAX, |a| a.sample_mask);
        #[cfg(not(feature = "analytics"))]
        let sample_mask = u64::MAX;
        Cache {
            inner: Arc::new(Inner {
                tiers: parts.tiers.into_iter().map(Tier::new).collect(),
                class_names: ClassNames::default(),
                hot: parts.hot,
                codec: parts.codec,
                clock: parts.clock,
                time_to_live: parts.time_to_live,
                limits: parts.limits,
                classes: parts.classes,
                promotion: parts.promotion,
                evicted: parts.evicted,
                compressed: parts.compressed,
                #[cfg(feature = "analytics")]
                hot_analytics: parts.hot_analytics,
                #[cfg(feature = "analytics")]
                tier_analytics: parts.tier_analytics,
                flights: SingleFlight::new(),
                counters: StripedCounters::new(),
                sample_mask,
            }),
        }
    }

    fn encode_key(&self, key: &K) -> Result<Bytes> {
        let bytes = Bytes::from(self.inner.codec.encode(key)?);
        self.inner.limits.check_key(&bytes)?;
        Ok(bytes)
    }

    /// The value for `key`, from the nearest tier that has it.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        let sample = self.sample_lookup(key);
        let found = self.get_counted(key).await;
        self.sample_done(sample, Sampled::Lookup);
        found
    }

    /// A value from the hot tier, counting the hit's class when analytics
    /// is on.
    #[inline]
    fn hot_get(&self, key: &K) -> Option<V> {
        let slot = self.inner.hot.engine.get(key)?;
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics {
            a.hit(slot.class);
            if slot.tracked {
                self.track_followed(key, None, Tracked::Hit);
            }
        }
        Some(slot.value)
    }

    /// [`get`](Self::get), with the hot tier's counters.
    async fn get_counted(&self, key: &K) -> Result<Option<V>> {
        if let Some(v) = self.hot_get(key) {
            return Ok(Some(v));
        }
        self.inner.counters.add(HOT_MISSES, 1);
        if self.inner.tiers.is_empty() {
            self.track(key, None, Tracked::Miss);
            return Ok(None);
        }
        let kb = self.encode_key(key)?;
        let found = self.get_lower(key, &kb).await;
        if matches!(found, Ok(None)) {
            self.track(key, Some(&kb), Tracked::Miss);
        }
        found
    }

    /// The leader of a load looks again, because another load may have
    /// finished between its first look and its turn; this second look is
    /// not a new request, so the hot tier's counters are left alone.
    async fn get_uncounted(&self, key: &K) -> Result<Option<V>> {
        if let Some(v) = self.inner.hot.get(key) {
            return Ok(Some(v));
        }
        if self.inner.tiers.is_empty() {
            return Ok(None);
        }
        let kb = self.encode_key(key)?;
        self.get_lower(key, &kb).await
    }

    /// Asks each byte tier in order; promotes the first hit.
    async fn get_lower(&self, key: &K, kb: &Bytes) -> Result<Option<V>> {
        for (i, tier) in self.inner.tiers.iter().enumerate() {
            if tier.is_stale(kb) {
                // A write or removal failed here earlier: what it holds
                // for the key may be out of date, so it is not asked.
                tier.settle(kb).await;
                tier.misses.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let entry = match tier.backend.dyn_get(kb).await {
                Ok(Lookup::Hit(entry)) => entry,
                Ok(Lookup::Negative(_)) => {
                    tier.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
                Ok(Lookup::Miss | Lookup::Bypassed) => {
                    tier.misses.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    tier.count_error(e.kind());
                    continue;
                }
            };
            // A tier must not return expired entries, but clocks of
            // different machines disagree; the cache's own clock decides.
            let now = self.inner.clock.now_ms();
            if entry.meta.is_expired(now) {
                tier.misses.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if entry.meta.is_negative() {
                tier.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            let value: V = match self.inner.codec.decode(&entry.value) {
                Ok(v) => v,
                Err(_) => {
                    // A record that does not decode is never returned: it
                    // is dropped from the tier and counted as corrupted.
                    tier.corrupted.fetch_add(1, Ordering::Relaxed);
                    let _ = tier.backend.dyn_remove(kb).await;
                    continue;
                }
            };
            tier.hits.fetch_add(1, Ordering::Relaxed);
            if self.is_tracked(key) {
                self.track(key, Some(kb), Tracked::Hit);
            }
            let due = match &self.inner.promotion {
                Some(window) => window.hit(kb, now),
                None => true,
            };
            if due {
                self.promote(i, key, kb, &value, entry).await;
            }
            return Ok(Some(value));
        }
        Ok(None)
    }

    /// Copies a hit from tier `found_in` into every tier above it that its
    /// placement allows, keeping its absolute expiry (and so its remaining
    /// time to live).
    async fn promote(&self, found_in: usize, key: &K, kb: &Bytes, value: &V, entry: Entry) {
        self.inner.counters.add(PROMOTIONS, 1);
        let placement = if entry.meta.flags.contains(Flags::LOWER_ONLY) {
            Placement::DiskOnly
        } else {
            self.inner.classes.policy(&entry.meta.class).placement
        };
        if placement.in_memory() {
            // The warm tier holds this value once the writes below are
            // done (or held it already), so evicting it writes nothing.
            let mut slot = self.slot(value.clone(), &entry.meta, Placement::Everywhere, true);
            slot.tracked = self.is_tracked(key);
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, entry.meta.expires_at_ms);
        }
        let above = &self.inner.tiers[..found_in];
        let writes = above
            .iter()
            .map(|t| t.backend.dyn_insert(kb.clone(), entry.clone()));
        for (tier, result) in above.iter().zip(join_all(writes).await) {
            match result {
                Ok(()) => tier.mark_current(kb),
                Err(e) => {
                    tier.count_error(e.kind());
                    tier.mark_stale(kb);
                }
            }
        }
        self.demote_evicted().await;
    }

    /// A hot-tier slot for `value` with `meta`'s expiry and class.
    fn slot(&self, value: V, meta: &Meta, placement: Placement, clean: bool) -> Slot<V> {
        Slot {
            value,
            expires_at_ms: meta.expires_at_ms,
            created_at_ms: meta.created_at_ms,
            class: self.inner.class_names.index(&meta.class),
            placement,
            clean,
            tracked: false,
        }
    }

    /// Writes what the hot tier evicted into the warm tier (write-on-evict),
    /// with each entry's remaining time to live. The call that made room
    /// in the hot tier waits for it, so once that call returns, what it
    /// evicted is in the warm tier and a later `remove` reaches it there.
    async fn demote_evicted(&self) {
        let (Some(evicted), Some(warm)) = (&self.inner.evicted, self.inner.tiers.first()) else {
            return;
        };
        if evicted.is_empty() {
            return;
        }
        let now = self.inner.clock.now_ms();
        for (key, slot) in evicted.take() {
            if slot.expires_at_ms.is_some_and(|at| at <= now) {
                continue;
            }
            // The key and value encoded when they were inserted, so they
            // encode now; one that no longer fits is simply not demoted.
            let (Ok(kb), Ok(vb)) = (self.encode_key(&key), self.inner.codec.encode(&slot.value))
            else {
                continue;
            };
            let mut meta = Meta::new(slot.created_at_ms).expires_at(slot.expires_at_ms);
            meta.class = self.inner.class_names.class(slot.class);
            match warm
                .backend
                .dyn_insert(kb.clone(), Entry::new(vb, meta))
                .await
            {
                Ok(()) => {
                    warm.mark_current(&kb);
                    self.inner.counters.add(DEMOTIONS, 1);
                }
                Err(e) => {
                    warm.count_error(e.kind());
                    warm.mark_stale(&kb);
                }
            }
        }
    }

    /// Stores a value in every tier; it lives for the cache's time-to-live.
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new()).await
    }

    /// Stores a value in every tier with its own time-to-live. A zero or
    /// unrepresentable `ttl` is an [`ErrorKind::InvalidTtl`](cache_core::ErrorKind::InvalidTtl) error and
    /// changes nothing.
    pub async fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().time_to_live(ttl))
            .await
    }

    /// Stores a value in the data class `class`: with the class's
    /// time-to-live, in the tiers the class may live in (see
    /// [`CacheBuilder::class`](crate::CacheBuilder::class)).
    pub async fn insert_with_class(&self, key: K, value: V, class: &str) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().class(class))
            .await
    }

    /// Stores a value as `options` say: its class, its own time-to-live and
    /// its placement, each falling back to the class's and then the
    /// cache's.
    ///
    /// The value replaces the key's value in every tier it may live in, and
    /// the key is removed from the others, so no tier keeps an older value.
    /// With write-on-evict, the tiers below memory lose the key now and get
    /// the value when the hot tier evicts it. Everything that can fail
    /// because of the input (the time-to-live, the key's and value's sizes
    /// and encodings) is checked before any tier changes.
    pub async fn insert_with(&self, key: K, value: V, options: InsertOptions) -> Result<()> {
        let sample = self.sample_insert();
        let stored = self.insert_unanalysed(key, value, options).await;
        self.sample_done(sample, Sampled::Insert);
        stored
    }

    /// [`insert_with`](Self::insert_with) without the analytics around it.
    async fn insert_unanalysed(&self, key: K, value: V, options: InsertOptions) -> Result<()> {
        let now = self.inner.clock.now_ms();
        let policy = self.inner.classes.policy(&options.class);
        let ttl = options
            .time_to_live
            .or(policy.time_to_live)
            .or(self.inner.time_to_live);
        let expires_at = ttl.map(|ttl| expiry_after(now, ttl)).transpose()?;
        let mut meta = Meta::new(now).expires_at(expires_at);
        meta.class = options.class;
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics
            && !matches!(meta.class, cache_core::DataClass::Default)
        {
            a.inserted_class(self.inner.class_names.index(&meta.class));
        }
        if self.inner.tiers.is_empty() {
            // With nothing below memory, every placement lives there.
            let tracked = self.track_insert(&key, None, &value, None, &meta);
            let mut slot = self.slot(value, &meta, Placement::MemoryOnly, false);
            slot.tracked = tracked;
            self.inner
                .hot
                .engine
                .insert_with_expiry(key, slot, expires_at);
            return Ok(());
        }
        let placement = options.placement.unwrap_or(policy.placement);
        let kb = self.encode_key(&key)?;
        let vb = self.inner.codec.encode(&value)?;
        self.inner.limits.check_value(vb.len())?;
        if placement == Placement::DiskOnly {
            meta.flags = meta.flags.with(Flags::LOWER_ONLY);
        }
        let through = placement == Placement::DiskOnly
            || (placement == Placement::Everywhere && self.inner.evicted.is_none());
        let tracked = self.track_insert(&key, Some(&kb), &value, Some(vb.len()), &meta);
        if placement.in_memory() {
            let mut slot = self.slot(value, &meta, placement, through);
            slot.tracked = tracked;
            self.inner
                .hot
                .engine
                .insert_with_expiry(key, slot, expires_at);
        } else {
            self.inner.hot.engine.remove(&key);
        }
        if through {
            self.write_lower(&kb, Entry::new(vb, meta)).await;
        } else {
            self.remove_lower(&kb).await;
        }
        self.demote_evicted().await;
        Ok(())
    }

    /// Writes an entry into every tier below memory. A tier that fails may
    /// still hold the previous value, so it is asked to drop it: a
    /// recovered tier must not serve a stale one.
    async fn write_lower(&self, kb: &Bytes, entry: Entry) {
        let tiers = &self.inner.tiers;
        let writes = tiers
            .iter()
            .map(|t| t.backend.dyn_insert(kb.clone(), entry.clone()));
        let results = join_all(writes).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(()) => tier.mark_current(kb),
                Err(e) => {
                    tier.count_error(e.kind());
                    match tier.backend.dyn_remove(kb).await {
                        Ok(_) => tier.mark_current(kb),
                        Err(_) => {
                            tier.errors.fetch_add(1, Ordering::Relaxed);
                            tier.mark_stale(kb);
                        }
                    }
                }
            }
        }
    }

    /// Removes a key from every tier below memory.
    async fn remove_lower(&self, kb: &Bytes) {
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_remove(kb))).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(_) => tier.mark_current(kb),
                Err(e) => {
                    tier.count_error(e.kind());
                    tier.mark_stale(kb);
                }
            }
        }
    }

    /// Removes `key` from every tier.
    pub async fn remove(&self, key: &K) -> Result<()> {
        self.inner.hot.engine.remove(key);
        if self.inner.tiers.is_empty() {
            self.track(key, None, Tracked::Removed);
            return Ok(());
        }
        let kb = self.encode_key(key)?;
        self.track(key, Some(&kb), Tracked::Removed);
        self.remove_lower(&kb).await;
        Ok(())
    }

    /// Whether any tier holds a live value for `key` (without promoting it).
    pub async fn contains_key(&self, key: &K) -> Result<bool> {
        if self.inner.hot.contains_key(key) {
            return Ok(true);
        }
        if self.inner.tiers.is_empty() {
            return Ok(false);
        }
        let kb = self.encode_key(key)?;
        for tier in &self.inner.tiers {
            if tier.is_stale(&kb) {
                tier.settle(&kb).await;
                continue;
            }
            match tier.backend.dyn_contains(&kb).await {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => tier.count_error(e.kind()),
            }
        }
        Ok(false)
    }

    /// Removes every entry from every tier.
    pub async fn clear(&self) -> Result<()> {
        self.inner.hot.clear();
        if let Some(evicted) = &self.inner.evicted {
            evicted.take();
        }
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_clear())).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(()) => tier.mark_all_current(),
                Err(e) => tier.count_error(e.kind()),
            }
        }
        Ok(())
    }

    /// The hot tier, for direct synchronous access and inspection.
    pub fn hot(&self) -> &HotTier<K, V> {
        &self.inner.hot
    }

    /// The compression statistics of each tier the builder compressed (the
    /// disk and Redis tiers, by default), by tier name: bytes in and out
    /// and the ratio per algorithm, and the values stored uncompressed.
    #[cfg(feature = "compress")]
    pub fn compression_stats(&self) -> Vec<(String, cache_compress::CompressionStats)> {
        self.inner
            .compressed
            .iter()
            .map(|t| (t.name.clone(), (t.stats)()))
            .collect()
    }

    /// Promotions and demotions between tiers since the cache was built.
    pub fn hierarchy_stats(&self) -> HierarchyStats {
        HierarchyStats {
            promotions: self.inner.counters.get(PROMOTIONS),
            demotions: self.inner.counters.get(DEMOTIONS),
            demotions_dropped: self.inner.evicted.as_ref().map_or(0, |e| e.dropped()),
        }
    }

    /// The number of entries in the hot tier.
    pub fn entry_count(&self) -> u64 {
        self.inner.hot.entry_count()
    }

    /// Counters for the hot tier followed by each byte tier, in order.
    pub fn tier_stats(&self) -> Vec<TierStats> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        // A lookup is counted as it starts and its miss as it ends, so one
        // in flight may count as a hit for the moment.
        let hot = self.inner.counters.snapshot();
        let mut out = vec![TierStats {
            name: "hot".to_string(),
            hits: hot[HOT_LOOKUPS].saturating_sub(hot[HOT_MISSES]),
            misses: hot[HOT_MISSES],
            errors: 0,
            corrupted: 0,
        }];
        out.extend(self.inner.tiers.iter().map(|t| TierStats {
            name: t.backend.dyn_name().to_string(),
            hits: load(&t.hits),
            misses: load(&t.misses),
            errors: load(&t.errors),
            corrupted: load(&t.corrupted),
        }));
        out
    }
}
