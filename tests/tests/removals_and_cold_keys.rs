//! What each tier evicted and expired on its own, per data class, in
//! `Cache::stats` and the metrics; and the keys of the cache gone cold.

use std::sync::Arc;
use std::time::Duration;

use tiercache::analytics::ClassRemovalStats;
use tiercache::redb::RedbBackend;
use tiercache::tier::DynBackend;
use tiercache::{Cache, ManualClock};
use tiercache_tests::{key_bytes, stack_with};

fn share(class: &str, evicted: u64, expired: u64) -> ClassRemovalStats {
    ClassRemovalStats {
        class: class.into(),
        evicted,
        expired,
    }
}

#[tokio::test]
async fn the_hot_tier_and_a_byte_tier_count_removals_per_class() {
    let s = stack_with(10, 1, None, |b| b.class("rows", Duration::from_secs(60))).await;
    let c = &s.cache;
    for i in 0..30 {
        c.insert_with_class(format!("r{i}"), "v".into(), "rows")
            .await
            .unwrap();
    }
    // A removal the caller asks for is not the tier's own.
    let gone = (0..30)
        .map(|i| format!("r{i}"))
        .find(|k| c.hot().contains_key(k))
        .expect("the hot tier holds some rows");
    c.remove(&gone).await.unwrap();
    let stats = c.stats().await.unwrap();
    let hot = &stats.tiers[0];
    let held = c.entry_count();
    assert_eq!(hot.evictions.unwrap() + held + 1, 30, "{hot:?}");
    let evicted = 29 - held;
    assert_eq!(hot.removals_by_class, vec![share("rows", evicted, 0)]);

    // Past the class's time to live every row left expires, in both tiers.
    s.clock.advance(Duration::from_secs(61));
    for i in 0..30 {
        assert!(c.get(&format!("r{i}")).await.unwrap().is_none());
    }
    let stats = c.stats().await.unwrap();
    let (hot, below) = (&stats.tiers[0], &stats.tiers[1]);
    assert_eq!(hot.expirations, Some(held), "{hot:?}");
    assert_eq!(hot.removals_by_class, vec![share("rows", evicted, held)]);
    assert_eq!((below.evictions, below.expirations), (Some(0), Some(29)));
    assert_eq!(below.removals_by_class, vec![share("rows", 0, 29)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_reports_its_evictions_per_class_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let disk = RedbBackend::builder(dir.path().join("small.redb"))
        .clock(clock.clock())
        .max_bytes(20 * 1024)
        .build()
        .await
        .unwrap();
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(5)
        .clock(clock.clock())
        .class("blob", Duration::from_secs(3600))
        .tier(Arc::new(disk) as Arc<dyn DynBackend>)
        .build()
        .await
        .unwrap();
    for i in 0..100 {
        cache
            .insert_with_class(i, "x".repeat(1000), "blob")
            .await
            .unwrap();
    }
    let stats = cache.stats().await.unwrap();
    let disk = &stats.tiers[1];
    let evicted = disk.evictions.expect("redb counts its evictions");
    let held = disk.entries.unwrap();
    assert!(evicted > 0, "100 KB cannot fit in 20 KiB");
    assert_eq!(evicted + held, 100, "{disk:?}");
    assert_eq!(disk.removals_by_class, vec![share("blob", evicted, 0)]);
    assert!(stats.report().contains(&format!(" {evicted} ")));
}

#[tokio::test]
async fn keys_untouched_for_the_window_are_cold_coldest_first() {
    let s = stack_with(100, 1, None, |b| b.entry_tracking(1)).await;
    let c = &s.cache;
    for k in ["a", "b", "c"] {
        c.insert(k.into(), "v".into()).await.unwrap();
    }
    s.clock.advance(Duration::from_secs(60));
    c.insert("d".into(), "v".into()).await.unwrap();
    s.clock.advance(Duration::from_secs(250));
    // Read now: "b" is warm again.
    assert!(c.get(&"b".to_string()).await.unwrap().is_some());
    s.clock.advance(Duration::from_secs(60));

    let cold: Vec<_> = c
        .cold_keys(Duration::from_secs(300), 10)
        .into_iter()
        .map(|k| k.key)
        .collect();
    assert_eq!(cold, vec![key_bytes("a"), key_bytes("c"), key_bytes("d")]);
    assert_eq!(c.cold_keys(Duration::from_secs(300), 1).len(), 1);
    let stats = c.stats().await.unwrap();
    assert_eq!(stats.cold_keys.len(), 3);
    // A key removed is no longer cold: it is gone.
    c.remove(&"a".to_string()).await.unwrap();
    let cold = c.cold_keys(Duration::from_secs(300), 10);
    assert_eq!(cold[0].key, key_bytes("c"));
    assert_eq!(cold.len(), 2);
}
