//! The system of record behind a cache: the [`Store`] trait and its
//! object-safe twin.

use std::future::Future;
use std::sync::Arc;

use cache_core::{BoxFuture, Result};

/// The system of record a cache sits in front of: a database table, a
/// service, files. The cache's write policy decides when it is written
/// (see [`WritePolicy`](crate::WritePolicy)); a miss in every tier reads
/// it (read-through).
///
/// Writes reach a store at least once: after a crash, or after a batch
/// that failed part way, a write may be saved again with the same value.
/// `save` and `delete` must therefore be idempotent, which they are for
/// any store where the last write of a key wins. For one key they arrive
/// in the order the cache acknowledged them.
///
/// An error is the store's own; the cache returns it unchanged where a
/// caller waits for the store (write-through, write-around, read-through)
/// and retries it where nobody does (write-back).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use cache_policies::Store;
///
/// #[derive(Default)]
/// struct Rows(Mutex<HashMap<u64, String>>);
///
/// impl Store<u64, String> for Rows {
///     async fn load(&self, key: &u64) -> cache_core::Result<Option<String>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn save(&self, key: &u64, value: &String) -> cache_core::Result<()> {
///         self.0.lock().unwrap().insert(*key, value.clone());
///         Ok(())
///     }
///     async fn delete(&self, key: &u64) -> cache_core::Result<()> {
///         self.0.lock().unwrap().remove(key);
///         Ok(())
///     }
/// }
///
/// let rows = Rows::default();
/// rows.save_many(&[(1, "one".to_string()), (2, "two".to_string())]).await?;
/// assert_eq!(rows.load(&2).await?.as_deref(), Some("two"));
/// # Ok::<(), cache_core::Error>(())
/// # }).unwrap();
/// ```
pub trait Store<K: Send + Sync, V: Send + Sync>: Send + Sync + 'static {
    /// The value of `key`, or `None` when the store has none.
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>>> + Send;

    /// Saves `value` as the value of `key`, replacing any earlier one.
    fn save(&self, key: &K, value: &V) -> impl Future<Output = Result<()>> + Send;

    /// Deletes `key`; deleting a key the store does not hold succeeds.
    fn delete(&self, key: &K) -> impl Future<Output = Result<()>> + Send;

    /// Saves several entries, each key once. The default saves them one
    /// after another and stops at the first error; a store with a batch
    /// call (a multi-row upsert, a pipeline) should override it, since
    /// write-back flushes in batches. An error means the whole batch is
    /// retried, so entries saved before it are saved again.
    fn save_many(&self, entries: &[(K, V)]) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (key, value) in entries {
                self.save(key, value).await?;
            }
            Ok(())
        }
    }

    /// Deletes several keys, each once; the batch form of
    /// [`delete`](Self::delete), with the same rules as
    /// [`save_many`](Self::save_many).
    fn delete_many(&self, keys: &[K]) -> impl Future<Output = Result<()>> + Send {
        async move {
            for key in keys {
                self.delete(key).await?;
            }
            Ok(())
        }
    }
}

/// [`Store`] with boxed futures, so that a cache holds any store as
/// `Arc<dyn DynStore<K, V>>`. Every `Store` is one through a blanket impl.
pub trait DynStore<K, V>: Send + Sync + 'static {
    /// See [`Store::load`].
    fn dyn_load<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<Option<V>>>;
    /// See [`Store::save`].
    fn dyn_save<'a>(&'a self, key: &'a K, value: &'a V) -> BoxFuture<'a, Result<()>>;
    /// See [`Store::delete`].
    fn dyn_delete<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<()>>;
    /// See [`Store::save_many`].
    fn dyn_save_many<'a>(&'a self, entries: &'a [(K, V)]) -> BoxFuture<'a, Result<()>>;
    /// See [`Store::delete_many`].
    fn dyn_delete_many<'a>(&'a self, keys: &'a [K]) -> BoxFuture<'a, Result<()>>;
}

impl<K, V, S> DynStore<K, V> for S
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
    S: Store<K, V>,
{
    fn dyn_load<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<Option<V>>> {
        Box::pin(self.load(key))
    }
    fn dyn_save<'a>(&'a self, key: &'a K, value: &'a V) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save(key, value))
    }
    fn dyn_delete<'a>(&'a self, key: &'a K) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.delete(key))
    }
    fn dyn_save_many<'a>(&'a self, entries: &'a [(K, V)]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.save_many(entries))
    }
    fn dyn_delete_many<'a>(&'a self, keys: &'a [K]) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.delete_many(keys))
    }
}

/// A shared store is a store, so the application can keep a handle on the
/// one its cache writes to.
impl<K, V, S> Store<K, V> for Arc<S>
where
    K: Send + Sync,
    V: Send + Sync,
    S: Store<K, V> + ?Sized,
{
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>>> + Send {
        (**self).load(key)
    }
    fn save(&self, key: &K, value: &V) -> impl Future<Output = Result<()>> + Send {
        (**self).save(key, value)
    }
    fn delete(&self, key: &K) -> impl Future<Output = Result<()>> + Send {
        (**self).delete(key)
    }
    fn save_many(&self, entries: &[(K, V)]) -> impl Future<Output = Result<()>> + Send {
        (**self).save_many(entries)
    }
    fn delete_many(&self, keys: &[K]) -> impl Future<Output = Result<()>> + Send {
        (**self).delete_many(keys)
    }
}
