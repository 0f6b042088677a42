//! Workload generators shared by tiercache's benchmarks.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};

/// `len` keys drawn from a Zipf distribution with exponent `s` over
/// `1..=keys`, from a fixed seed so every run and every peer sees the same
/// sequence.
///
/// # Panics
///
/// If `keys` is zero or `s` is negative.
pub fn zipf_keys(keys: u64, s: f64, len: usize, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(keys as f64, s).expect("Zipf needs keys >= 1 and s >= 0");
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len).map(|_| zipf.sample(&mut rng) as u64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_keys_are_skewed_and_in_range() {
        let keys = zipf_keys(1_000, 1.0, 100_000, 1);
        assert!(keys.iter().all(|&k| (1..=1_000).contains(&k)));
        let ones = keys.iter().filter(|&&k| k == 1).count();
        let tail = keys.iter().filter(|&&k| k == 1_000).count();
        // Rank 1 is about 1,000 times as likely as rank 1,000.
        assert!(ones > 50 * tail.max(1), "ones {ones}, tail {tail}");
        assert_eq!(keys, zipf_keys(1_000, 1.0, 100_000, 1));
    }
}
