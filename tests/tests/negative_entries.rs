//! Negative entries through the whole stack: stored with
//! `Cache::insert_negative`, answered by every tier as `Lookup::Negative`,
//! promoted and demoted as negatives, replaced by a value, expired by their
//! own time to live.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::Lookup;
use tiercache::tier::Backend;
use tiercache_tests::{key_bytes, stack, stack_with};

const TTL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_negative_entry_answers_none_from_every_tier_until_it_expires() {
    let s = stack(100, 2, Some(Duration::from_secs(3_600))).await;
    s.cache.insert("k".into(), "old".into()).await.unwrap();
    s.cache.insert_negative("k".into(), TTL).await.unwrap();
    // Every tier holds the negative entry, with its own expiry, not the
    // cache's time to live.
    for tier in &s.tiers {
        match tier.inner().get(&key_bytes("k")).await.unwrap() {
            Lookup::Negative(meta) => {
                assert_eq!(meta.expires_at_ms, Some(s.clock.now_ms() + 60_000));
            }
            other => panic!("expected a negative entry, got {other:?}"),
        }
    }
    assert!(matches!(
        s.cache.lookup(&"k".into()).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    assert!(!s.cache.contains_key(&"k".into()).await.unwrap());
    // From the tiers below too, with the hot tier emptied: the answer is
    // still negative, and it is promoted back into memory as one.
    s.cache.hot().clear();
    assert!(matches!(
        s.cache.lookup(&"k".into()).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert!(!s.cache.contains_key(&"k".into()).await.unwrap());
    assert_eq!(s.cache.hierarchy_stats().promotions, 1);
    s.tiers[0].set_failing(true);
    s.tiers[1].set_failing(true);
    assert!(
        matches!(
            s.cache.lookup(&"k".into()).await.unwrap(),
            Lookup::Negative(_)
        ),
        "the promoted negative answers from memory"
    );
    s.tiers[0].set_failing(false);
    s.tiers[1].set_failing(false);
    // Once it expires the key is simply missing everywhere.
    s.clock.advance(TTL);
    assert_eq!(s.cache.lookup(&"k".into()).await.unwrap(), Lookup::Miss);
}

#[tokio::test]
async fn a_value_replaces_a_negative_entry_and_a_negative_replaces_a_value() {
    let s = stack(100, 1, None).await;
    s.cache.insert_negative("k".into(), TTL).await.unwrap();
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
    assert!(
        s.tiers[0]
            .inner()
            .get(&key_bytes("k"))
            .await
            .unwrap()
            .is_hit()
    );
    s.cache.insert_negative("k".into(), TTL).await.unwrap();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), None);
    assert!(
        s.tiers[0]
            .inner()
            .get(&key_bytes("k"))
            .await
            .unwrap()
            .is_negative()
    );
    // A removal removes a negative entry like any other.
    s.cache.remove(&"k".into()).await.unwrap();
    assert_eq!(s.cache.lookup(&"k".into()).await.unwrap(), Lookup::Miss);
    assert_eq!(
        s.tiers[0].inner().get(&key_bytes("k")).await.unwrap(),
        Lookup::Miss
    );
}

#[tokio::test]
async fn get_or_load_does_not_call_the_loader_for_a_negative_entry_but_get_with_does() {
    for tiers in [0, 2] {
        let s = stack(100, tiers, None).await;
        s.cache.insert_negative("k".into(), TTL).await.unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let loader = {
            let calls = calls.clone();
            move |k: String| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(Some(format!("loaded {k}")))
                }
            }
        };
        assert_eq!(
            s.cache.get_or_load(&"k".into(), &loader).await.unwrap(),
            None
        );
        if tiers > 0 {
            // The negative entry answers from below as well.
            s.cache.hot().clear();
            assert_eq!(
                s.cache.get_or_load(&"k".into(), &loader).await.unwrap(),
                None
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0, "{tiers} tiers");
        // get_with's loader always yields a value, which replaces the entry.
        let v = s
            .cache
            .get_with("k".into(), async { "fresh".to_string() })
            .await
            .unwrap();
        assert_eq!(v, "fresh");
        assert_eq!(
            s.cache.get(&"k".into()).await.unwrap(),
            Some("fresh".into())
        );
    }
}

#[tokio::test]
async fn a_memory_only_cache_holds_negative_entries_with_their_own_ttl() {
    let s = stack(100, 0, Some(Duration::from_secs(3_600))).await;
    s.cache.insert_negative("k".into(), TTL).await.unwrap();
    assert!(matches!(
        s.cache.lookup(&"k".into()).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert!(!s.cache.hot().contains_key(&"k".into()));
    assert_eq!(s.cache.hot().get(&"k".into()), None);
    s.clock.advance(TTL);
    assert_eq!(s.cache.lookup(&"k".into()).await.unwrap(), Lookup::Miss);
}

#[tokio::test]
async fn evicted_negative_entries_are_demoted_as_negative_entries() {
    let s = stack_with(100, 1, None, |b| b.write_on_evict(true)).await;
    for i in 0..50 {
        s.cache.insert_negative(format!("n{i}"), TTL).await.unwrap();
        s.cache.insert(format!("v{i}"), "v".into()).await.unwrap();
    }
    // Shrinking the hot tier evicts all but one entry; write-on-evict
    // demotes each into the warm tier as what it was.
    s.cache.set_capacity(1).await.unwrap();
    assert!(s.cache.entry_count() <= 1);
    for i in 0..50 {
        let negative = format!("n{i}");
        if !s.cache.hot().contains_key(&negative) {
            let below = s.tiers[0].inner().get(&key_bytes(&negative)).await.unwrap();
            assert!(below.is_negative(), "{negative} demoted as {below:?}");
        }
        assert!(matches!(
            s.cache.lookup(&negative).await.unwrap(),
            Lookup::Negative(_)
        ));
        let value = format!("v{i}");
        assert_eq!(
            s.cache.get(&value).await.unwrap(),
            Some("v".into()),
            "{value}"
        );
    }
    assert!(s.cache.hierarchy_stats().demotions >= 99);
}

#[tokio::test]
async fn an_invalid_negative_ttl_changes_nothing() {
    let s = stack(100, 1, None).await;
    s.cache.insert("k".into(), "v".into()).await.unwrap();
    let err = s
        .cache
        .insert_negative("k".into(), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), tiercache::ErrorKind::InvalidTtl);
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
}
