//! The write path, in order: check and encode the input, then, holding the
//! key's stripe lock, change the hot tier, the demotion queue and every
//! tier below; `remove` and `clear` the same way.

use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Codec, Entry, Flags, Meta, Placement, Result, expiry_after};
use futures::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use super::observe::{Sampled, Tracked};
use crate::options::InsertOptions;

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Stores a value in every tier; it lives for the cache's time-to-live.
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new()).await
    }

    /// Stores a value in every tier with its own time-to-live. A zero or
    /// unrepresentable `ttl` is an [`ErrorKind::InvalidTtl`](cache_core::ErrorKind::InvalidTtl) error and
    /// changes nothing.
    pub async fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().time_to_live(ttl))
            .await
    }

    /// Stores a value in the data class `class`: with the class's
    /// time-to-live, in the tiers the class may live in (see
    /// [`CacheBuilder::class`](crate::CacheBuilder::class)).
    pub async fn insert_with_class(&self, key: K, value: V, class: &str) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().class(class))
            .await
    }

    /// Stores a value as `options` say: its class, its own time-to-live and
    /// its placement, each falling back to the class's and then the
    /// cache's.
    ///
    /// The value replaces the key's value in every tier it may live in, and
    /// the key is removed from the others, so no tier keeps an older value.
    /// With write-on-evict, the tiers below memory lose the key now and get
    /// the value when the hot tier evicts it. Everything that can fail
    /// because of the input (the time-to-live, the key's and value's sizes
    /// and encodings) is checked before any tier changes.
    pub async fn insert_with(&self, key: K, value: V, options: InsertOptions) -> Result<()> {
        let sample = self.sample_insert();
        let stored = self.insert_unanalysed(key, value, options).await;
        self.sample_done(sample, Sampled::Insert);
        stored
    }

    /// [`insert_with`](Self::insert_with) without the analytics around it.
    async fn insert_unanalysed(&self, key: K, value: V, options: InsertOptions) -> Result<()> {
        // 1. The entry's expiry and class, checked.
        let now = self.inner.clock.now_ms();
        let policy = self.inner.classes.policy(&options.class);
        let ttl = options
            .time_to_live
            .or(policy.time_to_live)
            .or(self.inner.time_to_live);
        let expires_at = ttl.map(|ttl| expiry_after(now, ttl)).transpose()?;
        let mut meta = Meta::new(now).expires_at(expires_at);
        meta.class = options.class;
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics
            && !matches!(meta.class, cache_core::DataClass::Default)
        {
            a.inserted_class(self.inner.class_names.index(&meta.class));
        }
        if self.inner.tiers.is_empty() {
            // With nothing below memory, every placement lives there, and
            // the hot tier orders the writes of a key by itself.
            let tracked = self.track_insert(&key, None, &value, None, &meta);
            let mut slot = self.slot(value, &meta, Placement::MemoryOnly, false, 0);
            slot.tracked = tracked;
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, expires_at);
            self.inner.flights.detach(&key);
            return Ok(());
        }
        // 2. The key and value encoded once, and their sizes checked,
        //    before any tier changes.
        let placement = options.placement.unwrap_or(policy.placement);
        let kb = self.encode_key(&key)?;
        let vb = self.inner.codec.encode(&value)?;
        self.inner.limits.check_value(vb.len())?;
        if placement == Placement::DiskOnly {
            meta.flags = meta.flags.with(Flags::LOWER_ONLY);
        }
        let through = placement == Placement::DiskOnly
            || (placement == Placement::Everywhere && self.inner.pending.is_none());
        let tracked = self.track_insert(&key, Some(&kb), &value, Some(vb.len()), &meta);
        // 3. Every tier changes under the key's stripe lock, so no
        //    promotion or demotion of an older value lands in between.
        let write = self.inner.stripes.of(&kb).write().await;
        let seq = write.seq();
        if placement.in_memory() {
            let mut slot = self.slot(value, &meta, placement, through, seq);
            slot.tracked = tracked;
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, expires_at);
        } else {
            self.inner.hot.engine.remove(&key);
        }
        // An older value of the key waiting for the warm tier is replaced.
        if let Some(pending) = &self.inner.pending {
            pending.purge(&key, seq);
        }
        if through {
            self.write_lower(&kb, Entry::new(vb, meta)).await;
        } else {
            self.remove_lower(&kb).await;
        }
        drop(write);
        // A load of the key that began before this write may have read an
        // older value: later callers must not be handed its result.
        self.inner.flights.detach(&key);
        // 4. What the hot tier evicted to make room goes to the warm tier.
        self.demote_pending().await;
        Ok(())
    }

    /// Writes an entry into every tier below memory. A tier that fails may
    /// still hold the previous value, so it is asked to drop it: a
    /// recovered tier must not serve a stale one.
    async fn write_lower(&self, kb: &Bytes, entry: Entry) {
        let tiers = &self.inner.tiers;
        let writes = tiers.iter().map(|t| {
            let copy = Entry::new(entry.value.clone(), t.stamp(entry.meta.clone()));
            t.backend.dyn_insert(kb.clone(), copy)
        });
        let results = join_all(writes).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(()) => tier.mark_current(kb),
                Err(e) => {
                    tier.count_error(e.kind());
                    match tier.backend.dyn_remove(kb).await {
                        Ok(_) => tier.mark_current(kb),
                        Err(_) => {
                            tier.errors.fetch_add(1, Ordering::Relaxed);
                            tier.mark_stale(kb, self.inner.clock.now_ms());
                        }
                    }
                }
            }
        }
    }

    /// Removes a key from every tier below memory.
    async fn remove_lower(&self, kb: &Bytes) {
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_remove(kb))).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(_) => tier.mark_current(kb),
                Err(e) => {
                    tier.count_error(e.kind());
                    tier.mark_stale(kb, self.inner.clock.now_ms());
                }
            }
        }
    }

    /// Removes `key` from every tier (and from the demotion queue).
    pub async fn remove(&self, key: &K) -> Result<()> {
        if self.inner.tiers.is_empty() {
            self.inner.hot.engine.remove(key);
            self.inner.flights.detach(key);
            self.track(key, None, Tracked::Removed);
            return Ok(());
        }
        let kb = self.encode_key(key)?;
        self.track(key, Some(&kb), Tracked::Removed);
        let write = self.inner.stripes.of(&kb).write().await;
        self.inner.hot.engine.remove(key);
        if let Some(pending) = &self.inner.pending {
            pending.purge(key, u64::MAX);
        }
        self.remove_lower(&kb).await;
        drop(write);
        self.inner.flights.detach(key);
        Ok(())
    }

    /// Removes every entry from every tier. It waits for the writes under
    /// way and holds back new ones until every tier is cleared, so nothing
    /// written before it returns survives it.
    pub async fn clear(&self) -> Result<()> {
        if self.inner.tiers.is_empty() {
            self.inner.hot.clear();
            self.inner.flights.detach_all();
            return Ok(());
        }
        let all = self.inner.stripes.write_all().await;
        self.inner.hot.clear();
        if let Some(pending) = &self.inner.pending {
            pending.clear();
        }
        let tiers = &self.inner.tiers;
        let results = join_all(tiers.iter().map(|t| t.backend.dyn_clear())).await;
        for (tier, result) in tiers.iter().zip(results) {
            match result {
                Ok(()) => tier.mark_all_current(),
                Err(e) => {
                    tier.count_error(e.kind());
                    tier.mark_all_stale(self.inner.clock.now_ms());
                }
            }
        }
        drop(all);
        self.inner.flights.detach_all();
        Ok(())
    }
}
