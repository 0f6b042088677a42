//! `Cache::get_or_load` with a reusable `Loader`: one load per key however
//! many callers wait, "not found" shared and not stored, errors shared and
//! not cached, the same loader serving every key.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Error, ErrorKind, Loader, Result};
use tiercache_tests::stack;

/// A system of record: even keys have a value, odd ones have none, and
/// `"boom"` fails.
struct Records {
    calls: AtomicUsize,
}

impl Loader<String, String> for Records {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if key == "boom" {
            return Err(Error::new(ErrorKind::Loader, "the store is down"));
        }
        let n: u64 = key.trim_start_matches('k').parse().unwrap_or(1);
        Ok(n.is_multiple_of(2).then(|| format!("row {n}")))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_load_and_the_value_is_stored_in_every_tier() {
    let s = stack(100, 2, None).await;
    let records = Arc::new(Records {
        calls: AtomicUsize::new(0),
    });
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, records) = (s.cache.clone(), records.clone());
            tokio::spawn(async move { cache.get_or_load(&"k2".into(), &records).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some("row 2".into()));
    }
    assert_eq!(records.calls.load(Ordering::SeqCst), 1);
    for tier in &s.tiers {
        assert_eq!(
            tiercache_tests::held(tier, "k2").await.map(|(v, _)| v),
            Some("row 2".into())
        );
    }
    // The same loader serves other keys; a stored value is not loaded again.
    assert_eq!(
        s.cache.get_or_load(&"k4".into(), &*records).await.unwrap(),
        Some("row 4".into())
    );
    assert_eq!(
        s.cache.get_or_load(&"k2".into(), &*records).await.unwrap(),
        Some("row 2".into())
    );
    assert_eq!(records.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_shared_by_the_waiters_and_remembered_as_a_negative_entry() {
    let s = stack(100, 1, None).await;
    let records = Arc::new(Records {
        calls: AtomicUsize::new(0),
    });
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, records) = (s.cache.clone(), records.clone());
            tokio::spawn(async move { cache.get_or_load(&"k3".into(), &records).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), None);
    }
    assert_eq!(records.calls.load(Ordering::SeqCst), 1);
    // The loader's "none" is a negative entry, for the negative TTL.
    assert!(matches!(
        s.cache.lookup(&"k3".into()).await.unwrap(),
        tiercache::Lookup::Negative(_)
    ));
    assert_eq!(
        s.cache.get_or_load(&"k3".into(), &*records).await.unwrap(),
        None
    );
    assert_eq!(records.calls.load(Ordering::SeqCst), 1);
    // Past it, the loader is asked again.
    s.clock
        .advance(tiercache::DEFAULT_NEGATIVE_TTL + std::time::Duration::from_secs(1));
    assert_eq!(
        s.cache.get_or_load(&"k3".into(), &*records).await.unwrap(),
        None
    );
    assert_eq!(records.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let s = stack(100, 1, None).await;
    let records = Arc::new(Records {
        calls: AtomicUsize::new(0),
    });
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, records) = (s.cache.clone(), records.clone());
            tokio::spawn(async move { cache.get_or_load(&"boom".into(), &records).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap_err().kind(), ErrorKind::Loader);
    }
    assert_eq!(records.calls.load(Ordering::SeqCst), 1);
    assert!(
        s.cache
            .get_or_load(&"boom".into(), &*records)
            .await
            .is_err()
    );
    assert_eq!(records.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_closure_is_a_loader() {
    let s = stack(100, 0, None).await;
    let loader = |k: String| async move { Ok(Some(k.to_uppercase())) };
    assert_eq!(
        s.cache.get_or_load(&"abc".into(), &loader).await.unwrap(),
        Some("ABC".into())
    );
    assert_eq!(
        s.cache.get(&"abc".into()).await.unwrap(),
        Some("ABC".into())
    );
}

#[tokio::test]
async fn a_write_during_a_load_is_not_overwritten_for_later_callers() {
    // A get_or_load that began before an insert returned may hand its own
    // waiters the loaded value, but a caller after the insert sees it.
    let s = stack(100, 1, None).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let loader = {
        let (started, release) = (started.clone(), release.clone());
        move |_k: String| {
            let (started, release) = (started.clone(), release.clone());
            async move {
                started.notify_one();
                release.notified().await;
                Ok(Some("loaded".to_string()))
            }
        }
    };
    let cache = s.cache.clone();
    let leader = tokio::spawn(async move { cache.get_or_load(&"k".into(), &loader).await });
    started.notified().await;
    s.cache.insert("k".into(), "written".into()).await.unwrap();
    let after = s
        .cache
        .get_or_load(&"k".into(), &|_k: String| async {
            Ok(Some("other".to_string()))
        })
        .await
        .unwrap();
    assert_eq!(after, Some("written".into()));
    release.notify_one();
    leader.await.unwrap().unwrap();
    // The loader's store ran after the insert; the last write wins, and it
    // is one value everywhere.
    let now = s.cache.get(&"k".into()).await.unwrap();
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), now);
}
