//! Two caches, each with its own hot tier, share one Redis through the
//! facade's `.redis(url)` and see each other's writes; with `.disk` as well
//! the stack is memory → redb → Redis.

use std::time::Duration;

use tiercache::Cache;
use tiercache_tests::RedisServer;

async fn cache_on(url: &str) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(1_000)
        .redis(url)
        .build()
        .await
        .expect("a cache over the test server")
}

/// Retries `f` until it gives `Some` or ten seconds pass: the Redis tier
/// connects in the background after the build.
async fn eventually<T, F, Fut>(mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(v) = f().await {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_on_one_redis_see_each_others_writes() {
    let Some(server) = RedisServer::start("two_caches_on_one_redis_see_each_others_writes") else {
        return;
    };
    let a = cache_on(&server.url()).await;
    let b = cache_on(&server.url()).await;

    // Written by `a` once its Redis tier is up; `b` has never seen the key,
    // so its hot tier misses and the value comes from Redis.
    let written = eventually(|| async {
        let before = a.tier_stats()[1].errors;
        a.insert("greeting".into(), "hello".into()).await.ok()?;
        (a.tier_stats()[1].errors == before).then_some(())
    })
    .await;
    assert!(written.is_some(), "cache a never reached Redis");
    let seen = eventually(|| async { b.get(&"greeting".to_string()).await.ok().flatten() }).await;
    assert_eq!(
        seen.as_deref(),
        Some("hello"),
        "b reads a's write from Redis"
    );
    // Now in b's hot tier too.
    assert_eq!(
        b.hot().get(&"greeting".to_string()).as_deref(),
        Some("hello")
    );

    // A removal by b reaches Redis, so a key a never cached stays gone.
    b.insert("only-in-redis".into(), "x".into()).await.unwrap();
    assert_eq!(
        a.get(&"only-in-redis".to_string())
            .await
            .unwrap()
            .as_deref(),
        Some("x")
    );
    b.remove(&"only-in-redis".to_string()).await.unwrap();
    a.hot().remove(&"only-in-redis".to_string());
    assert_eq!(a.get(&"only-in-redis".to_string()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_disk_and_redis_the_stack_is_memory_redb_redis() {
    let Some(server) = RedisServer::start("with_disk_and_redis_the_stack_is_memory_redb_redis")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(10)
        .redis(&server.url())
        .disk(dir.path().join("tier.redb"))
        .build()
        .await
        .unwrap();
    let names: Vec<String> = cache.tier_stats().iter().map(|t| t.name.clone()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[1].contains("redb"), "{names:?}");
    assert!(names[2].contains("redis"), "{names:?}");
}
