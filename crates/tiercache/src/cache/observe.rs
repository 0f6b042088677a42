//! What the cache reports about itself: the entry tracker's events, and
//! (feature `analytics`) the snapshot, the metrics and the cleanup task.

use std::hash::Hash;
#[cfg(feature = "analytics")]
use std::sync::Arc;
#[cfg(feature = "analytics")]
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use cache_core::{Codec, Meta};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, HOT_LOOKUPS};

/// Which latency a sampled call records.
#[derive(Clone, Copy)]
pub(super) enum Sampled {
    Lookup,
    Insert,
}

/// What happened to a key, for the entry tracker.
#[derive(Clone, Copy)]
pub(super) enum Tracked {
    Hit,
    Miss,
    Removed,
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Counts a hot-tier lookup as it starts. With analytics on, one lookup
    /// in the sampling rate is timed and its key fed to the hot-key sketch:
    /// the count the lookup counter returns decides which, so analytics
    /// adds no work of its own to the lookups it does not sample. Returns
    /// when the lookup began if it is sampled; the sampled call's work is
    /// out of line, so that the lookup's own code stays small.
    #[inline(always)]
    pub(super) fn sample_lookup(&self, key: &K) -> Option<Instant> {
        let seen = self.inner.counters.add_and_fetch_stripe(HOT_LOOKUPS, 1);
        #[cfg(feature = "analytics")]
        if seen & self.inner.sample_mask == 0
            && let Some(a) = &self.inner.hot_analytics
        {
            return self.start_sample(a, key);
        }
        let _ = (seen, key);
        None
    }

    /// The sampled lookup's start: its key to the hot-key sketch, and the
    /// time.
    #[cfg(feature = "analytics")]
    #[cold]
    #[inline(never)]
    fn start_sample(&self, a: &crate::report::HotAnalytics, key: &K) -> Option<Instant> {
        if let Ok(kb) = self.encode_key(key) {
            a.hot_keys.try_record(&kb);
        }
        Some(Instant::now())
    }

    /// With analytics on, counts an insert and, for one in the sampling
    /// rate (by the running count the insert counter returns), returns
    /// when it began.
    #[inline(always)]
    pub(super) fn sample_insert(&self) -> Option<Instant> {
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics
            && a.insert() & a.sample_mask == 0
        {
            return Some(Instant::now());
        }
        None
    }

    /// Records a sampled call's latency, if the call was sampled.
    #[inline(always)]
    pub(super) fn sample_done(&self, sample: Option<Instant>, op: Sampled) {
        #[cfg(feature = "analytics")]
        if let Some(started) = sample {
            self.record_latency(started, op);
        }
        let _ = (sample, op);
    }

    /// Records a sampled call's latency, out of line.
    #[cfg(feature = "analytics")]
    #[cold]
    #[inline(never)]
    fn record_latency(&self, started: Instant, op: Sampled) {
        let elapsed = started.elapsed();
        if let Some(a) = &self.inner.hot_analytics {
            match op {
                Sampled::Lookup => a.get_latency.record_duration(elapsed),
                Sampled::Insert => a.insert_latency.record_duration(elapsed),
            }
        }
    }

    /// Whether the entry tracker follows `key`'s entries.
    #[inline]
    pub(super) fn is_tracked(&self, key: &K) -> bool {
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics {
            return a.follows(key);
        }
        let _ = key;
        false
    }

    /// Reports an insert of `key` to the entry tracker if the key is in its
    /// sample, returning whether it is (feature `analytics`). `kb` is the
    /// encoded key when the caller has it; `size`, the encoded value's
    /// length if known (the value is encoded for a sampled key otherwise).
    #[inline]
    pub(super) fn track_insert(
        &self,
        key: &K,
        kb: Option<&Bytes>,
        value: &V,
        size: Option<usize>,
        meta: &Meta,
    ) -> bool {
        if !self.is_tracked(key) {
            return false;
        }
        self.track_followed_insert(key, kb, value, size, meta);
        true
    }

    /// [`track_insert`](Self::track_insert) of a followed key, out of line:
    /// few keys are followed.
    #[cold]
    #[inline(never)]
    fn track_followed_insert(
        &self,
        key: &K,
        kb: Option<&Bytes>,
        value: &V,
        size: Option<usize>,
        meta: &Meta,
    ) {
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics {
            let Some(kb) = kb.cloned().or_else(|| self.encode_key(key).ok()) else {
                return;
            };
            let size = size.or_else(|| self.inner.codec.encode(value).ok().map(|v| v.len()));
            let now = self.inner.clock.now_ms();
            a.tracker
                .on_insert(&kb, size.unwrap_or(0) as u64, meta, now);
        }
        let _ = (key, kb, value, size, meta);
    }

    /// Reports a hit, a miss or a removal of `key` to the entry tracker
    /// (feature `analytics`); `kb` is the encoded key when the caller has it.
    #[inline]
    pub(super) fn track(&self, key: &K, kb: Option<&Bytes>, event: Tracked) {
        if self.is_tracked(key) {
            self.track_followed(key, kb, event);
        }
    }

    /// [`track`](Self::track) of a followed key, out of line.
    #[cold]
    #[inline(never)]
    pub(super) fn track_followed(&self, key: &K, kb: Option<&Bytes>, event: Tracked) {
        #[cfg(feature = "analytics")]
        if let Some(a) = &self.inner.hot_analytics {
            let Some(kb) = kb.cloned().or_else(|| self.encode_key(key).ok()) else {
                return;
            };
            let now = self.inner.clock.now_ms();
            match event {
                Tracked::Hit => a.tracker.on_hit(&kb, now),
                Tracked::Miss => a.tracker.on_miss(&kb, now),
                Tracked::Removed => a.tracker.on_remove(&kb),
            }
        }
        let _ = (key, kb, event);
    }

    /// A snapshot of every tier (feature `analytics`, with analytics on):
    /// hits, misses and errors, lookup and insert latency percentiles,
    /// entries, bytes and compression ratio, hits per class, evictions and
    /// expirations of the hot tier, and the hottest keys. Asks each byte
    /// tier for its entry count. `None` when analytics is off.
    #[cfg(feature = "analytics")]
    pub async fn stats(&self) -> Option<crate::report::CacheStats> {
        use crate::report::{CacheStats, ColdKeySummary, HotKey, TierSummary};
        use cache_analytics::Op;
        let a = self.inner.hot_analytics.as_ref()?;
        let counts = self.tier_stats();
        let hot = &counts[0];
        let named = |counts: Vec<(u16, u64)>| -> Vec<(String, u64)> {
            counts
                .into_iter()
                .map(|(i, n)| {
                    (
                        crate::report::slot_name(i, |i| self.inner.class_names.class(i)),
                        n,
                    )
                })
                .collect()
        };
        let class_hits = named(a.class_hits(hot.hits));
        let class_inserts = named(a.class_inserts());
        let mut tiers = vec![TierSummary {
            name: hot.name.clone(),
            hits: hot.hits,
            misses: hot.misses,
            errors: 0,
            hit_ratio: hot.hit_ratio(),
            get_latency: a.get_latency.snapshot(),
            insert_latency: a.insert_latency.snapshot(),
            entries: Some(self.inner.hot.entry_count()),
            bytes: None,
            compression_ratio: None,
            evictions: Some(self.inner.hot.engine.evicted_count()),
            expirations: Some(self.inner.hot.engine.expired_count()),
            removals_by_class: self.hot_removals(a).classes,
            class_hits,
            class_inserts,
        }];
        #[cfg(feature = "compress")]
        let compression = self.compression_stats();
        for (counted, analysed) in counts[1..].iter().zip(&self.inner.tier_analytics) {
            let stats = analysed.stats_with_entries().await;
            #[cfg(feature = "compress")]
            let compression_ratio = compression
                .iter()
                .find(|(name, _)| *name == counted.name)
                .and_then(|(_, c)| {
                    let (stored, given) = c
                        .algorithms
                        .iter()
                        .fold((0, 0), |(o, i), a| (o + a.bytes_out, i + a.bytes_in));
                    (given > 0).then(|| stored as f64 / given as f64)
                });
            #[cfg(not(feature = "compress"))]
            let compression_ratio = None;
            tiers.push(TierSummary {
                name: counted.name.clone(),
                hits: counted.hits,
                misses: counted.misses,
                errors: counted.errors,
                hit_ratio: counted.hit_ratio(),
                get_latency: stats.op(Op::Get).latency,
                insert_latency: stats.op(Op::Insert).latency,
                entries: stats.entries,
                bytes: stats.bytes,
                compression_ratio,
                evictions: stats.removals.as_ref().map(|r| r.evicted),
                expirations: stats.removals.as_ref().map(|r| r.expired),
                removals_by_class: stats.removals.map(|r| r.classes).unwrap_or_default(),
                class_hits: stats
                    .classes
                    .iter()
                    .filter(|c| c.hits > 0)
                    .map(|c| (c.class.clone(), c.hits))
                    .collect(),
                class_inserts: stats
                    .classes
                    .iter()
                    .filter(|c| c.inserts > 0)
                    .map(|c| (c.class.clone(), c.inserts))
                    .collect(),
            });
        }
        let answered: u64 = counts.iter().map(|t| t.hits).sum();
        let asked = hot.hits + hot.misses;
        Some(CacheStats {
            tiers,
            hot_keys: a
                .hot_keys
                .top(5)
                .into_iter()
                .map(|(k, n)| HotKey::new(&k, n))
                .collect(),
            hierarchy: self.hierarchy_stats(),
            #[cfg(feature = "compress")]
            compression_by_class: self.compression_by_class(),
            #[cfg(not(feature = "compress"))]
            compression_by_class: Vec::new(),
            ttl: {
                a.tracker.expire(self.inner.clock.now_ms());
                a.tracker.ttl_report()
            },
            cold_keys: self
                .cold_keys(crate::report::COLD_WINDOW, 5)
                .iter()
                .map(ColdKeySummary::new)
                .collect(),
            tier_cold_keys: self
                .inner
                .tier_analytics
                .iter()
                .map(|t| {
                    let cold = t.cold_keys(5).iter().map(ColdKeySummary::new).collect();
                    (t.tier().to_string(), cold)
                })
                .collect(),
            hit_ratio: if asked == 0 {
                0.0
            } else {
                answered as f64 / asked as f64
            },
        })
    }

    /// Up to `limit` keys of the cache that nothing has read or written for
    /// `window`, coldest first (feature `analytics`, with analytics on;
    /// empty otherwise). Only followed keys are seen: one in 1024 by
    /// default, every key with
    /// [`entry_tracking(1)`](crate::CacheBuilder::entry_tracking). A key
    /// followed has every hit and write seen, so one reported cold really
    /// was untouched; it may live in any tier (the hot tier may have
    /// evicted it to the tiers below).
    #[cfg(feature = "analytics")]
    pub fn cold_keys(&self, window: Duration, limit: usize) -> Vec<cache_analytics::ColdKey> {
        let Some(a) = &self.inner.hot_analytics else {
            return Vec::new();
        };
        let now = self.inner.clock.now_ms();
        a.tracker.expire(now);
        a.tracker.cold(now, window, limit)
    }

    /// Starts a background task on the current tokio runtime that removes,
    /// every `every`, what the followed entries' metadata makes eligible
    /// under `policy` (expired, idle past its threshold, or too large), at
    /// most `policy.max_per_run` entries a run, from every tier below
    /// memory (the hot tier evicts on its own). Only followed entries are
    /// seen: one key in 1024 by default, every key with
    /// [`entry_tracking(1)`](crate::CacheBuilder::entry_tracking). `None`
    /// when analytics is off or there is no tier below memory. Stop it with
    /// [`CleanupHandle::stop`](cache_analytics::CleanupHandle::stop).
    #[cfg(feature = "analytics")]
    pub fn spawn_cleanup(
        &self,
        every: Duration,
        policy: cache_analytics::CleanupPolicy,
    ) -> Option<cache_analytics::CleanupHandle> {
        let a = self.inner.hot_analytics.as_ref()?;
        if self.inner.tiers.is_empty() {
            return None;
        }
        let below =
            crate::tier::BelowMemory(self.inner.tiers.iter().map(|t| t.backend.clone()).collect());
        Some(cache_analytics::spawn_cleanup(
            a.tracker.clone(),
            Arc::new(below),
            self.inner.clock.clone(),
            every,
            policy,
        ))
    }

    /// Writes every tier's figures through the `metrics` crate, under the
    /// names listed in `docs/metrics.md` (feature `analytics`, with
    /// analytics on): requests by tier, operation and result, latency
    /// percentiles, entries and bytes. Call it before each scrape, or on a
    /// timer; recording on the call path would cost more than the analytics
    /// itself.
    #[cfg(feature = "analytics")]
    pub async fn emit_metrics(&self) {
        use cache_analytics::{Op, OpStats, ResultCounts, TierStats};
        let Some(a) = &self.inner.hot_analytics else {
            return;
        };
        let counts = self.tier_stats();
        let hot = &counts[0];
        let ops = Op::ALL
            .iter()
            .map(|&op| {
                let (results, latency) = match op {
                    Op::Get => (
                        ResultCounts {
                            hit: hot.hits,
                            miss: hot.misses,
                            ..ResultCounts::default()
                        },
                        a.get_latency.snapshot(),
                    ),
                    Op::Insert => (
                        ResultCounts {
                            ok: a.inserts(),
                            ..ResultCounts::default()
                        },
                        a.insert_latency.snapshot(),
                    ),
                    _ => Default::default(),
                };
                OpStats {
                    op,
                    results,
                    latency,
                }
            })
            .collect();
        // Hits and inserts per class, by class name.
        let mut classes: std::collections::BTreeMap<String, cache_analytics::ClassStats> =
            Default::default();
        let name = |i: u16| crate::report::slot_name(i, |i| self.inner.class_names.class(i));
        for (i, n) in a.class_hits(hot.hits) {
            let c = classes.entry(name(i)).or_default();
            c.hits = n;
        }
        for (i, n) in a.class_inserts() {
            let c = classes.entry(name(i)).or_default();
            c.inserts = n;
        }
        cache_analytics::emit_metrics(&TierStats {
            tier: "hot".into(),
            ops,
            classes: classes
                .into_iter()
                .map(|(class, stats)| cache_analytics::ClassStats { class, ..stats })
                .collect(),
            entries: Some(self.inner.hot.entry_count()),
            bytes: None,
            removals: Some(self.hot_removals(a)),
        });
        for tier in &self.inner.tier_analytics {
            tier.emit().await;
        }
        #[cfg(feature = "compress")]
        for (class, ratio) in self.compression_by_class() {
            cache_analytics::set_compression_ratio(&class, ratio);
        }
    }

    /// What the hot tier evicted and expired, in all and per class name.
    #[cfg(feature = "analytics")]
    fn hot_removals(&self, a: &crate::report::HotAnalytics) -> cache_analytics::RemovalStats {
        let mut classes: Vec<cache_analytics::ClassRemovalStats> = a
            .removals_by_class()
            .into_iter()
            .map(|(i, evicted, expired)| cache_analytics::ClassRemovalStats {
                class: crate::report::slot_name(i, |i| self.inner.class_names.class(i)),
                evicted,
                expired,
            })
            .collect();
        classes.sort_by(|x, y| x.class.cmp(&y.class));
        cache_analytics::RemovalStats {
            evicted: self.inner.hot.engine.evicted_count(),
            expired: self.inner.hot.engine.expired_count(),
            classes,
        }
    }

    /// Stored ÷ original bytes per data class, over every tier the builder
    /// compressed (feature `compress`), by class name.
    #[cfg(feature = "compress")]
    pub fn compression_by_class(&self) -> Vec<(String, f64)> {
        let mut by: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (_, stats) in self.compression_stats() {
            for c in stats.classes {
                let held = by.entry(c.class).or_default();
                held.0 += c.bytes_in;
                held.1 += c.bytes_out;
            }
        }
        by.into_iter()
            .filter(|(_, (given, _))| *given > 0)
            .map(|(class, (given, stored))| (class, stored as f64 / given as f64))
            .collect()
    }
}
