//! Loading on a miss: [`Cache::get_with`], [`Cache::try_get_with`],
//! [`Cache::optionally_get_with`] and [`Cache::get_or_load`], one load per
//! key however many callers wait, all through one flight
//! (`SingleFlight::get_or_load_within`): look again, load, store. Load
//! protection (`crate::protect`) decides what a negative entry answers,
//! which errors are remembered, how long a waiter waits and whether a
//! stale value answers a failed load.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cache_core::{Codec, Loader, LoaderErrors, Lookup, Result, loader_error};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, HOT_MISSES};
use crate::protect::{LoadCounts, Skip};

/// What a negative entry found by a load's look answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Negatives {
    /// Nothing: the caller's loader runs and its value replaces the entry
    /// (`get_with`, whose loader always yields a value).
    Load,
    /// "None" for every caller waiting, without loading
    /// (`optionally_get_with`, `get_or_load`); a remembered error answers
    /// "none" too.
    AnswerNone,
    /// "None" for a key known to have no value; a remembered error answers
    /// its error (`try_get_with`, `get_or_load`).
    AnswerNoneOrError,
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The value for `key`; on a miss in every tier (and in the store
    /// behind the cache, if there is one), awaits `init`, stores its value
    /// in every tier and returns it. A loaded value is cached, not saved
    /// to the store. However many callers ask for
    /// the same key at once, one `init` runs and all share its value. A
    /// negative entry does not stop `init`: its value replaces the entry.
    /// A key bypass rules keep out of the cache is loaded with `init` and
    /// not cached.
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> Result<V> {
        let sample = self.start_lookup(&key);
        let skip = self.get_skip(&key);
        let found = if skip.everything {
            Ok(init.await)
        } else {
            match self.hot_lookup_for(&key, skip) {
                Some(Lookup::Hit(v)) => Ok(v),
                _ => {
                    self.load_own(&key, LoaderErrors::Retried, skip, async { Ok(init.await) })
                        .await
                }
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// Like [`get_with`](Self::get_with) with a fallible loader. A loader
    /// error is returned to every caller waiting on the key as an error of
    /// kind [`ErrorKind::Loader`](crate::ErrorKind::Loader) whose source is
    /// the loader's own error. Nothing is cached, unless the
    /// [`cache_errors`](crate::CacheBuilder::cache_errors) policy picks the
    /// error: it is then remembered as a negative entry, and until that
    /// expires this call fails at once without running `init`. (A caller
    /// that joins a [`get_or_load`](Self::get_or_load) of the same key
    /// shares that loader's error as it returned it.) With
    /// [`stale_if_error`](crate::CacheBuilder::stale_if_error), a value
    /// expired within the window answers a failed load instead.
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let sample = self.start_lookup(&key);
        let skip = self.get_skip(&key);
        let found = if skip.everything {
            init.await.map_err(loader_error)
        } else {
            match self.hot_lookup_for(&key, skip) {
                Some(Lookup::Hit(v)) => Ok(v),
                Some(Lookup::Negative(meta)) if meta.flags.contains(cache_core::Flags::FAILED) => {
                    Err(self.remembered_error())
                }
                _ => {
                    self.load_own(&key, LoaderErrors::Shared, skip, async {
                        init.await.map_err(loader_error)
                    })
                    .await
                }
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// The value for `key`, loaded with `init` on a miss in every tier;
    /// `None` when `init` finds none, which is stored as a negative entry
    /// for the [`negative_ttl`](crate::CacheBuilder::negative_ttl) (300 s
    /// by default) in every tier its class may live in, so that until it
    /// expires lookups of the key answer `None` without calling any loader
    /// (other caches sharing a Redis tier see it too). However many callers
    /// ask for the key at once, one `init` runs. An insert of a value
    /// replaces the negative entry.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use tiercache::Cache;
    ///
    /// let cache: Cache<u64, String> = Cache::builder().build().await?;
    /// assert_eq!(cache.optionally_get_with(7, async { None }).await?, None);
    /// // Known to have no value: this loader is not called.
    /// let found = cache.optionally_get_with(7, async { Some("seven".to_string()) }).await?;
    /// assert_eq!(found, None);
    /// assert_eq!(cache.load_stats().negative_hits, 1);
    /// # Ok::<(), tiercache::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn optionally_get_with(
        &self,
        key: K,
        init: impl Future<Output = Option<V>>,
    ) -> Result<Option<V>> {
        self.load_optional(
            &key,
            LoaderErrors::Retried,
            Negatives::AnswerNone,
            || async { Ok(init.await) },
        )
        .await
    }

    /// [`get_with`](Self::get_with) and [`try_get_with`](Self::try_get_with)
    /// after a miss in the hot tier: a load with the caller's one-shot
    /// `init`, which always yields a value or an error.
    async fn load_own(
        &self,
        key: &K,
        errors: LoaderErrors,
        skip: Skip,
        init: impl Future<Output = Result<V>>,
    ) -> Result<V> {
        self.inner.counters.add(HOT_MISSES, 1);
        let mut init = Some(init);
        let slot = &mut init;
        let negatives = match errors {
            LoaderErrors::Shared => Negatives::AnswerNoneOrError,
            LoaderErrors::Retried => Negatives::Load,
        };
        let loaded = self
            .load_below_hot(key, errors, negatives, skip, || async move {
                let init = slot.take().expect("a caller's loader runs at most once");
                init.await.map(Some)
            })
            .await?;
        if let Some(v) = loaded {
            return Ok(v);
        }
        // The flight this caller joined found nothing (another caller's
        // loader, or a negative entry, answered "none"), so this caller's
        // own loader, which yields a value, has not run: it runs now, rather
        // than join flights that may keep answering "none".
        let init = init
            .take()
            .expect("a flight of this caller's own loader yields a value");
        let v = match init.await {
            Ok(v) => v,
            Err(e) => return Err(self.remember_error(key, e).await),
        };
        self.fill(key.clone(), v.clone()).await?;
        Ok(v)
    }

    /// The value for `key`, loaded with `loader` on a miss in every tier
    /// and stored in every tier; `None` when the loader finds none (stored
    /// as a negative entry, as [`optionally_get_with`](Self::optionally_get_with)
    /// does) or when the cache holds a negative entry for the key (the
    /// loader is not called). However many callers ask for the key at
    /// once, one load runs. A loader error reaches every caller waiting on
    /// it; it is cached only if the
    /// [`cache_errors`](crate::CacheBuilder::cache_errors) policy picks it.
    ///
    /// The loader is reusable (see [`Loader`]): the same one can serve
    /// every key, and later a prefetcher or a refresh.
    pub async fn get_or_load(&self, key: &K, loader: &impl Loader<K, V>) -> Result<Option<V>> {
        self.load_optional(
            key,
            LoaderErrors::Shared,
            Negatives::AnswerNoneOrError,
            || loader.load(key),
        )
        .await
    }

    /// [`optionally_get_with`](Self::optionally_get_with) and
    /// [`get_or_load`](Self::get_or_load): bypass rules, the hot tier (a
    /// negative entry answers as `negatives` says), then one load per key.
    async fn load_optional<F, Fut>(
        &self,
        key: &K,
        errors: LoaderErrors,
        negatives: Negatives,
        load: F,
    ) -> Result<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>>>,
    {
        let sample = self.start_lookup(key);
        let skip = self.get_skip(key);
        let found = if skip.everything {
            load().await
        } else {
            match self.hot_lookup_for(key, skip) {
                Some(Lookup::Hit(v)) => Ok(Some(v)),
                Some(Lookup::Negative(meta))
                    if negatives == Negatives::AnswerNoneOrError
                        && meta.flags.contains(cache_core::Flags::FAILED) =>
                {
                    Err(self.remembered_error())
                }
                Some(Lookup::Negative(_)) => {
                    LoadCounts::add(&self.inner.protect.counts.negative_hits);
                    Ok(None)
                }
                _ => {
                    self.inner.counters.add(HOT_MISSES, 1);
                    self.load_below_hot(key, errors, negatives, skip, load)
                        .await
                }
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// The one loading path after a miss in the hot tier: one flight per
    /// key that looks again (the hot tier, then the tiers below), runs
    /// `load` on a miss and stores what it found: a value, or (negative
    /// caching on) a negative entry for "none". `negatives` says what a
    /// negative entry found in the look answers. A loader error the error
    /// policy picks is remembered. A caller waiting on another's load waits
    /// at most the load timeout, and a failed load is answered with a stale
    /// value where the hot tier kept one.
    pub(super) async fn load_below_hot<F, Fut>(
        &self,
        key: &K,
        errors: LoaderErrors,
        negatives: Negatives,
        skip: Skip,
        load: F,
    ) -> Result<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>>>,
    {
        // A negative entry found in the flight's own look answers for
        // every caller waiting: nothing is loaded or stored.
        let negative = AtomicBool::new(false);
        let negative = &negative;
        // The stripe's version before the look, for a cache that keeps
        // versions: the loaded value is stored only if no write of the key
        // ended since (`u64::MAX`: not noted, stored as any write).
        let seen = AtomicU64::new(u64::MAX);
        let seen = &seen;
        // The load step stored its value itself.
        let filled = AtomicBool::new(false);
        let filled = &filled;
        let loaded = self
            .inner
            .flights
            .get_or_load_within(
                key,
                errors,
                || self.patience(),
                || async move {
                    let looked = self.lookup_uncounted(key, skip).await?;
                    seen.store(looked.seen, Ordering::Relaxed);
                    match looked.found {
                        Lookup::Hit(v) => Ok(Some(v)),
                        Lookup::Negative(meta) if negatives != Negatives::Load => {
                            if negatives == Negatives::AnswerNoneOrError
                                && meta.flags.contains(cache_core::Flags::FAILED)
                            {
                                return Err(self.remembered_error());
                            }
                            // A "none" the source just answered (and that
                            // read-through stored) is no negative hit.
                            if !looked.loaded {
                                LoadCounts::add(&self.inner.protect.counts.negative_hits);
                            }
                            negative.store(true, Ordering::Relaxed);
                            Ok(None)
                        }
                        _ => Ok(None),
                    }
                },
                || async move {
                    if negative.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    self.inner.observer.on_load(key);
                    let v = match load().await {
                        Ok(Some(v)) => v,
                        Ok(None) => return Ok(None),
                        Err(e) => return Err(self.remember_error(key, e).await),
                    };
                    let noted = seen.load(Ordering::Relaxed);
                    if noted == u64::MAX {
                        return Ok(Some(v));
                    }
                    // A write of the key that ended while the loader ran
                    // stands, and is every waiting caller's answer: the
                    // loaded value may be older than it. (A write of
                    // another key of the stripe, or a removal, leaves
                    // nothing newer to answer: the value is stored then.)
                    filled.store(true, Ordering::Relaxed);
                    if self
                        .fill_if_unchanged(key.clone(), v.clone(), noted)
                        .await?
                    {
                        return Ok(Some(v));
                    }
                    if let Lookup::Hit(current) = self.lookup_uncounted(key, skip).await?.found {
                        return Ok(Some(current));
                    }
                    self.fill(key.clone(), v.clone()).await?;
                    Ok(Some(v))
                },
                |loaded| async move {
                    match loaded {
                        Some(_) if filled.load(Ordering::Relaxed) => Ok(()),
                        Some(v) => self.fill(key.clone(), v).await,
                        None if negative.load(Ordering::Relaxed) => Ok(()),
                        // A loader that always yields a value found
                        // none only where the look's read-through did,
                        // which stored what it found.
                        None if negatives == Negatives::Load => Ok(()),
                        None => self.fill_negative(key.clone()).await,
                    }
                },
            )
            .await;
        self.or_stale(key, loaded)
    }
}
