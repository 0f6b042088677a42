//! `remove_if_unchanged` on the Redis tier deletes a key only while it
//! holds the value the caller saw (or a record that is not valid at all),
//! atomically on the server: a value written since stays.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, DynBackend, Entry, Lookup, Meta};
use tiercache_tests::{RedisServer, connected};

fn entry(value: &'static [u8]) -> Entry {
    Entry::new(Bytes::from_static(value), Meta::new(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removes_only_what_was_seen() {
    let Some(server) = RedisServer::start("removes_only_what_was_seen") else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(server.url())
            .prefix("cad:")
            .command_timeout(Duration::from_secs(2)),
    )
    .await;
    let raw = |key: &str| String::from_utf8(tier.redis_key(key.as_bytes()).to_vec()).unwrap();

    // The value seen is still there: removed.
    tier.insert("k".into(), entry(b"seen")).await.unwrap();
    let seen = tier
        .get(b"k")
        .await
        .unwrap()
        .into_hit()
        .expect("a hit")
        .value;
    assert!(tier.remove_if_unchanged(b"k", &seen).await.unwrap());
    assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Miss);

    // A newer value was written since the read: it stays.
    tier.insert("k".into(), entry(b"seen")).await.unwrap();
    let seen = tier
        .get(b"k")
        .await
        .unwrap()
        .into_hit()
        .expect("a hit")
        .value;
    tier.insert("k".into(), entry(b"newer")).await.unwrap();
    assert!(!tier.remove_if_unchanged(b"k", &seen).await.unwrap());
    assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Hit(entry(b"newer")));

    // Nothing there.
    assert!(!tier.remove_if_unchanged(b"absent", b"x").await.unwrap());

    // Not a valid record, or not a string: removed whatever was seen.
    server.cli(&["SET", &raw("garbage"), "not a record"]);
    assert!(tier.remove_if_unchanged(b"garbage", b"x").await.unwrap());
    server.cli(&["RPUSH", &raw("list"), "x"]);
    assert!(tier.remove_if_unchanged(b"list", b"x").await.unwrap());
    assert_eq!(server.cli(&["EXISTS", &raw("garbage"), &raw("list")]), "0");
    assert_eq!(tier.stats().corrupted, 2);

    // Through the boxed twin the facade holds.
    tier.insert("boxed".into(), entry(b"v")).await.unwrap();
    let shared: Arc<dyn DynBackend> = Arc::new(tier.clone());
    assert!(
        !shared
            .remove_if_unchanged(b"boxed", b"other")
            .await
            .unwrap()
    );
    assert!(shared.remove_if_unchanged(b"boxed", b"v").await.unwrap());
    assert_eq!(tier.get(b"boxed").await.unwrap(), Lookup::Miss);
}
