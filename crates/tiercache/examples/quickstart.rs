//! Memoizes a slow function under a skewed (Zipf) workload and reports how
//! the cache did. Needs no server: the hot tier is in memory and the disk
//! tier is a redb file in a temporary directory, removed at the end.
//!
//! Run it with `cargo run --release -p tiercache --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use tiercache::Cache;

const KEYS: u64 = 20_000;
const CAPACITY: u64 = 5_000;
const REQUESTS: usize = 200_000;
const CALLERS: usize = 64;
const ZIPF_EXPONENT: f64 = 1.0;

/// The expensive function being memoized: it stands for a database query
/// or a remote call that takes about a millisecond.
async fn slow_report(id: u64) -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    format!("report #{id}: {}", id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// One call's latency and whether its own loader ran.
struct Sample {
    nanos: u64,
    loaded: bool,
}

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(Duration::from_secs(600))
        .disk(dir.path().join("quickstart.redb"))
        .build()
        .await?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let cache = cache.clone();
        tasks.push(tokio::spawn(async move {
            let zipf = Zipf::new(KEYS as f64, ZIPF_EXPONENT).expect("valid Zipf parameters");
            let mut rng = StdRng::seed_from_u64(caller as u64);
            let mut samples = Vec::with_capacity(REQUESTS / CALLERS);
            for _ in 0..REQUESTS / CALLERS {
                let id = zipf.sample(&mut rng) as u64;
                let loaded = Arc::new(AtomicBool::new(false));
                let flag = loaded.clone();
                let t = Instant::now();
                let report = cache
                    .get_with(id, async move {
                        flag.store(true, Ordering::Relaxed);
                        slow_report(id).await
                    })
                    .await?;
                let nanos = t.elapsed().as_nanos() as u64;
                assert!(report.starts_with("report #"));
                samples.push(Sample {
                    nanos,
                    loaded: loaded.load(Ordering::Relaxed),
                });
            }
            Ok::<_, tiercache::Error>(samples)
        }));
    }
    let mut samples = Vec::with_capacity(REQUESTS);
    for t in tasks {
        samples.extend(t.await.expect("a caller panicked")?);
    }
    let elapsed = started.elapsed();

    let tiers = cache.tier_stats();
    let (hot, disk) = (&tiers[0], &tiers[1]);
    let mut all: Vec<u64> = samples.iter().map(|s| s.nanos).collect();
    let mut loads: Vec<u64> = samples
        .iter()
        .filter(|s| s.loaded)
        .map(|s| s.nanos)
        .collect();
    let mut served: Vec<u64> = samples
        .iter()
        .filter(|s| !s.loaded)
        .map(|s| s.nanos)
        .collect();
    // A call that missed memory, was not answered by the disk and did not
    // run its own loader waited for another caller's load of the same key
    // (single flight).
    let waited = hot.misses.saturating_sub(disk.hits + loads.len() as u64);
    let requests = samples.len() as u64;

    println!(
        "tiercache quickstart: {requests} requests from {CALLERS} concurrent callers, \
         Zipf({ZIPF_EXPONENT}) over {KEYS} keys, hot tier of {CAPACITY} entries over a redb file"
    );
    println!(
        "  hit ratio        {:6.2} %   (memory {:.2} %, then disk {} hits)",
        (hot.hits + disk.hits) as f64 * 100.0 / requests as f64,
        hot.hit_ratio() * 100.0,
        disk.hits
    );
    println!(
        "  get latency      p50 {:>10}   p99 {:>10}   (all calls)",
        fmt_ns(percentile(&mut all, 50.0)),
        fmt_ns(percentile(&mut all, 99.0))
    );
    println!(
        "  served, no load  p50 {:>10}   p99 {:>10}   ({} calls)",
        fmt_ns(percentile(&mut served, 50.0)),
        fmt_ns(percentile(&mut served, 99.0)),
        served.len()
    );
    println!(
        "  loads            p50 {:>10}   p99 {:>10}   ({} calls, {waited} more waited on a load already running)",
        fmt_ns(percentile(&mut loads, 50.0)),
        fmt_ns(percentile(&mut loads, 99.0)),
        loads.len()
    );
    let ratio = percentile(&mut loads, 50.0) as f64 / percentile(&mut served, 50.0).max(1) as f64;
    println!("  a load took      {ratio:.0}x as long as a call served from the cache (medians)");
    println!(
        "  entries          {} in memory, {} promoted from disk",
        cache.entry_count(),
        cache.hierarchy_stats().promotions
    );
    println!("  wall time        {:.2?}", elapsed);
    if let Some(stats) = cache.stats().await {
        println!();
        print!("{}", stats.report());
    }
    Ok(())
}

fn percentile(samples: &mut [u64], p: f64) -> u64 {
    if samples.is_empty() {
        return 0;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        _ => format!("{:.2} ms", ns as f64 / 1e6),
    }
}
