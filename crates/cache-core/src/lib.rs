//! The contracts of tiercache.
//!
//! Every tier below the typed hot tier, and every layer that wraps a tier,
//! speaks [`Backend`]: keys and values as bytes, plus [`Meta`] (absolute
//! expiry, creation time, data class and flags). [`DynBackend`] is its
//! object-safe twin for stacks chosen at runtime. A miss is a [`Lookup`],
//! never an [`Error`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use cache_core::{Backend, Entry, Lookup, ManualClock, Meta, Limits};
//! use cache_core::conformance::ReferenceBackend;
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(0);
//! let tier = ReferenceBackend::new(clock.clock(), Limits::DEFAULT);
//! let meta = Meta::with_ttl(clock.now_ms(), Duration::from_secs(1))?;
//! tier.insert(Bytes::from_static(b"k"), Entry::new(&b"v"[..], meta)).await?;
//! assert!(tier.get(b"k").await?.is_hit());
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(tier.get(b"k").await?, Lookup::Miss);
//! # Ok::<(), cache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod backend;
mod class;
mod clock;
mod codec;
mod dyn_backend;
mod entry;
mod error;
#[cfg(feature = "test-utils")]
mod failing;
mod flight;
mod keys;
mod layer;
mod limits;
mod loader;
mod meta;
mod removals;
mod striped;

/// The conformance suite and its reference backend (feature `test-utils`).
#[cfg(feature = "test-utils")]
pub mod conformance;

pub use backend::Backend;
pub use class::{ClassPolicy, Classes, Placement};
pub use clock::{Clock, ManualClock};
#[cfg(feature = "bincode")]
pub use codec::Bincode;
pub use codec::{Codec, Postcard};
pub use dyn_backend::{BoxFuture, DynBackend};
pub use entry::{Entry, Lookup};
pub use error::{Error, ErrorKind, Result};
#[cfg(feature = "test-utils")]
pub use failing::FailingBackend;
pub use flight::{LoaderErrors, SingleFlight, loader_error};
pub use keys::{KeyCursor, KeyPage};
pub use layer::{Either, Layer};
pub use limits::Limits;
pub use loader::Loader;
pub use meta::{DataClass, Flags, Meta, expiry_after, validate_ttl};
pub use removals::{ClassRemovals, Removals};
pub use striped::StripedCounters;
