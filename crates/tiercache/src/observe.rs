//! The hot path's instrumentation, behind one seam: what a lookup, an
//! insert, a removal, an eviction or a load tells analytics. With the
//! `analytics` feature, [`Observer`] samples latencies, feeds the hot-key
//! sketch, counts classes and follows a sample of entries; without it, the
//! same methods are empty and compile to nothing. The public reports built
//! from what it gathers are in [`crate::report`].

#[cfg(feature = "analytics")]
mod on;
#[cfg(feature = "analytics")]
pub(crate) use on::{DEFAULT_SAMPLING, HotAnalytics, Observer, Sample, slot_name};

#[cfg(not(feature = "analytics"))]
mod off;
#[cfg(not(feature = "analytics"))]
pub(crate) use off::{Observer, Sample};

/// Turns a typed key into the bytes the tiers store it under, for the
/// entry tracker: only followed keys are encoded, so this is off the hot
/// path. `None` for a key that does not encode (its write failed anyway).
pub(crate) type KeyEncoder<K> = std::sync::Arc<dyn Fn(&K) -> Option<bytes::Bytes> + Send + Sync>;
