//! The async, typed, tiered cache.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{
    Classes, Clock, Codec, DynBackend, Limits, Meta, Placement, Postcard, Result, SingleFlight,
    StripedCounters,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::CacheBuilder;
use crate::hot::{ClassNames, HotTier, Pending, Slot};
use crate::promotion::HitWindow;
use crate::stats::{HierarchyStats, TierStats};
use crate::stripes::Stripes;
use crate::tier::Tier;

mod demote;
mod load;
mod observe;
mod read;
mod write;

/// A typed cache over a hierarchy of tiers: an in-memory hot tier holding
/// `V` itself, then any number of byte tiers (disk, Redis, ...) in order.
///
/// - [`get`](Self::get) answers from the hot tier without decoding; on a
///   hot miss it asks each lower tier in turn, and a hit there is decoded
///   once and promoted into every tier above it with its *remaining* time
///   to live.
/// - [`insert`](Self::insert) writes through to every tier;
///   [`remove`](Self::remove) removes from every tier.
/// - Within the process, a `get` that starts after an `insert` or `remove`
///   of its key has returned sees that write or a later one, in every tier
///   stack and write mode, and a removed key never comes back (see
///   `docs/architecture.md`, "Consistency").
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
    /// Set with write-on-evict: what the hot tier let go of, waiting for
    /// the warm tier. `None` writes through.
    pending: Option<Arc<Pending<K, V>>>,
    /// A caller is writing the waiting entries into the warm tier; the
    /// others leave it to them unless the queue is crowded.
    demoting: AtomicBool,
    /// The order of changes to each key across tiers.
    stripes: Stripes,
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
    pub(crate) pending: Option<Arc<Pending<K, V>>>,
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
                pending: parts.pending,
                demoting: AtomicBool::new(false),
                stripes: Stripes::new(),
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

    pub(super) fn encode_key(&self, key: &K) -> Result<Bytes> {
        let bytes = Bytes::from(self.inner.codec.encode(key)?);
        self.inner.limits.check_key(&bytes)?;
        Ok(bytes)
    }

    /// A hot-tier slot for `value` with `meta`'s expiry and class, written
    /// under stripe version `seq`.
    pub(super) fn slot(
        &self,
        value: V,
        meta: &Meta,
        placement: Placement,
        clean: bool,
        seq: u64,
    ) -> Slot<V> {
        Slot {
            value,
            expires_at_ms: meta.expires_at_ms,
            created_at_ms: meta.created_at_ms,
            class: self.inner.class_names.index(&meta.class),
            placement,
            clean,
            seq,
            tracked: false,
        }
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
            demotions_dropped: self.inner.pending.as_ref().map_or(0, |e| e.dropped()),
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
