//! The prefetcher against simulated caches: what it learns, what it
//! fetches, what that is worth, and the bounds it keeps.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cache_core::ErrorKind;
use cache_warm::{FetchFn, PREFETCH_TOTAL, PrefetchSettings, Prefetcher, PresentFn, WarmOutcome};
use futures::FutureExt;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A cache that is only a set of keys, with the fetch calls it received.
struct SetCache<K> {
    keys: Arc<Mutex<HashSet<K>>>,
    calls: Arc<Mutex<Vec<K>>>,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> SetCache<K> {
    fn new() -> Self {
        SetCache {
            keys: Arc::default(),
            calls: Arc::default(),
        }
    }

    fn present(&self) -> PresentFn<K> {
        let keys = Arc::clone(&self.keys);
        Arc::new(move |key| keys.lock().contains(key))
    }

    /// A fetch that records the call and puts the key in the set.
    fn fetch(&self) -> FetchFn<K> {
        let keys = Arc::clone(&self.keys);
        let calls = Arc::clone(&self.calls);
        Arc::new(move |key: K| {
            calls.lock().push(key.clone());
            let outcome = if keys.lock().insert(key) {
                WarmOutcome::Warmed
            } else {
                WarmOutcome::Present
            };
            async move { outcome }.boxed()
        })
    }

    fn prefetcher(&self, settings: PrefetchSettings) -> Prefetcher<K> {
        Prefetcher::new(settings, self.present(), self.fetch()).unwrap()
    }
}

fn s(key: &str) -> String {
    key.to_owned()
}

#[tokio::test]
async fn learns_a_deterministic_sequence_and_fetches_the_next_key() {
    let cache = SetCache::<String>::new();
    let prefetcher = cache.prefetcher(PrefetchSettings::default());
    for session in 0..5 {
        for page in ["A", "B", "C"] {
            prefetcher.observe(session, &s(page), false);
        }
    }
    prefetcher.idle().await;
    assert_eq!(prefetcher.predict(&s("A")), vec![(s("B"), 1.0)]);
    assert_eq!(prefetcher.predict(&s("B")), vec![(s("C"), 1.0)]);
    // The last key of a session predicts nothing, nor does a key never seen.
    assert_eq!(prefetcher.predict(&s("C")), vec![]);
    assert_eq!(prefetcher.predict(&s("Z")), vec![]);

    cache.keys.lock().clear();
    cache.calls.lock().clear();
    let before = prefetcher.stats();
    prefetcher.observe(99, &s("A"), false);
    prefetcher.idle().await;
    assert_eq!(*cache.calls.lock(), vec![s("B")]);
    assert!(cache.keys.lock().contains("B"));

    // The read of B hits the prefetched entry, and in turn fetches C.
    prefetcher.observe(99, &s("B"), true);
    prefetcher.idle().await;
    assert_eq!(*cache.calls.lock(), vec![s("B"), s("C")]);
    let after = prefetcher.stats();
    assert_eq!(after.used - before.used, 1);
    assert_eq!(after.warmed - before.warmed, 2);
    assert_eq!(after.observed - before.observed, 2);
}

/// A least-recently-used set of keys, standing for a small cache.
struct Lru {
    capacity: usize,
    order: VecDeque<u64>,
}

impl Lru {
    fn contains(&self, key: u64) -> bool {
        self.order.contains(&key)
    }

    /// Reads `key`: whether it was held; it is held, most recent, after.
    fn read(&mut self, key: u64) -> bool {
        let held = self.remove(key);
        self.insert(key);
        held
    }

    fn remove(&mut self, key: u64) -> bool {
        match self.order.iter().position(|&k| k == key) {
            Some(i) => {
                self.order.remove(i);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: u64) {
        if self.order.len() == self.capacity {
            self.order.pop_front();
        }
        self.order.push_back(key);
    }
}

#[tokio::test]
async fn sessions_following_typical_paths_are_prefetched_precisely() {
    const PAGES: u64 = 200;
    const STREAMS: usize = 16;
    const SESSIONS: usize = 4000;
    let mut rng = StdRng::seed_from_u64(7);
    // Six typical paths of 6 to 10 pages, the first the most popular.
    let paths: Vec<Vec<u64>> = (0..6)
        .map(|_| {
            let len = rng.random_range(6..=10);
            let mut path: Vec<u64> = Vec::new();
            while path.len() < len {
                let page = rng.random_range(0..PAGES);
                if !path.contains(&page) {
                    path.push(page);
                }
            }
            path
        })
        .collect();
    let weights: Vec<f64> = (0..paths.len()).map(|i| 1.0 / (i + 1) as f64).collect();
    let total_weight: f64 = weights.iter().sum();
    let pick_path = |rng: &mut StdRng| {
        let mut x = rng.random::<f64>() * total_weight;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    };

    let lru = Arc::new(Mutex::new(Lru {
        capacity: 30,
        order: VecDeque::new(),
    }));
    let present: PresentFn<u64> = {
        let lru = Arc::clone(&lru);
        Arc::new(move |key| lru.lock().contains(*key))
    };
    let fetch: FetchFn<u64> = {
        let lru = Arc::clone(&lru);
        Arc::new(move |key| {
            let mut lru = lru.lock();
            let outcome = if lru.contains(key) {
                WarmOutcome::Present
            } else {
                lru.insert(key);
                WarmOutcome::Warmed
            };
            async move { outcome }.boxed()
        })
    };
    let prefetcher = Prefetcher::new(PrefetchSettings::default(), present, fetch).unwrap();

    // Each stream runs one session at a time: a path, walked step by step,
    // with a detour to a random page one step in eight, and abandoned one
    // step in twenty. A finished session's stream gets a new id.
    let mut streams: Vec<(u64, usize, usize)> = (0..STREAMS)
        .map(|i| (i as u64, pick_path(&mut rng), 0))
        .collect();
    let mut next_id = STREAMS as u64;
    let mut started = STREAMS;
    let mut lookups = 0u64;
    while started < SESSIONS {
        let slot = rng.random_range(0..STREAMS);
        let (id, path, step) = streams[slot];
        let page = if rng.random_bool(1.0 / 8.0) {
            rng.random_range(0..PAGES)
        } else {
            streams[slot].2 += 1;
            paths[path][step]
        };
        let hit = lru.lock().read(page);
        prefetcher.observe(id, &page, hit);
        lookups += 1;
        // Time passes between a session's page views; fetches land in it.
        prefetcher.idle().await;
        if streams[slot].2 == paths[path].len() || rng.random_bool(1.0 / 20.0) {
            streams[slot] = (next_id, pick_path(&mut rng), 0);
            next_id += 1;
            started += 1;
        }
    }

    let stats = prefetcher.stats();
    let baseline_misses = stats.misses + stats.used;
    println!(
        "{lookups} lookups: precision {:.3}, coverage {:.3} (misses {} -> {}), {stats:?}",
        stats.precision(),
        stats.coverage(),
        baseline_misses,
        stats.misses,
    );
    assert_eq!(stats.observed, lookups);
    assert!(stats.warmed > 1000, "{stats:?}");
    assert!(stats.precision() > 0.8, "precision {}", stats.precision());
    assert!(stats.coverage() > 0.38, "coverage {}", stats.coverage());
}

/// Draws keys `0..n` with probability proportional to `1 / (rank + 1)`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|rank| {
                sum += 1.0 / (rank + 1) as f64;
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut StdRng) -> u64 {
        let x = rng.random::<f64>();
        self.cdf.partition_point(|&c| c < x).min(self.cdf.len() - 1) as u64
    }
}

/// Replays independent Zipf lookups over 100 000 keys, the hottest 10 000
/// held by the cache, and returns the prefetcher's stats.
async fn independent_zipf(settings: PrefetchSettings) -> cache_warm::PrefetchStats {
    const KEYS: usize = 100_000;
    const HOT: u64 = 10_000;
    let present: PresentFn<u64> = Arc::new(|key| *key < HOT);
    let fetch: FetchFn<u64> = Arc::new(|_| async { WarmOutcome::Warmed }.boxed());
    let prefetcher = Prefetcher::new(settings, present, fetch).unwrap();
    let zipf = Zipf::new(KEYS);
    let mut rng = StdRng::seed_from_u64(11);
    for i in 0..200_000u64 {
        let key = zipf.sample(&mut rng);
        prefetcher.observe(i % 8, &key, key < HOT);
        if i % 1024 == 0 {
            prefetcher.idle().await;
        }
    }
    prefetcher.idle().await;
    prefetcher.stats()
}

#[tokio::test]
async fn a_workload_without_sequence_issues_almost_no_fetches() {
    let stats = independent_zipf(PrefetchSettings::default()).await;
    println!("independent Zipf, defaults: {stats:?}");
    assert_eq!(stats.observed, 200_000);
    assert!(stats.issued < 2_000, "{stats:?}");
    // The check is not vacuous: without the threshold and the minimum
    // count, the same lookups issue many fetches.
    let loose = PrefetchSettings::default().threshold(0.01).min_count(1);
    let stats = independent_zipf(loose).await;
    println!("independent Zipf, loose: {stats:?}");
    assert!(stats.issued > 2_000, "{stats:?}");
}

#[tokio::test]
async fn the_successor_table_stays_within_its_memory_bound() {
    let settings = PrefetchSettings::default().memory_bytes(64 << 10);
    let bound = settings.key_capacity::<u64>();
    assert!(bound * settings.bytes_per_key::<u64>() <= 64 << 10);
    let cache = SetCache::<u64>::new();
    let prefetcher = cache.prefetcher(settings);
    assert!(prefetcher.key_capacity() <= bound);
    for key in 0..1_000_000u64 {
        prefetcher.observe(key / 100, &key, false);
    }
    let stats = prefetcher.stats();
    println!("bound {bound}: {stats:?}");
    assert!(stats.learned_keys <= bound as u64, "{stats:?}");
    assert!(
        stats.learned_keys as usize >= bound / 2,
        "the table is used: {stats:?}"
    );
    assert_eq!(stats.issued, 0);
}

#[tokio::test]
async fn a_changed_sequence_is_relearned() {
    // A small table ages quickly: its counts halve every few hundred
    // transitions (the period scales with the table's size).
    let cache = SetCache::<u64>::new();
    let prefetcher = cache.prefetcher(PrefetchSettings::default().memory_bytes(64 << 10));
    let (a, b, c) = (1u64, 2u64, 3u64);
    let mut stream = 0;
    let mut walk = |prefetcher: &Prefetcher<u64>, next: u64| {
        stream += 1;
        prefetcher.observe(stream, &a, false);
        prefetcher.observe(stream, &next, false);
    };
    for _ in 0..2_000 {
        walk(&prefetcher, b);
    }
    assert_eq!(prefetcher.predict(&a), vec![(b, 1.0)]);
    // A tenth as many walks of the new sequence: without aging, B's count
    // would still be ten times C's.
    for _ in 0..200 {
        walk(&prefetcher, c);
    }
    let predicted = prefetcher.predict(&a);
    println!("after the change: {predicted:?}");
    assert_eq!(predicted.first().map(|p| p.0), Some(c), "{predicted:?}");
    prefetcher.idle().await;
}

/// Trains `key -> 1000 + key` for `keys` keys, three sessions each, while
/// the cache claims to hold everything, so that nothing is fetched yet.
fn train_pairs(prefetcher: &Prefetcher<u64>, keys: u64, stream: &mut u64) {
    for _ in 0..3 {
        for key in 0..keys {
            *stream += 1;
            prefetcher.observe(*stream, &key, true);
            prefetcher.observe(*stream, &(1000 + key), true);
        }
    }
}

#[tokio::test]
async fn the_queue_is_bounded_when_fetches_never_finish() {
    let holds_everything = Arc::new(AtomicBool::new(true));
    let present: PresentFn<u64> = {
        let flag = Arc::clone(&holds_everything);
        Arc::new(move |_| flag.load(Ordering::Relaxed))
    };
    let fetch: FetchFn<u64> = Arc::new(|_| futures::future::pending().boxed());
    let settings = PrefetchSettings::default().queue(8).concurrency(1);
    let prefetcher = Prefetcher::new(settings, present, fetch).unwrap();
    let mut stream = 0;
    train_pairs(&prefetcher, 50, &mut stream);
    assert_eq!(prefetcher.stats().issued, 0);
    holds_everything.store(false, Ordering::Relaxed);

    let check = |stats: &cache_warm::PrefetchStats| {
        assert!(stats.queued <= 8, "{stats:?}");
        assert!(stats.in_flight <= 1, "{stats:?}");
        // Nothing ever finishes: every issued key is queued or in flight.
        assert_eq!(stats.issued, stats.queued + stats.in_flight, "{stats:?}");
        // Every prediction (none held by the cache) is accounted for.
        assert_eq!(
            stats.issued + stats.deduplicated + stats.dropped,
            stats.predicted,
            "{stats:?}"
        );
    };
    for key in 0..50 {
        stream += 1;
        prefetcher.observe(stream, &key, false);
        check(&prefetcher.stats());
    }
    let stats = prefetcher.stats();
    assert_eq!(
        (stats.predicted, stats.issued, stats.dropped),
        (50, 8, 42),
        "{stats:?}"
    );

    // The worker takes one key and waits on it forever.
    for _ in 0..100 {
        if prefetcher.stats().in_flight == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let stats = prefetcher.stats();
    assert_eq!((stats.in_flight, stats.queued), (1, 7), "{stats:?}");
    for key in 0..50 {
        stream += 1;
        prefetcher.observe(stream, &key, false);
        check(&prefetcher.stats());
    }
    let stats = prefetcher.stats();
    // 0 is in flight and 1..8 queued (deduplicated); 8 takes the free place.
    assert_eq!(
        (stats.issued, stats.deduplicated, stats.dropped),
        (9, 8, 83),
        "{stats:?}"
    );
    prefetcher.shutdown();
}

#[tokio::test]
async fn a_prediction_queued_or_in_flight_is_fetched_once() {
    let cache = SetCache::<u64>::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let fetch: FetchFn<u64> = {
        let inner = cache.fetch();
        let gate = Arc::clone(&gate);
        Arc::new(move |key| {
            let gate = Arc::clone(&gate);
            let inner = Arc::clone(&inner);
            async move {
                let _open = gate.acquire().await.unwrap();
                inner(key).await
            }
            .boxed()
        })
    };
    let settings = PrefetchSettings::default().concurrency(4);
    let prefetcher = Prefetcher::new(settings, cache.present(), fetch).unwrap();
    let mut stream = 0;
    train_pairs(&prefetcher, 1, &mut stream);
    cache.keys.lock().clear();

    // Queued twice before the worker runs, then once more while in flight.
    prefetcher.observe(100, &0, false);
    prefetcher.observe(101, &0, false);
    for _ in 0..100 {
        if prefetcher.stats().in_flight == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(prefetcher.stats().in_flight, 1);
    prefetcher.observe(102, &0, false);
    gate.add_permits(10);
    prefetcher.idle().await;
    assert_eq!(*cache.calls.lock(), vec![1000]);
    let stats = prefetcher.stats();
    assert_eq!(
        (stats.issued, stats.deduplicated, stats.warmed),
        (1, 2, 1),
        "{stats:?}"
    );

    // Once fetched, the cache holds it, and it is not fetched again.
    prefetcher.observe(103, &0, false);
    prefetcher.idle().await;
    assert_eq!(*cache.calls.lock(), vec![1000]);
}

#[tokio::test]
async fn failed_and_panicking_fetches_are_counted_and_released() {
    let fetch: FetchFn<u64> = Arc::new(|key| {
        if key == 1000 {
            panic!("the fetch panicked");
        }
        async move {
            if key == 1001 {
                panic!("the fetch future panicked");
            }
            WarmOutcome::Failed(cache_core::Error::new(ErrorKind::Backend, "down"))
        }
        .boxed()
    });
    let present: PresentFn<u64> = Arc::new(|_| false);
    let prefetcher = Prefetcher::new(PrefetchSettings::default(), present, fetch).unwrap();
    let mut stream = 0;
    train_pairs(&prefetcher, 3, &mut stream);
    for round in 1..=2 {
        for key in 0..3 {
            stream += 1;
            prefetcher.observe(stream, &key, false);
        }
        prefetcher.idle().await;
        let stats = prefetcher.stats();
        // Each round issues all three again: the failures released them.
        assert_eq!(
            (stats.issued, stats.failed),
            (3 * round, 3 * round),
            "{stats:?}"
        );
        assert_eq!((stats.warmed, stats.in_flight, stats.queued), (0, 0, 0));
    }
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_worker() {
    let cache = SetCache::<u64>::new();
    let prefetcher = cache.prefetcher(PrefetchSettings::default());
    let mut stream = 0;
    train_pairs(&prefetcher, 2, &mut stream);
    prefetcher.idle().await;
    cache.keys.lock().clear();
    cache.calls.lock().clear();
    prefetcher.shutdown();
    prefetcher.observe(100, &0, false);
    prefetcher.idle().await;
    assert!(cache.calls.lock().is_empty());

    drop(prefetcher);

    // Dropping the last clone closes the queue, so the worker (which holds
    // only the shared state) ends, and the fetch closure with it.
    let fetch_refs = || Arc::strong_count(&cache.calls);
    for _ in 0..100 {
        if fetch_refs() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(fetch_refs(), 1, "the shut-down worker ended");
    let prefetcher = cache.prefetcher(PrefetchSettings::default());
    let clone = prefetcher.clone();
    drop(prefetcher);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(fetch_refs(), 2, "a clone keeps it running");
    drop(clone);
    for _ in 0..100 {
        if fetch_refs() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(fetch_refs(), 1, "the worker ended with the last clone");
}

#[test]
fn settings_are_validated() {
    let invalid = [
        (PrefetchSettings::default().memory_bytes(0), "memory_bytes"),
        (PrefetchSettings::default().candidates(0), "candidates"),
        (PrefetchSettings::default().candidates(17), "candidates"),
        (PrefetchSettings::default().threshold(0.0), "threshold"),
        (PrefetchSettings::default().threshold(1.5), "threshold"),
        (PrefetchSettings::default().threshold(f64::NAN), "threshold"),
        (PrefetchSettings::default().min_count(0), "min_count"),
        (PrefetchSettings::default().queue(0), "queue"),
        (PrefetchSettings::default().concurrency(0), "concurrency"),
        (PrefetchSettings::default().tracked(0), "tracked"),
    ];
    for (settings, field) in invalid {
        let e = settings.validate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{field}");
        assert!(e.message().contains(field), "{field}: {e}");
    }
    let fine = PrefetchSettings::default()
        .candidates(16)
        .threshold(1.0)
        .min_count(1)
        .queue(1)
        .concurrency(1)
        .tracked(1);
    assert!(fine.validate().is_ok());

    let cache = SetCache::<u64>::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let e = Prefetcher::new(
            PrefetchSettings::default().queue(0),
            cache.present(),
            cache.fetch(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        let e = Prefetcher::new(
            PrefetchSettings::default().memory_bytes(16),
            cache.present(),
            cache.fetch(),
        )
        .unwrap_err();
        assert!(e.message().contains("memory_bytes"), "{e}");
    });
    // Outside a runtime there is nowhere to spawn the worker.
    let e =
        Prefetcher::new(PrefetchSettings::default(), cache.present(), cache.fetch()).unwrap_err();
    assert!(e.message().contains("tokio runtime"), "{e}");
}

/// A recorder that keeps the last absolute value of each counter.
#[derive(Default)]
struct Recorded {
    counters: Arc<Mutex<HashMap<String, u64>>>,
}

struct Absolute {
    name: String,
    counters: Arc<Mutex<HashMap<String, u64>>>,
}

impl metrics::CounterFn for Absolute {
    fn increment(&self, value: u64) {
        *self.counters.lock().entry(self.name.clone()).or_default() += value;
    }

    fn absolute(&self, value: u64) {
        self.counters.lock().insert(self.name.clone(), value);
    }
}

impl metrics::Recorder for Recorded {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        metrics::Counter::from_arc(Arc::new(Absolute {
            name: format!("{}{{{}}}", key.name(), labels.join(",")),
            counters: Arc::clone(&self.counters),
        }))
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[tokio::test]
async fn metrics_report_the_counters() {
    let cache = SetCache::<u64>::new();
    let prefetcher = cache.prefetcher(PrefetchSettings::default());
    let mut stream = 0;
    train_pairs(&prefetcher, 2, &mut stream);
    cache.keys.lock().clear();
    prefetcher.observe(100, &0, false);
    prefetcher.idle().await;
    prefetcher.observe(100, &1000, true);
    let stats = prefetcher.stats();
    assert!(stats.warmed >= 1 && stats.used == 1, "{stats:?}");

    let recorder = Recorded::default();
    metrics::with_local_recorder(&recorder, || prefetcher.emit_metrics());
    let counters = recorder.counters.lock();
    let get = |event: &str| {
        counters
            .get(&format!("{PREFETCH_TOTAL}{{event={event}}}"))
            .copied()
    };
    assert_eq!(get("issued"), Some(stats.issued));
    assert_eq!(get("warmed"), Some(stats.warmed));
    assert_eq!(get("used"), Some(1));
    assert_eq!(get("unused"), Some(stats.unused));
    for event in ["present", "missing", "failed", "dropped"] {
        assert!(get(event).is_some(), "{event}");
    }
}
