//! Every duration the Redis tier's builder takes accepts `Duration::MAX`
//! (as no limit) without a panic, at build or in use on a real server:
//! calls, waiting for a connection, and a circuit breaker that opens.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ErrorKind, Meta};
use tiercache_tests::RedisServer;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_max_everywhere_works_and_never_panics() {
    let Some(mut server) = RedisServer::start("duration_max_everywhere_works_and_never_panics")
    else {
        return;
    };
    let tier = RedisBackend::builder(server.url())
        .prefix("huge:")
        .command_timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        // The first delay also passes before the first connection attempt
        // (fred's reconnection policy runs from the start), so a first
        // delay of Duration::MAX never connects; the builder's unit test
        // covers it without a server.
        .reconnect_delay(Duration::from_millis(10), Duration::MAX)
        .breaker_threshold(1)
        .breaker_open_for(Duration::MAX)
        .build()
        .await
        .expect("Duration::MAX is accepted for every duration");
    tier.wait_for_connection(Duration::MAX)
        .await
        .expect("connected");

    tier.insert(
        "k".into(),
        Entry::new(Bytes::from_static(b"v"), Meta::new(0)),
    )
    .await
    .unwrap();
    assert!(tier.get(b"k").await.unwrap().is_hit());
    assert_eq!(tier.len().await.unwrap(), 1);
    assert!(tier.remove(b"k").await.unwrap());

    // An outage opens the breaker, which adds its open time to the clock.
    server.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while tier.stats().open_breakers == 0 {
        assert!(Instant::now() < deadline, "the breaker never opened");
        let failed = tokio::time::timeout(Duration::from_secs(1), tier.get(b"k")).await;
        if let Ok(result) = failed {
            assert!(result.is_err(), "a stopped server answered");
        }
    }
    let err = tier.get(b"k").await.expect_err("the breaker refuses");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(tier.stats().breaker_trips, 1);
}
