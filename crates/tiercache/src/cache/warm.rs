//! Warming from the cache's side (feature `warm`): warming one key without
//! counting a lookup, the sources a [`Warmer`] warms from, and the
//! prefetcher's fetch. Every warmed value goes through the cache's own
//! paths: a copy up from a tier below (as a promotion, whatever the
//! promotion policy's hit window), or a load through the single flight
//! that installs only if no write of the key came in meanwhile, so
//! placement, classes, compression and the consistency guarantee apply.

use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cache_core::{Codec, Error, ErrorKind, KeyCursor, Loader, LoaderErrors, Lookup, Result};
use cache_warm::{
    PrefetchStats, Prefetcher, WarmFn, WarmKey, WarmOutcome, WarmSource, Warmer, WarmerBuilder,
    read_snapshot,
};
use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use super::load::Negatives;
use crate::protect::DynLoader;
use crate::warming::SnapshotStats;

/// Keys asked of a tier below per page when warming from it.
const TIER_PAGE: usize = 1_000;

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Warms `key` without counting a lookup: `Present` if the hot tier
    /// holds it; else copied up from the tiers below, else read through
    /// from the cache's own source (its store or loader), else loaded with
    /// `loader` (through the single flight, as `get_with` loads).
    pub(crate) async fn warm_key(
        &self,
        key: &K,
        loader: Option<&Arc<dyn DynLoader<K, V>>>,
    ) -> WarmOutcome {
        if self.inner.hot.contains_key(key) {
            return WarmOutcome::Present;
        }
        let mut skip = self.get_skip(key);
        // What bypass rules keep out of the hot tier cannot be warmed.
        if skip.everything || skip.memory {
            return WarmOutcome::Missing;
        }
        skip.warming = true;
        let found = match loader {
            Some(loader) => self
                .load_below_hot(
                    key,
                    LoaderErrors::Shared,
                    Negatives::AnswerNone,
                    skip,
                    || loader.load_boxed(key),
                )
                .await
                .map(|v| v.map_or(Lookup::Miss, Lookup::Hit)),
            None if self.inner.memory_only() => return WarmOutcome::Missing,
            None => self.lookup_uncounted(key, skip).await.map(|l| l.found),
        };
        match found {
            Ok(Lookup::Hit(_)) => WarmOutcome::Warmed,
            Ok(_) => WarmOutcome::Missing,
            Err(e) => WarmOutcome::Failed(e),
        }
    }

    /// [`warm_key`](Self::warm_key) as a warming source's or the
    /// prefetcher's closure, holding the cache weakly: background warming
    /// does not keep a dropped cache alive.
    pub(crate) fn warm_fn(&self, loader: Option<Arc<dyn DynLoader<K, V>>>) -> WarmFn<K> {
        let weak = self.downgrade();
        Arc::new(move |key: K| {
            let weak = weak.clone();
            let loader = loader.clone();
            Box::pin(async move {
                let Some(cache) = Cache::upgrade(&weak) else {
                    return WarmOutcome::Failed(Error::new(
                        ErrorKind::Unavailable,
                        "the cache was dropped",
                    ));
                };
                cache.warm_key(&key, loader.as_ref()).await
            })
        })
    }

    /// Starts configuring a warming service for this cache; give it
    /// sources made by [`warm_keys`](Self::warm_keys),
    /// [`warm_from_snapshot`](Self::warm_from_snapshot),
    /// [`warm_from_tier`](Self::warm_from_tier),
    /// [`warm_from_hot_keys`](Self::warm_from_hot_keys) or
    /// [`warm_stream`](Self::warm_stream).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tiercache::Cache;
    ///
    /// let cache: Cache<u32, String> = Cache::builder().build().await?;
    /// let rows = |id: u32| async move { Ok::<_, tiercache::Error>(Some(format!("row {id}"))) };
    /// let warmer = cache
    ///     .warmer()
    ///     .source(cache.warm_keys("popular", [1, 2, 3], rows).priority(10))
    ///     .concurrency(2)
    ///     .build()?;
    /// let report = warmer.run().await;
    /// assert_eq!(report.warmed, 3);
    /// assert_eq!(cache.get(&2).await?.as_deref(), Some("row 2"));
    /// # Ok::<(), tiercache::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// A run warms at most as many keys as the hot tier holds (more would
    /// only evict what it warmed first); `max_keys` changes that.
    pub fn warmer(&self) -> WarmerBuilder<K> {
        let capacity = self.inner.hot.max_capacity();
        Warmer::builder().max_keys(usize::try_from(capacity).unwrap_or(usize::MAX))
    }

    /// A warming source: `keys`, each warmed unless the cache holds it: a
    /// tier below holding it is copied up, else the cache's own source (a
    /// store or loader) is read through, as a lookup would (its "none"
    /// stands, as a negative entry); only for a cache without a source of
    /// its own is `loader` called, as [`get_with`](Self::get_with) calls
    /// its future.
    pub fn warm_keys<L>(
        &self,
        name: &str,
        keys: impl IntoIterator<Item = K>,
        loader: L,
    ) -> WarmSource<K>
    where
        L: Loader<K, V> + 'static,
    {
        WarmSource::list(name, keys, self.warm_fn(Some(Arc::new(loader))))
    }

    /// A warming source of the application's own: a stream of keys made
    /// afresh for each run, each warmed as [`warm_keys`](Self::warm_keys)
    /// warms its keys.
    pub fn warm_stream<F, S, L>(&self, name: &str, make: F, loader: L) -> WarmSource<K>
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Stream<Item = K> + Send + 'static,
        L: Loader<K, V> + 'static,
    {
        WarmSource::stream(name, make, self.warm_fn(Some(Arc::new(loader))))
    }

    /// A warming source: the keys of the snapshot at `path` (the hot keys
    /// of the last run), hottest first, each copied up from the tiers
    /// below or loaded from the cache's source. Expired and negative
    /// entries are left out. A damaged file fails the source's listing.
    pub fn warm_from_snapshot(&self, path: impl AsRef<Path>) -> WarmSource<K>
    where
        K: DeserializeOwned,
    {
        let path: PathBuf = path.as_ref().to_path_buf();
        let codec = self.inner.codec.clone();
        let clock = self.inner.clock.clone();
        let name = format!("snapshot {}", path.display());
        WarmSource::new(
            name,
            move || {
                let path = path.clone();
                let codec = codec.clone();
                let now = clock.now_ms();
                async move {
                    let (_, records) = tokio::task::spawn_blocking(move || read_snapshot(&path))
                        .await
                        .map_err(|e| {
                            Error::new(ErrorKind::Backend, "reading the snapshot stopped")
                                .with_source(e)
                        })??;
                    Ok(records
                        .into_iter()
                        .filter(|r| !r.meta.is_expired(now) && !r.meta.is_negative())
                        .filter_map(|r| {
                            let key = codec.decode::<K>(&r.key).ok()?;
                            Some(WarmKey::with_frequency(key, u32::from(r.frequency)))
                        })
                        .collect())
                }
            },
            self.warm_fn(None),
        )
    }

    /// A warming source: every key tier `tier` below memory holds (0 is
    /// the first tier below memory), listed through `Backend::keys`, each
    /// copied up. A tier that cannot list its keys is an
    /// [`ErrorKind::InvalidInput`] error here; keys that do not decode as
    /// `K` (another application's) are left out.
    pub fn warm_from_tier(&self, tier: usize) -> Result<WarmSource<K>>
    where
        K: DeserializeOwned,
    {
        let Some(t) = self.inner.tiers.iter().nth(tier) else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "no tier {tier} below memory: the cache has {}",
                    self.inner.tiers.iter().count()
                ),
            ));
        };
        let name = format!("tier {}", t.name());
        let weak = self.downgrade();
        Ok(WarmSource::new(
            name,
            move || {
                let weak = weak.clone();
                async move {
                    let Some(cache) = Cache::upgrade(&weak) else {
                        return Err(Error::new(ErrorKind::Unavailable, "the cache was dropped"));
                    };
                    cache.tier_keys(tier).await
                }
            },
            self.warm_fn(None),
        ))
    }

    /// Every key of tier `tier`, decoded.
    async fn tier_keys(&self, tier: usize) -> Result<Vec<WarmKey<K>>>
    where
        K: DeserializeOwned,
    {
        let Some(t) = self.inner.tiers.iter().nth(tier) else {
            return Ok(Vec::new());
        };
        let mut keys = Vec::new();
        let mut cursor = KeyCursor::start();
        loop {
            let Some(page) = t.backend().dyn_keys(&cursor, TIER_PAGE).await? else {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("tier {} cannot list its keys", t.name()),
                ));
            };
            keys.extend(
                page.keys
                    .iter()
                    .filter_map(|kb| self.inner.codec.decode::<K>(kb).ok())
                    .map(WarmKey::new),
            );
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(keys),
            }
        }
    }

    /// A warming source: the `n` hottest keys the analytics' hot-key
    /// sketch has seen in this run (feature `analytics`; none with
    /// analytics off), each copied up from the tiers below or loaded from
    /// the cache's source; useful after a [`clear`](Self::clear) or a
    /// capacity change.
    #[cfg(feature = "analytics")]
    pub fn warm_from_hot_keys(&self, n: usize) -> WarmSource<K>
    where
        K: DeserializeOwned,
    {
        let weak = self.downgrade();
        WarmSource::new(
            "hot keys",
            move || {
                let cache = Cache::upgrade(&weak);
                async move {
                    let Some(cache) = cache else {
                        return Ok(Vec::new());
                    };
                    let Some(a) = cache.inner.observer.analytics() else {
                        return Ok(Vec::new());
                    };
                    Ok(a.hot_keys
                        .top(n)
                        .into_iter()
                        .filter_map(|(kb, count)| {
                            let key = cache.inner.codec.decode::<K>(&kb).ok()?;
                            Some(WarmKey::with_frequency(
                                key,
                                u32::try_from(count).unwrap_or(u32::MAX),
                            ))
                        })
                        .collect())
                }
            },
            self.warm_fn(None),
        )
    }

    /// The prefetcher, if the cache was built with
    /// [`prefetch`](crate::CacheBuilder::prefetch).
    pub fn prefetcher(&self) -> Option<&Prefetcher<K>> {
        self.inner.warm.prefetch.get()
    }

    /// What the prefetcher did: predictions issued and their outcomes,
    /// precision and coverage; `None` without a prefetcher.
    pub fn prefetch_stats(&self) -> Option<PrefetchStats> {
        self.prefetcher().map(Prefetcher::stats)
    }

    /// Snapshot saves and loads since the cache was built, and the last
    /// failure.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        self.inner.warm.counts.stats()
    }
}
