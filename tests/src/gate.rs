//! A byte tier whose calls a test can hold at a chosen point, to put a
//! race between two cache calls in a known order.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cache_core::{Backend, Entry, Lookup, Result};
use tokio::sync::Semaphore;

/// One point where a call can be held: armed, the next call to pass it
/// waits there until [`release`](Gate::release).
pub struct Gate {
    armed: AtomicBool,
    held: Semaphore,
    released: Semaphore,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            armed: AtomicBool::new(false),
            held: Semaphore::new(0),
            released: Semaphore::new(0),
        }
    }
}

impl Gate {
    /// Makes the next call that passes wait.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Waits until a call is held at the gate.
    pub async fn held(&self) {
        self.held
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
    }

    /// Lets the held call go on.
    pub fn release(&self) {
        self.released.add_permits(1);
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.held.add_permits(1);
            self.released
                .acquire()
                .await
                .expect("the gate is never closed")
                .forget();
        }
    }
}

/// A tier that holds a `get` after it has read (so it returns what was
/// there before the held time) and an `insert` before it writes.
pub struct Gated<B> {
    inner: B,
    /// Where a `get` waits, its answer already read.
    pub after_get: Gate,
    /// Where an `insert` waits, before it writes.
    pub before_insert: Gate,
}

impl<B> Gated<B> {
    /// `inner` with both gates open.
    pub fn new(inner: B) -> Self {
        Gated {
            inner,
            after_get: Gate::default(),
            before_insert: Gate::default(),
        }
    }

    /// The tier underneath.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for Gated<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        let found = self.inner.get(key).await;
        self.after_get.pass().await;
        found
    }
    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.before_insert.pass().await;
        self.inner.insert(key, entry).await
    }
    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.inner.remove(key).await
    }
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        self.inner.remove_if_unchanged(key, seen).await
    }
    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }
    async fn len(&self) -> Result<u64> {
        self.inner.len().await
    }
}
