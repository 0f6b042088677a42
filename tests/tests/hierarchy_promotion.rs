//! Promotion: a lower-tier hit is copied into every tier above it with its
//! remaining time to live, on every hit or after N hits within a window.

use std::time::Duration;

use tiercache::Promotion;
use tiercache::tier::Backend;
use tiercache_tests::{held, key_bytes, stack_with};

#[tokio::test]
async fn a_hit_two_tiers_down_fills_both_tiers_above_with_the_remaining_ttl() {
    let s = stack_with(100, 2, Some(Duration::from_secs(60)), |b| b).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    s.cache.hot().clear();
    s.tiers[0].remove(&key_bytes("k")).await.unwrap();
    s.clock.advance(Duration::from_secs(20));

    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
    assert!(s.cache.hot().contains_key(&"k".into()));
    let (_, entry) = held(&s.tiers[0], "k").await.expect("promoted into tier 0");
    assert_eq!(
        entry.meta.remaining_ttl(s.clock.now_ms()),
        Some(Duration::from_secs(40)),
        "the remaining TTL, not a fresh one"
    );
    assert_eq!(s.cache.hierarchy_stats().promotions, 1);
    // It still expires at its first deadline in every tier.
    s.clock.advance(Duration::from_secs(40));
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
}

#[tokio::test]
async fn after_hits_promotes_only_keys_read_often_enough() {
    let window = Duration::from_secs(10);
    let s = stack_with(100, 1, None, |b| {
        b.promotion(Promotion::AfterHits { hits: 3, window })
    })
    .await;
    for k in ["hot", "cold"] {
        s.cache.insert(k.into(), k.into()).await.unwrap();
    }
    s.cache.hot().clear();

    let read = |k: &'static str| {
        let c = s.cache.clone();
        async move { c.get(&k.to_string()).await.unwrap() }
    };
    assert_eq!(read("hot").await.as_deref(), Some("hot"));
    assert_eq!(read("hot").await.as_deref(), Some("hot"));
    assert!(
        !s.cache.hot().contains_key(&"hot".into()),
        "two hits are not enough"
    );
    assert_eq!(read("hot").await.as_deref(), Some("hot"));
    assert!(
        s.cache.hot().contains_key(&"hot".into()),
        "the third hit promotes"
    );

    // Hits further apart than the window never add up.
    for _ in 0..5 {
        assert_eq!(read("cold").await.as_deref(), Some("cold"));
        s.clock.advance(window + Duration::from_millis(1));
        s.clock.advance(window);
    }
    assert!(!s.cache.hot().contains_key(&"cold".into()));
    assert_eq!(s.cache.hierarchy_stats().promotions, 1);
}
