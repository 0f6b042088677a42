//! A truncated or damaged frame is an error, never a panic and never more
//! than the limit.

mod support;

use cache_compress::{Compressor, FRAME_HEADER_LEN, builtin};
use cache_core::ErrorKind;
use proptest::prelude::*;

const LIMIT: usize = 1 << 20;

/// Originals of three kinds: text, a long run, and noise.
fn originals() -> Vec<Vec<u8>> {
    vec![
        support::json_like(4 * 1024, 7),
        vec![b'z'; 64 * 1024],
        support::random(2 * 1024, 7),
    ]
}

#[test]
fn a_frame_truncated_at_any_length_is_corrupted() {
    for c in support::algorithms() {
        for original in originals() {
            let frame = c.compress(&original).unwrap();
            for len in 0..frame.len() {
                match c.decompress(&frame[..len], LIMIT) {
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Corrupted, "{} at {len}: {e}", c.name())
                    }
                    Ok(v) => panic!(
                        "{}: a frame of {} bytes cut to {len} decoded to {} bytes",
                        c.name(),
                        frame.len(),
                        v.len()
                    ),
                }
            }
        }
    }
}

/// Whether the algorithm checks its content, so that damage which leaves
/// the length right is still caught: gzip ends each block with a CRC-32;
/// lz4 and zstd (as configured) carry no checksum and rely on the byte
/// tiers' record envelope for that.
fn checks_content(c: &dyn Compressor) -> bool {
    c.name() == "gzip"
}

#[test]
fn a_frame_with_any_byte_flipped_is_refused_or_decodes_to_its_length() {
    for c in support::algorithms() {
        for original in originals() {
            let frame = c.compress(&original).unwrap();
            let mut refused = 0;
            for at in 0..frame.len() {
                for mask in [0x01, 0x80, 0xff] {
                    let mut damaged = frame.clone();
                    damaged[at] ^= mask;
                    match c.decompress(&damaged, LIMIT) {
                        Err(e) => {
                            refused += 1;
                            let expected = if (1..FRAME_HEADER_LEN).contains(&at) {
                                [ErrorKind::Corrupted, ErrorKind::ValueTooLarge]
                            } else {
                                [ErrorKind::Corrupted; 2]
                            };
                            assert!(expected.contains(&e.kind()), "{} at {at}: {e}", c.name());
                        }
                        Ok(v) => {
                            assert_eq!(v.len(), original.len(), "{} at {at}", c.name());
                            assert!(
                                !checks_content(c) || v == original,
                                "{} returned damaged content (byte {at} ^ {mask:#x})",
                                c.name()
                            );
                        }
                    }
                }
            }
            // Every change to the header is caught.
            assert!(
                refused >= FRAME_HEADER_LEN * 3,
                "{}: {refused} refused",
                c.name()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_or_exceed_the_limit(
        id in support::ids(),
        claim in prop_oneof![0u64..5000, any::<u64>()],
        block in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let c = builtin(id).unwrap();
        let mut frame = vec![id];
        frame.extend_from_slice(&claim.to_le_bytes());
        frame.extend_from_slice(&block);
        if let Ok(v) = c.decompress(&frame, 4096) {
            prop_assert_eq!(v.len() as u64, claim);
        }
        // Bytes with no header to speak of.
        let _ = c.decompress(&block, 4096);
    }

    #[test]
    fn genuine_frames_with_random_damage_never_panic(
        id in support::ids(),
        seed in any::<u64>(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let c = builtin(id).unwrap();
        let original = support::json_like(3000, seed);
        let mut frame = c.compress(&original).unwrap();
        for (at, mask) in damage {
            let at = at.index(frame.len());
            frame[at] ^= mask;
        }
        if let Ok(v) = c.decompress(&frame, LIMIT) {
            prop_assert_eq!(v.len(), original.len());
        }
    }
}
