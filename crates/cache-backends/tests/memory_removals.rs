//! The memory tier, used as a byte tier, reports what it evicted and
//! expired on its own, in all and per data class.
#![cfg(feature = "memory")]

use std::time::Duration;

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, ClassRemovals, DataClass, Entry, ManualClock, Meta};

async fn insert(
    tier: &MemoryBackend,
    clock: &ManualClock,
    i: usize,
    class: &str,
    ttl: Option<Duration>,
) {
    let mut meta = match ttl {
        Some(ttl) => Meta::with_ttl(clock.now_ms(), ttl).unwrap(),
        None => Meta::new(clock.now_ms()),
    };
    meta.class = DataClass::named(class);
    let entry = Entry::new(vec![1u8; 1000], meta);
    tier.insert(Bytes::from(format!("{class}-{i}")), entry)
        .await
        .unwrap();
}

#[tokio::test]
async fn evictions_and_expirations_are_counted_per_class() {
    let clock = ManualClock::new(1_000_000);
    let tier = MemoryBackend::builder()
        .max_bytes(64 * 1024)
        .partitions(1)
        .clock(clock.clock())
        .build();
    // Ten entries that expire, read back after their time to live.
    for i in 0..10 {
        insert(&tier, &clock, i, "short", Some(Duration::from_secs(1))).await;
    }
    clock.advance(Duration::from_secs(2));
    for i in 0..10 {
        let key = format!("short-{i}");
        assert!(!tier.get(key.as_bytes()).await.unwrap().is_hit());
    }
    // Then far more than fits: the rest are evicted for room.
    for i in 0..200 {
        insert(&tier, &clock, i, "bulk", None).await;
    }

    let removals = tier
        .removals()
        .expect("the memory tier counts its removals");
    let held = tier.len().await.unwrap();
    assert_eq!(removals.expired, 10);
    assert!(removals.evicted > 0, "200 KB cannot fit in 64 KiB");
    assert_eq!(
        removals.by_class.get("short"),
        Some(&ClassRemovals {
            evicted: 0,
            expired: 10
        })
    );
    let bulk = removals.by_class["bulk"];
    assert_eq!(bulk.expired, 0);
    assert_eq!(bulk.evicted, removals.evicted);
    // Every bulk entry is either held or was evicted.
    assert_eq!(bulk.evicted + held, 200);
}
