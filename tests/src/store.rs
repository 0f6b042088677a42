//! A system of record for the write-policy tests: a map behind a lock,
//! with the faults a real store has (outages, failures of the next few
//! calls, latency) and a record of every change it applied, per key and
//! in order.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tiercache::{Error, ErrorKind, Result, Store};

/// How often each of a [`TestStore`]'s calls ran (failed calls included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCalls {
    /// `Store::load` calls.
    pub loads: u64,
    /// `Store::save` calls.
    pub saves: u64,
    /// `Store::delete` calls.
    pub deletes: u64,
    /// `Store::save_many` calls (one per batch).
    pub save_many: u64,
    /// `Store::delete_many` calls (one per batch).
    pub delete_many: u64,
    /// Calls that failed (by [`TestStore::set_failing`] or
    /// [`TestStore::fail_next`]).
    pub failed: u64,
}

/// A store shared by the cache and the test (clones share everything).
pub struct TestStore<K, V> {
    inner: Arc<Inner<K, V>>,
}

struct Inner<K, V> {
    data: Mutex<HashMap<K, V>>,
    history: Mutex<HashMap<K, Vec<Option<V>>>>,
    latency: Mutex<Duration>,
    failing: AtomicBool,
    fail_next: AtomicU64,
    calls: Mutex<StoreCalls>,
}

impl<K, V> Clone for TestStore<K, V> {
    fn clone(&self) -> Self {
        TestStore {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> Default for TestStore<K, V> {
    fn default() -> Self {
        TestStore {
            inner: Arc::new(Inner {
                data: Mutex::new(HashMap::new()),
                history: Mutex::new(HashMap::new()),
                latency: Mutex::new(Duration::ZERO),
                failing: AtomicBool::new(false),
                fail_next: AtomicU64::new(0),
                calls: Mutex::new(StoreCalls::default()),
            }),
        }
    }
}

impl<K, V> TestStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty store that answers at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call (a batch call included) takes `per_call` from now on.
    pub fn set_latency(&self, per_call: Duration) {
        *self.inner.latency.lock() = per_call;
    }

    /// While `on`, every call fails with an `Unavailable` error.
    pub fn set_failing(&self, on: bool) {
        self.inner.failing.store(on, Ordering::SeqCst);
    }

    /// The next `n` calls fail with an `Unavailable` error.
    pub fn fail_next(&self, n: u64) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// Everything the store holds.
    pub fn contents(&self) -> HashMap<K, V> {
        self.inner.data.lock().clone()
    }

    /// The store's value of `key`.
    pub fn value(&self, key: &K) -> Option<V> {
        self.inner.data.lock().get(key).cloned()
    }

    /// Sets `key` as if it had been there all along: no call is counted
    /// and no history kept.
    pub fn preload(&self, key: K, value: V) {
        self.inner.data.lock().insert(key, value);
    }

    /// Every change applied to `key`, in order: `Some` a save, `None` a
    /// delete.
    pub fn history(&self, key: &K) -> Vec<Option<V>> {
        self.inner
            .history
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// How often each call ran.
    pub fn calls(&self) -> StoreCalls {
        *self.inner.calls.lock()
    }

    /// Counts a call, waits its latency, and fails it if the store is
    /// down.
    async fn call(&self, count: impl FnOnce(&mut StoreCalls)) -> Result<()> {
        count(&mut self.inner.calls.lock());
        let latency = *self.inner.latency.lock();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let next = self
            .inner
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if next || self.inner.failing.load(Ordering::SeqCst) {
            self.inner.calls.lock().failed += 1;
            return Err(Error::new(ErrorKind::Unavailable, "the test store is down"));
        }
        Ok(())
    }

    fn apply(&self, key: &K, value: Option<&V>) {
        let mut data = self.inner.data.lock();
        match value {
            Some(v) => data.insert(key.clone(), v.clone()),
            None => data.remove(key),
        };
        self.inner
            .history
            .lock()
            .entry(key.clone())
            .or_default()
            .push(value.cloned());
    }
}

impl<K, V> Store<K, V> for TestStore<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Answers what the store held when it was called: with a latency, a
    /// write that lands meanwhile is not seen, as with a real store's
    /// read that raced a write.
    async fn load(&self, key: &K) -> Result<Option<V>> {
        let held = self.value(key);
        self.call(|c| c.loads += 1).await?;
        Ok(held)
    }

    async fn save(&self, key: &K, value: &V) -> Result<()> {
        self.call(|c| c.saves += 1).await?;
        self.apply(key, Some(value));
        Ok(())
    }

    async fn delete(&self, key: &K) -> Result<()> {
        self.call(|c| c.deletes += 1).await?;
        self.apply(key, None);
        Ok(())
    }

    async fn save_many(&self, entries: &[(K, V)]) -> Result<()> {
        self.call(|c| c.save_many += 1).await?;
        for (k, v) in entries {
            self.apply(k, Some(v));
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[K]) -> Result<()> {
        self.call(|c| c.delete_many += 1).await?;
        for k in keys {
            self.apply(k, None);
        }
        Ok(())
    }
}
