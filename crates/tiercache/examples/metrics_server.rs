//! Runs a workload on a cache with analytics and serves its metrics for
//! Prometheus at `http://127.0.0.1:PORT/metrics`, where PORT comes from
//! `TIERCACHE_METRICS_PORT` (9000 by default), until it is stopped (Ctrl-C).
//!
//! Run it with
//! `cargo run -p tiercache --example metrics_server --features prometheus`
//! and scrape it, or point the dashboard in `docs/grafana/tiercache.json`
//! at a Prometheus that does.

use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use tiercache::Cache;

const KEYS: u64 = 50_000;

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let port: u16 = match std::env::var("TIERCACHE_METRICS_PORT") {
        Ok(text) => text.parse().map_err(|_| {
            tiercache::Error::new(
                tiercache::ErrorKind::InvalidConfig,
                format!("TIERCACHE_METRICS_PORT must be a port number, not `{text}`"),
            )
        })?,
        Err(_) => 9000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    tiercache::analytics::serve_prometheus(addr)?;
    tiercache::analytics::describe_metrics();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(5_000)
        .time_to_live(Duration::from_secs(120))
        .disk(dir.path().join("metrics.redb"))
        .build()
        .await?;
    println!("serving metrics on http://{addr}/metrics; stop with Ctrl-C");

    // A steady skewed workload, a few tasks at a time.
    for worker in 0..4u64 {
        let cache = cache.clone();
        tokio::spawn(async move {
            let zipf = Zipf::new(KEYS as f64, 1.0).expect("valid Zipf parameters");
            let mut rng = StdRng::seed_from_u64(worker);
            loop {
                let key = zipf.sample(&mut rng) as u64;
                let loaded = cache
                    .get_with(key, async move {
                        format!("value of {key}: {}", "x".repeat(200))
                    })
                    .await;
                if loaded.is_err() {
                    break;
                }
                // Keep the example's CPU use modest.
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        });
    }

    // The metrics are written from snapshots, once a second.
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => cache.emit_metrics().await,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}
