//! The memory tier: a typed concurrent cache and its byte-level backend.

mod backend;
mod builder;
mod cache;
mod chooser;
mod climber;
mod counters;
mod expiry;
mod shard;
mod sketch;
mod timer;

pub use backend::{MemoryBackend, MemoryBackendBuilder};
pub use builder::MemoryCacheBuilder;
pub use cache::MemoryCache;

/// Why an entry left a [`MemoryCache`], as given to its eviction listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Its time-to-live, time-to-idle or own expiry passed.
    Expired,
    /// It was removed by `remove` or `clear`.
    Explicit,
    /// A newer value was inserted for its key.
    Replaced,
    /// It was evicted to keep the cache within capacity (or was too heavy
    /// to be admitted at all).
    Size,
}

impl RemovalCause {
    /// Whether the cache removed the entry by itself (expiry or size),
    /// as opposed to the application replacing or removing it.
    pub fn was_evicted(self) -> bool {
        matches!(self, RemovalCause::Expired | RemovalCause::Size)
    }
}
