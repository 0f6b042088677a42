//! Loading on a miss: [`Cache::get_with`] and [`Cache::try_get_with`], one
//! loader per key however many callers wait.

use std::future::Future;
use std::hash::Hash;

use cache_core::{Codec, ErrorKind, Result, loader_error};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::observe::{Sampled, Tracked};
use super::{Cache, HOT_MISSES};

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The value for `key`; on a miss in every tier, awaits `init`, stores
    /// its value in every tier and returns it. However many callers ask for
    /// the same key at once, one `init` runs and all share its value.
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> Result<V> {
        let sample = self.sample_lookup(&key);
        let found = self.get_with_counted(key, init).await;
        self.sample_done(sample, Sampled::Lookup);
        found
    }

    /// [`get_with`](Self::get_with) without the analytics sample around it.
    async fn get_with_counted(&self, key: K, init: impl Future<Output = V>) -> Result<V> {
        if let Some(v) = self.hot_get(&key) {
            return Ok(v);
        }
        self.inner.counters.add(HOT_MISSES, 1);
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
                    self.track(key_ref, None, Tracked::Miss);
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
        let sample = self.sample_lookup(&key);
        let found = self.try_get_with_counted(key, init).await;
        self.sample_done(sample, Sampled::Lookup);
        found
    }

    /// [`try_get_with`](Self::try_get_with) without the analytics sample
    /// around it.
    async fn try_get_with_counted<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        if let Some(v) = self.hot_get(&key) {
            return Ok(v);
        }
        self.inner.counters.add(HOT_MISSES, 1);
        let key_ref = &key;
        self.inner
            .flights
            .run(key_ref, move || async move {
                if let Some(v) = self.get_uncounted(key_ref).await? {
                    return Ok(v);
                }
                self.track(key_ref, None, Tracked::Miss);
                let v = init.await.map_err(loader_error)?;
                self.insert(key_ref.clone(), v.clone()).await?;
                Ok(v)
            })
            .await
    }
}
