//! The facade's disk tier: `CacheBuilder::disk` puts a redb file below the
//! hot tier, and what was written survives the cache.

use std::time::Duration;

use tiercache::{Cache, ManualClock};

async fn cache_on(path: &std::path::Path, clock: &ManualClock) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .disk(path)
        .build()
        .await
        .expect("a cache over a fresh redb file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_sits_below_memory_and_outlives_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tier.redb");
    let clock = ManualClock::default();
    {
        let cache = cache_on(&path, &clock).await;
        assert_eq!(cache.tier_stats().len(), 2, "memory, then redb");
        for i in 0..500 {
            cache
                .insert(format!("k{i}"), format!("v{i}"))
                .await
                .unwrap();
        }
        cache
            .insert_with_ttl("short".into(), "lived".into(), Duration::from_secs(5))
            .await
            .unwrap();
        // The hot tier holds 100 entries: older keys come from the disk.
        assert_eq!(
            cache.get(&"k3".to_string()).await.unwrap().as_deref(),
            Some("v3")
        );
    }
    clock.advance(Duration::from_secs(6));
    let cache = cache_on(&path, &clock).await;
    for i in (0..500).step_by(37) {
        assert_eq!(
            cache.get(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}")),
            "k{i} after reopening"
        );
    }
    assert_eq!(
        cache.get(&"short".to_string()).await.unwrap(),
        None,
        "an entry that expired while the cache was closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_path_that_cannot_be_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-database.redb");
    std::fs::write(&path, vec![0xA5; 64 * 1024]).unwrap();
    let err = Cache::<String, String>::builder()
        .disk(&path)
        .build()
        .await
        .expect_err("garbage is not a redb file");
    assert!(
        err.to_string().contains("not-a-database.redb"),
        "the error names the file: {err}"
    );
}
