//! The storage tiers of tiercache, each behind a feature:
//!
//! - `memory` (default): [`memory::MemoryCache`], a synchronous, concurrent,
//!   typed cache (the hot tier), and [`memory::MemoryBackend`], the same
//!   engine as a byte-level [`cache_core::Backend`].
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

#[cfg(feature = "memory")]
pub mod memory;
