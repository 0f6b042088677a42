//! Load protection from the cache's side: what bypass rules say of a
//! lookup or a write, negative entries stored by loads, remembered
//! errors, and stale values answered when a load fails. The settings and
//! counters are `crate::protect`'s.

use std::hash::Hash;
use std::time::Duration;

use cache_core::{Codec, DataClass, Error, ErrorKind, Flags, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::options::InsertOptions;
use crate::protect::{LoadCounts, Skip};

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// What the bypass rules keep a lookup of `key` out of.
    #[inline]
    pub(super) fn get_skip(&self, key: &K) -> Skip {
        #[cfg(feature = "policies")]
        {
            let bypass = &self.inner.protect.bypass;
            if !bypass.rules.is_empty() {
                return bypass.skip(bypass.rules.on_get(key));
            }
        }
        let _ = key;
        Skip::NONE
    }

    /// What the bypass rules keep a write of `key` out of, its value
    /// encoded in `size` bytes, of class `class`. `counted`: a write of the
    /// application's (or a load's); a copy of a value already written (a
    /// promotion) gets the same answer, not counted.
    #[inline]
    pub(super) fn set_skip(&self, key: &K, size: usize, class: &DataClass, counted: bool) -> Skip {
        #[cfg(feature = "policies")]
        {
            let bypass = &self.inner.protect.bypass;
            if !bypass.rules.is_empty() {
                let info = cache_policies::WriteInfo {
                    size,
                    class: class.as_str(),
                };
                let skip = if counted {
                    bypass.rules.on_set(key, info)
                } else {
                    bypass.rules.peek_set(key, info)
                };
                return bypass.skip(skip);
            }
        }
        let _ = (key, size, class, counted);
        Skip::NONE
    }

    /// Whether any bypass rule is set (a memory-only cache then encodes a
    /// value to learn its size).
    #[inline(always)]
    pub(super) fn has_bypass_rules(&self) -> bool {
        #[cfg(feature = "policies")]
        {
            !self.inner.protect.bypass.rules.is_empty()
        }
        #[cfg(not(feature = "policies"))]
        {
            false
        }
    }

    /// Stores a negative entry for a load that found no value, if negative
    /// caching is on; a write of the key under way or since wins.
    pub(super) async fn fill_negative(&self, key: K) -> Result<()> {
        let Some(ttl) = self.inner.protect.negative_ttl(&DataClass::Default) else {
            return Ok(());
        };
        if self.keeps_out(&key) {
            return Ok(());
        }
        self.write_negative(key, DataClass::Default, ttl, false)
            .await?;
        LoadCounts::add(&self.inner.protect.counts.negatives_stored);
        Ok(())
    }

    /// Whether bypass rules keep a negative entry of `key` (of the default
    /// class, with no value) out of the cache altogether.
    fn keeps_out(&self, key: &K) -> bool {
        let skip = self.set_skip(key, 0, &DataClass::Default, true);
        skip.everything || (skip.memory && self.inner.tiers.is_empty())
    }

    /// Remembers the loader error `e` of `key` as a negative entry, if the
    /// error policy picks it; returns `e` either way.
    pub(super) async fn remember_error(&self, key: &K, e: Error) -> Error {
        if let Some(ttl) = self.inner.protect.error_ttl(&e)
            && !self.keeps_out(key)
            && self
                .write_negative(key.clone(), DataClass::Default, ttl, true)
                .await
                .is_ok()
        {
            LoadCounts::add(&self.inner.protect.counts.errors_cached);
        }
        e
    }

    /// A negative entry of class `class` for `ttl` (`failed`: it remembers
    /// an error), written like an insert but never to the store: it is the
    /// cache's own knowledge (a store loses a value only through a
    /// removal).
    pub(super) async fn write_negative(
        &self,
        key: K,
        class: DataClass,
        ttl: Duration,
        failed: bool,
    ) -> Result<()> {
        let options = InsertOptions {
            class: class.clone(),
            time_to_live: Some(ttl),
            placement: None,
        };
        self.write(key, None, &class, false, |now| {
            let (mut meta, placement) = self.new_meta(now, options)?;
            if failed {
                meta.flags = meta.flags.with(Flags::FAILED);
            }
            Ok((meta, placement))
        })
        .await
    }

    /// Stores a negative entry for `key` in the data class `class`, for the
    /// class's negative time-to-live
    /// ([`CacheBuilder::class_negative_ttl`](crate::CacheBuilder::class_negative_ttl),
    /// else [`negative_ttl`](crate::CacheBuilder::negative_ttl)), in every
    /// tier the class may live in. An insert of a value replaces it.
    pub async fn insert_negative_in(&self, key: K, class: &str) -> Result<()> {
        let class = DataClass::named(class);
        let ttl = self
            .inner
            .protect
            .negative_ttl(&class)
            .unwrap_or(crate::DEFAULT_NEGATIVE_TTL);
        self.write_negative(key, class, ttl, false).await
    }

    /// The error a fallible load answers while a remembered failure of its
    /// key lives.
    pub(super) fn remembered_error(&self) -> Error {
        LoadCounts::add(&self.inner.protect.counts.cached_errors_returned);
        Error::new(
            ErrorKind::Loader,
            "a recent load of this key failed, and the failure is remembered until its \
             negative entry expires (CacheBuilder::cache_errors)",
        )
    }

    /// With stale-if-error, a failed load of `key` answered with the value
    /// the hot tier kept past its expiry, if it is within the window.
    /// Every caller whose load ended at the load timeout (its own, or the
    /// leader's it shared) is counted here.
    pub(super) fn or_stale(&self, key: &K, result: Result<Option<V>>) -> Result<Option<V>> {
        if let Err(e) = &result
            && e.kind() == ErrorKind::Timeout
            && self.inner.protect.load_timeout.is_some()
        {
            LoadCounts::add(&self.inner.protect.counts.load_timeouts);
        }
        match result {
            Err(e) if is_load_failure(&e) => match self.inner.hot.stale_value(key) {
                Some(v) => {
                    LoadCounts::add(&self.inner.protect.counts.stale_served);
                    Ok(Some(v))
                }
                None => Err(e),
            },
            other => other,
        }
    }
}

/// Whether `e` says a load failed (rather than the caller's input was
/// wrong), so that a stale value may answer instead.
fn is_load_failure(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Loader
            | ErrorKind::LoaderAborted
            | ErrorKind::Timeout
            | ErrorKind::Unavailable
            | ErrorKind::Backend
    )
}
