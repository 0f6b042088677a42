//! Throughput of tiercache's memory engine and its peers side by side, at
//! one and two threads sharing one cache, under a Zipf(1.0) workload.
//!
//! Groups are named `throughput/<workload>/<threads>t` and function ids
//! are [`CacheKind::id`], so `target/criterion/throughput_<workload>_<threads>t/<id>/new/`
//! holds each result; one iteration is [`OPS_PER_THREAD`] operations on
//! every thread, and the throughput is counted in total operations.
//! `cargo xtask bench throughput` runs this and writes
//! `docs/benchmarks/throughput.md`.
// criterion's macros define public functions without doc comments.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tiercache::memory::MemoryCache;
use tiercache_benches::{CacheKind, ConcurrentCache, zipf_keys};

/// Keys are drawn from `1..=KEYS`.
const KEYS: u64 = 1_000_000;
/// The Zipf exponent of the key stream.
const ZIPF_S: f64 = 1.0;
/// Every cache holds at most this many entries.
const CAPACITY: u64 = 100_000;
/// Length of the pre-generated key stream, a power of two so a position
/// wraps with a mask.
const STREAM_LEN: usize = 1 << 21;
/// Operations per thread in one criterion iteration.
const OPS_PER_THREAD: usize = 10_000;
/// The thread counts measured; the bench machine has two cores.
const THREADS: [usize; 2] = [1, 2];

/// What each operation does.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// `get` on a warm cache.
    Get,
    /// `insert(k, k)` on a warm (full) cache.
    Insert,
    /// `get`, and `insert` on a miss.
    GetOrInsert,
}

impl Workload {
    const ALL: [Self; 3] = [Self::Get, Self::Insert, Self::GetOrInsert];

    fn id(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Insert => "insert",
            Self::GetOrInsert => "get_or_insert",
        }
    }

    #[inline]
    fn apply<C: ConcurrentCache>(self, cache: &C, key: u64) {
        match self {
            Self::Get => {
                black_box(cache.get(key));
            }
            Self::Insert => cache.insert(key, key),
            Self::GetOrInsert => {
                if cache.get(key).is_none() {
                    cache.insert(key, key);
                }
            }
        }
    }
}

/// A cache of `C` filled by replaying the whole key stream as "get, then
/// insert on a miss", so every workload starts from the steady state of
/// the same access pattern rather than from an empty cache.
fn warm<C: ConcurrentCache>(keys: &[u64]) -> C {
    let cache = C::with_capacity(CAPACITY);
    for &key in keys {
        if cache.get(key).is_none() {
            cache.insert(key, key);
        }
    }
    cache.sync();
    cache
}

/// Runs `ops` operations of `workload` on each of `threads` threads over
/// the shared `cache` and returns the wall time from the moment every
/// thread is ready until the last one finishes.
///
/// Thread `t` reads the key stream from `start + t * len / threads`,
/// wrapping around, so the threads see different stretches of the same
/// distribution; `cursor` moves on after every call, so successive
/// samples do not replay the same keys.
fn run<C: ConcurrentCache>(
    cache: &C,
    keys: &[u64],
    cursor: &AtomicUsize,
    workload: Workload,
    threads: usize,
    ops: usize,
) -> Duration {
    let mask = keys.len() - 1;
    let start = cursor.fetch_add(ops, Ordering::Relaxed);
    // The workers and this thread meet here, so thread start-up is not
    // timed.
    let ready = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let ready = &ready;
                let offset = start.wrapping_add(t * keys.len() / threads);
                scope.spawn(move || {
                    ready.wait();
                    for i in 0..ops {
                        workload.apply(cache, keys[offset.wrapping_add(i) & mask]);
                    }
                })
            })
            .collect();
        ready.wait();
        let began = Instant::now();
        for worker in workers {
            worker.join().expect("a benchmark thread panicked");
        }
        began.elapsed()
    })
}

fn bench_cache<C: ConcurrentCache>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    kind: CacheKind,
    keys: &[u64],
    workload: Workload,
    threads: usize,
) {
    // Built on first use, so a benchmark that a command-line filter skips
    // costs no warming.
    let mut cache: Option<C> = None;
    let cursor = AtomicUsize::new(0);
    group.bench_function(kind.id(), |b| {
        let cache = cache.get_or_insert_with(|| warm(keys));
        b.iter_custom(|iters| {
            let iters = usize::try_from(iters).expect("iteration count fits usize");
            run(
                cache,
                keys,
                &cursor,
                workload,
                threads,
                iters * OPS_PER_THREAD,
            )
        })
    });
}

fn throughput(c: &mut Criterion) {
    let keys = zipf_keys(KEYS, ZIPF_S, STREAM_LEN, 42);
    for workload in Workload::ALL {
        for threads in THREADS {
            let mut group = c.benchmark_group(format!("throughput/{}/{threads}t", workload.id()));
            group.throughput(Throughput::Elements((threads * OPS_PER_THREAD) as u64));
            for kind in CacheKind::ALL {
                match kind {
                    CacheKind::Tiercache => bench_cache::<MemoryCache<u64, u64>>(
                        &mut group, kind, &keys, workload, threads,
                    ),
                    CacheKind::Moka => bench_cache::<moka::sync::Cache<u64, u64>>(
                        &mut group, kind, &keys, workload, threads,
                    ),
                    CacheKind::QuickCache => bench_cache::<quick_cache::sync::Cache<u64, u64>>(
                        &mut group, kind, &keys, workload, threads,
                    ),
                    CacheKind::Foyer => bench_cache::<foyer_memory::Cache<u64, u64>>(
                        &mut group, kind, &keys, workload, threads,
                    ),
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);
