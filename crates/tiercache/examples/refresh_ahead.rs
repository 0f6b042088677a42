//! Refresh-ahead and stale-if-error in front of a price service: entries
//! live one second, and a hit on one older than 0.8 s answers at once
//! while the cache reloads it in the background, so readers almost never
//! wait for the service. When the service fails, a value expired less than
//! five seconds ago is served instead of the error. Needs no server: the
//! service is a counter that answers after two milliseconds.
//!
//! Run it with `cargo run -p tiercache --example refresh_ahead`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tiercache::{Cache, Error, ErrorKind};

/// A price service: each call answers a newer price, after a round trip.
#[derive(Default)]
struct Prices {
    calls: AtomicU64,
    down: AtomicBool,
}

impl Prices {
    async fn price(&self, item: u64) -> tiercache::Result<Option<u64>> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.down.load(Ordering::Relaxed) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the price service is down",
            ));
        }
        Ok(Some(item * 100 + call))
    }
}

#[tokio::main]
async fn main() -> tiercache::Result<()> {
    let prices = Arc::new(Prices::default());
    let service = prices.clone();
    let cache: Cache<u64, u64> = Cache::builder()
        .time_to_live(Duration::from_secs(1))
        // The cache's own loader: `get` loads through it on a miss, and
        // refresh-ahead reloads with it.
        .loader(move |item: u64| {
            let service = service.clone();
            async move { service.price(item).await }
        })
        .refresh_after_write(Duration::from_millis(800))
        .stale_if_error(Duration::from_secs(5))
        .load_timeout(Duration::from_millis(500))
        .build()
        .await?;

    // Three seconds of reads of one item, every 10 ms: after the first
    // miss, hits only, the entry refreshed in the background about every
    // 0.8 s.
    let started = Instant::now();
    let (mut reads, mut waited) = (0, 0);
    while started.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        let price = cache.get(&7).await?;
        assert!(price.is_some());
        if t.elapsed() >= Duration::from_millis(1) {
            waited += 1;
        }
        reads += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = cache.load_stats();
    println!(
        "{reads} reads in 3 s: {waited} waited for the service, {} background refreshes, \
         {} calls to the service",
        stats.refreshes,
        prices.calls.load(Ordering::Relaxed)
    );

    // The service goes down and the entry expires: the last price is
    // served, flagged stale in the statistics, instead of the error.
    prices.down.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let price = cache.get(&7).await?;
    println!(
        "with the service down, get(7) = {price:?} (stale answers: {})",
        cache.load_stats().stale_served
    );
    Ok(())
}
