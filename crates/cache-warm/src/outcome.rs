//! What warming one key came to, and the keys a source offers.

use cache_core::Error;

/// What warming (or prefetching) one key came to.
#[derive(Clone, Debug)]
pub enum WarmOutcome {
    /// The key's value is now in the cache: loaded, or copied up from a
    /// lower tier.
    Warmed,
    /// The cache already held the key; nothing was done.
    Present,
    /// The source had no value for the key (a loader answered "none", or
    /// the lower tier no longer held it).
    Missing,
    /// Warming the key failed; the cache is unchanged for it.
    Failed(Error),
}

/// A key offered by a warming source, with what orders it: the source's
/// priority (higher first) and an estimate of how often the key is used
/// (higher first among equal priorities; 0 when unknown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarmKey<K> {
    /// The key to warm.
    pub key: K,
    /// Its estimated frequency of use; 0 when the source does not know.
    pub frequency: u32,
}

impl<K> WarmKey<K> {
    /// `key` with an unknown frequency.
    pub fn new(key: K) -> Self {
        WarmKey { key, frequency: 0 }
    }

    /// `key` with an estimated `frequency`.
    pub fn with_frequency(key: K, frequency: u32) -> Self {
        WarmKey { key, frequency }
    }
}
