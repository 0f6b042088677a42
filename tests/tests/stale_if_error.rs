//! Stale-if-error (`CacheBuilder::stale_if_error`): when a load fails (a
//! `try_get_with` error, a `get_or_load` loader's error, the cache loader's
//! or the store's error on a `get`), a value that expired less than the
//! window ago answers instead of the error, and is counted; past the
//! window the error is returned. A load that succeeds answers its own
//! value, and lookups that load nothing never answer an expired entry.
//! Expiry runs on a manual clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Error, ErrorKind, Loader, Lookup, Result};
use tiercache_tests::{TestStore, stack_with};

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

/// A loader that counts its calls, answers `"{key} v{n}"` for its n-th
/// call, or fails with an `Unavailable` error while failing.
#[derive(Clone, Default)]
struct Source(Arc<(AtomicUsize, AtomicBool)>);

impl Source {
    fn calls(&self) -> usize {
        self.0.0.load(Ordering::SeqCst)
    }

    fn fail(&self, on: bool) {
        self.0.1.store(on, Ordering::SeqCst);
    }
}

impl Loader<String, String> for Source {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        let n = self.0.0.fetch_add(1, Ordering::SeqCst) + 1;
        if self.0.1.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "the source is down"));
        }
        Ok(Some(format!("{key} v{n}")))
    }
}

fn key() -> String {
    "k".to_string()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_is_answered_by_a_value_expired_within_the_window_only() {
    let s = stack_with(100, 1, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
    let expires_at = s.clock.now_ms() + ms(TTL);
    s.cache.insert(key(), "old".into()).await.unwrap();
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
    let s = stack_with(100, 1, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
    let expires_at = s.clock.now_ms() + ms(TTL);
    s.cache.insert(key(), "old".into()).await.unwrap();
    let src = Source::default();
    src.fail(true);
    s.clock.set_ms(expires_at + 1);
    assert_eq!(
        s.cache.get_or_load(&key(), &src).await.unwrap().as_deref(),
        Some("old")
    );
    s.clock.set_ms(expires_at + ms(WINDOW) - 1);
    assert_eq!(
        s.cache.get_or_load(&key(), &src).await.unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(s.cache.load_stats().stale_served, 2);
    s.clock.set_ms(expires_at + ms(WINDOW) + 1);
    let err = s.cache.get_or_load(&key(), &src).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(s.cache.load_stats().stale_served, 2);
    assert_eq!(src.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_cache_loader_fails_is_answered_by_the_stale_value() {
    let src = Source::default();
    let s = stack_with(100, 1, Some(TTL), |b| {
        b.loader(src.clone()).stale_if_error(WINDOW)
    })
    .await;
    let expires_at = s.clock.now_ms() + ms(TTL);
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.fail(true);
    s.clock.set_ms(expires_at + 1);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    s.clock.set_ms(expires_at + ms(WINDOW) - 1);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    assert_eq!(s.cache.load_stats().stale_served, 2);
    assert_eq!(src.calls(), 2);
    s.clock.set_ms(expires_at + ms(WINDOW) + 1);
    let err = s.cache.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(s.cache.load_stats().stale_served, 2);
    assert_eq!(src.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_whose_store_is_down_is_answered_by_the_stale_value() {
    let store: TestStore<String, String> = TestStore::new();
    let s = stack_with(100, 1, Some(TTL), |b| {
        b.store(store.clone()).stale_if_error(WINDOW)
    })
    .await;
    let expires_at = s.clock.now_ms() + ms(TTL);
    s.cache.insert(key(), "old".into()).await.unwrap();
    store.set_failing(true);
    s.clock.set_ms(expires_at + 1);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    assert_eq!(s.cache.load_stats().stale_served, 1);
    s.clock.set_ms(expires_at + ms(WINDOW) + 1);
    let err = s.cache.get(&key()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(s.cache.load_stats().stale_served, 1);
    assert_eq!(store.calls().loads, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_waiting_on_a_failed_load_gets_the_stale_value() {
    let s = stack_with(100, 1, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(TTL + Duration::from_millis(1));
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
    let s = stack_with(100, 1, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
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
    let s = stack_with(100, 1, Some(TTL), |b| {
        b.loader(src.clone()).stale_if_error(WINDOW)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(TTL + Duration::from_millis(1));
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().stale_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_that_load_nothing_never_answer_an_expired_entry() {
    for tiers in [0, 1] {
        let s = stack_with(100, tiers, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
        s.cache.insert(key(), "old".into()).await.unwrap();
        s.clock.advance(TTL + Duration::from_millis(1));
        assert_eq!(s.cache.get(&key()).await.unwrap(), None, "{tiers} tiers");
        assert_eq!(s.cache.lookup(&key()).await.unwrap(), Lookup::Miss);
        assert!(!s.cache.contains_key(&key()).await.unwrap());
        assert_eq!(s.cache.hot().get(&key()), None);
        assert!(!s.cache.hot().contains_key(&key()));
        assert_eq!(s.cache.load_stats().stale_served, 0);
        // It was kept all the same, for a load that fails.
        let stale = s
            .cache
            .try_get_with(key(), async { Err::<String, _>(Down) })
            .await
            .unwrap();
        assert_eq!(stale, "old");
        assert_eq!(s.cache.load_stats().stale_served, 1);
        // Serving it stale did not make it live again.
        assert_eq!(s.cache.get(&key()).await.unwrap(), None, "{tiers} tiers");
        assert!(!s.cache.contains_key(&key()).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_entry_is_never_served_stale() {
    let s = stack_with(100, 1, Some(TTL), |b| b.stale_if_error(WINDOW)).await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(TTL + Duration::from_millis(1));
    s.cache.remove(&key()).await.unwrap();
    let err = s
        .cache
        .try_get_with(key(), async { Err::<String, _>(Down) })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(s.cache.load_stats().stale_served, 0);
}
