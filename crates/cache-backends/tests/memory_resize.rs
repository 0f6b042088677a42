//! Resizing a `MemoryCache` at run time: a shrink evicts at once, through
//! the usual path (the listener and the counters see every entry), a grow
//! makes room, a refused capacity changes nothing, and writes racing a
//! resize leave the cache consistent.
#![cfg(feature = "memory")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::{ErrorKind, ManualClock};

type Events = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A cache of `capacity` over `partitions`, optionally weighing each entry
/// by its value, whose listener records every removal.
fn recorded(capacity: u64, partitions: usize, weighted: bool) -> (MemoryCache<u64, u64>, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let mut builder = MemoryCache::builder()
        .max_capacity(capacity)
        .partitions(partitions)
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)));
    if weighted {
        builder = builder.weigher(|_, v: &u64| (*v % 7 + 1) as u32);
    }
    (builder.build(), events)
}

#[test]
fn a_shrink_evicts_at_once_and_reports_each_entry_as_size() {
    for weighted in [false, true] {
        let (cache, events) = recorded(1_000, 4, weighted);
        for k in 0..1_000 {
            cache.insert(k, k);
        }
        let held: HashSet<u64> = (0..1_000).filter(|k| cache.contains_key(k)).collect();
        let evicted_before = cache.evicted_count();
        events.lock().unwrap().clear();

        cache.set_capacity(100).unwrap();
        cache.validate();
        assert_eq!(cache.max_capacity(), 100);
        assert!(cache.weighted_size() <= 100, "weighted: {weighted}");

        let events = std::mem::take(&mut *events.lock().unwrap());
        assert!(
            events
                .iter()
                .all(|&(k, v, cause)| cause == RemovalCause::Size && k == v),
            "weighted: {weighted}: {events:?}"
        );
        let gone: HashSet<u64> = events.iter().map(|&(k, _, _)| k).collect();
        assert_eq!(gone.len(), events.len(), "an entry was reported twice");
        // Exactly the entries reported left, and every one of them was held.
        assert!(gone.is_subset(&held));
        for k in &held {
            assert_eq!(cache.contains_key(k), !gone.contains(k), "key {k}");
        }
        assert_eq!(
            cache.entry_count(),
            (held.len() - gone.len()) as u64,
            "weighted: {weighted}"
        );
        assert_eq!(
            cache.evicted_count() - evicted_before,
            events.len() as u64,
            "the removal counters count the evictions"
        );
    }
}

#[test]
fn a_shrink_reports_entries_already_expired_as_expired() {
    let clock = ManualClock::new(1_000);
    let events: Events = Arc::default();
    let sink = events.clone();
    let cache: MemoryCache<u64, u64> = MemoryCache::builder()
        .max_capacity(100)
        .partitions(2)
        .clock(clock.clock())
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)))
        .build();
    for k in 0..50 {
        cache
            .insert_with_ttl(k, k, Duration::from_millis(10))
            .unwrap();
    }
    // Well past their timer bucket, so a resize's eviction finds them
    // expired however it reaches them.
    clock.advance(Duration::from_secs(5));
    cache.set_capacity(10).unwrap();
    cache.validate();
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e.2 == RemovalCause::Expired),
        "an expired entry is not evicted for size: {events:?}"
    );
    assert_eq!(cache.evicted_count(), 0);
}

#[test]
fn a_grow_makes_room_for_more() {
    let (cache, _) = recorded(1_000, 4, false);
    for k in 0..3_000 {
        cache.insert(k, k);
    }
    assert!(cache.entry_count() <= 1_000);
    cache.set_capacity(4_000).unwrap();
    assert_eq!(cache.max_capacity(), 4_000);
    for k in 3_000..6_000 {
        cache.insert(k, k);
    }
    cache.validate();
    assert!(
        cache.entry_count() > 2_000,
        "the grown cache holds {}",
        cache.entry_count()
    );
    assert!(cache.weighted_size() <= 4_000);
}

#[test]
fn shrinking_to_one_and_back_keeps_the_cache_usable() {
    for weighted in [false, true] {
        let (cache, _) = recorded(300, 1, weighted);
        for k in 0..300 {
            cache.insert(k, k);
        }
        cache.set_capacity(1).unwrap();
        cache.validate();
        assert!(cache.weighted_size() <= 1);
        // A weighed entry heavier than the whole cache is turned away.
        cache.insert(1_000, 0);
        cache.insert(1_001, 1);
        assert!(!cache.contains_key(&1_001) || !weighted);
        assert!(cache.weighted_size() <= 1);
        cache.set_capacity(300).unwrap();
        for round in 0..3 {
            for k in 0..300 {
                cache.insert(k, k);
                if round > 0 {
                    cache.get(&k);
                }
            }
        }
        cache.validate();
        let held = cache.weighted_size();
        assert!(held <= 300);
        assert!(held > 150, "weighted: {weighted}: it holds {held} again");
    }
}

#[test]
fn a_refused_capacity_changes_nothing() {
    let (cache, events) = recorded(1_000, 4, false);
    for k in 0..500 {
        cache.insert(k, k);
    }
    let count = cache.entry_count();
    for bad in [0, 1, 3] {
        let err = cache.set_capacity(bad).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        // The builder refuses the same value the same way.
        let built = MemoryCache::<u64, u64>::builder()
            .max_capacity(bad)
            .partitions(4)
            .try_build()
            .expect_err("refused");
        assert_eq!(err.to_string(), built.to_string());
    }
    assert_eq!(cache.max_capacity(), 1_000);
    assert_eq!(cache.entry_count(), count);
    assert!(events.lock().unwrap().is_empty());
    cache.validate();
}

/// Writers insert without pause while another thread shrinks and grows
/// the cache; nothing panics, every partition stays consistent, and once
/// the last resize has returned the cache is within its capacity.
#[test]
fn writes_racing_resizes_leave_the_cache_consistent() {
    for weighted in [false, true] {
        let size_events = Arc::new(AtomicU64::new(0));
        let counted = size_events.clone();
        let mut builder = MemoryCache::<u64, u64>::builder()
            .max_capacity(2_000)
            .partitions(4)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
        if weighted {
            builder = builder.weigher(|_, v| (*v % 5 + 1) as u32);
        }
        let cache = builder.build();
        let done = AtomicBool::new(false);
        let writes = AtomicU64::new(0);
        thread::scope(|s| {
            for t in 0..2u64 {
                let (cache, done, writes) = (&cache, &done, &writes);
                s.spawn(move || {
                    let mut i = 0u64;
                    while !done.load(Ordering::Relaxed) {
                        let k = (i * 7 + t) % 5_000;
                        cache.insert(k, i);
                        cache.get(&(k / 2));
                        writes.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                });
            }
            let (cache, done, writes) = (&cache, &done, &writes);
            s.spawn(move || {
                // Enough rounds, and enough writes among them, that writes
                // land while partitions are being resized.
                let mut round = 0;
                while round < 200 || writes.load(Ordering::Relaxed) < 100_000 {
                    for capacity in [10, 4, 3_000, 100, 50_000, 700] {
                        cache.set_capacity(capacity).unwrap();
                        assert_eq!(cache.max_capacity(), capacity, "round {round}");
                        thread::yield_now();
                    }
                    round += 1;
                }
                done.store(true, Ordering::Relaxed);
            });
        });
        cache.validate();
        assert_eq!(cache.max_capacity(), 700);
        assert!(cache.weighted_size() <= 700, "weighted: {weighted}");
        assert_eq!(
            cache.evicted_count(),
            size_events.load(Ordering::Relaxed),
            "the counters and the listener agree on evictions"
        );
        cache.set_capacity(4).unwrap();
        cache.validate();
        assert!(cache.weighted_size() <= 4);
    }
}
