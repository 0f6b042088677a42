//! A load and a write of the same key at once: a write that ends while the
//! loader runs stands. The loaded value (read from somewhere, perhaps
//! before the write) never lands over it, in the hot tier or below, and the
//! callers of the load are answered with the written value; with a store
//! behind the cache, the cache then agrees with the store.

use std::sync::Arc;

use tiercache::{Cache, WritePolicy};
use tiercache_tests::{TestStore, held, stack};
use tokio::sync::{Notify, oneshot};

/// Starts `get_with(key)` whose loader tells `started` it runs, then waits
/// for `release` and answers `"loaded"`.
fn held_get_with(
    cache: &Cache<String, String>,
    release: Arc<Notify>,
) -> (
    tokio::task::JoinHandle<tiercache::Result<String>>,
    oneshot::Receiver<()>,
) {
    let (started_tx, started) = oneshot::channel();
    let cache = cache.clone();
    let task = tokio::spawn(async move {
        cache
            .get_with("k".into(), async move {
                let _ = started_tx.send(());
                release.notified().await;
                "loaded".to_string()
            })
            .await
    });
    (task, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_that_ends_while_get_with_loads_stands_in_every_tier() {
    let s = stack(100, 1, None).await;
    let release = Arc::new(Notify::new());
    let (task, started) = held_get_with(&s.cache, release.clone());
    started.await.unwrap();
    s.cache.insert("k".into(), "written".into()).await.unwrap();
    release.notify_one();
    // The load's caller is answered with the write that ended first.
    assert_eq!(task.await.unwrap().unwrap(), "written");
    assert_eq!(
        s.cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("written")
    );
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("written")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_that_ends_while_get_with_loads_stands_in_a_memory_only_cache() {
    // No tier and no store: the hot tier alone orders the key's writes,
    // and the load's value must still not land over the insert.
    let cache: Cache<String, String> = Cache::builder().max_capacity(100).build().await.unwrap();
    let release = Arc::new(Notify::new());
    let (task, started) = held_get_with(&cache, release.clone());
    started.await.unwrap();
    cache.insert("k".into(), "written".into()).await.unwrap();
    release.notify_one();
    assert_eq!(task.await.unwrap().unwrap(), "written");
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("written")
    );
    // A removal that ends while a load runs leaves nothing newer, and
    // the loaded value is stored, as in every other stack.
    cache.remove(&"k".into()).await.unwrap();
    let (task, started) = held_get_with(&cache, release.clone());
    started.await.unwrap();
    cache.remove(&"k".into()).await.unwrap();
    cache.clear().await.unwrap();
    release.notify_one();
    assert_eq!(task.await.unwrap().unwrap(), "loaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_store_the_cache_agrees_with_the_store_after_a_racing_load() {
    let store: TestStore<String, String> = TestStore::new();
    let cache: Cache<String, String> = Cache::builder()
        .store(store.clone())
        .write_policy(WritePolicy::Through)
        .build()
        .await
        .unwrap();
    let release = Arc::new(Notify::new());
    let (task, started) = held_get_with(&cache, release.clone());
    started.await.unwrap();
    cache.insert("k".into(), "written".into()).await.unwrap();
    release.notify_one();
    assert_eq!(task.await.unwrap().unwrap(), "written");
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("written")
    );
    assert_eq!(store.value(&"k".to_string()).as_deref(), Some("written"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_with_no_write_meanwhile_is_stored() {
    let s = stack(100, 1, None).await;
    let release = Arc::new(Notify::new());
    let (task, started) = held_get_with(&s.cache, release.clone());
    started.await.unwrap();
    release.notify_one();
    assert_eq!(task.await.unwrap().unwrap(), "loaded");
    s.cache.hot().clear();
    assert_eq!(
        s.cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("loaded")
    );
}
