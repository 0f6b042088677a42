//! The store behind the cache, from the cache's side: read-through on a
//! miss everywhere, the latest write of a dirty key (write-back), and the
//! calls that inspect write-back (dirty keys, dead letters, flushing).
//! How each write reaches the store is in the write path (`write.rs`,
//! step 4) and `crate::record`.

use std::hash::Hash;

use bytes::Bytes;
use cache_core::{Codec, Entry, LoaderErrors, Lookup, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Cache;
use crate::options::InsertOptions;
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
    /// read-through per key however many callers miss at once.
    pub(super) async fn load_through(&self, key: &K) -> Result<Lookup<V>> {
        let loaded = self
            .inner
            .flights
            .get_or_load(
                key,
                LoaderErrors::Shared,
                // The leader looks again, the store included.
                || async move {
                    Ok(match self.lookup_uncounted(key).await? {
                        Lookup::Hit(v) => Some(v),
                        _ => None,
                    })
                },
                || async { Ok(None) },
                |_| async { Ok(()) },
            )
            .await?;
        Ok(loaded.map_or(Lookup::Miss, Lookup::Hit))
    }

    /// Loads `key` from the store after a miss in every tier, and caches
    /// what it found unless a write of the key came in meanwhile (the
    /// store's copy may then be older than it). A dirty key is answered
    /// from its latest write and never loaded: the store's copy is older.
    pub(super) async fn read_through(&self, key: &K, kb: &Bytes) -> Result<Lookup<V>> {
        let seen = self.inner.stripes.of(kb).version();
        if let Some(found) = self.dirty_lookup(kb) {
            return Ok(found);
        }
        let Some(value) = self.inner.record.load(key).await? else {
            return Ok(Lookup::Miss);
        };
        self.install_loaded(key, kb, &value, seen).await;
        Ok(Lookup::Hit(value))
    }

    /// Caches a value the store answered with, as an insert of the default
    /// class would place it, if no write of the key's stripe ended since
    /// version `seen` or is under way. A value that cannot be cached (its
    /// size, its encoding) is simply not cached.
    async fn install_loaded(&self, key: &K, kb: &Bytes, value: &V, seen: u64) {
        let Ok((meta, placement)) = self.new_meta(self.inner.clock.now_ms(), InsertOptions::new())
        else {
            return;
        };
        let Ok(vb) = self.inner.codec.encode(value) else {
            return;
        };
        if self.inner.limits.check_value(vb.len()).is_err() {
            return;
        }
        let stripe = self.inner.stripes.of(kb);
        let Some(lock) = stripe.unchanged_since(seen) else {
            return;
        };
        let held_below = self.inner.policy.writes_below(placement);
        if placement.in_memory() {
            let class = self.inner.class_names.index(&meta.class);
            let slot = Self::slot(
                Some(value.clone()),
                &meta,
                class,
                placement,
                held_below,
                seen,
            );
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, meta.expires_at_ms);
        }
        let entry = Entry::new(vb, meta);
        self.inner
            .policy
            .insert_below(&self.inner.tiers, placement, kb, &entry, &self.inner.clock)
            .await;
        drop(lock);
        self.demote_pending().await;
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
