//! `len` on a Redis tier, which metrics call on every scrape, costs a few
//! commands however many keys the server holds: on a large server it
//! estimates from a sample instead of walking the keyspace, and
//! `exact_len` still counts exactly.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, Meta};
use tiercache_tests::{RedisServer, connected};

/// This cache's keys and other programs' keys on the server: a fifth of
/// the keyspace is ours.
const OURS: u64 = 20_000;
const FOREIGN: u64 = 80_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn len_on_a_large_server_does_not_walk_the_keyspace() {
    let Some(server) = RedisServer::start("len_on_a_large_server_does_not_walk_the_keyspace")
    else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(server.url())
            .prefix("ours:")
            .command_timeout(Duration::from_secs(5)),
    )
    .await;
    for batch in 0..OURS / 1_000 {
        let entries = (batch * 1_000..(batch + 1) * 1_000)
            .map(|i| {
                (
                    Bytes::from(format!("k{i}")),
                    Entry::new(Bytes::from_static(b"v"), Meta::new(0)),
                )
            })
            .collect();
        tier.insert_many(entries).await.expect("insert_many");
    }
    // Another program's keys, written on the server in one script.
    server.cli(&[
        "EVAL",
        "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'foreign:' .. i, 'x') end",
        "0",
        &FOREIGN.to_string(),
    ]);
    assert_eq!(server.cli(&["DBSIZE"]), (OURS + FOREIGN).to_string());

    server.cli(&["CONFIG", "RESETSTAT"]);
    let estimate = tier.len().await.expect("len");
    let calls = server.command_calls();
    let scans = calls.get("scan").copied().unwrap_or(0);
    let total: u64 = calls.values().sum();
    // A walk takes a hundred SCAN pages of a thousand keys here.
    assert_eq!(scans, 0, "len walked the keyspace: {calls:?}");
    // The sample, DBSIZE twice, and the INFO that asked.
    assert!(total <= 260, "len sent {total} commands: {calls:?}");
    // A sample of 256 keys has a standard error of about 2,500 keys here;
    // these bounds are nearly five of them away.
    assert!(
        (8_000..=32_000).contains(&estimate),
        "an estimate of {estimate} for {OURS}"
    );

    server.cli(&["CONFIG", "RESETSTAT"]);
    assert_eq!(tier.exact_len().await.expect("exact_len"), OURS);
    let scans = server.command_calls().get("scan").copied().unwrap_or(0);
    assert!(scans > 50, "exact_len walks the keyspace: {scans} pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn len_on_a_small_server_is_exact() {
    let Some(server) = RedisServer::start("len_on_a_small_server_is_exact") else {
        return;
    };
    let tier = connected(RedisBackend::builder(server.url()).prefix("small:")).await;
    for i in 0..300 {
        tier.insert(
            Bytes::from(format!("k{i}")),
            Entry::new(Bytes::from_static(b"v"), Meta::new(0)),
        )
        .await
        .unwrap();
    }
    server.cli(&[
        "EVAL",
        "for i = 1, 500 do redis.call('SET', 'foreign:' .. i, 'x') end",
        "0",
    ]);
    assert_eq!(tier.len().await.unwrap(), 300);
    assert_eq!(tier.exact_len().await.unwrap(), 300);
}
