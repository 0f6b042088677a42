//! Which values are stored compressed: larger than the threshold, saving
//! at least the minimum fraction, and, for large values, judged from a
//! sample first.

mod support;

use bytes::Bytes;
use cache_backends::memory::MemoryBackend;
use cache_compress::{Compressed, CompressionLayer};
use cache_core::{Backend, Entry, Layer, Meta};

type Tier = Compressed<MemoryBackend>;

fn tier(layer: CompressionLayer) -> Tier {
    layer.layer(MemoryBackend::builder().max_bytes(256 << 20).build())
}

/// Stores `value` under `k` and returns what the tier underneath holds,
/// after checking that a read gives the value back.
fn store(tier: &Tier, k: &'static str, value: &[u8]) -> Entry {
    support::runtime().block_on(async {
        let entry = Entry::new(value.to_vec(), Meta::new(0));
        tier.insert(Bytes::from_static(k.as_bytes()), entry.clone())
            .await
            .unwrap();
        let read = tier.get(k.as_bytes()).await.unwrap().into_hit().unwrap();
        assert!(read == entry, "{k} reads back");
        tier.inner()
            .get(k.as_bytes())
            .await
            .unwrap()
            .into_hit()
            .unwrap()
    })
}

/// `len` bytes that save about `fraction` of their size: that share of
/// zeros, which compress to almost nothing, then noise, which does not
/// compress at all.
fn saving(len: usize, fraction: f64) -> Vec<u8> {
    let zeros = (len as f64 * fraction) as usize;
    let mut value = vec![0; zeros];
    value.extend(support::random(len - zeros, 3));
    value
}

#[test]
fn incompressible_megabytes_are_skipped_by_the_sample() {
    for c in support::algorithms() {
        let tier = tier(CompressionLayer::new(c));
        let noise = support::random(1 << 20, 1);
        let stored = store(&tier, "noise", &noise);
        assert_eq!(stored.meta.flags.compression(), 0, "{}", c.name());
        assert!(stored.value == noise, "{}: stored as it came", c.name());
        let stats = tier.stats();
        assert_eq!(stats.skipped_by_sample, 1, "{}: {stats:?}", c.name());
        assert_eq!(
            stats.skipped_not_paying,
            0,
            "{}: never compressed in full",
            c.name()
        );
        assert_eq!(stats.algorithm(c.id()).unwrap().values, 0);
    }
}

#[test]
fn json_like_text_is_compressed_and_saves_bytes() {
    for c in support::algorithms() {
        let tier = tier(CompressionLayer::new(c));
        for (k, len) in [("small", 4 * 1024), ("large", 1 << 20)] {
            let text = support::json_like(len, 2);
            let stored = store(&tier, k, &text);
            assert_eq!(stored.meta.flags.compression(), c.id(), "{} {k}", c.name());
            assert!(
                stored.value.len() < text.len() * 3 / 5,
                "{} {k}: {} of {len} bytes",
                c.name(),
                stored.value.len()
            );
        }
        let stats = tier.stats();
        let figures = stats.algorithm(c.id()).unwrap();
        assert_eq!((figures.values, figures.decompressions), (2, 2));
        assert_eq!(figures.bytes_in, 4 * 1024 + (1 << 20));
        assert!(figures.ratio() < 0.6, "{}: {figures:?}", c.name());
        assert_eq!(stats.bytes_saved(), figures.bytes_in - figures.bytes_out);
        assert_eq!(stats.skipped_incompressible(), 0);
    }
}

#[test]
fn a_value_saving_less_than_the_minimum_is_stored_uncompressed() {
    for c in support::algorithms() {
        let five = saving(32 * 1024, 0.06);
        let frame = c.compress(&five).unwrap();
        let saved = 1.0 - frame.len() as f64 / five.len() as f64;
        assert!(
            (0.03..0.08).contains(&saved),
            "{}: the data saves {saved:.3}",
            c.name()
        );

        let tier = tier(CompressionLayer::new(c));
        let stored = store(&tier, "five", &five);
        assert_eq!(stored.meta.flags.compression(), 0, "{}", c.name());
        assert!(stored.value == five);
        assert_eq!(tier.stats().skipped_not_paying, 1, "{}", c.name());

        // The same data passes a lower bar, and data that saves a fifth
        // passes the default one.
        let lenient = self::tier(CompressionLayer::new(c).min_saving(0.02));
        assert_eq!(
            store(&lenient, "five", &five).meta.flags.compression(),
            c.id()
        );
        let twenty = saving(32 * 1024, 0.2);
        assert_eq!(
            store(&tier, "twenty", &twenty).meta.flags.compression(),
            c.id()
        );
        assert_eq!(tier.stats().algorithm(c.id()).unwrap().values, 1);
    }
}

#[test]
fn values_up_to_the_threshold_are_stored_uncompressed() {
    for c in support::algorithms() {
        let tier = tier(CompressionLayer::new(c).threshold(2000));
        let text = support::json_like(2001, 4);
        assert_eq!(
            store(&tier, "at", &text[..2000]).meta.flags.compression(),
            0
        );
        assert_eq!(
            store(&tier, "above", &text).meta.flags.compression(),
            c.id()
        );
        let stats = tier.stats();
        assert_eq!(
            (
                stats.skipped_too_small,
                stats.algorithm(c.id()).unwrap().values
            ),
            (1, 1)
        );
    }
}

#[test]
fn values_above_the_decompression_limit_are_stored_uncompressed() {
    let c = support::algorithms()[0];
    let tier = tier(CompressionLayer::new(c).max_decompressed_len(100_000));
    let text = support::json_like(100_001, 5);
    assert_eq!(store(&tier, "big", &text).meta.flags.compression(), 0);
    assert_eq!(
        store(&tier, "fits", &text[..100_000])
            .meta
            .flags
            .compression(),
        c.id()
    );
    assert_eq!(tier.stats().skipped_too_large, 1);
}

#[test]
fn a_value_whose_sample_pays_is_compressed_in_full() {
    // Noise everywhere but where the sample looks (the four chunks at the
    // head, the thirds and the tail) is still compressed in full, and then
    // kept or not by what it saves as a whole.
    let c = support::algorithms()[0];
    let len = 300 * 1024;
    let mut mostly_noise = support::random(len, 6);
    let span = len - 2048;
    for start in [0, span / 3, span * 2 / 3, span] {
        mostly_noise[start..start + 2048].fill(b'a');
    }
    let tier = tier(CompressionLayer::new(c));
    assert_eq!(store(&tier, "v", &mostly_noise).meta.flags.compression(), 0);
    let stats = tier.stats();
    assert_eq!((stats.skipped_by_sample, stats.skipped_not_paying), (0, 1));

    // With sampling off, noise is compressed in full before it is refused.
    let unsampled = self::tier(CompressionLayer::new(c).sample_above(usize::MAX));
    store(&unsampled, "noise", &support::random(len, 7));
    assert_eq!(unsampled.stats().skipped_not_paying, 1);
}
