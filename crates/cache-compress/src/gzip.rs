//! [`Gzip`]: the gzip format, through flate2 on the zlib-rs backend.

use std::io::{Read, Write};

use cache_core::{Error, ErrorKind, Result};
use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;

use crate::compressor::Compressor;
use crate::frame::corrupted;

/// gzip at a configurable level: slower than lz4, smaller output, and
/// self-checking (each block ends with a CRC-32 of its content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gzip {
    level: u32,
}

impl Gzip {
    /// The algorithm's identifier in frames and flags.
    pub const ID: u8 = 2;

    /// The level [`Gzip::default`] uses, zlib's own default.
    pub const DEFAULT_LEVEL: u32 = 6;

    /// The most output one byte of deflate stream can stand for. The
    /// longest match (258 bytes) takes at least two bits, a one-bit length
    /// code and a one-bit distance code, so no valid stream decodes to more
    /// than 1,032 times its length; the gzip header and trailer only add to
    /// the margin.
    const MAX_EXPANSION: usize = 1032;

    /// gzip at `level`, from 0 (stored, no compression) to 9 (smallest).
    ///
    /// # Panics
    ///
    /// If `level` is above 9.
    pub const fn new(level: u32) -> Self {
        assert!(level <= 9, "gzip levels run from 0 to 9");
        Gzip { level }
    }

    /// The compression level.
    pub const fn level(&self) -> u32 {
        self.level
    }
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip::new(Self::DEFAULT_LEVEL)
    }
}

impl Compressor for Gzip {
    fn id(&self) -> u8 {
        Self::ID
    }

    fn name(&self) -> &'static str {
        "gzip"
    }

    fn max_expansion(&self) -> Option<usize> {
        Some(Self::MAX_EXPANSION)
    }

    fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let failed = |e| Error::new(ErrorKind::Backend, "gzip compression failed").with_source(e);
        let mut encoder = GzEncoder::new(out, Compression::new(self.level));
        encoder.write_all(input).map_err(failed)?;
        encoder.finish().map_err(failed)?;
        Ok(())
    }

    fn decompress_block(&self, block: &[u8], len: usize) -> Result<Vec<u8>> {
        let broken = |e| corrupted("a gzip block does not decode").with_source(e);
        let mut out = Vec::with_capacity(len);
        let mut decoder = GzDecoder::new(block);
        // Reading at most `len` bytes into a buffer of that capacity never
        // grows it; one more read then says whether the stream really ends
        // there, and makes the decoder check the trailer's CRC-32.
        (&mut decoder)
            .take(len as u64)
            .read_to_end(&mut out)
            .map_err(broken)?;
        if decoder.read(&mut [0; 1]).map_err(broken)? != 0 {
            return Err(corrupted(format!(
                "a gzip block decodes to more than the {len} bytes its frame claims"
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_round_trips() {
        let text = b"the quick brown fox jumps over the lazy dog ".repeat(50);
        let mut sizes = Vec::new();
        for level in 0..=9 {
            let gzip = Gzip::new(level);
            let mut block = Vec::new();
            gzip.compress_block(&text, &mut block).unwrap();
            assert_eq!(gzip.decompress_block(&block, text.len()).unwrap(), text);
            sizes.push(block.len());
        }
        assert!(sizes[0] > text.len(), "level 0 stores");
        assert!(sizes[9] < text.len() / 10, "level 9 compresses: {sizes:?}");
    }

    #[test]
    fn a_stream_longer_than_claimed_is_refused_without_reading_it_all() {
        let zeros = vec![0u8; 1 << 20];
        let mut block = Vec::new();
        Gzip::default().compress_block(&zeros, &mut block).unwrap();
        let err = Gzip::default().decompress_block(&block, 1000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted);
        assert!(err.message().contains("more than"), "{err}");
    }

    #[test]
    fn the_expansion_bound_holds_for_the_most_compressible_input() {
        let zeros = vec![0u8; 4 << 20];
        let mut block = Vec::new();
        Gzip::new(9).compress_block(&zeros, &mut block).unwrap();
        assert!(zeros.len() <= block.len() * Gzip::MAX_EXPANSION);
    }

    #[test]
    #[should_panic(expected = "0 to 9")]
    fn levels_above_nine_are_refused() {
        let _ = Gzip::new(10);
    }
}
