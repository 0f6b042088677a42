//! Write-on-evict: inserts go to memory only, and the hot tier writes what
//! it evicts into the warm tier with its remaining time to live.

use std::time::Duration;

use tiercache::tier::DataClass;
use tiercache_tests::{held, stack_with};

#[tokio::test]
async fn evicted_entries_move_to_the_warm_tier_and_nothing_is_lost() {
    let s = stack_with(50, 2, Some(Duration::from_secs(60)), |b| {
        b.class("answers", Duration::from_secs(600))
            .write_on_evict(true)
    })
    .await;
    let c = &s.cache;
    for i in 0..500 {
        c.insert_with_class(format!("a{i}"), format!("{i}"), "answers")
            .await
            .unwrap();
        if i == 0 {
            assert!(
                held(&s.tiers[0], "a0").await.is_none(),
                "not written through"
            );
        }
    }
    s.clock.advance(Duration::from_secs(100));
    for i in 0..500 {
        c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    let stats = c.hierarchy_stats();
    assert!(stats.demotions >= 950, "{stats:?}");
    assert_eq!(stats.demotions_dropped, 0);
    assert!(
        held(&s.tiers[1], "k0").await.is_none(),
        "only the warm tier gets them"
    );
    // Every entry is still served, from memory or from the warm tier.
    for i in 0..500 {
        assert_eq!(
            c.get(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}")),
            "k{i}"
        );
    }
    // A demoted entry keeps its class and its remaining time to live.
    let mut checked = 0;
    for i in 0..500 {
        if let Some((value, entry)) = held(&s.tiers[0], &format!("a{i}")).await {
            assert_eq!(value, format!("{i}"));
            assert_eq!(entry.meta.class, DataClass::named("answers"));
            assert_eq!(
                entry.meta.remaining_ttl(s.clock.now_ms()),
                Some(Duration::from_secs(500))
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 450,
        "{checked} class entries found in the warm tier"
    );
}

#[tokio::test]
async fn a_reloaded_entry_is_not_written_back_when_evicted_again() {
    let s = stack_with(20, 1, None, |b| b.write_on_evict(true)).await;
    let c = &s.cache;
    for i in 0..200 {
        c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    assert!(c.hierarchy_stats().demotions >= 180);
    // Read every key back, three times over: each read of a demoted key
    // promotes it from the warm tier and evicts another. The warm tier
    // already holds every promoted entry, so none is written again; only
    // the entries that were never demoted (still in memory after the
    // inserts) may be written, once each when first evicted.
    for _ in 0..3 {
        for i in 0..200 {
            assert_eq!(
                c.get(&format!("k{i}")).await.unwrap(),
                Some(format!("v{i}"))
            );
        }
    }
    let stats = c.hierarchy_stats();
    assert!(stats.promotions >= 180, "{stats:?}");
    assert!(
        stats.demotions <= 200,
        "reloaded entries were written to disk again: {stats:?}"
    );
}

#[tokio::test]
async fn an_update_leaves_no_stale_value_below_memory() {
    let s = stack_with(20, 1, None, |b| b.write_on_evict(true)).await;
    let c = &s.cache;
    for i in 0..100 {
        c.insert(format!("k{i}"), "old".into()).await.unwrap();
    }
    let mut demoted = None;
    for i in 0..100 {
        if held(&s.tiers[0], &format!("k{i}")).await.is_some() {
            demoted = Some(format!("k{i}"));
            break;
        }
    }
    let key = demoted.expect("the hot tier evicted some of the 100 keys");
    // The update lives in memory only until evicted; the warm tier must
    // not keep the old value meanwhile.
    c.insert(key.clone(), "new".into()).await.unwrap();
    assert!(held(&s.tiers[0], &key).await.is_none());
    c.hot().clear();
    assert_ne!(c.get(&key).await.unwrap().as_deref(), Some("old"));
}

#[tokio::test]
async fn a_removed_entry_does_not_come_back_from_the_warm_tier() {
    let s = stack_with(10, 1, None, |b| b.write_on_evict(true)).await;
    let c = &s.cache;
    for i in 0..100 {
        c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    for i in 0..100 {
        c.remove(&format!("k{i}")).await.unwrap();
    }
    for i in 100..200 {
        c.insert(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            c.get(&format!("k{i}")).await.unwrap(),
            None,
            "k{i} came back"
        );
        assert!(!c.contains_key(&format!("k{i}")).await.unwrap());
    }
}
