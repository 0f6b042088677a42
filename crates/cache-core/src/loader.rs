//! What loads a value on a miss.

use std::future::Future;
use std::sync::Arc;

use crate::error::Result;

/// What loads a value on a miss: reusable (a prefetcher or refresh-ahead
/// calls it many times), unlike a one-shot future.
///
/// `Ok(None)`: the system of record has no value for the key. An error is
/// the loader's own failure; single-flight loading
/// ([`SingleFlight::get_or_load`](crate::SingleFlight::get_or_load)) hands
/// it to the callers waiting on the key as
/// [`LoaderErrors`](crate::LoaderErrors) says.
///
/// Any `Fn(K) -> impl Future<Output = Result<Option<V>>>` closure is a
/// loader, and so is an `Arc` of one:
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use cache_core::{Loader, Result};
///
/// let rows = Arc::new(|id: u64| async move {
///     Ok::<_, cache_core::Error>((id < 10).then(|| format!("row {id}")))
/// });
/// assert_eq!(rows.load(&3).await?, Some("row 3".to_string()));
/// assert_eq!(rows.load(&30).await?, None);
/// # Ok::<(), cache_core::Error>(())
/// # }).unwrap();
/// ```
pub trait Loader<K, V>: Send + Sync {
    /// Loads the value of `key` from the system of record.
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>>> + Send;
}

/// Any `Fn(K) -> impl Future<Output = Result<Option<V>>>` closure is a
/// loader (the key is cloned for it, so the future it returns borrows
/// nothing).
impl<K, V, F, Fut> Loader<K, V> for F
where
    K: Clone + Send + Sync,
    F: Fn(K) -> Fut + Send + Sync + ?Sized,
    Fut: Future<Output = Result<Option<V>>> + Send,
{
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>>> + Send {
        self(key.clone())
    }
}

/// A shared loader loads as the loader it shares, so one loader can serve
/// a cache, its prefetcher and its refresh-ahead at once.
impl<K, V, L> Loader<K, V> for Arc<L>
where
    L: Loader<K, V> + ?Sized,
{
    fn load(&self, key: &K) -> impl Future<Output = Result<Option<V>>> + Send {
        (**self).load(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorKind};

    /// A loader written as a type, not a closure.
    struct Doubling;

    impl Loader<u32, u64> for Doubling {
        async fn load(&self, key: &u32) -> Result<Option<u64>> {
            match *key {
                0 => Err(Error::new(ErrorKind::Loader, "no zero")),
                k => Ok(Some(u64::from(k) * 2)),
            }
        }
    }

    async fn load_through<L: Loader<u32, u64>>(loader: &L, key: u32) -> Result<Option<u64>> {
        loader.load(&key).await
    }

    #[tokio::test]
    async fn closures_types_and_shared_loaders_all_load() {
        let closure = |k: u32| async move { Ok((k > 1).then_some(u64::from(k))) };
        assert_eq!(load_through(&closure, 5).await.unwrap(), Some(5));
        assert_eq!(load_through(&closure, 1).await.unwrap(), None);
        assert_eq!(load_through(&Doubling, 4).await.unwrap(), Some(8));
        let shared = Arc::new(Doubling);
        assert_eq!(load_through(&shared, 4).await.unwrap(), Some(8));
        assert_eq!(
            load_through(&shared, 0).await.unwrap_err().kind(),
            ErrorKind::Loader
        );
        let shared_closure = Arc::new(closure);
        assert_eq!(load_through(&shared_closure, 7).await.unwrap(), Some(7));
    }

    #[test]
    fn a_loaders_future_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let closure = |k: String| async move { Ok(Some(k.len())) };
        let key = "four".to_string();
        assert_send(&closure.load(&key));
        let shared: Arc<dyn Fn(u8) -> std::future::Ready<Result<Option<u8>>> + Send + Sync> =
            Arc::new(|k| std::future::ready(Ok(Some(k))));
        assert_send(&shared.load(&1));
    }
}
