//! On a Zipf workload, the hot keys reported include the true top five.

use std::collections::HashMap;

use bytes::Bytes;
use cache_analytics::{AnalyticsLayer, HotKeys};
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, Layer};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

const KEYS: f64 = 10_000.0;
const DRAWS: usize = 100_000;
/// The keys tracked: the layer's default `top_k`. With s = 1 the tail
/// holds most of the draws, and a sketch of a few dozen slots or fewer
/// keeps handing the fourth and fifth keys' slots to tail keys (30 slots
/// and up found the top five on these seeds; 100 leaves a margin).
const TRACKED: usize = 100;

/// 100,000 keys drawn from a Zipf distribution (s = 1) over 10,000 keys.
fn zipf_keys(seed: u64) -> Vec<Bytes> {
    let zipf = Zipf::new(KEYS, 1.0).unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    (0..DRAWS)
        .map(|_| Bytes::from(format!("key-{}", zipf.sample(&mut rng) as u64)))
        .collect()
}

/// The five most frequent keys, counted exactly.
fn true_top5(keys: &[Bytes]) -> Vec<Bytes> {
    let mut counts: HashMap<&Bytes, u64> = HashMap::new();
    for key in keys {
        *counts.entry(key).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    counts.into_iter().take(5).map(|(k, _)| k.clone()).collect()
}

fn assert_contains_all(reported: &[(Bytes, u64)], expected: &[Bytes]) {
    for key in expected {
        assert!(
            reported.iter().any(|(k, _)| k == key),
            "{key:?} is in the true top 5 but not reported: {reported:?}"
        );
    }
}

#[test]
fn the_sketch_finds_the_true_top_five() {
    for seed in 0..3 {
        let keys = zipf_keys(seed);
        let hot = HotKeys::new(TRACKED);
        keys.iter().for_each(|k| hot.record(k));
        let top = hot.top(5);
        assert_eq!(top.len(), 5);
        assert_contains_all(&top, &true_top5(&keys));
        // Estimates never undercount.
        for (key, estimate) in &top {
            let truth = keys.iter().filter(|k| *k == key).count() as u64;
            assert!(*estimate >= truth, "{key:?}: {estimate} < {truth}");
        }
    }
}

#[tokio::test]
async fn the_layer_reports_the_true_top_five_of_its_lookups() {
    let keys = zipf_keys(42);
    let tier = AnalyticsLayer::new()
        .key_sample(1)
        .top_k(TRACKED)
        .layer(MemoryBackend::builder().build());
    for key in &keys {
        tier.get(key).await.unwrap();
    }
    assert_contains_all(&tier.hot_keys(5), &true_top5(&keys));
}
