//! The disk tier reports what it evicted and expired on its own, in all
//! and per data class.
#![cfg(feature = "redb")]

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, ClassRemovals, DataClass, Entry, ManualClock, Meta};

fn entry(clock: &ManualClock, class: &str, ttl: Option<Duration>) -> Entry {
    let mut meta = match ttl {
        Some(ttl) => Meta::with_ttl(clock.now_ms(), ttl).unwrap(),
        None => Meta::new(clock.now_ms()),
    };
    meta.class = DataClass::named(class);
    Entry::new(vec![7u8; 500], meta)
}

fn key(class: &str, i: usize) -> Bytes {
    Bytes::from(format!("{class}-{i:03}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_and_expirations_are_counted_per_class() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    // What one entry costs: both classes' names and keys have one length,
    // so every entry costs the same.
    let cost = {
        let probe = RedbBackend::builder(dir.path().join("probe.redb"))
            .clock(clock.clock())
            .build()
            .await
            .unwrap();
        probe
            .insert(key("aa", 0), entry(&clock, "aa", None))
            .await
            .unwrap();
        probe.sync().await.unwrap();
        probe.stats().used_bytes
    };
    let tier = RedbBackend::builder(dir.path().join("removals.redb"))
        .clock(clock.clock())
        .max_bytes(30 * cost)
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let nothing = tier.removals().expect("the disk tier counts its removals");
    assert_eq!((nothing.evicted, nothing.expired), (0, 0));

    // 20 entries that never expire, then 20 that do: 40 do not fit in 30,
    // and the 10 least recently used (the oldest of the first class) go.
    for i in 0..20 {
        tier.insert(key("aa", i), entry(&clock, "aa", None))
            .await
            .unwrap();
    }
    for i in 0..20 {
        let e = entry(&clock, "bb", Some(Duration::from_secs(10)));
        tier.insert(key("bb", i), e).await.unwrap();
    }
    tier.sync().await.unwrap();
    // A removal the caller asked for is not the tier's own.
    assert!(tier.remove(&key("aa", 19)).await.unwrap());
    clock.advance(Duration::from_secs(10));
    let mut swept = 0;
    while swept < 20 {
        let n = tier.sweep().await.unwrap();
        assert!(n > 0, "the sweep stalled at {swept}");
        swept += n;
    }

    let removals = tier.removals().unwrap();
    assert_eq!(removals.evicted, 10);
    assert_eq!(removals.expired, 20);
    assert_eq!(
        removals.by_class.get("aa"),
        Some(&ClassRemovals {
            evicted: 10,
            expired: 0
        })
    );
    assert_eq!(
        removals.by_class.get("bb"),
        Some(&ClassRemovals {
            evicted: 0,
            expired: 20
        })
    );
    // The totals agree with the tier's own statistics.
    let stats = tier.stats();
    assert_eq!((stats.evicted, stats.expired), (10, 20));
}
