//! `remove` on the Redis tier reports whether a live entry went (live,
//! expired by the record's own expiry, absent, or not a record) without
//! fetching the value: removing a large value moves a few bytes, not the
//! value.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ManualClock, Meta};
use tiercache_tests::{RedisServer, connected};

/// A value of 8 MiB.
const LARGE: usize = 8 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_large_value_reports_liveness_without_fetching_it() {
    let Some(server) =
        RedisServer::start("removing_a_large_value_reports_liveness_without_fetching_it")
    else {
        return;
    };
    let clock = ManualClock::new(1_700_000_000_000);
    let tier = connected(
        RedisBackend::builder(server.url())
            .prefix("rm:")
            .clock(clock.clock())
            // Writing 8 MiB in a debug build on a busy machine.
            .command_timeout(Duration::from_secs(10)),
    )
    .await;
    let raw = |key: &str| String::from_utf8(tier.redis_key(key.as_bytes()).to_vec()).unwrap();
    let large = Bytes::from(vec![7u8; LARGE]);
    let now = clock.now_ms();

    // Live: removed, and reported.
    tier.insert("live".into(), Entry::new(large.clone(), Meta::new(now)))
        .await
        .unwrap();
    let sent_before = server.info_number("stats", "total_net_output_bytes");
    assert!(tier.remove(b"live").await.unwrap(), "a live entry went");
    let sent = server.info_number("stats", "total_net_output_bytes") - sent_before;
    assert!(
        sent < 64 << 10,
        "remove moved {sent} bytes for an 8 MiB value"
    );
    assert_eq!(server.cli(&["EXISTS", &raw("live")]), "0");

    // Expired by the record's header: the tier's clock has passed the
    // expiry while Redis, on its own clock, still holds the key.
    let expiring = Meta::new(now).expires_at(Some(now + 60_000));
    tier.insert("expired".into(), Entry::new(large.clone(), expiring))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(120));
    assert_eq!(server.cli(&["EXISTS", &raw("expired")]), "1");
    assert!(
        !tier.remove(b"expired").await.unwrap(),
        "an expired entry counted as live"
    );
    assert_eq!(
        server.cli(&["EXISTS", &raw("expired")]),
        "0",
        "but it is removed"
    );

    // Absent.
    assert!(!tier.remove(b"absent").await.unwrap());

    // Not a record (garbage, another type): removed, counted, not live.
    server.cli(&["SET", &raw("garbage"), "not a record"]);
    server.cli(&["RPUSH", &raw("list"), "x"]);
    assert!(!tier.remove(b"garbage").await.unwrap());
    assert!(!tier.remove(b"list").await.unwrap());
    assert_eq!(server.cli(&["EXISTS", &raw("garbage"), &raw("list")]), "0");
    assert_eq!(tier.stats().corrupted, 2);

    let calls = server.command_calls();
    assert!(!calls.contains_key("getdel"), "{calls:?}");
}
