//! The async, typed, tiered cache.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_backends::memory::MemoryCache;
use cache_core::{
    Clock, Codec, DynBackend, Entry, ErrorKind, Limits, Lookup, Meta, Postcard, Result,
    SingleFlight, expiry_after, loader_error,
};
use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::CacheBuilder;
use crate::stats::TierStats;

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
    hot: MemoryCache<K, V>,
    tiers: Vec<Tier>,
    codec: C,
    clock: Clock,
    time_to_live: Option<Duration>,
    limits: Limits,
    flights: SingleFlight<K, V>,
    hot_hits: AtomicU64,
    hot_misses: AtomicU64,
}

/// A byte tier and its counters.
struct Tier {
    backend: Arc<dyn DynBackend>,
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    corrupted: AtomicU64,
}

impl Tier {
    fn count_error(&self, kind: ErrorKind) {
        if kind == ErrorKind::Corrupted {
            self.corrupted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
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
    pub(crate) fn from_parts(
        hot: MemoryCache<K, V>,
        tiers: Vec<Arc<dyn DynBackend>>,
        codec: C,
        clock: Clock,
        time_to_live: Option<Duration>,
        limits: Limits,
    ) -> Self {
        Cache {
            inner: Arc::new(Inner {
                hot,
                tiers: tiers
                    .into_iter()
                    .map(|backend| Tier {
                        backend,
                        hits: AtomicU64::new(0),
                        misses: AtomicU64::new(0),
                        errors: AtomicU64::new(0),
                        corrupted: AtomicU64::new(0),
                    })
                    .collect(),
                codec,
                clock,
                time_to_live,
                limits,
                flights: SingleFlight::new(),
                hot_hits: AtomicU64::new(0),
                hot_misses: AtomicU64::new(0),
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
        if let Some(v) = self.inner.hot.get(key) {
            self.inner.hot_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(v));
        }
        self.inner.hot_misses.fetch_add(1, Ordering::Relaxed);
        if self.inner.tiers.is_empty() {
            return Ok(None);
        }
        let kb = self.encode_key(key)?;
        self.get_lower(key, &kb).await
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
            if entry.meta.is_expired(self.inner.clock.now_ms()) {
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
            self.promote(i, key, kb, &value, entry).await;
            return Ok(Some(value));
        }
        Ok(None)
    }

    /// Copies a hit from tier `found_in` into every tier above it, keeping
    /// its absolute expiry (and so its remaining time to live).
    async fn promote(&self, found_in: usize, key: &K, kb: &Bytes, value: &V, entry: Entry) {
        self.inner
            .hot
            .insert_with_expiry(key.clone(), value.clone(), entry.meta.expires_at_ms);
        let above = &self.inner.tiers[..found_in];
        let writes = above
            .iter()
            .map(|t| t.backend.dyn_insert(kb.clone(), entry.clone()));
        for (tier, result) in above.iter().zip(join_all(writes).await) {
            if let Err(e) = result {
                tier.count_error(e.kind());
            }
        }
    }

    /// Stores a value in every tier; it lives for the cache's time-to-live.
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        let now = self.inner.clock.now_ms();
        let expires_at = self
            .inner
            .time_to_live
            .map(|ttl| expiry_after(now, ttl))
            .transpose()?;
        self.insert_at(key, value, now, expires_at).await
    }

    /// Stores a value in every tier with its own time-to-live (capped by
    /// the cache's, in the hot tier). A zero or unrepresentable `ttl` is an
    /// [`ErrorKind::InvalidTtl`] error and changes nothing.
    pub async fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        let now = self.inner.clock.now_ms();
        let expires_at = expiry_after(now, ttl)?;
        self.insert_at(key, value, now, Some(expires_at)).await
    }

    async fn insert_at(&self, key: K, value: V, now: u64, expires_at: Option<u64>) -> Result<()> {
        if self.inner.tiers.is_empty() {
            self.inner.hot.insert_with_expiry(key, value, expires_at);
            return Ok(());
        }
        // Everything that can fail because of the input is checked before
        // any tier changes, so a rejected write loses nothing.
        let kb = self.encode_key(&key)?;
        let vb = self.inner.codec.encode(&value)?;
        self.inner.limits.check_value(vb.len())?;
        let meta = Meta::new(now).expires_at(expires_at);
        let entry = Entry::new(vb, meta);
        self.inner.hot.insert_with_expiry(key, value, expires_at);
        let tiers = &self.inner.tiers;
        let writes = tiers
            .iter()
            .map(|t| t.backend.dyn_insert(kb.clone(), entry.clone()));
        let results = join_all(writes).await;
        for (tier, result) in tiers.iter().zip(results) {
            if let Err(e) = result {
                tier.count_error(e.kind());
                // The tier may still hold the previous value; try to drop
                // it so a recovered tier does not serve a stale one.
                if tier.backend.dyn_remove(&kb).await.is_err() {
                    tier.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Removes `key` from every tier.
    pub async fn remove(&self, key: &K) -> Result<()> {
        self.inner.hot.remove(key);
        if self.inner.tiers.is_empty() {
            return Ok(());
        }
        let kb = self.encode_key(key)?;
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_remove(&kb))).await;
        for (tier, result) in tiers.iter().zip(results) {
            if let Err(e) = result {
                tier.count_error(e.kind());
            }
        }
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
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_clear())).await;
        for (tier, result) in tiers.iter().zip(results) {
            if let Err(e) = result {
                tier.count_error(e.kind());
            }
        }
        Ok(())
    }

    /// The value for `key`; on a miss in every tier, awaits `init`, stores
    /// its value in every tier and returns it. However many callers ask for
    /// the same key at once, one `init` runs and all share its value.
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> Result<V> {
        if let Some(v) = self.inner.hot.get(&key) {
            self.inner.hot_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        self.inner.hot_misses.fetch_add(1, Ordering::Relaxed);
        let mut init = Some(init);
        let key_ref = &key;
        loop {
            let slot = &mut init;
            let result = self
                .inner
                .flights
                .run(key_ref, move || async move {
                    if let Some(v) = self.get_uncounted(key_ref).await? {
                        return Ok(v);
                    }
                    let v = slot
                        .take()
                        .expect("a caller's loader runs at most once")
                        .await;
                    self.insert(key_ref.clone(), v.clone()).await?;
                    Ok(v)
                })
                .await;
            match result {
                // A waiter handed another caller's loader error still has
                // its own loader, which has not run: it tries again.
                Err(e) if e.kind() == ErrorKind::Loader && init.is_some() => {}
                other => return other,
            }
        }
    }

    /// Like [`get_with`](Self::get_with) with a fallible loader. A loader
    /// error is returned to every caller waiting on the key as an error of
    /// kind [`ErrorKind::Loader`] whose source is the loader's own error,
    /// and nothing is cached.
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(v) = self.inner.hot.get(&key) {
            self.inner.hot_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v);
        }
        self.inner.hot_misses.fetch_add(1, Ordering::Relaxed);
        let key_ref = &key;
        self.inner
            .flights
            .run(key_ref, move || async move {
                if let Some(v) = self.get_uncounted(key_ref).await? {
                    return Ok(v);
                }
                let v = init.await.map_err(loader_error)?;
                self.insert(key_ref.clone(), v.clone()).await?;
                Ok(v)
            })
            .await
    }

    /// The hot tier, for direct synchronous access and inspection.
    pub fn hot(&self) -> &MemoryCache<K, V> {
        &self.inner.hot
    }

    /// The number of entries in the hot tier.
    pub fn entry_count(&self) -> u64 {
        self.inner.hot.entry_count()
    }

    /// Counters for the hot tier followed by each byte tier, in order.
    pub fn tier_stats(&self) -> Vec<TierStats> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = vec![TierStats {
            name: "hot".to_string(),
            hits: load(&self.inner.hot_hits),
            misses: load(&self.inner.hot_misses),
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
