//! A stored frame that cannot be decompressed is a miss: the tier deletes
//! it and counts it, and never returns it. Failures of the tier underneath
//! are passed on, not mistaken for corruption.

mod support;

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_compress::{Compressed, CompressionLayer, Compressor, FRAME_HEADER_LEN, Gzip, Lz4};
use cache_core::{Backend, Entry, ErrorKind, FailingBackend, Flags, Layer, Lookup, Meta};

fn tier() -> Compressed<MemoryBackend> {
    CompressionLayer::new(Lz4).layer(MemoryBackend::builder().build())
}

/// Puts `value` under `key` in the tier underneath, flagged as compressed
/// with algorithm `id`.
async fn plant(tier: &Compressed<MemoryBackend>, key: &'static str, value: Vec<u8>, id: u8) {
    let meta = Meta::new(0).flags(Flags::EMPTY.with_compression(id));
    tier.inner()
        .insert(Bytes::from_static(key.as_bytes()), Entry::new(value, meta))
        .await
        .unwrap();
}

/// Frames that must each read as a miss, by name.
fn bad_frames() -> Vec<(&'static str, Vec<u8>, u8)> {
    let text = support::json_like(8 * 1024, 9);
    let lz4 = Lz4.compress(&text).unwrap();
    let gzip = Gzip::default().compress(&text).unwrap();
    let mut flipped = gzip.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let mut too_long = lz4.clone();
    too_long[1..FRAME_HEADER_LEN].copy_from_slice(&(text.len() as u64 + 1).to_le_bytes());
    vec![
        ("truncated", lz4[..lz4.len() / 2].to_vec(), Lz4::ID),
        ("header only", lz4[..FRAME_HEADER_LEN].to_vec(), Lz4::ID),
        ("empty", Vec::new(), Lz4::ID),
        ("flipped", flipped, Gzip::ID),
        ("wrong length", too_long, Lz4::ID),
        ("flags disagree with the frame", gzip, Lz4::ID),
        ("unknown algorithm", lz4, 9),
    ]
}

#[test]
fn a_frame_that_does_not_decompress_is_a_deleted_counted_miss() {
    support::runtime().block_on(async {
        let tier = tier();
        let bad = bad_frames();
        for (key, value, id) in bad.clone() {
            plant(&tier, key, value, id).await;
            assert_eq!(
                tier.get(key.as_bytes()).await.unwrap(),
                Lookup::Miss,
                "{key}"
            );
            assert!(
                !tier.inner().contains(key.as_bytes()).await.unwrap(),
                "{key} is deleted"
            );
        }
        assert_eq!(tier.stats().corrupted_frames, bad.len() as u64);
    });
}

#[test]
fn a_batch_answers_its_bad_frames_as_misses_and_keeps_the_rest() {
    support::runtime().block_on(async {
        let tier = tier();
        let text = Bytes::from(support::json_like(8 * 1024, 10));
        tier.insert(
            Bytes::from_static(b"good"),
            Entry::new(text.clone(), Meta::new(0)),
        )
        .await
        .unwrap();
        let bad = bad_frames();
        let mut keys = vec![Bytes::from_static(b"good")];
        for (key, value, id) in bad.clone() {
            plant(&tier, key, value, id).await;
            keys.push(Bytes::from_static(key.as_bytes()));
        }
        let got = tier.get_many(&keys).await.unwrap();
        assert_eq!(got[0].clone().into_hit().map(|e| e.value), Some(text));
        assert!(got[1..].iter().all(|l| *l == Lookup::Miss), "{got:?}");
        assert_eq!(tier.len().await.unwrap(), 1, "only the good entry is left");
        assert_eq!(tier.stats().corrupted_frames, bad.len() as u64);
    });
}

#[test]
fn a_negative_entry_is_never_taken_for_a_frame() {
    support::runtime().block_on(async {
        let tier = tier();
        let meta = Meta::new(0).flags(Flags::NEGATIVE.with_compression(Lz4::ID));
        let entry = Entry::new(&b"not a frame"[..], meta);
        tier.insert(Bytes::from_static(b"k"), entry.clone())
            .await
            .unwrap();
        // Answered as negative, its metadata as stored: nothing read the
        // value as a frame, nor found it corrupted and deleted it.
        assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Negative(entry.meta));
        assert_eq!(tier.len().await.unwrap(), 1);
        // The encoding's own negative entry, an empty value, is no more a
        // frame than this one.
        let negative = Entry::negative(Meta::new(0));
        tier.insert(Bytes::from_static(b"n"), negative.clone())
            .await
            .unwrap();
        assert_eq!(
            tier.get(b"n").await.unwrap(),
            Lookup::Negative(negative.meta)
        );
        assert_eq!(tier.stats().corrupted_frames, 0);
    });
}

#[test]
fn failures_of_the_tier_underneath_are_passed_on() {
    support::runtime().block_on(async {
        let tier =
            CompressionLayer::new(Lz4).layer(FailingBackend::new(MemoryBackend::builder().build()));
        let text = Bytes::from(support::json_like(8 * 1024, 11));
        tier.inner().fail_next(1);
        let err = tier
            .insert(
                Bytes::from_static(b"k"),
                Entry::new(text.clone(), Meta::new(0)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert_eq!(
            tier.stats().algorithm(Lz4::ID).unwrap().values,
            0,
            "a failed write is not counted"
        );

        tier.insert(
            Bytes::from_static(b"k"),
            Entry::new(text.clone(), Meta::new(0)),
        )
        .await
        .unwrap();
        tier.inner().fail_next(2);
        assert_eq!(
            tier.get(b"k").await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        let keys = [Bytes::from_static(b"k")];
        assert_eq!(
            tier.get_many(&keys).await.unwrap_err().kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(
            tier.get(b"k").await.unwrap().into_hit().map(|e| e.value),
            Some(text)
        );
        assert_eq!(tier.stats().corrupted_frames, 0);
    });
}
