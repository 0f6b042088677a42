//! The load timeout (`CacheBuilder::load_timeout`): a caller waiting on a
//! load another caller started gives up with `ErrorKind::Timeout` after
//! the timeout, while the caller whose own `get_with` future is the load
//! waits for it (that future is the caller's, and nothing else can finish
//! it: by design). A load from the cache's own loader or store runs on a
//! task of its own: every caller, the first included, times out, and the
//! late result is still stored and counted. With stale-if-error a timed
//! out load answers the stale value. Real time: a 50 ms timeout, loads
//! held by a semaphore (or a 200 ms store latency) well past it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiercache::{ErrorKind, Loader, Result};
use tiercache_tests::{TestStore, held, stack_with};
use tokio::sync::{Notify, Semaphore};

/// The load timeout of every cache here.
const TIMEOUT: Duration = Duration::from_millis(50);

/// A loader whose n-th load of `key` answers `"{key} v{n}"`, each load
/// held until [`release`](Self::release)d (when holding); it counts its
/// loads.
#[derive(Clone)]
struct Source(Arc<SourceState>);

struct SourceState {
    calls: AtomicUsize,
    finished: AtomicUsize,
    hold: bool,
    started: Notify,
    release: Semaphore,
}

impl Source {
    fn new(hold: bool) -> Self {
        Source(Arc::new(SourceState {
            calls: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            hold,
            started: Notify::new(),
            release: Semaphore::new(0),
        }))
    }

    fn calls(&self) -> usize {
        self.0.calls.load(Ordering::SeqCst)
    }

    fn finished(&self) -> usize {
        self.0.finished.load(Ordering::SeqCst)
    }

    async fn started(&self) {
        self.0.started.notified().await;
    }

    fn release(&self) {
        self.0.release.add_permits(1);
    }

    /// One load's work, for a loader or a caller's own future.
    async fn run(&self, key: &str) -> String {
        let s = &self.0;
        let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if s.hold {
            s.started.notify_one();
            s.release
                .acquire()
                .await
                .expect("the semaphore is never closed")
                .forget();
        }
        s.finished.fetch_add(1, Ordering::SeqCst);
        format!("{key} v{n}")
    }
}

impl Loader<String, String> for Source {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        Ok(Some(self.run(key).await))
    }
}

/// Waits (in real time, at most 5 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn key() -> String {
    "k".to_string()
}

/// Runs `f` on a task, and answers its result with how long it took.
fn timed<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> tokio::task::JoinHandle<(T, Duration)> {
    tokio::spawn(async move {
        let start = Instant::now();
        let out = f.await;
        (out, start.elapsed())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_time_out_while_the_leader_waits_for_its_own_loader_which_is_stored() {
    let s = stack_with(100, 1, None, |b| b.load_timeout(TIMEOUT)).await;
    let leading = Source::new(true);
    let leader = {
        let (cache, leading) = (s.cache.clone(), leading.clone());
        timed(async move { cache.get_with(key(), leading.run("k")).await })
    };
    leading.started().await;
    // Three callers of the same key, each with its own loader, which must
    // not run: they wait on the leader's load, and give up.
    let theirs = Source::new(false);
    let waiters = vec![
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move { cache.get_with(key(), theirs.run("k")).await })
        },
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move {
                let init = async { Ok::<_, std::io::Error>(theirs.run("k").await) };
                cache.try_get_with(key(), init).await
            })
        },
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move { cache.get_or_load(&key(), &theirs).await.map(|v| v.unwrap()) })
        },
    ];
    for w in waiters {
        let (result, waited) = w.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
        assert!(waited >= TIMEOUT, "gave up after {waited:?}");
    }
    assert_eq!(s.cache.load_stats().load_timeouts, 3);
    // By design the leader waits past the timeout: its future is the load.
    assert!(!leader.is_finished());
    assert_eq!(leading.finished(), 0);
    leading.release();
    let (result, waited) = leader.await.unwrap();
    assert_eq!(result.unwrap(), "k v1");
    assert!(waited >= TIMEOUT, "the leader waited {waited:?}");
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("k v1")
    );
    assert_eq!((leading.calls(), theirs.calls()), (1, 0));
    let stats = s.cache.load_stats();
    assert_eq!((stats.load_timeouts, stats.late_loads_stored), (3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_loader_load_times_out_for_every_caller_and_its_late_result_is_stored() {
    let src = Source::new(true);
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).load_timeout(TIMEOUT)
    })
    .await;
    let first = {
        let cache = s.cache.clone();
        timed(async move { cache.get(&key()).await })
    };
    src.started().await;
    let others: Vec<_> = (0..2)
        .map(|_| {
            let cache = s.cache.clone();
            timed(async move { cache.get(&key()).await })
        })
        .collect();
    let (result, waited) = first.await.unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout, "the first");
    assert!(waited >= TIMEOUT, "the first gave up after {waited:?}");
    for o in others {
        let (result, waited) = o.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
        assert!(waited >= TIMEOUT, "gave up after {waited:?}");
    }
    // Everyone gave up while the load was still held.
    assert_eq!(src.finished(), 0);
    assert_eq!(s.cache.load_stats().late_loads_stored, 0);
    src.release();
    eventually("the late load", || {
        s.cache.load_stats().late_loads_stored == 1
    })
    .await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("k v1")
    );
    assert_eq!(src.calls(), 1, "the late result answers without a new load");
    let stats = s.cache.load_stats();
    assert_eq!(stats.late_loads_stored, 1);
    assert_eq!(stats.load_timeouts, 3, "every caller gave up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_load_times_out_and_its_late_result_is_stored() {
    let store: TestStore<String, String> = TestStore::new();
    store.preload(key(), "stored".into());
    store.set_latency(Duration::from_millis(200));
    let s = stack_with(100, 1, None, |b| {
        b.store(store.clone()).load_timeout(TIMEOUT)
    })
    .await;
    let start = Instant::now();
    let err = s.cache.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() >= TIMEOUT);
    eventually("the late load", || {
        s.cache.load_stats().late_loads_stored == 1
    })
    .await;
    assert_eq!(
        s.cache.get(&key()).await.unwrap().as_deref(),
        Some("stored")
    );
    assert_eq!(store.calls().loads, 1);
    assert_eq!(s.cache.load_stats().load_timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_within_the_timeout_answers_every_caller() {
    let src = Source::new(false);
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).load_timeout(TIMEOUT)
    })
    .await;
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let cache = s.cache.clone();
            tokio::spawn(async move { cache.get(&key()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("k v1"));
    }
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!((stats.load_timeouts, stats.late_loads_stored), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stale_if_error_a_timed_out_load_answers_the_stale_value() {
    let ttl = Duration::from_secs(1);
    let src = Source::new(true);
    let s = stack_with(100, 1, Some(ttl), |b| {
        b.loader(src.clone())
            .load_timeout(TIMEOUT)
            .stale_if_error(Duration::from_secs(10))
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(ttl + Duration::from_millis(1));
    let first = {
        let cache = s.cache.clone();
        tokio::spawn(async move { cache.get(&key()).await })
    };
    src.started().await;
    let others: Vec<_> = (0..2)
        .map(|_| {
            let cache = s.cache.clone();
            tokio::spawn(async move { cache.get(&key()).await })
        })
        .collect();
    assert_eq!(first.await.unwrap().unwrap().as_deref(), Some("old"));
    for o in others {
        assert_eq!(o.await.unwrap().unwrap().as_deref(), Some("old"));
    }
    assert_eq!(src.finished(), 0);
    assert_eq!(s.cache.load_stats().stale_served, 3);
    // The late load still lands, and replaces the stale value.
    src.release();
    eventually("the late load", || {
        s.cache.load_stats().late_loads_stored == 1
    })
    .await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!(stats.stale_served, 3);
    assert_eq!(stats.load_timeouts, 3, "every caller gave up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_after_a_timeout_wins_over_the_late_result() {
    let src = Source::new(true);
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).load_timeout(TIMEOUT)
    })
    .await;
    let first = {
        let cache = s.cache.clone();
        tokio::spawn(async move { cache.get(&key()).await })
    };
    src.started().await;
    let err = first.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    s.cache.insert(key(), "written".into()).await.unwrap();
    src.release();
    eventually("the late load", || src.finished() == 1).await;
    // What the late load does, it does at once: give it time to.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        s.cache.get(&key()).await.unwrap().as_deref(),
        Some("written")
    );
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("written")
    );
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!(stats.load_timeouts, 1);
    assert_eq!(
        stats.late_loads_stored, 0,
        "the late result lost to the insert: nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stale_if_error_a_waiter_that_times_out_gets_the_stale_value() {
    let ttl = Duration::from_secs(1);
    let s = stack_with(100, 1, Some(ttl), |b| {
        b.load_timeout(TIMEOUT)
            .stale_if_error(Duration::from_secs(10))
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(ttl + Duration::from_millis(1));
    let leading = Source::new(true);
    let leader = {
        let (cache, leading) = (s.cache.clone(), leading.clone());
        tokio::spawn(async move { cache.get_with(key(), leading.run("k")).await })
    };
    leading.started().await;
    let theirs = Source::new(false);
    let init = async { Ok::<_, std::io::Error>(theirs.run("k").await) };
    assert_eq!(s.cache.try_get_with(key(), init).await.unwrap(), "old");
    let stats = s.cache.load_stats();
    assert_eq!((stats.stale_served, stats.load_timeouts), (1, 1));
    leading.release();
    assert_eq!(leader.await.unwrap().unwrap(), "k v1");
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!((leading.calls(), theirs.calls()), (1, 0));
    assert_eq!(s.cache.load_stats().stale_served, 1);
}
