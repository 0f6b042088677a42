//! A byte tier as the typed cache holds it, with everything that belongs to
//! it: the backend (boxed once, outermost), its counters, the keys it may
//! hold stale values for, and the analytics and compression handles of the
//! layers the builder wrapped it in. [`Tiers`] is the ordered list of them
//! and the one place that changes several tiers at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use cache_core::{Clock, DynBackend, Entry, ErrorKind, Meta};
use futures::future::join_all;
use parking_lot::Mutex;

use crate::report::TierStats;

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

/// What a tier has answered since the cache was built.
#[derive(Default)]
struct Counts {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    corrupted: AtomicU64,
}

/// The analytics layer around a tier, as the reports read it.
#[cfg(feature = "analytics")]
pub(crate) trait AnalysedTier: Send + Sync {
    /// The layer's snapshot, with the entries the tier holds.
    fn stats_with_entries(&self) -> cache_core::BoxFuture<'_, cache_analytics::TierStats>;
    /// Writes the layer's snapshot to the `metrics` recorder.
    fn emit(&self) -> cache_core::BoxFuture<'_, ()>;
    /// The layer's cold keys.
    fn cold_keys(&self, limit: usize) -> Vec<cache_analytics::ColdKey>;
}

#[cfg(feature = "analytics")]
impl<B: cache_core::Backend> AnalysedTier for cache_analytics::Analytics<B> {
    fn stats_with_entries(&self) -> cache_core::BoxFuture<'_, cache_analytics::TierStats> {
        Box::pin(cache_analytics::Analytics::stats_with_entries(self))
    }
    fn emit(&self) -> cache_core::BoxFuture<'_, ()> {
        Box::pin(cache_analytics::Analytics::emit(self))
    }
    fn cold_keys(&self, limit: usize) -> Vec<cache_analytics::ColdKey> {
        cache_analytics::Analytics::cold_keys(self, limit)
    }
}

/// The compression layer around a tier, as the reports read it.
#[cfg(feature = "compress")]
pub(crate) trait CompressedTier: Send + Sync {
    /// The layer's counters.
    fn compression_stats(&self) -> cache_compress::CompressionStats;
}

#[cfg(feature = "compress")]
impl<B: Send + Sync> CompressedTier for cache_compress::Compressed<B> {
    fn compression_stats(&self) -> cache_compress::CompressionStats {
        self.stats()
    }
}

/// A byte tier and what belongs to it.
pub(crate) struct Tier {
    backend: Arc<dyn DynBackend>,
    counts: Counts,
    stale: Mutex<Stale>,
    /// Whether `stale` holds any key, so the common case takes no lock.
    any_stale: AtomicBool,
    /// A copy of `stale.distrust_before`, read without the lock.
    distrust_before: AtomicU64,
    /// The latest creation time the cache wrote a record into this tier
    /// with, so that a distrust point is always past it.
    highest_stamp: AtomicU64,
    #[cfg(feature = "analytics")]
    analytics: Option<Arc<dyn AnalysedTier>>,
    #[cfg(feature = "compress")]
    compression: Option<Arc<dyn CompressedTier>>,
}

impl Tier {
    /// A tier of `backend`, wrapped in no layer the cache reports on.
    pub(crate) fn new(backend: Arc<dyn DynBackend>) -> Self {
        Tier {
            backend,
            counts: Counts::default(),
            stale: Mutex::new(Stale::default()),
            any_stale: AtomicBool::new(false),
            distrust_before: AtomicU64::new(0),
            highest_stamp: AtomicU64::new(0),
            #[cfg(feature = "analytics")]
            analytics: None,
            #[cfg(feature = "compress")]
            compression: None,
        }
    }

    /// The tier with the analytics layer that is (or sits inside) its
    /// backend.
    #[cfg(feature = "analytics")]
    pub(crate) fn with_analytics(mut self, analytics: Arc<dyn AnalysedTier>) -> Self {
        self.analytics = Some(analytics);
        self
    }

    /// The tier with the compression layer inside its backend.
    #[cfg(all(feature = "compress", any(feature = "redb", feature = "redis")))]
    pub(crate) fn with_compression(mut self, compression: Arc<dyn CompressedTier>) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The tier's whole stack, outermost layer first.
    pub(crate) fn backend(&self) -> &Arc<dyn DynBackend> {
        &self.backend
    }

    /// The outermost layer's name.
    pub(crate) fn name(&self) -> &str {
        self.backend.dyn_name()
    }

    /// The analytics layer, when the builder wrapped the tier in one.
    #[cfg(feature = "analytics")]
    pub(crate) fn analytics(&self) -> Option<&dyn AnalysedTier> {
        self.analytics.as_deref()
    }

    /// The compression layer, when the builder wrapped the tier in one.
    #[cfg(feature = "compress")]
    pub(crate) fn compression(&self) -> Option<&dyn CompressedTier> {
        self.compression.as_deref()
    }

    pub(crate) fn count_hit(&self) {
        self.counts.hits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_miss(&self) {
        self.counts.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed call: corrupted records apart from the rest.
    pub(crate) fn count_error(&self, kind: ErrorKind) {
        if kind == ErrorKind::Corrupted {
            self.counts.corrupted.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counts.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The tier's counters, under its name.
    pub(crate) fn stats(&self) -> TierStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TierStats {
            name: self.name().to_string(),
            hits: load(&self.counts.hits),
            misses: load(&self.counts.misses),
            errors: load(&self.counts.errors),
            corrupted: load(&self.counts.corrupted),
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
    fn mark_all_stale(&self, now_ms: u64) {
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
    fn mark_all_current(&self) {
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

    /// Carries out one change of [`Tiers::apply`] here, and notes what the
    /// tier holds afterwards.
    async fn change(&self, change: &Change<'_>, clock: &Clock) -> Result<(), ErrorKind> {
        let result = match change {
            Change::Put(kb, entry) | Change::Copy(kb, entry) => {
                let copy = Entry::new(entry.value.clone(), self.stamp(entry.meta.clone()));
                self.backend.dyn_insert((*kb).clone(), copy).await
            }
            Change::Remove(kb) => self.backend.dyn_remove(kb).await.map(drop),
            Change::Clear => self.backend.dyn_clear().await,
        };
        let Err(e) = result else {
            match change {
                Change::Put(kb, _) | Change::Copy(kb, _) | Change::Remove(kb) => {
                    self.mark_current(kb);
                }
                Change::Clear => self.mark_all_current(),
            }
            return Ok(());
        };
        self.count_error(e.kind());
        // Read at the failure, after however long the tier took to fail:
        // the distrust point must be past everything written before it.
        let now_ms = clock.now_ms();
        match change {
            // The tier may still hold the previous value, so it is asked to
            // drop it: a recovered tier must not serve a stale one.
            Change::Put(kb, _) => match self.backend.dyn_remove(kb).await {
                Ok(_) => self.mark_current(kb),
                Err(e) => {
                    self.count_error(e.kind());
                    self.mark_stale(kb, clock.now_ms());
                }
            },
            // A copy that failed leaves at worst what the tier held before:
            // it missed, or the key is already marked stale.
            Change::Copy(..) => {}
            Change::Remove(kb) => self.mark_stale(kb, now_ms),
            Change::Clear => self.mark_all_stale(now_ms),
        }
        Err(e.kind())
    }
}

/// A change [`Tiers::apply`] makes in several tiers at once.
pub(crate) enum Change<'a> {
    /// Writes the entry: the key's new value. Where it fails, the tier is
    /// asked to drop its old value, and the key is marked stale there if it
    /// cannot.
    Put(&'a Bytes, &'a Entry),
    /// Copies a value already current below (a promotion): where it fails
    /// the tier keeps what it had, which was no newer.
    Copy(&'a Bytes, &'a Entry),
    /// Removes the key; marked stale where that fails.
    Remove(&'a Bytes),
    /// Removes everything; a tier that fails distrusts all it holds.
    Clear,
}

/// What each tier made of a change, in tier order: `Err` with the kind of
/// error for each tier that failed (already counted, and its stale keys
/// noted).
pub(crate) type TierReport = Vec<Result<(), ErrorKind>>;

/// The byte tiers below memory, in order.
pub(crate) struct Tiers(Vec<Tier>);

impl Tiers {
    pub(crate) fn new(tiers: Vec<Tier>) -> Self {
        Tiers(tiers)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Tier> {
        self.0.iter()
    }

    /// The first tier below memory, which write-on-evict demotes into.
    pub(crate) fn warm(&self) -> Option<&Tier> {
        self.0.first()
    }

    /// Makes `change` in the tiers `range` (all of them, or those above
    /// the one a hit came from) at once, and notes in each what it holds
    /// now: current where the change succeeded, possibly stale where it
    /// failed.
    pub(crate) async fn apply(
        &self,
        range: std::ops::RangeTo<usize>,
        change: Change<'_>,
        clock: &Clock,
    ) -> TierReport {
        let tiers = &self.0[..range.end.min(self.0.len())];
        join_all(tiers.iter().map(|t| t.change(&change, clock))).await
    }

    /// [`apply`](Self::apply), except in the tiers whose bit (by index) is
    /// set in `skip`, which a bypass rule keeps the key out of: a write
    /// removes the key there instead, so that no older value stays, and a
    /// copy leaves them alone.
    pub(crate) async fn apply_skipping(
        &self,
        range: std::ops::RangeTo<usize>,
        change: Change<'_>,
        skip: u64,
        clock: &Clock,
    ) -> TierReport {
        if skip == 0 {
            return self.apply(range, change, clock).await;
        }
        let removal = match change {
            Change::Put(kb, _) => Some(Change::Remove(kb)),
            _ => None,
        };
        let tiers = &self.0[..range.end.min(self.0.len())];
        join_all(tiers.iter().enumerate().map(|(i, t)| {
            let skipped = i < 64 && skip >> i & 1 == 1;
            match (&removal, skipped) {
                (_, false) => futures::future::Either::Left(t.change(&change, clock)),
                (Some(removal), true) => futures::future::Either::Left(t.change(removal, clock)),
                (None, true) => futures::future::Either::Right(std::future::ready(Ok(()))),
            }
        }))
        .await
    }

    /// Every tier.
    pub(crate) const ALL: std::ops::RangeTo<usize> = ..usize::MAX;
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
            if let found @ (cache_core::Lookup::Hit(_) | cache_core::Lookup::Negative(_)) =
                tier.dyn_get(key).await?
            {
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

    #[tokio::test]
    async fn apply_reports_each_tier_and_marks_what_failed() {
        let up = Arc::new(ReferenceBackend::new(
            Default::default(),
            Default::default(),
        ));
        let down = Arc::new(FailingBackend::new(ReferenceBackend::new(
            Default::default(),
            Default::default(),
        )));
        let tiers = Tiers::new(vec![Tier::new(up.clone()), Tier::new(down.clone())]);
        let clock = cache_core::ManualClock::new(1);
        let key = Bytes::from_static(b"k");
        let entry = Entry::new(&b"v"[..], Meta::new(1));
        down.set_failing(true);
        let report = tiers
            .apply(Tiers::ALL, Change::Put(&key, &entry), &clock.clock())
            .await;
        assert_eq!(report, vec![Ok(()), Err(ErrorKind::Unavailable)]);
        let [first, second] = &tiers.0[..] else {
            unreachable!()
        };
        assert!(!first.is_stale(&key));
        assert!(second.is_stale(&key), "the value it kept may be stale");
        // Both the write and the removal that retracted it were counted.
        assert_eq!(second.stats().errors, 2);
        // A failed copy changes nothing it would have to retract.
        let report = tiers
            .apply(..1, Change::Copy(&key, &entry), &clock.clock())
            .await;
        assert_eq!(report, vec![Ok(())]);
        down.set_failing(false);
        let report = tiers
            .apply(Tiers::ALL, Change::Remove(&key), &clock.clock())
            .await;
        assert_eq!(report, vec![Ok(()), Ok(())]);
        assert!(!second.is_stale(&key));
        down.set_failing(true);
        clock.advance(std::time::Duration::from_millis(2));
        tiers.apply(Tiers::ALL, Change::Clear, &clock.clock()).await;
        assert!(second.distrusts(&Meta::new(3)), "a failed clear distrusts");
        assert!(!first.distrusts(&Meta::new(0)));
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
