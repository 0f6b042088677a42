//! [`CompressionLayer`]: the settings of a compressed tier, and the
//! [`Layer`] that builds one.

use std::sync::Arc;

use cache_core::{Backend, Layer};

use crate::compressed::Compressed;
use crate::compressor::Compressor;
use crate::lz4::Lz4;
use crate::policy::Policy;

/// Builds [`Compressed`] tiers: the algorithm and the rules that decide
/// which values are stored compressed.
///
/// A value is compressed when it is larger than the
/// [`threshold`](Self::threshold) (1 KiB) and no larger than
/// [`max_decompressed_len`](Self::max_decompressed_len) (64 MiB), and the
/// frame is kept only if it saves at least
/// [`min_saving`](Self::min_saving) (10%) of the value's size. A value
/// larger than [`sample_above`](Self::sample_above) (64 KiB) is judged
/// first from a [`sample`](Self::sample) (four chunks of 2 KiB spread from
/// its head to its tail): if the sample does not save that fraction, the
/// value is stored as it is without being compressed at all, so
/// incompressible data (media, encrypted or already compressed bytes)
/// costs a few microseconds.
///
/// ```
/// use cache_backends::memory::MemoryBackend;
/// use cache_compress::{CompressionLayer, Gzip};
/// use cache_core::Layer;
///
/// let layer = CompressionLayer::new(Gzip::new(4))
///     .threshold(4 * 1024)
///     .min_saving(0.2);
/// let tier = layer.layer(MemoryBackend::builder().build());
/// assert_eq!(tier.stats().algorithms[0].name, "gzip");
/// ```
#[derive(Clone, Debug)]
pub struct CompressionLayer {
    compressor: Arc<dyn Compressor>,
    policy: Policy,
}

impl CompressionLayer {
    /// Compressed tiers that compress with `compressor`, with the default
    /// rules.
    ///
    /// # Panics
    ///
    /// If the compressor's [`id`](Compressor::id) is not between 1 and 15,
    /// the ids an entry's flags can carry.
    pub fn new(compressor: impl Compressor) -> Self {
        let id = compressor.id();
        assert!(
            (1..=15).contains(&id),
            "a compressor's id must be between 1 and 15, and {} has {id}",
            compressor.name()
        );
        CompressionLayer {
            compressor: Arc::new(compressor),
            policy: Policy::DEFAULT,
        }
    }

    /// Values of this many bytes or fewer are stored uncompressed. 1,024
    /// by default. Empty values are never compressed.
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.policy.threshold = bytes;
        self
    }

    /// The least fraction of a value's size that compression must save
    /// (frame header included) for the compressed form to be kept. 0.1 by
    /// default.
    ///
    /// # Panics
    ///
    /// If `fraction` is not at least 0 and below 1.
    #[must_use]
    pub fn min_saving(mut self, fraction: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&fraction),
            "the minimum saving is a fraction from 0 up to 1, not {fraction}"
        );
        self.policy.min_saving = fraction;
        self
    }

    /// Values larger than this many bytes are judged from a sample before
    /// they are compressed in full. 64 KiB by default; `usize::MAX` turns
    /// sampling off.
    #[must_use]
    pub fn sample_above(mut self, bytes: usize) -> Self {
        self.policy.sample_above = bytes;
        self
    }

    /// The sample: `chunks` chunks of `chunk_len` bytes, spread evenly from
    /// the value's head to its tail. 4 chunks of 2,048 bytes by default.
    /// A value for which the sample would be more than half of it is
    /// compressed in full instead.
    ///
    /// # Panics
    ///
    /// If either is zero.
    #[must_use]
    pub fn sample(mut self, chunks: usize, chunk_len: usize) -> Self {
        assert!(
            chunks > 0 && chunk_len > 0,
            "a sample needs at least one chunk of at least one byte"
        );
        self.policy.sample_chunks = chunks;
        self.policy.sample_chunk_len = chunk_len;
        self
    }

    /// The largest value compressed, and the most a stored frame may claim
    /// to decompress to: a frame that claims more is treated as corrupted
    /// without allocating anything. 64 MiB by default.
    ///
    /// Larger values are stored uncompressed, so the wrapped tier's own
    /// size limit judges them; set this to the tier's
    /// [`Limits::max_value_len`](cache_core::Limits) so that both limits
    /// agree and a value too large for the tier is refused even when it
    /// would compress well.
    #[must_use]
    pub fn max_decompressed_len(mut self, bytes: usize) -> Self {
        self.policy.max_len = bytes;
        self
    }

    /// The algorithm values are compressed with.
    pub fn compressor(&self) -> &dyn Compressor {
        &*self.compressor
    }

    pub(crate) fn shared_compressor(&self) -> Arc<dyn Compressor> {
        Arc::clone(&self.compressor)
    }

    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }
}

impl Default for CompressionLayer {
    /// lz4 with the default rules.
    fn default() -> Self {
        CompressionLayer::new(Lz4)
    }
}

impl<B: Backend> Layer<B> for CompressionLayer {
    type Backend = Compressed<B>;

    fn layer(&self, inner: B) -> Compressed<B> {
        Compressed::new(inner, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gzip;

    #[test]
    fn setters_set_what_they_name() {
        let layer = CompressionLayer::new(Gzip::new(1))
            .threshold(10)
            .min_saving(0.5)
            .sample_above(1000)
            .sample(2, 100)
            .max_decompressed_len(5000);
        let expected = Policy {
            threshold: 10,
            min_saving: 0.5,
            sample_above: 1000,
            sample_chunks: 2,
            sample_chunk_len: 100,
            max_len: 5000,
        };
        assert_eq!(layer.policy(), expected);
        assert_eq!(layer.compressor().name(), "gzip");
        assert_eq!(CompressionLayer::default().compressor().id(), Lz4::ID);
        assert_eq!(CompressionLayer::default().policy(), Policy::DEFAULT);
    }

    #[test]
    #[should_panic(expected = "fraction")]
    fn a_saving_of_one_or_more_is_refused() {
        let _ = CompressionLayer::default().min_saving(1.0);
    }

    #[test]
    #[should_panic(expected = "fraction")]
    fn a_nan_saving_is_refused() {
        let _ = CompressionLayer::default().min_saving(f64::NAN);
    }

    #[test]
    #[should_panic(expected = "at least one chunk")]
    fn an_empty_sample_is_refused() {
        let _ = CompressionLayer::default().sample(0, 100);
    }
}
