//! `Compressed<MemoryBackend>` honours the byte-level `Backend` contract
//! with every algorithm.

mod support;

use cache_backends::memory::MemoryBackend;
use cache_compress::CompressionLayer;
use cache_core::{Layer, conformance};

/// Runs the suite over a memory tier wrapped by `layer`, its limits agreeing
/// with the tier's as the layer's documentation asks.
async fn conforms(layer: CompressionLayer) {
    conformance::run(|h| {
        let layer = layer.clone().max_decompressed_len(h.limits.max_value_len);
        async move {
            layer.layer(
                MemoryBackend::builder()
                    .clock(h.clock.clock())
                    .limits(h.limits)
                    .max_bytes(256 << 20)
                    .build(),
            )
        }
    })
    .await;
}

// The suite's values are small or random, so nearly all of them are stored
// as they came: the suite checks that the layer is transparent, and
// `round_trip.rs` and the layer's own tests cover values stored compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_memory_tier_passes_the_conformance_suite() {
    for c in support::algorithms() {
        conforms(CompressionLayer::new(c)).await;
    }
}
