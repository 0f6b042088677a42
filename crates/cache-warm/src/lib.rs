//! # cache-warm
//!
//! Starting warm and staying ahead, for tiercache caches:
//!
//! - **Snapshots** ([`SnapshotWriter`], [`SnapshotReader`]): the hot tier's
//!   entries (or only their keys) in a versioned file with a checksum per
//!   record, written to a temporary file and renamed into place, so a crash
//!   mid-save leaves the previous snapshot whole. A damaged record is
//!   reported, never returned.
//! - **The warming service** ([`Warmer`]): keys from several sources, each
//!   with a priority, warmed hottest first under a concurrency limit and a
//!   rate limit, once or on a schedule, with progress, cancellation and a
//!   report.
//! - **The prefetcher** ([`Prefetcher`]): learns which key tends to follow
//!   which from the accesses it is shown, and after a lookup fetches the
//!   likely next keys in the background, with bounded memory, queue and
//!   concurrency.
//!
//! This crate knows nothing of the typed cache: the facade crate
//! `tiercache` (feature `warm`) connects them, with
//! `Cache::save_snapshot`, `Cache::load_snapshot`, `CacheBuilder::snapshot`,
//! `Cache::warmer` and `CacheBuilder::prefetch`.
#![forbid(unsafe_code)]

mod metrics;
mod outcome;
mod prefetch;
mod snapshot;
mod warmer;

pub use metrics::*;
pub use outcome::{WarmKey, WarmOutcome};
pub use prefetch::*;
pub use snapshot::*;
pub use warmer::*;
