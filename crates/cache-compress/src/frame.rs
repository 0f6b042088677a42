//! The frame: what a compressed value is stored as.
//!
//! Layout, integers little-endian:
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | algorithm id, 1 to 15 (the same id the entry's flags carry) |
//! | 1 | 8 | original length in bytes |
//! | 9 | rest | the algorithm's compressed block |
//!
//! The length comes first so that decompression can refuse a frame that
//! claims more than the configured maximum before it allocates anything,
//! and can check that the block decodes to exactly that many bytes. It is
//! a fixed `u64` rather than a varint: four or eight bytes do not matter on
//! values above the compression threshold, and a fixed field has no
//! malformed encodings of its own.

use std::borrow::Cow;

use cache_core::{Error, ErrorKind, Result};

use crate::compressor::Compressor;

/// Bytes in a frame before the compressed block.
pub const FRAME_HEADER_LEN: usize = 9;

/// The largest original length a frame may claim unless configured
/// otherwise: 64 MiB, the default value limit of the tiers.
pub const DEFAULT_MAX_DECOMPRESSED_LEN: usize = 64 * 1024 * 1024;

/// An error of kind [`ErrorKind::Corrupted`].
pub(crate) fn corrupted(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::Corrupted, message)
}

/// Compresses `input` into a frame.
//
// This, `decode`, the trait's provided methods and lz4's block functions
// are inlined so that lz4's encode and decode loops are compiled in the
// caller's crate, where a direct lz4_flex call compiles them too. Compiled
// here and called from another crate, the same decode loop ran up to a
// quarter slower on 4 KiB blocks, from code placement alone.
#[inline]
pub(crate) fn encode<C: Compressor + ?Sized>(compressor: &C, input: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + compressor.block_capacity(input.len()));
    out.push(compressor.id());
    out.extend_from_slice(&(input.len() as u64).to_le_bytes());
    compressor.compress_block(input, &mut out)?;
    // Frames are usually stored as they are, so spare capacity would be
    // held for as long as the entry lives.
    out.shrink_to_fit();
    Ok(out)
}

/// Reads a frame's header: the original length it claims and the block.
///
/// # Errors
///
/// [`ErrorKind::Corrupted`] if the frame is shorter than its header or was
/// written by another algorithm than `id`; [`ErrorKind::ValueTooLarge`] if
/// it claims more than `max_len` bytes.
pub(crate) fn open(frame: &[u8], id: u8, max_len: usize) -> Result<(usize, &[u8])> {
    let Some((header, block)) = frame.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(corrupted(format!(
            "a compressed frame of {} bytes is shorter than its header",
            frame.len()
        )));
    };
    if header[0] != id {
        return Err(corrupted(format!(
            "a frame of algorithm {} was given to the decompressor of algorithm {id}",
            header[0]
        )));
    }
    let mut claimed = [0; 8];
    claimed.copy_from_slice(&header[1..]);
    let claimed = u64::from_le_bytes(claimed);
    match usize::try_from(claimed) {
        Ok(len) if len <= max_len => Ok((len, block)),
        _ => Err(Error::new(
            ErrorKind::ValueTooLarge,
            format!(
                "a compressed frame claims {claimed} bytes, more than the limit of {max_len} bytes"
            ),
        )),
    }
}

/// Checks what can be checked of a frame without decoding it: its header
/// names `compressor`'s algorithm, and its claimed length is within
/// `max_len` and within the algorithm's expansion bound for its block.
/// Returns the claimed length and the block.
///
/// # Errors
///
/// As [`open`], and [`ErrorKind::Corrupted`] if the block is too short to
/// decode to the claimed length.
#[inline]
pub(crate) fn check<'f, C: Compressor + ?Sized>(
    compressor: &C,
    frame: &'f [u8],
    max_len: usize,
) -> Result<(usize, &'f [u8])> {
    let (len, block) = open(frame, compressor.id(), max_len)?;
    if let Some(ratio) = compressor.max_expansion()
        && len > block.len().saturating_mul(ratio)
    {
        return Err(corrupted(format!(
            "a {} block of {} bytes cannot decode to the {len} bytes its frame claims",
            compressor.name(),
            block.len()
        )));
    }
    Ok((len, block))
}

/// Decompresses a frame, checking its claimed length against `max_len`
/// and the algorithm's expansion bound before anything is allocated, and
/// the decoded length against the claim afterwards.
#[inline]
pub(crate) fn decode<C: Compressor + ?Sized>(
    compressor: &C,
    frame: &[u8],
    max_len: usize,
) -> Result<Vec<u8>> {
    let (len, block) = check(compressor, frame, max_len)?;
    let out = compressor.decompress_block(block, len)?;
    if out.len() != len {
        return Err(corrupted(format!(
            "a {} frame decoded to {} bytes but claims {len}",
            compressor.name(),
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lz4;

    fn frame(id: u8, len: u64, block: &[u8]) -> Vec<u8> {
        let mut f = vec![id];
        f.extend_from_slice(&len.to_le_bytes());
        f.extend_from_slice(block);
        f
    }

    #[test]
    fn the_header_is_the_id_then_the_length() {
        let f = encode(&Lz4, b"hello").unwrap();
        assert_eq!(f[0], Lz4::ID);
        assert_eq!(&f[1..9], &5u64.to_le_bytes());
        assert_eq!(f.len(), f.capacity(), "no spare capacity is kept");
        assert_eq!(open(&f, Lz4::ID, 5).unwrap().0, 5);
    }

    #[test]
    fn short_frames_and_foreign_ids_are_corrupted() {
        for len in 0..FRAME_HEADER_LEN {
            let err = open(&[1; FRAME_HEADER_LEN][..len], 1, 100).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
        }
        let err = open(&frame(2, 0, &[]), 1, 100).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted, "{err}");
    }

    #[test]
    fn claims_above_the_limit_are_too_large() {
        assert!(open(&frame(1, 100, &[]), 1, 100).is_ok());
        for claim in [101, 4 << 30, u64::MAX] {
            let err = open(&frame(1, claim, &[]), 1, 100).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
        }
    }

    #[test]
    fn a_claim_beyond_the_expansion_bound_is_refused_before_decoding() {
        // Four bytes of lz4 can never make 255 * 4 + 1 bytes.
        let err = decode(&Lz4, &frame(1, 255 * 4 + 1, &[0; 4]), usize::MAX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupted);
        assert!(err.message().contains("cannot decode"), "{err}");
    }
}
