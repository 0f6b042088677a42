//! The load timeout (`CacheBuilder::load_timeout`): a caller waiting on a
//! load another caller started gives up with `ErrorKind::Timeout` after
//! the timeout, while the caller whose own `get_with` future is the load
//! waits for it (that future is the caller's, and nothing else can finish
//! it: by design). A load from the cache's own loader or store runs on a
//! task of its own: every caller, the first included, times out, and the
//! late result is still stored and counted. With stale-if-error a timed
//! out load answers the stale value. Real time: a 50 ms timeout, loads
//! held by a semaphore (or a 200 ms store latency) well past it.

use std::time::{Duration, Instant};

use tiercache::{Cache, ErrorKind, Result};
use tiercache_tests::protect_support::{Source, eventually, get, settle, spawn_get};
use tiercache_tests::{Stack, TestStore, held_in, stack_with};
use tokio::task::JoinHandle;

/// The load timeout of every cache here.
const TIMEOUT: Duration = Duration::from_millis(50);
/// The time-to-live of the entries served stale.
const TTL: Duration = Duration::from_secs(1);

fn key() -> String {
    "k".to_string()
}

/// Runs `f` on a task, and answers its result with how long it took.
fn timed<T: Send + 'static>(
    f: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<(T, Duration)> {
    tokio::spawn(async move {
        let start = Instant::now();
        let out = f.await;
        (out, start.elapsed())
    })
}

/// A [`timed`] `get` of the key.
fn timed_get(cache: &Cache<String, String>) -> JoinHandle<(Result<Option<String>>, Duration)> {
    let cache = cache.clone();
    timed(async move { cache.get(&key()).await })
}

/// Waits until `cache` has stored a load's late result.
async fn late_load_stored(cache: &Cache<String, String>) {
    eventually("the late load", || {
        cache.load_stats().late_loads_stored == 1
    })
    .await;
}

/// Awaits a [`timed`] call, which must have given up with a timeout after
/// waiting the timeout at least.
async fn assert_timed_out<T: std::fmt::Debug>(call: JoinHandle<(Result<T>, Duration)>, who: &str) {
    let (result, waited) = call.await.unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout, "{who}");
    assert!(waited >= TIMEOUT, "{who} gave up after {waited:?}");
}

/// A [`timed`] `get_with` of the key whose own future is the load of a
/// holding source, once that load has started.
async fn leading_get_with(
    cache: &Cache<String, String>,
) -> (Source, JoinHandle<(Result<String>, Duration)>) {
    let leading = Source::holding();
    let leader = {
        let (cache, leading) = (cache.clone(), leading.clone());
        timed(async move { cache.get_with(key(), leading.value("k")).await })
    };
    leading.started().await;
    (leading, leader)
}

/// A first call made by `call`, and, once `src`'s load has started, two
/// more.
async fn first_and_others<T>(
    src: &Source,
    call: impl Fn() -> JoinHandle<T>,
) -> (JoinHandle<T>, Vec<JoinHandle<T>>) {
    let first = call();
    src.started().await;
    (first, (0..2).map(|_| call()).collect())
}

/// A one-tier stack whose loader is `src` and whose loads time out.
async fn timing_out(src: &Source) -> Stack {
    stack_with(100, 1, None, |b| {
        b.loader(src.clone()).load_timeout(TIMEOUT)
    })
    .await
}

/// A one-tier stack whose entries live [`TTL`], whose loads (from `src`,
/// if any) time out and whose expired entries answer failed loads for
/// 10 s, holding `"old"` for the key, expired by 1 ms.
async fn stale_old_entry(src: Option<&Source>) -> Stack {
    let s = stack_with(100, 1, Some(TTL), |mut b| {
        if let Some(src) = src {
            b = b.loader(src.clone());
        }
        b.load_timeout(TIMEOUT)
            .stale_if_error(Duration::from_secs(10))
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(TTL + Duration::from_millis(1));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_time_out_while_the_leader_waits_for_its_own_loader_which_is_stored() {
    let s = stack_with(100, 1, None, |b| b.load_timeout(TIMEOUT)).await;
    let (leading, leader) = leading_get_with(&s.cache).await;
    // Three callers of the same key, each with its own loader, which must
    // not run: they wait on the leader's load, and give up.
    let theirs = Source::new();
    let waiters = vec![
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move { cache.get_with(key(), theirs.value("k")).await })
        },
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move {
                let init = async { Ok::<_, std::io::Error>(theirs.value("k").await) };
                cache.try_get_with(key(), init).await
            })
        },
        {
            let (cache, theirs) = (s.cache.clone(), theirs.clone());
            timed(async move { cache.get_or_load(&key(), &theirs).await.map(|v| v.unwrap()) })
        },
    ];
    for w in waiters {
        assert_timed_out(w, "a waiter").await;
    }
    assert_eq!(s.cache.load_stats().load_timeouts, 3);
    // By design the leader waits past the timeout: its future is the load.
    assert!(!leader.is_finished());
    assert_eq!(leading.finished(), 0);
    leading.release();
    let (result, waited) = leader.await.unwrap();
    assert_eq!(result.unwrap(), "k v1");
    assert!(waited >= TIMEOUT, "the leader waited {waited:?}");
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(
        held_in(s.tiers[0].inner(), "k").await.as_deref(),
        Some("k v1")
    );
    assert_eq!((leading.calls(), theirs.calls()), (1, 0));
    let stats = s.cache.load_stats();
    assert_eq!((stats.load_timeouts, stats.late_loads_stored), (3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_loader_load_times_out_for_every_caller_and_its_late_result_is_stored() {
    let src = Source::holding();
    let s = timing_out(&src).await;
    let (first, others) = first_and_others(&src, || timed_get(&s.cache)).await;
    assert_timed_out(first, "the first").await;
    // The others joined the load after it started, and share its deadline:
    // they give up with it, never later (a timer's rounding and a busy
    // machine aside).
    for o in others {
        let (result, waited) = o.await.unwrap();
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Timeout);
        // (The load itself is held until released below: a caller that
        // waited for it would not return at all.)
        assert!(waited < TIMEOUT * 10, "another caller waited {waited:?}");
    }
    // Everyone gave up while the load was still held.
    assert_eq!(src.finished(), 0);
    assert_eq!(s.cache.load_stats().late_loads_stored, 0);
    src.release();
    late_load_stored(&s.cache).await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(
        held_in(s.tiers[0].inner(), "k").await.as_deref(),
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
    late_load_stored(&s.cache).await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("stored"));
    assert_eq!(store.calls().loads, 1);
    assert_eq!(s.cache.load_stats().load_timeouts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_within_the_timeout_answers_every_caller() {
    let src = Source::new();
    let s = timing_out(&src).await;
    let tasks: Vec<_> = (0..5).map(|_| spawn_get(&s.cache, "k")).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("k v1"));
    }
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!((stats.load_timeouts, stats.late_loads_stored), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stale_if_error_a_timed_out_load_answers_the_stale_value() {
    let src = Source::holding();
    let s = stale_old_entry(Some(&src)).await;
    let (first, others) = first_and_others(&src, || spawn_get(&s.cache, "k")).await;
    assert_eq!(first.await.unwrap().unwrap().as_deref(), Some("old"));
    for o in others {
        assert_eq!(o.await.unwrap().unwrap().as_deref(), Some("old"));
    }
    assert_eq!(src.finished(), 0);
    assert_eq!(s.cache.load_stats().stale_served, 3);
    // The late load still lands, and replaces the stale value.
    src.release();
    late_load_stored(&s.cache).await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!(stats.stale_served, 3);
    assert_eq!(stats.load_timeouts, 3, "every caller gave up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_after_a_timeout_wins_over_the_late_result() {
    let src = Source::holding();
    let s = timing_out(&src).await;
    let first = spawn_get(&s.cache, "k");
    src.started().await;
    let err = first.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    s.cache.insert(key(), "written".into()).await.unwrap();
    src.release();
    eventually("the late load", || src.finished() == 1).await;
    // What the late load does, it does at once: give it time to.
    settle().await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("written"));
    assert_eq!(
        held_in(s.tiers[0].inner(), "k").await.as_deref(),
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
    let s = stale_old_entry(None).await;
    let (leading, leader) = leading_get_with(&s.cache).await;
    let theirs = Source::new();
    let init = async { Ok::<_, std::io::Error>(theirs.value("k").await) };
    assert_eq!(s.cache.try_get_with(key(), init).await.unwrap(), "old");
    let stats = s.cache.load_stats();
    assert_eq!((stats.stale_served, stats.load_timeouts), (1, 1));
    leading.release();
    assert_eq!(leader.await.unwrap().0.unwrap(), "k v1");
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!((leading.calls(), theirs.calls()), (1, 0));
    assert_eq!(s.cache.load_stats().stale_served, 1);
}
