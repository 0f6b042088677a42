//! # tiercache
//!
//! A hierarchical cache for Rust services: a typed in-memory hot tier over
//! any number of byte tiers, with write-through, promotion that keeps each
//! entry's remaining time to live, and single-flight loading.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tiercache::Cache;
//! use tiercache::memory::MemoryBackend;
//!
//! // A hot tier of 1,000 entries over a 64 MiB byte tier.
//! let cache: Cache<String, Vec<u32>> = Cache::builder()
//!     .max_capacity(1_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .tier(Arc::new(MemoryBackend::builder().max_bytes(64 << 20).build()))
//!     .build()
//!     .await?;
//! let v = cache.get_with("primes".into(), async { vec![2, 3, 5, 7] }).await?;
//! assert_eq!(v.len(), 4);
//! # Ok::<(), tiercache::Error>(())
//! # }).unwrap();
//! ```
//!
//! ## Features
//!
//! - `memory` (default): the typed [`Cache`] and [`memory`], the in-memory
//!   engine ([`memory::MemoryCache`]) and byte tier.
//! - `redb`: the disk tier, [`CacheBuilder::disk`] and [`redb`].
//! - `redis`: the Redis / Redis Cluster / Sentinel tier,
//!   [`CacheBuilder::redis`] and [`redis`]; `redis-tls` adds `rediss://`.
//! - `compress`: compression of the disk and Redis tiers, lz4 by default, and
//!   [`compress`]; `zstd` adds zstd.
//! - `analytics`: exact counts, latency percentiles and hot keys per tier,
//!   [`Cache::stats`] and [`Cache::emit_metrics`] through the `metrics`
//!   crate, and [`analytics`]; `prometheus` adds a `/metrics` endpoint.
//! - `policies`: a [`Store`] behind the cache, read-through, and
//!   write-through, write-back (a durable redb queue, flushed in batches,
//!   retried, with a dead-letter list) or write-around:
//!   [`CacheBuilder::store`] and [`policies`]; and bypass rules
//!   ([`CacheBuilder::bypass`], [`PatternBypass`], [`SizeBypass`]).
//!
//! Load protection needs no feature: negative caching of loads that find
//! no value ([`Cache::optionally_get_with`], [`CacheBuilder::negative_ttl`])
//! and of chosen errors ([`CacheBuilder::cache_errors`]), the cache's own
//! loader ([`CacheBuilder::loader`]), refresh-ahead
//! ([`CacheBuilder::refresh_after_write`]), stale-if-error
//! ([`CacheBuilder::stale_if_error`]) and a load timeout
//! ([`CacheBuilder::load_timeout`]), counted in [`Cache::load_stats`].
//! - `warm`: snapshots of the hot tier that survive restarts
//!   ([`CacheBuilder::snapshot`], [`Cache::save_snapshot`]), a warming
//!   service with priorities, rate and concurrency limits
//!   ([`Cache::warmer`]), and a prefetcher that learns access sequences
//!   ([`CacheBuilder::prefetch`]): [`warm`].
//! - `bincode`: [`Bincode`], an alternative codec (bincode is unmaintained;
//!   postcard is the default).
//! - `test-utils`: the conformance suite and `FailingBackend`, for testing
//!   tiers and layers of your own.
#![forbid(unsafe_code)]

#[cfg(feature = "memory")]
mod builder;
#[cfg(feature = "memory")]
mod cache;
#[cfg(feature = "memory")]
mod hot;
#[cfg(feature = "memory")]
mod observe;
#[cfg(feature = "memory")]
mod options;
#[cfg(feature = "memory")]
mod promotion;
#[cfg(feature = "memory")]
mod protect;
#[cfg(feature = "memory")]
mod record;
#[cfg(feature = "memory")]
mod report;
mod stripes;
#[cfg(feature = "memory")]
mod tiers;
#[cfg(feature = "memory")]
mod warming;

#[cfg(feature = "memory")]
pub use builder::CacheBuilder;
#[cfg(feature = "memory")]
pub use cache::Cache;
#[cfg(feature = "memory")]
pub use hot::HotTier;
#[cfg(feature = "memory")]
pub use options::InsertOptions;
#[cfg(feature = "memory")]
pub use promotion::Promotion;
#[cfg(feature = "memory")]
pub use protect::{DEFAULT_NEGATIVE_TTL, LoadStats};
#[cfg(feature = "analytics")]
pub use report::{COLD_WINDOW, CacheStats, ColdKeySummary, HotKey, LOAD_EVENTS_TOTAL, TierSummary};
#[cfg(feature = "memory")]
pub use report::{FlushReport, HierarchyStats, TierStats};

#[cfg(feature = "policies")]
pub use cache_policies::{
    BypassOp, BypassRule, BypassScope, PatternBypass, SizeBypass, Store, WhenFull, WritePolicy,
};

#[cfg(feature = "bincode")]
pub use cache_core::Bincode;
pub use cache_core::{
    ClassPolicy, Clock, Codec, Error, ErrorKind, Limits, Loader, Lookup, ManualClock, Meta,
    Placement, Postcard, Result,
};

/// The contracts for writing a tier or a layer of your own: the byte-level
/// [`Backend`](tier::Backend) trait and its object-safe twin, entries and
/// their metadata, layers, data classes, and (feature `test-utils`) the
/// conformance suite and a tier that fails on demand. Add a tier with
/// [`CacheBuilder::backend`] or [`CacheBuilder::tier`].
pub mod tier {
    pub use cache_core::{
        Backend, BoxFuture, ClassPolicy, ClassRemovals, Classes, DataClass, DynBackend, Either,
        Entry, Flags, KeyCursor, KeyPage, Layer, Lookup, Meta, Removals,
    };
    #[cfg(feature = "test-utils")]
    pub use cache_core::{FailingBackend, conformance};
}

/// The in-memory tier: the typed engine and its byte-level backend.
#[cfg(feature = "memory")]
pub mod memory {
    pub use cache_backends::memory::{
        MemoryBackend, MemoryBackendBuilder, MemoryCache, MemoryCacheBuilder, RemovalCause,
    };
}

/// Compression of byte tiers: the algorithms, the [`Compressed`] layer and
/// its statistics. With this feature the builder compresses the disk and
/// Redis tiers with lz4 by default (see
/// [`CacheBuilder::compression`](crate::CacheBuilder::compression)).
///
/// [`Compressed`]: cache_compress::Compressed
#[cfg(feature = "compress")]
pub mod compress {
    #[cfg(feature = "zstd")]
    pub use cache_compress::Zstd;
    pub use cache_compress::{
        AlgorithmStats, Compressed, CompressionLayer, CompressionStats, Compressor,
        DEFAULT_MAX_DECOMPRESSED_LEN, FRAME_HEADER_LEN, Gzip, Lz4,
    };
}

/// Analytics of byte tiers and of per-entry metadata: the layer, latency
/// histograms, hot and cold keys, TTL effectiveness, cleanup, metric
/// emission and (feature `prometheus`) the `/metrics` endpoint.
#[cfg(feature = "analytics")]
pub mod analytics {
    pub use cache_analytics::{
        Analytics, AnalyticsLayer, BYTES, CLASS_BYTES_TOTAL, CLASS_INSERTS_TOTAL,
        CLASS_REQUESTS_TOTAL, COMPRESSION_RATIO, ClassCompression, ClassRemovalStats, ClassStats,
        CleanupHandle, CleanupOutcome, CleanupPolicy, CleanupReason, ColdKey, ColdKeys, ENTRIES,
        EntryRecord, EntryTracker, HotKeys, LATENCY_SAMPLES_TOTAL, LATENCY_SECONDS,
        LatencyHistogram, LatencySummary, Op, OpStats, Outcome, REMOVALS_TOTAL, REQUESTS_TOTAL,
        RemovalStats, ResultCounts, TierStats, TrackerSettings, TtlReport, cleanup_once,
        describe_metrics, emit_metrics, set_compression_ratio, spawn_cleanup,
    };
    #[cfg(feature = "prometheus")]
    pub use cache_analytics::{PrometheusHandle, serve_prometheus};
}

/// A store behind the cache (feature `policies`): the [`Store`] trait,
/// write policies, and write-back's engine, settings, statistics and
/// dead-letter list.
#[cfg(feature = "policies")]
pub mod policies {
    pub use cache_policies::{
        BYPASSED_TOTAL, BypassOp, BypassRule, BypassRules, BypassScope, BypassStats,
        CORRUPTED_TABLE, DEAD_TABLE, DeadLetter, DeadLetters, DisplayPatternBypass, DynStore,
        KeyDecoder, PatternBypass, QUEUE_TABLE, SizeBypass, Store, WRITE_BACK_DEAD_LETTERED_TOTAL,
        WRITE_BACK_DEAD_LETTERS, WRITE_BACK_LOG_TOTAL, WRITE_BACK_QUEUE, WRITE_BACK_RETRIES_TOTAL,
        WRITE_BACK_SAVES_TOTAL, WhenFull, WriteBack, WriteBackSettings, WriteBackStats, WriteInfo,
        WritePolicy, describe_bypass_metrics, describe_write_back_metrics,
    };
}

/// Warming (feature `warm`): snapshots of the hot tier
/// ([`Cache::save_snapshot`], [`Cache::load_snapshot`],
/// [`CacheBuilder::snapshot`]), the warming service ([`Cache::warmer`] and
/// its sources) and the prefetcher ([`CacheBuilder::prefetch`]).
#[cfg(feature = "warm")]
pub mod warm {
    pub use crate::warming::{SnapshotReport, SnapshotStats, in_session};
    pub use cache_warm::{
        FetchFn, PREFETCH_TOTAL, PrefetchSettings, PrefetchStats, Prefetcher, SNAPSHOT_ENTRIES,
        SNAPSHOT_TOTAL, SNAPSHOT_VERSION, SnapshotContents, SnapshotHeader, SnapshotReader,
        SnapshotRecord, SnapshotWriter, SourceReport, WARM_ENTRIES_TOTAL, WARM_PROGRESS,
        WARM_RUNS_TOTAL, WarmFn, WarmHandle, WarmKey, WarmOutcome, WarmProgress, WarmReport,
        WarmSource, Warmer, WarmerBuilder, describe_warm_metrics, read_snapshot,
    };
}

/// The disk tier: a crash-safe redb file.
#[cfg(feature = "redb")]
pub mod redb {
    pub use cache_backends::redb::{Durability, RedbBackend, RedbBackendBuilder, RedbStats};
}

/// The Redis tier: Redis, Redis Cluster or Sentinel, on fred.
#[cfg(feature = "redis")]
pub mod redis {
    pub use cache_backends::redis::{
        RedisBackend, RedisBackendBuilder, RedisStats, RemovalTracking,
    };
}
