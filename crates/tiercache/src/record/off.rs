//! No system of record: the cache is the only place values live.

use std::marker::PhantomData;

use bytes::Bytes;
use cache_core::Result;

use super::Staged;

/// The absence of a store; every question answers "none".
pub(crate) struct Record<K, V, C>(PhantomData<fn(K, V, C)>);

impl<K, V, C> Record<K, V, C> {
    pub(crate) fn none() -> Self {
        Record(PhantomData)
    }

    /// Whether writes go through a store or a log first.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        false
    }

    pub(crate) async fn insert(&self, _: &K, _: &V, _: &Bytes, _: &Bytes) -> Result<Staged> {
        Ok(Staged::Write)
    }

    pub(crate) async fn remove(&self, _: &K, _: &Bytes) -> Result<()> {
        Ok(())
    }

    #[inline(always)]
    pub(crate) fn dirty(&self, _: &[u8]) -> Option<Option<Bytes>> {
        None
    }

    pub(crate) async fn load(&self, _: &K) -> Result<Option<V>> {
        Ok(None)
    }
}
