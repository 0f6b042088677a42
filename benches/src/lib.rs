//! Workload generators and the trace simulator shared by tiercache's
//! benchmarks.
//!
//! The simulator (the `simulate` binary) replays real access traces
//! ([`read_trace`]) through tiercache's memory engine, the exact baselines
//! ([`Lru`], Belady's [`Opt`]), the classic policies [`Arc`] and [`Lirs`]
//! and the peer crates ([`PolicyKind`]), and compares hit ratios. The
//! `throughput` criterion bench and the `memory_per_entry` binary drive the
//! engine and the peers through [`ConcurrentCache`] ([`CacheKind`] names
//! them), and `bench_report` turns their results into
//! `docs/benchmarks/throughput.md`.
//!
//! ```
//! use tiercache_benches::{PolicyKind, next_uses, replay};
//!
//! let keys = [1, 2, 1, 3, 1, 2];
//! let next = next_uses(&keys);
//! let mut lru = PolicyKind::Lru.build(2, &keys, &next);
//! assert_eq!(replay(lru.as_mut(), &keys, |_| {}), 2);
//! ```

mod classic;
mod cli;
mod concurrent;
mod lru;
mod opt;
mod policy;
mod provenance;
mod slab;
mod trace;

pub use classic::{Arc, Lirs};
pub use cli::{bench_main, parse_count, write_report};
pub use concurrent::{CacheKind, ConcurrentCache};
pub use lru::Lru;
pub use opt::{Admission, NEVER, Opt, next_uses};
pub use policy::{Policy, PolicyKind, replay};
pub use provenance::{
    Machine, cpu_model, git_commit, kernel_release, locked_versions, utc_now, workspace_root,
    write_file,
};
pub use trace::{TraceError, TraceFormat, parse_trace, read_trace};

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

/// The median; the mean of the middle two for an even count, NaN for
/// none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// `131072` as `131,072`, for reports.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }

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

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(131_072), "131,072");
        assert_eq!(thousands(250), "250");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
