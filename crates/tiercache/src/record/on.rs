//! A store behind the cache, with its write policy.

use std::sync::Arc;

use bytes::Bytes;
use cache_core::{Codec, Result};
use cache_policies::{DynStore, WriteBack, WritePolicy};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Staged;

/// The store, if there is one, and how writes reach it.
pub(crate) struct Record<K, V, C> {
    mode: Option<Mode<K, V, C>>,
}

enum Mode<K, V, C> {
    Through(Arc<dyn DynStore<K, V>>),
    Around(Arc<dyn DynStore<K, V>>),
    Back(Arc<dyn DynStore<K, V>>, WriteBack<K, V, C>),
}

impl<K, V, C> Record<K, V, C> {
    /// Whether writes go through a store or a log first.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.mode.is_some()
    }
}

impl<K, V, C> Record<K, V, C>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    pub(crate) fn none() -> Self {
        Record { mode: None }
    }

    /// `store` under write-through or write-around.
    pub(crate) fn direct(store: Arc<dyn DynStore<K, V>>, policy: WritePolicy) -> Self {
        let mode = match policy {
            WritePolicy::Around => Mode::Around(store),
            _ => Mode::Through(store),
        };
        Record { mode: Some(mode) }
    }

    /// `store` under write-back, through `log`.
    pub(crate) fn back(store: Arc<dyn DynStore<K, V>>, log: WriteBack<K, V, C>) -> Self {
        Record {
            mode: Some(Mode::Back(store, log)),
        }
    }

    /// The write-back engine, under write-back.
    pub(crate) fn write_back(&self) -> Option<&WriteBack<K, V, C>> {
        match &self.mode {
            Some(Mode::Back(_, log)) => Some(log),
            _ => None,
        }
    }

    /// Hands an insert of `value` to the system of record: the store
    /// saves it (through, around) or the log makes it durable (back). An
    /// error is the store's or the log's, and no tier has changed.
    pub(crate) async fn insert(
        &self,
        key: &K,
        value: &V,
        kb: &Bytes,
        vb: &Bytes,
    ) -> Result<Staged> {
        match &self.mode {
            None => Ok(Staged::Write),
            Some(Mode::Through(store)) => {
                store.dyn_save(key, value).await?;
                Ok(Staged::Write)
            }
            Some(Mode::Around(store)) => {
                store.dyn_save(key, value).await?;
                Ok(Staged::Invalidate)
            }
            Some(Mode::Back(_, log)) => {
                log.save(kb.clone(), vb.clone()).await?;
                Ok(Staged::Write)
            }
        }
    }

    /// Hands a removal of `key` to the system of record, as
    /// [`insert`](Self::insert) does.
    pub(crate) async fn remove(&self, key: &K, kb: &Bytes) -> Result<()> {
        match &self.mode {
            None => Ok(()),
            Some(Mode::Through(store) | Mode::Around(store)) => store.dyn_delete(key).await,
            Some(Mode::Back(_, log)) => log.delete(kb.clone()).await,
        }
    }

    /// Under write-back, the latest write of a dirty key, which is newer
    /// than anything the store holds: `Some(Some(value))`, or
    /// `Some(None)` for a removal.
    #[inline]
    pub(crate) fn dirty(&self, kb: &[u8]) -> Option<Option<Bytes>> {
        match &self.mode {
            Some(Mode::Back(_, log)) => log.dirty(kb),
            _ => None,
        }
    }

    /// The store's value of `key` (read-through); `None` without a store.
    pub(crate) async fn load(&self, key: &K) -> Result<Option<V>> {
        match &self.mode {
            None => Ok(None),
            Some(Mode::Through(store) | Mode::Around(store) | Mode::Back(store, _)) => {
                store.dyn_load(key).await
            }
        }
    }
}
