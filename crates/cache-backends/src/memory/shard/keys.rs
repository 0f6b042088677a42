//! Listing a partition's keys (or entries) in slab order, for
//! [`MemoryCache::keys_page`](crate::memory::MemoryCache::keys_page) and
//! [`MemoryCache::entries_page`](crate::memory::MemoryCache::entries_page).
//!
//! A node keeps its slot from insertion until it leaves (an update
//! replaces the value in place, and nothing compacts the slab), so slot
//! order is a stable order to resume a listing in: every entry live for
//! the whole listing stays at a slot the listing reaches exactly once.

use super::{Shard, ShardHash};
use crate::memory::expiry::ExpiryRule;

impl<K: Eq + Clone, V: Clone, S: ShardHash<K>> Shard<K, V, S> {
    /// Appends to `out` the keys of live entries from slot `from` on, until
    /// `out` holds `limit` keys; returns the slot to resume at, or `None`
    /// when the slab has been read to its end. Expired entries are skipped
    /// (not removed: this runs under the shared lock).
    pub(crate) fn keys_from(
        &self,
        from: usize,
        limit: usize,
        rule: ExpiryRule,
        now: u64,
        out: &mut Vec<K>,
    ) -> Option<usize> {
        self.live_from(from, limit, rule, now, out, |_, node| node.key.clone())
    }

    /// Appends to `out` the live entries from slot `from` on, each with
    /// its access count (the sketch's estimate on arrival plus its hits
    /// since, aged), until `out` holds `limit`; returns the slot to resume
    /// at, as [`keys_from`](Self::keys_from) does.
    pub(crate) fn entries_from(
        &self,
        from: usize,
        limit: usize,
        rule: ExpiryRule,
        now: u64,
        out: &mut Vec<(K, V, u8)>,
    ) -> Option<usize> {
        self.live_from(from, limit, rule, now, out, |slot, node| {
            // Hits the policy has not folded in yet count too.
            let pending = node.pending.load(std::sync::atomic::Ordering::Relaxed);
            let count = self.freq_of(slot).saturating_add(pending).min(15);
            (node.key.clone(), node.value.clone(), count)
        })
    }

    /// The listing both forms share: `item` makes the entry at a slot into
    /// what `out` collects.
    fn live_from<T>(
        &self,
        from: usize,
        limit: usize,
        rule: ExpiryRule,
        now: u64,
        out: &mut Vec<T>,
        item: impl Fn(u32, &super::Node<K, V>) -> T,
    ) -> Option<usize> {
        for (slot, node) in self.nodes.iter().enumerate().skip(from) {
            if out.len() >= limit {
                return Some(slot);
            }
            if let Some(node) = node {
                // A slot index always fits in u32: the slab refuses to
                // grow past it.
                let Ok(i) = u32::try_from(slot) else {
                    continue;
                };
                if !self.is_expired(i, rule, now) {
                    out.push(item(i, node));
                }
            }
        }
        None
    }
}
