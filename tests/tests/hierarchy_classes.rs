//! Data classes: each class's time-to-live and placement hold in every
//! tier, and a per-entry option overrides its class.

use std::time::Duration;

use tiercache::tier::{Backend, DataClass, Flags};
use tiercache::{ErrorKind, InsertOptions, Placement};
use tiercache_tests::{held, key_bytes, stack_with};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn each_class_has_its_ttl_and_placement_in_every_tier() {
    let s = stack_with(100, 2, Some(MINUTE), |b| {
        b.class("session", Duration::from_secs(300))
            .class_placement("session", Placement::MemoryOnly)
            .class("llm-response", Duration::from_secs(24 * 3600))
            .class_placement("blob", Placement::BelowMemory)
    })
    .await;
    let c = &s.cache;
    c.insert_with_class("s".into(), "alice".into(), "session")
        .await
        .unwrap();
    c.insert_with_class("r".into(), "answer".into(), "llm-response")
        .await
        .unwrap();
    c.insert_with_class("b".into(), "bytes".into(), "blob")
        .await
        .unwrap();
    c.insert("d".into(), "plain".into()).await.unwrap();

    // Memory only: in the hot tier, never below it.
    assert!(c.hot().contains_key(&"s".into()));
    for tier in &s.tiers {
        assert!(held(tier, "s").await.is_none(), "a session left memory");
    }
    // Everywhere, with the class's TTL and name carried below.
    assert!(c.hot().contains_key(&"r".into()));
    for tier in &s.tiers {
        let (value, entry) = held(tier, "r").await.expect("written through");
        assert_eq!(value, "answer");
        assert_eq!(entry.meta.class, DataClass::named("llm-response"));
        assert_eq!(
            entry.meta.remaining_ttl(s.clock.now_ms()),
            Some(Duration::from_secs(24 * 3600))
        );
    }
    // Disk only: below memory, with the cache's TTL (the class sets none),
    // and marked so that no tier promotes it into memory.
    assert!(!c.hot().contains_key(&"b".into()));
    for tier in &s.tiers {
        let (_, entry) = held(tier, "b").await.expect("written below memory");
        assert!(entry.meta.flags.contains(Flags::BELOW_MEMORY));
        assert_eq!(entry.meta.remaining_ttl(s.clock.now_ms()), Some(MINUTE));
    }
    assert_eq!(c.get(&"b".into()).await.unwrap(), Some("bytes".into()));
    assert!(
        !c.hot().contains_key(&"b".into()),
        "a disk-only hit stays below"
    );
    // The default class takes the cache's TTL.
    let (_, entry) = held(&s.tiers[0], "d").await.unwrap();
    assert_eq!(entry.meta.class, DataClass::Default);
    assert_eq!(entry.meta.remaining_ttl(s.clock.now_ms()), Some(MINUTE));

    // Each expires on its own schedule.
    s.clock.advance(MINUTE);
    assert_eq!(c.get(&"d".into()).await.unwrap(), None);
    assert_eq!(c.get(&"b".into()).await.unwrap(), None);
    assert_eq!(c.get(&"s".into()).await.unwrap(), Some("alice".into()));
    s.clock.advance(Duration::from_secs(240));
    assert_eq!(c.get(&"s".into()).await.unwrap(), None);
    assert_eq!(c.get(&"r".into()).await.unwrap(), Some("answer".into()));
}

#[tokio::test]
async fn an_entry_option_overrides_its_class() {
    let s = stack_with(100, 1, None, |b| {
        b.class("session", Duration::from_secs(300))
    })
    .await;
    let options = InsertOptions::new()
        .class("session")
        .time_to_live(Duration::from_secs(5))
        .placement(Placement::BelowMemory);
    s.cache
        .insert_with("k".into(), "v".into(), options)
        .await
        .unwrap();
    assert!(!s.cache.hot().contains_key(&"k".into()));
    let (_, entry) = held(&s.tiers[0], "k").await.unwrap();
    assert_eq!(entry.meta.class, DataClass::named("session"));
    assert_eq!(
        entry.meta.remaining_ttl(s.clock.now_ms()),
        Some(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn changing_an_entrys_placement_leaves_no_copy_where_it_may_not_live() {
    let s = stack_with(100, 2, None, |b| {
        b.class_placement("mem", Placement::MemoryOnly)
            .class_placement("disk", Placement::BelowMemory)
    })
    .await;
    s.cache
        .insert("k".into(), "everywhere".into())
        .await
        .unwrap();
    s.cache
        .insert_with_class("k".into(), "memory".into(), "mem")
        .await
        .unwrap();
    for tier in &s.tiers {
        assert!(
            held(tier, "k").await.is_none(),
            "the old value stayed below"
        );
    }
    s.cache
        .insert_with_class("k".into(), "disk".into(), "disk")
        .await
        .unwrap();
    assert!(
        !s.cache.hot().contains_key(&"k".into()),
        "the old value stayed in memory"
    );
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("disk".into()));
}

#[tokio::test]
async fn a_class_this_cache_does_not_know_takes_the_default_policy() {
    let s = stack_with(100, 1, Some(MINUTE), |b| b).await;
    s.cache
        .insert_with_class("k".into(), "v".into(), "unknown")
        .await
        .unwrap();
    let (_, entry) = held(&s.tiers[0], "k").await.unwrap();
    assert_eq!(entry.meta.class, DataClass::named("unknown"));
    assert_eq!(entry.meta.remaining_ttl(s.clock.now_ms()), Some(MINUTE));
    // Read back from below, it is promoted like any default entry.
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&"k".into()).await.unwrap(), Some("v".into()));
    assert!(s.cache.hot().contains_key(&"k".into()));
}

#[tokio::test]
async fn invalid_class_ttls_are_rejected() {
    let built = tiercache::Cache::<String, String>::builder()
        .class("bad", Duration::ZERO)
        .build()
        .await;
    assert_eq!(built.unwrap_err().kind(), ErrorKind::InvalidTtl);
    let s = stack_with(100, 1, None, |b| b).await;
    let err = s
        .cache
        .insert_with(
            "k".into(),
            "v".into(),
            InsertOptions::new().time_to_live(Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert!(!s.cache.hot().contains_key(&"k".into()));
    assert!(!s.tiers[0].get(&key_bytes("k")).await.unwrap().is_hit());
}

#[tokio::test]
async fn class_settings_do_not_depend_on_the_order_of_the_calls() {
    // The default class made memory-only before or after a named class is
    // configured: the named class lives in every tier either way.
    let first = stack_with(100, 1, None, |b| {
        b.class_placement("default", Placement::MemoryOnly)
            .class("a", MINUTE)
    })
    .await;
    let second = stack_with(100, 1, None, |b| {
        b.class("a", MINUTE)
            .class_placement("default", Placement::MemoryOnly)
    })
    .await;
    for s in [&first, &second] {
        s.cache
            .insert_with_class("k".into(), "v".into(), "a")
            .await
            .unwrap();
        let (_, entry) = held(&s.tiers[0], "k").await.expect("class a is below");
        assert_eq!(entry.meta.remaining_ttl(s.clock.now_ms()), Some(MINUTE));
        s.cache.insert("d".into(), "v".into()).await.unwrap();
        assert!(
            held(&s.tiers[0], "d").await.is_none(),
            "default is memory-only"
        );
    }
}
