//! The timing of the `compression` benchmark: each algorithm through the
//! `Compressor` trait and through the direct calls of its library, with
//! the same settings, and the repetition that gives a throughput.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_compress::{CompressionLayer, Compressor, DEFAULT_MAX_DECOMPRESSED_LEN, Gzip, Lz4, Zstd};
use flate2::Compression;
use flate2::bufread::GzDecoder;
use flate2::write::GzEncoder;
use tiercache::memory::MemoryBackend;
use tiercache::tier::{Backend, Entry, Layer, Meta};

/// How long one batch of calls should take: long enough that reading the
/// clock is noise, short enough to stop close to the time budget.
const BATCH: Duration = Duration::from_millis(2);

/// One algorithm, both ways.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Algorithm {
    /// `Lz4` against `lz4_flex::block::{compress, decompress}`.
    Lz4,
    /// `Gzip::new(level)` against flate2's `write::GzEncoder` and
    /// `bufread::GzDecoder` at the same level.
    Gzip(u32),
    /// `Zstd::new(level)` against `zstd::bulk::{compress, decompress}` at
    /// the same level.
    Zstd(i32),
}

impl Algorithm {
    /// Every algorithm at its default level, in id order.
    pub(crate) const ALL: [Algorithm; 3] = [
        Algorithm::Lz4,
        Algorithm::Gzip(Gzip::DEFAULT_LEVEL),
        Algorithm::Zstd(Zstd::DEFAULT_LEVEL),
    ];

    /// The algorithm's name.
    pub(crate) fn name(self) -> &'static str {
        self.ours().name()
    }

    /// Its `Compressor`.
    pub(crate) fn ours(self) -> Box<dyn Compressor> {
        match self {
            Algorithm::Lz4 => Box::new(Lz4),
            Algorithm::Gzip(level) => Box::new(Gzip::new(level)),
            Algorithm::Zstd(level) => Box::new(Zstd::new(level)),
        }
    }

    /// The setting both sides use, for the report.
    pub(crate) fn setting(self) -> String {
        match self {
            Algorithm::Lz4 => "block format, safe encoder and decoder".to_string(),
            Algorithm::Gzip(level) => format!("level {level}"),
            Algorithm::Zstd(level) => format!("level {level}"),
        }
    }

    /// The library's own compressed form of `data`.
    pub(crate) fn direct_compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Lz4 => lz4_flex::block::compress(data),
            Algorithm::Gzip(level) => {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::new(level));
                encoder.write_all(data).expect("writing to a Vec succeeds");
                encoder.finish().expect("writing to a Vec succeeds")
            }
            Algorithm::Zstd(level) => zstd::bulk::compress(data, level).expect("zstd compresses"),
        }
    }

    /// `data` back from the library's own compressed form, knowing its
    /// length as a cache would.
    pub(crate) fn direct_decompress(self, block: &[u8], len: usize) -> Vec<u8> {
        match self {
            Algorithm::Lz4 => lz4_flex::block::decompress(block, len).expect("lz4 decodes"),
            Algorithm::Gzip(_) => {
                let mut out = Vec::with_capacity(len);
                GzDecoder::new(block)
                    .read_to_end(&mut out)
                    .expect("gzip decodes");
                out
            }
            Algorithm::Zstd(_) => zstd::bulk::decompress(block, len).expect("zstd decodes"),
        }
    }
}

/// Which way an algorithm was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Through the `Compressor` trait, frames and checks included.
    Ours,
    /// The library's own calls.
    Direct,
}

/// Compression and decompression of one input, ready to be timed.
pub(crate) struct Subject<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) ours: Box<dyn Compressor>,
    pub(crate) data: &'a [u8],
    /// Our frame of `data`.
    pub(crate) frame: Vec<u8>,
    /// The library's compressed form of `data`.
    pub(crate) block: Vec<u8>,
}

impl<'a> Subject<'a> {
    /// `data` compressed both ways, each checked to decompress to it.
    pub(crate) fn new(algorithm: Algorithm, data: &'a [u8]) -> Result<Subject<'a>, String> {
        let ours = algorithm.ours();
        let frame = ours
            .compress(data)
            .map_err(|e| format!("{} cannot compress: {e}", algorithm.name()))?;
        let block = algorithm.direct_compress(data);
        let back = ours
            .decompress(&frame, DEFAULT_MAX_DECOMPRESSED_LEN)
            .map_err(|e| format!("{} cannot decompress its frame: {e}", algorithm.name()))?;
        if back != data || algorithm.direct_decompress(&block, data.len()) != data {
            return Err(format!("{} does not round-trip", algorithm.name()));
        }
        Ok(Subject {
            algorithm,
            ours,
            data,
            frame,
            block,
        })
    }

    /// Compression throughput of one side, MB/s of original bytes.
    pub(crate) fn compress(&self, side: Side, budget: Duration) -> f64 {
        let data = self.data;
        match side {
            Side::Ours => throughput(data.len(), budget, || {
                black_box(self.ours.compress(black_box(data)).expect("compresses"));
            }),
            Side::Direct => throughput(data.len(), budget, || {
                black_box(self.algorithm.direct_compress(black_box(data)));
            }),
        }
    }

    /// Decompression throughput of one side, MB/s of original bytes.
    pub(crate) fn decompress(&self, side: Side, budget: Duration) -> f64 {
        let len = self.data.len();
        match side {
            Side::Ours => throughput(len, budget, || {
                let out = self
                    .ours
                    .decompress(black_box(&self.frame), DEFAULT_MAX_DECOMPRESSED_LEN);
                black_box(out.expect("decompresses"));
            }),
            Side::Direct => throughput(len, budget, || {
                black_box(
                    self.algorithm
                        .direct_decompress(black_box(&self.block), len),
                );
            }),
        }
    }
}

/// How a memory tier is wrapped when the layer section inserts into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerVariant {
    /// No layer.
    Plain,
    /// `CompressionLayer::new(Lz4)` with its defaults.
    Sampled,
    /// The same with sampling off (`sample_above(usize::MAX)`).
    Unsampled,
}

impl LayerVariant {
    /// Every variant, in report order.
    pub(crate) const ALL: [LayerVariant; 3] = [
        LayerVariant::Plain,
        LayerVariant::Sampled,
        LayerVariant::Unsampled,
    ];

    /// What the report calls it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            LayerVariant::Plain => "memory tier, no layer",
            LayerVariant::Sampled => "lz4 layer, default rules (sampling above 64 KiB)",
            LayerVariant::Unsampled => "lz4 layer, sampling off",
        }
    }
}

/// The mean time of one insert of `value` into a fresh memory tier with
/// the layer `variant` names around it, in microseconds. Every insert
/// replaces the same key.
pub(crate) fn insert_micros(variant: LayerVariant, value: &Bytes, budget: Duration) -> f64 {
    let tier = MemoryBackend::builder().max_bytes(64 << 20).build();
    let layer = match variant {
        LayerVariant::Plain => None,
        LayerVariant::Sampled => Some(CompressionLayer::new(Lz4)),
        LayerVariant::Unsampled => Some(CompressionLayer::new(Lz4).sample_above(usize::MAX)),
    };
    let tier = layer.layer(tier);
    let key = Bytes::from_static(b"key");
    micros_per_call(budget, || {
        let entry = Entry::new(value.clone(), Meta::new(0));
        futures::executor::block_on(tier.insert(key.clone(), entry)).expect("the insert succeeds");
    })
}

/// Repeats `op` for about `budget` after one warm-up call, in batches
/// sized to take about [`BATCH`] each, and returns millions of `bytes`
/// per second (`bytes` being what one call processes).
pub(crate) fn throughput(bytes: usize, budget: Duration, mut op: impl FnMut()) -> f64 {
    let calls = calls_in(budget, &mut op);
    bytes as f64 * calls.0 as f64 / calls.1.as_secs_f64() / 1e6
}

/// Repeats `op` for about `budget` after one warm-up call and returns the
/// mean time of one call, in microseconds.
pub(crate) fn micros_per_call(budget: Duration, mut op: impl FnMut()) -> f64 {
    let (calls, elapsed) = calls_in(budget, &mut op);
    elapsed.as_secs_f64() * 1e6 / calls as f64
}

/// Calls `op` once to warm up and size the batches, then in batches until
/// `budget` has passed: how many calls were timed, and how long they took.
fn calls_in(budget: Duration, op: &mut impl FnMut()) -> (u64, Duration) {
    let warm_up = Instant::now();
    op();
    let one = warm_up.elapsed().as_nanos().max(1);
    let batch = (BATCH.as_nanos() / one).clamp(1, 100_000) as u64;
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < budget {
        for _ in 0..batch {
            op();
        }
        calls += batch;
    }
    (calls, start.elapsed())
}
