//! Load protection: what stands between the callers and the loader or
//! store behind the cache. Negative entries for keys that have no value
//! (and for errors the application chose to remember), refresh-ahead of
//! entries about to go stale, stale values served when a load fails, a
//! deadline for callers waiting on a load, and (feature `policies`) the
//! bypass rules. The settings, checked at `build`, and the counters live
//! here; the read path (`cache/read.rs`) and loading (`cache/load.rs`,
//! `cache/refresh.rs`) consult them.

use std::collections::HashMap;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::{BoxFuture, DataClass, Error, ErrorKind, Loader, Placement, Result, validate_ttl};
use parking_lot::Mutex;
use serde::Serialize;

/// Shards of the set of keys under refresh.
const REFRESH_SHARDS: usize = 16;

/// How long a negative entry lives unless the builder says otherwise.
pub const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(300);

/// Picks which loader errors are remembered as negative entries, and for
/// how long (`None`: not remembered).
pub(crate) type ErrorPolicy =
    Arc<dyn Fn(&(dyn std::error::Error + 'static)) -> Option<Duration> + Send + Sync>;

/// A [`Loader`] behind a pointer: the cache's own loader, which refreshes
/// and late loads run on a task of their own.
pub(crate) trait DynLoader<K, V>: Send + Sync {
    fn load_boxed<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<Option<V>>>;
}

impl<K: Sync + 'static, V: 'static, L: Loader<K, V>> DynLoader<K, V> for L {
    fn load_boxed<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<Option<V>>> {
        Box::pin(self.load(key))
    }
}

/// What the builder was told about load protection, apart from the typed
/// parts (the loader, the bypass rules).
#[derive(Clone)]
pub(crate) struct ProtectSettings {
    /// `None`: a load that finds no value stores nothing.
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) class_negative_ttl: Vec<(DataClass, Duration)>,
    pub(crate) cache_errors: Option<ErrorPolicy>,
    pub(crate) refresh_after_write: Option<Duration>,
    pub(crate) stale_if_error: Option<Duration>,
    pub(crate) load_timeout: Option<Duration>,
}

impl Default for ProtectSettings {
    fn default() -> Self {
        ProtectSettings {
            negative_ttl: Some(DEFAULT_NEGATIVE_TTL),
            class_negative_ttl: Vec::new(),
            cache_errors: None,
            refresh_after_write: None,
            stale_if_error: None,
            load_timeout: None,
        }
    }
}

impl ProtectSettings {
    /// The settings checked against the cache's time-to-live and its
    /// classes': a clear error for each that cannot work.
    pub(crate) fn checked<K, V>(
        self,
        ttls: impl Iterator<Item = (String, Duration)>,
        loader: Option<Arc<dyn DynLoader<K, V>>>,
        has_store: bool,
    ) -> Result<Protection<K, V>> {
        let named = |what: &str, e: Error| Error::new(e.kind(), format!("{what}: {e}"));
        if let Some(ttl) = self.negative_ttl {
            validate_ttl(ttl).map_err(|e| named("negative_ttl", e))?;
        }
        let mut class_negative = HashMap::new();
        for (class, ttl) in &self.class_negative_ttl {
            validate_ttl(*ttl).map_err(|e| {
                named(
                    &format!("class_negative_ttl of class {:?}", class.as_str()),
                    e,
                )
            })?;
            class_negative.insert(class.clone(), *ttl);
        }
        if let Some(window) = self.stale_if_error {
            validate_ttl(window).map_err(|e| named("stale_if_error", e))?;
        }
        if let Some(timeout) = self.load_timeout {
            validate_ttl(timeout).map_err(|e| named("load_timeout", e))?;
        }
        if loader.is_some() && has_store {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a cache with a store loads from it: give it a store or a loader, not both",
            ));
        }
        if let Some(every) = self.refresh_after_write {
            validate_ttl(every).map_err(|e| named("refresh_after_write", e))?;
            if loader.is_none() && !has_store {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "refresh_after_write needs something to reload with: set a loader \
                     (CacheBuilder::loader) or a store (CacheBuilder::store)",
                ));
            }
            for (name, ttl) in ttls {
                if every >= ttl {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "refresh_after_write ({every:?}) must be shorter than the \
                             time-to-live of {name} ({ttl:?}), or entries expire before \
                             they are refreshed"
                        ),
                    ));
                }
            }
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Ok(Protection {
            negative_ttl: self.negative_ttl,
            class_negative,
            cache_errors: self.cache_errors,
            refresh_after_ms: self.refresh_after_write.map(ms),
            stale_ms: self.stale_if_error.map(ms),
            load_timeout: self.load_timeout,
            loader,
            refreshing: (0..REFRESH_SHARDS)
                .map(|_| Mutex::new(HashSet::new()))
                .collect(),
            hasher: foldhash::fast::RandomState::default(),
            counts: LoadCounts::default(),
            #[cfg(feature = "policies")]
            bypass: Bypass::none(),
        })
    }
}

/// Load protection as a built cache holds it.
pub(crate) struct Protection<K, V> {
    negative_ttl: Option<Duration>,
    class_negative: HashMap<DataClass, Duration>,
    cache_errors: Option<ErrorPolicy>,
    /// Entries older than this (by creation time) are reloaded in the
    /// background when hit.
    pub(crate) refresh_after_ms: Option<u64>,
    /// How long past its expiry the hot tier keeps an entry, to serve it
    /// when a load fails.
    pub(crate) stale_ms: Option<u64>,
    pub(crate) load_timeout: Option<Duration>,
    /// The cache's own loader, if it has one (a store is the other kind).
    pub(crate) loader: Option<Arc<dyn DynLoader<K, V>>>,
    /// Keys being refreshed now: one refresh per key at a time.
    /// Sharded by key, so that hits on different keys due for a refresh
    /// rarely meet on one lock.
    refreshing: Box<[Mutex<HashSet<K>>]>,
    hasher: foldhash::fast::RandomState,
    pub(crate) counts: LoadCounts,
    #[cfg(feature = "policies")]
    pub(crate) bypass: Bypass<K>,
}

impl<K: Hash + Eq + Clone, V> Protection<K, V> {
    /// The time-to-live of a negative entry of `class` that a load stored
    /// because it found no value; `None` when such loads store nothing.
    pub(crate) fn negative_ttl(&self, class: &DataClass) -> Option<Duration> {
        self.class_negative
            .get(class)
            .copied()
            .or(self.negative_ttl)
    }

    /// How long to remember the loader error `e`, if at all.
    pub(crate) fn error_ttl(&self, e: &Error) -> Option<Duration> {
        let policy = self.cache_errors.as_ref()?;
        // The policy sees the loader's own error where there is one.
        let source: &(dyn std::error::Error + 'static) = match std::error::Error::source(e) {
            Some(source) if e.kind() == ErrorKind::Loader => source,
            _ => e,
        };
        policy(source)
    }

    /// The engine's expiry for an entry that expires at `at`: later by the
    /// stale window, so that it can still be served when a load fails.
    #[inline(always)]
    pub(crate) fn hot_expiry(&self, at: Option<u64>) -> Option<u64> {
        match (at, self.stale_ms) {
            (Some(at), Some(window)) => Some(at.saturating_add(window)),
            (at, _) => at,
        }
    }

    /// Claims the refresh of `key`; `false` if one is under way.
    pub(crate) fn start_refresh(&self, key: &K) -> bool {
        self.refreshing_shard(key).lock().insert(key.clone())
    }

    /// The refresh of `key` ended.
    pub(crate) fn end_refresh(&self, key: &K) {
        self.refreshing_shard(key).lock().remove(key);
    }

    fn refreshing_shard(&self, key: &K) -> &Mutex<HashSet<K>> {
        let i = self.hasher.hash_one(key) as usize % self.refreshing.len();
        &self.refreshing[i]
    }
}

/// Counters of load protection, read by [`Cache::load_stats`](crate::Cache::load_stats).
#[derive(Default)]
pub(crate) struct LoadCounts {
    pub(crate) negative_hits: AtomicU64,
    pub(crate) negatives_stored: AtomicU64,
    pub(crate) errors_cached: AtomicU64,
    pub(crate) cached_errors_returned: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) refreshes_failed: AtomicU64,
    pub(crate) stale_served: AtomicU64,
    pub(crate) load_timeouts: AtomicU64,
    pub(crate) late_loads_stored: AtomicU64,
}

impl LoadCounts {
    #[inline]
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What load protection did since the cache was built, from
/// [`Cache::load_stats`](crate::Cache::load_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct LoadStats {
    /// Lookups answered by a negative entry (the key is known to have no
    /// value), without calling a loader.
    pub negative_hits: u64,
    /// Negative entries stored because a load found no value.
    pub negatives_stored: u64,
    /// Negative entries stored for a loader error the
    /// [`cache_errors`](crate::CacheBuilder::cache_errors) policy picked.
    pub errors_cached: u64,
    /// Fallible loads answered with a remembered error, without calling
    /// the loader.
    pub cached_errors_returned: u64,
    /// Background reloads of entries older than
    /// [`refresh_after_write`](crate::CacheBuilder::refresh_after_write)
    /// whose outcome replaced the entry: a newer value, or a negative entry
    /// where the source no longer has the key. A reload that a write of the
    /// key overtook replaces nothing and is not counted.
    pub refreshes: u64,
    /// Background reloads that failed; the old value was kept.
    pub refreshes_failed: u64,
    /// Loads that failed and were answered with an entry expired less than
    /// [`stale_if_error`](crate::CacheBuilder::stale_if_error) ago.
    pub stale_served: u64,
    /// Callers that stopped waiting for a load at the
    /// [`load_timeout`](crate::CacheBuilder::load_timeout).
    pub load_timeouts: u64,
    /// Loads that finished after their callers timed out and were stored.
    pub late_loads_stored: u64,
    /// Lookups that bypassed every tier (feature `policies`).
    pub bypassed_gets: u64,
    /// Writes that bypassed every tier (feature `policies`).
    pub bypassed_sets: u64,
    /// Lookups and writes that skipped some tiers only (feature `policies`).
    pub tier_skips: u64,
}

impl LoadCounts {
    pub(crate) fn stats(&self) -> LoadStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LoadStats {
            negative_hits: get(&self.negative_hits),
            negatives_stored: get(&self.negatives_stored),
            errors_cached: get(&self.errors_cached),
            cached_errors_returned: get(&self.cached_errors_returned),
            refreshes: get(&self.refreshes),
            refreshes_failed: get(&self.refreshes_failed),
            stale_served: get(&self.stale_served),
            load_timeouts: get(&self.load_timeouts),
            late_loads_stored: get(&self.late_loads_stored),
            ..LoadStats::default()
        }
    }
}

/// The bypass rules of a cache (feature `policies`), with each tier's bit
/// among the tiers the rules name.
#[cfg(feature = "policies")]
pub(crate) struct Bypass<K> {
    pub(crate) rules: cache_policies::BypassRules<K>,
    /// For each tier below memory, in order, its bit in a rule's skip.
    pub(crate) tier_bits: Vec<Option<usize>>,
}

#[cfg(feature = "policies")]
impl<K> Bypass<K> {
    fn none() -> Self {
        Bypass {
            rules: cache_policies::BypassRules::new(),
            tier_bits: Vec::new(),
        }
    }
}

/// What bypass rules keep one lookup or write out of: every tier, the hot
/// tier, or some tiers below memory (a bit per tier, by index).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Skip {
    pub(crate) everything: bool,
    pub(crate) memory: bool,
    pub(crate) tiers: u64,
    /// Not a skip: the read warms the cache (a warming source, the
    /// prefetcher), so a hit below is copied up whatever the promotion
    /// policy's hit window says.
    pub(crate) warming: bool,
}

impl Skip {
    /// Nothing is skipped.
    pub(crate) const NONE: Skip = Skip {
        everything: false,
        memory: false,
        tiers: 0,
        warming: false,
    };

    /// Where a write placed at `placement` lives once these skips apply:
    /// `None` where it may live nowhere (every tier skipped, or the hot
    /// tier for an entry that lives only there); below memory where the
    /// hot tier is skipped.
    pub(crate) fn placement(&self, placement: Placement) -> Option<Placement> {
        if self.everything || (self.memory && placement == Placement::MemoryOnly) {
            return None;
        }
        Some(if self.memory && placement == Placement::Everywhere {
            Placement::BelowMemory
        } else {
            placement
        })
    }

    /// Whether tier `i` below memory is skipped.
    #[inline]
    pub(crate) fn tier(&self, i: usize) -> bool {
        i < 64 && self.tiers >> i & 1 == 1
    }
}

#[cfg(feature = "policies")]
impl<K> Bypass<K> {
    /// The rules' answer for one call, in the cache's terms.
    pub(crate) fn skip(&self, skip: cache_policies::Skip<'_>) -> Skip {
        if !skip.any() {
            return Skip::NONE;
        }
        let mut tiers = 0u64;
        for (i, bit) in self.tier_bits.iter().enumerate() {
            if let Some(bit) = bit
                && i < 64
                && skip.tier_bit(*bit)
            {
                tiers |= 1 << i;
            }
        }
        Skip {
            everything: skip.everything(),
            memory: skip.memory(),
            tiers,
            warming: false,
        }
    }
}
