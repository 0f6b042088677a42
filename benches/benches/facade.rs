//! Single-threaded throughput of the async facade (`tiercache::Cache`,
//! memory tier only) under a Zipf(1.0) workload: what the typed API adds
//! over the engine. The engine alone, beside its peers and at more than one
//! thread, is measured by the `throughput` bench.
// criterion's macros define public functions without doc comments.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tiercache::Cache;
use tiercache_benches::zipf_keys;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
const OPS: usize = 100_000;

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

criterion_group!(benches, facade);
criterion_main!(benches);
