//! [`Compressor`]: one compression algorithm, and the built-in ones by id.

use std::fmt;

use cache_core::Result;

use crate::frame;
use crate::gzip::Gzip;
use crate::lz4::Lz4;

/// A compression algorithm.
///
/// An implementation supplies the raw block format ([`compress_block`] and
/// [`decompress_block`]); the provided [`compress`] and [`decompress`] wrap
/// blocks in frames (see [`FRAME_HEADER_LEN`](crate::FRAME_HEADER_LEN)) and
/// do the checks every algorithm needs: the claimed length against the
/// caller's maximum and against [`max_expansion`] before anything is
/// allocated, and the decoded length against the claim afterwards.
///
/// [`compress_block`]: Compressor::compress_block
/// [`decompress_block`]: Compressor::decompress_block
/// [`compress`]: Compressor::compress
/// [`decompress`]: Compressor::decompress
/// [`max_expansion`]: Compressor::max_expansion
///
/// ```
/// use cache_compress::{Compressor, Gzip};
/// use cache_core::ErrorKind;
///
/// let text = b"tiercache tiercache tiercache tiercache".repeat(100);
/// let frame = Gzip::default().compress(&text)?;
/// assert!(frame.len() < text.len() / 10);
/// assert_eq!(Gzip::default().decompress(&frame, 1 << 20)?, text);
/// // A limit below the original length refuses the frame.
/// let err = Gzip::default().decompress(&frame, 100).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
/// # Ok::<(), cache_core::Error>(())
/// ```
pub trait Compressor: fmt::Debug + Send + Sync + 'static {
    /// The algorithm's stable identifier, stored in each frame and in the
    /// entry's [`Flags`](cache_core::Flags): from 1 to 15 (0 means "not
    /// compressed", and the flags hold four bits). The built-in ids are
    /// [`Lz4::ID`] (1), [`Gzip::ID`] (2) and `Zstd::ID` (3).
    fn id(&self) -> u8;

    /// A short name for reports and errors, such as `"lz4"`.
    fn name(&self) -> &'static str;

    /// The most bytes one byte of a valid block can decode to, where the
    /// format bounds it; `None` where it does not.
    ///
    /// [`decompress`](Compressor::decompress) refuses a frame whose claimed
    /// length exceeds its block's length times this bound, so a frame that
    /// lies about its length cannot make the decoder allocate more than
    /// this multiple of the frame.
    fn max_expansion(&self) -> Option<usize> {
        None
    }

    /// How many bytes to reserve for the block of an input of `input_len`
    /// bytes, so that [`compress`](Compressor::compress) allocates the frame
    /// once: the algorithm's worst-case block length where it has one that
    /// it writes into, 0 (the default) to let the block grow as it is
    /// written.
    fn block_capacity(&self, input_len: usize) -> usize {
        let _ = input_len;
        0
    }

    /// Appends the compressed block of `input` to `out`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Backend`](cache_core::ErrorKind::Backend) if the
    /// algorithm's library fails.
    fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;

    /// Decodes a block that should hold `len` bytes.
    ///
    /// `len` has been checked against the caller's maximum and
    /// [`max_expansion`](Compressor::max_expansion), so an implementation
    /// may allocate `len` bytes up front, but it must never produce or
    /// allocate much more than `len` bytes, whatever the block says: a
    /// streaming decoder reads at most `len` bytes and then checks that
    /// the stream ends.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Corrupted`](cache_core::ErrorKind::Corrupted) if the
    /// block is malformed or decodes to more than `len` bytes. Decoding to
    /// fewer may return the short output: the caller checks the length.
    fn decompress_block(&self, block: &[u8], len: usize) -> Result<Vec<u8>>;

    /// Compresses `input` into a frame that holds no spare capacity.
    ///
    /// # Errors
    ///
    /// As [`compress_block`](Compressor::compress_block).
    #[inline]
    fn compress(&self, input: &[u8]) -> Result<Vec<u8>> {
        frame::encode(self, input)
    }

    /// Decompresses a frame written by [`compress`](Compressor::compress)
    /// with this algorithm, refusing one that claims more than `max_len`
    /// bytes before allocating anything.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ValueTooLarge`](cache_core::ErrorKind::ValueTooLarge)
    /// if the frame claims more than `max_len` bytes;
    /// [`ErrorKind::Corrupted`](cache_core::ErrorKind::Corrupted) if it is
    /// truncated, malformed, of another algorithm, or decodes to another
    /// length than it claims.
    #[inline]
    fn decompress(&self, frame: &[u8], max_len: usize) -> Result<Vec<u8>> {
        frame::decode(self, frame, max_len)
    }
}

/// A shared algorithm is an algorithm, so what [`builtin`] lends can
/// configure a layer: `CompressionLayer::new(builtin(id)?)`.
impl<C: Compressor + ?Sized> Compressor for &'static C {
    fn id(&self) -> u8 {
        (**self).id()
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn max_expansion(&self) -> Option<usize> {
        (**self).max_expansion()
    }
    fn block_capacity(&self, input_len: usize) -> usize {
        (**self).block_capacity(input_len)
    }
    fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        (**self).compress_block(input, out)
    }
    fn decompress_block(&self, block: &[u8], len: usize) -> Result<Vec<u8>> {
        (**self).decompress_block(block, len)
    }
    fn compress(&self, input: &[u8]) -> Result<Vec<u8>> {
        (**self).compress(input)
    }
    fn decompress(&self, frame: &[u8], max_len: usize) -> Result<Vec<u8>> {
        (**self).decompress(frame, max_len)
    }
}

static LZ4: Lz4 = Lz4;
static GZIP: Gzip = Gzip::new(Gzip::DEFAULT_LEVEL);
#[cfg(feature = "zstd")]
static ZSTD: crate::Zstd = crate::Zstd::new(crate::Zstd::DEFAULT_LEVEL);

/// The built-in algorithm with identifier `id`, at its default level, or
/// `None` for an id this build does not know (3 without the `zstd`
/// feature).
///
/// Decompression does not depend on the level, so this decodes any frame
/// a built-in algorithm wrote; [`Compressed`](crate::Compressed) uses it for
/// frames of another algorithm than its own, such as those written before
/// its configuration changed.
pub fn builtin(id: u8) -> Option<&'static dyn Compressor> {
    match id {
        Lz4::ID => Some(&LZ4),
        Gzip::ID => Some(&GZIP),
        #[cfg(feature = "zstd")]
        crate::Zstd::ID => Some(&ZSTD),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_ids_are_stable_and_named() {
        assert_eq!(builtin(1).map(|c| c.name()), Some("lz4"));
        assert_eq!(builtin(2).map(|c| c.name()), Some("gzip"));
        #[cfg(feature = "zstd")]
        assert_eq!(builtin(3).map(|c| c.name()), Some("zstd"));
        #[cfg(not(feature = "zstd"))]
        assert!(builtin(3).is_none());
        for id in [0, 4, 15, 255] {
            assert!(builtin(id).is_none(), "id {id}");
        }
        for id in 1..=3 {
            if let Some(c) = builtin(id) {
                assert_eq!(c.id(), id);
            }
        }
    }
}
