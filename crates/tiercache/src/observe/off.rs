//! The observer without the `analytics` feature: every event is dropped,
//! and every method is empty so that the calls compile away.

use std::marker::PhantomData;

use bytes::Bytes;
use cache_backends::memory::RemovalCause;
use cache_core::{Clock, Meta};

use super::KeyEncoder;

/// Observes nothing.
pub(crate) struct Observer<K>(PhantomData<fn(&K)>);

impl<K> Clone for Observer<K> {
    fn clone(&self) -> Self {
        Observer(PhantomData)
    }
}

/// A call that is never sampled.
pub(crate) struct Sample;

impl<K> Observer<K> {
    pub(crate) fn new(_clock: Clock, _encode: KeyEncoder<K>) -> Self {
        Observer(PhantomData)
    }

    pub(crate) fn is_on(&self) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn start_lookup(&self, _running_count: u64, _key: &K) -> Sample {
        Sample
    }

    #[inline(always)]
    pub(crate) fn start_insert(&self, _class: u16) -> Sample {
        Sample
    }

    #[inline(always)]
    pub(crate) fn done(&self, _sample: Sample) {}

    #[inline(always)]
    pub(crate) fn follows(&self, _key: &K) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn on_hot_hit(&self, _key: &K, _class: u16, _followed: bool) {}

    #[inline(always)]
    pub(crate) fn on_hit(&self, _key: &K, _kb: &Bytes) {}

    #[inline(always)]
    pub(crate) fn on_miss(&self, _key: &K, _kb: Option<&Bytes>) {}

    #[inline(always)]
    pub(crate) fn on_load(&self, _key: &K) {}

    #[inline(always)]
    pub(crate) fn on_insert(
        &self,
        _key: &K,
        _kb: Option<&Bytes>,
        _size: impl FnOnce() -> Option<usize>,
        _meta: &Meta,
    ) -> bool {
        false
    }

    #[inline(always)]
    pub(crate) fn on_remove(&self, _key: &K, _kb: Option<&Bytes>) {}

    #[inline(always)]
    pub(crate) fn on_evict(&self, _class: u16, _cause: RemovalCause) {}
}
