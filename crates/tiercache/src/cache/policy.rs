//! The write-policy seam: how a write of the typed cache reaches the tiers
//! below memory. The write path (`write.rs`) asks the policy what to do
//! below memory and hands the result to [`Tiers::apply`], which reports
//! what each tier made of it; the stale-key tracking of each tier rests on
//! that report. The system of record behind the cache (a store, and
//! when it is written) is the other seam, `crate::record`: the write path
//! asks it first.

use std::hash::Hash;
use std::sync::Arc;

use bytes::Bytes;
use cache_core::{Clock, Entry, Placement};

use super::demote::DemotionQueue;
use crate::tiers::{Change, TierReport, Tiers};

/// How writes reach the tiers below memory (the store's write policy is
/// `crate::record`'s).
pub(crate) enum TierPolicy<K, V> {
    /// Every write reaches every tier its placement allows before it
    /// returns.
    Through,
    /// Writes stay in memory and the tiers below lose the key; what the
    /// hot tier evicts waits in the queue and is demoted into the warm
    /// tier. Entries placed below memory only are still written through.
    OnEvict(Arc<DemotionQueue<K, V>>),
}

impl<K: Hash + Eq + Clone, V: Clone> TierPolicy<K, V> {
    /// The demotion queue, with write-on-evict.
    pub(crate) fn queue(&self) -> Option<&DemotionQueue<K, V>> {
        match self {
            TierPolicy::Through => None,
            TierPolicy::OnEvict(queue) => Some(queue),
        }
    }

    /// Whether an insert of `placement` writes its value below memory now,
    /// so that the hot tier's copy is already held there and evicting it
    /// writes nothing.
    pub(crate) fn writes_below(&self, placement: Placement) -> bool {
        match placement {
            Placement::MemoryOnly => false,
            Placement::BelowMemory => true,
            Placement::Everywhere => matches!(self, TierPolicy::Through),
        }
    }

    /// Carries an insert of `entry` (placed at `placement`) into the tiers
    /// below memory: the value itself, or the removal of the key where the
    /// value stays in memory for now, so that no tier keeps an older one.
    /// The tiers whose bit is set in `skip` (bypass rules) lose the key.
    pub(crate) async fn insert_below(
        &self,
        tiers: &Tiers,
        placement: Placement,
        kb: &Bytes,
        entry: &Entry,
        skip: u64,
        clock: &Clock,
    ) -> TierReport {
        let change = if self.writes_below(placement) {
            Change::Put(kb, entry)
        } else {
            Change::Remove(kb)
        };
        tiers.apply_skipping(Tiers::ALL, change, skip, clock).await
    }

    /// Carries a removal of the key into the tiers below memory.
    pub(crate) async fn remove_below(
        &self,
        tiers: &Tiers,
        kb: &Bytes,
        clock: &Clock,
    ) -> TierReport {
        tiers.apply(Tiers::ALL, Change::Remove(kb), clock).await
    }

    /// Carries a clear into the tiers below memory, and forgets the
    /// entries waiting for demotion.
    pub(crate) async fn clear_below(&self, tiers: &Tiers, clock: &Clock) -> TierReport {
        if let Some(queue) = self.queue() {
            queue.clear();
        }
        tiers.apply(Tiers::ALL, Change::Clear, clock).await
    }
}
