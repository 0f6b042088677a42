//! Expired entries are never returned, even before the sweeper reaches
//! them, and the sweeper deletes them in bounded batches.
#![cfg(feature = "redb")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, Lookup, ManualClock, Meta};

fn entry(clock: &ManualClock, ttl: Option<Duration>) -> Entry {
    let meta = match ttl {
        Some(ttl) => Meta::with_ttl(clock.now_ms(), ttl).unwrap(),
        None => Meta::new(clock.now_ms()),
    };
    Entry::new(&b"value"[..], meta)
}

/// 25 entries that expire after a second and 5 that never do.
async fn fill(tier: &RedbBackend, clock: &ManualClock) {
    for i in 0..25 {
        let key = Bytes::from(format!("short-{i:02}"));
        tier.insert(key, entry(clock, Some(Duration::from_secs(1))))
            .await
            .unwrap();
    }
    for i in 0..5 {
        let key = Bytes::from(format!("forever-{i}"));
        tier.insert(key, entry(clock, None)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_misses_before_the_sweeper_and_swept_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("expiry.redb"))
        .clock(clock.clock())
        // The background sweeper must not run during the test, so every
        // sweep below is one the test asked for.
        .sweep_interval(Duration::from_secs(3600))
        .sweep_batch(10)
        .build()
        .await
        .unwrap();
    fill(&tier, &clock).await;
    assert!(tier.get(b"short-00").await.unwrap().is_hit());
    assert_eq!(tier.sweep().await.unwrap(), 0, "nothing has expired yet");

    clock.advance(Duration::from_secs(1));
    for i in 0..25 {
        let key = format!("short-{i:02}");
        assert_eq!(
            tier.get(key.as_bytes()).await.unwrap(),
            Lookup::Miss,
            "{key}"
        );
        assert!(!tier.contains(key.as_bytes()).await.unwrap(), "{key}");
    }
    assert_eq!(
        tier.len().await.unwrap(),
        30,
        "the expired entries are still in the file, unswept"
    );

    assert_eq!(tier.sweep().await.unwrap(), 10, "one batch");
    assert_eq!(tier.len().await.unwrap(), 20);
    assert_eq!(tier.sweep().await.unwrap(), 10, "one batch");
    assert_eq!(tier.sweep().await.unwrap(), 5, "the rest");
    assert_eq!(tier.sweep().await.unwrap(), 0, "nothing left");
    assert_eq!(tier.len().await.unwrap(), 5);
    assert_eq!(tier.stats().expired, 25);
    for i in 0..5 {
        let key = format!("forever-{i}");
        assert!(tier.get(key.as_bytes()).await.unwrap().is_hit(), "{key}");
    }
    // The sweep freed the expired entries' bytes.
    let used = tier.stats().used_bytes;
    tier.clear().await.unwrap();
    fill(&tier, &clock).await;
    clock.advance(Duration::from_secs(1));
    while tier.sweep().await.unwrap() > 0 {}
    assert_eq!(tier.stats().used_bytes, used);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_sweeper_removes_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("sweeper.redb"))
        .clock(clock.clock())
        .sweep_interval(Duration::from_millis(10))
        .sweep_batch(4)
        .build()
        .await
        .unwrap();
    fill(&tier, &clock).await;
    clock.advance(Duration::from_secs(2));
    // The writer counts a sweep's deletions once its commit is done, just
    // after readers can see it, so both are awaited.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tier.len().await.unwrap() > 5 || tier.stats().expired < 25 {
        assert!(
            Instant::now() < deadline,
            "the sweeper left {} entries and counted {} expired",
            tier.len().await.unwrap(),
            tier.stats().expired
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tier.len().await.unwrap(), 5);
    assert_eq!(tier.stats().expired, 25);
    assert!(tier.get(b"forever-0").await.unwrap().is_hit());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_inserted_already_expired_is_not_stored_and_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("past.redb"))
        .clock(clock.clock())
        .build()
        .await
        .unwrap();
    tier.insert(Bytes::from_static(b"k"), entry(&clock, None))
        .await
        .unwrap();
    let past = Meta::new(clock.now_ms()).expires_at(Some(clock.now_ms() - 1));
    tier.insert(Bytes::from_static(b"k"), Entry::new(&b"old news"[..], past))
        .await
        .unwrap();
    assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Miss);
    assert_eq!(tier.len().await.unwrap(), 0);
    assert_eq!(tier.stats().used_bytes, 0);
}
