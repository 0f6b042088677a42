//! Single-flight loading through the typed cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::ErrorKind;
use tiercache_tests::stack;

#[derive(Debug)]
struct NotFound(u32);
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {} not found", self.0)
    }
}
impl std::error::Error for NotFound {}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_callers_run_the_loader_once() {
    let s = stack(1_000, 1, None).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, calls, barrier) = (s.cache.clone(), calls.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_with("key".into(), async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        "value".to_string()
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "value");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The value was written through.
    assert!(s.tiers[0].inner().engine().entry_count() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loader_error_reaches_every_waiter_and_is_not_cached() {
    let s = stack(1_000, 1, None).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (cache, calls, barrier) = (s.cache.clone(), calls.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .try_get_with("row".into(), async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<String, _>(NotFound(7))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Loader);
        assert_eq!(err.source_as::<NotFound>().map(|e| e.0), Some(7));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.cache.get(&"row".into()).await.unwrap(), None);
    let v = s
        .cache
        .try_get_with("row".into(), async {
            Ok::<_, NotFound>("found".to_string())
        })
        .await
        .unwrap();
    assert_eq!(v, "found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_finds_a_lower_tier_value_before_loading() {
    let s = stack(1_000, 1, None).await;
    s.cache.insert("k".into(), "stored".into()).await.unwrap();
    s.cache.hot().clear();
    let v = s
        .cache
        .get_with("k".into(), async { panic!("the loader must not run") })
        .await
        .unwrap();
    assert_eq!(v, "stored");
}
