//! `Cache::stats` (feature `analytics`): exact counts per tier and class on
//! a deterministic workload, latencies, hot keys, and a serializable
//! snapshot with a readable report.

use std::time::Duration;

use tiercache::Placement;
use tiercache::tier::Backend;
use tiercache_tests::stack_with;

#[tokio::test]
async fn a_deterministic_workload_gives_exact_counts() {
    let s = stack_with(10, 1, None, |b| {
        b.analytics_sampling(1)
            .class("rows", Duration::from_secs(60))
            .class_placement("blob", Placement::BelowMemory)
    })
    .await;
    let c = &s.cache;
    for i in 0..5 {
        c.insert_with_class(format!("r{i}"), "v".into(), "rows")
            .await
            .unwrap();
    }
    c.insert_with_class("b".into(), "big".into(), "blob")
        .await
        .unwrap();
    // 5 × 3 hot hits on rows, 2 misses everywhere, 1 hit below memory.
    for _ in 0..3 {
        for i in 0..5 {
            assert!(c.get(&format!("r{i}")).await.unwrap().is_some());
        }
    }
    for k in ["absent1", "absent2"] {
        assert!(c.get(&k.to_string()).await.unwrap().is_none());
    }
    assert!(c.get(&"b".to_string()).await.unwrap().is_some());
    // Overfill the hot tier so it evicts.
    for i in 0..40 {
        c.insert(format!("fill{i}"), "x".into()).await.unwrap();
    }

    let stats = c.stats().await.expect("analytics is on");
    let hot = &stats.tiers[0];
    assert_eq!((hot.name.as_str(), hot.hits, hot.misses), ("hot", 15, 3));
    assert_eq!(hot.class_hits, vec![("rows".to_string(), 15)]);
    // 5 rows, 1 blob and 40 fillers of the default class.
    assert_eq!(
        hot.class_inserts,
        vec![
            ("default".to_string(), 40),
            ("rows".to_string(), 5),
            ("blob".to_string(), 1)
        ]
    );
    assert_eq!(hot.get_latency.count, 18, "sampling 1 times every lookup");
    assert_eq!(hot.insert_latency.count, 46);
    assert!(hot.get_latency.p50 > 0 && hot.get_latency.p99 >= hot.get_latency.p50);
    assert!(hot.evictions.unwrap() >= 30, "{hot:?}");
    let below = &stats.tiers[1];
    assert_eq!((below.hits, below.misses), (1, 2));
    assert_eq!(below.class_hits, vec![("blob".to_string(), 1)]);
    assert_eq!(below.entries, Some(46));
    assert_eq!(stats.hit_ratio, 16.0 / 18.0);
    // The hottest keys are the rows, read three times each.
    assert_eq!(stats.hot_keys.len(), 5);
    // Keys as the application wrote them (their Debug form), not as the
    // byte tiers store them (postcard's length byte, then "r").
    assert!(
        stats
            .hot_keys
            .iter()
            .all(|k| k.count == 3 && k.key.starts_with("\"r") && k.key.ends_with('"')),
        "{:?}",
        stats.hot_keys
    );

    let json = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["tiers"][0]["hits"], 15);
    assert_eq!(json["tiers"][1]["entries"], 46);
    let report = stats.report();
    assert!(report.contains("cache hit ratio 88.89 %"), "{report}");
    assert!(report.contains("hot keys:"), "{report}");
}

#[tokio::test]
async fn analytics_can_be_turned_off() {
    let s = stack_with(10, 1, None, |b| b.analytics(false)).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    assert!(s.cache.stats().await.is_none());
    assert_eq!(
        s.cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("v")
    );
}

/// Ten entries with a 10 s TTL, four of them read; all expire; then five
/// misses, three on keys that just expired and two on keys never cached:
/// 60% expired unused, 60% of misses after expiry.
#[tokio::test]
async fn ttl_effectiveness_matches_the_hand_computed_figures() {
    let s = stack_with(100, 1, Some(Duration::from_secs(10)), |b| {
        b.analytics_sampling(1)
    })
    .await;
    let c = &s.cache;
    for i in 0..10 {
        c.insert(format!("k{i}"), "v".into()).await.unwrap();
    }
    for i in 0..4 {
        assert!(c.get(&format!("k{i}")).await.unwrap().is_some());
    }
    s.clock.advance(Duration::from_secs(11));
    for k in ["k0", "k5", "k9", "never1", "never2"] {
        assert!(c.get(&k.to_string()).await.unwrap().is_none());
    }
    let ttl = c.stats().await.unwrap().ttl;
    assert_eq!((ttl.expired, ttl.expired_unused), (10, 6), "{ttl:?}");
    assert_eq!((ttl.misses, ttl.misses_after_expiry), (5, 3), "{ttl:?}");
    assert!((ttl.expired_unused_share() - 0.6).abs() < 1e-12);
}

/// The cleanup task removes idle entries from every tier below memory, a
/// bounded number per run, until it is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_task_removes_idle_entries_below_memory() {
    use tiercache::analytics::CleanupPolicy;
    use tiercache_tests::held;
    let s = stack_with(100, 2, None, |b| b.entry_tracking(1)).await;
    let c = &s.cache;
    for i in 0..20 {
        c.insert(format!("k{i}"), "v".into()).await.unwrap();
    }
    s.clock.advance(Duration::from_secs(10));
    for i in 0..5 {
        assert!(c.get(&format!("k{i}")).await.unwrap().is_some());
    }
    let policy = CleanupPolicy {
        idle_after: Some(Duration::from_secs(5)),
        max_entry_bytes: None,
        max_per_run: 4,
    };
    let handle = c
        .spawn_cleanup(Duration::from_millis(5), policy)
        .expect("a tier below memory");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s.tiers[1].inner().len().await.unwrap() > 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cleanup did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let totals = handle.stop().await;
    assert_eq!(totals.idle, 15);
    for i in 0..20 {
        for tier in &s.tiers {
            assert_eq!(held(tier, &format!("k{i}")).await.is_some(), i < 5, "k{i}");
        }
    }
}
