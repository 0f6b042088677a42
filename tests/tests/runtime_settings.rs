//! Settings that change after `build`: class policies (what a TTL
//! optimizer turns) and the hot tier's capacity (what a size tuner turns).

use std::time::Duration;

use tiercache::{ErrorKind, Placement};
use tiercache_tests::{held, stack, stack_with};

#[tokio::test]
async fn a_class_ttl_changed_after_build_applies_to_later_writes_only() {
    let s = stack_with(100, 1, Some(Duration::from_secs(3_600)), |b| {
        b.class("session", Duration::from_secs(60))
    })
    .await;
    let now = s.clock.now_ms();
    s.cache
        .insert_with_class("before".into(), "v".into(), "session")
        .await
        .unwrap();
    s.cache
        .set_class_ttl("session", Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(
        s.cache.class_policy("session").time_to_live,
        Some(Duration::from_secs(10))
    );
    s.cache
        .insert_with_class("after".into(), "v".into(), "session")
        .await
        .unwrap();
    let expiry = |k: &'static str| {
        let tier = s.tiers[0].clone();
        async move { held(&tier, k).await.unwrap().1.meta.expires_at_ms }
    };
    assert_eq!(expiry("before").await, Some(now + 60_000));
    assert_eq!(expiry("after").await, Some(now + 10_000));
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(s.cache.get(&"after".into()).await.unwrap(), None);
    assert_eq!(
        s.cache.get(&"before".into()).await.unwrap(),
        Some("v".into())
    );
    // `None` falls back to the cache's time to live; a new class is defined.
    s.cache.set_class_ttl("session", None).unwrap();
    s.cache
        .set_class_ttl("fresh", Some(Duration::from_secs(5)))
        .unwrap();
    let now = s.clock.now_ms();
    s.cache
        .insert_with_class("later".into(), "v".into(), "session")
        .await
        .unwrap();
    s.cache
        .insert_with_class("new".into(), "v".into(), "fresh")
        .await
        .unwrap();
    assert_eq!(expiry("later").await, Some(now + 3_600_000));
    assert_eq!(expiry("new").await, Some(now + 5_000));
    // The default class too.
    s.cache
        .set_class_ttl("default", Some(Duration::from_secs(1)))
        .unwrap();
    s.cache.insert("plain".into(), "v".into()).await.unwrap();
    assert_eq!(expiry("plain").await, Some(now + 1_000));
}

#[tokio::test]
async fn an_invalid_class_ttl_changes_nothing() {
    let s = stack_with(100, 1, None, |b| b.class("c", Duration::from_secs(60))).await;
    let err = s
        .cache
        .set_class_ttl("c", Some(Duration::ZERO))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    let err = s.cache.set_class_ttl("c", Some(Duration::MAX)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert_eq!(
        s.cache.class_policy("c").time_to_live,
        Some(Duration::from_secs(60))
    );
}

#[tokio::test]
async fn a_class_placement_changed_after_build_moves_later_writes() {
    let s = stack(100, 1, None).await;
    s.cache
        .set_class_placement("local", Placement::MemoryOnly)
        .unwrap();
    s.cache
        .insert_with_class("k".into(), "v".into(), "local")
        .await
        .unwrap();
    assert!(held(&s.tiers[0], "k").await.is_none(), "memory only");
    s.cache
        .set_class_placement("local", Placement::BelowMemory)
        .unwrap();
    s.cache
        .insert_with_class("k".into(), "w".into(), "local")
        .await
        .unwrap();
    assert!(
        !s.cache.hot().contains_key(&"k".into()),
        "below memory only"
    );
    assert_eq!(held(&s.tiers[0], "k").await.unwrap().0, "w");
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("w".into()));
}

#[tokio::test]
async fn the_hot_tier_can_shrink_and_grow_and_nothing_written_through_is_lost() {
    let s = stack(1_000, 1, None).await;
    for i in 0..1_000 {
        s.cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    s.cache.hot().set_capacity(100).unwrap();
    assert_eq!(s.cache.hot().max_capacity(), 100);
    assert!(s.cache.entry_count() <= 100);
    // What the hot tier let go of is still below it.
    for i in 0..1_000 {
        assert_eq!(
            s.cache.get(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}"))
        );
    }
    s.cache.hot().set_capacity(2_000).unwrap();
    for i in 1_000..3_000 {
        s.cache.insert(format!("k{i}"), "v".into()).await.unwrap();
    }
    assert!(s.cache.entry_count() <= 2_000);
    assert!(s.cache.entry_count() > 1_000, "the grown tier fills up");
    assert!(s.cache.hot().set_capacity(0).is_err());
    assert_eq!(s.cache.hot().max_capacity(), 2_000);
}

#[tokio::test]
async fn an_entry_inserted_with_its_stored_metadata_keeps_its_expiry_and_class() {
    let s = stack_with(100, 2, Some(Duration::from_secs(3_600)), |b| {
        b.class("report", Duration::from_secs(600))
    })
    .await;
    s.cache
        .insert_with_class("k".into(), "v".into(), "report")
        .await
        .unwrap();
    let (_, stored) = held(&s.tiers[1], "k").await.unwrap();
    s.cache.clear().await.unwrap();
    s.clock.advance(Duration::from_secs(100));
    // Warming from a snapshot of the lowest tier: the remaining 500 s, not
    // a fresh time to live.
    s.cache
        .insert_with_meta("k".into(), "v".into(), &stored.meta)
        .await
        .unwrap();
    for tier in &s.tiers {
        let (v, entry) = held(tier, "k").await.unwrap();
        assert_eq!(v, "v");
        assert_eq!(entry.meta.expires_at_ms, stored.meta.expires_at_ms);
        assert_eq!(entry.meta.created_at_ms, stored.meta.created_at_ms);
        assert_eq!(entry.meta.class, stored.meta.class);
    }
    s.clock.advance(Duration::from_secs(500));
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    // An entry that has expired is refused, and changes nothing.
    s.cache.insert("k".into(), "live".into()).await.unwrap();
    let err = s
        .cache
        .insert_with_meta("k".into(), "old".into(), &stored.meta)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("live".into()));
}

/// A shrink under write-on-evict demotes everything it evicts, even far more
/// than the demotion queue holds at once (10,000): through the hot tier
/// alone, the entries past the queue's bound were dropped, and the writes
/// lost (the insert had already removed them below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_shrink_under_write_on_evict_loses_nothing() {
    let s = stack_with(40_000, 1, None, |b| b.write_on_evict(true)).await;
    let n = 25_000;
    for i in 0..n {
        s.cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    assert!(
        s.cache.set_capacity(0).await.is_err(),
        "refused, nothing changes"
    );
    assert_eq!(s.cache.hot().max_capacity(), 40_000);
    s.cache.set_capacity(500).await.unwrap();
    assert_eq!(s.cache.hot().max_capacity(), 500);
    assert!(s.cache.entry_count() <= 500);
    assert_eq!(s.cache.hierarchy_stats().demotions_dropped, 0);
    for i in 0..n {
        assert_eq!(
            s.cache.get(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}")),
            "k{i}"
        );
    }
}

/// A class first named at run time starts from the built-in policy (every
/// tier), as one named in the builder does, not from the default class's.
#[tokio::test]
async fn a_class_defined_at_run_time_starts_like_one_defined_in_the_builder() {
    let s = stack_with(100, 1, None, |b| {
        b.class_placement("default", Placement::MemoryOnly)
            .class("built", Duration::from_secs(60))
    })
    .await;
    s.cache
        .set_class_ttl("later", Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(
        s.cache.class_policy("built").placement,
        Placement::Everywhere
    );
    assert_eq!(
        s.cache.class_policy("later").placement,
        Placement::Everywhere
    );
    s.cache
        .insert_with_class("k".into(), "v".into(), "later")
        .await
        .unwrap();
    assert!(held(&s.tiers[0], "k").await.is_some());
}

/// `contains_key` does not count as a use: it neither keeps an entry from
/// idling out nor feeds the policy.
#[tokio::test]
async fn contains_key_does_not_keep_an_entry_alive() {
    for tiers in [0, 1] {
        let s = stack_with(100, tiers, None, |b| b.time_to_idle(Duration::from_secs(1))).await;
        s.cache.insert("k".into(), "v".into()).await.unwrap();
        s.clock.advance(Duration::from_millis(600));
        assert!(s.cache.hot().contains_key(&"k".into()));
        assert!(s.cache.contains_key(&"k".into()).await.unwrap());
        s.clock.advance(Duration::from_millis(600));
        assert!(!s.cache.hot().contains_key(&"k".into()), "{tiers} tiers");
    }
}
