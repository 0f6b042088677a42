//! Configuration of a tiered [`Cache`].

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use cache_backends::memory::MemoryCache;
use cache_core::{
    Backend, ClassPolicy, Classes, Clock, Codec, DataClass, DynBackend, Error, ErrorKind, Limits,
    Placement, Postcard, Result, validate_ttl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{Cache, Parts};
use crate::hot::{HotTier, Pending, Slot, demote_on_evict};
use crate::promotion::{HitWindow, Promotion};

/// The most evicted entries that wait for the warm tier at once under
/// write-on-evict; calls that evict write them right away, so the queue
/// stays short unless the warm tier is much slower than the inserts.
const MAX_WAITING_DEMOTIONS: usize = 10_000;

/// Builds a [`Cache`]; start from [`Cache::builder`].
///
/// The hot tier is always present. Below it come the disk tier
/// ([`disk`](Self::disk), feature `redb`), then the Redis tier
/// ([`redis`](Self::redis), feature `redis`), then any byte tiers added
/// with [`tier`](Self::tier), in the order they are added: memory → redb →
/// Redis → the rest.
pub struct CacheBuilder<K, V, C = Postcard> {
    max_capacity: u64,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    clock: Clock,
    codec: C,
    limits: Limits,
    tiers: Vec<Arc<dyn DynBackend>>,
    #[cfg(feature = "redb")]
    disk: Option<std::path::PathBuf>,
    #[cfg(feature = "redis")]
    redis: Option<String>,
    classes: Vec<(DataClass, Option<Duration>, Option<Placement>)>,
    promotion: Promotion,
    write_on_evict: bool,
    #[cfg(feature = "compress")]
    compression: Compression,
    /// One call in this many is timed and feeds the hot-key sketches, in
    /// the hot tier and in the byte tiers; `None` turns analytics off.
    #[cfg(feature = "analytics")]
    analytics: Option<(u32, u32)>,
    /// One key in this many has its entries followed; `None` is the
    /// default.
    #[cfg(feature = "analytics")]
    entry_tracking: Option<u64>,
    _types: PhantomData<fn(K, V)>,
}

/// How the builder compresses the tiers it opens itself.
#[cfg(feature = "compress")]
#[derive(Clone, Debug)]
struct Compression {
    disk: Option<cache_compress::CompressionLayer>,
    redis: Option<cache_compress::CompressionLayer>,
}

#[cfg(feature = "compress")]
impl Default for Compression {
    /// lz4 with the default rules on both tiers.
    fn default() -> Self {
        let layer = cache_compress::CompressionLayer::default();
        Compression {
            disk: Some(layer.clone()),
            redis: Some(layer),
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V, Postcard> {
    fn default() -> Self {
        CacheBuilder {
            max_capacity: 10_000,
            time_to_live: None,
            time_to_idle: None,
            clock: Clock::system(),
            codec: Postcard,
            limits: Limits::DEFAULT,
            tiers: Vec::new(),
            #[cfg(feature = "redb")]
            disk: None,
            #[cfg(feature = "redis")]
            redis: None,
            classes: Vec::new(),
            promotion: Promotion::Always,
            write_on_evict: false,
            #[cfg(feature = "compress")]
            compression: Compression::default(),
            #[cfg(feature = "analytics")]
            analytics: Some(crate::report::DEFAULT_SAMPLING),
            #[cfg(feature = "analytics")]
            entry_tracking: None,
            _types: PhantomData,
        }
    }
}

impl<K, V, C> fmt::Debug for CacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &self.max_capacity)
            .field("time_to_live", &self.time_to_live)
            .field("time_to_idle", &self.time_to_idle)
            .field(
                "tiers",
                &self.tiers.iter().map(|t| t.dyn_name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<K, V, C> CacheBuilder<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The number of entries the hot tier holds (10,000 by default).
    pub fn max_capacity(mut self, max_capacity: u64) -> Self {
        self.max_capacity = max_capacity;
        self
    }

    /// How long an entry lives after it is written, in every tier. Without
    /// it entries live until evicted or removed.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// How long an entry may go unread in the hot tier before it expires
    /// there (lower tiers keep it until its time-to-live).
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.time_to_idle = Some(tti);
        self
    }

    /// The clock used for expiry in the hot tier and for new entries'
    /// metadata. Give lower tiers the same clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Key and value size limits for the byte tiers, checked before any
    /// tier is written.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Adds a byte tier below the tiers already added.
    pub fn tier(mut self, tier: Arc<dyn DynBackend>) -> Self {
        self.tiers.push(tier);
        self
    }

    /// Adds a byte tier given by value.
    pub fn backend(self, backend: impl Backend) -> Self {
        self.tier(Arc::new(backend))
    }

    /// Adds the disk tier: a redb file at `path`, created if missing, with
    /// the builder's clock and limits and the tier's defaults (1 GiB,
    /// immediate durability). It sits right below the hot tier. For other
    /// settings build a [`RedbBackend`](cache_backends::redb::RedbBackend)
    /// and add it with [`tier`](Self::tier).
    #[cfg(feature = "redb")]
    pub fn disk(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.disk = Some(path.as_ref().to_path_buf());
        self
    }

    /// Adds the Redis tier at `url` (`redis://`, `rediss://` with feature
    /// `redis-tls`, `redis-cluster://` or `redis-sentinel://`), with the
    /// builder's clock and limits and the tier's defaults (key prefix
    /// `tiercache:`, command timeout, circuit breaker). It sits below the
    /// disk tier. A server that is down does not fail the build: the tier
    /// is skipped until it connects. For other settings build a
    /// [`RedisBackend`](cache_backends::redis::RedisBackend) and add it
    /// with [`tier`](Self::tier).
    #[cfg(feature = "redis")]
    pub fn redis(mut self, url: &str) -> Self {
        self.redis = Some(url.to_string());
        self
    }

    /// Defines the data class `name` (or changes it): its entries live
    /// `ttl` unless inserted with their own. The class lives in every tier
    /// unless [`class_placement`](Self::class_placement) says otherwise.
    /// `"default"` names the class of entries inserted without one.
    /// Insert into a class with
    /// [`Cache::insert_with_class`](crate::Cache::insert_with_class).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use tiercache::{Cache, Placement};
    ///
    /// let cache: Cache<String, String> = Cache::builder()
    ///     .class("session", Duration::from_secs(300))
    ///     .class_placement("session", Placement::MemoryOnly)
    ///     .class("llm-response", Duration::from_secs(24 * 3600))
    ///     .build()
    ///     .await?;
    /// cache.insert_with_class("s:1".into(), "alice".into(), "session").await?;
    /// # Ok::<(), tiercache::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn class(mut self, name: &str, ttl: Duration) -> Self {
        self.classes.push((DataClass::named(name), Some(ttl), None));
        self
    }

    /// Sets which tiers the entries of class `name` may live in (every
    /// tier by default), defining the class if needed.
    pub fn class_placement(mut self, name: &str, placement: Placement) -> Self {
        self.classes
            .push((DataClass::named(name), None, Some(placement)));
        self
    }

    /// When a hit in a lower tier is copied into the tiers above it: on
    /// every hit (the default), or after a number of hits within a window.
    pub fn promotion(mut self, promotion: Promotion) -> Self {
        self.promotion = promotion;
        self
    }

    /// Write-on-evict instead of write-through: an insert goes to the hot
    /// tier only (and removes the key below it), and the hot tier writes
    /// what it evicts for room into the warm tier, the first tier below
    /// it, with its remaining time to live. An entry promoted from below is
    /// not written back when evicted, since the tier below still holds it.
    /// Entries placed [`DiskOnly`](Placement::DiskOnly) are still written
    /// through.
    pub fn write_on_evict(mut self, on: bool) -> Self {
        self.write_on_evict = on;
        self
    }

    /// Compresses both the disk and the Redis tier with `layer` (`None`
    /// turns compression off in both). By default, with the `compress`
    /// feature, both use lz4 with the default rules: values over 1 KiB,
    /// kept compressed only where that saves at least 10%. The hot tier
    /// holds typed values and is never compressed; wrap a tier added with
    /// [`tier`](Self::tier) yourself, with
    /// [`Layer::layer`](cache_core::Layer::layer).
    #[cfg(feature = "compress")]
    pub fn compression(mut self, layer: Option<cache_compress::CompressionLayer>) -> Self {
        self.compression.disk = layer.clone();
        self.compression.redis = layer;
        self
    }

    /// Compresses the disk tier with `layer`, or not at all with `None`.
    #[cfg(feature = "compress")]
    pub fn disk_compression(mut self, layer: Option<cache_compress::CompressionLayer>) -> Self {
        self.compression.disk = layer;
        self
    }

    /// Compresses the Redis tier with `layer`, or not at all with `None`.
    #[cfg(feature = "compress")]
    pub fn redis_compression(mut self, layer: Option<cache_compress::CompressionLayer>) -> Self {
        self.compression.redis = layer;
        self
    }

    /// Turns analytics on or off (on by default with the `analytics`
    /// feature): exact counts per tier and class, latency percentiles and
    /// hot keys, read with [`Cache::stats`](crate::Cache::stats) and
    /// exported with [`Cache::emit_metrics`](crate::Cache::emit_metrics).
    #[cfg(feature = "analytics")]
    pub fn analytics(mut self, on: bool) -> Self {
        self.analytics = on.then_some(self.analytics.unwrap_or(crate::report::DEFAULT_SAMPLING));
        self
    }

    /// Times one call in `one_in` and feeds one lookup in `one_in` to the
    /// hot-key sketches, in every tier; counts stay exact. 1 samples every
    /// call; the hot tier rounds `one_in` up to a power of two. Turns
    /// analytics on. By default the hot tier samples one call in 1024 (a
    /// hot hit takes under a hundred nanoseconds, and a sampled one about a
    /// microsecond more) and the byte tiers one in 16 (their calls take
    /// microseconds, and are fewer).
    #[cfg(feature = "analytics")]
    pub fn analytics_sampling(mut self, one_in: u32) -> Self {
        let n = one_in.max(1);
        self.analytics = Some((n, n));
        self
    }

    /// Follows the entries of one key in `one_in`, rounded up to a power of
    /// two (1024 by default; 1 follows every key, up to 100,000 entries at
    /// once): their use, for TTL
    /// effectiveness in [`Cache::stats`](crate::Cache::stats), and what
    /// [`Cache::spawn_cleanup`](crate::Cache::spawn_cleanup) may remove.
    /// Turns analytics on.
    #[cfg(feature = "analytics")]
    pub fn entry_tracking(mut self, one_in: u64) -> Self {
        self.entry_tracking = Some(one_in.max(1));
        self.analytics = self.analytics.or(Some(crate::report::DEFAULT_SAMPLING));
        self
    }

    /// Encodes keys and values for the byte tiers with another codec.
    pub fn codec<C2: Codec>(self, codec: C2) -> CacheBuilder<K, V, C2> {
        CacheBuilder {
            max_capacity: self.max_capacity,
            time_to_live: self.time_to_live,
            time_to_idle: self.time_to_idle,
            clock: self.clock,
            codec,
            limits: self.limits,
            tiers: self.tiers,
            #[cfg(feature = "redb")]
            disk: self.disk,
            #[cfg(feature = "redis")]
            redis: self.redis,
            classes: self.classes,
            promotion: self.promotion,
            write_on_evict: self.write_on_evict,
            #[cfg(feature = "compress")]
            compression: self.compression,
            #[cfg(feature = "analytics")]
            analytics: self.analytics,
            #[cfg(feature = "analytics")]
            entry_tracking: self.entry_tracking,
            _types: PhantomData,
        }
    }

    /// Builds the cache, or explains which setting is invalid.
    pub async fn build(self) -> Result<Cache<K, V, C>> {
        if let Some(ttl) = self.time_to_live {
            validate_ttl(ttl)?;
        }
        if let Some(tti) = self.time_to_idle {
            validate_ttl(tti)?;
        }
        // Each class starts from the built-in policy (every tier, the
        // cache's time-to-live) and takes only what its own calls set, so
        // the order of the calls that configure classes, the default class
        // among them, changes nothing.
        let mut policies: Vec<(DataClass, ClassPolicy)> = Vec::new();
        for (class, ttl, placement) in self.classes {
            let i = match policies.iter().position(|(c, _)| *c == class) {
                Some(i) => i,
                None => {
                    policies.push((class, ClassPolicy::default()));
                    policies.len() - 1
                }
            };
            let policy = &mut policies[i].1;
            if ttl.is_some() {
                policy.time_to_live = ttl;
            }
            if let Some(placement) = placement {
                policy.placement = placement;
            }
        }
        let mut classes = Classes::default();
        for (class, policy) in policies {
            classes.set(class, policy)?;
        }
        let promotion = match self.promotion {
            Promotion::Always | Promotion::AfterHits { hits: 0 | 1, .. } => None,
            Promotion::AfterHits { hits, window } => Some(HitWindow::new(hits, window)),
        };
        let mut hot = MemoryCache::builder()
            .max_capacity(self.max_capacity)
            .clock(self.clock.clone());
        if let Some(tti) = self.time_to_idle {
            hot = hot.time_to_idle(tti);
        }
        let pending = self
            .write_on_evict
            .then(|| Arc::new(Pending::new(MAX_WAITING_DEMOTIONS)));
        #[cfg(feature = "analytics")]
        let hot_analytics = self
            .analytics
            .map(|(n, _)| Arc::new(crate::report::HotAnalytics::new(n, self.entry_tracking)));
        // The hot tier tells analytics the class of what it evicts and
        // expires, and (write-on-evict) hands the evicted to the warm tier.
        let clock = self.clock.clone();
        let demote = pending.clone().map(|p| demote_on_evict(p, clock));
        #[cfg(feature = "analytics")]
        let counted = hot_analytics.clone();
        #[cfg(not(feature = "analytics"))]
        let counted: Option<()> = None;
        if demote.is_some() || counted.is_some() {
            // With write-on-evict, in the partition's lock: an entry is in
            // the demotion queue before any later change of its key can
            // look for it there.
            hot = hot.listener_in_lock(demote.is_some()).eviction_listener(
                move |key: K, slot: Slot<V>, cause| {
                    #[cfg(feature = "analytics")]
                    if let Some(a) = &counted {
                        a.removed(slot.class, cause);
                    }
                    if let Some(demote) = &demote {
                        demote(key, slot, cause);
                    }
                },
            );
        }
        let hot = hot.try_build().map_err(|e| {
            Error::new(ErrorKind::InvalidConfig, "invalid hot tier settings").with_source(e)
        })?;
        #[allow(unused_mut)]
        let mut tiers: Vec<Arc<dyn DynBackend>> = Vec::with_capacity(self.tiers.len() + 2);
        #[allow(unused_mut)]
        let mut compressed = Vec::new();
        #[cfg(feature = "redb")]
        if let Some(path) = self.disk {
            let disk = cache_backends::redb::RedbBackend::builder(path)
                .clock(self.clock.clone())
                .limits(self.limits)
                .build()
                .await?;
            #[cfg(feature = "compress")]
            let disk = maybe_compress(disk, self.compression.disk.as_ref(), &mut compressed);
            #[cfg(not(feature = "compress"))]
            let disk: Arc<dyn DynBackend> = Arc::new(disk);
            tiers.push(disk);
        }
        #[cfg(feature = "redis")]
        if let Some(url) = self.redis {
            let redis = cache_backends::redis::RedisBackend::builder(&url)
                .clock(self.clock.clone())
                .limits(self.limits)
                .build()
                .await?;
            #[cfg(feature = "compress")]
            let redis = maybe_compress(redis, self.compression.redis.as_ref(), &mut compressed);
            #[cfg(not(feature = "compress"))]
            let redis: Arc<dyn DynBackend> = Arc::new(redis);
            tiers.push(redis);
        }
        tiers.extend(self.tiers);
        // Analytics wraps each byte tier outermost, so it sees values as the
        // cache gives them (before compression) and times everything below.
        #[cfg(feature = "analytics")]
        let (tiers, tier_analytics) = match self.analytics {
            Some((_, n)) => {
                let wrapped: Vec<_> = tiers
                    .into_iter()
                    .map(|t| {
                        let layer = cache_analytics::AnalyticsLayer::new()
                            .tier(t.dyn_name().to_string())
                            .latency_sample(n)
                            .key_sample(n)
                            .clock(self.clock.clone());
                        cache_core::Layer::layer(&layer, t)
                    })
                    .collect();
                let dyns = wrapped
                    .iter()
                    .map(|t| Arc::new(t.clone()) as Arc<dyn DynBackend>)
                    .collect();
                (dyns, wrapped)
            }
            None => (tiers, Vec::new()),
        };
        Ok(Cache::from_parts(Parts {
            hot: HotTier { engine: hot },
            tiers,
            codec: self.codec,
            clock: self.clock,
            time_to_live: self.time_to_live,
            limits: self.limits,
            classes,
            promotion,
            pending,
            compressed,
            #[cfg(feature = "analytics")]
            hot_analytics,
            #[cfg(feature = "analytics")]
            tier_analytics,
        }))
    }
}

/// `tier` wrapped in `layer` if there is one; a wrapped tier's statistics
/// are reachable through `compressed` afterwards, under the tier's name.
#[cfg(all(feature = "compress", any(feature = "redb", feature = "redis")))]
fn maybe_compress<B: Backend>(
    tier: B,
    layer: Option<&cache_compress::CompressionLayer>,
    compressed: &mut Vec<crate::cache::CompressedTier>,
) -> Arc<dyn DynBackend> {
    use cache_core::Layer;
    match layer {
        Some(layer) => {
            let tier = Arc::new(layer.layer(tier));
            let name = tier.name().to_string();
            let stats = tier.clone();
            compressed.push(crate::cache::CompressedTier {
                name,
                stats: Box::new(move || stats.stats()),
            });
            tier
        }
        None => Arc::new(tier),
    }
}
