//! Warming from the cache's side, behind one seam: what the read path
//! tells the prefetcher, and the state snapshots keep (feature `warm`,
//! `warming/on.rs`; without it `warming/off.rs`, whose one method is empty). The
//! snapshot's save and load are in `cache/snapshot.rs`, the warming
//! sources and the prefetcher's fetch in `cache/warm.rs`, the builder's
//! settings in `builder/warm.rs`.

#[cfg(feature = "warm")]
mod on;
#[cfg(feature = "warm")]
pub(crate) use on::{ShutdownSave, WarmSettings, Warming};
#[cfg(feature = "warm")]
pub use on::{SnapshotReport, SnapshotStats, in_session};

#[cfg(not(feature = "warm"))]
mod off;
#[cfg(not(feature = "warm"))]
pub(crate) use off::Warming;
