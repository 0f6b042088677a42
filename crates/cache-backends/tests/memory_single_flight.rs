//! Loading through `MemoryCache`: concurrent callers for one key share one
//! loader run, errors reach every waiter and are not cached, and a leader
//! that dies hands over to a waiter.
#![cfg(feature = "memory")]

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use cache_backends::memory::MemoryCache;
use cache_core::ErrorKind;

const CALLERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
struct LoadError(u32);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "load failed with code {}", self.0)
    }
}

impl std::error::Error for LoadError {}

fn cache() -> MemoryCache<u32, u64> {
    MemoryCache::builder()
        .max_capacity(10_000)
        .partitions(4)
        .build()
}

/// Blocks until `count` reaches `target`, so a loader can hold its flight
/// open until every caller has at least started; panics after a generous
/// deadline instead of hanging.
fn wait_for(count: &AtomicUsize, target: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while count.load(Ordering::SeqCst) < target {
        assert!(Instant::now() < deadline, "callers never arrived");
        thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_callers_share_one_load() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache
                    .get_with_async(7, async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        42
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the loader must run once");
    assert_eq!(cache.get(&7), Some(42), "the loaded value is cached");
    assert_eq!(cache.get_with_async(7, async { 0 }).await, 42);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn concurrent_blocking_callers_share_one_load() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(CALLERS));
    let threads: Vec<_> = (0..CALLERS)
        .map(|i| {
            let (cache, calls, barrier) = (cache.clone(), calls.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                cache.get_with(7, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(50));
                    1_000 + i as u64
                })
            })
        })
        .collect();
    let values: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the loader must run once");
    assert!(
        values.iter().all(|&v| v == values[0]),
        "every caller must see the one loaded value: {values:?}"
    );
    assert_eq!(cache.get(&7), Some(values[0]));
}

#[test]
fn a_blocking_loader_error_reaches_every_waiter_and_is_not_cached() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, calls, arrived) = (cache.clone(), calls.clone(), arrived.clone());
            thread::spawn(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                cache.try_get_with(3, || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    wait_for(&arrived, CALLERS);
                    // Leaves the last arrivals ample time to join the flight.
                    thread::sleep(Duration::from_millis(200));
                    Err(LoadError(17))
                })
            })
        })
        .collect();
    for t in threads {
        let err = t.join().unwrap().expect_err("the loader failed");
        assert_eq!(err.kind(), ErrorKind::Loader, "{err}");
        assert_eq!(err.source_as::<LoadError>(), Some(&LoadError(17)));
        assert!(std::error::Error::source(&err).is_some());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the loader must run once");
    assert_eq!(cache.get(&3), None, "an error is not cached");
    assert_eq!(cache.entry_count(), 0);

    let v = cache.try_get_with(3, || {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, LoadError>(9)
    });
    assert_eq!(v.unwrap(), 9, "the next call loads again");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.get(&3), Some(9));
    let cached = cache.try_get_with(3, || Err(LoadError(0)));
    assert_eq!(cached.unwrap(), 9, "a cached value skips the loader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_loader_error_reaches_every_waiter_and_is_not_cached() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let (cache, calls, arrived) = (cache.clone(), calls.clone(), arrived.clone());
            tokio::spawn(async move {
                arrived.fetch_add(1, Ordering::SeqCst);
                let gate = arrived.clone();
                cache
                    .try_get_with_async(3, async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let deadline = Instant::now() + Duration::from_secs(20);
                        while gate.load(Ordering::SeqCst) < CALLERS {
                            assert!(Instant::now() < deadline, "callers never arrived");
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Err(LoadError(23))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().expect_err("the loader failed");
        assert_eq!(err.kind(), ErrorKind::Loader, "{err}");
        assert_eq!(err.source_as::<LoadError>(), Some(&LoadError(23)));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the loader must run once");
    assert_eq!(cache.get(&3), None, "an error is not cached");

    let v = cache
        .try_get_with_async(3, async { Ok::<_, LoadError>(11) })
        .await;
    assert_eq!(v.unwrap(), 11, "the next call loads again");
    assert_eq!(cache.get(&3), Some(11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_lets_a_waiter_finish() {
    let cache = cache();
    let started = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        tokio::spawn(async move {
            cache
                .get_with_async(1, async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    1
                })
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while started.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the leader's loader started");
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_with_async(1, async { 2 }).await })
    };
    // Let the waiter join the running flight before the leader goes away.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "the waiter must wait for the leader");
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let v = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiter must not hang after the leader is cancelled")
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(cache.get(&1), Some(2));
}

#[test]
fn a_panicking_leader_lets_a_waiter_finish() {
    let cache = cache();
    let (started_tx, started_rx) = mpsc::channel();
    let leader = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get_with(1, || {
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(100));
                panic!("the loader panicked on purpose")
            })
        })
    };
    started_rx.recv().unwrap();
    let waiter = {
        let cache = cache.clone();
        thread::spawn(move || cache.get_with(1, || 5))
    };
    assert!(leader.join().is_err(), "the leader's panic propagates");
    assert_eq!(waiter.join().unwrap(), 5);
    assert_eq!(cache.get(&1), Some(5));
}

#[test]
fn get_with_runs_its_own_loader_when_a_fallible_load_fails() {
    let cache = cache();
    let (started_tx, started_rx) = mpsc::channel();
    let failing = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.try_get_with(1, || {
                started_tx.send(()).unwrap();
                thread::sleep(Duration::from_millis(100));
                Err(LoadError(1))
            })
        })
    };
    started_rx.recv().unwrap();
    let ran = AtomicUsize::new(0);
    let v = cache.get_with(1, || {
        ran.fetch_add(1, Ordering::SeqCst);
        8
    });
    assert_eq!(v, 8);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        failing.join().unwrap().unwrap_err().kind(),
        ErrorKind::Loader
    );
    assert_eq!(cache.get(&1), Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_async_runs_its_own_loader_when_a_fallible_load_fails() {
    let cache = cache();
    let (started_tx, started_rx) = futures::channel::oneshot::channel();
    let failing = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .try_get_with_async(1, async move {
                    started_tx.send(()).unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<u64, _>(LoadError(1))
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let ran = AtomicUsize::new(0);
    let v = cache
        .get_with_async(1, async {
            ran.fetch_add(1, Ordering::SeqCst);
            8
        })
        .await;
    assert_eq!(v, 8);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        failing.await.unwrap().unwrap_err().kind(),
        ErrorKind::Loader
    );
    assert_eq!(cache.get(&1), Some(8));
}

#[test]
fn loads_of_different_keys_run_in_parallel() {
    let cache = cache();
    let (to_b, from_a) = mpsc::channel();
    let (to_a, from_b) = mpsc::channel();
    let a = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get_with(1, || {
                to_b.send(()).unwrap();
                from_b
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the other key's load never ran alongside");
                10
            })
        })
    };
    let b = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get_with(2, || {
                to_a.send(()).unwrap();
                from_a
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the other key's load never ran alongside");
                20
            })
        })
    };
    assert_eq!(a.join().unwrap(), 10);
    assert_eq!(b.join().unwrap(), 20);
    assert_eq!(cache.entry_count(), 2);
}

#[test]
fn racing_blocking_callers_load_each_key_exactly_once() {
    const KEYS: u32 = 3_000;
    let cache: MemoryCache<u32, u64> = MemoryCache::builder()
        .max_capacity(1_000_000)
        .partitions(4)
        .build();
    let loads: Arc<Vec<AtomicUsize>> = Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads, barrier) = (cache.clone(), loads.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                // Every thread walks the same keys in the same order, so
                // callers keep arriving just as another's load finishes.
                for k in 0..KEYS {
                    let v = cache.get_with(k, || {
                        loads[k as usize].fetch_add(1, Ordering::SeqCst);
                        u64::from(k) * 3
                    });
                    assert_eq!(v, u64::from(k) * 3);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for (k, n) in loads.iter().enumerate() {
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "key {k} was loaded more than once"
        );
    }
    assert_eq!(cache.entry_count(), u64::from(KEYS));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_async_callers_load_each_key_exactly_once() {
    const KEYS: u32 = 2_000;
    let cache: MemoryCache<u32, u64> = MemoryCache::builder()
        .max_capacity(1_000_000)
        .partitions(4)
        .build();
    let loads: Arc<Vec<AtomicUsize>> = Arc::new((0..KEYS).map(|_| AtomicUsize::new(0)).collect());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                for k in 0..KEYS {
                    let loads = loads.clone();
                    let v = cache
                        .get_with_async(k, async move {
                            loads[k as usize].fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            u64::from(k) * 3
                        })
                        .await;
                    assert_eq!(v, u64::from(k) * 3);
                    let v = cache
                        .try_get_with_async(k, async { Err::<u64, _>(LoadError(0)) })
                        .await;
                    assert_eq!(
                        v.unwrap(),
                        u64::from(k) * 3,
                        "a cached value skips the loader"
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    for (k, n) in loads.iter().enumerate() {
        assert_eq!(
            n.load(Ordering::SeqCst),
            1,
            "key {k} was loaded more than once"
        );
    }
}

/// Parks the thread that hashes a key for the `nth` time until released,
/// so a test can stop a caller between its cache lookup and its joining
/// the load of that key.
struct Gate {
    nth: usize,
    hashes: AtomicUsize,
    /// 0: not reached yet, 1: a thread is parked, 2: released.
    state: Mutex<u8>,
    changed: Condvar,
}

impl Gate {
    fn new(nth: usize) -> Arc<Self> {
        Arc::new(Gate {
            nth,
            hashes: AtomicUsize::new(0),
            state: Mutex::new(0),
            changed: Condvar::new(),
        })
    }

    fn on_hash(&self) {
        if self.hashes.fetch_add(1, Ordering::SeqCst) + 1 != self.nth {
            return;
        }
        let mut state = self.state.lock().unwrap();
        *state = 1;
        self.changed.notify_all();
        while *state != 2 {
            let (s, timeout) = self
                .changed
                .wait_timeout(state, Duration::from_secs(20))
                .unwrap();
            assert!(!timeout.timed_out(), "the gate was never released");
            state = s;
        }
    }

    fn wait_parked(&self) {
        let mut state = self.state.lock().unwrap();
        while *state != 1 {
            let (s, timeout) = self
                .changed
                .wait_timeout(state, Duration::from_secs(20))
                .unwrap();
            assert!(!timeout.timed_out(), "no caller reached the gate");
            state = s;
        }
    }

    fn release(&self) {
        *self.state.lock().unwrap() = 2;
        self.changed.notify_all();
    }
}

/// A key equal to any other with the same `id`; hashing a gated one may
/// park the thread.
#[derive(Clone)]
struct GatedKey {
    id: u32,
    gate: Option<Arc<Gate>>,
}

impl PartialEq for GatedKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for GatedKey {}

impl Hash for GatedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
        if let Some(gate) = &self.gate {
            gate.on_hash();
        }
    }
}

fn plain(id: u32) -> GatedKey {
    GatedKey { id, gate: None }
}

// A caller that misses the cache, and only then finds no load running
// because another caller's load has just finished and stored the value,
// must take that value instead of loading again. The gate parks the late
// caller on its second hash of the key: the first is its cache lookup, the
// second is joining the key's load.
#[test]
fn a_caller_that_misses_just_before_a_load_finishes_does_not_load_again() {
    for fallible in [false, true] {
        let cache: MemoryCache<GatedKey, u64> = MemoryCache::builder()
            .max_capacity(100)
            .partitions(1)
            .build();
        let gate = Gate::new(2);
        let late_loads = Arc::new(AtomicUsize::new(0));
        let late = {
            let (cache, late_loads) = (cache.clone(), late_loads.clone());
            let key = GatedKey {
                id: 1,
                gate: Some(gate.clone()),
            };
            thread::spawn(move || {
                if fallible {
                    cache.try_get_with(key, || {
                        late_loads.fetch_add(1, Ordering::SeqCst);
                        Err(LoadError(2))
                    })
                } else {
                    Ok(cache.get_with(key, || {
                        late_loads.fetch_add(1, Ordering::SeqCst);
                        2
                    }))
                }
            })
        };
        gate.wait_parked();
        assert_eq!(cache.get_with(plain(1), || 1), 1);
        gate.release();
        let got = late.join().unwrap();
        assert_eq!(got.unwrap(), 1, "fallible: {fallible}");
        assert_eq!(late_loads.load(Ordering::SeqCst), 0, "fallible: {fallible}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_caller_that_misses_just_before_a_load_finishes_does_not_load_again() {
    for fallible in [false, true] {
        let cache: MemoryCache<GatedKey, u64> = MemoryCache::builder()
            .max_capacity(100)
            .partitions(1)
            .build();
        let gate = Gate::new(2);
        let late_loads = Arc::new(AtomicUsize::new(0));
        let late = {
            let (cache, late_loads) = (cache.clone(), late_loads.clone());
            let key = GatedKey {
                id: 1,
                gate: Some(gate.clone()),
            };
            // The gate parks a whole worker thread; the test body and the
            // other worker carry on.
            tokio::spawn(async move {
                if fallible {
                    cache
                        .try_get_with_async(key, async move {
                            late_loads.fetch_add(1, Ordering::SeqCst);
                            Err(LoadError(2))
                        })
                        .await
                } else {
                    Ok(cache
                        .get_with_async(key, async move {
                            late_loads.fetch_add(1, Ordering::SeqCst);
                            2
                        })
                        .await)
                }
            })
        };
        let waiting = gate.clone();
        tokio::task::spawn_blocking(move || waiting.wait_parked())
            .await
            .unwrap();
        assert_eq!(cache.get_with_async(plain(1), async { 1 }).await, 1);
        gate.release();
        let got = late.await.unwrap();
        assert_eq!(got.unwrap(), 1, "fallible: {fallible}");
        assert_eq!(late_loads.load(Ordering::SeqCst), 0, "fallible: {fallible}");
    }
}
