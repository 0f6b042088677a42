//! A caller that gives up on a Redis call before the command timeout (its
//! future dropped, as by a `tokio::time::timeout` of its own) says nothing
//! about the server's health: however many do, the circuit breaker stays
//! closed and the tier answers once the server does.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, Meta};
use tiercache_tests::{RedisServer, connected};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_side_timeouts_do_not_open_the_breaker() {
    let Some(server) = RedisServer::start("caller_side_timeouts_do_not_open_the_breaker") else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(server.url())
            .prefix("impatient:")
            // Far longer than the callers wait, so no call the test makes
            // runs into it.
            .command_timeout(Duration::from_secs(60))
            .breaker_threshold(2),
    )
    .await;
    tier.insert(
        "k".into(),
        Entry::new(Bytes::from_static(b"v"), Meta::new(0)),
    )
    .await
    .unwrap();

    // A paused server keeps its connections open and answers nothing, so
    // every call below is still waiting when its caller gives up.
    server.pause();
    for attempt in 0..10 {
        let call = tokio::time::timeout(Duration::from_millis(20), tier.get(b"k")).await;
        // Nothing can answer, so a call that ends was refused by the tier:
        // a breaker opened by the cancellations before.
        if let Ok(result) = call {
            panic!("call {attempt} to a paused server ended: {result:?}");
        }
    }
    let stats = tier.stats();
    server.resume();
    assert_eq!(
        stats.breaker_trips, 0,
        "caller cancellations opened the breaker"
    );
    assert_eq!(stats.open_breakers, 0);
    assert_eq!(stats.failures, 0);
    assert!(tier.get(b"k").await.unwrap().is_hit());
    assert_eq!(tier.stats().breaker_trips, 0);
}
