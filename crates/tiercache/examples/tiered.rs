//! The full stack: memory → redb → Redis, with the disk and Redis tiers
//! compressed (lz4) and two data classes: sessions that live in memory only
//! for five minutes, and model answers that live in every tier for a day.
//!
//! Run it with `cargo run -p tiercache --example tiered`. It uses the Redis
//! at `REDIS_URL` (`redis://127.0.0.1:6379` by default); without one it
//! still runs, and the Redis tier is skipped and counted as failing.

use std::time::Duration;

use tiercache::{Cache, Placement};

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(1_000)
        .time_to_live(Duration::from_secs(600))
        .class("session", Duration::from_secs(300))
        .class_placement("session", Placement::MemoryOnly)
        .class("answer", Duration::from_secs(24 * 3600))
        .disk(dir.path().join("tiered.redb"))
        .redis(&url)
        .build()
        .await?;
    // The Redis tier connects in the background; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    cache
        .insert_with_class("session:42".into(), "user=alice".into(), "session")
        .await?;
    let answer = "The hierarchy answers from memory first, then disk, then Redis. ".repeat(64);
    cache
        .insert_with_class("answer:what-is-tiercache".into(), answer.clone(), "answer")
        .await?;

    // Forget what memory holds: the answer comes back from the disk tier
    // (promoted, with its remaining day), the session is gone with memory.
    cache.hot().clear();
    let back = cache.get(&"answer:what-is-tiercache".into()).await?;
    assert_eq!(back.as_deref(), Some(answer.as_str()));
    let session = cache.get(&"session:42".into()).await?;
    println!("after clearing memory:");
    println!("  answer   {} bytes, from the tiers below", answer.len());
    println!("  session  {session:?} (memory only, so gone)");

    println!("tiers:");
    for t in cache.tier_stats() {
        println!(
            "  {:<6} hits {:>3}  misses {:>3}  errors {:>3}",
            t.name, t.hits, t.misses, t.errors
        );
    }
    println!("compression:");
    for (tier, stats) in cache.compression_stats() {
        for a in &stats.algorithms {
            if a.values > 0 {
                println!(
                    "  {tier:<6} {}: {} values, {} → {} bytes (ratio {:.2})",
                    a.name,
                    a.values,
                    a.bytes_in,
                    a.bytes_out,
                    a.ratio()
                );
            }
        }
    }
    if cache.tier_stats()[2].errors > 0 {
        println!("(Redis at {url} was not reachable: its tier was skipped)");
    }
    Ok(())
}
