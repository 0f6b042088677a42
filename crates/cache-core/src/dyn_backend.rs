//! The object-safe twin of [`Backend`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::entry::{Entry, Lookup};
use crate::error::Result;
use crate::keys::{KeyCursor, KeyPage};
use crate::removals::Removals;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Backend`] with boxed futures, so a stack chosen at runtime can be held
/// as `Arc<dyn DynBackend>`. Every `Backend` is a `DynBackend` through a
/// blanket impl, and `Arc<dyn DynBackend>` is a `Backend` again, so layers
/// wrap either kind. Boxing happens only at this boundary.
///
/// The method names differ from `Backend`'s so that both traits can be in
/// scope without ambiguity.
pub trait DynBackend: Send + Sync + 'static {
    /// See [`Backend::name`].
    fn dyn_name(&self) -> &str;
    /// See [`Backend::get`].
    fn dyn_get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Lookup>>;
    /// See [`Backend::insert`].
    fn dyn_insert(&self, key: Bytes, entry: Entry) -> BoxFuture<'_, Result<()>>;
    /// See [`Backend::remove`].
    fn dyn_remove<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
    /// See [`Backend::remove_if_unchanged`].
    fn dyn_remove_if_unchanged<'a>(
        &'a self,
        key: &'a [u8],
        seen: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>>;
    /// See [`Backend::contains`].
    fn dyn_contains<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
    /// See [`Backend::clear`].
    fn dyn_clear(&self) -> BoxFuture<'_, Result<()>>;
    /// See [`Backend::len`].
    fn dyn_len(&self) -> BoxFuture<'_, Result<u64>>;
    /// See [`Backend::get_many`].
    fn dyn_get_many<'a>(&'a self, keys: &'a [Bytes]) -> BoxFuture<'a, Result<Vec<Lookup>>>;
    /// See [`Backend::insert_many`].
    fn dyn_insert_many(&self, entries: Vec<(Bytes, Entry)>) -> BoxFuture<'_, Result<()>>;
    /// See [`Backend::removals`].
    fn dyn_removals(&self) -> Option<Removals>;
    /// See [`Backend::keys`].
    fn dyn_keys<'a>(
        &'a self,
        from: &'a KeyCursor,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<KeyPage>>>;
}

impl<B: Backend> DynBackend for B {
    fn dyn_name(&self) -> &str {
        self.name()
    }
    fn dyn_get<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<Lookup>> {
        Box::pin(self.get(key))
    }
    fn dyn_insert(&self, key: Bytes, entry: Entry) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.insert(key, entry))
    }
    fn dyn_remove<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.remove(key))
    }
    fn dyn_remove_if_unchanged<'a>(
        &'a self,
        key: &'a [u8],
        seen: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.remove_if_unchanged(key, seen))
    }
    fn dyn_contains<'a>(&'a self, key: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.contains(key))
    }
    fn dyn_clear(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.clear())
    }
    fn dyn_len(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(self.len())
    }
    fn dyn_get_many<'a>(&'a self, keys: &'a [Bytes]) -> BoxFuture<'a, Result<Vec<Lookup>>> {
        Box::pin(self.get_many(keys))
    }
    fn dyn_insert_many(&self, entries: Vec<(Bytes, Entry)>) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.insert_many(entries))
    }
    fn dyn_removals(&self) -> Option<Removals> {
        self.removals()
    }
    fn dyn_keys<'a>(
        &'a self,
        from: &'a KeyCursor,
        limit: usize,
    ) -> BoxFuture<'a, Result<Option<KeyPage>>> {
        Box::pin(self.keys(from, limit))
    }
}

impl Backend for Arc<dyn DynBackend> {
    fn name(&self) -> &str {
        (**self).dyn_name()
    }
    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        (**self).dyn_get(key).await
    }
    fn insert(&self, key: Bytes, entry: Entry) -> impl Future<Output = Result<()>> + Send {
        (**self).dyn_insert(key, entry)
    }
    async fn remove(&self, key: &[u8]) -> Result<bool> {
        (**self).dyn_remove(key).await
    }
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        (**self).dyn_remove_if_unchanged(key, seen).await
    }
    async fn contains(&self, key: &[u8]) -> Result<bool> {
        (**self).dyn_contains(key).await
    }
    fn clear(&self) -> impl Future<Output = Result<()>> + Send {
        (**self).dyn_clear()
    }
    fn len(&self) -> impl Future<Output = Result<u64>> + Send {
        (**self).dyn_len()
    }
    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        (**self).dyn_get_many(keys).await
    }
    fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> impl Future<Output = Result<()>> + Send {
        (**self).dyn_insert_many(entries)
    }
    fn removals(&self) -> Option<Removals> {
        (**self).dyn_removals()
    }
    async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
        (**self).dyn_keys(from, limit).await
    }
}
