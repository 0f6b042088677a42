//! A byte tier as the typed cache holds it: the backend, its counters, and
//! the keys it may hold stale values for.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use cache_core::{DynBackend, ErrorKind};
use parking_lot::Mutex;

/// The most keys a tier remembers as possibly stale; past it, the tier is
/// distrusted as a whole until a `clear` of it succeeds.
const MAX_STALE_KEYS: usize = 65_536;

/// Keys whose value in the tier may be out of date: a write or removal
/// failed there, so it may still hold what the other tiers replaced or
/// removed.
#[derive(Default)]
struct Stale {
    keys: HashSet<Bytes>,
    /// Too many keys went stale to remember them all.
    overflowed: bool,
}

/// A byte tier and its counters.
pub(crate) struct Tier {
    pub(crate) backend: Arc<dyn DynBackend>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) corrupted: AtomicU64,
    stale: Mutex<Stale>,
    /// Whether `stale` holds anything, so the common case takes no lock.
    any_stale: AtomicBool,
}

impl Tier {
    pub(crate) fn new(backend: Arc<dyn DynBackend>) -> Self {
        Tier {
            backend,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            stale: Mutex::new(Stale::default()),
            any_stale: AtomicBool::new(false),
        }
    }

    pub(crate) fn count_error(&self, kind: ErrorKind) {
        if kind == ErrorKind::Corrupted {
            self.corrupted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notes that the tier may hold an out-of-date value for `key`: it
    /// failed to take a write or a removal the other tiers took.
    pub(crate) fn mark_stale(&self, key: &Bytes) {
        let mut stale = self.stale.lock();
        if !stale.overflowed {
            if stale.keys.len() < MAX_STALE_KEYS {
                stale.keys.insert(key.clone());
            } else {
                stale.keys.clear();
                stale.overflowed = true;
            }
        }
        self.any_stale.store(true, Ordering::Release);
    }

    /// Notes that the tier now holds the current state of `key` (a write
    /// or removal of it succeeded).
    pub(crate) fn mark_current(&self, key: &[u8]) {
        if !self.any_stale.load(Ordering::Acquire) {
            return;
        }
        let mut stale = self.stale.lock();
        stale.keys.remove(key);
        if stale.keys.is_empty() && !stale.overflowed {
            self.any_stale.store(false, Ordering::Release);
        }
    }

    /// Notes that the tier was cleared: it holds nothing out of date.
    pub(crate) fn mark_all_current(&self) {
        *self.stale.lock() = Stale::default();
        self.any_stale.store(false, Ordering::Release);
    }

    /// Whether the tier's value for `key` cannot be trusted.
    pub(crate) fn is_stale(&self, key: &[u8]) -> bool {
        if !self.any_stale.load(Ordering::Acquire) {
            return false;
        }
        let stale = self.stale.lock();
        stale.overflowed || stale.keys.contains(key)
    }

    /// Tries to bring a stale `key` up to date by removing it from the
    /// tier (or, once too many keys went stale, by clearing the tier).
    /// Either way the tier has nothing current for the key: the caller
    /// treats it as a miss.
    pub(crate) async fn settle(&self, key: &Bytes) {
        let overflowed = self.stale.lock().overflowed;
        if overflowed {
            if self.backend.dyn_clear().await.is_ok() {
                self.mark_all_current();
            }
        } else if self.backend.dyn_remove(key).await.is_ok() {
            self.mark_current(key);
        }
    }
}

/// Every tier below memory as one [`Backend`](cache_core::Backend), for
/// work that acts on all of them by key (the cleanup task): a write or a
/// removal reaches every tier, a lookup answers from the nearest that has
/// the key.
#[cfg(feature = "analytics")]
pub(crate) struct BelowMemory(pub(crate) Vec<Arc<dyn DynBackend>>);

#[cfg(feature = "analytics")]
impl cache_core::Backend for BelowMemory {
    fn name(&self) -> &str {
        "below-memory"
    }

    async fn get(&self, key: &[u8]) -> cache_core::Result<cache_core::Lookup> {
        for tier in &self.0 {
            if let found @ cache_core::Lookup::Hit(_) = tier.dyn_get(key).await? {
                return Ok(found);
            }
        }
        Ok(cache_core::Lookup::Miss)
    }

    async fn insert(&self, key: Bytes, entry: cache_core::Entry) -> cache_core::Result<()> {
        for tier in &self.0 {
            tier.dyn_insert(key.clone(), entry.clone()).await?;
        }
        Ok(())
    }

    /// Removes from every tier, even past one that fails; the first failure
    /// is returned, so the cleanup keeps the key for its next run.
    async fn remove(&self, key: &[u8]) -> cache_core::Result<bool> {
        let mut removed = false;
        let mut failed = None;
        for tier in &self.0 {
            match tier.dyn_remove(key).await {
                Ok(r) => removed |= r,
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        failed.map_or(Ok(removed), Err)
    }

    async fn clear(&self) -> cache_core::Result<()> {
        for tier in &self.0 {
            tier.dyn_clear().await?;
        }
        Ok(())
    }

    async fn len(&self) -> cache_core::Result<u64> {
        match self.0.first() {
            Some(tier) => tier.dyn_len().await,
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::FailingBackend;
    use cache_core::conformance::ReferenceBackend;

    #[tokio::test]
    async fn a_stale_key_is_settled_by_removing_it() {
        let backend = Arc::new(FailingBackend::new(ReferenceBackend::new(
            Default::default(),
            Default::default(),
        )));
        let tier = Tier::new(backend.clone());
        let key = Bytes::from_static(b"k");
        assert!(!tier.is_stale(&key));
        tier.mark_stale(&key);
        assert!(tier.is_stale(&key) && !tier.is_stale(b"other"));
        backend.set_failing(true);
        tier.settle(&key).await;
        assert!(tier.is_stale(&key), "a failed removal settles nothing");
        backend.set_failing(false);
        tier.settle(&key).await;
        assert!(!tier.is_stale(&key));
    }

    #[tokio::test]
    async fn too_many_stale_keys_distrust_the_tier_until_it_is_cleared() {
        let backend = Arc::new(ReferenceBackend::new(
            Default::default(),
            Default::default(),
        ));
        let tier = Tier::new(backend);
        for i in 0..=MAX_STALE_KEYS {
            tier.mark_stale(&Bytes::from(i.to_le_bytes().to_vec()));
        }
        assert!(tier.is_stale(b"never marked"));
        tier.settle(&Bytes::from_static(b"any")).await;
        assert!(!tier.is_stale(b"never marked"));
        assert!(tier.stale.lock().keys.is_empty());
    }
}
