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
