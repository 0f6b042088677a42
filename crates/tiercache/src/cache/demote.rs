//! Write-on-evict, in one place: the queue of entries the hot tier let go
//! of, the hot tier's removal listener that fills it, the demotion that
//! writes them into the warm tier, and [`Cache::flush`] (which flushes
//! write-back too).
//!
//! The order that keeps demotions from landing over newer writes:
//! the listener runs inside the hot tier's partition lock, so an evicted
//! entry is queued before any later change of its key can look for it; a
//! lookup that misses the hot tier looks in the queue before the tiers
//! below; a write or removal of the key takes an older entry out of the
//! queue under the key's stripe lock; and a demotion writes under that
//! lock too, removing the entry from the queue only once the warm tier
//! holds it.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cache_backends::memory::RemovalCause;
use cache_core::{Clock, Codec, Entry, Result};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, DEMOTIONS};
use crate::hot::Slot;
use crate::observe::Observer;
use crate::report::FlushReport;

/// The most evicted entries that wait for the warm tier at once; calls that
/// evict write them right away, so the queue stays short unless the warm
/// tier is much slower than the inserts.
pub(crate) const MAX_WAITING_DEMOTIONS: usize = 10_000;

/// Entries the hot tier let go of that the warm tier does not hold yet
/// (write-on-evict), by key, until a demotion writes them there.
///
/// While an entry waits here it is still the key's value: a lookup that
/// misses the hot tier looks here before it looks below, so an entry is
/// never out of sight between leaving memory and reaching the warm tier.
/// A write or removal of the key takes it out (under the key's stripe
/// lock), so an older value can never be demoted over a newer one, and a
/// demotion removes it only after the warm tier took it, so a demotion
/// cancelled half way loses nothing.
pub(crate) struct DemotionQueue<K, V> {
    waiting: Mutex<HashMap<K, Slot<V>>>,
    /// The most entries waiting at once; beyond it an evicted entry is
    /// dropped (and counted) rather than let memory grow.
    bound: usize,
    dropped: AtomicU64,
    /// A caller is writing the waiting entries into the warm tier; the
    /// others leave it to them unless the queue is crowded.
    demoting: AtomicBool,
}

impl<K: Hash + Eq + Clone, V: Clone> DemotionQueue<K, V> {
    pub(crate) fn new(bound: usize) -> Self {
        DemotionQueue {
            waiting: Mutex::new(HashMap::new()),
            bound,
            dropped: AtomicU64::new(0),
            demoting: AtomicBool::new(false),
        }
    }

    /// Queues what the hot tier let go of. The hot tier's listener runs
    /// under its partition's lock, so this happens before any later change
    /// of the key; a newer write's entry is never replaced by an older one.
    fn push(&self, key: K, slot: Slot<V>) {
        let mut waiting = self.waiting.lock();
        let len = waiting.len();
        match waiting.entry(key) {
            MapEntry::Occupied(mut e) => {
                if e.get().seq <= slot.seq {
                    e.insert(slot);
                }
            }
            MapEntry::Vacant(e) if len < self.bound => {
                e.insert(slot);
            }
            MapEntry::Vacant(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The entry waiting for `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<Slot<V>> {
        self.waiting.lock().get(key).cloned()
    }

    /// Takes out the entry waiting for `key` if it was written before
    /// `seq` (a newer write or a removal of the key replaces it).
    pub(crate) fn purge(&self, key: &K, seq: u64) {
        let mut waiting = self.waiting.lock();
        if waiting.get(key).is_some_and(|slot| slot.seq < seq) {
            waiting.remove(key);
        }
    }

    /// Takes out the entry for `key` once the warm tier holds it, unless a
    /// newer one replaced it meanwhile.
    pub(crate) fn demoted(&self, key: &K, seq: u64) {
        let mut waiting = self.waiting.lock();
        if waiting.get(key).is_some_and(|slot| slot.seq == seq) {
            waiting.remove(key);
        }
    }

    /// Counts an entry the warm tier refused: it is given up, like an
    /// eviction without a tier below.
    pub(crate) fn failed(&self, key: &K, seq: u64) {
        self.demoted(key, seq);
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Up to `n` keys waiting, for a demotion pass.
    pub(crate) fn keys(&self, n: usize) -> Vec<K> {
        self.waiting.lock().keys().take(n).cloned().collect()
    }

    /// How many entries wait.
    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Whether the queue is past half full, so callers should help empty it.
    pub(crate) fn is_crowded(&self) -> bool {
        self.len() > self.bound / 2
    }

    /// Forgets everything waiting (the cache is being cleared).
    pub(crate) fn clear(&self) {
        self.waiting.lock().clear();
    }

    /// Evicted entries dropped because too many were waiting, or because
    /// the warm tier refused them.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The listener that queues what the hot tier lets go of for the warm tier
/// (write-on-evict): entries evicted for room, and entries that idled out
/// (their time-to-idle passed while their time-to-live has not), that may
/// live below memory and that the warm tier does not already hold.
/// Entries expired, removed or replaced are not demoted.
fn demote_on_evict<K, V>(
    queue: Arc<DemotionQueue<K, V>>,
    clock: Clock,
) -> impl Fn(K, Slot<V>, RemovalCause) + Send + Sync + 'static
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    move |key, slot, cause| {
        if slot.held_below || !slot.placement.below_memory() {
            return;
        }
        let demote = match cause {
            RemovalCause::Size => true,
            RemovalCause::Expired => slot.expires_at_ms.is_none_or(|at| at > clock.now_ms()),
            _ => false,
        };
        if demote {
            queue.push(key, slot);
        }
    }
}

/// The hot tier's removal listener: it tells the observer the class of
/// what the hot tier evicted or expired, and, with write-on-evict, queues
/// what must be demoted. `None` when there is nothing to tell.
pub(crate) fn hot_listener<K, V>(
    queue: Option<Arc<DemotionQueue<K, V>>>,
    observer: Observer<K>,
    clock: Clock,
) -> Option<impl Fn(K, Slot<V>, RemovalCause) + Send + Sync + 'static>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if queue.is_none() && !observer.is_on() {
        return None;
    }
    let demote = queue.map(|q| demote_on_evict(q, clock));
    Some(move |key: K, slot: Slot<V>, cause| {
        observer.on_evict(slot.class, cause);
        if let Some(demote) = &demote {
            demote(key, slot, cause);
        }
    })
}

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
        let Some(queue) = self.inner.policy.queue() else {
            return;
        };
        if self.inner.tiers.is_empty() || queue.len() == 0 {
            return;
        }
        let claim = Demoting::claim(&queue.demoting);
        if claim.is_none() && !queue.is_crowded() {
            return;
        }
        for key in queue.keys(DEMOTIONS_PER_CALL) {
            self.demote(&key).await;
        }
        drop(claim);
    }

    /// Changes how many entries the hot tier holds, at run time (a size
    /// tuner's knob); see [`HotTier::set_capacity`](crate::HotTier::set_capacity).
    /// With write-on-evict a shrink goes in steps the demotion queue can
    /// hold, each followed by a [`flush`](Self::flush), so that everything
    /// it evicts reaches the warm tier. A capacity the hot tier would
    /// refuse is an error and changes nothing.
    pub async fn set_capacity(&self, max_capacity: u64) -> Result<()> {
        let hot = &self.inner.hot;
        hot.engine.check_capacity(max_capacity)?;
        if self.inner.policy.queue().is_none() || self.inner.tiers.is_empty() {
            return hot.set_capacity(max_capacity);
        }
        let step = (MAX_WAITING_DEMOTIONS / 2) as u64;
        loop {
            let held = hot.entry_count().min(hot.max_capacity());
            let next = max_capacity.max(held.saturating_sub(step));
            hot.set_capacity(next)?;
            self.flush().await?;
            if next == max_capacity {
                return Ok(());
            }
        }
    }

    /// Carries what waits in memory to where it belongs, and waits for
    /// it: under write-back, every write queued before the call to the
    /// store (or the dead-letter list; see
    /// [`WriteBackSettings`](crate::policies::WriteBackSettings) for the
    /// retries), and with write-on-evict, every entry the hot tier evicted
    /// to the warm tier. Call it before a clean shutdown. Without either
    /// there is nothing to flush and it returns at once.
    pub async fn flush(&self) -> Result<FlushReport> {
        let started = std::time::Instant::now();
        let demoted = self.flush_demotions().await;
        let mut report = self.flush_write_back().await?;
        report.demoted = demoted;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Writes every entry waiting for the warm tier into it now
    /// (write-on-evict), and counts them. Entries wait there only briefly,
    /// and lookups find them while they wait, but they live in memory.
    async fn flush_demotions(&self) -> u64 {
        let Some(queue) = self.inner.policy.queue() else {
            return 0;
        };
        if self.inner.tiers.is_empty() {
            return 0;
        }
        let before = self.inner.counters.get(DEMOTIONS);
        // Bounded: entries evicted while it runs by other callers' inserts
        // are theirs to write.
        let mut budget = queue.len();
        while budget > 0 {
            let keys = queue.keys(budget.min(DEMOTIONS_PER_CALL));
            if keys.is_empty() {
                break;
            }
            budget = budget.saturating_sub(keys.len());
            for key in keys {
                self.demote(&key).await;
            }
        }
        self.inner.counters.get(DEMOTIONS).saturating_sub(before)
    }

    /// Writes the entry waiting for `key` into the warm tier, under the
    /// key's stripe lock: a write or removal of the key that came first has
    /// taken it out of the queue, and one that comes later waits for this
    /// write and then replaces or removes it.
    async fn demote(&self, key: &K) {
        let (Some(queue), Some(warm)) = (self.inner.policy.queue(), self.inner.tiers.warm()) else {
            return;
        };
        let Ok(kb) = self.encode_key(key) else {
            // It encoded when it was inserted; one that no longer does is
            // given up.
            if let Some(slot) = queue.get(key) {
                queue.failed(key, slot.seq);
            }
            return;
        };
        let write = self.inner.stripes.of(&kb).write().await;
        let Some(slot) = queue.get(key) else {
            return;
        };
        let now = self.inner.clock.now_ms();
        if slot.expires_at_ms.is_some_and(|at| at <= now) {
            queue.demoted(key, slot.seq);
            return;
        }
        // A negative entry is demoted as one, with an empty value.
        let vb = match &slot.value {
            Some(value) => match self.inner.codec.encode(value) {
                Ok(vb) => vb,
                Err(_) => {
                    queue.failed(key, slot.seq);
                    return;
                }
            },
            None => Vec::new(),
        };
        let meta = warm.stamp(slot.meta(&self.inner.class_names));
        match warm
            .backend()
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
                queue.demoted(key, slot.seq);
                self.inner.counters.add(DEMOTIONS, 1);
            }
            Err(e) => {
                // The warm tier held nothing for the key (the insert removed
                // it below), so a failed write leaves nothing stale.
                warm.count_error(e.kind());
                queue.failed(key, slot.seq);
            }
        }
        drop(write);
    }
}

#[cfg(test)]
mod tests {
    use cache_core::Placement;

    use super::*;
    use crate::stripes::{Stripes, copy_seq};

    fn slot(value: &str, seq: u64) -> Slot<String> {
        Slot {
            value: Some(value.to_string()),
            expires_at_ms: None,
            created_at_ms: 0,
            class: 0,
            placement: Placement::Everywhere,
            held_below: false,
            seq,
            tracked: false,
            failed: false,
        }
    }

    /// A copy of a value made while no write ended (a load installed, a
    /// promotion) and evicted into the queue is older than the next write
    /// of the key, which takes the stripe's lock at that same version: the
    /// write purges it. (With copies stamped with the bare version they
    /// tied with the write: the copy stayed queued, and a demotion of it
    /// could take the write's own entry out of the queue as "demoted".)
    #[tokio::test]
    async fn the_next_write_replaces_a_copy_made_at_its_version() {
        let stripes = Stripes::new();
        let stripe = stripes.of(b"k");
        let queue: DemotionQueue<&str, String> = DemotionQueue::new(10);
        let seen = stripe.version();
        queue.push("k", slot("loaded", copy_seq(seen)));
        let write = stripe.write().await;
        assert_eq!(write.version(), seen, "no write ended in between");
        queue.purge(&"k", write.seq());
        assert!(queue.get(&"k").is_none(), "the write purges the older copy");
        // And the write's own entry, once evicted, is not taken for the
        // copy: a demotion of the copy finishing late leaves it queued.
        queue.push("k", slot("written", write.seq()));
        queue.demoted(&"k", copy_seq(seen));
        assert_eq!(queue.get(&"k").unwrap().value.as_deref(), Some("written"));
        let written = write.seq();
        drop(write);
        // A copy made after the write ended is newer than it.
        assert!(copy_seq(stripe.version()) > written);
    }
}
