//! Size-bounded eviction of `MemoryCache`: capacity by count and by weight,
//! exact LRU order within a partition, oversized entries, the eviction
//! listener, and partitions chosen by a partition function.
#![cfg(feature = "memory")]

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::ManualClock;
use proptest::prelude::*;

type Events<K, V> = Arc<Mutex<Vec<(K, V, RemovalCause)>>>;

fn take<K, V>(events: &Events<K, V>) -> Vec<(K, V, RemovalCause)> {
    std::mem::take(&mut *events.lock().unwrap())
}

#[test]
fn count_capacity_is_never_exceeded() {
    let cache: MemoryCache<u32, u32> = MemoryCache::builder()
        .max_capacity(100)
        .partitions(4)
        .build();
    for k in 0..10_000 {
        cache.insert(k, k);
        assert!(cache.entry_count() <= 100);
        assert_eq!(cache.weighted_size(), cache.entry_count());
    }
    // Every partition has long been full, so together they hold exactly
    // the capacity.
    assert_eq!(cache.entry_count(), 100);
    let live = (0..10_000).filter(|k| cache.contains_key(k)).count();
    assert_eq!(live, 100);
    cache.validate();
}

#[test]
fn weighted_capacity_is_never_exceeded() {
    let cache: MemoryCache<u32, Vec<u8>> = MemoryCache::builder()
        .max_capacity(1_000)
        .partitions(4)
        // A fixed placement, so that the outcome does not depend on the
        // hasher's random seed.
        .partition_fn(|k: &u32| *k as usize)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .build();
    let mut x = 12345u32;
    for k in 0..5_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = 1 + (x >> 16) as usize % 200;
        cache.insert(k % 700, vec![0; len]);
        assert!(
            cache.weighted_size() <= 1_000,
            "weighted_size {} after insert {k}",
            cache.weighted_size()
        );
    }
    let held: u64 = (0..700)
        .filter_map(|k| cache.get(&k))
        .map(|v| v.len() as u64)
        .sum();
    assert_eq!(held, cache.weighted_size(), "weights must add up");
    assert!(
        held > 700,
        "a full cache holds most of its capacity: {held}"
    );
    cache.validate();
}

#[test]
fn a_single_partition_evicts_in_exact_lru_order() {
    let events: Events<u32, u32> = Arc::default();
    let sink = events.clone();
    let cache = MemoryCache::builder()
        .max_capacity(3)
        .partitions(1)
        .eviction_listener(move |k, v, c| sink.lock().unwrap().push((k, v, c)))
        .build();
    cache.insert(1, 10);
    cache.insert(2, 20);
    cache.insert(3, 30);
    assert_eq!(cache.get(&1), Some(10)); // Recency, most recent first: 1 3 2.
    cache.insert(4, 40); // Evicts 2: 4 1 3.
    assert_eq!(take(&events), vec![(2, 20, RemovalCause::Size)]);
    assert!(cache.contains_key(&3)); // Not a use: still 4 1 3.
    cache.insert(5, 50); // Evicts 3: 5 4 1.
    assert_eq!(take(&events), vec![(3, 30, RemovalCause::Size)]);
    cache.insert(1, 11); // A write is a use, and replaces: 1 5 4.
    assert_eq!(take(&events), vec![(1, 10, RemovalCause::Replaced)]);
    assert_eq!(cache.get(&9), None); // A miss changes nothing.
    cache.insert(6, 60); // Evicts 4: 6 1 5.
    cache.insert(7, 70); // Evicts 5: 7 6 1.
    assert_eq!(
        take(&events),
        vec![(4, 40, RemovalCause::Size), (5, 50, RemovalCause::Size)]
    );
    assert_eq!(cache.remove(&6), Some(60)); // 7 1.
    cache.insert(8, 80); // Fits: 8 7 1.
    cache.insert(9, 90); // Evicts 1: 9 8 7.
    assert_eq!(
        take(&events),
        vec![(6, 60, RemovalCause::Explicit), (1, 11, RemovalCause::Size)]
    );
    let mut left: Vec<u32> = (0..10).filter(|k| cache.contains_key(k)).collect();
    left.sort_unstable();
    assert_eq!(left, vec![7, 8, 9]);
    cache.validate();
}

#[test]
fn an_oversized_entry_is_rejected_and_leaves_no_stale_value() {
    let events: Events<u32, Vec<u8>> = Arc::default();
    let sink = events.clone();
    let cache = MemoryCache::builder()
        .max_capacity(100)
        .partitions(1)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .eviction_listener(move |k, v, c| sink.lock().unwrap().push((k, v, c)))
        .build();
    cache.insert(1, vec![1; 10]);
    cache.insert(2, vec![2; 10]);
    cache.insert(1, vec![3; 101]);
    assert_eq!(cache.get(&1), None, "the old value must not survive");
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.get(&2), Some(vec![2; 10]), "others are untouched");
    assert_eq!(cache.weighted_size(), 10);
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(
        take(&events),
        vec![
            (1, vec![1; 10], RemovalCause::Replaced),
            (1, vec![3; 101], RemovalCause::Size),
        ]
    );
    // Exactly the capacity is admitted, and pushes everything else out.
    cache.insert(3, vec![4; 100]);
    assert_eq!(cache.get(&3), Some(vec![4; 100]));
    assert_eq!(take(&events), vec![(2, vec![2; 10], RemovalCause::Size)]);
    cache.validate();
}

#[test]
fn the_listener_sees_every_cause_and_each_key_once_per_insert() {
    let events: Events<u32, u32> = Arc::default();
    let sink = events.clone();
    let cache = MemoryCache::builder()
        .max_capacity(40)
        .partitions(2)
        .weigher(|_, v: &u32| *v)
        .eviction_listener(move |k, v, c| sink.lock().unwrap().push((k, v, c)))
        .build();
    let mut inserted = 0u64;
    let mut seen_causes = HashSet::new();
    let mut x = 7u32;
    for i in 0..3_000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let key = (x >> 8) % 50;
        let weight = 1 + (x >> 20) % 12;
        if i % 10 == 9 {
            cache.remove(&key);
        } else {
            cache.insert(key, weight);
            inserted += 1;
        }
        let got = take(&events);
        let mut keys = HashSet::new();
        for (k, _, cause) in &got {
            seen_causes.insert(*cause);
            assert!(
                keys.insert(*k),
                "key {k} removed twice by one operation: {got:?}"
            );
        }
        inserted -= got.len() as u64;
        assert_eq!(
            inserted,
            cache.entry_count(),
            "every entry that leaves is reported exactly once"
        );
        assert!(cache.weighted_size() <= 40);
    }
    for cause in [
        RemovalCause::Size,
        RemovalCause::Replaced,
        RemovalCause::Explicit,
    ] {
        assert!(seen_causes.contains(&cause), "{cause:?} never reported");
    }
    cache.clear();
    let got = take(&events);
    assert_eq!(got.len() as u64, inserted);
    assert!(got.iter().all(|e| e.2 == RemovalCause::Explicit));
    assert_eq!(cache.entry_count(), 0);
    cache.validate();
}

/// Runs `f` on another thread, failing the test if it does not finish in
/// time (a deadlock would otherwise hang the test run).
fn within_timeout(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked; surface its panic.
            handle.join().unwrap();
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: the operation never finished"),
    }
}

#[test]
fn a_listener_may_call_back_into_the_cache() {
    within_timeout(|| {
        let slot: Arc<OnceLock<MemoryCache<u32, u32>>> = Arc::default();
        let calls = Arc::new(Mutex::new(0u32));
        let clock = ManualClock::default();
        let (slot2, calls2) = (slot.clone(), calls.clone());
        let cache = MemoryCache::builder()
            .max_capacity(8)
            .partitions(2)
            .time_to_live(Duration::from_secs(1))
            .clock(clock.clock())
            .eviction_listener(move |k: u32, v: u32, _| {
                let cache = slot2.get().expect("the cache is built");
                *calls2.lock().unwrap() += 1;
                // Every kind of call, including ones that lock every
                // partition or remove entries (and so notify again).
                assert!(cache.entry_count() <= 8);
                assert!(cache.weighted_size() <= 8);
                let _ = cache.get(&k);
                let _ = cache.contains_key(&(k + 1));
                let _ = cache.remove(&(k + 1));
                if k < 1_000 {
                    cache.insert(k + 1_000, v);
                }
            })
            .build();
        slot.set(cache.clone()).unwrap();
        for k in 0..200 {
            cache.insert(k, k);
            cache.insert(k, k + 1);
        }
        let present = cache.contains_key(&199);
        assert_eq!(cache.remove(&199).is_some(), present);
        clock.advance(Duration::from_secs(1));
        assert!(cache.purge_expired() > 0);
        cache.insert(5_000, 0);
        cache.clear();
        assert!(*calls.lock().unwrap() > 200);
        cache.validate();
    });
}

#[test]
fn a_partition_function_keeps_tenants_apart() {
    // Keys are (tenant, id); each tenant gets its own partition.
    let cache: MemoryCache<(u8, u32), u32> = MemoryCache::builder()
        .max_capacity(200)
        .partitions(2)
        .partition_fn(|k: &(u8, u32)| usize::from(k.0))
        .build();
    for id in 0..100 {
        cache.insert((1, id), id);
    }
    for id in 0..10_000 {
        cache.insert((0, id), id);
        assert!(cache.entry_count() <= 200);
    }
    for id in 0..100 {
        assert_eq!(
            cache.get(&(1, id)),
            Some(id),
            "tenant 1 lost an entry to tenant 0"
        );
    }
    let tenant0 = (0..10_000)
        .filter(|id| cache.contains_key(&(0, *id)))
        .count();
    assert_eq!(tenant0, 100, "tenant 0 keeps its whole share");
    assert!((9_900..10_000).all(|id| cache.contains_key(&(0, id))));
    // The partition index is taken modulo the count.
    let wide: MemoryCache<u32, u32> = MemoryCache::builder()
        .max_capacity(4)
        .partitions(2)
        .partition_fn(|k: &u32| *k as usize + 1_000_001)
        .build();
    for k in 0..100 {
        wide.insert(k, k);
    }
    assert_eq!(wide.entry_count(), 4);
    assert!(wide.contains_key(&98) && wide.contains_key(&99));
    wide.validate();
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Get(u16),
    Remove(u16),
    Contains(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u16..20;
    prop_oneof![
        5 => (key.clone(), prop_oneof![20 => 0u32..8, 1 => 8u32..40]).prop_map(|(k, w)| Op::Insert(k, w)),
        4 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Remove),
        1 => key.prop_map(Op::Contains),
    ]
}

/// A weighted LRU list, most recent first: the model of one partition.
struct Lru {
    order: VecDeque<(u16, (u32, u32))>,
    capacity: u64,
    events: Vec<(u16, (u32, u32), RemovalCause)>,
}

impl Lru {
    fn position(&self, k: u16) -> Option<usize> {
        self.order.iter().position(|e| e.0 == k)
    }

    fn weight(&self) -> u64 {
        self.order.iter().map(|e| u64::from(e.1.1)).sum()
    }

    fn insert(&mut self, k: u16, v: (u32, u32)) {
        if let Some(i) = self.position(k) {
            let (k, old) = self.order.remove(i).unwrap();
            self.events.push((k, old, RemovalCause::Replaced));
        }
        if u64::from(v.1) > self.capacity {
            self.events.push((k, v, RemovalCause::Size));
            return;
        }
        self.order.push_front((k, v));
        while self.weight() > self.capacity {
            let (k, v) = self.order.pop_back().unwrap();
            self.events.push((k, v, RemovalCause::Size));
        }
    }

    fn get(&mut self, k: u16) -> Option<(u32, u32)> {
        let i = self.position(k)?;
        let e = self.order.remove(i).unwrap();
        self.order.push_front(e);
        Some(e.1)
    }

    fn remove(&mut self, k: u16) -> Option<(u32, u32)> {
        let (k, v) = self.order.remove(self.position(k)?).unwrap();
        self.events.push((k, v, RemovalCause::Explicit));
        Some(v)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn one_partition_matches_a_weighted_lru_model(
        ops in proptest::collection::vec(op(), 1..200),
        capacity in 1u64..30,
    ) {
        let events: Events<u16, (u32, u32)> = Arc::default();
        let sink = events.clone();
        let cache = MemoryCache::builder()
            .max_capacity(capacity)
            .partitions(1)
            .weigher(|_, v: &(u32, u32)| v.1)
            .eviction_listener(move |k, v, c| sink.lock().unwrap().push((k, v, c)))
            .build();
        let mut model = Lru { order: VecDeque::new(), capacity, events: Vec::new() };
        for (step, op) in ops.iter().enumerate() {
            match *op {
                Op::Insert(k, w) => {
                    let v = (step as u32, w);
                    cache.insert(k, v);
                    model.insert(k, v);
                }
                Op::Get(k) => prop_assert_eq!(cache.get(&k), model.get(k), "step {}", step),
                Op::Remove(k) => prop_assert_eq!(cache.remove(&k), model.remove(k), "step {}", step),
                Op::Contains(k) => prop_assert_eq!(cache.contains_key(&k), model.position(k).is_some()),
            }
            cache.validate();
            prop_assert_eq!(take(&events), std::mem::take(&mut model.events), "step {}: {:?}", step, op);
            prop_assert_eq!(cache.entry_count(), model.order.len() as u64);
            prop_assert_eq!(cache.weighted_size(), model.weight());
            for k in 0..20 {
                prop_assert_eq!(cache.contains_key(&k), model.position(k).is_some());
            }
        }
    }
}
