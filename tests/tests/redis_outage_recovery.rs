//! An outage long enough that the cache forgets which keys went stale (more
//! failed writes than it remembers) must not make the reads after it wipe
//! the shared Redis: no lookup waits on a clear, and another cache on the
//! same prefix keeps everything. The cache still serves nothing older than
//! what it wrote during the outage.
//!
//! The Redis tier is real; the outage is a fault switch in front of it, so
//! the other cache's writes reach the server throughout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::FailingBackend;
use tiercache::Cache;
use tiercache::redis::RedisBackend;
use tiercache::tier::DynBackend;
use tiercache_tests::RedisServer;

/// More than the cache remembers as stale (65,536 keys).
const FAILED_WRITES: u64 = 70_000;
const SHARED: u64 = 2_000;

/// A Redis tier on the shared prefix, connected: it connects in the
/// background after its build.
async fn redis(url: &str) -> RedisBackend {
    let tier = RedisBackend::builder(url)
        .prefix("shared")
        .build()
        .await
        .expect("a Redis tier over the test server");
    tier.wait_for_connection(Duration::from_secs(10))
        .await
        .expect("the Redis tier connects");
    tier
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_after_a_long_outage_never_clear_the_shared_prefix() {
    let Some(server) =
        RedisServer::start("reads_after_a_long_outage_never_clear_the_shared_prefix")
    else {
        return;
    };
    let url = server.url();
    let ours = Arc::new(FailingBackend::new(redis(&url).await));
    let a: Cache<u64, String> = Cache::builder()
        .max_capacity(100)
        .tier(ours.clone() as Arc<dyn DynBackend>)
        .build()
        .await
        .unwrap();
    let theirs = redis(&url).await;
    // Another process's cache on the same prefix.
    let other: Cache<u64, String> = Cache::builder()
        .max_capacity(10)
        .backend(redis(&url).await)
        .build()
        .await
        .unwrap();
    for k in 0..SHARED {
        other
            .insert(1_000_000 + k, format!("theirs {k}"))
            .await
            .unwrap();
    }
    // A key we write before the outage and again during it.
    a.insert(7, "before".into()).await.unwrap();

    ours.set_failing(true);
    for k in 0..FAILED_WRITES {
        a.insert(k, format!("during {k}")).await.unwrap();
    }
    ours.set_failing(false);
    let held_before = theirs.exact_len().await.unwrap();

    // After recovery: lookups of every kind, timed.
    a.hot().clear();
    let mut latencies = Vec::new();
    for k in 0..2_000u64 {
        let started = Instant::now();
        let found = a.get(&k).await.unwrap();
        latencies.push(started.elapsed());
        // What Redis holds for these keys predates failed writes: never
        // served.
        assert_eq!(found, None, "key {k}: an old record was served");
        let started = Instant::now();
        let _ = a.get(&(1_000_000 + k % SHARED)).await.unwrap();
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let p50 = latencies[latencies.len() / 2];
    println!(
        "after a {FAILED_WRITES}-write outage: {} gets, p50 {p50:?}, p99 {p99:?}",
        latencies.len()
    );

    // Nothing was cleared: the other cache's records are all there.
    assert!(held_before >= SHARED);
    assert!(theirs.exact_len().await.unwrap() >= held_before);
    for k in 0..SHARED {
        assert_eq!(
            other.get(&(1_000_000 + k)).await.unwrap(),
            Some(format!("theirs {k}")),
            "the other cache lost key {k}"
        );
    }
    // And what we write now is trusted again.
    a.insert(7, "after".into()).await.unwrap();
    a.hot().clear();
    assert_eq!(a.get(&7).await.unwrap().as_deref(), Some("after"));
}
