//! Write-on-evict: writing what the hot tier let go of into the warm tier,
//! and [`Cache::flush`].

use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};

use cache_core::{Codec, Entry, Meta, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, DEMOTIONS};

/// How many waiting entries one call writes before it returns.
const DEMOTIONS_PER_CALL: usize = 64;

/// The claim of the caller that empties the demotion queue; released when
/// dropped, so a caller cancelled half way leaves the work to the next.
struct Demoting<'a>(&'a AtomicBool);

impl<'a> Demoting<'a> {
    fn claim(flag: &'a AtomicBool) -> Option<Self> {
        (!flag.swap(true, Ordering::AcqRel)).then_some(Demoting(flag))
    }
}

impl Drop for Demoting<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Writes entries waiting for the warm tier into it, after a call that
    /// may have made the hot tier evict. One caller at a time does it,
    /// unless the queue is past half full: then every caller helps, which
    /// slows inserts down to what the warm tier takes rather than letting
    /// evicted entries be dropped.
    pub(super) async fn demote_pending(&self) {
        let Some(pending) = &self.inner.pending else {
            return;
        };
        if self.inner.tiers.is_empty() || pending.len() == 0 {
            return;
        }
        let claim = Demoting::claim(&self.inner.demoting);
        if claim.is_none() && !pending.is_crowded() {
            return;
        }
        for key in pending.keys(DEMOTIONS_PER_CALL) {
            self.demote(&key).await;
        }
        drop(claim);
    }

    /// Writes every entry waiting for the warm tier into it now
    /// (write-on-evict). Entries wait there only briefly, and lookups find
    /// them while they wait, but they live in memory: call this before a
    /// clean shutdown so that what the hot tier evicted reaches the disk.
    /// Without write-on-evict there is nothing to flush.
    pub async fn flush(&self) -> Result<()> {
        let Some(pending) = &self.inner.pending else {
            return Ok(());
        };
        if self.inner.tiers.is_empty() {
            return Ok(());
        }
        // Bounded: entries evicted while it runs by other callers' inserts
        // are theirs to write.
        let mut budget = pending.len();
        while budget > 0 {
            let keys = pending.keys(budget.min(DEMOTIONS_PER_CALL));
            if keys.is_empty() {
                break;
            }
            budget = budget.saturating_sub(keys.len());
            for key in keys {
                self.demote(&key).await;
            }
        }
        Ok(())
    }

    /// Writes the entry waiting for `key` into the warm tier, under the
    /// key's stripe lock: a write or removal of the key that came first has
    /// taken it out of the queue, and one that comes later waits for this
    /// write and then replaces or removes it.
    async fn demote(&self, key: &K) {
        let (Some(pending), Some(warm)) = (&self.inner.pending, self.inner.tiers.first()) else {
            return;
        };
        let Ok(kb) = self.encode_key(key) else {
            // It encoded when it was inserted; one that no longer does is
            // given up.
            if let Some(slot) = pending.get(key) {
                pending.failed(key, slot.seq);
            }
            return;
        };
        let write = self.inner.stripes.of(&kb).write().await;
        let Some(slot) = pending.get(key) else {
            return;
        };
        let now = self.inner.clock.now_ms();
        if slot.expires_at_ms.is_some_and(|at| at <= now) {
            pending.demoted(key, slot.seq);
            return;
        }
        let Ok(vb) = self.inner.codec.encode(&slot.value) else {
            pending.failed(key, slot.seq);
            return;
        };
        let mut meta = Meta::new(slot.created_at_ms).expires_at(slot.expires_at_ms);
        meta.class = self.inner.class_names.class(slot.class);
        let meta = warm.stamp(meta);
        match warm
            .backend
            .dyn_insert(kb.clone(), Entry::new(vb, meta.clone()))
            .await
        {
            Ok(()) if warm.distrusts(&meta) => {
                // Another key's failure moved the tier's distrust point
                // past this record while it was written: reads would not
                // see it, so it stays waiting for the next pass.
            }
            Ok(()) => {
                warm.mark_current(&kb);
                // Taken out only now: a demotion cancelled before this
                // point leaves the entry waiting, and lookups still see it.
                pending.demoted(key, slot.seq);
                self.inner.counters.add(DEMOTIONS, 1);
            }
            Err(e) => {
                // The warm tier held nothing for the key (the insert removed
                // it below), so a failed write leaves nothing stale.
                warm.count_error(e.kind());
                pending.failed(key, slot.seq);
            }
        }
        drop(write);
    }
}
