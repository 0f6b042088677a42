//! [`Analytics`]: a tier that counts, times and samples what passes
//! through it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Backend, DataClass, Entry, Lookup, Result};

use crate::cold::{ColdKey, ColdKeys};
use crate::counters::{ClassEvent, TierCounters};
use crate::emit::emit_metrics;
use crate::hot::HotKeys;
use crate::layer::{AnalyticsLayer, MissClassifier};
use crate::op::{Op, Outcome};
use crate::shard::one_in;
use crate::stats::{RemovalStats, TierStats};

/// The class misses are counted under when the layer has no
/// [`classify_misses`](AnalyticsLayer::classify_misses) function.
pub const UNKNOWN_CLASS: &str = "unknown";

/// A tier wrapped with analytics, built by [`AnalyticsLayer`].
///
/// Every call is delegated to the tier underneath unchanged, and on its
/// way back:
/// - counted exactly, by operation and [`Outcome`]: one count per call, or
///   one per key for `get_many` and `insert_many` (a failed batch counts an
///   error for each of its keys, since none got an answer it can trust);
/// - counted by data class: hits, negative hits and inserts under their
///   entry's class, with the value bytes returned and stored, misses under
///   the class the layer's classifier names;
/// - timed, one call in the layer's
///   [`latency_sample`](AnalyticsLayer::latency_sample), into a histogram
///   per operation (a batch is one timing);
/// - for `get` and `get_many`, each key fed to the [`HotKeys`] sketch one
///   lookup in [`key_sample`](AnalyticsLayer::key_sample), whatever the
///   answer, since a hot key that keeps missing matters too;
/// - and the [`ColdKeys`] tracker sees every hit, negative hit and insert,
///   and forgets a key on `remove` and everything on `clear`.
///
/// Nothing is emitted as calls happen: going through the `metrics` facade
/// costs a registry lookup per call, more than all the counting here, so
/// metrics are written from snapshots by [`emit`](Self::emit) (or
/// [`emit_metrics`]), as often as they are scraped.
///
/// Clones share their counters, sketches and the tier underneath (when
/// `B`'s clones share it).
pub struct Analytics<B> {
    inner: B,
    shared: Arc<Shared>,
}

struct Shared {
    tier: String,
    counters: TierCounters,
    hot: HotKeys,
    cold: Option<ColdKeys>,
    cold_window: Duration,
    latency_sample: u32,
    key_sample: u32,
    miss_class: Option<MissClassifier>,
    unknown: DataClass,
}

impl<B: Backend> Analytics<B> {
    /// `inner`, analysed with `settings`.
    pub fn new(inner: B, settings: &AnalyticsLayer) -> Self {
        let tier = settings
            .tier
            .clone()
            .unwrap_or_else(|| inner.name().to_owned());
        let cold = (settings.cold_capacity > 0)
            .then(|| ColdKeys::new(settings.cold_capacity, settings.clock.clone()));
        Analytics {
            shared: Arc::new(Shared {
                tier,
                counters: TierCounters::new(),
                hot: HotKeys::new(settings.top_k),
                cold,
                cold_window: settings.cold_window,
                latency_sample: settings.latency_sample,
                key_sample: settings.key_sample,
                miss_class: settings.miss_class.clone(),
                unknown: DataClass::named(UNKNOWN_CLASS),
            }),
            inner,
        }
    }

    /// The snapshot of [`stats`](Self::stats), with the entries the tier
    /// holds and an estimate of its bytes. If the tier cannot count its
    /// entries, both are left out. Asking does not count as a `len` call.
    pub async fn stats_with_entries(&self) -> TierStats {
        let mut stats = self.stats();
        if let Ok(entries) = self.inner.len().await {
            let (inserts, bytes_in) = stats.classes.iter().fold((0u128, 0u128), |(n, b), c| {
                (n + u128::from(c.inserts), b + u128::from(c.bytes_in))
            });
            stats.entries = Some(entries);
            stats.bytes = if entries == 0 {
                Some(0)
            } else {
                (u128::from(entries) * bytes_in)
                    .checked_div(inserts)
                    .and_then(|bytes| u64::try_from(bytes).ok())
            };
        }
        stats
    }

    /// Writes this tier's [`stats_with_entries`](Self::stats_with_entries)
    /// to the installed `metrics` recorder; see [`emit_metrics`].
    pub async fn emit(&self) {
        emit_metrics(&self.stats_with_entries().await);
    }
}

impl<B> Analytics<B> {
    /// The tier underneath.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The tier underneath, unwrapped.
    pub fn into_inner(self) -> B {
        self.inner
    }

    /// The `tier` label of this tier's statistics and metrics.
    pub fn tier(&self) -> &str {
        &self.shared.tier
    }

    /// What this tier has done since it was built, without asking the tier
    /// anything (so [`TierStats::entries`] is `None`).
    pub fn stats(&self) -> TierStats
    where
        B: Backend,
    {
        let mut stats = self.shared.counters.snapshot(&self.shared.tier);
        stats.removals = self.inner.removals().as_ref().map(RemovalStats::from);
        stats
    }

    /// The `n` most requested keys, most first, with their estimated
    /// request counts among the sampled lookups (multiply by the
    /// [`key_sample`](AnalyticsLayer::key_sample) rate for an estimate of
    /// all requests).
    pub fn hot_keys(&self, n: usize) -> Vec<(Bytes, u64)> {
        self.shared.hot.top(n)
    }

    /// Up to `limit` followed keys untouched for the layer's
    /// [`cold_window`](AnalyticsLayer::cold_window), coldest first; empty
    /// when cold tracking is off. See [`ColdKeys`] for which keys are
    /// followed.
    pub fn cold_keys(&self, limit: usize) -> Vec<ColdKey> {
        self.shared
            .cold
            .as_ref()
            .map_or_else(Vec::new, |cold| cold.cold(self.shared.cold_window, limit))
    }

    fn request(&self, op: Op, outcome: Outcome, n: usize) {
        self.shared.counters.request(op, outcome, n as u64);
    }

    /// Counts a call that answers nothing but success or failure.
    fn succeeded_or_failed<T>(&self, op: Op, result: &Result<T>) {
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        self.request(op, outcome, 1);
    }

    /// Awaits `call`, timing it if this call is sampled.
    async fn timed<T>(&self, op: Op, call: impl Future<Output = T>) -> T {
        if !one_in(self.shared.latency_sample) {
            return call.await;
        }
        let start = Instant::now();
        let out = call.await;
        self.shared
            .counters
            .latency(op)
            .record_duration(start.elapsed());
        out
    }

    fn requested(&self, key: &[u8]) {
        if one_in(self.shared.key_sample) {
            // A sample lost to a busy sketch is one of many: the sketch is
            // approximate anyway, and waiting would make threads contend.
            self.shared.hot.try_record(key);
        }
    }

    fn touched(&self, key: &[u8]) {
        if let Some(cold) = &self.shared.cold {
            cold.touch(key);
        }
    }

    fn looked_up(&self, op: Op, key: &[u8], lookup: &Lookup) {
        let counters = &self.shared.counters;
        match lookup {
            Lookup::Hit(entry) => {
                self.request(op, Outcome::Hit, 1);
                counters.class(&entry.meta.class, ClassEvent::Hit(entry.value.len()));
                self.touched(key);
            }
            Lookup::Negative(meta) => {
                self.request(op, Outcome::Negative, 1);
                counters.class(&meta.class, ClassEvent::Negative);
                self.touched(key);
            }
            Lookup::Miss => {
                self.request(op, Outcome::Miss, 1);
                match &self.shared.miss_class {
                    Some(classify) => counters.class(&classify(key), ClassEvent::Miss),
                    None => counters.class(&self.shared.unknown, ClassEvent::Miss),
                }
            }
            Lookup::Bypassed => self.request(op, Outcome::Bypassed, 1),
        }
    }

    fn inserted(&self, op: Op, key: &[u8], class: &DataClass, len: usize) {
        self.request(op, Outcome::Ok, 1);
        self.shared.counters.class(class, ClassEvent::Insert(len));
        self.touched(key);
    }
}

impl<B: Backend> Backend for Analytics<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.requested(key);
        let result = self.timed(Op::Get, self.inner.get(key)).await;
        match &result {
            Ok(lookup) => self.looked_up(Op::Get, key, lookup),
            Err(_) => self.request(Op::Get, Outcome::Error, 1),
        }
        result
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        let (class, len, stored) = (entry.meta.class.clone(), entry.value.len(), key.clone());
        let result = self.timed(Op::Insert, self.inner.insert(key, entry)).await;
        match &result {
            Ok(()) => self.inserted(Op::Insert, &stored, &class, len),
            Err(_) => self.request(Op::Insert, Outcome::Error, 1),
        }
        result
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        let result = self.timed(Op::Remove, self.inner.remove(key)).await;
        match &result {
            Ok(removed) => {
                let outcome = if *removed {
                    Outcome::Hit
                } else {
                    Outcome::Miss
                };
                self.request(Op::Remove, outcome, 1);
                if let Some(cold) = &self.shared.cold {
                    cold.forget(key);
                }
            }
            Err(_) => self.request(Op::Remove, Outcome::Error, 1),
        }
        result
    }

    /// Passed through, and counted as a remove: it is how a caller deletes a
    /// record it found damaged, which an unconditional remove did before.
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        let result = self
            .timed(Op::Remove, self.inner.remove_if_unchanged(key, seen))
            .await;
        match &result {
            Ok(true) => {
                self.request(Op::Remove, Outcome::Hit, 1);
                if let Some(cold) = &self.shared.cold {
                    cold.forget(key);
                }
            }
            // A record left in place is still the tier's, so its cold-key
            // history stays.
            Ok(false) => self.request(Op::Remove, Outcome::Miss, 1),
            Err(_) => self.request(Op::Remove, Outcome::Error, 1),
        }
        result
    }

    async fn contains(&self, key: &[u8]) -> Result<bool> {
        let result = self.timed(Op::Contains, self.inner.contains(key)).await;
        let outcome = match &result {
            Ok(true) => Outcome::Hit,
            Ok(false) => Outcome::Miss,
            Err(_) => Outcome::Error,
        };
        self.request(Op::Contains, outcome, 1);
        result
    }

    async fn clear(&self) -> Result<()> {
        let result = self.timed(Op::Clear, self.inner.clear()).await;
        self.succeeded_or_failed(Op::Clear, &result);
        // Even a failed clear may have removed some entries; forgetting
        // them all errs towards reporting fewer cold keys, not stale ones.
        if let Some(cold) = &self.shared.cold {
            cold.clear();
        }
        result
    }

    async fn len(&self) -> Result<u64> {
        let result = self.timed(Op::Len, self.inner.len()).await;
        self.succeeded_or_failed(Op::Len, &result);
        result
    }

    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        for key in keys {
            self.requested(key);
        }
        let result = self.timed(Op::GetMany, self.inner.get_many(keys)).await;
        match &result {
            Ok(lookups) => {
                for (key, lookup) in keys.iter().zip(lookups) {
                    self.looked_up(Op::GetMany, key, lookup);
                }
            }
            Err(_) => self.request(Op::GetMany, Outcome::Error, keys.len()),
        }
        result
    }

    async fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> Result<()> {
        let stored: Vec<(Bytes, DataClass, usize)> = entries
            .iter()
            .map(|(key, entry)| (key.clone(), entry.meta.class.clone(), entry.value.len()))
            .collect();
        let result = self
            .timed(Op::InsertMany, self.inner.insert_many(entries))
            .await;
        match &result {
            Ok(()) => {
                for (key, class, len) in &stored {
                    self.inserted(Op::InsertMany, key, class, *len);
                }
            }
            Err(_) => self.request(Op::InsertMany, Outcome::Error, stored.len()),
        }
        result
    }

    fn removals(&self) -> Option<cache_core::Removals> {
        self.inner.removals()
    }

    /// The tier underneath's keys, passed through and not counted: a
    /// listing is maintenance (warming, inspection), and counting its pages
    /// beside the tier's traffic would skew the per-operation figures.
    async fn keys(
        &self,
        from: &cache_core::KeyCursor,
        limit: usize,
    ) -> Result<Option<cache_core::KeyPage>> {
        self.inner.keys(from, limit).await
    }
}

impl<B: Clone> Clone for Analytics<B> {
    fn clone(&self) -> Self {
        Analytics {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for Analytics<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analytics")
            .field("tier", &self.shared.tier)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use cache_core::conformance::ReferenceBackend;
    use cache_core::{Clock, KeyCursor, Layer, Limits, Meta};

    use super::*;

    #[tokio::test]
    async fn a_listing_is_passed_through_and_not_counted() {
        let tier = AnalyticsLayer::new()
            .latency_sample(1)
            .layer(ReferenceBackend::new(Clock::system(), Limits::DEFAULT));
        for k in ["a", "b", "c"] {
            let entry = Entry::new(&b"v"[..], Meta::new(0));
            tier.insert(Bytes::from(k), entry).await.unwrap();
        }
        let counted = |t: &Analytics<ReferenceBackend>| {
            let stats = t.stats();
            stats.ops.iter().map(|op| op.results.total()).sum::<u64>()
        };
        let before = counted(&tier);
        let page = tier.keys(&KeyCursor::start(), 10).await.unwrap();
        let keys = page.expect("the tier underneath lists its keys").keys;
        assert_eq!(keys, ["a", "b", "c"].map(Bytes::from));
        assert_eq!(counted(&tier), before, "a listing is not traffic");
    }
}
