//! The Redis tier's key format: the prefix is delimited from the key, so
//! no two (prefix, key) pairs share a Redis key; every record is bound to
//! the Redis key it is stored under, so a record found under another key
//! does not decode; and data written in the format before keys were
//! delimited and records bound is ignored, never misread.

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, Lookup, Meta};
use tiercache_tests::{RedisServer, connected};

async fn tier(url: &str, prefix: &str) -> RedisBackend {
    connected(
        RedisBackend::builder(url)
            .prefix(prefix)
            .command_timeout(Duration::from_secs(2)),
    )
    .await
}

fn entry(value: &str) -> Entry {
    Entry::new(Bytes::copy_from_slice(value.as_bytes()), Meta::new(0))
}

async fn value(tier: &RedisBackend, key: &str) -> Option<Bytes> {
    match tier.get(key.as_bytes()).await.expect("get") {
        Lookup::Hit(e) => Some(e.value),
        Lookup::Miss => None,
        other => panic!("unexpected {other:?}"),
    }
}

/// The Redis key of `key` in `tier`, as text for redis-cli.
fn raw(tier: &RedisBackend, key: &str) -> String {
    String::from_utf8(tier.redis_key(key.as_bytes()).to_vec()).expect("a text key")
}

/// CRC-32 (IEEE), bit by bit: enough for the few bytes of a test record.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A record in the envelope's format version 1, which did not bind its
/// key, holding `value` with no expiry and the default class: what the
/// tier wrote before this format.
fn version_1_record(value: &[u8]) -> Vec<u8> {
    let mut checked = Vec::new();
    checked.extend_from_slice(&0u16.to_le_bytes());
    checked.extend_from_slice(&u64::MAX.to_le_bytes());
    checked.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    checked.extend_from_slice(&0u16.to_le_bytes());
    checked.extend_from_slice(value);
    let mut record = b"TC\x01\x00".to_vec();
    record.extend_from_slice(&crc32(&checked).to_le_bytes());
    record.extend_from_slice(&checked);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_and_key_pairs_that_concatenate_alike_are_different_keys() {
    let Some(server) =
        RedisServer::start("prefix_and_key_pairs_that_concatenate_alike_are_different_keys")
    else {
        return;
    };
    let url = server.url();
    let a = tier(&url, "a:").await;
    let ab = tier(&url, "a:b:").await;

    // "a:" + "b:x" and "a:b:" + "x" are both "a:b:x" when concatenated.
    a.insert("b:x".into(), entry("a's")).await.unwrap();
    assert_eq!(value(&ab, "x").await, None, "a:b: reads a:'s record");
    ab.insert("x".into(), entry("a:b:'s")).await.unwrap();
    assert_eq!(value(&a, "b:x").await.as_deref(), Some(&b"a's"[..]));
    assert_eq!(value(&ab, "x").await.as_deref(), Some(&b"a:b:'s"[..]));
    assert_ne!(a.redis_key(b"b:x"), ab.redis_key(b"x"));
    assert_eq!(server.cli(&["DBSIZE"]), "2", "two Redis keys");
    assert!(ab.remove(b"x").await.unwrap());
    assert_eq!(value(&a, "b:x").await.as_deref(), Some(&b"a's"[..]));
    assert_eq!((a.stats().corrupted, ab.stats().corrupted), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_under_another_key_does_not_decode() {
    let Some(server) = RedisServer::start("a_record_under_another_key_does_not_decode") else {
        return;
    };
    let url = server.url();
    let a = tier(&url, "a:").await;
    let other = tier(&url, "other:").await;
    a.insert("one".into(), entry("one's")).await.unwrap();
    a.insert("two".into(), entry("two's")).await.unwrap();

    // Moved within the cache: the record of "one" is now under "moved".
    server.cli(&["RENAME", &raw(&a, "one"), &raw(&a, "moved")]);
    assert_eq!(value(&a, "moved").await, None, "a moved record decoded");
    assert_eq!(a.stats().corrupted, 1);
    assert_eq!(
        server.cli(&["EXISTS", &raw(&a, "moved")]),
        "0",
        "and is deleted"
    );

    // Moved to another cache's key of the same name.
    server.cli(&["RENAME", &raw(&a, "two"), &raw(&other, "two")]);
    assert_eq!(value(&other, "two").await, None);
    assert_eq!(other.stats().corrupted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_of_the_earlier_format_is_ignored() {
    let Some(server) = RedisServer::start("data_of_the_earlier_format_is_ignored") else {
        return;
    };
    let tier = tier(&server.url(), "old:").await;
    let record = version_1_record(b"an old value");

    // What the tier wrote before: the prefix and key concatenated, with a
    // version 1 record. The tier neither reads, counts nor clears it.
    server.cli_with_input(&["SET", "old:k"], &record);
    assert_eq!(server.cli(&["STRLEN", "old:k"]), record.len().to_string());
    assert_eq!(value(&tier, "k").await, None, "an old record was read");
    assert_eq!(tier.len().await.unwrap(), 0);
    assert_eq!(tier.exact_len().await.unwrap(), 0);
    tier.clear().await.unwrap();
    assert_eq!(
        server.cli(&["EXISTS", "old:k"]),
        "1",
        "left to its time-to-live"
    );
    assert_eq!(tier.stats().corrupted, 0);

    // A version 1 record under a key of the current format is not
    // decoded either: a miss, deleted and counted.
    server.cli_with_input(&["SET", &raw(&tier, "k")], &record);
    assert_eq!(value(&tier, "k").await, None, "a version 1 record decoded");
    assert_eq!(tier.stats().corrupted, 1);
    assert_eq!(server.cli(&["EXISTS", &raw(&tier, "k")]), "0");

    // And the key works as any other.
    tier.insert("k".into(), entry("new")).await.unwrap();
    assert_eq!(value(&tier, "k").await.as_deref(), Some(&b"new"[..]));
}
