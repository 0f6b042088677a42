//! The store behind the cache, from the cache's side: read-through on a
//! miss everywhere, the latest write of a dirty key (write-back), and the
//! calls that inspect write-back (dirty keys, dead letters, flushing).
//! How each write reaches the store is in the write path (`write.rs`,
//! step 4) and `crate::record`.

use std::hash::Hash;

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cache_core::{Codec, DataClass, Entry, LoaderErrors, Lookup, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use super::write::mark;
use crate::options::InsertOptions;
use crate::protect::{LoadCounts, Skip};
use crate::report::FlushReport;

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// With write-back, what a dirty key's latest write answers: its
    /// value, or a miss for a removal the store has not applied yet (which
    /// read-through then does not load).
    pub(super) fn dirty_lookup(&self, kb: &[u8]) -> Option<Lookup<V>> {
        let dirty = self.inner.record.dirty(kb)?;
        Some(match dirty.map(|vb| self.inner.codec.decode::<V>(&vb)) {
            Some(Ok(v)) => Lookup::Hit(v),
            // It encoded when it was written; one that no longer decodes
            // is not served, and the store's copy is older, so: a miss.
            Some(Err(_)) | None => Lookup::Miss,
        })
    }

    /// Step 6 of the read path for a caller that leads no load: one
    /// read-through per key however many callers miss at once. A caller
    /// that waits on another's load waits at most the load timeout; a
    /// failed load is answered with a stale value where one is kept.
    pub(super) async fn load_through(&self, key: &K, skip: Skip) -> Result<Lookup<V>> {
        let negative = AtomicBool::new(false);
        let negative = &negative;
        let loaded = self
            .inner
            .flights
            .get_or_load_within(
                key,
                LoaderErrors::Shared,
                || self.patience(),
                // The leader looks again, the store included.
                || async move {
                    Ok(match self.lookup_uncounted(key, skip).await?.found {
                        Lookup::Hit(v) => Some(v),
                        Lookup::Negative(_) => {
                            negative.store(true, Ordering::Relaxed);
                            None
                        }
                        _ => None,
                    })
                },
                || async { Ok(None) },
                |_| async { Ok(()) },
            )
            .await;
        Ok(match self.or_stale(key, loaded)? {
            Some(v) => Lookup::Hit(v),
            // What the leader found stands for its waiters too: a
            // negative entry, or the store's "none" stored as one.
            None if negative.load(Ordering::Relaxed) => self.negative_answer(key),
            None => Lookup::Miss,
        })
    }

    /// A load found (or stored) a negative entry for `key`: the entry's own
    /// metadata where the hot tier holds it, else metadata stamped now.
    fn negative_answer(&self, key: &K) -> Lookup<V> {
        match self.inner.hot.live(key) {
            Some(slot) if slot.value.is_none() => self.slot_lookup(slot),
            _ => Lookup::Negative(cache_core::Meta::new(self.inner.clock.now_ms())),
        }
    }

    /// Loads `key` from the store (or the cache's loader) after a miss in
    /// every tier, and caches what it found (`None` as a negative entry)
    /// unless a write of the key came in meanwhile (the store's copy may
    /// then be older than it). A dirty key is answered from its latest
    /// write and never loaded: the store's copy is older. With a load
    /// timeout the load runs on a task of its own, which stores its result
    /// even when it comes too late for the caller.
    pub(super) async fn read_through(&self, key: &K, kb: &Bytes, seen: u64) -> Result<Lookup<V>> {
        // `seen` was noted before the dirty check: a write-back insert
        // that makes the key dirty after it advances the version, so the
        // store's older copy is not installed over it.
        if let Some(found) = self.dirty_lookup(kb) {
            return Ok(found);
        }
        let loaded = self.load_from_source(key, kb, seen).await?;
        Ok(match loaded {
            Some(v) => Lookup::Hit(v),
            None if self
                .inner
                .protect
                .negative_ttl(&DataClass::Default)
                .is_some() =>
            {
                self.negative_answer(key)
            }
            None => Lookup::Miss,
        })
    }

    /// Loads `key` from the cache's own source (its store, else its
    /// loader) and installs the outcome: no timeout, on the caller's task.
    /// Says whether the outcome was installed (only if no write of the
    /// key's stripe ended since version `seen`).
    pub(super) async fn load_and_install(
        &self,
        key: &K,
        kb: &Bytes,
        seen: u64,
    ) -> Result<(Option<V>, bool)> {
        let loaded = match self.source_load(key).await {
            Ok(loaded) => loaded,
            Err(e) => return Err(self.remember_error(key, e).await),
        };
        let installed = self
            .install_loaded(key, kb, loaded.as_ref(), &DataClass::Default, seen)
            .await;
        Ok((loaded, installed))
    }

    /// The cache's own source: the store, else the loader.
    pub(super) async fn source_load(&self, key: &K) -> Result<Option<V>> {
        match &self.inner.protect.loader {
            Some(loader) if !self.inner.record.is_on() => {
                self.inner.observer.on_load(key);
                loader.load_boxed(key).await
            }
            _ => self.inner.record.load(key).await,
        }
    }

    /// Caches what a load answered (`value`; `None`: a negative entry, if
    /// negative caching is on) as an insert of class `class` would place
    /// it, if no write of the key's stripe ended since version `seen` or
    /// is under way. What cannot be cached (its size, its encoding, a
    /// bypass rule) is simply not cached. Returns whether it was.
    pub(super) async fn install_loaded(
        &self,
        key: &K,
        kb: &Bytes,
        value: Option<&V>,
        class: &DataClass,
        seen: u64,
    ) -> bool {
        let options = InsertOptions::new().class(class.as_str());
        let options = match value {
            Some(_) => options,
            None => match self.inner.protect.negative_ttl(class) {
                Some(ttl) => options.time_to_live(ttl),
                None => return false,
            },
        };
        let Ok((mut meta, placement)) = self.new_meta(self.inner.clock.now_ms(), options) else {
            return false;
        };
        let vb = match value {
            Some(v) => match self.inner.codec.encode(v) {
                Ok(vb) => Bytes::from(vb),
                Err(_) => return false,
            },
            None => Bytes::new(),
        };
        if self.inner.limits.check_value(vb.len()).is_err() {
            return false;
        }
        let skip = self.set_skip(key, vb.len(), class, true);
        let Some(placement) = skip.placement(placement) else {
            return false;
        };
        mark(&mut meta, placement, value.is_none());
        let stripe = self.inner.stripes.of(kb);
        let Some(lock) = stripe.unchanged_since(seen) else {
            return false;
        };
        let held_below = self.inner.policy.writes_below(placement);
        if placement.in_memory() {
            let class = self.inner.class_names.index(&meta.class);
            let slot = Self::slot(
                value.cloned(),
                &meta,
                class,
                placement,
                held_below,
                crate::stripes::copy_seq(seen),
            );
            self.inner.hot.engine.insert_with_expiry(
                key.clone(),
                slot,
                self.inner.protect.hot_expiry(meta.expires_at_ms),
            );
        } else {
            self.inner.hot.engine.remove(key);
        }
        let entry = Entry::new(vb, meta);
        self.inner
            .policy
            .insert_below(
                &self.inner.tiers,
                placement,
                kb,
                &entry,
                skip.tiers,
                &self.inner.clock,
            )
            .await;
        drop(lock);
        if value.is_none() {
            LoadCounts::add(&self.inner.protect.counts.negatives_stored);
        }
        self.demote_pending().await;
        true
    }

    /// Under write-back, waits until every write queued before the call
    /// reached the store or the dead-letter list, and reports what the
    /// flusher did meanwhile.
    #[cfg(feature = "policies")]
    pub(super) async fn flush_write_back(&self) -> Result<FlushReport> {
        let Some(wb) = self.inner.record.write_back() else {
            return Ok(FlushReport::default());
        };
        let before = wb.stats();
        wb.flush().await?;
        Ok(FlushReport::between(&before, &wb.stats()))
    }

    #[cfg(not(feature = "policies"))]
    pub(super) async fn flush_write_back(&self) -> Result<FlushReport> {
        Ok(FlushReport::default())
    }
}

#[cfg(feature = "policies")]
impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// How many keys have writes that have not reached the store yet
    /// (write-back); 0 under any other policy.
    pub fn dirty_len(&self) -> usize {
        self.inner
            .record
            .write_back()
            .map_or(0, |wb| wb.dirty_len())
    }

    /// Whether `key` has a write that has not reached the store yet
    /// (write-back). While it does, reads of it are answered from the
    /// cache, never from the store's older copy.
    pub fn is_dirty(&self, key: &K) -> bool {
        let Some(wb) = self.inner.record.write_back() else {
            return false;
        };
        self.encode_key(key).is_ok_and(|kb| wb.is_dirty(&kb))
    }

    /// The writes the store refused [`max_retries`](crate::CacheBuilder::max_retries)
    /// times (write-back): list, retry or discard them. Empty under any
    /// other policy.
    pub fn dead_letters(&self) -> cache_policies::DeadLetters<'_, K, V, C> {
        cache_policies::DeadLetters::new(self.inner.record.write_back())
    }

    /// Write-back's state and running totals; `None` under any other
    /// policy.
    pub fn write_back_stats(&self) -> Option<cache_policies::WriteBackStats> {
        self.inner.record.write_back().map(|wb| wb.stats())
    }
}
