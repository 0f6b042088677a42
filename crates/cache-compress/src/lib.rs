//! Compression for tiercache's byte tiers.
//!
//! A [`Compressor`] turns a value into a *frame* and back: a nine-byte
//! header (the algorithm id and the original length, see
//! [`FRAME_HEADER_LEN`]) followed by the algorithm's compressed bytes. Three
//! algorithms are built in: [`Lz4`] (the lz4_flex block format, the
//! default), [`Gzip`] (flate2 on zlib-rs) and, with the `zstd` feature,
//! `Zstd`. Decompression checks the claimed length against a maximum
//! before it allocates, and a truncated or damaged frame is an error, never
//! a panic.
//!
//! [`Compressed<B>`] wraps any [`Backend`](cache_core::Backend): it
//! compresses the values worth compressing on the way in (larger than a
//! threshold, saving at least a fraction, judged from a sample first when
//! the value is large), records the algorithm in the entry's
//! [`Flags`](cache_core::Flags), and decompresses on the way out.
//! [`CompressionLayer`] holds the settings and builds it as a
//! [`Layer`](cache_core::Layer).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use bytes::Bytes;
//! use cache_backends::memory::MemoryBackend;
//! use cache_compress::{CompressionLayer, Lz4};
//! use cache_core::{Backend, Entry, Layer, Meta};
//!
//! let tier = CompressionLayer::new(Lz4).layer(MemoryBackend::builder().build());
//! let value = Bytes::from("{\"id\": 1, \"name\": \"tiercache\"} ".repeat(200));
//! tier.insert(Bytes::from_static(b"k"), Entry::new(value.clone(), Meta::new(0))).await?;
//!
//! // The tier underneath holds the compressed frame...
//! let stored = tier.inner().get(b"k").await?.into_hit().unwrap();
//! assert_eq!(stored.meta.flags.compression(), Lz4::ID);
//! assert!(stored.value.len() < value.len() / 10);
//! // ...and reads through the layer give the original back.
//! let read = tier.get(b"k").await?.into_hit().unwrap();
//! assert_eq!(read.value, value);
//! assert_eq!(read.meta.flags.compression(), 0);
//! assert_eq!(tier.stats().algorithm(Lz4::ID).unwrap().values, 1);
//! # Ok::<(), cache_core::Error>(())
//! # }).unwrap();
//! ```
#![forbid(unsafe_code)]

mod compressed;
mod compressor;
mod frame;
mod gzip;
mod layer;
mod lz4;
mod policy;
mod stats;
#[cfg(feature = "zstd")]
mod zstandard;

pub use compressed::Compressed;
pub use compressor::{Compressor, builtin};
pub use frame::{DEFAULT_MAX_DECOMPRESSED_LEN, FRAME_HEADER_LEN};
pub use gzip::Gzip;
pub use layer::CompressionLayer;
pub use lz4::Lz4;
pub use stats::{AlgorithmStats, ClassCompressionStats, CompressionStats, OTHER_CLASSES};
#[cfg(feature = "zstd")]
pub use zstandard::Zstd;
