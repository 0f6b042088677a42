//! Time-to-live, time-to-idle and per-entry expiry of `MemoryCache`, driven
//! by a manual clock, and the settings that are rejected.
#![cfg(feature = "memory")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_backends::memory::{MemoryCache, MemoryCacheBuilder, RemovalCause};
use cache_core::{ErrorKind, ManualClock};

type Events = Arc<Mutex<Vec<(u32, String, RemovalCause)>>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A builder on a manual clock whose listener records every removal.
fn recorded() -> (MemoryCacheBuilder<u32, String>, ManualClock, Events) {
    let clock = ManualClock::default();
    let events: Events = Arc::default();
    let sink = events.clone();
    let builder = MemoryCache::builder()
        .max_capacity(1_000)
        .partitions(2)
        .clock(clock.clock())
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)));
    (builder, clock, events)
}

fn take(events: &Events) -> Vec<(u32, String, RemovalCause)> {
    std::mem::take(&mut *events.lock().unwrap())
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn time_to_live_ends_an_entry_exactly_at_its_deadline() {
    let (b, clock, events) = recorded();
    let cache = b.time_to_live(ms(10_000)).build();
    cache.insert(1, s("a"));
    clock.advance(ms(9_999));
    assert_eq!(cache.get(&1), Some(s("a")));
    assert!(cache.contains_key(&1));
    clock.advance(ms(1));
    assert!(!cache.contains_key(&1));
    // Until touched, the expired entry still counts.
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(take(&events), vec![(1, s("a"), RemovalCause::Expired)]);
    cache.validate();
}

#[test]
fn time_to_live_counts_from_the_last_write_not_the_last_read() {
    let (b, clock, _) = recorded();
    let cache = b.time_to_live(ms(10_000)).build();
    cache.insert(1, s("a"));
    cache.insert(2, s("b"));
    clock.advance(ms(6_000));
    assert_eq!(cache.get(&1), Some(s("a")));
    cache.insert(2, s("b2"));
    clock.advance(ms(5_000));
    assert_eq!(cache.get(&1), None, "a read must not extend the TTL");
    assert_eq!(cache.get(&2), Some(s("b2")), "a write restarts the TTL");
    clock.advance(ms(5_000));
    assert_eq!(cache.get(&2), None);
}

#[test]
fn time_to_idle_is_extended_by_reads_but_not_by_contains_key() {
    let (b, clock, events) = recorded();
    let cache = b.time_to_idle(ms(10_000)).build();
    cache.insert(1, s("read"));
    cache.insert(2, s("probed"));
    for _ in 0..5 {
        clock.advance(ms(9_000));
        assert_eq!(cache.get(&1), Some(s("read")));
    }
    // Entry 2 was only probed, never read, so it went idle long ago.
    assert!(!cache.contains_key(&2));

    cache.insert(3, s("c"));
    clock.advance(ms(9_999));
    assert!(cache.contains_key(&3));
    clock.advance(ms(1));
    assert!(
        !cache.contains_key(&3),
        "contains_key must not count as a use"
    );
    assert_eq!(cache.get(&3), None);

    clock.advance(ms(10_000));
    assert_eq!(cache.get(&1), None);
    assert_eq!(
        cache.remove(&2),
        None,
        "an expired entry is not removed live"
    );
    let mut got = take(&events);
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        vec![
            (1, s("read"), RemovalCause::Expired),
            (2, s("probed"), RemovalCause::Expired),
            (3, s("c"), RemovalCause::Expired),
        ]
    );
    assert_eq!(cache.entry_count(), 0);
}

#[test]
fn time_to_live_bounds_an_entry_that_is_read_often() {
    let (b, clock, _) = recorded();
    let cache = b.time_to_live(ms(15_000)).time_to_idle(ms(10_000)).build();
    cache.insert(1, s("a"));
    clock.advance(ms(5_000));
    assert!(cache.get(&1).is_some());
    clock.advance(ms(5_000));
    assert!(cache.get(&1).is_some());
    clock.advance(ms(4_999));
    assert!(cache.get(&1).is_some());
    clock.advance(ms(1));
    assert_eq!(cache.get(&1), None);
}

#[test]
fn the_earlier_of_per_entry_ttl_and_cache_ttl_applies() {
    let (b, clock, _) = recorded();
    let cache = b.time_to_live(ms(10_000)).build();
    cache.insert_with_ttl(1, s("short"), ms(2_000)).unwrap();
    cache.insert_with_ttl(2, s("long"), ms(60_000)).unwrap();
    clock.advance(ms(1_999));
    assert!(cache.contains_key(&1));
    clock.advance(ms(1));
    assert!(!cache.contains_key(&1));
    clock.advance(ms(7_999));
    assert!(cache.contains_key(&2));
    clock.advance(ms(1));
    assert!(
        !cache.contains_key(&2),
        "the cache TTL caps a longer entry TTL"
    );
}

#[test]
fn per_entry_ttl_without_a_cache_ttl() {
    let (b, clock, _) = recorded();
    let cache = b.build();
    cache.insert_with_ttl(1, s("a"), ms(1)).unwrap();
    cache.insert(2, s("forever"));
    assert_eq!(cache.get(&1), Some(s("a")));
    clock.advance(ms(1));
    assert_eq!(cache.get(&1), None);
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    assert_eq!(cache.get(&2), Some(s("forever")));
}

#[test]
fn insert_with_expiry_keeps_an_absolute_deadline() {
    let (b, clock, _) = recorded();
    let cache = b.build();
    let now = clock.now_ms();
    cache.insert_with_expiry(1, s("a"), Some(now + 5_000));
    cache.insert_with_expiry(2, s("b"), None);
    clock.advance(ms(4_999));
    assert_eq!(cache.get(&1), Some(s("a")));
    clock.advance(ms(1));
    assert_eq!(cache.get(&1), None);
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    assert_eq!(cache.get(&2), Some(s("b")), "no expiry means none");
}

#[test]
fn insert_with_expiry_none_still_obeys_the_cache_ttl() {
    let (b, clock, _) = recorded();
    let cache = b.time_to_live(ms(1_000)).build();
    cache.insert_with_expiry(1, s("a"), None);
    cache.insert_with_expiry(2, s("b"), Some(clock.now_ms() + 60_000));
    clock.advance(ms(1_000));
    assert!(!cache.contains_key(&1));
    assert!(!cache.contains_key(&2));
}

#[test]
fn an_expiry_already_past_stores_nothing_and_drops_the_earlier_value() {
    let (b, clock, events) = recorded();
    let cache = b.build();
    cache.insert(1, s("old"));
    cache.insert(2, s("other"));
    let now = clock.now_ms();
    cache.insert_with_expiry(1, s("new"), Some(now));
    assert_eq!(cache.get(&1), None, "no stale value may survive");
    cache.insert_with_expiry(3, s("past"), Some(now - 1));
    assert!(!cache.contains_key(&3));
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(cache.get(&2), Some(s("other")));
    assert_eq!(
        take(&events),
        vec![
            (1, s("old"), RemovalCause::Replaced),
            (1, s("new"), RemovalCause::Expired),
            (3, s("past"), RemovalCause::Expired),
        ]
    );
    cache.validate();
}

#[test]
fn invalid_per_entry_ttls_are_errors_and_change_nothing() {
    let (b, clock, events) = recorded();
    let cache = b.build();
    cache.insert(1, s("kept"));
    clock.set_ms(u64::MAX - 1_000);
    for ttl in [
        Duration::ZERO,
        Duration::from_nanos(1),
        Duration::from_micros(999),
        Duration::from_millis(1_001),
        Duration::MAX,
    ] {
        let err = cache
            .insert_with_ttl(1, s("new"), ttl)
            .expect_err("the TTL is invalid");
        assert_eq!(err.kind(), ErrorKind::InvalidTtl, "{ttl:?}: {err}");
        let err = cache
            .insert_with_ttl(2, s("new"), ttl)
            .expect_err("the TTL is invalid");
        assert_eq!(err.kind(), ErrorKind::InvalidTtl, "{ttl:?}: {err}");
    }
    assert_eq!(cache.get(&1), Some(s("kept")));
    assert!(!cache.contains_key(&2));
    assert_eq!(cache.entry_count(), 1);
    assert!(take(&events).is_empty(), "a rejected write notifies nobody");
    // Just within the clock's range is fine.
    cache.insert_with_ttl(3, s("edge"), ms(1_000)).unwrap();
    assert_eq!(cache.get(&3), Some(s("edge")));
}

#[test]
fn try_build_rejects_invalid_settings() {
    fn kind(b: MemoryCacheBuilder<u32, u32>) -> ErrorKind {
        b.try_build().expect_err("the settings are invalid").kind()
    }
    let b = MemoryCache::<u32, u32>::builder;
    assert_eq!(kind(b().max_capacity(0)), ErrorKind::InvalidConfig);
    assert_eq!(
        kind(b().time_to_live(Duration::ZERO)),
        ErrorKind::InvalidTtl
    );
    assert_eq!(
        kind(b().time_to_idle(Duration::ZERO)),
        ErrorKind::InvalidTtl
    );
    assert_eq!(
        kind(b().time_to_live(Duration::from_micros(500))),
        ErrorKind::InvalidTtl
    );
    assert_eq!(kind(b().time_to_idle(Duration::MAX)), ErrorKind::InvalidTtl);
    assert_eq!(kind(b().partitions(0)), ErrorKind::InvalidConfig);
    assert_eq!(
        kind(b().max_capacity(3).partitions(4)),
        ErrorKind::InvalidConfig
    );
    assert_eq!(
        kind(b().partition_fn(|k: &u32| *k as usize)),
        ErrorKind::InvalidConfig
    );
    let ok = b()
        .max_capacity(4)
        .partitions(4)
        .time_to_live(ms(1))
        .time_to_idle(ms(1))
        .try_build()
        .unwrap();
    assert_eq!(ok.partition_count(), 4);
    assert_eq!(ok.max_capacity(), 4);
    ok.validate();
}

#[test]
#[should_panic(expected = "invalid MemoryCache configuration")]
fn build_panics_on_a_zero_time_to_live() {
    let _ = MemoryCache::<u32, u32>::builder()
        .time_to_live(Duration::ZERO)
        .build();
}

#[test]
fn purge_expired_removes_and_counts_only_expired_entries() {
    let (b, clock, events) = recorded();
    let cache = b.time_to_idle(ms(30_000)).build();
    for k in 0..10 {
        cache.insert_with_ttl(k, s("1s"), ms(1_000)).unwrap();
    }
    for k in 10..15 {
        cache.insert_with_ttl(k, s("10s"), ms(10_000)).unwrap();
    }
    for k in 15..20 {
        cache.insert(k, s("idle"));
    }
    assert_eq!(cache.purge_expired(), 0);
    clock.advance(ms(999));
    assert_eq!(cache.purge_expired(), 0);
    clock.advance(ms(1));
    assert_eq!(cache.purge_expired(), 10);
    assert_eq!(cache.entry_count(), 10);
    assert_eq!(cache.purge_expired(), 0, "nothing is purged twice");
    clock.advance(ms(9_000));
    assert_eq!(cache.get(&15), Some(s("idle")));
    assert_eq!(cache.purge_expired(), 5);
    clock.advance(ms(29_999));
    assert_eq!(
        cache.purge_expired(),
        4,
        "only the entry read at 10 s is left"
    );
    assert_eq!(cache.entry_count(), 1);
    clock.advance(ms(1));
    assert_eq!(cache.purge_expired(), 1);
    assert_eq!(cache.entry_count(), 0);

    let got = take(&events);
    assert_eq!(got.len(), 20);
    assert!(got.iter().all(|e| e.2 == RemovalCause::Expired), "{got:?}");
    let mut keys: Vec<u32> = got.iter().map(|e| e.0).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..20).collect::<Vec<_>>());
    cache.validate();
}

#[test]
fn expired_entries_are_reported_as_expired_however_they_leave() {
    let (b, clock, events) = recorded();
    let cache = b.time_to_live(ms(1_000)).build();
    for k in 0..4 {
        cache.insert(k, format!("v{k}"));
    }
    clock.advance(ms(1_000));
    assert_eq!(cache.get(&0), None);
    assert_eq!(cache.remove(&1), None);
    cache.insert(2, s("fresh"));
    assert_eq!(cache.purge_expired(), 1);
    let mut got = take(&events);
    got.sort_by_key(|e| e.0);
    assert_eq!(
        got,
        vec![
            (0, s("v0"), RemovalCause::Expired),
            (1, s("v1"), RemovalCause::Expired),
            // Overwriting an entry that had expired reports it as expired.
            (2, s("v2"), RemovalCause::Expired),
            (3, s("v3"), RemovalCause::Expired),
        ]
    );
    assert!(RemovalCause::Expired.was_evicted());
    assert!(!RemovalCause::Replaced.was_evicted());
}

#[test]
fn an_expired_entry_pushed_out_by_size_is_reported_as_expired() {
    let events: Events = Arc::default();
    let sink = events.clone();
    let clock = ManualClock::default();
    let cache = MemoryCache::builder()
        .max_capacity(2)
        .partitions(1)
        .clock(clock.clock())
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)))
        .build();
    cache.insert_with_ttl(1, s("ttl"), ms(1_000)).unwrap();
    cache.insert(2, s("b"));
    clock.advance(ms(1_000));
    cache.insert(3, s("c"));
    assert_eq!(take(&events), vec![(1, s("ttl"), RemovalCause::Expired)]);
    // Nothing else has expired: whichever entry the policy turns away next
    // is removed for size.
    cache.insert(4, s("d"));
    let next = take(&events);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].2, RemovalCause::Size);
}

#[test]
fn an_idle_entry_pushed_out_by_size_is_reported_as_expired() {
    let events: Events = Arc::default();
    let sink = events.clone();
    let clock = ManualClock::default();
    let cache = MemoryCache::builder()
        .max_capacity(2)
        .partitions(1)
        .time_to_idle(ms(1_000))
        .clock(clock.clock())
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)))
        .build();
    cache.insert(1, s("idle"));
    cache.insert(2, s("busy"));
    clock.advance(ms(500));
    assert!(cache.get(&2).is_some());
    clock.advance(ms(500));
    // Entry 1 has been idle for its whole time-to-idle; entry 2 has not.
    cache.insert(3, s("c"));
    assert_eq!(take(&events), vec![(1, s("idle"), RemovalCause::Expired)]);
    cache.insert(4, s("d"));
    let next = take(&events);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].2, RemovalCause::Size);
}

#[test]
fn get_with_reloads_after_expiry() {
    let (b, clock, _) = recorded();
    let cache = b.time_to_live(ms(100)).build();
    assert_eq!(cache.get_with(1, || s("first")), "first");
    assert_eq!(cache.get_with(1, || s("unused")), "first");
    clock.advance(ms(100));
    assert_eq!(cache.get_with(1, || s("second")), "second");
    assert_eq!(cache.get(&1), Some(s("second")));
}
