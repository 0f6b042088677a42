//! Size-bounded eviction of `MemoryCache`: capacity by count and by weight,
//! oversized entries, the eviction listener, partitions chosen by a
//! partition function, and what the adaptive W-TinyLFU policy promises
//! instead of an exact LRU order: popular entries survive scans and loops,
//! a persistently requested key still gets in, and a recency-skewed
//! workload hits about as often as with LRU.
//!
//! The policy decides *which* entry leaves, so these tests check outcomes
//! that any correct bounded cache must show (capacity, weight accounting,
//! every value reported to the listener exactly once, no stale values), and
//! hit ratios against an exact LRU model, never a particular victim.
#![cfg(feature = "memory")]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::ManualClock;
use proptest::prelude::*;

type Events<K, V> = Arc<Mutex<Vec<(K, V, RemovalCause)>>>;

fn take<K, V>(events: &Events<K, V>) -> Vec<(K, V, RemovalCause)> {
    std::mem::take(&mut *events.lock().unwrap())
}

/// A cache whose listener records into the returned list.
fn recorded<K, V>(
    builder: cache_backends::memory::MemoryCacheBuilder<K, V>,
) -> (MemoryCache<K, V>, Events<K, V>)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    let events: Events<K, V> = Arc::default();
    let sink = events.clone();
    let cache = builder
        .eviction_listener(move |k, v, c| sink.lock().unwrap().push((k, v, c)))
        .build();
    (cache, events)
}

/// A small deterministic generator for workloads (the cache's own hashing
/// is seeded randomly, so runs still differ in what the policy sees).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// An exact LRU of `capacity` entries: the baseline for hit ratios.
struct Lru {
    capacity: usize,
    clock: u64,
    by_key: HashMap<u64, u64>,
    by_use: BTreeMap<u64, u64>,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru {
            capacity,
            clock: 0,
            by_key: HashMap::new(),
            by_use: BTreeMap::new(),
        }
    }

    /// Requests `k` (loading it on a miss); whether it was a hit.
    fn request(&mut self, k: u64) -> bool {
        self.clock += 1;
        let hit = match self.by_key.insert(k, self.clock) {
            Some(last) => {
                self.by_use.remove(&last);
                true
            }
            None => false,
        };
        self.by_use.insert(self.clock, k);
        if self.by_key.len() > self.capacity {
            let (_, victim) = self.by_use.pop_first().unwrap();
            self.by_key.remove(&victim);
        }
        hit
    }

    fn contains(&self, k: u64) -> bool {
        self.by_key.contains_key(&k)
    }
}

/// The read-through pattern: a get, and an insert on a miss. Whether it hit.
fn request(cache: &MemoryCache<u64, u64>, k: u64) -> bool {
    if cache.get(&k).is_some() {
        true
    } else {
        cache.insert(k, k);
        false
    }
}

/// Hit ratios of the cache and of an exact LRU of the same size over
/// `keys`, both starting from the state earlier calls left.
fn hit_ratios(cache: &MemoryCache<u64, u64>, lru: &mut Lru, keys: &[u64]) -> (f64, f64) {
    let (mut hits, mut lru_hits) = (0u32, 0u32);
    for &k in keys {
        hits += u32::from(request(cache, k));
        lru_hits += u32::from(lru.request(k));
    }
    let n = f64::from(u32::try_from(keys.len()).unwrap());
    (f64::from(hits) / n, f64::from(lru_hits) / n)
}

fn single_partition(capacity: u64) -> MemoryCache<u64, u64> {
    MemoryCache::builder()
        .max_capacity(capacity)
        .partitions(1)
        .build()
}

#[test]
fn a_newcomer_that_loses_admission_is_reported_and_not_stored() {
    // Ten entries in one partition: the window is empty, so a new key
    // meets its victim as soon as it arrives.
    let (cache, events) = recorded(MemoryCache::builder().max_capacity(10).partitions(1));
    for k in 0..10u64 {
        cache.insert(k, k);
    }
    // Every resident is popular.
    for _ in 0..5 {
        for k in 0..10u64 {
            assert_eq!(cache.get(&k), Some(k));
        }
    }
    assert!(take(&events).is_empty());
    cache.insert(100, 100);
    // A key seen once loses to any resident: it is turned away, as an
    // eviction of its own value, and every resident stays.
    assert_eq!(cache.get(&100), None);
    assert_eq!(take(&events), vec![(100, 100, RemovalCause::Size)]);
    assert_eq!(cache.entry_count(), 10);
    for k in 0..10u64 {
        assert_eq!(cache.get(&k), Some(k));
    }
    cache.validate();
    // Asked for often enough, a newcomer outranks the least popular
    // resident and gets in, displacing exactly one.
    let mut admitted = false;
    for _ in 0..40 {
        cache.insert(200, 200);
        if cache.get(&200) == Some(200) {
            admitted = true;
            break;
        }
    }
    assert!(admitted, "a key asked for again and again is admitted");
    let evicted: Vec<_> = take(&events).into_iter().filter(|e| e.0 != 200).collect();
    assert_eq!(evicted.len(), 1, "one resident made room: {evicted:?}");
    assert_eq!(cache.entry_count(), 10);
    cache.validate();
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
    // the capacity: turning a newcomer away or evicting a resident frees
    // exactly the one slot the newcomer needs.
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
fn an_oversized_entry_is_rejected_and_leaves_no_stale_value() {
    let (cache, events) = recorded(
        MemoryCache::builder()
            .max_capacity(100)
            .partitions(1)
            .weigher(|_, v: &Vec<u8>| v.len() as u32),
    );
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
    cache.validate();

    // An entry of exactly the capacity is not too heavy. Whether it
    // displaces the resident entry is the policy's choice, but either way
    // exactly one of the two is left, and the other is reported.
    cache.insert(3, vec![4; 100]);
    let got = take(&events);
    if cache.contains_key(&3) {
        assert_eq!(got, vec![(2, vec![2; 10], RemovalCause::Size)]);
        assert_eq!(cache.get(&2), None);
        assert_eq!(cache.weighted_size(), 100);
    } else {
        assert_eq!(got, vec![(3, vec![4; 100], RemovalCause::Size)]);
        assert_eq!(cache.get(&2), Some(vec![2; 10]));
        assert_eq!(cache.weighted_size(), 10);
    }
    assert_eq!(cache.entry_count(), 1);
    cache.validate();
    // In an empty cache it fits exactly, evicting nothing.
    cache.clear();
    take(&events);
    cache.insert(3, vec![4; 100]);
    assert_eq!(cache.get(&3), Some(vec![4; 100]));
    assert_eq!(cache.weighted_size(), 100);
    assert_eq!(take(&events), vec![]);
    cache.validate();
}

#[test]
fn an_update_replaces_first_and_may_then_evict_the_grown_entry() {
    // Updating a key reports the old value as replaced before anything
    // else; if the new value makes the partition too heavy, something is
    // evicted in the same call, possibly the updated entry itself. Either
    // way no old value is ever readable again.
    let (cache, events) = recorded(
        MemoryCache::builder()
            .max_capacity(10)
            .partitions(1)
            .weigher(|_, v: &(u32, u32)| v.1),
    );
    let mut id = 0;
    let mut last = HashMap::new();
    for round in 0..200u32 {
        for k in 0..4u32 {
            id += 1;
            // Weights 1..=10: a key grows and shrinks from round to round.
            let present = cache.contains_key(&k);
            let value = (id, 1 + (round * 7 + k * 3) % 10);
            let previous = last.insert(k, value);
            cache.insert(k, value);
            let got = take(&events);
            assert_eq!(
                present,
                matches!(got.first(), Some((key, _, RemovalCause::Replaced)) if *key == k),
                "round {round} key {k}: {got:?}"
            );
            for (i, (key, v, cause)) in got.iter().enumerate() {
                match cause {
                    RemovalCause::Replaced => {
                        assert_eq!((i, *key), (0, k), "only the old value is replaced");
                        assert_eq!(Some(*v), previous, "the value replaced is the last one");
                    }
                    RemovalCause::Size => {}
                    other => panic!("unexpected {other:?} in {got:?}"),
                }
            }
            match cache.get(&k) {
                Some(v) => assert_eq!(v.0, id, "a stale value survived"),
                None => assert!(
                    got.iter()
                        .any(|(key, v, c)| *key == k && v.0 == id && *c == RemovalCause::Size),
                    "the new value vanished unreported: {got:?}"
                ),
            }
            assert!(cache.weighted_size() <= 10);
            assert!(cache.entry_count() >= 1, "an update emptied the cache");
            cache.validate();
        }
    }
}

/// Tracks every value a test inserted that the listener has not yet
/// reported, to check that each is reported exactly once.
#[derive(Default)]
struct Outstanding {
    by_key: HashMap<u16, Vec<(u32, u32)>>,
    total: u64,
    weight: u64,
}

impl Outstanding {
    fn inserted(&mut self, k: u16, v: (u32, u32)) {
        self.by_key.entry(k).or_default().push(v);
        self.total += 1;
        self.weight += u64::from(v.1);
    }

    /// Accounts for one report; panics if the value was never inserted or
    /// was already reported.
    fn reported(&mut self, k: u16, v: (u32, u32), cause: RemovalCause) {
        let values = self.by_key.entry(k).or_default();
        let Some(i) = values.iter().position(|x| *x == v) else {
            panic!(
                "({k}, {v:?}) reported as {cause:?} but not outstanding (twice, or never inserted)"
            );
        };
        values.swap_remove(i);
        self.total -= 1;
        self.weight -= u64::from(v.1);
    }

    fn of(&self, k: u16) -> &[(u32, u32)] {
        self.by_key.get(&k).map_or(&[], Vec::as_slice)
    }
}

#[test]
fn the_listener_reports_every_value_exactly_once() {
    let (cache, events) = recorded(
        MemoryCache::builder()
            .max_capacity(40)
            .partitions(2)
            .weigher(|_, v: &(u32, u32)| v.1),
    );
    let mut outstanding = Outstanding::default();
    let mut seen_causes = HashSet::new();
    let mut x = 7u32;
    for i in 0..3_000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let key = ((x >> 8) % 50) as u16;
        let weight = 1 + (x >> 20) % 12;
        if i % 10 == 9 {
            cache.remove(&key);
        } else {
            // Some reads, so that entries earn a place in the main region.
            if i % 3 == 0 {
                let _ = cache.get(&(key / 2));
            }
            // The step number makes every value unique.
            cache.insert(key, (i, weight));
            outstanding.inserted(key, (i, weight));
        }
        for (k, v, cause) in take(&events) {
            seen_causes.insert(cause);
            outstanding.reported(k, v, cause);
        }
        assert_eq!(
            outstanding.total,
            cache.entry_count(),
            "every entry that leaves is reported exactly once"
        );
        assert_eq!(outstanding.weight, cache.weighted_size());
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
    assert_eq!(got.len() as u64, outstanding.total);
    assert!(got.iter().all(|e| e.2 == RemovalCause::Explicit));
    for (k, v, cause) in got {
        outstanding.reported(k, v, cause);
    }
    assert_eq!(cache.entry_count(), 0);
    assert_eq!(cache.weighted_size(), 0);
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
    // Tenant 1's entries are never read again: cold, yet untouchable by
    // the other tenant's churn.
    for id in 0..100 {
        cache.insert((1, id), id);
    }
    for id in 0..10_000 {
        if cache.get(&(0, id % 3_000)).is_none() {
            cache.insert((0, id % 3_000), id);
        }
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
    cache.validate();
    // The partition index is taken modulo the count: odd and even keys go
    // to different partitions, and each keeps its share.
    let wide: MemoryCache<u32, u32> = MemoryCache::builder()
        .max_capacity(4)
        .partitions(2)
        .partition_fn(|k: &u32| *k as usize + 1_000_001)
        .build();
    for k in 0..100 {
        wide.insert(k, k);
    }
    assert_eq!(wide.entry_count(), 4);
    let even = (0..100).step_by(2).filter(|k| wide.contains_key(k)).count();
    assert_eq!(even, 2, "each partition holds exactly its share");
    wide.validate();
}

#[test]
fn popular_entries_survive_a_long_scan() {
    // Written without reads (a bulk load), or read through the cache like
    // any other keys; the latter is shorter because a scan that long is the
    // workload now: after some 50 times the capacity of misses, the
    // popularity of entries not read since has aged away.
    for (read_through, scan) in [(false, 10_000), (true, 2_000)] {
        let cache = single_partition(100);
        let mut lru = Lru::new(100);
        for k in 0..50 {
            request(&cache, k);
            lru.request(k);
        }
        for _ in 0..20 {
            for k in 0..50 {
                assert!(request(&cache, k), "hot key {k} lost before the scan");
                lru.request(k);
            }
        }
        for k in 1_000_000..1_000_000 + scan {
            if read_through {
                request(&cache, k);
            } else {
                cache.insert(k, k);
            }
            lru.request(k);
            assert!(cache.entry_count() <= 100);
        }
        let survivors = (0..50).filter(|k| cache.contains_key(k)).count();
        assert_eq!((0..50).filter(|&k| lru.contains(k)).count(), 0);
        assert!(
            survivors >= 45,
            "only {survivors} of 50 hot keys survived a scan of {scan} (read through: {read_through})"
        );
        cache.validate();
    }
}

#[test]
fn popular_entries_keep_hitting_during_a_scan() {
    // Each hot key is requested once per 150 requests, 100 of them one-time
    // keys, so an LRU of 100 entries never hits it.
    let cache = single_partition(100);
    let mut lru = Lru::new(100);
    let mut scan = 1_000_000..;
    let (mut hot_requests, mut hot_hits, mut lru_hits) = (0u32, 0u32, 0u32);
    for round in 0..100 {
        for k in 0..50 {
            let (hit, lru_hit) = (request(&cache, k), lru.request(k));
            if round >= 20 {
                hot_requests += 1;
                hot_hits += u32::from(hit);
                lru_hits += u32::from(lru_hit);
            }
            for k in scan.by_ref().take(2) {
                request(&cache, k);
                lru.request(k);
            }
        }
    }
    assert_eq!(lru_hits, 0);
    let ratio = f64::from(hot_hits) / f64::from(hot_requests);
    assert!(ratio > 0.9, "hot keys hit only {ratio:.3} of the time");
    cache.validate();
}

#[test]
fn a_loop_larger_than_the_cache_still_hits() {
    // A cycle over twice the capacity: LRU always evicts the key needed
    // next, so it never hits.
    let cache = single_partition(100);
    let mut lru = Lru::new(100);
    let keys: Vec<u64> = (0..40_000).map(|i| i % 200).collect();
    hit_ratios(&cache, &mut lru, &keys[..10_000]);
    let (ratio, lru_ratio) = hit_ratios(&cache, &mut lru, &keys[10_000..]);
    assert_eq!(lru_ratio, 0.0);
    assert!(ratio > 0.3, "a loop hits only {ratio:.3} of the time");
    cache.validate();
}

#[test]
fn a_persistently_requested_key_is_eventually_admitted() {
    // A full cache of popular entries: a newcomer loses admission at first,
    // but one that keeps being requested gets in.
    let cache = single_partition(100);
    for _ in 0..20 {
        for k in 0..100 {
            request(&cache, k);
        }
    }
    let mut misses = 0;
    while !request(&cache, 1_000) {
        misses += 1;
        assert!(misses < 3_000, "the newcomer is locked out");
    }
    assert!(cache.contains_key(&1_000));
    assert_eq!(cache.entry_count(), 100);
    cache.validate();
}

#[test]
fn a_shifting_working_set_hits_about_as_often_as_lru() {
    // Recency pays: the hot set slides over the key space, each key being
    // requested for a short while and never again. The window must grow
    // to track it (the hill climber adjusts every 1,000 requests here).
    let cache = single_partition(100);
    let mut lru = Lru::new(100);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let keys: Vec<u64> = (0..70_000).map(|i| i / 5 + rng.below(50)).collect();
    hit_ratios(&cache, &mut lru, &keys[..30_000]);
    let (ratio, lru_ratio) = hit_ratios(&cache, &mut lru, &keys[30_000..]);
    assert!(
        lru_ratio > 0.75,
        "the workload favours recency: {lru_ratio:.3}"
    );
    assert!(
        ratio > lru_ratio - 0.04,
        "hit ratio {ratio:.3} trails LRU's {lru_ratio:.3}"
    );
    cache.validate();
}

/// One operation of the random workloads below. Values are `(id, weight)`
/// with a unique id per insert, and the weigher reads the weight.
#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Get(u16),
    Remove(u16),
    Contains(u16),
    Clear,
    /// Many reads of keys drawn from a seeded generator, enough together
    /// to make the hill climber move the window.
    Reads(u64, u16),
}

const KEYS: u16 = 24;

/// A cache under test with what it must hold, and the listener's reports.
struct Checked {
    cache: MemoryCache<u16, (u32, u32)>,
    events: Events<u16, (u32, u32)>,
    /// The last value inserted for each key, admitted or not.
    last: HashMap<u16, (u32, u32)>,
    outstanding: Outstanding,
    next_id: u32,
}

impl Checked {
    fn new(capacity: u64, partitions: usize) -> Self {
        let (cache, events) = recorded(
            MemoryCache::builder()
                .max_capacity(capacity)
                .partitions(partitions)
                .weigher(|_, v: &(u32, u32)| v.1),
        );
        Checked {
            cache,
            events,
            last: HashMap::new(),
            outstanding: Outstanding::default(),
            next_id: 0,
        }
    }

    /// What a read of `k` must return: the last value inserted, if any of
    /// its values is still unreported (only the last one may be).
    fn expected(&self, k: u16) -> Option<(u32, u32)> {
        self.outstanding.of(k).first().map(|_| self.last[&k])
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Insert(k, weight) => {
                self.next_id += 1;
                let v = (self.next_id, weight);
                self.cache.insert(k, v);
                self.outstanding.inserted(k, v);
                let previous = self.last.insert(k, v);
                self.settle(op, |key, value, cause| match cause {
                    RemovalCause::Replaced => key == k && Some(value) == previous,
                    RemovalCause::Size => true,
                    _ => false,
                });
            }
            Op::Get(k) => {
                let expected = self.expected(k);
                assert_eq!(self.cache.get(&k), expected, "{op:?}");
                self.settle(op, |_, _, _| false);
            }
            Op::Remove(k) => {
                let expected = self.expected(k);
                assert_eq!(self.cache.remove(&k), expected, "{op:?}");
                self.settle(op, |key, value, cause| {
                    cause == RemovalCause::Explicit && key == k && Some(value) == expected
                });
                assert!(!self.cache.contains_key(&k), "a removed key is present");
                assert_eq!(self.cache.get(&k), None, "a removed key is readable");
            }
            Op::Contains(k) => {
                let expected = self.expected(k).is_some();
                assert_eq!(self.cache.contains_key(&k), expected, "{op:?}");
                self.settle(op, |_, _, _| false);
            }
            Op::Clear => {
                self.cache.clear();
                self.settle(op, |_, _, cause| cause == RemovalCause::Explicit);
                assert_eq!(self.outstanding.total, 0, "clear left entries");
            }
            Op::Reads(seed, n) => {
                let mut rng = Rng(seed | 1);
                for _ in 0..n {
                    // Skewed: low keys are read far more often.
                    let k = (rng.below(u64::from(KEYS)) * rng.below(u64::from(KEYS))
                        / u64::from(KEYS)) as u16;
                    assert_eq!(self.cache.get(&k), self.expected(k), "{op:?}");
                }
                self.settle(op, |_, _, _| false);
            }
        }
        self.check(op);
    }

    /// Accounts for the listener's reports of one operation, each of which
    /// must be allowed by `allowed` and concern an unreported value.
    fn settle(&mut self, op: &Op, allowed: impl Fn(u16, (u32, u32), RemovalCause) -> bool) {
        let got = take(&self.events);
        for &(k, v, cause) in &got {
            assert!(allowed(k, v, cause), "{op:?} reported {got:?}");
            self.outstanding.reported(k, v, cause);
        }
    }

    fn check(&self, op: &Op) {
        let cache = &self.cache;
        cache.validate();
        assert!(cache.weighted_size() <= cache.max_capacity(), "{op:?}");
        assert_eq!(cache.entry_count(), self.outstanding.total, "{op:?}");
        assert_eq!(cache.weighted_size(), self.outstanding.weight, "{op:?}");
        for k in 0..KEYS {
            let values = self.outstanding.of(k);
            assert!(
                values.len() <= 1,
                "{op:?}: key {k} has unreported values {values:?}"
            );
            assert_eq!(
                cache.contains_key(&k),
                !values.is_empty(),
                "{op:?}: key {k}, unreported {values:?}"
            );
            if let Some(v) = values.first() {
                assert_eq!(Some(v), self.last.get(&k), "{op:?}: a stale value");
            }
        }
    }
}

fn ops(capacity: u64) -> impl Strategy<Value = Vec<Op>> {
    let key = 0..KEYS;
    let weight = prop_oneof![3 => 0u32..4, 2 => 0..=capacity as u32 + 2];
    let op = prop_oneof![
        10 => (key.clone(), weight).prop_map(|(k, w)| Op::Insert(k, w)),
        5 => key.clone().prop_map(Op::Get),
        2 => key.clone().prop_map(Op::Remove),
        2 => key.prop_map(Op::Contains),
        1 => (any::<u64>(), 0u16..600).prop_map(|(s, n)| Op::Reads(s, n)),
    ];
    // Clear rarely, so that most runs fill the cache for long stretches.
    let op = prop_oneof![60 => op, 1 => Just(Op::Clear)];
    proptest::collection::vec(op, 1..250)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_weighted_workloads_keep_every_invariant(
        (capacity, partitions, ops) in (8u64..64, 1usize..=3)
            .prop_flat_map(|(c, p)| (Just(c), Just(p), ops(c)))
    ) {
        let mut checked = Checked::new(capacity, partitions);
        for op in &ops {
            checked.apply(op);
        }
        // Finally read every key: whatever is left is the last value.
        for k in 0..KEYS {
            checked.apply(&Op::Get(k));
        }
    }
}

#[test]
fn a_long_weighted_workload_keeps_every_invariant() {
    // Long enough for many window adjustments in both directions: phases
    // of skewed reads (frequency pays) alternate with a sliding hot set
    // (recency pays), with weights that change on every update.
    let mut checked = Checked::new(48, 1);
    let mut rng = Rng(0xDEAD_BEEF);
    for step in 0..30_000u64 {
        let phase = step / 3_000 % 2;
        let k = if phase == 0 {
            (rng.below(u64::from(KEYS)) * rng.below(u64::from(KEYS)) / u64::from(KEYS)) as u16
        } else {
            ((step / 20 + rng.below(8)) % u64::from(KEYS)) as u16
        };
        let op = match rng.below(20) {
            0 => Op::Remove(k),
            1 => Op::Contains(k),
            2..=9 => Op::Insert(
                k,
                1 + rng.below(6) as u32 + u32::from(rng.below(40) == 0) * 40,
            ),
            _ => Op::Get(k),
        };
        if matches!(op, Op::Get(_)) && checked.expected(k).is_none() {
            // A read-through miss loads the key.
            checked.apply(&op);
            checked.apply(&Op::Insert(k, 1 + rng.below(4) as u32));
        } else {
            checked.apply(&op);
        }
    }
}

/// A regression test: eviction gives a victim with pending hits a second
/// chance and moves on to its newer neighbour; when the spared entry was
/// the newest of its queue, the walk once went on to the next queue and,
/// after the window, gave up with the partition still over capacity. Here
/// 2 (weight 1) and 3 (25, recently read) are in probation and 1 (2, just
/// updated) in protected; updating 1 to 6 needs 2 freed: 2 goes, 3 and 1
/// are spared, and the cache was left holding 31 of 30.
#[test]
fn a_heavier_update_never_leaves_the_cache_over_capacity() {
    let cache: MemoryCache<u32, u32> = MemoryCache::builder()
        .max_capacity(30)
        .partitions(1)
        .weigher(|_, w: &u32| *w)
        .build();
    cache.insert(1, 2);
    assert_eq!(cache.get(&1), Some(2));
    cache.insert(2, 1);
    cache.insert(3, 25);
    // Over capacity: 1 is promoted, and 4 is turned away (with the usual
    // sketch; whatever the policy decides, capacity must hold below).
    cache.insert(4, 5);
    let _ = cache.get(&3);
    cache.insert(1, 6);
    assert!(
        cache.weighted_size() <= cache.max_capacity(),
        "weighted_size {} over max_capacity {}",
        cache.weighted_size(),
        cache.max_capacity()
    );
    cache.validate();
}

/// The cache counts what it evicted for room and what expired, apart from
/// what the application removed or replaced.
#[test]
fn evictions_and_expirations_are_counted_apart() {
    let clock = cache_core::ManualClock::default();
    let cache: MemoryCache<u32, u32> = MemoryCache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .build();
    for i in 0..1_000 {
        cache.insert(i, i);
    }
    assert_eq!(cache.evicted_count(), 1_000 - cache.entry_count());
    assert_eq!(cache.expired_count(), 0);
    let held: Vec<u32> = (0..1_000).filter(|i| cache.contains_key(i)).collect();
    cache.remove(&held[0]);
    cache.insert(held[1], 7);
    for &k in &held[2..12] {
        cache
            .insert_with_ttl(k, k, std::time::Duration::from_secs(1))
            .unwrap();
    }
    clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(cache.purge_expired(), 10);
    assert_eq!(cache.expired_count(), 10);
    assert_eq!(
        cache.evicted_count(),
        1_000 - 100,
        "removals and replacements are not evictions"
    );
}
