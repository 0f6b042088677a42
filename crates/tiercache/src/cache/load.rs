//! Loading on a miss: [`Cache::get_with`], [`Cache::try_get_with`] and
//! [`Cache::get_or_load`], one load per key however many callers wait,
//! all through `SingleFlight::get_or_load`.

use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};

use cache_core::{Codec, Loader, LoaderErrors, Lookup, Result, loader_error};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, HOT_MISSES};

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
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> Result<V> {
        let sample = self.start_lookup(&key);
        let found = match self.hot_lookup(&key) {
            Some(Lookup::Hit(v)) => Ok(v),
            _ => {
                self.load_own(&key, LoaderErrors::Retried, async { Ok(init.await) })
                    .await
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// Like [`get_with`](Self::get_with) with a fallible loader. A loader
    /// error is returned to every caller waiting on the key as an error of
    /// kind [`ErrorKind::Loader`](crate::ErrorKind::Loader) whose source is
    /// the loader's own error, and nothing is cached. (A caller that joins
    /// a [`get_or_load`](Self::get_or_load) of the same key shares that
    /// loader's error as it returned it.)
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let sample = self.start_lookup(&key);
        let found = match self.hot_lookup(&key) {
            Some(Lookup::Hit(v)) => Ok(v),
            _ => {
                self.load_own(&key, LoaderErrors::Shared, async {
                    init.await.map_err(loader_error)
                })
                .await
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// [`get_with`](Self::get_with) and [`try_get_with`](Self::try_get_with)
    /// after a miss in the hot tier: a load with the caller's one-shot
    /// `init`, which always yields a value or an error.
    async fn load_own(
        &self,
        key: &K,
        errors: LoaderErrors,
        init: impl Future<Output = Result<V>>,
    ) -> Result<V> {
        self.inner.counters.add(HOT_MISSES, 1);
        let mut init = Some(init);
        let slot = &mut init;
        let loaded = self
            .load_below_hot(key, errors, false, || async move {
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
        let v = init.await?;
        self.fill(key.clone(), v.clone()).await?;
        Ok(v)
    }

    /// The value for `key`, loaded with `loader` on a miss in every tier
    /// and stored in every tier; `None` when the loader finds none (nothing
    /// is stored then) or when the cache holds a negative entry for the key
    /// (the loader is not called). However many callers ask for the key at
    /// once, one load runs. A loader error reaches every caller waiting on
    /// it, and nothing is cached.
    ///
    /// The loader is reusable (see [`Loader`]): the same one can serve
    /// every key, and later a prefetcher or a refresh.
    pub async fn get_or_load(&self, key: &K, loader: &impl Loader<K, V>) -> Result<Option<V>> {
        let sample = self.start_lookup(key);
        let found = match self.hot_lookup(key) {
            Some(Lookup::Hit(v)) => Ok(Some(v)),
            Some(Lookup::Negative(_)) => Ok(None),
            _ => {
                self.inner.counters.add(HOT_MISSES, 1);
                self.load_below_hot(key, LoaderErrors::Shared, true, || loader.load(key))
                    .await
            }
        };
        self.inner.observer.done(sample);
        found
    }

    /// The one loading path after a miss in the hot tier: one flight per
    /// key that looks again (the hot tier, then the tiers below), runs
    /// `load` on a miss and stores what it found. With `negative_answers`,
    /// a negative entry answers `None` without loading.
    async fn load_below_hot<F, Fut>(
        &self,
        key: &K,
        errors: LoaderErrors,
        negative_answers: bool,
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
        self.inner
            .flights
            .get_or_load(
                key,
                errors,
                || async move {
                    match self.lookup_uncounted(key).await? {
                        Lookup::Hit(v) => Ok(Some(v)),
                        Lookup::Negative(_) if negative_answers => {
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
                    load().await
                },
                |loaded| async move {
                    match loaded {
                        Some(v) => self.fill(key.clone(), v).await,
                        None => Ok(()),
                    }
                },
            )
            .await
    }
}
