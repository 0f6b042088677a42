//! The builder's settings for load protection: negative caching, cached
//! errors, the cache's own loader, refresh-ahead, stale-if-error, the load
//! timeout and (feature `policies`) bypass rules. Checked at `build`
//! (`crate::protect`).

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Codec, DataClass, Loader};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CacheBuilder;

impl<K, V, C> CacheBuilder<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// How long a negative entry lives when a load finds no value
    /// ([`Cache::optionally_get_with`](crate::Cache::optionally_get_with),
    /// [`Cache::get_or_load`](crate::Cache::get_or_load), a store's or the
    /// cache loader's `None`): 300 s by default. Until it expires, lookups
    /// of the key answer `None` without calling any loader. A zero or
    /// unrepresentable duration is an error at `build`.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.protect.negative_ttl = Some(ttl);
        self
    }

    /// Whether a load that finds no value stores a negative entry (on by
    /// default, for [`negative_ttl`](Self::negative_ttl)); off, every
    /// lookup of a missing key calls the loader again.
    pub fn negative_caching(mut self, on: bool) -> Self {
        self.settings.protect.negative_ttl = on.then_some(
            self.settings
                .protect
                .negative_ttl
                .unwrap_or(crate::DEFAULT_NEGATIVE_TTL),
        );
        self
    }

    /// The negative time-to-live of the data class `name`, instead of
    /// [`negative_ttl`](Self::negative_ttl), for negative entries stored in
    /// that class ([`Cache::insert_negative_in`](crate::Cache::insert_negative_in);
    /// `"default"` is the class of loads).
    pub fn class_negative_ttl(mut self, name: &str, ttl: Duration) -> Self {
        self.settings
            .protect
            .class_negative_ttl
            .push((DataClass::named(name), ttl));
        self
    }

    /// Which errors of a fallible loader
    /// ([`Cache::try_get_with`](crate::Cache::try_get_with),
    /// [`Cache::get_or_load`](crate::Cache::get_or_load), the store or the
    /// cache loader) are remembered, and for how long: `policy` sees the
    /// loader's own error (downcast it to pick by type) and answers a
    /// time-to-live, or `None` to remember nothing. A remembered error is a
    /// negative entry in every tier its class may live in; until it
    /// expires, fallible loads of the key fail at once with an
    /// [`ErrorKind::Loader`](crate::ErrorKind::Loader) error without calling
    /// the loader, and lookups answer `None`. By default no error is
    /// remembered.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use tiercache::Cache;
    ///
    /// let cache: Cache<u64, String> = Cache::builder()
    ///     .cache_errors(|e| {
    ///         // Remember "not allowed" for a minute; retry anything else.
    ///         let io = e.downcast_ref::<std::io::Error>()?;
    ///         (io.kind() == std::io::ErrorKind::PermissionDenied).then_some(Duration::from_secs(60))
    ///     })
    ///     .build()
    ///     .await?;
    /// let denied = || async { Err::<String, _>(std::io::Error::from(std::io::ErrorKind::PermissionDenied)) };
    /// assert!(cache.try_get_with(1, denied()).await.is_err());
    /// // Remembered: this loader is not called.
    /// assert!(cache.try_get_with(1, async { Ok::<_, std::io::Error>("one".to_string()) }).await.is_err());
    /// assert_eq!(cache.get(&1).await?, None);
    /// # Ok::<(), tiercache::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn cache_errors<F>(mut self, policy: F) -> Self
    where
        F: Fn(&(dyn std::error::Error + 'static)) -> Option<Duration> + Send + Sync + 'static,
    {
        self.settings.protect.cache_errors = Some(Arc::new(policy));
        self
    }

    /// The cache's own loader: a [`get`](crate::Cache::get) that misses
    /// every tier loads the key with it (one load per key however many
    /// callers miss, the value cached, `None` cached as a negative entry),
    /// and refresh-ahead and late loads use it. A cache with a
    /// [`store`](Self::store) loads from the store instead, and may not
    /// have both.
    pub fn loader(mut self, loader: impl Loader<K, V> + 'static) -> Self {
        self.loader = Some(Arc::new(loader));
        self
    }

    /// Refresh-ahead: a hit on an entry written longer than `age` ago
    /// answers its value at once and reloads it in the background (once
    /// per key however many hits), from the cache's
    /// [`loader`](Self::loader) or [`store`](Self::store); the new value
    /// replaces it in every tier, unless a write of the key came first. A
    /// failed reload keeps the old value, and is counted. `age` must be
    /// shorter than the cache's and every class's time-to-live, and the
    /// cache needs a loader or a store: `build` says otherwise.
    pub fn refresh_after_write(mut self, age: Duration) -> Self {
        self.settings.protect.refresh_after_write = Some(age);
        self
    }

    /// Stale-if-error: when a load fails (the loader's error, a store that
    /// is down, the load timeout), a value that expired less than `window`
    /// ago is answered instead of the error, and counted as stale. The hot
    /// tier keeps expired entries for `window` for this (they count
    /// towards its capacity, and are never answered otherwise); the tiers
    /// below memory drop them at their expiry.
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.settings.protect.stale_if_error = Some(window);
        self
    }

    /// How long a caller waits for a load another caller started, and for
    /// a load from the cache's loader or store: past it, the caller gets an
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) error (or a stale
    /// value, with [`stale_if_error`](Self::stale_if_error)). The load goes
    /// on: a loader or store load runs on a task of its own, and its late
    /// result is still stored. Such a load's deadline is counted from its
    /// start, and callers that joined it later give up with it. A caller whose own loader future runs (the
    /// first of a [`get_with`](crate::Cache::get_with) and its kin) waits
    /// for it: that future is the caller's, and nothing else can finish it.
    pub fn load_timeout(mut self, timeout: Duration) -> Self {
        self.settings.protect.load_timeout = Some(timeout);
        self
    }

    /// Adds a bypass rule for the whole cache (feature `policies`): a
    /// lookup of a key it matches skips every tier and goes to the loader
    /// or store, whose value is not cached; a write it matches stores
    /// nothing in any tier (a store behind the cache still takes it) and
    /// removes the key from every tier, so no older value stays. Rules
    /// add up: any match bypasses. Counted in
    /// [`Cache::load_stats`](crate::Cache::load_stats).
    #[cfg(feature = "policies")]
    pub fn bypass(self, rule: impl cache_policies::BypassRule<K> + 'static) -> Self {
        self.bypass_in(cache_policies::BypassScope::Everywhere, rule)
    }

    /// Adds a bypass rule for part of the cache: the hot tier
    /// ([`BypassScope::Memory`](cache_policies::BypassScope::Memory)), or
    /// one tier below memory by name: a write it matches skips that tier
    /// (the key is removed there) and goes to the others; a lookup skips
    /// asking it.
    #[cfg(feature = "policies")]
    pub fn bypass_in(
        mut self,
        scope: cache_policies::BypassScope,
        rule: impl cache_policies::BypassRule<K> + 'static,
    ) -> Self {
        self.bypass.push(scope, Arc::new(rule));
        self
    }
}
