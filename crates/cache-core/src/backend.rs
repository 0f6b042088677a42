//! The byte-level tier contract.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{Entry, Lookup};
use crate::error::Result;
use crate::removals::Removals;

/// A tier (or a layer wrapping a tier) that stores bytes with [`Meta`](crate::Meta).
///
/// Every method takes `&self`: implementations are internally synchronised
/// and shared across tasks. Futures are `Send` so callers can spawn them.
///
/// Contract, checked by the conformance suite (feature `test-utils`):
/// - `get` never returns an expired entry (its `Meta::expires_at_ms` is at or
///   before the tier's clock);
/// - `insert` replaces any earlier value for the key, and an insert rejected
///   for its size leaves the earlier value in place;
/// - `remove` reports whether a live entry was removed;
/// - a miss is `Ok(Lookup::Miss)`, never an error.
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics, such as `"memory"` or `"redb"`.
    fn name(&self) -> &str;

    /// Looks up a key.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Lookup>> + Send;

    /// Stores an entry, replacing any earlier one for the key.
    fn insert(&self, key: Bytes, entry: Entry) -> impl Future<Output = Result<()>> + Send;

    /// Removes a key; `true` if a live entry was removed.
    fn remove(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send;

    /// Removes `key` only if the tier still holds exactly the value bytes
    /// `seen` for it (as this tier's [`get`](Self::get) returned them), so
    /// that deleting a record found to be corrupted can never delete a
    /// valid value written concurrently. `true` if it removed the record.
    ///
    /// A tier that cannot compare and delete atomically keeps the default,
    /// which removes nothing and answers `false`: a damaged record left in
    /// place is a miss on every read until it is overwritten or expires,
    /// which is better than losing a concurrent write.
    fn remove_if_unchanged(
        &self,
        key: &[u8],
        seen: &[u8],
    ) -> impl Future<Output = Result<bool>> + Send {
        let _ = (key, seen);
        async { Ok(false) }
    }

    /// Whether the key has a live (unexpired, non-negative) entry.
    fn contains(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.get(key).await?.is_hit()) }
    }

    /// Removes every entry this tier holds for this cache.
    fn clear(&self) -> impl Future<Output = Result<()>> + Send;

    /// The number of entries held. Tiers that expire lazily may count
    /// expired entries not yet swept; the conformance suite checks the count
    /// before anything expires.
    fn len(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Whether [`len`](Self::len) is zero.
    fn is_empty(&self) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.len().await? == 0) }
    }

    /// Looks up several keys; the answers are in the order of `keys`.
    fn get_many(&self, keys: &[Bytes]) -> impl Future<Output = Result<Vec<Lookup>>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(self.get(key).await?);
            }
            Ok(out)
        }
    }

    /// Stores several entries. An error may leave some of them stored.
    fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (key, entry) in entries {
                self.insert(key, entry).await?;
            }
            Ok(())
        }
    }

    /// What the tier evicted and expired on its own since it was opened,
    /// per data class where it knows; `None` for a tier that cannot tell
    /// (the default). A layer passes on its inner tier's answer.
    fn removals(&self) -> Option<Removals> {
        None
    }
}

/// A shared backend is a backend, so a tier can be held by a test or a
/// layer and by the cache at once.
impl<B: Backend> Backend for Arc<B> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Lookup>> + Send {
        (**self).get(key)
    }
    fn insert(&self, key: Bytes, entry: Entry) -> impl Future<Output = Result<()>> + Send {
        (**self).insert(key, entry)
    }
    fn remove(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send {
        (**self).remove(key)
    }
    fn remove_if_unchanged(
        &self,
        key: &[u8],
        seen: &[u8],
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).remove_if_unchanged(key, seen)
    }
    fn contains(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send {
        (**self).contains(key)
    }
    fn clear(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).clear()
    }
    fn len(&self) -> impl Future<Output = Result<u64>> + Send {
        (**self).len()
    }
    fn get_many(&self, keys: &[Bytes]) -> impl Future<Output = Result<Vec<Lookup>>> + Send {
        (**self).get_many(keys)
    }
    fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> impl Future<Output = Result<()>> + Send {
        (**self).insert_many(entries)
    }
    fn removals(&self) -> Option<Removals> {
        (**self).removals()
    }
}
