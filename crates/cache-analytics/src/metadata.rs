//! Metadata per entry, for a sample of the keys: how each entry was used
//! over its life, and what that says about the cache's settings (TTL
//! effectiveness, compression per class) and about which entries can go
//! (cleanup eligibility).

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Backend, Clock, Meta};
use foldhash::fast::FixedState;
use parking_lot::Mutex;
use serde::Serialize;

use crate::cold::{ColdKey, coldest_first};

/// What the tracker knows of one sampled entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryRecord {
    /// The entry's data class.
    pub class: String,
    /// When it was (last) written, unix milliseconds.
    pub inserted_at_ms: u64,
    /// The time-to-live it was given, milliseconds; `None` never expires.
    pub ttl_ms: Option<u64>,
    /// Its value's size in bytes, as the application gave it.
    pub size: u64,
    /// Its size as stored, if a compression layer reported it.
    pub stored_size: Option<u64>,
    /// Reads that found it since it was written.
    pub accesses: u64,
    /// The last read or write, unix milliseconds.
    pub last_access_ms: u64,
    /// How long after the write the first read came, milliseconds.
    pub first_reuse_ms: Option<u64>,
}

impl EntryRecord {
    fn expires_at_ms(&self) -> Option<u64> {
        self.ttl_ms
            .map(|ttl| self.inserted_at_ms.saturating_add(ttl))
    }
}

/// Why an entry may be removed by a cleanup run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum CleanupReason {
    /// Its time-to-live has passed (a tier may still hold it until its
    /// sweeper gets there).
    Expired,
    /// Not read or written for longer than the idle threshold.
    Idle,
    /// Larger than the tier is meant to hold.
    TooLarge,
}

/// What makes an entry eligible for cleanup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Entries not touched for this long are idle; `None` never.
    pub idle_after: Option<Duration>,
    /// Entries larger than this many bytes (as stored, when known) are too
    /// large; `None` has no bound.
    pub max_entry_bytes: Option<u64>,
    /// The most entries one run removes.
    pub max_per_run: usize,
}

impl Default for CleanupPolicy {
    /// Expired entries only, at most 1,000 per run.
    fn default() -> Self {
        CleanupPolicy {
            idle_after: None,
            max_entry_bytes: None,
            max_per_run: 1_000,
        }
    }
}

/// TTL effectiveness over the sampled entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TtlReport {
    /// Sampled entries that reached their expiry.
    pub expired: u64,
    /// Of those, the ones never read: their TTL kept them for nothing.
    pub expired_unused: u64,
    /// Misses on sampled keys.
    pub misses: u64,
    /// Misses on a key that had expired within the recent-expiry window: a
    /// sign the TTL is shorter than the data's useful life.
    pub misses_after_expiry: u64,
}

impl TtlReport {
    /// The share of expired entries that were never read, 0 when none
    /// expired.
    pub fn expired_unused_share(&self) -> f64 {
        ratio(self.expired_unused, self.expired)
    }

    /// The share of misses that fell on a recently expired key, 0 when
    /// there were no misses.
    pub fn misses_after_expiry_share(&self) -> f64 {
        ratio(self.misses_after_expiry, self.misses)
    }
}

/// Bytes given and bytes stored for one data class's sampled entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCompression {
    /// The class name.
    pub class: String,
    /// Entries whose stored size is known.
    pub entries: u64,
    /// Their sizes as given.
    pub bytes_in: u64,
    /// Their sizes as stored.
    pub bytes_stored: u64,
}

impl ClassCompression {
    /// Stored ÷ given, 1.0 when nothing is known.
    pub fn ratio(&self) -> f64 {
        if self.bytes_in == 0 {
            1.0
        } else {
            self.bytes_stored as f64 / self.bytes_in as f64
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Settings of an [`EntryTracker`].
#[derive(Clone, Debug)]
pub struct TrackerSettings {
    /// Track one key in this many (chosen by a hash of the key, so every
    /// event of a tracked key is seen); 1 tracks every key.
    pub sample_one_in: u64,
    /// The most entries tracked at once; writes of new keys beyond it are
    /// not tracked until room is made.
    pub max_entries: usize,
    /// How long an expired key is remembered, to tell a miss on it from a
    /// miss on a key never cached.
    pub recent_expiry_window: Duration,
    /// The most expired keys remembered at once.
    pub max_recent_expiries: usize,
}

impl Default for TrackerSettings {
    /// One key in 16, at most 100,000 entries, expiries remembered for five
    /// minutes (at most 100,000 of them).
    fn default() -> Self {
        TrackerSettings {
            sample_one_in: 16,
            max_entries: 100_000,
            recent_expiry_window: Duration::from_secs(300),
            max_recent_expiries: 100_000,
        }
    }
}

#[derive(Default)]
struct State {
    entries: HashMap<Bytes, EntryRecord>,
    /// Keys that expired recently, oldest first, with when they expired.
    expired: VecDeque<(Bytes, u64)>,
    expired_at: HashMap<Bytes, u64>,
    report: TtlReport,
}

/// Metadata per entry for a sample of the keys, in bounded memory.
///
/// The cache (or a layer) reports writes, hits, misses, removals and
/// stored sizes; [`expire`](Self::expire) settles the entries whose TTL has
/// passed. From these the tracker derives [`TtlReport`], the compression
/// ratio per class, and the entries a cleanup run may remove.
pub struct EntryTracker {
    settings: TrackerSettings,
    hasher: FixedState,
    state: Mutex<State>,
}

impl EntryTracker {
    /// A tracker with `settings`.
    pub fn new(settings: TrackerSettings) -> Self {
        EntryTracker {
            settings,
            hasher: FixedState::with_seed(0x7472_6163_6b65_7273),
            state: Mutex::new(State::default()),
        }
    }

    /// Whether `key` is in the sample.
    pub fn is_sampled(&self, key: &[u8]) -> bool {
        let one_in = self.settings.sample_one_in.max(1);
        one_in == 1 || self.hasher.hash_one(key).is_multiple_of(one_in)
    }

    /// A write of `key`: `size` bytes with `meta`'s class and expiry, at
    /// `now_ms`. A rewrite starts the entry's life over.
    pub fn on_insert(&self, key: &[u8], size: u64, meta: &Meta, now_ms: u64) {
        if !self.is_sampled(key) {
            return;
        }
        let record = EntryRecord {
            class: meta.class.as_str().to_string(),
            inserted_at_ms: now_ms,
            ttl_ms: meta.expires_at_ms.map(|at| at.saturating_sub(now_ms)),
            size,
            stored_size: None,
            accesses: 0,
            last_access_ms: now_ms,
            first_reuse_ms: None,
        };
        let mut state = self.state.lock();
        let room = state.entries.len() < self.settings.max_entries;
        if let Some(held) = state.entries.get_mut(key) {
            *held = record;
        } else if room {
            state.entries.insert(Bytes::copy_from_slice(key), record);
        }
        // Written again: no longer a recently expired key.
        state.expired_at.remove(key);
    }

    /// The size `key` is stored at, as a compression layer reports it.
    pub fn on_stored_size(&self, key: &[u8], stored: u64) {
        if !self.is_sampled(key) {
            return;
        }
        if let Some(held) = self.state.lock().entries.get_mut(key) {
            held.stored_size = Some(stored);
        }
    }

    /// A read of `key` that found it, at `now_ms`.
    pub fn on_hit(&self, key: &[u8], now_ms: u64) {
        if !self.is_sampled(key) {
            return;
        }
        if let Some(held) = self.state.lock().entries.get_mut(key) {
            held.accesses += 1;
            held.last_access_ms = now_ms;
            if held.first_reuse_ms.is_none() {
                held.first_reuse_ms = Some(now_ms.saturating_sub(held.inserted_at_ms));
            }
        }
    }

    /// A read of `key` that found nothing, at `now_ms`.
    pub fn on_miss(&self, key: &[u8], now_ms: u64) {
        if !self.is_sampled(key) {
            return;
        }
        let mut state = self.state.lock();
        self.settle_one(&mut state, key, now_ms);
        state.report.misses += 1;
        let window = self.window_ms();
        if state
            .expired_at
            .get(key)
            .is_some_and(|&at| now_ms.saturating_sub(at) <= window)
        {
            state.report.misses_after_expiry += 1;
        }
    }

    /// `key` was removed by the application: it is no longer tracked.
    pub fn on_remove(&self, key: &[u8]) {
        if !self.is_sampled(key) {
            return;
        }
        let mut state = self.state.lock();
        state.entries.remove(key);
        state.expired_at.remove(key);
    }

    /// Settles every tracked entry whose TTL has passed by `now_ms`: it
    /// counts towards the [`TtlReport`], stops being tracked, and is
    /// remembered as recently expired. Returns how many expired.
    pub fn expire(&self, now_ms: u64) -> u64 {
        let mut state = self.state.lock();
        let due: Vec<Bytes> = state
            .entries
            .iter()
            .filter(|(_, r)| r.expires_at_ms().is_some_and(|at| at <= now_ms))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            self.settle_one(&mut state, key, now_ms);
        }
        self.forget_old_expiries(&mut state, now_ms);
        due.len() as u64
    }

    /// Moves `key` from the live entries to the recently expired ones if
    /// its TTL has passed by `now_ms`, and forgets the expiries that fell
    /// out of the window or past the most remembered. Pruning here, where
    /// the list grows, keeps it bounded whichever reports the application
    /// asks for: a service that only exports metrics never calls
    /// [`expire`](Self::expire), yet its misses settle entries all the time.
    fn settle_one(&self, state: &mut State, key: &[u8], now_ms: u64) {
        let due = state
            .entries
            .get(key)
            .and_then(EntryRecord::expires_at_ms)
            .filter(|&at| at <= now_ms);
        let Some(at) = due else {
            return;
        };
        let Some((key, record)) = state.entries.remove_entry(key) else {
            return;
        };
        state.report.expired += 1;
        if record.accesses == 0 {
            state.report.expired_unused += 1;
        }
        state.expired_at.insert(key.clone(), at);
        state.expired.push_back((key, at));
        self.forget_old_expiries(state, now_ms);
    }

    fn forget_old_expiries(&self, state: &mut State, now_ms: u64) {
        let window = self.window_ms();
        while let Some((key, at)) = state.expired.front().cloned() {
            let too_many = state.expired.len() > self.settings.max_recent_expiries;
            if !too_many && now_ms.saturating_sub(at) <= window {
                break;
            }
            state.expired.pop_front();
            if state.expired_at.get(&key) == Some(&at) {
                state.expired_at.remove(&key);
            }
        }
    }

    fn window_ms(&self) -> u64 {
        u64::try_from(self.settings.recent_expiry_window.as_millis()).unwrap_or(u64::MAX)
    }

    /// TTL effectiveness so far.
    pub fn ttl_report(&self) -> TtlReport {
        self.state.lock().report
    }

    /// Given and stored bytes per class, over the tracked entries whose
    /// stored size is known, by class name.
    pub fn compression_by_class(&self) -> Vec<ClassCompression> {
        let state = self.state.lock();
        let mut by_class: HashMap<&str, ClassCompression> = HashMap::new();
        for record in state.entries.values() {
            let Some(stored) = record.stored_size else {
                continue;
            };
            let class = by_class
                .entry(record.class.as_str())
                .or_insert_with(|| ClassCompression {
                    class: record.class.clone(),
                    ..ClassCompression::default()
                });
            class.entries += 1;
            class.bytes_in += record.size;
            class.bytes_stored += stored;
        }
        let mut out: Vec<_> = by_class.into_values().collect();
        out.sort_by(|a, b| a.class.cmp(&b.class));
        out
    }

    /// What the tracker holds for `key`, if it is tracked.
    pub fn record(&self, key: &[u8]) -> Option<EntryRecord> {
        self.state.lock().entries.get(key).cloned()
    }

    /// How many entries are tracked.
    pub fn tracked(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// Up to `limit` tracked entries, live at `now_ms`, that nothing has
    /// read or written within `window`, coldest first: the cold keys of
    /// what the tracker follows. Each has every hit and write recorded, so
    /// a key reported cold really was untouched.
    pub fn cold(&self, now_ms: u64, window: Duration, limit: usize) -> Vec<ColdKey> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        let state = self.state.lock();
        let found: Vec<ColdKey> = state
            .entries
            .iter()
            .filter(|(_, r)| {
                r.expires_at_ms().is_none_or(|at| at > now_ms)
                    && now_ms.saturating_sub(r.last_access_ms) >= window_ms
            })
            .map(|(key, r)| ColdKey {
                key: key.clone(),
                last_touch_ms: r.last_access_ms,
            })
            .collect();
        drop(state);
        coldest_first(found, limit)
    }

    /// Up to `policy.max_per_run` tracked entries a cleanup may remove at
    /// `now_ms`, each with its first reason: expired, then idle, then too
    /// large.
    pub fn eligible(&self, now_ms: u64, policy: &CleanupPolicy) -> Vec<(Bytes, CleanupReason)> {
        let idle_ms = policy
            .idle_after
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let state = self.state.lock();
        state
            .entries
            .iter()
            .filter_map(|(key, r)| {
                let reason = if r.expires_at_ms().is_some_and(|at| at <= now_ms) {
                    CleanupReason::Expired
                } else if idle_ms.is_some_and(|idle| now_ms.saturating_sub(r.last_access_ms) > idle)
                {
                    CleanupReason::Idle
                } else if policy
                    .max_entry_bytes
                    .is_some_and(|max| r.stored_size.unwrap_or(r.size) > max)
                {
                    CleanupReason::TooLarge
                } else {
                    return None;
                };
                Some((key.clone(), reason))
            })
            .take(policy.max_per_run)
            .collect()
    }
}

/// What one cleanup run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleanupOutcome {
    /// Expired entries removed.
    pub expired: u64,
    /// Idle entries removed.
    pub idle: u64,
    /// Entries removed for their size.
    pub too_large: u64,
    /// Removals the tier failed; the entries stay tracked for the next run.
    pub failed: u64,
}

/// Removes from `tier` what `tracker` finds eligible under `policy` at
/// `now_ms`, at most `policy.max_per_run` entries.
pub async fn cleanup_once<B: Backend>(
    tracker: &EntryTracker,
    tier: &B,
    now_ms: u64,
    policy: &CleanupPolicy,
) -> CleanupOutcome {
    let mut outcome = CleanupOutcome::default();
    for (key, reason) in tracker.eligible(now_ms, policy) {
        if tier.remove(&key).await.is_err() {
            outcome.failed += 1;
            continue;
        }
        match reason {
            CleanupReason::Expired => {
                // Counted as an expiry, not as a removal by the application.
                tracker.expire_key(&key, now_ms);
                outcome.expired += 1;
            }
            CleanupReason::Idle => {
                tracker.on_remove(&key);
                outcome.idle += 1;
            }
            CleanupReason::TooLarge => {
                tracker.on_remove(&key);
                outcome.too_large += 1;
            }
        }
    }
    let mut state = tracker.state.lock();
    tracker.forget_old_expiries(&mut state, now_ms);
    outcome
}

impl EntryTracker {
    /// Settles one key whose TTL has passed.
    fn expire_key(&self, key: &[u8], now_ms: u64) {
        let mut state = self.state.lock();
        self.settle_one(&mut state, key, now_ms);
    }
}

/// A background cleanup task; dropping the handle does not stop it,
/// [`stop`](Self::stop) does.
pub struct CleanupHandle {
    stop: Arc<AtomicBool>,
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<CleanupOutcome>,
}

impl CleanupHandle {
    /// Stops the task after its current run and returns the totals of all
    /// its runs.
    pub async fn stop(self) -> CleanupOutcome {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
        self.task.await.unwrap_or_default()
    }
}

/// Starts a task on the current tokio runtime that runs
/// [`cleanup_once`] every `every`, each run bounded by
/// `policy.max_per_run`, until [`CleanupHandle::stop`].
pub fn spawn_cleanup<B: Backend>(
    tracker: Arc<EntryTracker>,
    tier: Arc<B>,
    clock: Clock,
    every: Duration,
    policy: CleanupPolicy,
) -> CleanupHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    let (task_stop, task_wake) = (stop.clone(), wake.clone());
    let task = tokio::spawn(async move {
        let mut total = CleanupOutcome::default();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = task_wake.notified() => {}
            }
            if task_stop.load(Ordering::Acquire) {
                return total;
            }
            let run = cleanup_once(&tracker, tier.as_ref(), clock.now_ms(), &policy).await;
            total.expired += run.expired;
            total.idle += run.idle;
            total.too_large += run.too_large;
            total.failed += run.failed;
        }
    });
    CleanupHandle { stop, wake, task }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cache_core::{DataClass, Entry, Lookup, ManualClock};

    use super::*;

    fn meta(now: u64, ttl_s: Option<u64>, class: &str) -> Meta {
        let mut m = Meta::new(now).expires_at(ttl_s.map(|s| now + s * 1_000));
        m.class = DataClass::named(class);
        m
    }

    fn every_key() -> EntryTracker {
        EntryTracker::new(TrackerSettings {
            sample_one_in: 1,
            ..TrackerSettings::default()
        })
    }

    /// Ten entries with a 10 s TTL, four of them read; all expire; then
    /// five misses, three on keys that expired a moment ago and two on keys
    /// never cached: 60% expired unused, 60% of misses after expiry.
    #[test]
    fn ttl_effectiveness_matches_the_hand_computed_figures() {
        let t = every_key();
        for i in 0..10u8 {
            t.on_insert(&[i], 100, &meta(0, Some(10), "rows"), 0);
        }
        for i in 0..4u8 {
            t.on_hit(&[i], 2_000);
        }
        assert_eq!(t.expire(9_999), 0, "nothing has expired yet");
        assert_eq!(t.expire(10_000), 10);
        for k in [0u8, 5, 9, 100, 101] {
            t.on_miss(&[k], 11_000);
        }
        let r = t.ttl_report();
        assert_eq!((r.expired, r.expired_unused), (10, 6));
        assert_eq!((r.misses, r.misses_after_expiry), (5, 3));
        assert!((r.expired_unused_share() - 0.6).abs() < 1e-12);
        assert!((r.misses_after_expiry_share() - 0.6).abs() < 1e-12);
        assert_eq!(t.record(&[1]), None);
        // Long after the window, a miss on an expired key is an ordinary one.
        t.expire(11_000 + 301_000);
        t.on_miss(&[0], 11_000 + 301_000);
        assert_eq!(t.ttl_report().misses_after_expiry, 3);
    }

    #[test]
    fn each_entry_records_its_use() {
        let t = every_key();
        t.on_insert(b"k", 500, &meta(1_000, None, "default"), 1_000);
        t.on_hit(b"k", 1_250);
        t.on_hit(b"k", 4_000);
        t.on_stored_size(b"k", 200);
        let r = t.record(b"k").unwrap();
        assert_eq!(r.accesses, 2);
        assert_eq!(r.first_reuse_ms, Some(250));
        assert_eq!(r.last_access_ms, 4_000);
        assert_eq!((r.size, r.stored_size, r.ttl_ms), (500, Some(200), None));
        t.on_remove(b"k");
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn compression_is_summed_per_class() {
        let t = every_key();
        t.on_insert(b"a", 1_000, &meta(0, None, "json"), 0);
        t.on_insert(b"b", 3_000, &meta(0, None, "json"), 0);
        t.on_insert(b"c", 1_000, &meta(0, None, "media"), 0);
        t.on_stored_size(b"a", 250);
        t.on_stored_size(b"b", 750);
        t.on_stored_size(b"c", 1_000);
        let by = t.compression_by_class();
        assert_eq!(by.len(), 2);
        assert_eq!(
            (by[0].class.as_str(), by[0].bytes_in, by[0].bytes_stored),
            ("json", 4_000, 1_000)
        );
        assert!((by[0].ratio() - 0.25).abs() < 1e-12);
        assert!((by[1].ratio() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sampling_and_bounds_keep_memory_bounded() {
        let t = EntryTracker::new(TrackerSettings {
            sample_one_in: 8,
            max_entries: 50,
            ..TrackerSettings::default()
        });
        let sampled = (0..10_000u32)
            .filter(|i| t.is_sampled(&i.to_le_bytes()))
            .count();
        assert!(
            (900..1_600).contains(&sampled),
            "{sampled} of 10,000 sampled"
        );
        for i in 0..10_000u32 {
            t.on_insert(&i.to_le_bytes(), 1, &meta(0, None, "default"), 0);
        }
        assert_eq!(t.tracked(), 50);
    }

    /// A service that only exports metrics reports writes and misses but
    /// never asks for the TTL report or the cold keys, which used to be the
    /// only calls that pruned the recently expired keys: every miss that
    /// settled an expired entry grew the list for good.
    #[test]
    fn misses_alone_keep_the_recent_expiries_bounded() {
        let t = EntryTracker::new(TrackerSettings {
            sample_one_in: 1,
            max_recent_expiries: 100,
            ..TrackerSettings::default()
        });
        // Ten thousand distinct keys and a few reused ones, each written
        // with a 1 s TTL and missed just after it expired, all within the
        // five-minute window, so only the count bound applies.
        for i in 0..10_000u32 {
            let now = u64::from(i) * 10;
            for key in [i.to_le_bytes(), (i % 7).to_be_bytes()] {
                t.on_insert(&key, 1, &meta(now, Some(1), "default"), now);
                t.on_miss(&key, now + 1_000);
            }
            let state = t.state.lock();
            assert!(
                state.expired.len() <= 100,
                "{} remembered",
                state.expired.len()
            );
            assert!(state.expired_at.len() <= 100);
        }
        let r = t.ttl_report();
        assert_eq!((r.expired, r.misses), (20_000, 20_000));
        // Every miss came right after its key expired, and each key was
        // among the last hundred expiries when it was missed.
        assert_eq!(r.misses_after_expiry, 20_000);
        assert_eq!(t.tracked(), 0);
    }

    /// Expiries older than the window are forgotten as new ones arrive,
    /// without a call to [`EntryTracker::expire`].
    #[test]
    fn misses_alone_forget_expiries_past_the_window() {
        let t = EntryTracker::new(TrackerSettings {
            sample_one_in: 1,
            recent_expiry_window: Duration::from_secs(10),
            ..TrackerSettings::default()
        });
        for i in 0..1_000u32 {
            // One expiry a second: at most the last eleven are in the window.
            let now = u64::from(i) * 1_000;
            t.on_insert(&i.to_le_bytes(), 1, &meta(now, Some(1), "default"), now);
            t.on_miss(&i.to_le_bytes(), now + 1_000);
            assert!(t.state.lock().expired.len() <= 11);
        }
        // A miss on a key that expired long ago is an ordinary miss.
        let before = t.ttl_report().misses_after_expiry;
        t.on_miss(&0u32.to_le_bytes(), 1_000_000);
        assert_eq!(t.ttl_report().misses_after_expiry, before);
    }

    #[test]
    fn eligibility_names_expired_idle_and_oversized_entries() {
        let t = every_key();
        t.on_insert(b"expired", 10, &meta(0, Some(1), "default"), 0);
        t.on_insert(b"idle", 10, &meta(0, None, "default"), 0);
        t.on_insert(b"big", 10_000, &meta(0, None, "default"), 0);
        t.on_insert(b"fresh", 10, &meta(0, None, "default"), 0);
        t.on_hit(b"big", 9_000);
        t.on_hit(b"fresh", 9_500);
        let policy = CleanupPolicy {
            idle_after: Some(Duration::from_secs(5)),
            max_entry_bytes: Some(1_000),
            max_per_run: 10,
        };
        let mut got = t.eligible(10_000, &policy);
        got.sort();
        assert_eq!(
            got,
            vec![
                (Bytes::from_static(b"big"), CleanupReason::TooLarge),
                (Bytes::from_static(b"expired"), CleanupReason::Expired),
                (Bytes::from_static(b"idle"), CleanupReason::Idle),
            ]
        );
        let bounded = CleanupPolicy {
            max_per_run: 2,
            ..policy
        };
        assert_eq!(t.eligible(10_000, &bounded).len(), 2);
    }

    #[tokio::test]
    async fn the_cleanup_task_removes_what_is_eligible_in_bounded_runs_until_stopped() {
        let clock = ManualClock::default();
        let tier = Arc::new(cache_core::conformance::ReferenceBackend::new(
            clock.clock(),
            Default::default(),
        ));
        let tracker = Arc::new(every_key());
        for i in 0..30u8 {
            // Ten entries expire after 5 s; the others never do.
            let ttl = (i >= 20).then_some(5);
            let m = meta(clock.now_ms(), ttl, "default");
            tier.insert(Bytes::from(vec![i]), Entry::new(vec![0u8; 10], m.clone()))
                .await
                .unwrap();
            tracker.on_insert(&[i], 10, &m, clock.now_ms());
        }
        tracker.on_hit(&[0], clock.now_ms() + 10_000);
        clock.advance(Duration::from_secs(11));
        let policy = CleanupPolicy {
            idle_after: Some(Duration::from_secs(5)),
            max_entry_bytes: None,
            max_per_run: 10,
        };
        let first = cleanup_once(&tracker, tier.as_ref(), clock.now_ms(), &policy).await;
        assert_eq!(
            first.idle + first.expired,
            10,
            "one run removes at most ten"
        );
        let handle = spawn_cleanup(
            tracker.clone(),
            tier.clone(),
            clock.clock(),
            Duration::from_millis(5),
            policy,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tier.len().await.unwrap() > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the task did not clean up"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let totals = handle.stop().await;
        assert_eq!(first.idle + totals.idle, 19);
        assert_eq!(first.expired + totals.expired, 10);
        assert_eq!(
            tracker.ttl_report().expired,
            10,
            "removed expired entries count as expiries"
        );
        assert_eq!(tracker.tracked(), 1);
        assert!(
            tier.get(&[0]).await.unwrap().is_hit(),
            "the recently read entry stays"
        );
        assert_eq!(tier.get(&[1]).await.unwrap(), Lookup::Miss);
    }
}
