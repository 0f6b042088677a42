//! Loads that outlive their callers: refresh-ahead (a hit on an entry
//! older than `refresh_after_write` reloads it on a task of its own, once
//! per key) and loads from the cache's own source under a load timeout
//! (on a task, so that a result that comes too late for its callers is
//! still stored). Both install what they load only if no write of the key
//! came in meanwhile (`install_loaded`).

use std::future::Future;
use std::hash::Hash;

use bytes::Bytes;
use cache_core::{Codec, DataClass, Error, ErrorKind, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::protect::{LoadCounts, Protection};

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// What a caller waiting on another caller's load waits for before it
    /// gives up: the load timeout, or forever.
    pub(super) fn patience(&self) -> impl Future<Output = ()> + Send + use<K, V, C> {
        let timeout = self.inner.protect.load_timeout;
        async move {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        }
    }

    /// [`load_and_install`](Self::load_and_install), within the load
    /// timeout if there is one: the load then runs on a task of its own,
    /// and a result that comes after the caller gave up is still stored.
    pub(super) async fn load_from_source(
        &self,
        key: &K,
        kb: &Bytes,
        seen: u64,
    ) -> Result<Option<V>> {
        let Some(timeout) = self.inner.protect.load_timeout else {
            return self.load_and_install(key, kb, seen).await.map(|(v, _)| v);
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.load_and_install(key, kb, seen).await.map(|(v, _)| v);
        };
        let cache = self.clone();
        let (owned_key, owned_kb) = (key.clone(), kb.clone());
        // Dropped when this call returns: a load that finishes after that
        // finds nobody to tell, and counts itself as late.
        let (done_tx, _waiting) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let loaded = cache.load_and_install(&owned_key, &owned_kb, seen).await;
            if done_tx.send(()).is_err() && matches!(loaded, Ok((_, true))) {
                // Nobody waits any more: the result came late, and stands.
                LoadCounts::add(&cache.inner.protect.counts.late_loads_stored);
            }
            loaded.map(|(v, _)| v)
        });
        match tokio::time::timeout(timeout, task).await {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(join)) => Err(Error::new(
                ErrorKind::LoaderAborted,
                "the load of this key panicked or was cancelled",
            )
            .with_source(join)),
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                "the load of this key did not finish within the load timeout",
            )),
        }
    }

    /// Starts a background reload of `key` if its entry, written at
    /// `created_at_ms`, is older than the refresh interval and no reload of
    /// it is under way. Needs a tokio runtime; without one nothing starts.
    #[inline]
    pub(super) fn refresh_if_due(&self, key: &K, created_at_ms: u64, class: u16) {
        let Some(age) = self.inner.protect.refresh_after_ms else {
            return;
        };
        if self.inner.clock.now_ms().saturating_sub(created_at_ms) < age {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !self.inner.protect.start_refresh(key) {
            return;
        }
        let cache = self.clone();
        let key = key.clone();
        let class = self.inner.class_names.class(class);
        runtime.spawn(async move {
            let _claimed = Refreshing {
                protect: &cache.inner.protect,
                key: &key,
            };
            cache.refresh(&key, &class).await;
        });
    }

    /// Reloads `key` from the cache's source and replaces its entry (of
    /// class `class`) in every tier, unless a write of the key came in
    /// meanwhile. A failed reload keeps the old value. Under write-back a
    /// dirty key is not reloaded: the cache holds its newest value.
    async fn refresh(&self, key: &K, class: &DataClass) {
        let counts = &self.inner.protect.counts;
        let Ok(kb) = self.encode_key(key) else {
            return;
        };
        let seen = self.inner.stripes.of(&kb).version();
        if self.inner.record.dirty(&kb).is_some() {
            return;
        }
        match self.source_load(key).await {
            Ok(loaded) => {
                // A write of the key that came first wins, and the reload
                // is not counted: it replaced nothing.
                if self
                    .install_loaded(key, &kb, loaded.as_ref(), class, seen)
                    .await
                {
                    LoadCounts::add(&counts.refreshes);
                }
            }
            Err(_) => LoadCounts::add(&counts.refreshes_failed),
        }
    }
}

/// A refresh under way: when it ends, however it ends, the key may be
/// refreshed again.
struct Refreshing<'a, K: Hash + Eq + Clone, V> {
    protect: &'a Protection<K, V>,
    key: &'a K,
}

impl<K: Hash + Eq + Clone, V> Drop for Refreshing<'_, K, V> {
    fn drop(&mut self) {
        self.protect.end_refresh(self.key);
    }
}
