//! `Zstd`: the zstd format, through the zstd crate (feature `zstd`).

use std::io::Cursor;

use cache_core::{Error, ErrorKind, Result};
use zstd::bulk;
use zstd::zstd_safe::get_frame_content_size;

use crate::compressor::Compressor;
use crate::frame::corrupted;

/// zstd at a configurable level: close to gzip's ratios at several times
/// its speed. It needs the `zstd` feature, which builds the zstd C
/// library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Zstd {
    level: i32,
}

impl Zstd {
    /// The algorithm's identifier in frames and flags.
    pub const ID: u8 = 3;

    /// The level [`Zstd::default`] uses, zstd's own default.
    pub const DEFAULT_LEVEL: i32 = 3;

    /// zstd at `level`. zstd accepts 1 to 22 and negative "fast" levels,
    /// and clamps a level outside its range to the nearest one it has.
    pub const fn new(level: i32) -> Self {
        Zstd { level }
    }

    /// The compression level.
    pub const fn level(&self) -> i32 {
        self.level
    }
}

impl Default for Zstd {
    fn default() -> Self {
        Zstd::new(Self::DEFAULT_LEVEL)
    }
}

fn failed(what: &'static str, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Backend, what).with_source(e)
}

impl Compressor for Zstd {
    fn id(&self) -> u8 {
        Self::ID
    }

    fn name(&self) -> &'static str {
        "zstd"
    }

    fn block_capacity(&self, input_len: usize) -> usize {
        zstd::compress_bound(input_len)
    }

    fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut context =
            bulk::Compressor::new(self.level).map_err(|e| failed("zstd cannot start", e))?;
        let start = out.len();
        out.reserve(zstd::compress_bound(input.len()));
        // The cursor makes zstd write after what `out` holds already
        // rather than over it. One-shot compression records the content
        // size in the frame header, which decompression relies on.
        let mut cursor = Cursor::new(out);
        cursor.set_position(start as u64);
        context
            .compress_to_buffer(input, &mut cursor)
            .map_err(|e| failed("zstd compression failed", e))?;
        Ok(())
    }

    fn decompress_block(&self, block: &[u8], len: usize) -> Result<Vec<u8>> {
        // zstd's own header must agree with the frame's claim before the
        // output is allocated, so a lie costs both headers' agreement.
        match get_frame_content_size(block) {
            Ok(Some(recorded)) if recorded == len as u64 => {}
            _ => {
                return Err(corrupted(format!(
                    "a zstd block does not record the {len} bytes its frame claims"
                )));
            }
        }
        // One-shot decompression writes straight into the buffer, whose
        // capacity bounds the output: zstd fails rather than grow it, and
        // allocates no window of its own.
        let mut out = Vec::with_capacity(len);
        bulk::Decompressor::new()
            .map_err(|e| failed("zstd cannot start", e))?
            .decompress_to_buffer(block, &mut out)
            .map_err(|e| corrupted("a zstd block does not decode").with_source(e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_record_their_content_size() {
        for len in [0, 1, 1000, 100_000] {
            let data = vec![7u8; len];
            let mut out = b"head".to_vec();
            Zstd::default().compress_block(&data, &mut out).unwrap();
            assert_eq!(&out[..4], b"head");
            assert_eq!(get_frame_content_size(&out[4..]).unwrap(), Some(len as u64));
            assert_eq!(
                Zstd::default().decompress_block(&out[4..], len).unwrap(),
                data
            );
        }
    }

    #[test]
    fn a_claim_that_zstd_does_not_record_is_refused() {
        let mut block = Vec::new();
        Zstd::default()
            .compress_block(&[1; 500], &mut block)
            .unwrap();
        for claim in [499, 501, 64 << 20] {
            let err = Zstd::default().decompress_block(&block, claim).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        }
    }
}
