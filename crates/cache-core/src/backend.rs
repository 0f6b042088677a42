//! The byte-level tier contract.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{Entry, Lookup};
use crate::error::Result;
use crate::keys::{KeyCursor, KeyPage};
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
/// - a miss is `Ok(Lookup::Miss)`, never an error;
/// - a negative entry (see [`Flags::NEGATIVE`](crate::Flags::NEGATIVE)) is
///   stored as an ordinary [`Entry`] with that flag and an empty value
///   ([`Entry::negative`]), and `get` and `get_many` answer it with
///   `Lookup::Negative` and the metadata stored (expiry, creation time,
///   class and flags), never with a `Lookup::Hit` carrying the flag: a tier
///   builds its answers with [`Lookup::from_entry`]. Otherwise it is an
///   entry like any other: `contains` is `false` for it (it holds no
///   value), `remove` of a live one answers `true`, `len` counts it, an
///   `insert` of a value replaces it and an `insert` of a negative entry
///   replaces a value, and it expires at its own expiry.
pub trait Backend: Send + Sync + 'static {
    /// A short name for logs and metrics, such as `"memory"` or `"redb"`.
    fn name(&self) -> &str;

    /// Looks up a key.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Lookup>> + Send;

    /// Stores an entry, replacing any earlier one for the key.
    fn insert(&self, key: Bytes, entry: Entry) -> impl Future<Output = Result<()>> + Send;

    /// Removes a key; `true` if a live entry was removed, a negative one
    /// included.
    fn remove(&self, key: &[u8]) -> impl Future<Output = Result<bool>> + Send;

    /// Removes `key` only if the tier still holds exactly the value bytes
    /// `seen` for it (as this tier's [`get`](Self::get) returned them), so
    /// that deleting a record found to be corrupted can never delete a
    /// valid value written concurrently. `true` if it removed the record.
    /// A negative entry's stored value is empty, and is compared as such.
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

    /// Whether the key has a live (unexpired, non-negative) entry: a live
    /// negative entry answers `false`, as the default (a `get` that
    /// [`is_hit`](Lookup::is_hit)) does.
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

    /// Up to `limit` keys of this tier from `from` on (start with
    /// [`KeyCursor::start()`]), for warming and inspection.
    ///
    /// `Ok(None)`: this tier cannot list its keys (the default), like
    /// [`removals`](Self::removals). A layer passes on its inner tier's
    /// answer.
    ///
    /// Contract, checked by the conformance suite for every tier that
    /// answers `Some`:
    /// - a page never holds more than `max(limit, 1)` keys (a `limit` of
    ///   zero still makes progress); it may hold fewer, even none, before
    ///   the listing ends, so only [`KeyPage::next`] being `None` says
    ///   that it has;
    /// - following `next` from the start until it is `None` lists every
    ///   key that was live for the whole listing at least once, and never a
    ///   key that was absent for the whole listing. Keys written or
    ///   removed while the listing runs may or may not appear;
    /// - a key appears at most once per listing, unless the tier's own
    ///   documentation says when it may repeat one;
    /// - expired keys may be skipped (tiers that expire lazily may list an
    ///   expired key not yet reclaimed);
    /// - a negative entry ([`Flags::NEGATIVE`](crate::Flags::NEGATIVE)) is
    ///   a key like any other;
    /// - keys are the cache's keys as given to [`insert`](Self::insert),
    ///   with any prefix of the tier's own stripped, in an order of the
    ///   tier's choosing;
    /// - a cursor this tier did not make is an
    ///   [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error,
    ///   never a panic, and a failed call changes nothing: the same cursor
    ///   can be tried again.
    fn keys(
        &self,
        from: &KeyCursor,
        limit: usize,
    ) -> impl Future<Output = Result<Option<KeyPage>>> + Send {
        let _ = (from, limit);
        async { Ok(None) }
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
    fn keys(
        &self,
        from: &KeyCursor,
        limit: usize,
    ) -> impl Future<Output = Result<Option<KeyPage>>> + Send {
        (**self).keys(from, limit)
    }
}
