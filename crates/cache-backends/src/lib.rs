//! The storage tiers of tiercache, each behind a feature:
//!
//! - `memory` (default): [`memory::MemoryCache`], a synchronous, concurrent,
//!   typed cache (the hot tier), and [`memory::MemoryBackend`], the same
//!   engine as a byte-level [`cache_core::Backend`].
//! - `redb`: `redb::RedbBackend`, the disk tier, in one crash-safe file.
//! - `redis`: `redis::RedisBackend`, the shared tier on Redis, Redis
//!   Cluster or Sentinel (`redis-tls` adds `rediss://`).
//!
//! ```
//! use cache_backends::memory::MemoryCache;
//! use std::time::Duration;
//!
//! let cache: MemoryCache<String, u64> = MemoryCache::builder()
//!     .max_capacity(1_000)
//!     .time_to_live(Duration::from_secs(60))
//!     .build();
//! cache.insert("answer".to_string(), 42);
//! assert_eq!(cache.get(&"answer".to_string()), Some(42));
//! ```
#![forbid(unsafe_code)]

#[cfg(any(feature = "redb", feature = "redis"))]
mod envelope;
#[cfg(feature = "memory")]
pub mod memory;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "redis")]
pub mod redis;
