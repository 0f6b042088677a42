//! A byte tier as the typed cache holds it: the backend, its counters, and
//! the keys it may hold stale values for.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use cache_core::{DynBackend, ErrorKind, Meta};
use parking_lot::Mutex;

/// The most keys a tier remembers as possibly stale; past it, the tier
/// distrusts every record written before the latest failure instead (see
/// [`Tier::distrusts`]).
const MAX_STALE_KEYS: usize = 65_536;

/// Keys whose value in the tier may be out of date: a write or removal
/// failed there, so it may still hold what the other tiers replaced or
/// removed.
#[derive(Default)]
struct Stale {
    keys: HashSet<Bytes>,
    /// Too many keys went stale to remember them all: every record created
    /// before this time (unix ms) is distrusted; 0 when none is.
    distrust_before: u64,
}

/// A byte tier and its counters.
pub(crate) struct Tier {
    pub(crate) backend: Arc<dyn DynBackend>,
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) corrupted: AtomicU64,
    stale: Mutex<Stale>,
    /// Whether `stale` holds any key, so the common case takes no lock.
    any_stale: AtomicBool,
    /// A copy of `stale.distrust_before`, read without the lock.
    distrust_before: AtomicU64,
    /// The latest creation time the cache wrote a record into this tier
    /// with, so that a distrust point is always past it.
    highest_stamp: AtomicU64,
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
            distrust_before: AtomicU64::new(0),
            highest_stamp: AtomicU64::new(0),
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
    /// failed, at `now_ms`, to take a write or a removal the other tiers
    /// took.
    ///
    /// Past [`MAX_STALE_KEYS`] the keys are forgotten and every record the
    /// tier holds that was written before this failure is distrusted
    /// instead. Nothing is cleared: a clear of a shared Redis prefix would
    /// wipe every process's cache, and each lookup waiting on one made an
    /// outage's aftermath worse than the outage.
    pub(crate) fn mark_stale(&self, key: &Bytes, now_ms: u64) {
        let mut stale = self.stale.lock();
        if stale.keys.len() < MAX_STALE_KEYS {
            stale.keys.insert(key.clone());
            self.any_stale.store(true, Ordering::Release);
            return;
        }
        self.distrust(&mut stale, now_ms);
        self.any_stale.store(false, Ordering::Release);
    }

    /// Distrusts every record created before `now_ms`: a clear of the tier
    /// failed, so it may still hold anything written before.
    pub(crate) fn mark_all_stale(&self, now_ms: u64) {
        let mut stale = self.stale.lock();
        self.distrust(&mut stale, now_ms);
        self.any_stale.store(false, Ordering::Release);
    }

    /// Moves the distrust point past every record this tier may hold from
    /// before now: strictly after the failure (a record created in the same
    /// millisecond may predate it) and after every creation time the cache
    /// stamped on a record for it (a clock that stepped back, another
    /// process's clock ahead of this one), then forgets the keys, which
    /// the point now covers. Keys that go stale later are remembered one by
    /// one again.
    fn distrust(&self, stale: &mut Stale, now_ms: u64) {
        let stamped = self.highest_stamp.load(Ordering::Acquire);
        stale.distrust_before = stale
            .distrust_before
            .max(now_ms.saturating_add(1))
            .max(stamped.saturating_add(1));
        self.distrust_before
            .store(stale.distrust_before, Ordering::Release);
        stale.keys = HashSet::new();
    }

    /// Notes that the tier now holds the current state of `key` (a write
    /// or removal of it succeeded).
    pub(crate) fn mark_current(&self, key: &[u8]) {
        if !self.any_stale.load(Ordering::Acquire) {
            return;
        }
        let mut stale = self.stale.lock();
        stale.keys.remove(key);
        if stale.keys.is_empty() {
            self.any_stale.store(false, Ordering::Release);
        }
    }

    /// Notes that the tier was cleared: it holds nothing out of date.
    pub(crate) fn mark_all_current(&self) {
        *self.stale.lock() = Stale::default();
        self.any_stale.store(false, Ordering::Release);
        self.distrust_before.store(0, Ordering::Release);
    }

    /// Whether the tier's value for `key` is known to be possibly out of
    /// date; it is not asked for the key until [`settle`](Self::settle)
    /// succeeds.
    pub(crate) fn is_stale(&self, key: &[u8]) -> bool {
        if !self.any_stale.load(Ordering::Acquire) {
            return false;
        }
        self.stale.lock().keys.contains(key)
    }

    /// Whether a record the tier returned may predate a failed write (too
    /// many keys went stale to tell which): it is treated as a miss, and
    /// left in place, since in a shared tier it may be another process's
    /// current value.
    pub(crate) fn distrusts(&self, meta: &Meta) -> bool {
        meta.created_at_ms < self.distrust_before.load(Ordering::Acquire)
    }

    /// The metadata to write a record into this tier with: while the tier
    /// distrusts older records, what the cache writes now is stamped as
    /// created after the distrust point, since it is current.
    pub(crate) fn stamp(&self, mut meta: Meta) -> Meta {
        let from = self.distrust_before.load(Ordering::Acquire);
        meta.created_at_ms = meta.created_at_ms.max(from);
        self.highest_stamp
            .fetch_max(meta.created_at_ms, Ordering::AcqRel);
        meta
    }

    /// Tries to bring a stale `key` up to date by removing it from the
    /// tier. The caller holds the key's stripe lock, so the removal cannot
    /// take away a value written meanwhile. Either way the tier has nothing
    /// current for the key: the caller treats it as a miss.
    pub(crate) async fn settle(&self, key: &Bytes) {
        if !self.is_stale(key) {
            return;
        }
        if self.backend.dyn_remove(key).await.is_ok() {
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
        tier.mark_stale(&key, 1);
        assert!(tier.is_stale(&key) && !tier.is_stale(b"other"));
        backend.set_failing(true);
        tier.settle(&key).await;
        assert!(tier.is_stale(&key), "a failed removal settles nothing");
        backend.set_failing(false);
        tier.settle(&key).await;
        assert!(!tier.is_stale(&key));
    }

    #[test]
    fn too_many_stale_keys_distrust_older_records_without_a_clear() {
        let backend = Arc::new(ReferenceBackend::new(
            Default::default(),
            Default::default(),
        ));
        let tier = Tier::new(backend);
        for i in 0..MAX_STALE_KEYS {
            tier.mark_stale(&Bytes::from(i.to_le_bytes().to_vec()), 1_000);
        }
        assert!(!tier.distrusts(&Meta::new(0)));
        tier.mark_stale(&Bytes::from_static(b"one too many"), 2_000);
        assert!(tier.stale.lock().keys.is_empty(), "the keys are forgotten");
        assert!(!tier.is_stale(b"never marked"));
        assert!(tier.distrusts(&Meta::new(2_000)), "same millisecond");
        assert!(!tier.distrusts(&Meta::new(2_001)));
        // What the cache writes now is current, whatever its age.
        let written = tier.stamp(Meta::new(5));
        assert!(!tier.distrusts(&written));
        // Later failures are remembered by key again...
        tier.mark_stale(&Bytes::from_static(b"again"), 2_000);
        assert!(tier.is_stale(b"again") && !tier.distrusts(&written));
        // ...until they overflow too: then the point moves past everything
        // stamped, even within the same millisecond.
        for i in 0..MAX_STALE_KEYS {
            tier.mark_stale(&Bytes::from(i.to_le_bytes().to_vec()), 2_000);
        }
        assert!(
            tier.distrusts(&written),
            "stamped in the failure's millisecond"
        );
        assert!(tier.distrusts(&Meta::new(2_001)));
        tier.mark_all_current();
        assert!(!tier.distrusts(&Meta::new(0)));
    }
}
