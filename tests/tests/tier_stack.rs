//! The tier stack: write-through, promotion with remaining TTL, removal
//! everywhere, and failing tiers skipped.

use std::time::Duration;

use bytes::Bytes;
use tiercache::tier::Backend;
use tiercache::{Codec, ErrorKind, Lookup, Postcard};
use tiercache_tests::stack;

fn key_bytes(k: &str) -> Bytes {
    Bytes::from(Postcard.encode(&k.to_string()).unwrap())
}

#[tokio::test]
async fn insert_writes_through_to_every_tier() {
    let s = stack(100, 2, Some(Duration::from_secs(60))).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    for tier in &s.tiers {
        let Lookup::Hit(e) = tier.get(&key_bytes("k")).await.unwrap() else {
            panic!("tier lacks the written value");
        };
        let v: String = Postcard.decode(&e.value).unwrap();
        assert_eq!(v, "v");
        assert_eq!(
            e.meta.remaining_ttl(s.clock.now_ms()),
            Some(Duration::from_secs(60))
        );
    }
}

#[tokio::test]
async fn a_lower_tier_hit_is_promoted_with_its_remaining_ttl() {
    let s = stack(100, 2, Some(Duration::from_secs(60))).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    // Only the bottom tier keeps the value.
    s.cache.hot().remove(&"k".to_string());
    s.tiers[0].remove(&key_bytes("k")).await.unwrap();
    s.clock.advance(Duration::from_secs(45));

    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
    let stats = s.cache.tier_stats();
    assert_eq!((stats[1].misses, stats[2].hits), (1, 1));

    // Promoted into the hot tier and the tier above, with 15 s left.
    assert!(s.cache.hot().contains_key(&"k".to_string()));
    let Lookup::Hit(e) = s.tiers[0].get(&key_bytes("k")).await.unwrap() else {
        panic!("not promoted into the upper byte tier");
    };
    assert_eq!(
        e.meta.remaining_ttl(s.clock.now_ms()),
        Some(Duration::from_secs(15))
    );
    // The promoted copies expire when the original would have.
    s.clock.advance(Duration::from_secs(15));
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    assert!(!s.cache.hot().contains_key(&"k".to_string()));
}

#[tokio::test]
async fn a_hot_hit_does_not_consult_lower_tiers() {
    let s = stack(100, 1, None).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    let calls = s.tiers[0].calls();
    for _ in 0..10 {
        assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
    }
    assert_eq!(s.tiers[0].calls(), calls);
    assert_eq!(s.cache.tier_stats()[0].hits, 10);
}

#[tokio::test]
async fn remove_removes_from_every_tier() {
    let s = stack(100, 2, None).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    s.cache.remove(&"k".into()).await.unwrap();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    for tier in &s.tiers {
        assert_eq!(tier.get(&key_bytes("k")).await.unwrap(), Lookup::Miss);
    }
    assert!(!s.cache.contains_key(&"k".into()).await.unwrap());
}

#[tokio::test]
async fn a_failing_tier_at_any_position_does_not_fail_the_call() {
    for failing in 0..3 {
        let s = stack(100, 3, None).await;
        s.cache.insert("k".into(), "v".into()).await.unwrap();
        s.tiers[failing].set_failing(true);
        s.cache.hot().clear();

        // Reads skip the failing tier and are answered by another one.
        assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
        // Writes and removes succeed and reach the healthy tiers.
        s.cache.insert("k2".into(), "v2".into()).await.unwrap();
        s.cache.remove(&"k".into()).await.unwrap();
        for (i, tier) in s.tiers.iter().enumerate() {
            if i != failing {
                assert!(tier.inner().get(&key_bytes("k2")).await.unwrap().is_hit());
                assert_eq!(tier.get(&key_bytes("k")).await.unwrap(), Lookup::Miss);
            }
        }
        let stats = s.cache.tier_stats();
        assert!(
            stats[failing + 1].errors >= 1,
            "errors of tier {failing} are counted: {stats:?}"
        );
    }
}

#[tokio::test]
async fn every_tier_failing_is_a_miss_not_an_error() {
    let s = stack(100, 2, None).await;
    for t in &s.tiers {
        t.set_failing(true);
    }
    assert_eq!(s.cache.get(&"absent".into()).await.unwrap(), None);
    let v = s
        .cache
        .get_with("k".into(), async { "loaded".to_string() })
        .await
        .unwrap();
    assert_eq!(v, "loaded");
    // The hot tier still serves what was loaded.
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some(v));
}

#[tokio::test]
async fn a_record_that_does_not_decode_is_a_miss_and_is_removed() {
    let s = stack(100, 1, None).await;
    let garbage =
        tiercache::tier::Entry::new(vec![0xFF; 3], tiercache::tier::Meta::new(s.clock.now_ms()));
    s.tiers[0].insert(key_bytes("k"), garbage).await.unwrap();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    assert_eq!(s.tiers[0].get(&key_bytes("k")).await.unwrap(), Lookup::Miss);
    assert_eq!(s.cache.tier_stats()[1].corrupted, 1);
}

#[tokio::test]
async fn oversized_input_is_rejected_before_any_tier_changes() {
    let s = stack(100, 1, None).await;
    s.cache.insert("k".into(), "old".into()).await.unwrap();
    let huge = "x".repeat(65 * 1024 * 1024);
    let err = s.cache.insert("k".into(), huge).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("old".into()));

    let long_key = "k".repeat(9 * 1024);
    let err = s
        .cache
        .insert(long_key.clone(), "v".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyTooLarge);
    assert!(!s.cache.hot().contains_key(&long_key));
    assert_eq!(s.tiers[0].len().await.unwrap(), 1);

    let err = s
        .cache
        .insert_with_ttl("k".into(), "new".into(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("old".into()));
}

#[tokio::test]
async fn per_entry_ttl_applies_in_every_tier() {
    let s = stack(100, 1, Some(Duration::from_secs(3600))).await;
    s.cache
        .insert_with_ttl("k".into(), "v".into(), Duration::from_secs(10))
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    assert_eq!(s.tiers[0].get(&key_bytes("k")).await.unwrap(), Lookup::Miss);
}

#[tokio::test]
async fn the_builder_rejects_a_zero_ttl() {
    let err = tiercache::Cache::<u64, u64>::builder()
        .time_to_live(Duration::ZERO)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    let err = tiercache::Cache::<u64, u64>::builder()
        .max_capacity(0)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test]
async fn a_negative_entry_expired_by_the_cache_clock_lets_lower_tiers_answer() {
    let s = stack(100, 2, None).await;
    let now = s.clock.now_ms();
    // The upper tier still answers "negative" for an entry the cache's
    // clock says has expired (its own clock lags); the tier below has the
    // value.
    let negative = tiercache::tier::Meta::new(now)
        .expires_at(Some(now + 1_000))
        .flags(tiercache::tier::Flags::NEGATIVE);
    s.tiers[1]
        .insert(
            key_bytes("k"),
            tiercache::tier::Entry::new(
                tiercache::Postcard.encode(&"below".to_string()).unwrap(),
                tiercache::tier::Meta::new(now),
            ),
        )
        .await
        .unwrap();
    let lagging = LaggingNegative(negative);
    let cache: tiercache::Cache<String, String> = tiercache::Cache::builder()
        .clock(s.clock.clock())
        .backend(lagging)
        .tier(s.tiers[1].clone() as std::sync::Arc<dyn tiercache::tier::DynBackend>)
        .build()
        .await
        .unwrap();
    assert_eq!(cache.get(&"k".into()).await.unwrap(), None, "live negative");
    s.clock.advance(std::time::Duration::from_secs(2));
    assert_eq!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("below")
    );
}

/// A tier that answers every lookup with the same negative entry, whatever
/// the time: a tier whose clock lags the cache's.
struct LaggingNegative(tiercache::tier::Meta);

impl tiercache::tier::Backend for LaggingNegative {
    fn name(&self) -> &str {
        "lagging"
    }
    async fn get(&self, _: &[u8]) -> tiercache::Result<Lookup> {
        Ok(Lookup::Negative(self.0.clone()))
    }
    async fn insert(&self, _: bytes::Bytes, _: tiercache::tier::Entry) -> tiercache::Result<()> {
        Ok(())
    }
    async fn remove(&self, _: &[u8]) -> tiercache::Result<bool> {
        Ok(false)
    }
    async fn clear(&self) -> tiercache::Result<()> {
        Ok(())
    }
    async fn len(&self) -> tiercache::Result<u64> {
        Ok(0)
    }
}
