//! A value under the cache's prefix that is not a valid record (garbage
//! written by another program, a damaged record, a key of another type)
//! is a miss, is deleted, and is counted.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, Lookup, Meta};
use tiercache_tests::{RedisServer, connected};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_values_are_misses_deleted_and_counted() {
    let Some(server) = RedisServer::start("corrupted_values_are_misses_deleted_and_counted") else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(server.url())
            .prefix("c:")
            .command_timeout(Duration::from_secs(2)),
    )
    .await;
    let good = Entry::new(Bytes::from_static(b"a perfectly good value"), Meta::new(1));
    // The Redis key of an entry's key, as text for redis-cli.
    let raw = |key: &str| String::from_utf8(tier.redis_key(key.as_bytes()).to_vec()).unwrap();
    let exists = |key: &str| server.cli(&["EXISTS", &raw(key)]) == "1";

    // Garbage written by another program.
    server.cli(&["SET", &raw("garbage"), "not a tiercache record"]);
    assert_eq!(tier.get(b"garbage").await.unwrap(), Lookup::Miss);
    assert!(!exists("garbage"), "the garbage is deleted");
    assert_eq!(tier.stats().corrupted, 1);

    // A valid record damaged in place: one byte of its value overwritten.
    tier.insert("damaged".into(), good.clone()).await.unwrap();
    assert!(tier.get(b"damaged").await.unwrap().is_hit());
    server.cli(&["SETRANGE", &raw("damaged"), "40", "X"]);
    assert_eq!(tier.get(b"damaged").await.unwrap(), Lookup::Miss);
    assert!(!exists("damaged"));
    assert_eq!(tier.stats().corrupted, 2);

    // A key of another type under the prefix.
    server.cli(&["RPUSH", &raw("list"), "x"]);
    assert_eq!(tier.get(b"list").await.unwrap(), Lookup::Miss);
    assert!(!exists("list"));
    assert_eq!(tier.stats().corrupted, 3);

    // In a batch, the bad value is a miss and the good ones still hit.
    tier.insert("fine".into(), good.clone()).await.unwrap();
    server.cli(&["SET", &raw("short"), "TC"]);
    let answers = tier
        .get_many(&[
            Bytes::from("fine"),
            Bytes::from("short"),
            Bytes::from("fine"),
        ])
        .await
        .unwrap();
    assert_eq!(
        answers,
        vec![
            Lookup::Hit(good.clone()),
            Lookup::Miss,
            Lookup::Hit(good.clone())
        ]
    );
    assert!(!exists("short"));
    assert_eq!(tier.stats().corrupted, 4);

    // Removing a bad value reports that no live entry went.
    server.cli(&["SET", &raw("removed"), "junk"]);
    assert!(!tier.remove(b"removed").await.unwrap());
    assert!(!exists("removed"));
    assert_eq!(tier.stats().corrupted, 5);

    assert!(
        tier.get(b"fine").await.unwrap().is_hit(),
        "good values are kept"
    );
    assert_eq!(tier.len().await.unwrap(), 1);
}
