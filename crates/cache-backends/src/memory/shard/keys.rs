//! Listing a partition's keys in slab order, for
//! [`MemoryCache::keys_page`](crate::memory::MemoryCache::keys_page).
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
        for (slot, node) in self.nodes.iter().enumerate().skip(from) {
            if out.len() >= limit {
                return Some(slot);
            }
            if let Some(node) = node {
                // A slot index always fits in u32: the slab refuses to
                // grow past it.
                let expired = u32::try_from(slot).is_ok_and(|i| self.is_expired(i, rule, now));
                if !expired {
                    out.push(node.key.clone());
                }
            }
        }
        None
    }
}
