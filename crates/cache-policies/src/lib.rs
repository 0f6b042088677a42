//! # cache-policies
//!
//! How a tiercache cache coordinates with the system of record behind it
//! (a [`Store`]): write-through, write-around, and write-back from a
//! durable queue.
//!
//! Write-back ([`WriteBack`]) keeps every dirty key's latest write in a
//! redb file, committed before `insert` returns (concurrent inserts share
//! one commit), and a background flusher saves them to the store in
//! batches: coalesced per key, retried with exponential backoff and jitter,
//! and moved to a dead-letter list ([`DeadLetters`]) after
//! [`WriteBackSettings::max_retries`] tries. The log is replayed when it
//! is opened again, so a write acknowledged before a crash reaches the
//! store after it.
//!
//! Applications use these through the facade crate `tiercache` (feature
//! `policies`): `CacheBuilder::store`, `CacheBuilder::write_policy`,
//! `Cache::flush`.
//!
//! Bypass rules ([`BypassRules`]) decide that some keys, or some writes,
//! skip the cache or one of its tiers: wildcard key patterns
//! ([`PatternBypass`]), values over a size ([`SizeBypass`]), or any
//! closure, each scoped to the whole cache, the hot tier or one named tier
//! ([`BypassScope`]). The facade wires them in with `CacheBuilder::bypass`
//! and `CacheBuilder::bypass_in`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//! use bytes::Bytes;
//! use cache_core::{Codec, Postcard};
//! use cache_policies::{Store, WriteBack, WriteBackSettings};
//!
//! #[derive(Default)]
//! struct Rows(Mutex<HashMap<u64, String>>);
//! impl Store<u64, String> for Rows {
//!     async fn load(&self, k: &u64) -> cache_core::Result<Option<String>> {
//!         Ok(self.0.lock().unwrap().get(k).cloned())
//!     }
//!     async fn save(&self, k: &u64, v: &String) -> cache_core::Result<()> {
//!         self.0.lock().unwrap().insert(*k, v.clone());
//!         Ok(())
//!     }
//!     async fn delete(&self, k: &u64) -> cache_core::Result<()> {
//!         self.0.lock().unwrap().remove(k);
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rows = Arc::new(Rows::default());
//! let wb: WriteBack<u64, String, Postcard> =
//!     WriteBack::open(dir.path().join("log.redb"), WriteBackSettings::default(), rows.clone(), Postcard)
//!         .await?;
//! let key = Bytes::from(Postcard.encode(&1u64)?);
//! wb.save(key.clone(), Bytes::from(Postcard.encode("one")?)).await?; // durable now
//! assert!(wb.is_dirty(&key));
//! wb.flush().await?;
//! assert_eq!(rows.0.lock().unwrap().get(&1).map(String::as_str), Some("one"));
//! # Ok::<(), cache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod bypass;
mod dead;
mod metrics;
mod policy;
mod report;
mod store;
mod write_back;

pub use bypass::{
    BYPASSED_TOTAL, BypassOp, BypassRule, BypassRules, BypassScope, BypassStats,
    DisplayPatternBypass, PatternBypass, SizeBypass, Skip, WriteInfo, describe_bypass_metrics,
};
pub use dead::{DeadLetter, DeadLetters};
pub use metrics::{
    WRITE_BACK_DEAD_LETTERED_TOTAL, WRITE_BACK_DEAD_LETTERS, WRITE_BACK_LOG_TOTAL,
    WRITE_BACK_QUEUE, WRITE_BACK_RETRIES_TOTAL, WRITE_BACK_SAVES_TOTAL,
    describe_write_back_metrics,
};
pub use policy::{WhenFull, WriteBackSettings, WritePolicy};
pub use report::WriteBackStats;
pub use store::{DynStore, Store};
pub use write_back::{CORRUPTED_TABLE, DEAD_TABLE, KeyDecoder, QUEUE_TABLE, WriteBack};
