//! The inputs of the `compression` benchmark: JSON-like text, as cached
//! API responses are, and random bytes, which nothing compresses.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// What the bytes look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// JSON-like text.
    Json,
    /// Uniformly random bytes.
    Random,
}

impl Kind {
    /// Both kinds, in report order.
    pub(crate) const ALL: [Kind; 2] = [Kind::Json, Kind::Random];

    /// The name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Json => "json",
            Kind::Random => "random",
        }
    }

    /// `len` bytes of this kind from `seed`.
    pub(crate) fn generate(self, len: usize, seed: u64) -> Vec<u8> {
        match self {
            Kind::Json => json(len, seed),
            Kind::Random => {
                let mut out = vec![0; len];
                StdRng::seed_from_u64(seed).fill_bytes(&mut out);
                out
            }
        }
    }
}

/// The words user records and their free text are drawn from.
const WORDS: [&str; 24] = [
    "cache", "tier", "value", "request", "response", "latency", "memory", "disk", "redis",
    "cluster", "shard", "replica", "expiry", "hit", "miss", "load", "store", "fetch", "update",
    "order", "invoice", "customer", "product", "session",
];
const STATUSES: [&str; 4] = ["active", "pending", "suspended", "closed"];

/// A JSON array of user records of `len` bytes (cut at `len`): the same
/// keys in every record, numbers, timestamps, identifiers and a sentence
/// of free text that differ from record to record.
fn json(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = String::with_capacity(len + 512);
    out.push('[');
    let mut id = rng.random_range(10_000..90_000u32);
    while out.len() < len {
        id += rng.random_range(1..20);
        let user = WORDS[rng.random_range(0..WORDS.len())];
        let _ = write!(
            out,
            "{{\"id\":{id},\"user\":\"{user}_{id}\",\"email\":\"{user}.{id}@example.com\",\
             \"created\":\"2025-{:02}-{:02}T{:02}:{:02}:{:02}Z\",\"status\":\"{}\",\
             \"balance\":{:.2},\"visits\":{},\"note\":\"",
            rng.random_range(1..=12),
            rng.random_range(1..=28),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60),
            STATUSES[rng.random_range(0..STATUSES.len())],
            rng.random_range(0.0..10_000.0),
            rng.random_range(0..5_000),
        );
        for i in 0..rng.random_range(4..12) {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[rng.random_range(0..WORDS.len())]);
        }
        out.push_str("\"},");
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_has_the_length_asked_and_is_repeatable() {
        for kind in Kind::ALL {
            for len in [0, 1, 4096, 100_000] {
                let data = kind.generate(len, 9);
                assert_eq!(data.len(), len);
                assert_eq!(data, kind.generate(len, 9));
            }
        }
        assert!(Kind::Json.generate(1000, 1).starts_with(b"[{\"id\":"));
    }
}
