//! A backend wrapper that fails on command, for fault-injection tests.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use crate::backend::Backend;
use crate::entry::{Entry, Lookup};
use crate::error::{Error, ErrorKind, Result};

/// Wraps a backend and makes its calls fail or stall on demand.
///
/// While failing, every call returns an [`ErrorKind::Unavailable`] error
/// without touching the inner backend, the way a tier behaves when its
/// server is down. A delay, when set, is slept before every call.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use cache_core::{Backend, FailingBackend, ErrorKind};
/// # use cache_core::conformance::ReferenceBackend;
/// let tier = FailingBackend::new(ReferenceBackend::new(Default::default(), Default::default()));
/// tier.set_failing(true);
/// assert_eq!(tier.len().await.unwrap_err().kind(), ErrorKind::Unavailable);
/// tier.set_failing(false);
/// assert_eq!(tier.len().await.unwrap(), 0);
/// # });
/// ```
#[derive(Debug)]
pub struct FailingBackend<B> {
    inner: B,
    failing: AtomicBool,
    fail_next: AtomicU64,
    delay_ms: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
}

impl<B: Backend> FailingBackend<B> {
    /// Wraps `inner`; it starts healthy.
    pub fn new(inner: B) -> Self {
        FailingBackend {
            inner,
            failing: AtomicBool::new(false),
            fail_next: AtomicU64::new(0),
            delay_ms: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Wraps `inner` and fails every call from the start.
    pub fn always_failing(inner: B) -> Self {
        let b = Self::new(inner);
        b.set_failing(true);
        b
    }

    /// Turns failure of every call on or off.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes the next `n` calls fail, then recovers.
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Sleeps this long before every call (zero for none).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Calls received, failed or not.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Calls that were made to fail.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn gate(&self, op: &'static str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let one_shot = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if one_shot || self.failing.load(Ordering::SeqCst) {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("injected failure in {op} on {}", self.inner.name()),
            ));
        }
        Ok(())
    }
}

impl<B: Backend> Backend for FailingBackend<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.gate("get").await?;
        self.inner.get(key).await
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.gate("insert").await?;
        self.inner.insert(key, entry).await
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.gate("remove").await?;
        self.inner.remove(key).await
    }

    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        self.gate("remove_if_unchanged").await?;
        self.inner.remove_if_unchanged(key, seen).await
    }

    async fn contains(&self, key: &[u8]) -> Result<bool> {
        self.gate("contains").await?;
        self.inner.contains(key).await
    }

    async fn clear(&self) -> Result<()> {
        self.gate("clear").await?;
        self.inner.clear().await
    }

    async fn len(&self) -> Result<u64> {
        self.gate("len").await?;
        self.inner.len().await
    }

    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        self.gate("get_many").await?;
        self.inner.get_many(keys).await
    }

    async fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> Result<()> {
        self.gate("insert_many").await?;
        self.inner.insert_many(entries).await
    }

    fn removals(&self) -> Option<crate::Removals> {
        self.inner.removals()
    }

    async fn keys(&self, from: &crate::KeyCursor, limit: usize) -> Result<Option<crate::KeyPage>> {
        self.gate("keys").await?;
        self.inner.keys(from, limit).await
    }
}
