//! Per-insert settings: the entry's class, its own time-to-live and where
//! it may live.

use std::time::Duration;

use cache_core::{DataClass, Placement};

/// How [`Cache::insert_with`](crate::Cache::insert_with) stores one entry.
/// Whatever is not set comes from the entry's class, then from the cache.
///
/// ```
/// use std::time::Duration;
/// use tiercache::{InsertOptions, Placement};
///
/// let options = InsertOptions::new()
///     .class("llm-response")
///     .time_to_live(Duration::from_secs(3600))
///     .placement(Placement::BelowMemory);
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsertOptions {
    pub(crate) class: DataClass,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) placement: Option<Placement>,
}

impl InsertOptions {
    /// The default class, with its time-to-live and placement.
    pub fn new() -> Self {
        InsertOptions::default()
    }

    /// Puts the entry in the data class `name`, whose policy (set with
    /// [`CacheBuilder::class`](crate::CacheBuilder::class)) gives its
    /// time-to-live and placement unless this call sets them.
    #[must_use]
    pub fn class(mut self, name: &str) -> Self {
        self.class = DataClass::named(name);
        self
    }

    /// The entry's own time-to-live, instead of its class's or the cache's.
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Where the entry may live, instead of where its class may.
    #[must_use]
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = Some(placement);
        self
    }
}
