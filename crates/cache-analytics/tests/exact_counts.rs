//! A deterministic workload gives exact counts per operation, outcome and
//! data class, however latency and keys are sampled.

use bytes::Bytes;
use cache_analytics::{Analytics, AnalyticsLayer, Op, Outcome, TierStats};
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, DataClass, Entry, FailingBackend, Layer, Lookup, Meta};

/// The memory tier answers a negative entry with `Lookup::Negative`, as
/// every tier does, so that outcome is exercised.
type Tier = Analytics<FailingBackend<MemoryBackend>>;

fn tier(latency_sample: u32, key_sample: u32) -> Tier {
    AnalyticsLayer::new()
        .latency_sample(latency_sample)
        .key_sample(key_sample)
        .classify_misses(|key| {
            if key.starts_with(b"u:") {
                DataClass::named("user")
            } else {
                DataClass::Default
            }
        })
        .layer(FailingBackend::new(MemoryBackend::builder().build()))
}

fn entry(class: &str, len: usize) -> Entry {
    Entry::new(vec![7; len], Meta::new(0).class(DataClass::named(class)))
}

fn key(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

/// The workload, with the calls each step makes noted beside it.
async fn workload(tier: &Tier) {
    for i in 0..10 {
        tier.insert(key(format!("u:{i}")), entry("user", 8))
            .await
            .unwrap();
    }
    for i in 0..5 {
        tier.insert(key(format!("d:{i}")), entry("default", 4))
            .await
            .unwrap();
    }
    for i in 0..2 {
        let negative = Entry::negative(entry("user", 0).meta);
        tier.insert(key(format!("u:neg{i}")), negative)
            .await
            .unwrap();
    }
    // 20 user hits of 8 bytes, 5 default hits of 4, 2 negatives, and 7
    // misses: 3 of users, 4 of the default class.
    for _ in 0..2 {
        for i in 0..10 {
            assert!(
                tier.get(format!("u:{i}").as_bytes())
                    .await
                    .unwrap()
                    .is_hit()
            );
        }
    }
    for i in 0..5 {
        tier.get(format!("d:{i}").as_bytes()).await.unwrap();
    }
    for i in 0..2 {
        let lookup = tier.get(format!("u:neg{i}").as_bytes()).await.unwrap();
        assert!(lookup.is_negative(), "{lookup:?}");
    }
    for i in 0..3 {
        tier.get(format!("u:gone{i}").as_bytes()).await.unwrap();
    }
    for i in 0..4 {
        tier.get(format!("d:gone{i}").as_bytes()).await.unwrap();
    }
    // One batch: a user hit, a default miss and a user negative.
    let batch = [key("u:0"), key("x"), key("u:neg0")];
    let got = tier.get_many(&batch).await.unwrap();
    assert!(
        matches!(
            got.as_slice(),
            [Lookup::Hit(_), Lookup::Miss, Lookup::Negative(_)]
        ),
        "{got:?}"
    );
    // Three blobs of 100 bytes in one batch.
    let blobs = (0..3).map(|i| (key(format!("b:{i}")), entry("blob", 100)));
    tier.insert_many(blobs.collect()).await.unwrap();
    assert!(tier.remove(b"u:9").await.unwrap());
    assert!(!tier.remove(b"u:9").await.unwrap());
    assert!(tier.contains(b"u:1").await.unwrap());
    assert!(!tier.contains(b"u:9").await.unwrap());
    // A negative entry holds no value, yet it is an entry: `contains` is a
    // miss and `remove` a hit.
    assert!(!tier.contains(b"u:neg1").await.unwrap());
    assert!(tier.remove(b"u:neg1").await.unwrap());
    assert_eq!(tier.len().await.unwrap(), 10 + 5 + 2 + 3 - 2);
    // Two failing calls: a get, and a batch of three keys.
    tier.inner().fail_next(2);
    tier.get(b"u:1").await.unwrap_err();
    tier.get_many(&batch).await.unwrap_err();
    tier.clear().await.unwrap();
}

fn assert_counts(s: &TierStats) {
    let expected: &[(Op, Outcome, u64)] = &[
        (Op::Insert, Outcome::Ok, 17),
        (Op::Get, Outcome::Hit, 25),
        (Op::Get, Outcome::Negative, 2),
        (Op::Get, Outcome::Miss, 7),
        (Op::Get, Outcome::Error, 1),
        (Op::GetMany, Outcome::Hit, 1),
        (Op::GetMany, Outcome::Miss, 1),
        (Op::GetMany, Outcome::Negative, 1),
        (Op::GetMany, Outcome::Error, 3),
        (Op::InsertMany, Outcome::Ok, 3),
        (Op::Remove, Outcome::Hit, 2),
        (Op::Remove, Outcome::Miss, 1),
        (Op::Contains, Outcome::Hit, 1),
        (Op::Contains, Outcome::Miss, 2),
        (Op::Len, Outcome::Ok, 1),
        (Op::Clear, Outcome::Ok, 1),
    ];
    for op in Op::ALL {
        for outcome in Outcome::ALL {
            let want = expected
                .iter()
                .find(|(o, r, _)| (*o, *r) == (op, outcome))
                .map_or(0, |e| e.2);
            assert_eq!(s.count(op, outcome), want, "{op:?} {outcome:?}");
        }
    }
    assert_eq!(s.hit_ratio(), Some(29.0 / 37.0));

    let user = s.class("user").unwrap();
    assert_eq!(
        (user.hits, user.misses, user.negatives, user.inserts),
        (21, 3, 3, 12)
    );
    assert_eq!((user.bytes_in, user.bytes_out), (80, 168));
    let default = s.class("default").unwrap();
    assert_eq!(
        (
            default.hits,
            default.misses,
            default.inserts,
            default.bytes_in,
            default.bytes_out
        ),
        (5, 5, 5, 20, 20)
    );
    let blob = s.class("blob").unwrap();
    assert_eq!((blob.hits, blob.inserts, blob.bytes_in), (0, 3, 300));
    assert_eq!(s.classes.len(), 3, "{:?}", s.classes);
}

#[tokio::test]
async fn every_call_is_counted_once_with_its_outcome_and_class() {
    let tier = tier(1, 1);
    workload(&tier).await;
    let s = tier.stats();
    assert_counts(&s);
    // Every call was timed: a batch is one timing.
    let timed = |op| s.op(op).latency.count;
    assert_eq!(timed(Op::Get), 25 + 2 + 7 + 1);
    assert_eq!(timed(Op::GetMany), 2);
    assert_eq!(timed(Op::InsertMany), 1);
    assert_eq!(timed(Op::Insert), 17);
}

#[tokio::test]
async fn counts_stay_exact_when_calls_are_sampled() {
    let tier = tier(1_000_000, 1_000_000);
    workload(&tier).await;
    let s = tier.stats();
    assert_counts(&s);
    let timed: u64 = s.ops.iter().map(|o| o.latency.count).sum();
    assert!(timed < 10, "{timed} of ~70 calls timed at one in a million");
}

#[tokio::test]
async fn entries_and_bytes_are_reported_on_request() {
    let tier = tier(16, 16);
    for i in 0..4 {
        tier.insert(key(format!("k{i}")), entry("a", 10 + 10 * i))
            .await
            .unwrap();
    }
    assert_eq!(tier.stats().entries, None);
    let s = tier.stats_with_entries().await;
    // Four entries at the mean inserted size of 25 bytes.
    assert_eq!((s.entries, s.bytes), (Some(4), Some(100)));
    assert_eq!(s.count(Op::Len, Outcome::Ok), 0, "asking is not a call");
    tier.clear().await.unwrap();
    let s = tier.stats_with_entries().await;
    assert_eq!((s.entries, s.bytes), (Some(0), Some(0)));
}
