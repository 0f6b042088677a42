//! The builder's checks of a store's settings, where write-back's log
//! lives by default, and what a write cut short after the store took it
//! leaves behind.

use std::sync::Arc;
use std::time::Duration;

use tiercache::memory::MemoryBackend;
use tiercache::tier::DynBackend;
use tiercache::{Cache, ErrorKind, ManualClock, Postcard, WritePolicy};
use tiercache_tests::{Gated, TestStore};

#[tokio::test]
async fn a_write_policy_without_a_store_fails_to_build() {
    let built = Cache::<u64, String>::builder()
        .write_policy(WritePolicy::Back)
        .build()
        .await;
    let e = built.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("store"), "{e}");
}

#[tokio::test]
async fn write_back_without_a_log_or_a_disk_tier_fails_to_build_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let built = Cache::<u64, String>::builder()
        .store(TestStore::new())
        .write_policy(WritePolicy::Back)
        .build()
        .await;
    let e = built.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("write_back_log"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn write_back_over_a_disk_tier_keeps_its_log_beside_the_disk_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    let cache: Cache<u64, String> = Cache::builder()
        .disk(dir.path().join("tier.redb"))
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .build()
        .await
        .unwrap();
    cache.insert(1, "one".into()).await.unwrap();
    assert!(dir.path().join("tier.redb.write-back.redb").exists());
    cache.flush().await.unwrap();
    assert_eq!(store.value(&1).as_deref(), Some("one"));
}

#[tokio::test]
async fn write_back_refuses_a_codec_set_after_the_store() {
    // The log's keys are decoded with the codec the builder had when the
    // store was set; a later change would decode them wrongly.
    let dir = tempfile::tempdir().unwrap();
    let built = Cache::<u64, String>::builder()
        .store(TestStore::new())
        .codec(Postcard)
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.path().join("log.redb"))
        .build()
        .await;
    let e = built.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("codec"), "{e}");
    // Write-through decodes nothing, so the order does not matter there.
    Cache::<u64, String>::builder()
        .store(TestStore::new())
        .codec(Postcard)
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn invalid_write_back_settings_are_named_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let built = Cache::<u64, String>::builder()
        .store(TestStore::new())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.path().join("log.redb"))
        .max_batch(0)
        .build()
        .await;
    let e = built.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(e.to_string().contains("batch"), "{e}");
    assert!(!dir.path().join("log.redb").exists());
}

/// A write-through cache over one gated tier, the store, and the tier.
async fn through_over_gated_tier() -> (
    Cache<String, String>,
    TestStore<String, String>,
    Arc<Gated<MemoryBackend>>,
) {
    let clock = ManualClock::default();
    let warm = Arc::new(Gated::new(
        MemoryBackend::builder().clock(clock.clock()).build(),
    ));
    let store = TestStore::new();
    let cache = Cache::builder()
        .clock(clock.clock())
        .tier(warm.clone() as Arc<dyn DynBackend>)
        .store(store.clone())
        .build()
        .await
        .unwrap();
    (cache, store, warm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_cancelled_after_the_store_saved_it_leaves_no_older_value_readable() {
    let (cache, store, warm) = through_over_gated_tier().await;
    cache.insert("k".into(), "v1".into()).await.unwrap();
    // The next insert saves v2 to the store, then is held before the tier
    // below takes it, and is cancelled there.
    warm.before_insert.arm();
    let writer = tokio::spawn({
        let cache = cache.clone();
        async move { cache.insert("k".into(), "v2".into()).await }
    });
    warm.before_insert.held().await;
    assert_eq!(store.value(&"k".into()).as_deref(), Some("v2"));
    writer.abort();
    assert!(writer.await.unwrap_err().is_cancelled());
    warm.before_insert.release();
    // The store has v2; the tier below still holds v1. Once the hot tier
    // lets the key go (here at once, as an eviction would), a read must
    // not serve v1: the cancelled write marked the key stale below, so the
    // read goes to the store.
    cache.hot().remove(&"k".into());
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v2"));
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v2"));
}

#[tokio::test]
async fn a_store_failure_under_write_through_changes_no_tier() {
    let (cache, store, warm) = through_over_gated_tier().await;
    cache.insert("k".into(), "v1".into()).await.unwrap();
    store.set_failing(true);
    let e = cache.insert("k".into(), "v2".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = cache.remove(&"k".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v1"));
    cache.hot().remove(&"k".into());
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v1"));
    let _ = warm;
}

#[tokio::test]
async fn loaded_values_are_cached_but_not_saved_to_the_store() {
    let store: TestStore<String, String> = TestStore::new();
    let cache: Cache<String, String> = Cache::builder().store(store.clone()).build().await.unwrap();
    let v = cache
        .get_with("computed".into(), async { "value".to_string() })
        .await
        .unwrap();
    assert_eq!(v, "value");
    assert_eq!(store.calls().saves, 0, "a loader's value is not a write");
    assert_eq!(store.value(&"computed".into()), None);
    assert_eq!(
        cache.get(&"computed".into()).await.unwrap().as_deref(),
        Some("value")
    );
    // An insert is a write, and is saved.
    cache.insert("written".into(), "w".into()).await.unwrap();
    assert_eq!(store.value(&"written".into()).as_deref(), Some("w"));
}

#[tokio::test]
async fn a_read_through_does_not_overwrite_an_insert_that_came_in_meanwhile() {
    let store: TestStore<String, String> = TestStore::new();
    store.preload("k".into(), "old".into());
    store.set_latency(Duration::from_millis(100));
    let cache: Cache<String, String> = Cache::builder()
        .store(store.clone())
        .write_policy(WritePolicy::Around)
        .build()
        .await
        .unwrap();
    // A read starts loading the store's copy; an insert (write-around:
    // the store, then the cache forgets the key) lands while it loads.
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&"k".into()).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.set_latency(Duration::ZERO);
    cache.insert("k".into(), "new".into()).await.unwrap();
    let raced = reader.await.unwrap();
    assert!(matches!(raced.as_deref(), Some("old" | "new")));
    // The read that began first must not have cached "old" over the write.
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("new")
    );
}

#[tokio::test]
async fn a_dead_lettered_write_is_still_what_reads_answer() {
    // The store never took the write, so its copy is older than a write
    // the cache acknowledged: once the hot tier lets the key go, reads
    // answer the dead letter, not the store's copy.
    let dir = tempfile::tempdir().unwrap();
    let store: TestStore<String, String> = TestStore::new();
    store.preload("k".into(), "old".into());
    let cache: Cache<String, String> = Cache::builder()
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.path().join("log.redb"))
        .max_retries(1)
        .build()
        .await
        .unwrap();
    store.set_failing(true);
    cache.insert("k".into(), "new".into()).await.unwrap();
    cache.flush().await.unwrap();
    assert_eq!(cache.dead_letters().len(), 1);
    assert!(!cache.is_dirty(&"k".into()));
    cache.hot().remove(&"k".into());
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("new")
    );
    // Discarded, the write is given up, and the store's copy is the value.
    assert!(cache.dead_letters().discard(&"k".into()).await.unwrap());
    store.set_failing(false);
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("old")
    );
}

#[tokio::test]
async fn a_write_back_insert_cancelled_while_the_log_commits_leaves_no_older_value_readable() {
    use std::future::Future;
    use std::task::{Context, Waker};
    // An insert dropped after its append was sent to the log still
    // commits, and reaches the store; the tiers must not keep the value it
    // replaced, or a read after the flush would go back to it.
    let dir = tempfile::tempdir().unwrap();
    let store: TestStore<String, String> = TestStore::new();
    let cache: Cache<String, String> = Cache::builder()
        .disk(dir.path().join("tier.redb"))
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .build()
        .await
        .unwrap();
    cache.insert("k".into(), "v1".into()).await.unwrap();
    cache.flush().await.unwrap();
    {
        let mut insert = Box::pin(cache.insert("k".into(), "v2".into()));
        let mut cx = Context::from_waker(Waker::noop());
        // Polled until the append waits for the log's answer, then dropped.
        for _ in 0..3 {
            if insert.as_mut().poll(&mut cx).is_ready() {
                break;
            }
        }
    }
    cache.flush().await.unwrap();
    cache.hot().remove(&"k".into());
    let now = cache.get(&"k".into()).await.unwrap();
    if store.value(&"k".into()).as_deref() == Some("v2") {
        assert_eq!(now.as_deref(), Some("v2"), "an older value came back");
    }
}

#[tokio::test]
async fn a_log_smaller_than_a_batch_makes_room_without_waiting_out_the_interval() {
    // With room for two dirty keys and batches of 256, the log is full
    // long before a batch is: the writer waiting for room must wake the
    // flusher, not wait the ten-second interval.
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u64, String> = Cache::builder()
        .store(TestStore::new())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.path().join("log.redb"))
        .max_dirty(2)
        .flush_interval(Duration::from_secs(10))
        .build()
        .await
        .unwrap();
    cache.flush().await.unwrap();
    for k in 0..3 {
        tokio::time::timeout(Duration::from_secs(5), cache.insert(k, "v".into()))
            .await
            .expect("room is made well before the interval")
            .unwrap();
    }
}

#[test]
fn a_flush_after_the_flushers_runtime_is_gone_fails_instead_of_waiting_forever() {
    let dir = tempfile::tempdir().unwrap();
    let store: TestStore<u64, String> = TestStore::new();
    store.set_failing(true);
    let first = tokio::runtime::Runtime::new().unwrap();
    let cache: Cache<u64, String> = first.block_on(async {
        let cache = Cache::builder()
            .store(store.clone())
            .write_policy(WritePolicy::Back)
            .write_back_log(dir.path().join("log.redb"))
            .build()
            .await
            .unwrap();
        cache.insert(1, "one".into()).await.unwrap();
        cache
    });
    // The runtime the cache was built on shuts down, and its flusher with
    // it; the cache itself lives on.
    drop(first);
    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let flushed = tokio::time::timeout(Duration::from_secs(5), cache.flush())
            .await
            .expect("the flush answers");
        assert_eq!(flushed.unwrap_err().kind(), ErrorKind::Unavailable);
        // The write is still in the log: a cache opened on it later
        // flushes it.
        assert!(cache.is_dirty(&1));
    });
}
