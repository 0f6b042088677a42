//! The read path, in order: the hot tier, the entries waiting for
//! demotion, each byte tier below, and the promotion of a hit into the
//! tiers above it.

use std::hash::Hash;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cache_core::{Codec, Entry, Flags, Lookup, Placement, Result};
use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::observe::{Sampled, Tracked};
use super::{Cache, HOT_MISSES, PROMOTIONS};

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The value for `key`, from the nearest tier that has it.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        let sample = self.sample_lookup(key);
        let found = self.get_counted(key).await;
        self.sample_done(sample, Sampled::Lookup);
        found
    }

    /// A value from the hot tier, counting the hit's class when analytics
    /// is on.
    #[inline]
    pub(super) fn hot_get(&self, key: &K) -> Option<V> {
        let slot = self.inner.hot.engine.get(key)?;
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics {
            a.hit(slot.class);
            if slot.tracked {
                self.track_followed(key, None, Tracked::Hit);
            }
        }
        Some(slot.value)
    }

    /// [`get`](Self::get), with the hot tier's counters.
    async fn get_counted(&self, key: &K) -> Result<Option<V>> {
        if let Some(v) = self.hot_get(key) {
            return Ok(Some(v));
        }
        self.inner.counters.add(HOT_MISSES, 1);
        if self.inner.tiers.is_empty() {
            self.track(key, None, Tracked::Miss);
            return Ok(None);
        }
        let kb = self.encode_key(key)?;
        let found = self.get_below_hot(key, &kb).await;
        if matches!(found, Ok(None)) {
            self.track(key, Some(&kb), Tracked::Miss);
        }
        found
    }

    /// The leader of a load looks again, because another load may have
    /// finished between its first look and its turn; this second look is
    /// not a new request, so the hot tier's counters are left alone.
    pub(super) async fn get_uncounted(&self, key: &K) -> Result<Option<V>> {
        if let Some(v) = self.inner.hot.get(key) {
            return Ok(Some(v));
        }
        if self.inner.tiers.is_empty() {
            return Ok(None);
        }
        let kb = self.encode_key(key)?;
        self.get_below_hot(key, &kb).await
    }

    /// Everything after a first miss in the hot tier, in order.
    async fn get_below_hot(&self, key: &K, kb: &Bytes) -> Result<Option<V>> {
        let stripe = self.inner.stripes.of(kb);
        // 1. The version before anything below is read: a promotion of what
        //    is found installs only if no write of the key ended since.
        let seen = stripe.version();
        // 2. The hot tier once more: a write that ended before the version
        //    was noted left its value there, or in the demotion queue, or
        //    (demoted) below.
        if let Some(v) = self.inner.hot.get(key) {
            return Ok(Some(v));
        }
        // 3. Write-on-evict: an entry on its way to the warm tier.
        if let Some(slot) = self.inner.pending.as_ref().and_then(|p| p.get(key))
            && slot
                .expires_at_ms
                .is_none_or(|at| at > self.inner.clock.now_ms())
        {
            return Ok(Some(slot.value));
        }
        // 4. Each byte tier in order; the first hit is promoted.
        for (i, tier) in self.inner.tiers.iter().enumerate() {
            if tier.is_stale(kb) {
                // A write or removal failed here earlier: what it holds
                // for the key may be out of date, so it is not asked. The
                // removal that settles it waits for the key's writes.
                let _held = stripe.hold().await;
                tier.settle(kb).await;
                tier.misses.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let entry = match tier.backend.dyn_get(kb).await {
                Ok(Lookup::Hit(entry)) => entry,
                Ok(Lookup::Negative(meta)) => {
                    // A negative entry answers for the key only while it
                    // is live by the cache's own clock; otherwise the
                    // tiers below are asked.
                    if meta.is_expired(self.inner.clock.now_ms()) || tier.distrusts(&meta) {
                        tier.misses.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    tier.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(None);
                }
                Ok(Lookup::Miss | Lookup::Bypassed) => {
                    tier.misses.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => {
                    tier.count_error(e.kind());
                    continue;
                }
            };
            // A tier must not return expired entries, but clocks of
            // different machines disagree; the cache's own clock decides.
            let now = self.inner.clock.now_ms();
            if entry.meta.is_expired(now) || tier.distrusts(&entry.meta) {
                tier.misses.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if entry.meta.is_negative() {
                tier.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            if entry.meta.flags.compression() != 0 {
                // A compressed frame this stack does not decompress (a
                // tier shared with a cache that compresses it): neither
                // ours to decode nor corrupted, so it is left alone.
                tier.misses.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let value: V = match self.inner.codec.decode(&entry.value) {
                Ok(v) => v,
                Err(_) => {
                    // A record that does not decode is never returned: it
                    // is counted as corrupted and dropped from the tier,
                    // unless a valid value replaced it meanwhile.
                    tier.corrupted.fetch_add(1, Ordering::Relaxed);
                    let _ = tier.backend.dyn_remove_if_unchanged(kb, &entry.value).await;
                    continue;
                }
            };
            tier.hits.fetch_add(1, Ordering::Relaxed);
            if self.is_tracked(key) {
                self.track(key, Some(kb), Tracked::Hit);
            }
            let due = match &self.inner.promotion {
                Some(window) => window.hit(kb, now),
                None => true,
            };
            if due {
                self.promote(i, key, kb, &value, entry, seen).await;
            }
            return Ok(Some(value));
        }
        Ok(None)
    }

    /// The last step of a read: copies a hit from tier `found_in` into
    /// every tier above it that its placement allows, keeping its absolute
    /// expiry (and so its remaining time to live), unless a write of the
    /// key's stripe ended after version `seen` was noted, or is under way,
    /// since the hit may then be older than that write.
    async fn promote(
        &self,
        found_in: usize,
        key: &K,
        kb: &Bytes,
        value: &V,
        entry: Entry,
        seen: u64,
    ) {
        let stripe = self.inner.stripes.of(kb);
        let Some(lock) = stripe.unchanged_since(seen) else {
            return;
        };
        self.inner.counters.add(PROMOTIONS, 1);
        let placement = if entry.meta.flags.contains(Flags::LOWER_ONLY) {
            Placement::DiskOnly
        } else {
            self.inner.classes.policy(&entry.meta.class).placement
        };
        if placement.in_memory() {
            // The warm tier holds this value once the writes below are
            // done (or held it already), so evicting it writes nothing.
            let mut slot = self.slot(
                value.clone(),
                &entry.meta,
                Placement::Everywhere,
                true,
                seen,
            );
            slot.tracked = self.is_tracked(key);
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, entry.meta.expires_at_ms);
        }
        let above = &self.inner.tiers[..found_in];
        let writes = above.iter().map(|t| {
            let copy = Entry::new(entry.value.clone(), t.stamp(entry.meta.clone()));
            t.backend.dyn_insert(kb.clone(), copy)
        });
        let results = join_all(writes).await;
        for (tier, result) in above.iter().zip(results) {
            match result {
                Ok(()) => tier.mark_current(kb),
                // A copy that failed leaves at worst what the tier held
                // before: it missed, or the key is already marked stale.
                Err(e) => tier.count_error(e.kind()),
            }
        }
        drop(lock);
        self.demote_pending().await;
    }

    /// Whether any tier holds a live value for `key` (without promoting it).
    pub async fn contains_key(&self, key: &K) -> Result<bool> {
        if self.inner.hot.contains_key(key) {
            return Ok(true);
        }
        if self.inner.tiers.is_empty() {
            return Ok(false);
        }
        let kb = self.encode_key(key)?;
        if let Some(slot) = self.inner.pending.as_ref().and_then(|p| p.get(key))
            && slot
                .expires_at_ms
                .is_none_or(|at| at > self.inner.clock.now_ms())
        {
            return Ok(true);
        }
        for tier in &self.inner.tiers {
            if tier.is_stale(&kb) {
                continue;
            }
            match tier.backend.dyn_get(&kb).await {
                Ok(Lookup::Hit(entry)) => {
                    let now = self.inner.clock.now_ms();
                    if !entry.meta.is_expired(now)
                        && !tier.distrusts(&entry.meta)
                        && !entry.meta.is_negative()
                    {
                        return Ok(true);
                    }
                }
                Ok(Lookup::Negative(meta)) => {
                    if !meta.is_expired(self.inner.clock.now_ms()) && !tier.distrusts(&meta) {
                        return Ok(false);
                    }
                }
                Ok(Lookup::Miss | Lookup::Bypassed) => {}
                Err(e) => tier.count_error(e.kind()),
            }
        }
        Ok(false)
    }
}
