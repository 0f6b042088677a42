//! Caches with different key prefixes share a Redis server without seeing,
//! counting or clearing each other's keys, even when one prefix begins
//! with another, and keys of other programs survive their clears.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_caches_apart() {
    let Some(server) = RedisServer::start("prefixes_keep_caches_apart") else {
        return;
    };
    let url = server.url();
    let a = tier(&url, "app-a:").await;
    let b = tier(&url, "app-b:").await;
    // Glob characters in a prefix are literal: this cache must not match
    // "app-a:" or "app-b:" keys when it scans.
    let glob = tier(&url, "app-*:").await;
    assert_eq!(a.prefix(), "app-a:");

    for i in 0..50 {
        let key = Bytes::from(format!("k{i}"));
        a.insert(key.clone(), entry(&format!("a{i}")))
            .await
            .unwrap();
        b.insert(key, entry(&format!("b{i}"))).await.unwrap();
    }
    b.insert("only-b".into(), entry("b")).await.unwrap();
    glob.insert("g".into(), entry("g")).await.unwrap();
    server.cli(&["SET", "someone-else", "untouched"]);

    assert_eq!(value(&a, "k7").await.as_deref(), Some(&b"a7"[..]));
    assert_eq!(value(&b, "k7").await.as_deref(), Some(&b"b7"[..]));
    assert_eq!(value(&a, "only-b").await, None, "a sees b's key");
    assert_eq!(a.len().await.unwrap(), 50);
    assert_eq!(b.len().await.unwrap(), 51);
    assert_eq!(glob.len().await.unwrap(), 1);
    let stored = String::from_utf8(a.redis_key(b"k3").to_vec()).unwrap();
    assert!(stored.starts_with("app-a:"), "{stored:?}");
    assert_eq!(
        server.cli(&["EXISTS", &stored]),
        "1",
        "stored under the prefix"
    );

    a.clear().await.unwrap();
    assert_eq!(a.len().await.unwrap(), 0);
    assert_eq!(value(&a, "k7").await, None);
    assert_eq!(b.len().await.unwrap(), 51, "a's clear removed b's keys");
    assert_eq!(value(&b, "k7").await.as_deref(), Some(&b"b7"[..]));

    glob.clear().await.unwrap();
    assert_eq!(b.len().await.unwrap(), 51, "a glob prefix cleared b's keys");
    assert_eq!(glob.len().await.unwrap(), 0);

    b.clear().await.unwrap();
    assert_eq!(b.len().await.unwrap(), 0);
    assert_eq!(server.cli(&["GET", "someone-else"]), "untouched");
    assert_eq!(server.cli(&["DBSIZE"]), "1", "only the foreign key is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_that_begins_another_keeps_to_its_own_keys() {
    let Some(server) = RedisServer::start("a_prefix_that_begins_another_keeps_to_its_own_keys")
    else {
        return;
    };
    let url = server.url();
    let app = tier(&url, "app:").await;
    let v2 = tier(&url, "app:v2:").await;
    for i in 0..20 {
        app.insert(Bytes::from(format!("k{i}")), entry("app"))
            .await
            .unwrap();
    }
    for i in 0..30 {
        v2.insert(Bytes::from(format!("k{i}")), entry("v2"))
            .await
            .unwrap();
    }
    // A key of "app:" that reads like one of "app:v2:" when the two are
    // simply concatenated.
    app.insert("v2:k0".into(), entry("app's own"))
        .await
        .unwrap();

    assert_eq!(app.len().await.unwrap(), 21, "app: counts app:v2:'s keys");
    assert_eq!(v2.len().await.unwrap(), 30);
    assert_eq!(app.exact_len().await.unwrap(), 21);
    assert_eq!(value(&v2, "k0").await.as_deref(), Some(&b"v2"[..]));
    assert_eq!(
        value(&app, "v2:k0").await.as_deref(),
        Some(&b"app's own"[..])
    );

    app.clear().await.unwrap();
    assert_eq!(app.len().await.unwrap(), 0);
    assert_eq!(
        v2.len().await.unwrap(),
        30,
        "app:'s clear removed app:v2:'s keys"
    );
    assert_eq!(value(&v2, "k29").await.as_deref(), Some(&b"v2"[..]));

    app.insert("k1".into(), entry("app")).await.unwrap();
    v2.clear().await.unwrap();
    assert_eq!(v2.len().await.unwrap(), 0);
    assert_eq!(value(&app, "k1").await.as_deref(), Some(&b"app"[..]));
}
