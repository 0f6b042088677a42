//! A service that restarts warm. Each run builds a cache with a disk tier
//! and a snapshot of its hot tier, answers 10,000 requests for Zipf-
//! distributed keys from a slow backing service (2 ms a call), and stops;
//! dropping the cache saves the snapshot. The example runs the service
//! twice, as a restart would: the first run starts cold, the second loads
//! the snapshot at `build` and answers its first requests from memory.
//! Between the two it also warms the hot tier from the disk tier with a
//! warmer, showing its progress as a bar.
//!
//! Run it with `cargo run -p tiercache --example warm_restart`; it keeps
//! its files in a temporary directory (or in the one given as its first
//! argument, so that running it again starts warm from the first run).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use tiercache::Cache;

const KEYS: u64 = 50_000;
const REQUESTS: usize = 10_000;
const FIRST: usize = 1_000;

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let kept = std::env::args().nth(1);
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = kept.as_deref().map_or(temp.path(), Path::new);
    std::fs::create_dir_all(dir).expect("the example's directory");
    let calls = Arc::new(AtomicU64::new(0));
    for run in 1..=2 {
        serve(dir, run, &calls).await?;
    }
    warm_from_disk(dir, &calls).await
}

/// The cache of one run: 5,000 entries in memory over a disk tier, a
/// snapshot saved every 30 s and at shutdown, and the slow service as
/// its loader.
async fn cache(dir: &Path, calls: &Arc<AtomicU64>) -> Result<Cache<u64, String>, tiercache::Error> {
    let calls = calls.clone();
    Cache::builder()
        .max_capacity(5_000)
        .time_to_live(Duration::from_secs(3_600))
        .disk(dir.join("cache.redb"))
        .snapshot(dir.join("hot.snapshot"), Duration::from_secs(30))
        .loader(move |id: u64| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok::<_, tiercache::Error>(Some(format!("profile of user {id}")))
            }
        })
        .build()
        .await
}

/// One run of the service.
async fn serve(dir: &Path, run: u32, calls: &Arc<AtomicU64>) -> Result<(), tiercache::Error> {
    let started = Instant::now();
    let cache = cache(dir, calls).await?;
    let loaded = cache.snapshot_stats();
    println!(
        "run {run}: built in {:.0} ms with {} entries in memory ({} snapshot loaded)",
        started.elapsed().as_secs_f64() * 1e3,
        cache.entry_count(),
        if loaded.loads > 0 { "a" } else { "no" },
    );
    let zipf = Zipf::new(KEYS as f64, 1.0).expect("a valid Zipf distribution");
    let mut rng = StdRng::seed_from_u64(u64::from(run));
    let (mut first_hits, mut hits) = (0, 0);
    let before = calls.load(Ordering::Relaxed);
    for i in 0..REQUESTS {
        let key = zipf.sample(&mut rng) as u64;
        let hot = cache.hot().contains_key(&key);
        cache.get(&key).await?;
        if hot {
            hits += 1;
            if i < FIRST {
                first_hits += 1;
            }
        }
    }
    println!(
        "run {run}: hot-tier hit ratio {:.1} % over the first {FIRST} requests, {:.1} % over all {REQUESTS}; {} calls to the service",
        100.0 * first_hits as f64 / FIRST as f64,
        100.0 * hits as f64 / REQUESTS as f64,
        calls.load(Ordering::Relaxed) - before,
    );
    // Dropping the last handle saves the snapshot (a clean shutdown).
    drop(cache);
    Ok(())
}

/// A third start, with the hot tier warmed from the disk tier's keys
/// instead: a warmer copies them up, a few at a time, with a progress bar.
async fn warm_from_disk(dir: &Path, calls: &Arc<AtomicU64>) -> Result<(), tiercache::Error> {
    std::fs::remove_file(dir.join("hot.snapshot")).ok();
    let cache = cache(dir, calls).await?;
    let warmer = cache
        .warmer()
        .source(cache.warm_from_tier(0)?)
        .concurrency(8)
        .rate_limit(Some(50_000))
        .on_progress(|p| {
            let width = 40;
            let filled = (p.fraction() * width as f64) as usize;
            print!(
                "\rwarming from disk [{}{}] {}/{}",
                "#".repeat(filled),
                " ".repeat(width - filled),
                p.done,
                p.total
            );
            std::io::stdout().flush().ok();
        })
        .build()?;
    let report = warmer.run().await;
    println!();
    println!(
        "warmed {} entries from the disk tier ({} already present, {} failed) in {:.0} ms; {} in memory",
        report.warmed,
        report.present,
        report.failed,
        report.elapsed.as_secs_f64() * 1e3,
        cache.entry_count()
    );
    Ok(())
}
