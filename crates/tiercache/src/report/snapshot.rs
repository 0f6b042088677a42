//! The snapshot of the whole cache (feature `analytics`): [`CacheStats`]
//! and its parts, [`Cache::stats`], the metrics, cold keys and the cleanup
//! task.

use std::fmt::Write as _;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use cache_analytics::{ClassRemovalStats, LatencySummary, TtlReport};
use cache_core::Codec;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HierarchyStats;
use crate::cache::Cache;
use crate::observe::{HotAnalytics, slot_name};

/// One tier in [`CacheStats`].
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TierSummary {
    /// `"hot"`, or the byte tier's name.
    pub name: String,
    /// Lookups this tier answered.
    pub hits: u64,
    /// Lookups it could not answer.
    pub misses: u64,
    /// Calls that failed and were skipped.
    pub errors: u64,
    /// Hits ÷ lookups, 0 when there were none.
    pub hit_ratio: f64,
    /// Lookup latency, nanoseconds, from the sampled calls.
    pub get_latency: LatencySummary,
    /// Insert latency, nanoseconds, from the sampled calls.
    pub insert_latency: LatencySummary,
    /// Entries held, when the tier could say.
    pub entries: Option<u64>,
    /// Bytes held, when known (estimated for byte tiers from the mean value
    /// size written).
    pub bytes: Option<u64>,
    /// Stored ÷ original bytes of the values the tier stored compressed,
    /// when it compresses.
    pub compression_ratio: Option<f64>,
    /// Entries the tier evicted for room, when it can tell (the hot tier,
    /// redb and memory tiers; Redis with removal tracking on).
    pub evictions: Option<u64>,
    /// Expired entries the tier deleted, when it can tell.
    pub expirations: Option<u64>,
    /// Evictions and expirations per data class, where the tier knew the
    /// class.
    pub removals_by_class: Vec<ClassRemovalStats>,
    /// Hits per data class.
    pub class_hits: Vec<(String, u64)>,
    /// Entries stored per data class.
    pub class_inserts: Vec<(String, u64)>,
}

/// How long a key must go untouched to be among [`CacheStats::cold_keys`].
pub const COLD_WINDOW: Duration = Duration::from_secs(300);

/// A key gone cold: untouched since `last_touch_ms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ColdKeySummary {
    /// The key, shown as [`HotKey::key`] is.
    pub key: String,
    /// When it was last read or written, in unix milliseconds.
    pub last_touch_ms: u64,
}

/// A key among the hottest, with its estimated count of sampled lookups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotKey {
    /// The key as the application wrote it: the `Debug` form of the typed
    /// key. Bytes that do not decode as a key (written by another cache
    /// sharing a tier) are shown as text where printable, otherwise in hex.
    pub key: String,
    /// Sampled lookups of it (about one in the sampling rate of all).
    pub count: u64,
}

impl HotKey {
    pub(crate) fn new(key: &[u8], count: u64) -> Self {
        let printable = key.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
        let key = if printable && !key.is_empty() {
            String::from_utf8_lossy(key).into_owned()
        } else {
            key.iter().fold(String::from("0x"), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
        };
        HotKey { key, count }
    }
}

/// A snapshot of the whole cache, from [`Cache::stats`](crate::Cache::stats):
/// serializable with serde, and printable with [`report`](Self::report).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CacheStats {
    /// The hot tier, then each byte tier in order.
    pub tiers: Vec<TierSummary>,
    /// The hottest keys of the hot tier's lookups, hottest first.
    pub hot_keys: Vec<HotKey>,
    /// Promotions and demotions between tiers.
    pub hierarchy: HierarchyStats,
    /// Stored ÷ original bytes per data class over the compressed tiers.
    pub compression_by_class: Vec<(String, f64)>,
    /// Keys of the cache untouched for [`COLD_WINDOW`], coldest first (at
    /// most five), among the followed sample of entries (one key in 1024
    /// by default): every hit and write of a followed key is seen, so
    /// these really were idle. They may live in any tier.
    pub cold_keys: Vec<ColdKeySummary>,
    /// Keys each byte tier saw untouched for its analytics layer's cold
    /// window, by tier name (at most five per tier).
    pub tier_cold_keys: Vec<(String, Vec<ColdKeySummary>)>,
    /// TTL effectiveness over the followed sample of entries (one key in
    /// 1024 by default): the share that expired unused, and the share of misses on keys
    /// that had just expired.
    pub ttl: TtlReport,
    /// Lookups answered by some tier ÷ all lookups.
    pub hit_ratio: f64,
    /// Negative hits, remembered errors, refreshes, stale answers, load
    /// timeouts and bypasses.
    pub load: crate::LoadStats,
}

impl CacheStats {
    /// The snapshot as a text table: per tier, the hit ratio, p50/p95/p99
    /// lookup latency, entries, bytes and compression ratio; then the top
    /// five hot keys.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "cache hit ratio {:.2} %", self.hit_ratio * 100.0);
        let _ = writeln!(
            out,
            "{:<8} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8} {:>9} {:>9}",
            "tier", "hit %", "p50", "p95", "p99", "entries", "bytes", "ratio", "evicted", "expired"
        );
        for t in &self.tiers {
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            let _ = writeln!(
                out,
                "{:<8} {:>8.2} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8} {:>9} {:>9}",
                t.name,
                t.hit_ratio * 100.0,
                nanos(t.get_latency.p50),
                nanos(t.get_latency.p95),
                nanos(t.get_latency.p99),
                opt(t.entries),
                opt(t.bytes),
                t.compression_ratio
                    .map_or("-".to_string(), |r| format!("{r:.2}")),
                opt(t.evictions),
                opt(t.expirations),
            );
        }
        let _ = writeln!(
            out,
            "ttl: {:.1} % of {} sampled entries expired unused; {:.1} % of {} sampled misses fell on a key expired in the last 5 minutes",
            self.ttl.expired_unused_share() * 100.0,
            self.ttl.expired,
            self.ttl.misses_after_expiry_share() * 100.0,
            self.ttl.misses
        );
        let l = &self.load;
        if *l != crate::LoadStats::default() {
            let _ = writeln!(
                out,
                "loads: {} negative hits, {} negative entries stored, {} errors remembered, \
                 {} refreshes ({} failed), {} stale answers, {} load timeouts, \
                 {} lookups and {} writes bypassed",
                l.negative_hits,
                l.negatives_stored,
                l.errors_cached,
                l.refreshes,
                l.refreshes_failed,
                l.stale_served,
                l.load_timeouts,
                l.bypassed_gets,
                l.bypassed_sets,
            );
        }
        if !self.compression_by_class.is_empty() {
            out.push_str("compression by class:");
            for (class, ratio) in &self.compression_by_class {
                let _ = write!(out, " {class} {ratio:.2}");
            }
            out.push('\n');
        }
        if !self.hot_keys.is_empty() {
            out.push_str("hot keys:");
            for k in self.hot_keys.iter().take(5) {
                let _ = write!(out, " {} ({})", k.key, k.count);
            }
            out.push('\n');
        }
        if !self.cold_keys.is_empty() {
            let _ = write!(
                out,
                "cold keys (untouched {} s, sampled):",
                COLD_WINDOW.as_secs()
            );
            for k in &self.cold_keys {
                let _ = write!(out, " {}", k.key);
            }
            out.push('\n');
        }
        out
    }
}

/// `1.2 µs`-style text for nanoseconds.
fn nanos(ns: u64) -> String {
    let d = Duration::from_nanos(ns);
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", d.as_secs_f64() * 1e3),
    }
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// A snapshot of every tier (feature `analytics`, with analytics on):
    /// hits, misses and errors, lookup and insert latency percentiles,
    /// entries, bytes and compression ratio, hits per class, evictions and
    /// expirations of the hot tier, and the hottest and coldest keys, named
    /// as the application wrote them (their `Debug` form). Asks each byte
    /// tier for its entry count. `None` when analytics is off.
    pub async fn stats(&self) -> Option<CacheStats>
    where
        K: std::fmt::Debug,
    {
        use cache_analytics::Op;
        let inner = self.inner();
        let a = inner.observer.analytics()?;
        let counts = self.tier_stats();
        let hot = &counts[0];
        let class_hits = self.class_named(a.class_hits(hot.hits));
        let class_inserts = self.class_named(a.class_inserts());
        let mut tiers = vec![TierSummary {
            name: hot.name.clone(),
            hits: hot.hits,
            misses: hot.misses,
            errors: 0,
            hit_ratio: hot.hit_ratio(),
            get_latency: a.get_latency.snapshot(),
            insert_latency: a.insert_latency.snapshot(),
            entries: Some(inner.hot.entry_count()),
            bytes: None,
            compression_ratio: None,
            evictions: Some(inner.hot.engine.evicted_count()),
            expirations: Some(inner.hot.engine.expired_count()),
            removals_by_class: self.hot_removals(a).classes,
            class_hits,
            class_inserts,
        }];
        let mut tier_cold_keys = Vec::new();
        for (counted, tier) in counts[1..].iter().zip(inner.tiers.iter()) {
            // With analytics on, the builder wrapped every tier in it.
            let Some(analysed) = tier.analytics() else {
                continue;
            };
            let cold = analysed
                .cold_keys(5)
                .iter()
                .map(|k| self.cold_summary(k))
                .collect();
            tier_cold_keys.push((tier.name().to_string(), cold));
            let stats = analysed.stats_with_entries().await;
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
                compression_ratio: compression_ratio(tier),
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
                .map(|(k, count)| HotKey {
                    key: self.key_text(&k),
                    count,
                })
                .collect(),
            hierarchy: self.hierarchy_stats(),
            compression_by_class: self.compression_ratios_by_class(),
            ttl: {
                a.tracker.expire(inner.clock.now_ms());
                a.tracker.ttl_report()
            },
            cold_keys: self
                .cold_keys(COLD_WINDOW, 5)
                .iter()
                .map(|k| self.cold_summary(k))
                .collect(),
            tier_cold_keys,
            hit_ratio: if asked == 0 {
                0.0
            } else {
                answered as f64 / asked as f64
            },
            load: self.load_stats(),
        })
    }

    /// A key the tiers store as `kb`, as the application wrote it: the
    /// `Debug` form of the typed key, where a sampled lookup saw it, or
    /// else the bytes, as text where printable and in hex otherwise.
    fn key_text(&self, kb: &[u8]) -> String
    where
        K: std::fmt::Debug,
    {
        match self.inner().observer.typed_key(kb) {
            Some(key) => format!("{key:?}"),
            None => HotKey::new(kb, 0).key,
        }
    }

    fn cold_summary(&self, cold: &cache_analytics::ColdKey) -> ColdKeySummary
    where
        K: std::fmt::Debug,
    {
        ColdKeySummary {
            key: self.key_text(&cold.key),
            last_touch_ms: cold.last_touch_ms,
        }
    }

    /// Per-class counts of the hot tier by class name.
    fn class_named(&self, counts: Vec<(u16, u64)>) -> Vec<(String, u64)> {
        let names = &self.inner().class_names;
        counts
            .into_iter()
            .map(|(i, n)| (slot_name(i, |i| names.class(i)), n))
            .collect()
    }

    #[cfg(feature = "compress")]
    fn compression_ratios_by_class(&self) -> Vec<(String, f64)> {
        self.compression_by_class()
    }

    #[cfg(not(feature = "compress"))]
    fn compression_ratios_by_class(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// Up to `limit` keys of the cache that nothing has read or written for
    /// `window`, coldest first (feature `analytics`, with analytics on;
    /// empty otherwise). Only followed keys are seen: one in 1024 by
    /// default, every key with
    /// [`entry_tracking(1)`](crate::CacheBuilder::entry_tracking). A key
    /// followed has every hit and write seen, so one reported cold really
    /// was untouched; it may live in any tier (the hot tier may have
    /// evicted it to the tiers below).
    pub fn cold_keys(&self, window: Duration, limit: usize) -> Vec<cache_analytics::ColdKey> {
        let inner = self.inner();
        let Some(a) = inner.observer.analytics() else {
            return Vec::new();
        };
        let now = inner.clock.now_ms();
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
    pub fn spawn_cleanup(
        &self,
        every: Duration,
        policy: cache_analytics::CleanupPolicy,
    ) -> Option<cache_analytics::CleanupHandle> {
        let inner = self.inner();
        let a = inner.observer.analytics()?;
        if inner.tiers.is_empty() {
            return None;
        }
        let below =
            crate::tiers::BelowMemory(inner.tiers.iter().map(|t| t.backend().clone()).collect());
        Some(cache_analytics::spawn_cleanup(
            a.tracker.clone(),
            Arc::new(below),
            inner.clock.clone(),
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
    pub async fn emit_metrics(&self) {
        use cache_analytics::{Op, OpStats, ResultCounts, TierStats};
        let inner = self.inner();
        #[cfg(feature = "policies")]
        if let Some(stats) = self.write_back_stats() {
            stats.emit();
        }
        #[cfg(feature = "warm")]
        if let Some(prefetcher) = self.prefetcher() {
            prefetcher.emit_metrics();
        }
        let Some(a) = inner.observer.analytics() else {
            return;
        };
        let counts = self.tier_stats();
        let hot = &counts[0];
        let load = self.load_stats();
        emit_load_stats(&load);
        #[cfg(feature = "policies")]
        inner.protect.bypass.rules.emit_metrics();
        let ops = Op::ALL
            .iter()
            .map(|&op| {
                let (results, latency) = match op {
                    Op::Get => (
                        ResultCounts {
                            // A negative entry answers a lookup without a
                            // value: counted on its own, not as a hit.
                            hit: hot.hits.saturating_sub(load.negative_hits),
                            miss: hot.misses,
                            negative: load.negative_hits,
                            bypassed: load.bypassed_gets,
                            ..ResultCounts::default()
                        },
                        a.get_latency.snapshot(),
                    ),
                    Op::Insert => (
                        ResultCounts {
                            ok: a.inserts(),
                            bypassed: load.bypassed_sets,
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
        for (class, n) in self.class_named(a.class_hits(hot.hits)) {
            classes.entry(class).or_default().hits = n;
        }
        for (class, n) in self.class_named(a.class_inserts()) {
            classes.entry(class).or_default().inserts = n;
        }
        cache_analytics::emit_metrics(&TierStats {
            tier: "hot".into(),
            ops,
            classes: classes
                .into_iter()
                .map(|(class, stats)| cache_analytics::ClassStats { class, ..stats })
                .collect(),
            entries: Some(inner.hot.entry_count()),
            bytes: None,
            removals: Some(self.hot_removals(a)),
        });
        for tier in inner.tiers.iter() {
            if let Some(analysed) = tier.analytics() {
                analysed.emit().await;
            }
        }
        for (class, ratio) in self.compression_ratios_by_class() {
            cache_analytics::set_compression_ratio(&class, ratio);
        }
    }

    /// What the hot tier evicted and expired, in all and per class name.
    fn hot_removals(&self, a: &HotAnalytics) -> cache_analytics::RemovalStats {
        let inner = self.inner();
        let names = &inner.class_names;
        let mut classes: Vec<ClassRemovalStats> = a
            .removals_by_class()
            .into_iter()
            .map(|(i, evicted, expired)| ClassRemovalStats {
                class: slot_name(i, |i| names.class(i)),
                evicted,
                expired,
            })
            .collect();
        classes.sort_by(|x, y| x.class.cmp(&y.class));
        cache_analytics::RemovalStats {
            evicted: inner.hot.engine.evicted_count(),
            expired: inner.hot.engine.expired_count(),
            classes,
        }
    }
}

/// The counter of load protection's events, labelled `event` (see
/// `docs/metrics.md`).
pub const LOAD_EVENTS_TOTAL: &str = "tiercache_load_events_total";

/// Writes load protection's counters as [`LOAD_EVENTS_TOTAL`], one
/// `event` label per figure of [`LoadStats`](crate::LoadStats).
fn emit_load_stats(load: &crate::LoadStats) {
    let events = [
        ("negative_hit", load.negative_hits),
        ("negative_stored", load.negatives_stored),
        ("error_cached", load.errors_cached),
        ("cached_error_returned", load.cached_errors_returned),
        ("refresh", load.refreshes),
        ("refresh_failed", load.refreshes_failed),
        ("stale_served", load.stale_served),
        ("load_timeout", load.load_timeouts),
        ("late_load_stored", load.late_loads_stored),
        ("tier_skip", load.tier_skips),
    ];
    for (event, n) in events {
        metrics::counter!(LOAD_EVENTS_TOTAL, "event" => event).absolute(n);
    }
}

/// Stored ÷ original bytes of what `tier` stored compressed, when the
/// builder compressed it and it compressed anything.
#[cfg(feature = "compress")]
fn compression_ratio(tier: &crate::tiers::Tier) -> Option<f64> {
    let stats = tier.compression()?.compression_stats();
    let (stored, given) = stats
        .algorithms
        .iter()
        .fold((0, 0), |(o, i), a| (o + a.bytes_out, i + a.bytes_in));
    (given > 0).then(|| stored as f64 / given as f64)
}

#[cfg(not(feature = "compress"))]
fn compression_ratio(_tier: &crate::tiers::Tier) -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_as_text_or_hex() {
        assert_eq!(HotKey::new(b"user:1", 3).key, "user:1");
        assert_eq!(HotKey::new(&[0, 255], 3).key, "0x00ff");
    }

    #[test]
    fn the_report_has_a_line_per_tier_and_the_hot_keys() {
        let stats = CacheStats {
            tiers: vec![TierSummary {
                name: "hot".into(),
                hit_ratio: 0.5,
                entries: Some(10),
                evictions: Some(7),
                expirations: Some(3),
                ..TierSummary::default()
            }],
            hot_keys: vec![HotKey::new(b"k1", 9), HotKey::new(b"k2", 4)],
            hierarchy: HierarchyStats::default(),
            compression_by_class: vec![("json".into(), 0.25)],
            cold_keys: vec![ColdKeySummary {
                key: "old".into(),
                last_touch_ms: 1,
            }],
            tier_cold_keys: Vec::new(),
            ttl: TtlReport::default(),
            hit_ratio: 0.75,
            load: crate::LoadStats {
                negative_hits: 12,
                refreshes: 3,
                bypassed_sets: 2,
                ..crate::LoadStats::default()
            },
        };
        let text = stats.report();
        assert!(
            text.contains("loads: 12 negative hits")
                && text.contains("3 refreshes (0 failed)")
                && text.contains("0 lookups and 2 writes bypassed"),
            "{text}"
        );
        assert!(text.contains("cache hit ratio 75.00 %"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.starts_with("hot") && l.contains("50.00")),
            "{text}"
        );
        assert!(text.contains("hot keys: k1 (9) k2 (4)"), "{text}");
        assert!(
            text.contains("cold keys (untouched 300 s, sampled): old"),
            "{text}"
        );
        let hot = text.lines().find(|l| l.starts_with("hot ")).unwrap();
        assert!(hot.trim_end().ends_with("7         3"), "{text}");
        assert!(text.contains("compression by class: json 0.25"), "{text}");
    }
}
