//! The warming seam without the `warm` feature: nothing learns from
//! lookups.

use std::marker::PhantomData;

/// No prefetcher to tell.
pub(crate) struct Warming<K>(PhantomData<fn(&K)>);

impl<K> Default for Warming<K> {
    fn default() -> Self {
        Warming(PhantomData)
    }
}

impl<K> Warming<K> {
    /// A lookup of the hot tier happened; nothing listens.
    #[inline(always)]
    pub(crate) fn on_access(&self, _key: &K, _hit: bool) {}
}
