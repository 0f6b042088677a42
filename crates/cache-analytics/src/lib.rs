//! Analytics for tiercache's tiers.
//!
//! [`Analytics<B>`] wraps any [`Backend`](cache_core::Backend) and, on the
//! way back from each call, counts it exactly by operation ([`Op`]),
//! [`Outcome`] and data class; times a sample of calls into a sharded
//! [`LatencyHistogram`] per operation (p50, p95, p99 and max, within 0.1%,
//! in bounded memory); feeds a sample of looked-up keys to [`HotKeys`], a
//! space-saving top-K sketch; and follows the last touch of a bounded
//! sample of keys in [`ColdKeys`]. [`AnalyticsLayer`] holds the settings
//! and builds it as a [`Layer`](cache_core::Layer).
//!
//! [`Analytics::stats`] returns a serde-serializable [`TierStats`], and
//! [`emit_metrics`] writes one to the `metrics` facade under the names in
//! `docs/metrics.md` (`tiercache_requests_total{tier,op,result}`,
//! `tiercache_latency_seconds{tier,op,quantile}`, ...). With the
//! `prometheus` feature, `serve_prometheus` installs the Prometheus
//! recorder and serves `/metrics` in one call.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use cache_analytics::{AnalyticsLayer, Op, Outcome};
//! use cache_backends::memory::MemoryBackend;
//! use cache_core::{Backend, DataClass, Entry, Layer, Meta};
//!
//! let tier = AnalyticsLayer::new()
//!     .latency_sample(1)
//!     .key_sample(1)
//!     .layer(MemoryBackend::builder().build());
//! let meta = Meta::new(0).class(DataClass::named("user"));
//! tier.insert(Bytes::from_static(b"u:1"), Entry::new(&b"ada"[..], meta)).await?;
//! for _ in 0..3 {
//!     tier.get(b"u:1").await?;
//! }
//! tier.get(b"u:2").await?;
//!
//! let stats = tier.stats_with_entries().await;
//! assert_eq!(stats.count(Op::Get, Outcome::Hit), 3);
//! assert_eq!(stats.count(Op::Get, Outcome::Miss), 1);
//! assert_eq!(stats.hit_ratio(), Some(0.75));
//! assert_eq!(stats.class("user").unwrap().bytes_out, 9);
//! assert_eq!(stats.op(Op::Get).latency.count, 4);
//! assert_eq!(stats.entries, Some(1));
//! assert_eq!(tier.hot_keys(1)[0], (Bytes::from_static(b"u:1"), 3));
//! # Ok::<(), cache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod analytics;
mod cold;
mod counters;
mod emit;
mod hot;
mod latency;
mod layer;
mod metadata;
mod op;
#[cfg(feature = "prometheus")]
mod prometheus;
mod shard;
mod stats;

pub use analytics::{Analytics, UNKNOWN_CLASS};
pub use cold::{ColdKey, ColdKeys};
pub use counters::OTHER_CLASSES;
pub use emit::{
    BYTES, CLASS_BYTES_TOTAL, CLASS_INSERTS_TOTAL, CLASS_REQUESTS_TOTAL, COMPRESSION_RATIO,
    ENTRIES, LATENCY_SAMPLES_TOTAL, LATENCY_SECONDS, REMOVALS_TOTAL, REQUESTS_TOTAL,
    describe_metrics, emit_metrics, set_compression_ratio,
};
pub use hot::HotKeys;
pub use latency::{LatencyHistogram, LatencySummary, MAX_LATENCY_NANOS, SIGNIFICANT_FIGURES};
pub use layer::AnalyticsLayer;
pub use metadata::{
    ClassCompression, CleanupHandle, CleanupOutcome, CleanupPolicy, CleanupReason, EntryRecord,
    EntryTracker, TrackerSettings, TtlReport, cleanup_once, spawn_cleanup,
};
#[cfg(feature = "prometheus")]
pub use metrics_exporter_prometheus::PrometheusHandle;
pub use op::{Op, Outcome};
#[cfg(feature = "prometheus")]
pub use prometheus::serve_prometheus;
pub use stats::{ClassRemovalStats, ClassStats, OpStats, RemovalStats, ResultCounts, TierStats};
