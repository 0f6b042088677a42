//! Stale-if-error (`CacheBuilder::stale_if_error`): when a load fails (a
//! `try_get_with` error, a `get_or_load` loader's error, the cache loader's
//! or the store's error on a `get`), a value that expired less than the
//! window ago answers instead of the error, and is counted; past the
//! window the error is returned. A load that succeeds answers its own
//! value, and lookups that load nothing never answer an expired entry.
//! Expiry runs on a manual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Cache, CacheBuilder, Error, ErrorKind, Lookup, Result};
use tiercache_tests::protect_support::{Source, get, ms};
use tiercache_tests::{Stack, TestStore, stack_with};

/// Every entry's time-to-live.
const TTL: Duration = Duration::from_secs(1);
/// How long past its expiry an entry may answer a failed load.
const WINDOW: Duration = Duration::from_secs(10);

/// What a failing loader of a test fails with.
#[derive(Debug)]
struct Down;

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the system of record is down")
    }
}

impl std::error::Error for Down {}

fn key() -> String {
    "k".to_string()
}

/// A stack of `tiers` byte tiers whose entries live [`TTL`] and answer
/// failed loads for [`WINDOW`] after, with more settings by `configure`.
async fn stale_stack(
    tiers: usize,
    configure: impl FnOnce(CacheBuilder<String, String>) -> CacheBuilder<String, String>,
) -> Stack {
    stack_with(100, tiers, Some(TTL), |b| {
        configure(b).stale_if_error(WINDOW)
    })
    .await
}

/// Inserts `"old"` for the key, and answers when it expires.
async fn insert_old(s: &Stack) -> u64 {
    let expires_at = s.clock.now_ms() + ms(TTL);
    s.cache.insert(key(), "old".into()).await.unwrap();
    expires_at
}

/// Inserts `"old"` for the key, and lets it expire by 1 ms.
async fn expired_old(s: &Stack) {
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(TTL + Duration::from_millis(1));
}

/// A `try_get_with` of the key whose load fails with [`Down`].
async fn try_failing(cache: &Cache<String, String>) -> Result<String> {
    cache
        .try_get_with(key(), async { Err::<String, _>(Down) })
        .await
}

/// Loads by `load` 1 ms past `expires_at` and 1 ms before the window
/// ends: the stale value answers both, and both are counted.
async fn stale_within_the_window<F>(s: &Stack, expires_at: u64, load: impl Fn() -> F)
where
    F: Future<Output = Result<Option<String>>>,
{
    s.clock.set_ms(expires_at + 1);
    assert_eq!(load().await.unwrap().as_deref(), Some("old"));
    s.clock.set_ms(expires_at + ms(WINDOW) - 1);
    assert_eq!(load().await.unwrap().as_deref(), Some("old"));
    assert_eq!(s.cache.load_stats().stale_served, 2);
}

/// Loads by `load` 1 ms past the window: the load's `Unavailable` error,
/// and still `stale_served` values served stale.
async fn unavailable_past_the_window<F>(
    s: &Stack,
    expires_at: u64,
    load: impl Fn() -> F,
    stale_served: u64,
) where
    F: Future<Output = Result<Option<String>>>,
{
    s.clock.set_ms(expires_at + ms(WINDOW) + 1);
    let err = load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(s.cache.load_stats().stale_served, stale_served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_is_answered_by_a_value_expired_within_the_window_only() {
    let s = stale_stack(1, |b| b).await;
    let expires_at = insert_old(&s).await;
    let calls = AtomicUsize::new(0);
    let inits = &calls;
    let failing = move || async move {
        inits.fetch_add(1, Ordering::SeqCst);
        Err::<String, _>(Down)
    };

    // Expired by 1 ms.
    s.clock.set_ms(expires_at + 1);
    assert_eq!(s.cache.try_get_with(key(), failing()).await.unwrap(), "old");
    assert_eq!(s.cache.load_stats().stale_served, 1);
    // Expired by the window less 1 ms.
    s.clock.set_ms(expires_at + ms(WINDOW) - 1);
    assert_eq!(s.cache.try_get_with(key(), failing()).await.unwrap(), "old");
    assert_eq!(s.cache.load_stats().stale_served, 2);
    // Expired by the window and 1 ms: the error.
    s.clock.set_ms(expires_at + ms(WINDOW) + 1);
    let err = s.cache.try_get_with(key(), failing()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert!(err.source_as::<Down>().is_some(), "{err}");
    assert_eq!(s.cache.load_stats().stale_served, 2);
    assert_eq!(inits.load(Ordering::SeqCst), 3, "every failed load ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_or_load_loader_error_is_answered_by_the_stale_value() {
    let s = stale_stack(1, |b| b).await;
    let expires_at = insert_old(&s).await;
    let src = Source::default();
    src.fail(true);
    let load = || async { s.cache.get_or_load(&key(), &src).await };
    stale_within_the_window(&s, expires_at, load).await;
    unavailable_past_the_window(&s, expires_at, load, 2).await;
    assert_eq!(src.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_cache_loader_fails_is_answered_by_the_stale_value() {
    let src = Source::default();
    let s = stale_stack(1, |b| b.loader(src.clone())).await;
    let expires_at = insert_old(&s).await;
    src.fail(true);
    let load = || async { s.cache.get(&key()).await };
    stale_within_the_window(&s, expires_at, load).await;
    assert_eq!(src.calls(), 2);
    unavailable_past_the_window(&s, expires_at, load, 2).await;
    assert_eq!(src.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_store_is_down_is_answered_by_the_stale_value() {
    let store: TestStore<String, String> = TestStore::new();
    let s = stale_stack(1, |b| b.store(store.clone())).await;
    let expires_at = insert_old(&s).await;
    store.set_failing(true);
    s.clock.set_ms(expires_at + 1);
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    assert_eq!(s.cache.load_stats().stale_served, 1);
    let load = || async { s.cache.get(&key()).await };
    unavailable_past_the_window(&s, expires_at, load, 1).await;
    assert_eq!(store.calls().loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_waiting_on_a_failed_load_gets_the_stale_value() {
    let s = stale_stack(1, |b| b).await;
    expired_old(&s).await;
    let inits = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(5));
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (cache, inits, barrier) = (s.cache.clone(), inits.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .try_get_with(key(), async {
                        inits.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<String, _>(Down)
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "old");
    }
    assert_eq!(inits.load(Ordering::SeqCst), 1, "one load for five callers");
    assert_eq!(s.cache.load_stats().stale_served, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_that_succeeds_answers_its_value_not_the_stale_one() {
    // Without a loader of the cache's own: the callers' loaders load.
    let s = stale_stack(1, |b| b).await;
    for k in ["a", "b", "c"] {
        s.cache.insert(k.into(), "old".into()).await.unwrap();
    }
    s.clock.advance(TTL + Duration::from_millis(1));
    let new = s
        .cache
        .try_get_with("a".into(), async { Ok::<_, Down>("new".to_string()) })
        .await
        .unwrap();
    assert_eq!(new, "new");
    let src = Source::default();
    assert_eq!(
        s.cache
            .get_or_load(&"b".into(), &src)
            .await
            .unwrap()
            .as_deref(),
        Some("b v1")
    );
    // "No value" is a successful load too.
    let none = |_k: String| async { Ok::<Option<String>, Error>(None) };
    assert_eq!(s.cache.get_or_load(&"c".into(), &none).await.unwrap(), None);
    assert_eq!(
        s.cache.get(&"a".into()).await.unwrap().as_deref(),
        Some("new")
    );
    assert_eq!(
        s.cache.get(&"b".into()).await.unwrap().as_deref(),
        Some("b v1")
    );
    assert_eq!(s.cache.get(&"c".into()).await.unwrap(), None);
    assert_eq!(s.cache.load_stats().stale_served, 0);

    // With the cache's own loader, on a get.
    let src = Source::default();
    let s = stale_stack(1, |b| b.loader(src.clone())).await;
    expired_old(&s).await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().stale_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_that_load_nothing_never_answer_an_expired_entry() {
    for tiers in [0, 1] {
        let s = stale_stack(tiers, |b| b).await;
        expired_old(&s).await;
        assert_eq!(get(&s.cache, "k").await, None, "{tiers} tiers");
        assert_eq!(s.cache.lookup(&key()).await.unwrap(), Lookup::Miss);
        assert!(!s.cache.contains_key(&key()).await.unwrap());
        assert_eq!(s.cache.hot().get(&key()), None);
        assert!(!s.cache.hot().contains_key(&key()));
        assert_eq!(s.cache.load_stats().stale_served, 0);
        // It was kept all the same, for a load that fails.
        let stale = try_failing(&s.cache).await.unwrap();
        assert_eq!(stale, "old");
        assert_eq!(s.cache.load_stats().stale_served, 1);
        // Serving it stale did not make it live again.
        assert_eq!(get(&s.cache, "k").await, None, "{tiers} tiers");
        assert!(!s.cache.contains_key(&key()).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_entry_is_never_served_stale() {
    let s = stale_stack(1, |b| b).await;
    expired_old(&s).await;
    s.cache.remove(&key()).await.unwrap();
    let err = try_failing(&s.cache).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(s.cache.load_stats().stale_served, 0);
}
