//! Negative caching and bypass rules in front of a slow lookup service:
//! keys that do not exist are remembered as such (one call to the service
//! however many requests ask, then none until the negative entry
//! expires), chosen errors are remembered for a while, and keys that must
//! never be cached bypass the cache. Needs no server: the service is a map
//! that answers after two milliseconds.
//!
//! Run it with `cargo run -p tiercache --example negative_caching`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tiercache::{Cache, PatternBypass};

/// A directory service: a few users, with a round trip on every call.
struct Directory {
    users: HashMap<String, String>,
    calls: AtomicU64,
}

/// The service's error for an account it may not show.
#[derive(Debug)]
struct Forbidden;

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("forbidden")
    }
}

impl std::error::Error for Forbidden {}

impl Directory {
    async fn find(&self, id: &str) -> Result<Option<String>, Forbidden> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if id.starts_with("admin:") {
            return Err(Forbidden);
        }
        Ok(self.users.get(id).cloned())
    }
}

#[tokio::main]
async fn main() -> tiercache::Result<()> {
    let directory = Arc::new(Directory {
        users: HashMap::from([("user:1".to_string(), "Ada".to_string())]),
        calls: AtomicU64::new(0),
    });
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(10_000)
        .time_to_live(Duration::from_secs(600))
        // Keys that do not exist are remembered for a minute.
        .negative_ttl(Duration::from_secs(60))
        // "Forbidden" is remembered for ten seconds; other errors are not.
        .cache_errors(|e| e.is::<Forbidden>().then_some(Duration::from_secs(10)))
        // One-time tokens are never cached.
        .bypass(PatternBypass::new(["token:*"]))
        .build()
        .await?;

    // A thousand concurrent requests for a user that does not exist: one
    // call to the directory, and every request answered "none".
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let (cache, directory) = (cache.clone(), directory.clone());
            tokio::spawn(async move {
                cache
                    .optionally_get_with("user:404".to_string(), async {
                        directory.find("user:404").await.ok().flatten()
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("the task ran")?, None);
    }
    println!(
        "1,000 requests for a missing user: {} call(s) to the directory",
        directory.calls.load(Ordering::Relaxed)
    );
    // Later lookups are answered by the negative entry.
    assert_eq!(cache.get(&"user:404".to_string()).await?, None);

    // A user that exists is cached as usual.
    let ada = cache
        .optionally_get_with("user:1".to_string(), async {
            directory.find("user:1").await.ok().flatten()
        })
        .await?;
    println!("user:1 is {ada:?}");

    // A forbidden account: the error is remembered, so the second request
    // fails at once without calling the directory.
    for _ in 0..2 {
        let before = directory.calls.load(Ordering::Relaxed);
        let found = cache
            .try_get_with("admin:root".to_string(), async {
                directory
                    .find("admin:root")
                    .await
                    .map(|v| v.unwrap_or_default())
            })
            .await;
        println!(
            "admin:root: {} ({} call(s) to the directory)",
            found.map_err(|e| e.to_string()).unwrap_err(),
            directory.calls.load(Ordering::Relaxed) - before
        );
    }

    // A one-time token bypasses the cache: stored nowhere.
    cache
        .insert("token:abc".to_string(), "one use".to_string())
        .await?;
    assert_eq!(cache.get(&"token:abc".to_string()).await?, None);

    let stats = cache.load_stats();
    println!(
        "negative hits {}, negative entries stored {}, errors remembered {}, \
         remembered errors answered {}, bypassed writes {}, bypassed lookups {}",
        stats.negative_hits,
        stats.negatives_stored,
        stats.errors_cached,
        stats.cached_errors_returned,
        stats.bypassed_sets,
        stats.bypassed_gets,
    );
    Ok(())
}
