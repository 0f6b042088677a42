//! Writes that restore entries from elsewhere (a snapshot, a load): stored
//! only if nothing newer stands, with the popularity they had.

use std::hash::Hash;

use super::MemoryCache;
use crate::memory::expiry::NEVER;

impl<K, V> MemoryCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Stores a value restored from elsewhere (a snapshot) only if `key`
    /// has no live entry, atomically with that check, so that a write made
    /// meanwhile is never replaced by the older restored value. It expires
    /// at `expires_at_ms` as [`insert_with_expiry`](Self::insert_with_expiry)
    /// says, and arrives as popular as `frequency` says (see
    /// [`remember_frequency`](Self::remember_frequency)). Returns whether
    /// it was stored (a value the cache turns away, as too heavy or already
    /// expired, counts as stored: nothing newer was there).
    pub fn insert_if_absent(
        &self,
        key: K,
        value: V,
        expires_at_ms: Option<u64>,
        frequency: u8,
    ) -> bool {
        self.insert_where(
            key,
            value,
            expires_at_ms.unwrap_or(NEVER),
            Some(frequency),
            None,
        )
    }

    /// Stores a value expiring at `expires_at_ms` (as
    /// [`insert_with_expiry`](Self::insert_with_expiry)) only if `still`
    /// answers `true`, asked under the lock of the key's partition, so no
    /// other write of the key lands between the question and the store.
    /// Returns whether it stored. The typed cache stores what a load found
    /// this way: only if no write of the key began since the load did.
    pub fn insert_if(
        &self,
        key: K,
        value: V,
        expires_at_ms: Option<u64>,
        still: impl Fn() -> bool,
    ) -> bool {
        self.insert_where(
            key,
            value,
            expires_at_ms.unwrap_or(NEVER),
            None,
            Some(&still),
        )
    }

    /// Tells the eviction policy that `key` was used about `count` times
    /// (capped at 15) recently, as [`entries_page`](Self::entries_page)
    /// reported it: an entry restored from a snapshot after this arrives as
    /// popular as it was, rather than as a stranger the policy may turn
    /// away for the first unknown key. It never lowers what the policy
    /// already knows.
    pub fn remember_frequency(&self, key: &K, count: u8) {
        if count == 0 {
            return;
        }
        let (hash, shard) = self.locate(key);
        shard.write().remember_frequency(hash, count);
    }
}
