//! Consistency across tiers, including the bugs other hybrid caches have
//! had: a stale value left below after an update a tier did not take,
//! `contains` saying no for a value a lower tier holds, and a lower tier
//! bringing back what was removed or expired above it. Each runs with
//! write-through and with write-on-evict, and with a failing tier at every
//! position.

use std::time::Duration;

use tiercache::Limits;
use tiercache::tier::Backend;
use tiercache_tests::{Stack, held, key_bytes, stack_with};

async fn both_modes(hot: u64, n: usize) -> [Stack; 2] {
    [
        stack_with(hot, n, None, |b| b).await,
        stack_with(hot, n, None, |b| b.write_on_evict(true)).await,
    ]
}

#[tokio::test]
async fn an_update_a_lower_tier_refuses_leaves_no_stale_value_there() {
    // The second tier accepts values of at most 64 bytes: the update is
    // too large for it, as an upsert a tier does not admit.
    let clock = tiercache::ManualClock::default();
    let small = tiercache::memory::MemoryBackend::builder()
        .limits(Limits {
            max_value_len: 64,
            ..Limits::DEFAULT
        })
        .clock(clock.clock())
        .build();
    let small = std::sync::Arc::new(tiercache::tier::FailingBackend::new(small));
    let cache: tiercache::Cache<String, String> = tiercache::Cache::builder()
        .clock(clock.clock())
        .tier(small.clone())
        .build()
        .await
        .unwrap();
    cache.insert("k".into(), "old".into()).await.unwrap();
    cache.insert("k".into(), "x".repeat(200)).await.unwrap();
    assert!(
        !small.get(&key_bytes("k")).await.unwrap().is_hit(),
        "the tier that refused the update still holds the old value"
    );
    cache.hot().clear();
    assert_ne!(
        cache.get(&"k".into()).await.unwrap().as_deref(),
        Some("old")
    );
}

#[tokio::test]
async fn contains_finds_values_that_only_a_lower_tier_holds() {
    for s in both_modes(10, 2).await {
        for i in 0..100 {
            s.cache.insert(format!("k{i}"), "v".into()).await.unwrap();
        }
        // Some keys are only below memory now (evicted, or written
        // through and dropped from memory here).
        s.cache.hot().remove(&"k99".into());
        for i in 0..99 {
            assert!(
                s.cache.contains_key(&format!("k{i}")).await.unwrap(),
                "k{i} is held somewhere"
            );
        }
        let k99 = s.cache.contains_key(&"k99".into()).await.unwrap();
        assert_eq!(k99, held(&s.tiers[0], "k99").await.is_some());
    }
}

#[tokio::test]
async fn a_lower_tier_never_brings_back_what_was_removed_or_expired_above() {
    for s in both_modes(10, 2).await {
        let c = &s.cache;
        for i in 0..50 {
            let ttl = Duration::from_secs(if i % 2 == 0 { 10 } else { 1_000 });
            c.insert_with_ttl(format!("k{i}"), "v".into(), ttl)
                .await
                .unwrap();
        }
        for i in (1..50).step_by(4) {
            c.remove(&format!("k{i}")).await.unwrap();
        }
        s.clock.advance(Duration::from_secs(10));
        for i in 0..50 {
            let expect = i % 2 == 1 && i % 4 != 1;
            let got = c.get(&format!("k{i}")).await.unwrap();
            assert_eq!(got.is_some(), expect, "k{i}");
            for tier in &s.tiers {
                if !expect {
                    assert!(
                        held(tier, &format!("k{i}"))
                            .await
                            .is_none_or(|(_, e)| e.meta.is_expired(s.clock.now_ms()))
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_failing_tier_at_every_position_is_skipped_in_both_modes() {
    for failing in 0..3 {
        for s in both_modes(10, 3).await {
            let c = &s.cache;
            for i in 0..40 {
                c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
            }
            s.tiers[failing].set_failing(true);
            // Every call succeeds; what the healthy tiers and memory hold is
            // served, and nothing is served stale.
            for i in 40..80 {
                c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
            }
            for i in (0..80).step_by(3) {
                c.remove(&format!("k{i}")).await.unwrap();
            }
            for i in 0..80 {
                let got = c.get(&format!("k{i}")).await.unwrap();
                if i % 3 == 0 {
                    assert_eq!(got, None, "k{i} was removed (tier {failing} failing)");
                } else if let Some(v) = got {
                    assert_eq!(v, format!("v{i}"));
                }
            }
            let errors = c.tier_stats()[failing + 1].errors;
            assert!(errors > 0, "tier {failing}: failures counted");
            // Once it recovers it may still hold values removed while it
            // was down; the cache must never serve them.
            s.tiers[failing].set_failing(false);
            c.hot().clear();
            for i in (0..80).step_by(3) {
                assert_eq!(
                    c.get(&format!("k{i}")).await.unwrap(),
                    None,
                    "k{i} came back"
                );
                assert!(!c.contains_key(&format!("k{i}")).await.unwrap());
            }
            for i in (1..80).filter(|i| i % 3 != 0) {
                if let Some(v) = c.get(&format!("k{i}")).await.unwrap() {
                    assert_eq!(v, format!("v{i}"));
                }
            }
        }
    }
}
