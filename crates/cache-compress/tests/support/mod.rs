//! Data and helpers shared by the integration tests.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use cache_compress::{Compressor, builtin};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

/// Every algorithm this build has, at its default level.
pub(crate) fn algorithms() -> Vec<&'static dyn Compressor> {
    (1..=15).filter_map(builtin).collect()
}

/// The id of any algorithm this build has.
pub(crate) fn ids() -> impl proptest::strategy::Strategy<Value = u8> {
    proptest::sample::select(algorithms().iter().map(|c| c.id()).collect::<Vec<_>>())
}

/// `len` bytes of JSON-like records: repetitive keys, varying values,
/// compressible several times over, as cached API responses are.
pub(crate) fn json_like(len: usize, seed: u64) -> Vec<u8> {
    const NAMES: [&str; 6] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(len + 200);
    out.push(b'[');
    while out.len() < len {
        let record = format!(
            "{{\"id\":{},\"name\":\"{}\",\"score\":{:.3},\"active\":{},\"tags\":[\"{}\",\"{}\"]}},",
            rng.random_range(0..1_000_000u32),
            NAMES[rng.random_range(0..NAMES.len())],
            rng.random::<f64>() * 100.0,
            rng.random_bool(0.5),
            NAMES[rng.random_range(0..NAMES.len())],
            NAMES[rng.random_range(0..NAMES.len())],
        );
        out.extend_from_slice(record.as_bytes());
    }
    out.truncate(len);
    out
}

/// `len` random bytes, which no algorithm can compress.
pub(crate) fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut out);
    out
}

/// A runtime for tests that drive a tier from synchronous code.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}
