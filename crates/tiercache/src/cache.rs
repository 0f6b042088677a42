//! The async, typed, tiered cache: its state, and the small accessors.
//! The read path is in `cache/read.rs`, the write path in `cache/write.rs`,
//! loading on a miss in `cache/load.rs`, write-on-evict in
//! `cache/demote.rs`, the write-policy seam in `cache/policy.rs`,
//! read-through and write-back's inspection in `cache/store.rs`; the
//! reports are in `crate::report`.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use cache_core::{
    ClassPolicy, Classes, Clock, Codec, DataClass, Limits, Meta, Placement, Postcard, Result,
    SingleFlight, StripedCounters, validate_ttl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::builder::CacheBuilder;
use crate::hot::{ClassNames, HotTier, Slot};
use crate::observe::Observer;
use crate::promotion::HitWindow;
use crate::protect::Protection;
use crate::record::Record;
use crate::stripes::{KeyVersions, Stripes};
use crate::tiers::Tiers;
use crate::warming::Warming;

mod demote;
mod load;
mod policy;
mod protect;
mod read;
mod refresh;
#[cfg(feature = "warm")]
mod snapshot;
mod store;
#[cfg(feature = "warm")]
mod warm;
mod write;

pub(crate) use demote::{DemotionQueue, MAX_WAITING_DEMOTIONS, hot_listener};
pub(crate) use policy::TierPolicy;
#[cfg(feature = "warm")]
pub(crate) use snapshot::KeyDecoder;

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

/// Everything a cache holds, shared by its clones; the builder assembles
/// it.
pub(crate) struct Inner<K, V, C> {
    pub(crate) hot: HotTier<K, V>,
    pub(crate) tiers: Tiers,
    /// How writes reach the tiers below memory.
    pub(crate) policy: TierPolicy<K, V>,
    pub(crate) codec: C,
    pub(crate) clock: Clock,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) limits: Limits,
    /// The classes' policies; they may change after the cache is built,
    /// and writes read them without a lock.
    pub(crate) classes: ArcSwap<Classes>,
    pub(crate) class_names: Arc<ClassNames>,
    /// `None` promotes on every lower-tier hit.
    pub(crate) promotion: Option<HitWindow>,
    /// The order of changes to each key across tiers.
    pub(crate) stripes: Stripes,
    /// In a memory-only cache, the versions of its keys, so that a load
    /// stores nothing over a write that began while it ran.
    pub(crate) key_versions: KeyVersions,
    /// Loads under way, by key; `None` is a load that found nothing.
    pub(crate) flights: SingleFlight<K, Option<V>>,
    /// Hot lookups and misses, promotions and demotions, by the indexes
    /// below. Striped: every hot lookup adds to one, from every thread.
    pub(crate) counters: StripedCounters<4>,
    /// The hot path's instrumentation (a no-op without analytics).
    pub(crate) observer: Observer<K>,
    /// The store behind the cache and its write policy, if any.
    pub(crate) record: Record<K, V, C>,
    /// Negative caching, refresh-ahead, stale-if-error, the load timeout,
    /// the cache's own loader and bypass rules.
    pub(crate) protect: Protection<K, V>,
    /// The prefetcher and the snapshot's state (feature `warm`).
    pub(crate) warm: Warming<K>,
}

/// Lookups of the hot tier, counted as they start: the running count of
/// a thread's copy also decides which lookups analytics samples.
pub(crate) const HOT_LOOKUPS: usize = 0;
/// Lookups it could not answer.
pub(crate) const HOT_MISSES: usize = 1;
/// Lower-tier hits copied into the tiers above.
pub(crate) const PROMOTIONS: usize = 2;
/// Hot-tier evictions written into the warm tier.
pub(crate) const DEMOTIONS: usize = 3;

impl<K, V, C> Inner<K, V, C> {
    /// Whether every value lives in the hot tier alone: no tier below it
    /// and no store behind it. Such a cache encodes nothing and takes no
    /// stripe lock; the hot tier orders each key's writes by itself.
    #[inline(always)]
    pub(crate) fn memory_only(&self) -> bool {
        self.tiers.is_empty() && !self.has_source()
    }

    /// Whether the cache has something of its own to load from on a miss
    /// everywhere: a store, or its loader. Such a cache orders its writes
    /// by stripe even in memory alone, so that a load or refresh installs
    /// only if no write of the key came in meanwhile.
    #[inline(always)]
    pub(crate) fn has_source(&self) -> bool {
        self.record.is_on() || self.protect.loader.is_some()
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
                    .map(|t| t.name())
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
    pub(crate) fn from_inner(inner: Inner<K, V, C>) -> Self {
        Cache {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn inner(&self) -> &Inner<K, V, C> {
        &self.inner
    }

    #[cfg(feature = "warm")]
    /// A handle that does not keep the cache alive, for its own background
    /// work (the prefetcher, warming, the snapshot's schedule): the cache
    /// is dropped, and saved, when the application drops its last handle.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner<K, V, C>> {
        Arc::downgrade(&self.inner)
    }

    #[cfg(feature = "warm")]
    /// The cache of a [`downgrade`](Self::downgrade)d handle, if it is
    /// still alive.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner<K, V, C>>) -> Option<Self> {
        weak.upgrade().map(|inner| Cache { inner })
    }

    pub(super) fn encode_key(&self, key: &K) -> Result<Bytes> {
        encode_key(&self.inner.codec, &self.inner.limits, key)
    }

    /// A hot-tier slot for `value` (`None`: a negative entry) with
    /// `meta`'s expiry, of class number `class` (the caller looked it up
    /// once for the whole write), written under stripe version `seq`.
    pub(super) fn slot(
        value: Option<V>,
        meta: &Meta,
        class: u16,
        placement: Placement,
        held_below: bool,
        seq: u64,
    ) -> Slot<V> {
        Slot {
            value,
            expires_at_ms: meta.expires_at_ms,
            created_at_ms: meta.created_at_ms,
            class,
            placement,
            held_below,
            seq,
            tracked: false,
            failed: meta.flags.contains(cache_core::Flags::FAILED),
        }
    }

    /// The hot tier, for direct synchronous access and inspection.
    pub fn hot(&self) -> &HotTier<K, V> {
        &self.inner.hot
    }

    /// What load protection did since the cache was built: negative hits
    /// and entries, remembered errors, refreshes, stale answers, load
    /// timeouts and bypasses.
    pub fn load_stats(&self) -> crate::LoadStats {
        let stats = self.inner.protect.counts.stats();
        #[cfg(feature = "policies")]
        let stats = {
            let b = self.inner.protect.bypass.rules.stats();
            crate::LoadStats {
                bypassed_gets: b.gets,
                bypassed_sets: b.sets,
                tier_skips: b.tier_skips,
                ..stats
            }
        };
        stats
    }

    /// The number of entries in the hot tier.
    pub fn entry_count(&self) -> u64 {
        self.inner.hot.entry_count()
    }

    /// The policy of the data class `name` as writes use it now: its
    /// time-to-live (`None`: the cache's) and where it may live.
    pub fn class_policy(&self, name: &str) -> ClassPolicy {
        self.inner.classes.load().policy(&DataClass::named(name))
    }

    /// Changes the time-to-live of the data class `name` (`"default"` for
    /// entries inserted without a class), defining the class if needed;
    /// `None` makes it fall back to the cache's. Writes from now on use it;
    /// entries already stored keep the expiry they were written with. A
    /// zero or unrepresentable `ttl` is an
    /// [`ErrorKind::InvalidTtl`](crate::ErrorKind::InvalidTtl) error and
    /// changes nothing.
    pub fn set_class_ttl(&self, name: &str, ttl: Option<Duration>) -> Result<()> {
        if let Some(ttl) = ttl {
            validate_ttl(ttl)?;
        }
        self.update_class(name, |policy| policy.time_to_live = ttl)
    }

    /// Changes which tiers the entries of class `name` may live in, for
    /// writes and promotions from now on, defining the class if needed.
    pub fn set_class_placement(&self, name: &str, placement: Placement) -> Result<()> {
        self.update_class(name, |policy| policy.placement = placement)
    }

    fn update_class(&self, name: &str, change: impl Fn(&mut ClassPolicy)) -> Result<()> {
        let class = DataClass::named(name);
        let mut failed = None;
        self.inner.classes.rcu(|classes| {
            let mut next = Classes::clone(classes);
            // A class new to the cache starts from the built-in policy, as
            // one defined in the builder does, not from the default class's.
            let mut policy = if next.is_registered(&class) {
                next.policy(&class)
            } else {
                ClassPolicy::default()
            };
            change(&mut policy);
            failed = next.set(class.clone(), policy).err();
            next
        });
        failed.map_or(Ok(()), Err)
    }
}

/// `key` in the bytes the tiers store it under, checked against the size
/// limit.
pub(crate) fn encode_key<K: Serialize, C: Codec>(
    codec: &C,
    limits: &Limits,
    key: &K,
) -> Result<Bytes> {
    let bytes = Bytes::from(codec.encode(key)?);
    limits.check_key(&bytes)?;
    Ok(bytes)
}
