//! The latency histogram's percentiles agree with the exact percentiles of
//! the recorded samples, within its stated precision.

use std::sync::Arc;
use std::thread;

use cache_analytics::{LatencyHistogram, MAX_LATENCY_NANOS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Three significant figures keep every value within 1/1024 of itself
/// (hdrhistogram rounds to 2,048 sub-buckets per power of two, reporting
/// the highest value of a bucket); a little slack covers the rounding of
/// the nanosecond integers.
const TOLERANCE: f64 = 1.0 / 1024.0 + 1e-6;

/// The nearest-rank percentile of sorted samples, the definition
/// hdrhistogram uses: the smallest value with at least `q` of the samples
/// at or below it.
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

fn assert_close(name: &str, got: u64, want: u64) {
    // The histogram reports a bucket's highest value, so it is never below
    // the true value and at most the tolerance above.
    let error = (got as f64 - want as f64) / want.max(1) as f64;
    assert!(
        (0.0..=TOLERANCE).contains(&error) || got == want,
        "{name}: histogram says {got} ns, the samples {want} ns (relative error {error:e})"
    );
}

/// Samples spread over nine orders of magnitude (1 ns to about 1 s),
/// log-uniformly, the shape of latencies across tiers.
fn samples(seed: u64, n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| 10f64.powf(rng.random_range(0.0..9.0)).round() as u64)
        .collect()
}

#[test]
fn percentiles_match_a_sorted_reference_within_the_stated_precision() {
    for seed in 0..3 {
        let values = samples(seed, 50_000);
        let histogram = Arc::new(LatencyHistogram::new());
        // Recorded from four threads, so the merged shards are compared.
        let threads: Vec<_> = values
            .chunks(values.len() / 4)
            .map(|chunk| {
                let (h, chunk) = (Arc::clone(&histogram), chunk.to_vec());
                thread::spawn(move || chunk.into_iter().for_each(|v| h.record(v)))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut sorted = values;
        sorted.sort_unstable();
        let s = histogram.snapshot();
        assert_eq!(s.count, sorted.len() as u64);
        assert_close("p50", s.p50, nearest_rank(&sorted, 0.50));
        assert_close("p95", s.p95, nearest_rank(&sorted, 0.95));
        assert_close("p99", s.p99, nearest_rank(&sorted, 0.99));
        assert_close("max", s.max, *sorted.last().unwrap());
        let mean = sorted.iter().map(|&v| v as f64).sum::<f64>() / sorted.len() as f64;
        let error = (s.mean as f64 - mean).abs() / mean;
        assert!(error <= TOLERANCE, "mean {} against {mean}", s.mean);
    }
}

#[test]
fn a_narrow_distribution_is_resolved_too() {
    // Values between 100 and 110 µs: percentiles one microsecond apart
    // must stay apart.
    let mut rng = StdRng::seed_from_u64(7);
    let mut values: Vec<u64> = (0..20_000)
        .map(|_| rng.random_range(100_000..110_000))
        .collect();
    let h = LatencyHistogram::new();
    values.iter().for_each(|&v| h.record(v));
    values.sort_unstable();
    let s = h.snapshot();
    assert_close("p50", s.p50, nearest_rank(&values, 0.50));
    assert_close("p99", s.p99, nearest_rank(&values, 0.99));
    assert!(s.p99 - s.p50 > 4_000, "{s:?}");
}

#[test]
fn latencies_beyond_the_range_count_at_its_top() {
    let h = LatencyHistogram::new();
    h.record(10);
    h.record(MAX_LATENCY_NANOS * 5);
    let s = h.snapshot();
    assert_eq!(s.count, 2);
    assert_close("max", s.max, MAX_LATENCY_NANOS);
}
