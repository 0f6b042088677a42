//! Analytics of the typed cache (feature `analytics`): the hot tier's own
//! counters, latencies and hot keys, and the readable snapshot of every
//! tier, [`CacheStats`].

use std::fmt::Write as _;
use std::time::Duration;

use cache_analytics::{
    ClassRemovalStats, EntryTracker, HotKeys, LatencyHistogram, LatencySummary, TrackerSettings,
    TtlReport,
};
use cache_core::StripedCounters;
use serde::Serialize;

use crate::stats::HierarchyStats;

/// The named classes the hot tier counts one by one: class numbers 1 to
/// this. Classes are numbered in the order the cache first sees them.
const NAMED_SLOTS: u16 = 31;
/// The slot that counts every class numbered past [`NAMED_SLOTS`], reported
/// under [`OTHER_CLASSES`](cache_analytics::OTHER_CLASSES) as the byte
/// tiers' class counters report theirs: under the name of any one class it
/// would credit that class with the others' counts.
pub(crate) const OTHER_SLOT: u16 = NAMED_SLOTS + 1;
/// Slot 0 (the default class, or a total), the named slots, and the shared
/// one.
const CLASS_SLOTS: usize = OTHER_SLOT as usize + 1;

/// The slot that counts class number `class`.
#[inline]
fn slot(class: u16) -> usize {
    usize::from(class.min(OTHER_SLOT))
}

/// The name the hot tier's figures for slot `slot` (a number from
/// [`HotAnalytics`]'s per-class figures) are reported under: the class's
/// own name, from `class` (the cache's class names by number), or
/// [`OTHER_CLASSES`](cache_analytics::OTHER_CLASSES) for [`OTHER_SLOT`],
/// which counts every class from that number up.
pub(crate) fn slot_name(slot: u16, class: impl FnOnce(u16) -> cache_core::DataClass) -> String {
    if slot >= OTHER_SLOT {
        cache_analytics::OTHER_CLASSES.to_string()
    } else {
        class(slot).as_str().to_string()
    }
}
/// The default sampling, (hot tier, byte tiers): one call in this many is
/// timed, and one lookup in this many feeds the hot-key sketch. A sampled
/// hot lookup costs about a microsecond (two clock reads, the key's
/// encoding, two short locks, and the cache misses of touching them) on a
/// path that takes under a hundred nanoseconds; one in 1024 keeps that to
/// about a nanosecond on average (measured: one in 256 cost 2-3% of a hot
/// hit on two cores). A byte tier's call takes microseconds, so one in 16
/// costs it nothing measurable.
pub(crate) const DEFAULT_SAMPLING: (u32, u32) = (1024, 16);
/// By default one key in this many (a power of two) has its entries' use followed (hits,
/// misses, expiry) for TTL effectiveness and cleanup. A hot hit of a followed key encodes the
/// key and takes a short lock, so the share is kept small.
const TRACKED_ONE_IN: u64 = 1024;
/// Keys the hot-key sketch follows.
const TOP_K: usize = 100;

/// The hot tier's analytics: what its own counters in `Cache` do not keep.
pub(crate) struct HotAnalytics {
    /// One call in `sample_mask + 1` is sampled: a call whose running
    /// count (per thread, from the lookup or insert counter) has these
    /// bits clear.
    pub(crate) sample_mask: u64,
    pub(crate) get_latency: LatencyHistogram,
    pub(crate) insert_latency: LatencyHistogram,
    pub(crate) hot_keys: HotKeys,
    /// Hits per named class, by the hot tier's class number. The default
    /// class (number 0) is not counted here: its hits are the hot tier's
    /// hits less these. Slot 0 counts inserts instead. Striped (measured:
    /// a single shared counter cost a third of a hot hit's throughput on
    /// two cores).
    class_hits: StripedCounters<CLASS_SLOTS>,
    /// Inserts per named class, by class number, like `class_hits` (slot
    /// 0 unused: the default class's are the inserts less these).
    class_inserts: StripedCounters<CLASS_SLOTS>,
    /// Per class number, entries the hot tier evicted (at `2 * class`)
    /// and expired (at `2 * class + 1`), from its removal listener.
    removals: StripedCounters<{ 2 * CLASS_SLOTS }>,
    /// Metadata of a sample of the entries, for TTL effectiveness. The
    /// cache picks the sample itself, by a hash of the typed key, so that
    /// keys outside it are never encoded for the tracker.
    pub(crate) tracker: std::sync::Arc<EntryTracker>,
    /// A key is followed when its hash has these bits clear: one key in
    /// (mask + 1), a power of two, so that deciding takes no division.
    follow_mask: u64,
    key_hasher: foldhash::fast::FixedState,
}

impl HotAnalytics {
    /// Analytics sampling one call in `sample` (rounded up to a power of
    /// two), following one key in `follow` (by default one in 1024, or
    /// every key when every call is sampled).
    pub(crate) fn new(sample: u32, follow: Option<u64>) -> Self {
        HotAnalytics {
            sample_mask: u64::from(sample.max(1))
                .checked_next_power_of_two()
                .map_or(u64::MAX >> 1, |n| n - 1),
            get_latency: LatencyHistogram::new(),
            insert_latency: LatencyHistogram::new(),
            hot_keys: HotKeys::new(TOP_K),
            class_hits: StripedCounters::new(),
            removals: StripedCounters::new(),
            class_inserts: StripedCounters::new(),
            tracker: std::sync::Arc::new(EntryTracker::new(TrackerSettings {
                sample_one_in: 1,
                ..TrackerSettings::default()
            })),
            // Sampling every call follows every entry too.
            follow_mask: match follow {
                Some(n) => n.max(1).checked_next_power_of_two().unwrap_or(1 << 63) - 1,
                None if sample <= 1 => 0,
                None => TRACKED_ONE_IN - 1,
            },
            key_hasher: foldhash::fast::FixedState::with_seed(0x666f_6c6c_6f77),
        }
    }

    /// Whether the tracker follows `key`'s entries.
    #[inline]
    pub(crate) fn follows<K: std::hash::Hash>(&self, key: &K) -> bool {
        use std::hash::BuildHasher;
        self.follow_mask == 0 || self.key_hasher.hash_one(key) & self.follow_mask == 0
    }

    /// Counts an insert, returning the running count of this thread's
    /// copy of the counter before it (for sampling).
    #[inline]
    pub(crate) fn insert(&self) -> u64 {
        self.class_hits.add_and_fetch_stripe(0, 1)
    }

    /// Inserts counted.
    pub(crate) fn inserts(&self) -> u64 {
        self.class_hits.get(0)
    }

    /// Counts a hot hit of an entry of class number `class`.
    #[inline]
    pub(crate) fn hit(&self, class: u16) {
        if class == 0 {
            return;
        }
        self.class_hits.add(slot(class), 1);
    }

    /// Counts an entry of class number `class` that the hot tier removed
    /// on its own: evicted for room or expired.
    pub(crate) fn removed(&self, class: u16, cause: cache_backends::memory::RemovalCause) {
        use cache_backends::memory::RemovalCause;
        let slot = slot(class);
        match cause {
            RemovalCause::Size => self.removals.add(2 * slot, 1),
            RemovalCause::Expired => self.removals.add(2 * slot + 1, 1),
            _ => {}
        }
    }

    /// Evictions and expirations per slot, for the slots that had any. Name
    /// them with [`slot_name`]: [`OTHER_SLOT`] stands for every class
    /// numbered from it up.
    pub(crate) fn removals_by_class(&self) -> Vec<(u16, u64, u64)> {
        let counts = self.removals.snapshot();
        counts
            .chunks(2)
            .enumerate()
            .filter(|(_, c)| c[0] > 0 || c[1] > 0)
            .map(|(i, c)| (i as u16, c[0], c[1]))
            .collect()
    }

    /// Counts an insert of an entry of the named class number `class`.
    #[inline]
    pub(crate) fn inserted_class(&self, class: u16) {
        self.class_inserts.add(slot(class), 1);
    }

    /// Inserts per slot, the default class's being what the named ones
    /// leave of all inserts. Name them with [`slot_name`].
    pub(crate) fn class_inserts(&self) -> Vec<(u16, u64)> {
        per_class(self.class_inserts.snapshot(), self.inserts())
    }

    /// Hits per slot, given the hot tier's `hits` in all: the default
    /// class's are what the named ones leave. Name them with
    /// [`slot_name`]: [`OTHER_SLOT`] stands for every class numbered from
    /// it up.
    pub(crate) fn class_hits(&self, hits: u64) -> Vec<(u16, u64)> {
        per_class(self.class_hits.snapshot(), hits)
    }
}

/// Counts per class number from named-class counters (slot 0 ignored) and
/// the total: the default class (number 0) gets what the named ones leave.
/// Classes at zero are left out.
fn per_class(mut named: [u64; CLASS_SLOTS], total: u64) -> Vec<(u16, u64)> {
    named[0] = 0;
    let default = total.saturating_sub(named.iter().sum());
    std::iter::once((0, default))
        .chain(
            named
                .into_iter()
                .enumerate()
                .skip(1)
                .map(|(i, n)| (i as u16, n)),
        )
        .filter(|&(_, n)| n > 0)
        .collect()
}

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
    /// The key as the byte tiers store it, shown as [`HotKey::key`] is.
    pub key: String,
    /// When it was last read or written, in unix milliseconds.
    pub last_touch_ms: u64,
}

impl ColdKeySummary {
    pub(crate) fn new(cold: &cache_analytics::ColdKey) -> Self {
        ColdKeySummary {
            key: HotKey::new(&cold.key, 0).key,
            last_touch_ms: cold.last_touch_ms,
        }
    }
}

/// A key among the hottest, with its estimated count of sampled lookups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HotKey {
    /// The key as the byte tiers store it, shown as text where it is
    /// printable, otherwise in hex.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Forty named classes, class `c` hit, inserted and evicted `c` times:
    /// the first 31 keep their own counts and names, and the rest are
    /// counted together and named `other`. The last slot used to hold
    /// classes 31 to 40 together, reported under class 31's name.
    #[test]
    fn classes_past_the_named_slots_are_counted_and_named_as_other() {
        use cache_backends::memory::RemovalCause;
        let a = HotAnalytics::new(1, None);
        let mut hits = 0;
        for c in 1..=40u16 {
            for _ in 0..c {
                a.hit(c);
                a.insert();
                a.inserted_class(c);
                a.removed(c, RemovalCause::Size);
                hits += 1;
            }
        }
        let shared: u64 = (32..=40).sum();
        let name = |slot| slot_name(slot, |i| cache_core::DataClass::named(&format!("c{i}")));
        let named = |counts: Vec<(u16, u64)>| -> Vec<(String, u64)> {
            counts.into_iter().map(|(i, n)| (name(i), n)).collect()
        };
        let mut expected: Vec<(String, u64)> = (1..=31u16)
            .map(|c| (format!("c{c}"), u64::from(c)))
            .collect();
        expected.push(("other".to_string(), shared));
        assert_eq!(named(a.class_hits(hits)), expected);
        assert_eq!(named(a.class_inserts()), expected);
        let removals: Vec<(String, u64)> = a
            .removals_by_class()
            .into_iter()
            .map(|(i, evicted, expired)| {
                assert_eq!(expired, 0);
                (name(i), evicted)
            })
            .collect();
        assert_eq!(removals, expected);
        // The default class keeps its own name.
        assert_eq!(slot_name(0, |_| cache_core::DataClass::Default), "default");
    }

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
        };
        let text = stats.report();
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
