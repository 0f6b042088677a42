//! Configuration of a tiered [`Cache`], and building it in three steps:
//! open the tiers below memory, wrap each in its layers, then make the hot
//! tier with its removal listener.

use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use cache_backends::memory::MemoryCache;
use cache_core::{
    Backend, ClassPolicy, Classes, Clock, Codec, DataClass, DynBackend, Error, ErrorKind, Limits,
    Placement, Postcard, Result, SingleFlight, StripedCounters, validate_ttl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cache::{
    Cache, DemotionQueue, Inner, MAX_WAITING_DEMOTIONS, TierPolicy, encode_key, hot_listener,
};
use crate::hot::HotTier;
use crate::observe::Observer;
use crate::promotion::{HitWindow, Promotion};
use crate::protect::{DynLoader, ProtectSettings};
use crate::stripes::{KeyVersions, Stripes};
use crate::tiers::{Tier, Tiers};

mod protect;
#[cfg(feature = "policies")]
mod store;
#[cfg(feature = "warm")]
mod warm;

/// Builds a [`Cache`]; start from [`Cache::builder`].
///
/// The hot tier is always present. Below it come the disk tier
/// ([`disk`](Self::disk), feature `redb`), then the Redis tier
/// ([`redis`](Self::redis), feature `redis`), then any byte tiers added
/// with [`tier`](Self::tier), in the order they are added: memory → redb →
/// Redis → the rest.
pub struct CacheBuilder<K, V, C = Postcard> {
    settings: Settings,
    codec: C,
    /// The store behind the cache, with what write-back needs to decode
    /// its keys (typed, so it lives here rather than in `Settings`).
    #[cfg(feature = "policies")]
    store: Option<store::StoreSetting<K, V>>,
    /// The cache's own loader (typed, like the store).
    loader: Option<Arc<dyn DynLoader<K, V>>>,
    #[cfg(feature = "policies")]
    bypass: cache_policies::BypassRules<K>,
    /// The snapshot's key decoder and the prefetcher's loader (typed).
    #[cfg(feature = "warm")]
    warm: warm::WarmSetting<K, V>,
    _types: PhantomData<fn(K, V)>,
}

/// Everything a builder is told, apart from the codec: kept in one place so
/// that [`CacheBuilder::codec`] moves it whole.
struct Settings {
    max_capacity: u64,
    time_to_live: Option<Duration>,
    time_to_idle: Option<Duration>,
    clock: Clock,
    limits: Limits,
    tiers: Vec<AddedTier>,
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
    #[cfg(feature = "policies")]
    record: store::RecordSettings,
    protect: ProtectSettings,
    #[cfg(feature = "warm")]
    warm: crate::warming::WarmSettings,
}

/// A tier the application added, waiting for [`CacheBuilder::build`] to
/// wrap it in the builder's layers (which keeps its concrete type, so that
/// its calls are boxed once).
struct AddedTier {
    name: String,
    wrap: Box<dyn FnOnce(&Wrapping) -> Tier + Send + Sync>,
}

impl AddedTier {
    fn new<B: Backend>(backend: B) -> Self {
        AddedTier {
            name: backend.name().to_string(),
            wrap: Box::new(move |wrapping| wrapping.wrap(backend)),
        }
    }

    /// A tier the builder opened, to be compressed with `layer` (if any)
    /// inside the layers every tier gets.
    #[cfg(all(feature = "compress", any(feature = "redb", feature = "redis")))]
    fn compressed<B: Backend>(backend: B, layer: Option<cache_compress::CompressionLayer>) -> Self {
        AddedTier {
            name: backend.name().to_string(),
            wrap: Box::new(move |wrapping| wrapping.wrap_compressed(backend, layer.as_ref())),
        }
    }

    /// A tier the builder opened (compression needs the `compress`
    /// feature).
    #[cfg(all(not(feature = "compress"), any(feature = "redb", feature = "redis")))]
    fn compressed<B: Backend>(backend: B, _layer: Option<()>) -> Self {
        AddedTier::new(backend)
    }
}

/// The layers the builder wraps every tier in.
struct Wrapping {
    /// The analytics layer, before its tier label is set.
    #[cfg(feature = "analytics")]
    analytics: Option<cache_analytics::AnalyticsLayer>,
}

impl Wrapping {
    /// `backend` in the analytics layer (outermost, so that it sees values
    /// as the cache gives them and times everything below), boxed once.
    #[cfg(feature = "analytics")]
    fn wrap<B: Backend>(&self, backend: B) -> Tier {
        use cache_core::Layer;
        match &self.analytics {
            Some(layer) => {
                let layer = layer.clone().tier(backend.name().to_string());
                let analysed = Arc::new(layer.layer(backend));
                Tier::new(analysed.clone()).with_analytics(analysed)
            }
            None => Tier::new(Arc::new(backend)),
        }
    }

    /// `backend`, boxed once.
    #[cfg(not(feature = "analytics"))]
    fn wrap<B: Backend>(&self, backend: B) -> Tier {
        Tier::new(Arc::new(backend))
    }

    /// `backend` compressed with `layer` if there is one, then wrapped as
    /// every tier is; the tier keeps a handle on its own compression
    /// figures.
    #[cfg(all(feature = "compress", any(feature = "redb", feature = "redis")))]
    fn wrap_compressed<B: Backend>(
        &self,
        backend: B,
        layer: Option<&cache_compress::CompressionLayer>,
    ) -> Tier {
        use cache_core::Layer;
        match layer {
            Some(layer) => {
                let compressed = Arc::new(layer.layer(backend));
                self.wrap(compressed.clone()).with_compression(compressed)
            }
            None => self.wrap(backend),
        }
    }
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

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_capacity: 10_000,
            time_to_live: None,
            time_to_idle: None,
            clock: Clock::system(),
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
            analytics: Some(crate::observe::DEFAULT_SAMPLING),
            #[cfg(feature = "analytics")]
            entry_tracking: None,
            #[cfg(feature = "policies")]
            record: Default::default(),
            protect: ProtectSettings::default(),
            #[cfg(feature = "warm")]
            warm: crate::warming::WarmSettings::default(),
        }
    }
}

impl<K, V> Default for CacheBuilder<K, V, Postcard> {
    fn default() -> Self {
        CacheBuilder {
            settings: Settings::default(),
            codec: Postcard,
            #[cfg(feature = "policies")]
            store: None,
            loader: None,
            #[cfg(feature = "policies")]
            bypass: cache_policies::BypassRules::new(),
            #[cfg(feature = "warm")]
            warm: warm::WarmSetting::default(),
            _types: PhantomData,
        }
    }
}

impl<K, V, C> fmt::Debug for CacheBuilder<K, V, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        f.debug_struct("CacheBuilder")
            .field("max_capacity", &s.max_capacity)
            .field("time_to_live", &s.time_to_live)
            .field("time_to_idle", &s.time_to_idle)
            .field(
                "tiers",
                &s.tiers.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
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
        self.settings.max_capacity = max_capacity;
        self
    }

    /// How long an entry lives after it is written, in every tier. Without
    /// it entries live until evicted or removed.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.settings.time_to_live = Some(ttl);
        self
    }

    /// How long an entry may go unread in the hot tier before it expires
    /// there (lower tiers keep it until its time-to-live).
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.settings.time_to_idle = Some(tti);
        self
    }

    /// The clock used for expiry in the hot tier and for new entries'
    /// metadata. Give lower tiers the same clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.settings.clock = clock;
        self
    }

    /// Key and value size limits for the byte tiers, checked before any
    /// tier is written.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Adds a byte tier below the tiers already added.
    pub fn tier(mut self, tier: Arc<dyn DynBackend>) -> Self {
        self.settings.tiers.push(AddedTier::new(tier));
        self
    }

    /// Adds a byte tier given by value. Its calls are boxed once, at the
    /// outermost layer, where [`tier`](Self::tier)'s already boxed stack
    /// is boxed again under the builder's own layers.
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.settings.tiers.push(AddedTier::new(backend));
        self
    }

    /// Adds the disk tier: a redb file at `path`, created if missing, with
    /// the builder's clock and limits and the tier's defaults (1 GiB,
    /// immediate durability). It sits right below the hot tier. For other
    /// settings build a [`RedbBackend`](cache_backends::redb::RedbBackend)
    /// and add it with [`tier`](Self::tier).
    #[cfg(feature = "redb")]
    pub fn disk(mut self, path: impl AsRef<std::path::Path>) -> Self {
        self.settings.disk = Some(path.as_ref().to_path_buf());
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
        self.settings.redis = Some(url.to_string());
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
        self.settings
            .classes
            .push((DataClass::named(name), Some(ttl), None));
        self
    }

    /// Sets which tiers the entries of class `name` may live in (every
    /// tier by default), defining the class if needed.
    pub fn class_placement(mut self, name: &str, placement: Placement) -> Self {
        self.settings
            .classes
            .push((DataClass::named(name), None, Some(placement)));
        self
    }

    /// When a hit in a lower tier is copied into the tiers above it: on
    /// every hit (the default), or after a number of hits within a window.
    pub fn promotion(mut self, promotion: Promotion) -> Self {
        self.settings.promotion = promotion;
        self
    }

    /// Write-on-evict instead of write-through: an insert goes to the hot
    /// tier only (and removes the key below it), and the hot tier writes
    /// what it evicts for room into the warm tier, the first tier below
    /// it, with its remaining time to live. An entry promoted from below is
    /// not written back when evicted, since the tier below still holds it.
    /// Entries placed [`BelowMemory`](Placement::BelowMemory) are still written
    /// through.
    pub fn write_on_evict(mut self, on: bool) -> Self {
        self.settings.write_on_evict = on;
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
        self.settings.compression.disk = layer.clone();
        self.settings.compression.redis = layer;
        self
    }

    /// Compresses the disk tier with `layer`, or not at all with `None`.
    #[cfg(feature = "compress")]
    pub fn disk_compression(mut self, layer: Option<cache_compress::CompressionLayer>) -> Self {
        self.settings.compression.disk = layer;
        self
    }

    /// Compresses the Redis tier with `layer`, or not at all with `None`.
    #[cfg(feature = "compress")]
    pub fn redis_compression(mut self, layer: Option<cache_compress::CompressionLayer>) -> Self {
        self.settings.compression.redis = layer;
        self
    }

    /// Turns analytics on or off (on by default with the `analytics`
    /// feature): exact counts per tier and class, latency percentiles and
    /// hot keys, read with [`Cache::stats`](crate::Cache::stats) and
    /// exported with [`Cache::emit_metrics`](crate::Cache::emit_metrics).
    #[cfg(feature = "analytics")]
    pub fn analytics(mut self, on: bool) -> Self {
        self.settings.analytics = on.then_some(
            self.settings
                .analytics
                .unwrap_or(crate::observe::DEFAULT_SAMPLING),
        );
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
        self.settings.analytics = Some((n, n));
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
        self.settings.entry_tracking = Some(one_in.max(1));
        self.settings.analytics = self
            .settings
            .analytics
            .or(Some(crate::observe::DEFAULT_SAMPLING));
        self
    }

    /// Encodes keys and values for the byte tiers (and the write-back log)
    /// with another codec. Under write-back, set it before
    /// [`store`](Self::store), which takes the codec to decode the log's
    /// keys with; `build` refuses the other order.
    #[allow(unused_mut)]
    pub fn codec<C2: Codec>(mut self, codec: C2) -> CacheBuilder<K, V, C2> {
        #[cfg(feature = "policies")]
        if self.store.is_some() {
            self.settings.record.codec_after_store = true;
        }
        #[cfg(feature = "warm")]
        if self.settings.warm.snapshot.is_some() {
            self.settings.warm.codec_after_snapshot = true;
        }
        CacheBuilder {
            settings: self.settings,
            codec,
            #[cfg(feature = "policies")]
            store: self.store,
            loader: self.loader,
            #[cfg(feature = "policies")]
            bypass: self.bypass,
            #[cfg(feature = "warm")]
            warm: self.warm,
            _types: PhantomData,
        }
    }

    /// Builds the cache, or explains which setting is invalid: checks the
    /// settings, makes the hot tier, opens the tiers below memory, then
    /// wraps each in the builder's layers.
    pub async fn build(self) -> Result<Cache<K, V, C>> {
        let mut s = self.settings;
        let classes = s.checked_classes()?;
        #[cfg(feature = "policies")]
        let has_store = self.store.is_some();
        #[cfg(not(feature = "policies"))]
        let has_store = false;
        #[cfg(feature = "warm")]
        let can_load = has_store || self.loader.is_some() || !s.tiers.is_empty() || s.opens_tiers();
        #[allow(unused_mut)]
        let mut protect = s
            .protect
            .clone()
            .checked(s.ttls(), self.loader, has_store)?;
        #[cfg(feature = "warm")]
        let warm_plan = self.warm.plan(&s.warm, can_load)?;
        #[cfg(feature = "warm")]
        let warm = warm_plan.warming();
        #[cfg(not(feature = "warm"))]
        let warm = crate::warming::Warming::default();
        #[cfg(feature = "policies")]
        self.bypass.check()?;
        #[cfg(feature = "policies")]
        let disk = s.disk_path().map(std::path::Path::to_path_buf);
        #[cfg(feature = "policies")]
        let record_plan = s.record.plan(self.store, disk.as_deref())?;
        let codec = self.codec;
        let limits = s.limits;
        let encoder = codec.clone();
        let observer = s.observer(Arc::new(move |key: &K| {
            encode_key(&encoder, &limits, key).ok()
        }));
        let policy = if s.write_on_evict {
            TierPolicy::OnEvict(Arc::new(DemotionQueue::new(MAX_WAITING_DEMOTIONS)))
        } else {
            TierPolicy::Through
        };
        // Checked before any tier is opened, so that settings it refuses
        // create no file and open no connection.
        let hot = s.hot_tier(&policy, observer.clone(), protect.stale_ms)?;
        #[cfg(feature = "policies")]
        let record = record_plan.open(codec.clone()).await?;
        #[cfg(not(feature = "policies"))]
        let record = crate::record::Record::none();
        let opened = s.open_tiers().await?;
        let tiers = s.wrap_tiers(opened);
        #[cfg(feature = "policies")]
        {
            protect.bypass.tier_bits = tiers
                .iter()
                .map(|t| self.bypass.tier_index(t.name()))
                .collect();
            protect.bypass.rules = self.bypass;
        }
        let promotion = match s.promotion {
            Promotion::Always | Promotion::AfterHits { hits: 0 | 1, .. } => None,
            Promotion::AfterHits { hits, window } => Some(HitWindow::new(hits, window)),
        };
        let cache = Cache::from_inner(Inner {
            hot,
            tiers,
            policy,
            codec,
            clock: s.clock,
            time_to_live: s.time_to_live,
            limits,
            classes: ArcSwap::from_pointee(classes),
            class_names: Arc::default(),
            promotion,
            stripes: Stripes::new(),
            key_versions: KeyVersions::new(),
            flights: SingleFlight::new(),
            counters: StripedCounters::new(),
            observer,
            record,
            protect,
            warm,
        });
        #[cfg(feature = "warm")]
        warm_plan.start(&cache).await?;
        Ok(cache)
    }
}

impl Settings {
    /// The classes' policies, checked. Each class starts from the built-in
    /// policy (every tier, the cache's time-to-live) and takes only what
    /// its own calls set, so the order of the calls that configure classes,
    /// the default class among them, changes nothing.
    fn checked_classes(&self) -> Result<Classes> {
        if let Some(ttl) = self.time_to_live {
            validate_ttl(ttl)?;
        }
        if let Some(tti) = self.time_to_idle {
            validate_ttl(tti)?;
        }
        let mut policies: Vec<(DataClass, ClassPolicy)> = Vec::new();
        for (class, ttl, placement) in &self.classes {
            let i = match policies.iter().position(|(c, _)| c == class) {
                Some(i) => i,
                None => {
                    policies.push((class.clone(), ClassPolicy::default()));
                    policies.len() - 1
                }
            };
            let policy = &mut policies[i].1;
            if ttl.is_some() {
                policy.time_to_live = *ttl;
            }
            if let Some(placement) = placement {
                policy.placement = *placement;
            }
        }
        let mut classes = Classes::default();
        for (class, policy) in policies {
            classes.set(class, policy)?;
        }
        Ok(classes)
    }

    /// Every time-to-live a refresh interval must stay below: the cache's
    /// and each class's, with what they belong to.
    fn ttls(&self) -> impl Iterator<Item = (String, Duration)> + '_ {
        let cache = self.time_to_live.map(|ttl| ("the cache".to_string(), ttl));
        let classes = self.classes.iter().filter_map(|(class, ttl, _)| {
            ttl.map(|ttl| (format!("class {:?}", class.as_str()), ttl))
        });
        cache.into_iter().chain(classes)
    }

    /// Whether `build` opens a tier of its own (the disk or Redis tier).
    #[cfg(feature = "warm")]
    fn opens_tiers(&self) -> bool {
        #[cfg(feature = "redb")]
        if self.disk.is_some() {
            return true;
        }
        #[cfg(feature = "redis")]
        if self.redis.is_some() {
            return true;
        }
        false
    }

    /// The disk tier's file, if one was asked for (write-back's log
    /// defaults to a file beside it).
    #[cfg(all(feature = "policies", feature = "redb"))]
    fn disk_path(&self) -> Option<&std::path::Path> {
        self.disk.as_deref()
    }

    #[cfg(all(feature = "policies", not(feature = "redb")))]
    fn disk_path(&self) -> Option<&std::path::Path> {
        None
    }

    /// The layers every tier is wrapped in.
    fn wrapping(&self) -> Wrapping {
        Wrapping {
            #[cfg(feature = "analytics")]
            analytics: self.analytics.map(|(_, n)| {
                cache_analytics::AnalyticsLayer::new()
                    .latency_sample(n)
                    .key_sample(n)
                    .clock(self.clock.clone())
            }),
        }
    }

    /// The hot path's observer: analytics when it is on.
    #[cfg(feature = "analytics")]
    fn observer<K: Hash + Clone>(&self, encode: crate::observe::KeyEncoder<K>) -> Observer<K> {
        let analytics = self
            .analytics
            .map(|(n, _)| Arc::new(crate::observe::HotAnalytics::new(n, self.entry_tracking)));
        Observer::new(self.clock.clone(), encode).with(analytics)
    }

    /// The hot path's observer, which observes nothing without analytics.
    #[cfg(not(feature = "analytics"))]
    fn observer<K: Hash + Clone>(&self, encode: crate::observe::KeyEncoder<K>) -> Observer<K> {
        Observer::new(self.clock.clone(), encode)
    }

    /// Opens the disk and Redis tiers, and lists every tier below memory
    /// in order: disk, Redis, then those the application added.
    async fn open_tiers(&mut self) -> Result<Vec<AddedTier>> {
        let mut tiers = Vec::with_capacity(self.tiers.len() + 2);
        tiers.extend(self.open_disk().await?);
        tiers.extend(self.open_redis().await?);
        tiers.append(&mut self.tiers);
        Ok(tiers)
    }

    /// Wraps each tier in the builder's layers.
    fn wrap_tiers(&self, tiers: Vec<AddedTier>) -> Tiers {
        let wrapping = self.wrapping();
        Tiers::new(tiers.into_iter().map(|t| (t.wrap)(&wrapping)).collect())
    }

    /// The disk tier, if one was asked for.
    #[cfg(feature = "redb")]
    async fn open_disk(&mut self) -> Result<Option<AddedTier>> {
        let Some(path) = self.disk.take() else {
            return Ok(None);
        };
        let disk = cache_backends::redb::RedbBackend::builder(path)
            .clock(self.clock.clone())
            .limits(self.limits)
            .build()
            .await?;
        Ok(Some(AddedTier::compressed(disk, self.disk_compression())))
    }

    #[cfg(not(feature = "redb"))]
    async fn open_disk(&mut self) -> Result<Option<AddedTier>> {
        Ok(None)
    }

    /// The Redis tier, if one was asked for.
    #[cfg(feature = "redis")]
    async fn open_redis(&mut self) -> Result<Option<AddedTier>> {
        let Some(url) = self.redis.take() else {
            return Ok(None);
        };
        let redis = cache_backends::redis::RedisBackend::builder(&url)
            .clock(self.clock.clone())
            .limits(self.limits)
            .build()
            .await?;
        Ok(Some(AddedTier::compressed(redis, self.redis_compression())))
    }

    #[cfg(not(feature = "redis"))]
    async fn open_redis(&mut self) -> Result<Option<AddedTier>> {
        Ok(None)
    }

    #[cfg(all(feature = "compress", feature = "redb"))]
    fn disk_compression(&self) -> Option<cache_compress::CompressionLayer> {
        self.compression.disk.clone()
    }

    #[cfg(all(not(feature = "compress"), feature = "redb"))]
    fn disk_compression(&self) -> Option<()> {
        None
    }

    #[cfg(all(feature = "compress", feature = "redis"))]
    fn redis_compression(&self) -> Option<cache_compress::CompressionLayer> {
        self.compression.redis.clone()
    }

    #[cfg(all(not(feature = "compress"), feature = "redis"))]
    fn redis_compression(&self) -> Option<()> {
        None
    }

    /// The hot tier, with the removal listener that tells the
    /// observer what it evicts and, with write-on-evict, queues it for
    /// demotion (inside the partition's lock, so that an entry is in the
    /// queue before any later change of its key can look for it there).
    fn hot_tier<K, V>(
        &self,
        policy: &TierPolicy<K, V>,
        observer: Observer<K>,
        stale_ms: Option<u64>,
    ) -> Result<HotTier<K, V>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let mut hot = MemoryCache::builder()
            .max_capacity(self.max_capacity)
            .clock(self.clock.clone());
        if let Some(tti) = self.time_to_idle {
            hot = hot.time_to_idle(tti);
        }
        let queue = match policy {
            TierPolicy::OnEvict(queue) => Some(queue.clone()),
            TierPolicy::Through => None,
        };
        let in_lock = queue.is_some();
        if let Some(listener) = hot_listener(queue, observer, self.clock.clone()) {
            hot = hot.listener_in_lock(in_lock).eviction_listener(listener);
        }
        let engine = hot.try_build().map_err(|e| {
            Error::new(ErrorKind::InvalidConfig, "invalid hot tier settings").with_source(e)
        })?;
        Ok(HotTier {
            engine,
            clock: self.clock.clone(),
            stale: stale_ms.is_some(),
        })
    }
}
