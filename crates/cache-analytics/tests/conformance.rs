//! `Analytics<MemoryBackend>` honours the byte-level `Backend` contract.

use cache_analytics::AnalyticsLayer;
use cache_backends::memory::MemoryBackend;
use cache_core::{Layer, conformance};

// Every call timed and every key sampled, so the suite runs the layer's
// every path rather than the one in sixteen it would otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysed_memory_tier_passes_the_conformance_suite() {
    conformance::run(|h| async move {
        AnalyticsLayer::new()
            .latency_sample(1)
            .key_sample(1)
            .clock(h.clock.clock())
            .layer(
                MemoryBackend::builder()
                    .clock(h.clock.clock())
                    .limits(h.limits)
                    .max_bytes(256 << 20)
                    .build(),
            )
    })
    .await;
}

// A compare-and-delete reaches the tier underneath (the memory tier
// removes atomically, so the layer must not fall back to the trait's
// default, which removes nothing) and counts as a remove.
#[tokio::test]
async fn compare_and_delete_passes_through_and_counts_as_a_remove() {
    use bytes::Bytes;
    use cache_analytics::{Op, Outcome};
    use cache_core::{Backend, Entry, Meta};

    let tier = AnalyticsLayer::new().layer(MemoryBackend::builder().build());
    tier.insert(
        Bytes::from_static(b"k"),
        Entry::new(&b"v"[..], Meta::new(0)),
    )
    .await
    .unwrap();
    assert!(!tier.remove_if_unchanged(b"k", b"other").await.unwrap());
    assert!(tier.inner().contains(b"k").await.unwrap());
    assert!(tier.remove_if_unchanged(b"k", b"v").await.unwrap());
    assert!(!tier.inner().contains(b"k").await.unwrap());
    let stats = tier.stats();
    assert_eq!(stats.count(Op::Remove, Outcome::Hit), 1);
    assert_eq!(stats.count(Op::Remove, Outcome::Miss), 1);
}
