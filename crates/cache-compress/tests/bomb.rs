//! A frame that claims a huge size is refused before anything is
//! allocated, and a frame that lies about its size never makes the
//! decoder allocate more than the limit.
//!
//! A counting global allocator (`stats_alloc`, which holds the unsafe
//! `GlobalAlloc` impl outside this workspace) measures every byte
//! allocated during each call; the zstd C library allocates through it too
//! in the tests (the dev-dependency enables `with-rust-allocator`). The
//! bytes allocated during a call bound its peak memory from above.

mod support;

use std::alloc::System;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_compress::{CompressionLayer, DEFAULT_MAX_DECOMPRESSED_LEN, FRAME_HEADER_LEN};
use cache_core::{Backend, Entry, ErrorKind, Flags, Layer, Lookup, Meta};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The tests of this file measure one at a time: the allocator counts
/// every thread.
static MEASURING: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;
const FOUR_GIB: u64 = 4 << 30;

/// Waits for the other tests to finish measuring. A test that failed
/// while measuring leaves nothing behind, so its poison is ignored.
fn measuring() -> MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` and returns its result with the bytes allocated meanwhile.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change().bytes_allocated)
}

/// `frame` with its claimed original length replaced by `claim`.
fn claiming(frame: &[u8], claim: u64) -> Vec<u8> {
    let mut lie = frame.to_vec();
    lie[1..FRAME_HEADER_LEN].copy_from_slice(&claim.to_le_bytes());
    lie
}

fn refused(result: cache_core::Result<Vec<u8>>, kind: ErrorKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.kind(), kind, "{what}: {e}"),
        Ok(v) => panic!("{what}: decoded {} bytes", v.len()),
    }
}

#[test]
fn a_frame_claiming_4_gib_is_refused_before_allocating() {
    let _one = measuring();
    for c in support::algorithms() {
        let lie = claiming(
            &c.compress(&support::json_like(8 * 1024, 1)).unwrap(),
            FOUR_GIB,
        );
        let (result, bytes) = allocated_by(|| c.decompress(&lie, DEFAULT_MAX_DECOMPRESSED_LEN));
        refused(result, ErrorKind::ValueTooLarge, c.name());
        assert!(bytes < MIB, "{}: {bytes} bytes allocated", c.name());

        // With no limit at all, the block itself must vouch for the claim
        // (lz4's and deflate's expansion bounds, zstd's recorded size)
        // before the output is allocated.
        let (result, bytes) = allocated_by(|| c.decompress(&lie, usize::MAX));
        refused(result, ErrorKind::Corrupted, c.name());
        assert!(
            bytes < MIB,
            "{} without a limit: {bytes} bytes allocated",
            c.name()
        );
    }
}

#[test]
fn a_real_bomb_is_refused_by_its_claim() {
    let _one = measuring();
    let zeros = vec![0u8; 4 * MIB];
    for c in support::algorithms() {
        let bomb = c.compress(&zeros).unwrap();
        assert!(bomb.len() < MIB / 2, "{}: {} bytes", c.name(), bomb.len());
        let (result, bytes) = allocated_by(|| c.decompress(&bomb, MIB));
        refused(result, ErrorKind::ValueTooLarge, c.name());
        assert!(bytes < MIB, "{}: {bytes} bytes allocated", c.name());
    }
}

#[test]
fn a_bomb_that_understates_its_size_stops_at_the_claim() {
    let _one = measuring();
    let zeros = vec![0u8; 4 * MIB];
    for c in support::algorithms() {
        let lie = claiming(&c.compress(&zeros).unwrap(), 1000);
        let (result, bytes) = allocated_by(|| c.decompress(&lie, DEFAULT_MAX_DECOMPRESSED_LEN));
        refused(result, ErrorKind::Corrupted, c.name());
        assert!(bytes < MIB, "{}: {bytes} bytes allocated", c.name());
    }
}

#[test]
fn a_frame_whose_block_agrees_with_the_lie_costs_at_most_the_claim() {
    let _one = measuring();
    let claim = 4 * MIB;
    for c in support::algorithms() {
        // A genuine frame of `claim` bytes whose block is damaged halfway:
        // every header check passes, so only decoding finds the damage.
        let mut frame = c.compress(&vec![0u8; claim]).unwrap();
        let middle = FRAME_HEADER_LEN + (frame.len() - FRAME_HEADER_LEN) / 2;
        for b in &mut frame[middle..middle + 8] {
            *b ^= 0x5a;
        }
        let (result, bytes) = allocated_by(|| c.decompress(&frame, claim));
        if let Ok(v) = &result {
            assert_eq!(v.len(), claim, "{}", c.name());
        }
        assert!(
            bytes <= claim + MIB,
            "{}: {bytes} bytes allocated",
            c.name()
        );
    }
}

#[test]
fn a_stored_frame_claiming_4_gib_is_a_cheap_miss() {
    let _one = measuring();
    let rt = support::runtime();
    for c in support::algorithms() {
        let tier = CompressionLayer::new(c).layer(MemoryBackend::builder().build());
        let lie = claiming(
            &c.compress(&support::json_like(8 * 1024, 2)).unwrap(),
            FOUR_GIB,
        );
        let meta = Meta::new(0).flags(Flags::EMPTY.with_compression(c.id()));
        rt.block_on(
            tier.inner()
                .insert(Bytes::from_static(b"bomb"), Entry::new(lie, meta)),
        )
        .unwrap();
        let (lookup, bytes) = allocated_by(|| rt.block_on(tier.get(b"bomb")).unwrap());
        assert_eq!(lookup, Lookup::Miss, "{}", c.name());
        assert!(bytes < MIB, "{}: {bytes} bytes allocated", c.name());
        assert_eq!(tier.stats().corrupted_frames, 1);
        assert!(!rt.block_on(tier.inner().contains(b"bomb")).unwrap());
    }
}
