//! Support code for tiercache's cross-crate tests: building tier stacks on a
//! manual clock with tiers the test can reach into, and real Redis servers
//! for the Redis tier's tests.

use std::sync::Arc;
use std::time::Duration;

use cache_core::FailingBackend;
use tiercache::memory::MemoryBackend;
use tiercache::tier::DynBackend;
use tiercache::{Cache, CacheBuilder, ManualClock};

pub mod counting_loader;
mod gate;
pub mod history;
pub mod protect_support;
mod redis_server;
mod store;

pub use gate::{Gate, Gated};
pub use redis_server::{
    REQUIRE_REDIS_ENV, RedisCluster, RedisSentinel, RedisServer, connected, redis_available,
    unused_port,
};
pub use store::{StoreCalls, TestStore};

/// A byte tier under test: a memory backend behind a fault switch, shared
/// between the cache and the test.
pub type TestTier = Arc<FailingBackend<MemoryBackend>>;

/// A cache over `n` byte tiers, all on one manual clock.
pub struct Stack {
    /// The cache under test.
    pub cache: Cache<String, String>,
    /// Its byte tiers, nearest first.
    pub tiers: Vec<TestTier>,
    /// The clock every tier reads.
    pub clock: ManualClock,
}

/// Builds a [`Stack`] with a hot tier of `hot_capacity` entries, `n` byte
/// tiers of 16 MiB each and an optional time-to-live.
pub async fn stack(hot_capacity: u64, n: usize, ttl: Option<Duration>) -> Stack {
    stack_with(hot_capacity, n, ttl, |b| b).await
}

/// [`stack`], with more settings made by `configure` on the builder.
pub async fn stack_with(
    hot_capacity: u64,
    n: usize,
    ttl: Option<Duration>,
    configure: impl FnOnce(CacheBuilder<String, String>) -> CacheBuilder<String, String>,
) -> Stack {
    let clock = ManualClock::default();
    let tiers: Vec<TestTier> = (0..n)
        .map(|_| {
            Arc::new(FailingBackend::new(
                MemoryBackend::builder()
                    .max_bytes(16 << 20)
                    .clock(clock.clock())
                    .build(),
            ))
        })
        .collect();
    let mut b = Cache::builder()
        .max_capacity(hot_capacity)
        .clock(clock.clock());
    if let Some(ttl) = ttl {
        b = b.time_to_live(ttl);
    }
    for t in &tiers {
        b = b.tier(t.clone() as Arc<dyn DynBackend>);
    }
    Stack {
        cache: configure(b).build().await.expect("a valid test stack"),
        tiers,
        clock,
    }
}

/// The bytes a [`Stack`]'s tiers store for the key `k`.
pub fn key_bytes(k: &str) -> bytes::Bytes {
    use tiercache::Codec;
    bytes::Bytes::from(
        tiercache::Postcard
            .encode(&k.to_string())
            .expect("a string encodes"),
    )
}

/// What tier `tier` of a stack holds for `k`: the value and its entry.
pub async fn held(tier: &TestTier, k: &str) -> Option<(String, tiercache::tier::Entry)> {
    use tiercache::Codec;
    use tiercache::tier::Backend;
    match tier
        .inner()
        .get(&key_bytes(k))
        .await
        .expect("a healthy tier answers")
    {
        tiercache::Lookup::Hit(entry) => {
            let value = tiercache::Postcard
                .decode(&entry.value)
                .expect("a string decodes");
            Some((value, entry))
        }
        _ => None,
    }
}

/// The string value a byte tier holds for the key `k`, read from the tier
/// itself (not through a cache).
pub async fn held_in(tier: &impl tiercache::tier::Backend, k: &str) -> Option<String> {
    use tiercache::Codec;
    match tier
        .get(&key_bytes(k))
        .await
        .expect("a healthy tier answers")
    {
        tiercache::Lookup::Hit(entry) => Some(
            tiercache::Postcard
                .decode(&entry.value)
                .expect("a string decodes"),
        ),
        _ => None,
    }
}
