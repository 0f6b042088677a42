//! Single-threaded throughput of the hot tier under a Zipf(1.0) workload:
//! the engine alone (`MemoryCache`) and through the async facade (`Cache`).
// criterion's macros define public functions without doc comments.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tiercache::Cache;
use tiercache::memory::MemoryCache;
use tiercache_benches::zipf_keys;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
const OPS: usize = 100_000;

fn engine(c: &mut Criterion) {
    let keys = zipf_keys(KEYS, 1.0, OPS, 42);
    let mut group = c.benchmark_group("memory_cache");
    group.throughput(Throughput::Elements(OPS as u64));

    let cache: MemoryCache<u64, u64> = MemoryCache::builder().max_capacity(CAPACITY).build();
    for &k in &zipf_keys(KEYS, 1.0, 4 * CAPACITY as usize, 7) {
        cache.insert(k, k);
    }
    group.bench_function(BenchmarkId::new("get", "zipf1.0"), |b| {
        b.iter(|| {
            for k in &keys {
                black_box(cache.get(k));
            }
        })
    });
    group.bench_function(BenchmarkId::new("insert", "zipf1.0"), |b| {
        b.iter(|| {
            for &k in &keys {
                cache.insert(k, k);
            }
        })
    });
    group.bench_function(BenchmarkId::new("get_or_insert", "zipf1.0"), |b| {
        b.iter(|| {
            for &k in &keys {
                if cache.get(&k).is_none() {
                    cache.insert(k, k);
                }
            }
        })
    });
    group.finish();
}

fn facade(c: &mut Criterion) {
    let keys = zipf_keys(KEYS, 1.0, OPS, 42);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    let cache: Cache<u64, u64> = rt
        .block_on(Cache::builder().max_capacity(CAPACITY).build())
        .expect("a cache");
    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(OPS as u64));
    group.bench_function(BenchmarkId::new("get_or_insert", "zipf1.0"), |b| {
        b.iter(|| {
            rt.block_on(async {
                for &k in &keys {
                    if cache.get(&k).await.expect("no tier can fail").is_none() {
                        cache.insert(k, k).await.expect("valid input");
                    }
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, engine, facade);
criterion_main!(benches);
