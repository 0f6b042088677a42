//! `MemoryBackend` honours the byte-level `Backend` contract.
#![cfg(feature = "memory")]

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, Entry, Limits, ManualClock, Meta, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_the_conformance_suite() {
    conformance::run(|h| async move {
        MemoryBackend::builder()
            .clock(h.clock.clock())
            .limits(h.limits)
            .max_bytes(256 << 20)
            .build()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_backend_passes_the_conformance_suite_with_one_partition() {
    conformance::run(|h| async move {
        MemoryBackend::builder()
            .clock(h.clock.clock())
            .limits(h.limits)
            .max_bytes(256 << 20)
            .partitions(1)
            .build()
    })
    .await;
}

// The default partition count follows the core count, so a byte budget
// split evenly could leave each partition smaller than the largest entry
// the limits admit, and such an entry would silently never be stored. The
// backend must size its default partitions so that every admissible entry
// fits, whatever the core count. (The second case fails on any machine
// with the core-count default; the first only on one with many cores.)
#[tokio::test]
async fn every_partition_can_hold_the_largest_admissible_entry() {
    for (max_bytes, max_value_len) in [(256 << 20, 8 << 20), (1 << 20, 512 << 10)] {
        let limits = Limits {
            max_key_len: 512,
            max_value_len,
        };
        let clock = ManualClock::default();
        let tier = MemoryBackend::builder()
            .clock(clock.clock())
            .limits(limits)
            .max_bytes(max_bytes)
            .build();
        let engine = tier.engine();
        let per_partition = engine.max_capacity() / engine.partition_count() as u64;
        assert!(
            per_partition >= (limits.max_key_len + limits.max_value_len) as u64,
            "{} partitions of {per_partition} bytes cannot hold an entry the limits admit",
            engine.partition_count()
        );
        // Each maximal entry goes into an empty tier, so only its size (not
        // the admission policy weighing it against other entries) decides
        // whether it is kept.
        for i in 0..engine.partition_count() * 2 {
            tier.clear().await.unwrap();
            let key = Bytes::from(format!("{i:0>512}"));
            let value = Bytes::from(vec![i as u8; limits.max_value_len]);
            tier.insert(key.clone(), Entry::new(value, Meta::new(clock.now_ms())))
                .await
                .unwrap();
            assert!(
                tier.get(&key).await.unwrap().is_hit(),
                "a maximal entry was dropped"
            );
        }
        engine.validate();
    }
}

#[tokio::test]
async fn byte_weight_counts_key_value_and_overhead() {
    let clock = ManualClock::default();
    let tier = MemoryBackend::builder()
        .clock(clock.clock())
        .max_bytes(1 << 20)
        .partitions(1)
        .build();
    tier.insert(
        Bytes::from_static(b"key"),
        Entry::new(vec![0u8; 1000], Meta::new(clock.now_ms())),
    )
    .await
    .unwrap();
    let weight = tier.engine().weighted_size();
    assert!(
        weight > 1003,
        "weight {weight} must exceed key + value bytes"
    );
    assert!(weight < 1003 + 1024, "weight {weight} is implausibly large");
    assert_eq!(tier.len().await.unwrap(), 1);
}

#[tokio::test]
async fn byte_budget_bounds_the_tier() {
    let clock = ManualClock::default();
    let tier = MemoryBackend::builder()
        .clock(clock.clock())
        .max_bytes(64 * 1024)
        .build();
    for i in 0..1_000u32 {
        tier.insert(
            Bytes::from(i.to_be_bytes().to_vec()),
            Entry::new(vec![1u8; 500], Meta::new(clock.now_ms())),
        )
        .await
        .unwrap();
        assert!(tier.engine().weighted_size() <= 64 * 1024);
    }
    let len = tier.len().await.unwrap();
    assert!(len > 0 && len < 1_000, "held {len} entries");
    tier.engine().validate();
}

// The suite accepts a tier that never compares and deletes; the memory
// tier does, so it must remove a value that is unchanged.
#[tokio::test]
async fn compare_and_delete_removes_an_unchanged_value_and_keeps_a_changed_one() {
    let tier = MemoryBackend::builder().build();
    let meta = Meta::new(0);
    tier.insert(
        Bytes::from_static(b"k"),
        Entry::new(&b"v1"[..], meta.clone()),
    )
    .await
    .unwrap();
    let seen = tier.get(b"k").await.unwrap().into_hit().unwrap().value;
    tier.insert(Bytes::from_static(b"k"), Entry::new(&b"v2"[..], meta))
        .await
        .unwrap();
    assert!(!tier.remove_if_unchanged(b"k", &seen).await.unwrap());
    let now = tier.get(b"k").await.unwrap().into_hit().unwrap().value;
    assert_eq!(now, Bytes::from_static(b"v2"));
    assert!(tier.remove_if_unchanged(b"k", &now).await.unwrap());
    assert!(!tier.contains(b"k").await.unwrap());
    let long = vec![b'k'; Limits::DEFAULT.max_key_len + 1];
    assert!(tier.remove_if_unchanged(&long, b"").await.is_err());
}
