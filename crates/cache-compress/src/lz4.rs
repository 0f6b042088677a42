//! [`Lz4`]: the lz4 block format, through lz4_flex's safe encoder and
//! decoder.

use cache_core::{Error, ErrorKind, Result};
use lz4_flex::block;

use crate::compressor::Compressor;
use crate::frame::corrupted;

/// lz4, the fastest of the built-in algorithms and the default.
///
/// Blocks are lz4_flex's raw block format (no lz4 frame, no checksum: the
/// byte tiers' record envelope checks integrity, and the frame checks the
/// length). Both directions use lz4_flex's safe code, without `unsafe`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lz4;

impl Lz4 {
    /// The algorithm's identifier in frames and flags.
    pub const ID: u8 = 1;

    /// The most output one byte of lz4 block can stand for. A match's
    /// length grows by at most 255 for each extra length byte, and a
    /// literal is one byte for one byte, so no valid block decodes to more
    /// than 255 times its own length.
    const MAX_EXPANSION: usize = 255;
}

impl Compressor for Lz4 {
    fn id(&self) -> u8 {
        Self::ID
    }

    fn name(&self) -> &'static str {
        "lz4"
    }

    fn max_expansion(&self) -> Option<usize> {
        Some(Self::MAX_EXPANSION)
    }

    fn block_capacity(&self, input_len: usize) -> usize {
        block::get_maximum_output_size(input_len)
    }

    #[inline]
    fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let start = out.len();
        out.resize(start + block::get_maximum_output_size(input.len()), 0);
        let written = block::compress_into(input, &mut out[start..])
            .map_err(|e| Error::new(ErrorKind::Backend, "lz4 compression failed").with_source(e))?;
        out.truncate(start + written);
        Ok(())
    }

    #[inline]
    fn decompress_block(&self, block: &[u8], len: usize) -> Result<Vec<u8>> {
        // The output buffer is exactly the claimed length, and the safe
        // decoder fails rather than write past it.
        let mut out = vec![0; len];
        let written = block::decompress_into(block, &mut out)
            .map_err(|e| corrupted("an lz4 block does not decode").with_source(e))?;
        out.truncate(written);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expansion_bound_holds_for_the_most_compressible_input() {
        for len in [1 << 10, 1 << 16, 1 << 20] {
            let zeros = vec![0u8; len];
            let mut block = Vec::new();
            Lz4.compress_block(&zeros, &mut block).unwrap();
            assert!(
                len <= block.len() * Lz4::MAX_EXPANSION,
                "{len} zeros made a block of {} bytes",
                block.len()
            );
            assert_eq!(Lz4.decompress_block(&block, len).unwrap(), zeros);
        }
    }

    #[test]
    fn a_block_longer_than_claimed_is_refused() {
        let text = b"abcdefgh".repeat(100);
        let mut block = Vec::new();
        Lz4.compress_block(&text, &mut block).unwrap();
        let err = Lz4.decompress_block(&block, text.len() - 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted);
    }

    #[test]
    fn blocks_are_appended_after_what_is_there() {
        let mut out = b"head".to_vec();
        Lz4.compress_block(b"tail tail tail", &mut out).unwrap();
        assert_eq!(&out[..4], b"head");
        assert_eq!(
            Lz4.decompress_block(&out[4..], 14).unwrap(),
            b"tail tail tail"
        );
    }
}
