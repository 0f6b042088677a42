//! A backend built while nothing listens at its address: `build` returns
//! at once, and every call fails fast with `Unavailable` instead of
//! waiting for the command timeout.
//!
//! (Named `unreachable_redis`, not `redis_*`: it needs no server, and
//! `cargo xtask test` skips the `redis_*` binaries when there is none.)

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ErrorKind, Meta, Result};
use tiercache_tests::unused_port;

/// Far above what a fast failure takes, so a call that waited for it
/// instead of failing fast is caught.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
const FAST: Duration = Duration::from_secs(1);

fn fails_fast<T: std::fmt::Debug>(what: &str, started: Instant, result: Result<T>) {
    let took = started.elapsed();
    let err = result.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{what}: {err}");
    assert!(took < FAST, "{what} took {took:?}");
}

async fn check_calls(tier: &RedisBackend) {
    let t = Instant::now();
    fails_fast("get", t, tier.get(b"k").await);
    let t = Instant::now();
    fails_fast(
        "insert",
        t,
        tier.insert("k".into(), Entry::new(&b"v"[..], Meta::new(0)))
            .await,
    );
    let t = Instant::now();
    fails_fast("remove", t, tier.remove(b"k").await);
    let t = Instant::now();
    fails_fast("get_many", t, tier.get_many(&[Bytes::from("k")]).await);
    let t = Instant::now();
    fails_fast("len", t, tier.len().await);
    let t = Instant::now();
    fails_fast("clear", t, tier.clear().await);
    for _ in 0..10 {
        let t = Instant::now();
        fails_fast("get", t, tier.get(b"k").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_fails_fast() {
    let url = format!("redis://127.0.0.1:{}", unused_port());
    let started = Instant::now();
    let tier = RedisBackend::builder(url)
        .command_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("build does not need the server");
    assert!(
        started.elapsed() < FAST,
        "build took {:?}",
        started.elapsed()
    );
    check_calls(&tier).await;
    let stats = tier.stats();
    assert!(stats.breaker_trips >= 1, "the breaker opened: {stats:?}");
    assert_eq!(stats.connected, 0);
    let err = tier
        .wait_for_connection(Duration::from_millis(100))
        .await
        .expect_err("nothing to connect to");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_that_is_not_there_fails_fast() {
    let url = format!("redis-cluster://127.0.0.1:{}", unused_port());
    let started = Instant::now();
    let tier = RedisBackend::builder(url)
        .command_timeout(COMMAND_TIMEOUT)
        .build()
        .await
        .expect("build does not need the cluster");
    assert!(
        started.elapsed() < FAST,
        "build took {:?}",
        started.elapsed()
    );
    check_calls(&tier).await;
}

#[cfg(not(feature = "redis-tls"))]
#[tokio::test]
async fn tls_without_its_feature_is_a_configuration_error() {
    let err = RedisBackend::builder("rediss://127.0.0.1:6380")
        .build()
        .await
        .expect_err("rediss:// needs the redis-tls feature");
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
}

#[cfg(feature = "redis-tls")]
#[tokio::test]
async fn tls_with_its_feature_builds_and_fails_fast_without_a_server() {
    let port = unused_port();
    let tier = RedisBackend::builder(format!("rediss://127.0.0.1:{port}"))
        .build()
        .await
        .expect("rediss:// is accepted with the redis-tls feature");
    let started = Instant::now();
    let err = tier
        .get(b"k")
        .await
        .expect_err("nothing listens on the port");
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a call waited {:?}",
        started.elapsed()
    );
}
