//! Caches the answers of an expensive text-generation call, keyed by the
//! prompt, in memory over a compressed redb file, and reports the hit rate,
//! the time the cache saved and the bytes compression saved.
//!
//! The "model" here is a stand-in that takes 20 ms and writes a few
//! kilobytes of text per prompt, as a hosted model's answers would. Prompts
//! follow a skewed (Zipf) popularity, as real traffic does. Run it with
//! `cargo run --release -p tiercache --example llm_responses`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use tiercache::Cache;

const PROMPTS: u64 = 2_000;
const REQUESTS: usize = 4_000;
const CALLERS: usize = 32;
const MODEL_LATENCY: Duration = Duration::from_millis(20);

/// Calls to the stand-in model.
static GENERATED: AtomicU64 = AtomicU64::new(0);

/// The expensive call: a prompt in, a few kilobytes of prose out.
async fn generate(prompt: &str) -> String {
    tokio::time::sleep(MODEL_LATENCY).await;
    GENERATED.fetch_add(1, Ordering::Relaxed);
    let words = [
        "the",
        "a",
        "cache",
        "tier",
        "memory",
        "disk",
        "latency",
        "answer",
        "model",
        "token",
        "request",
        "eviction",
        "promotion",
        "compression",
        "keeps",
        "serves",
        "returns",
        "holds",
        "expires",
        "fast",
        "slow",
        "remote",
        "local",
        "value",
        "key",
        "hit",
        "miss",
        "ratio",
        "of",
        "and",
        "to",
        "in",
        "when",
        "because",
        "every",
        "some",
        "which",
        "its",
        "from",
        "store",
        "reads",
        "writes",
        "Redis",
        "redb",
        "bytes",
        "seconds",
        "users",
        "traffic",
    ];
    // A small generator seeded by the prompt: the same prompt always gets
    // the same answer, and answers read like (and compress like) prose
    // rather than a repeating pattern.
    let mut state = prompt.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
    let mut text = format!("Answer to \"{prompt}\":");
    for i in 0..600 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push(' ');
        text.push_str(words[(state % words.len() as u64) as usize]);
        if i % 12 == 11 {
            text.push('.');
        }
    }
    text
}

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let cache: Cache<String, String> = Cache::builder()
        // Memory for the few hundred most popular answers; the disk tier
        // (compressed with lz4 by default) holds the rest for a day.
        .max_capacity(300)
        .class("llm-response", Duration::from_secs(24 * 3600))
        .disk(dir.path().join("answers.redb"))
        .build()
        .await?;

    let started = Instant::now();
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let cache = cache.clone();
        callers.push(tokio::spawn(async move {
            let zipf = Zipf::new(PROMPTS as f64, 0.9).expect("valid Zipf parameters");
            let mut rng = StdRng::seed_from_u64(caller as u64);
            for _ in 0..REQUESTS / CALLERS {
                let prompt = format!("question number {}", zipf.sample(&mut rng) as u64);
                let answer = match cache.get(&prompt).await? {
                    Some(answer) => answer,
                    None => {
                        let answer = generate(&prompt).await;
                        cache
                            .insert_with_class(prompt.clone(), answer.clone(), "llm-response")
                            .await?;
                        answer
                    }
                };
                assert!(answer.starts_with("Answer to"));
            }
            Ok::<_, tiercache::Error>(())
        }));
    }
    for caller in callers {
        caller.await.expect("a caller panicked")?;
    }
    let elapsed = started.elapsed();

    let generated = GENERATED.load(Ordering::Relaxed);
    let served = REQUESTS as u64 - generated;
    let tiers = cache.tier_stats();
    println!("{REQUESTS} requests over {PROMPTS} prompts from {CALLERS} callers in {elapsed:.2?}");
    println!(
        "  hit rate          {:.1} % ({served} answers from the cache: {} from memory, {} from disk)",
        served as f64 * 100.0 / REQUESTS as f64,
        tiers[0].hits,
        tiers[1].hits
    );
    println!(
        "  model calls       {generated}, saving about {:.1} s of generation",
        (served as f64 * MODEL_LATENCY.as_secs_f64())
    );
    for (tier, stats) in cache.compression_stats() {
        for a in stats.algorithms.iter().filter(|a| a.values > 0) {
            println!(
                "  compression       {tier} with {}: {} answers, {} KiB stored as {} KiB ({:.0} % saved)",
                a.name,
                a.values,
                a.bytes_in / 1024,
                a.bytes_out / 1024,
                (1.0 - a.ratio()) * 100.0
            );
        }
    }
    Ok(())
}
