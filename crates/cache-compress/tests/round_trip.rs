//! Any bytes come back unchanged, through every algorithm directly and
//! through a `Compressed` tier.

mod support;

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_compress::{CompressionLayer, DEFAULT_MAX_DECOMPRESSED_LEN, builtin};
use cache_core::{Backend, Entry, Layer, Meta};
use proptest::prelude::*;

/// Values of every kind that matters: empty and tiny, arbitrary bytes
/// around the threshold, runs of a few symbols (highly compressible), and
/// JSON-like text past the sampling size.
fn values() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        prop::collection::vec(any::<u8>(), 1000..3000),
        prop::collection::vec(prop::sample::select(b"ab \n{}".to_vec()), 0..20_000),
        (0usize..2, 1000usize..200_000).prop_map(|(run, len)| vec![b'x' + run as u8; len]),
        (any::<u64>(), 60_000usize..150_000).prop_map(|(seed, len)| support::json_like(len, seed)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_algorithm_round_trips_any_bytes(value in values(), id in support::ids()) {
        let compressor = builtin(id).unwrap();
        let frame = compressor.compress(&value).unwrap();
        prop_assert_eq!(frame[0], id);
        let back = compressor.decompress(&frame, DEFAULT_MAX_DECOMPRESSED_LEN).unwrap();
        prop_assert!(back == value, "{} changed a value of {} bytes", compressor.name(), value.len());
        // A limit of exactly the value's length is enough.
        prop_assert!(compressor.decompress(&frame, value.len()).is_ok());
    }

    #[test]
    fn a_compressed_tier_round_trips_any_bytes(
        value in values(),
        id in support::ids(),
        threshold in prop::sample::select(vec![0usize, 1024]),
    ) {
        let layer = CompressionLayer::new(builtin(id).unwrap()).threshold(threshold);
        let tier = layer.layer(MemoryBackend::builder().max_bytes(64 << 20).build());
        let meta = Meta::new(5).expires_at(Some(u64::MAX - 1));
        let entry = Entry::new(value.clone(), meta);
        support::runtime().block_on(async {
            tier.insert(Bytes::from_static(b"k"), entry.clone()).await.unwrap();
            let stored = tier.inner().get(b"k").await.unwrap().into_hit().unwrap();
            let compressed = stored.meta.flags.compression() != 0;
            prop_assert_eq!(compressed, tier.stats().algorithm(id).unwrap().values == 1);
            prop_assert!(compressed || stored == entry, "a skipped value is stored as it came");
            let read = tier.get(b"k").await.unwrap().into_hit().unwrap();
            prop_assert!(read == entry, "the tier changed a value of {} bytes", value.len());
            Ok(())
        })?;
    }
}
