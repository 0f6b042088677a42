//! The observer with the `analytics` feature: the hot tier's sampled
//! latencies, hot keys, class counts and followed entries.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cache_analytics::{EntryTracker, HotKeys, LatencyHistogram, TrackerSettings};
use cache_backends::memory::RemovalCause;
use cache_core::{Clock, Meta, StripedCounters};
use parking_lot::Mutex;

use super::KeyEncoder;

/// Which latency a sampled call records.
#[derive(Clone, Copy)]
enum Sampled {
    Lookup,
    Insert,
}

/// A call being timed, if it is sampled.
pub(crate) struct Sample(Option<(Instant, Sampled)>);

/// What the hot path tells analytics; `analytics` is `None` when the
/// builder turned analytics off, and then every method returns at once.
pub(crate) struct Observer<K> {
    /// A copy of the analytics' sampling mask (all bits set without
    /// analytics), kept here so that a lookup that is not sampled reads
    /// nothing behind the analytics pointer.
    sample_mask: u64,
    analytics: Option<Arc<HotAnalytics>>,
    clock: Clock,
    encode: KeyEncoder<K>,
    /// The typed keys of the lookups sampled for the hot-key sketch, by
    /// their bytes, so that reports name hot keys as the application wrote
    /// them. Bounded: forgotten all at once past [`TYPED_KEYS`] (the hot
    /// ones are sampled again soon).
    typed: Arc<Mutex<HashMap<Bytes, K>>>,
}

/// The most typed keys the observer keeps for naming hot keys.
const TYPED_KEYS: usize = 4 * TOP_K;

impl<K> Clone for Observer<K> {
    fn clone(&self) -> Self {
        Observer {
            sample_mask: self.sample_mask,
            analytics: self.analytics.clone(),
            clock: self.clock.clone(),
            encode: self.encode.clone(),
            typed: self.typed.clone(),
        }
    }
}

impl<K: std::hash::Hash + Clone> Observer<K> {
    pub(crate) fn new(clock: Clock, encode: KeyEncoder<K>) -> Self {
        Observer {
            sample_mask: u64::MAX,
            analytics: None,
            clock,
            encode,
            typed: Arc::default(),
        }
    }

    /// The key the application wrote as `kb`, if a sampled lookup saw it.
    pub(crate) fn typed_key(&self, kb: &[u8]) -> Option<K> {
        self.typed.lock().get(kb).cloned()
    }

    /// The observer feeding `analytics`.
    pub(crate) fn with(mut self, analytics: Option<Arc<HotAnalytics>>) -> Self {
        self.sample_mask = analytics.as_ref().map_or(u64::MAX, |a| a.sample_mask);
        self.analytics = analytics;
        self
    }

    /// Whether analytics is on, so that events are worth reporting.
    pub(crate) fn is_on(&self) -> bool {
        self.analytics.is_some()
    }

    /// What it gathered, for the reports.
    pub(crate) fn analytics(&self) -> Option<&HotAnalytics> {
        self.analytics.as_deref()
    }

    /// Starts a lookup whose thread's running lookup count is
    /// `running_count`. One lookup in the sampling rate is timed and its
    /// key fed to the hot-key sketch: the count decides which, so analytics
    /// adds no work of its own to the lookups it does not sample.
    #[inline(always)]
    pub(crate) fn start_lookup(&self, running_count: u64, key: &K) -> Sample {
        if running_count & self.sample_mask != 0 {
            return Sample(None);
        }
        match &self.analytics {
            Some(a) => self.sample_lookup(a, key),
            None => Sample(None),
        }
    }

    /// The sampled lookup's start, out of line so that the lookup's own
    /// code stays small.
    #[cold]
    #[inline(never)]
    fn sample_lookup(&self, a: &HotAnalytics, key: &K) -> Sample {
        if let Some(kb) = (self.encode)(key) {
            a.hot_keys.try_record(&kb);
            let mut typed = self.typed.lock();
            if typed.len() >= TYPED_KEYS && !typed.contains_key(&kb) {
                typed.clear();
            }
            typed.insert(kb, key.clone());
        }
        Sample(Some((Instant::now(), Sampled::Lookup)))
    }

    /// Counts an insert of an entry of class number `class` (valid or
    /// not) and, for one in the sampling rate (by the running count the
    /// insert counter returns), starts timing it.
    #[inline(always)]
    pub(crate) fn start_insert(&self, class: u16) -> Sample {
        let Some(a) = &self.analytics else {
            return Sample(None);
        };
        if class != 0 {
            a.inserted_class(class);
        }
        if a.insert() & a.sample_mask == 0 {
            Sample(Some((Instant::now(), Sampled::Insert)))
        } else {
            Sample(None)
        }
    }

    /// Records a sampled call's latency, if the call was sampled.
    #[inline(always)]
    pub(crate) fn done(&self, sample: Sample) {
        if let Some((started, op)) = sample.0 {
            self.record_latency(started, op);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_latency(&self, started: Instant, op: Sampled) {
        let elapsed = started.elapsed();
        if let Some(a) = &self.analytics {
            match op {
                Sampled::Lookup => a.get_latency.record_duration(elapsed),
                Sampled::Insert => a.insert_latency.record_duration(elapsed),
            }
        }
    }

    /// Whether the entry tracker follows `key`'s entries.
    #[inline]
    pub(crate) fn follows(&self, key: &K) -> bool {
        self.analytics.as_ref().is_some_and(|a| a.follows(key))
    }

    /// A hit in the hot tier of an entry of class number `class`;
    /// `followed` is the slot's own note that the tracker follows the key.
    #[inline]
    pub(crate) fn on_hot_hit(&self, key: &K, class: u16, followed: bool) {
        if let Some(a) = &self.analytics {
            a.hit(class);
            if followed {
                self.followed(key, None, Event::Hit);
            }
        }
    }

    /// A hit below the hot tier.
    #[inline]
    pub(crate) fn on_hit(&self, key: &K, kb: &Bytes) {
        if self.follows(key) {
            self.followed(key, Some(kb), Event::Hit);
        }
    }

    /// A lookup that no tier answered.
    #[inline]
    pub(crate) fn on_miss(&self, key: &K, kb: Option<&Bytes>) {
        if self.follows(key) {
            self.followed(key, kb, Event::Miss);
        }
    }

    /// A miss that makes the loader run.
    #[inline]
    pub(crate) fn on_load(&self, key: &K) {
        self.on_miss(key, None);
    }

    /// An insert about to be stored (counted by
    /// [`start_insert`](Self::start_insert)); `size` gives the encoded
    /// value's length, asked only for a followed key. Returns whether the
    /// key is followed, for the slot to remember.
    #[inline]
    pub(crate) fn on_insert(
        &self,
        key: &K,
        kb: Option<&Bytes>,
        size: impl FnOnce() -> Option<usize>,
        meta: &Meta,
    ) -> bool {
        let Some(a) = &self.analytics else {
            return false;
        };
        if !a.follows(key) {
            return false;
        }
        self.followed_insert(a, key, kb, size(), meta);
        true
    }

    #[cold]
    #[inline(never)]
    fn followed_insert(
        &self,
        a: &HotAnalytics,
        key: &K,
        kb: Option<&Bytes>,
        size: Option<usize>,
        meta: &Meta,
    ) {
        let Some(kb) = kb.cloned().or_else(|| (self.encode)(key)) else {
            return;
        };
        let now = self.clock.now_ms();
        a.tracker
            .on_insert(&kb, size.unwrap_or(0) as u64, meta, now);
    }

    /// A removal by the application.
    #[inline]
    pub(crate) fn on_remove(&self, key: &K, kb: Option<&Bytes>) {
        if self.follows(key) {
            self.followed(key, kb, Event::Removed);
        }
    }

    /// An entry of class number `class` that the hot tier let go of on its
    /// own (from its removal listener).
    #[inline]
    pub(crate) fn on_evict(&self, class: u16, cause: RemovalCause) {
        if let Some(a) = &self.analytics {
            a.removed(class, cause);
        }
    }

    /// Reports an event of a followed key to the entry tracker, out of
    /// line: few keys are followed.
    #[cold]
    #[inline(never)]
    fn followed(&self, key: &K, kb: Option<&Bytes>, event: Event) {
        let Some(a) = &self.analytics else {
            return;
        };
        let Some(kb) = kb.cloned().or_else(|| (self.encode)(key)) else {
            return;
        };
        let now = self.clock.now_ms();
        match event {
            Event::Hit => a.tracker.on_hit(&kb, now),
            Event::Miss => a.tracker.on_miss(&kb, now),
            Event::Removed => a.tracker.on_remove(&kb),
        }
    }
}

/// What happened to a followed key.
#[derive(Clone, Copy)]
enum Event {
    Hit,
    Miss,
    Removed,
}

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
}
