//! The Redis tier lists its own keys, a page at a time, on real servers:
//! the keys of other prefixes are left out, lookalike prefixes included
//! (glob characters in a prefix are matched literally), and so are keys of
//! the format before keys were delimited; on a cluster the keys of every
//! primary are listed; no page holds more keys than asked for, however
//! many one `SCAN` returns.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ErrorKind, KeyCursor, Meta};
use tiercache_tests::{RedisCluster, RedisServer, connected};

async fn tier(url: &str, prefix: &str) -> RedisBackend {
    connected(
        RedisBackend::builder(url)
            .prefix(prefix)
            .command_timeout(Duration::from_secs(5)),
    )
    .await
}

/// Writes `keys` to `tier`, every fifth a negative entry.
async fn fill(tier: &RedisBackend, keys: &[Bytes]) {
    let entries = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let entry = if i % 5 == 0 {
                Entry::negative(Meta::new(0))
            } else {
                Entry::new(&b"value"[..], Meta::new(0))
            };
            (k.clone(), entry)
        })
        .collect();
    tier.insert_many(entries).await.unwrap();
}

/// Every key `tier` lists from the start in pages of `limit`, checking
/// each page's size and that no key comes twice.
async fn listed(tier: &RedisBackend, limit: usize) -> BTreeSet<Bytes> {
    let mut keys = Vec::new();
    let mut cursor = KeyCursor::start();
    for _ in 0..100_000 {
        let page = tier
            .keys(&cursor, limit)
            .await
            .expect("a page")
            .expect("the Redis tier lists its keys");
        assert!(
            page.keys.len() <= limit.max(1),
            "{} keys in a page of {limit}",
            page.keys.len()
        );
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => {
                let set: BTreeSet<Bytes> = keys.iter().cloned().collect();
                assert_eq!(set.len(), keys.len(), "pages of {limit}: a key twice");
                return set;
            }
        }
    }
    panic!("the listing does not end");
}

fn names(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("{prefix}{i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_prefix_s_keys_are_listed_on_a_single_server() {
    let Some(server) = RedisServer::start("only_this_prefix_s_keys_are_listed_on_a_single_server")
    else {
        return;
    };
    let url = server.url();
    // Unescaped, this prefix's pattern would match "cAB1Z", "c1Q" and the
    // others below as well as itself.
    let ours = tier(&url, "c*[1]?").await;
    let mut mine = names("key-", 60);
    mine.push(Bytes::new());
    mine.push(Bytes::from_static(&[0x1f, b'v', b'1', 0x1f, b'*', 0]));
    fill(&ours, &mine).await;
    for lookalike in [
        "cAB1Z", "c1Q", "c*[1]", "c*[1]?x", "c\\*[1]?", "c*[1]?\\", "app:",
    ] {
        let other = tier(&url, lookalike).await;
        fill(&other, &names("key-", 30)).await;
        fill(&other, &names("other-", 10)).await;
    }
    // Keys of the format before the prefix was delimited start with the
    // prefix too.
    server.cli(&["SET", "c*[1]?key-1", "old"]);
    server.cli(&["SET", "c*[1]?\u{1f}v0\u{1f}key-1", "older format version"]);

    let mine: BTreeSet<Bytes> = mine.into_iter().collect();
    // A limit of 1 or 2 is far below what one SCAN returns, so most keys
    // reach their page through the cursor.
    for limit in [1, 2, 0, 5, 1_000] {
        assert_eq!(listed(&ours, limit).await, mine, "pages of {limit}");
    }

    // Two prefixes where one begins the other: each lists its own.
    let app = tier(&url, "app:").await;
    let v2 = tier(&url, "app:v2:").await;
    fill(&v2, &names("k", 5)).await;
    assert_eq!(
        listed(&app, 3).await,
        names("key-", 30)
            .into_iter()
            .chain(names("other-", 10))
            .collect()
    );
    assert_eq!(listed(&v2, 3).await, names("k", 5).into_iter().collect());

    // Removed keys are not listed.
    for k in names("key-", 60).iter().take(10) {
        assert!(ours.remove(k).await.unwrap());
    }
    assert_eq!(listed(&ours, 4).await.len(), mine.len() - 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_another_server_is_refused() {
    let test = "a_cursor_of_another_server_is_refused";
    let (Some(a), Some(b)) = (RedisServer::start(test), RedisServer::start(test)) else {
        return;
    };
    let (a, b) = (tier(&a.url(), "x:").await, tier(&b.url(), "x:").await);
    fill(&a, &names("k", 20)).await;
    fill(&b, &names("k", 20)).await;
    let page = a.keys(&KeyCursor::start(), 1).await.unwrap().unwrap();
    let cursor = page.next.expect("more keys follow");
    let e = b
        .keys(&cursor, 1)
        .await
        .expect_err("another server's cursor");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // It still works where it was made.
    assert!(a.keys(&cursor, 1).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_on_every_primary_of_a_cluster_are_listed() {
    let Some(cluster) = RedisCluster::start("keys_on_every_primary_of_a_cluster_are_listed", 3)
    else {
        return;
    };
    let url = cluster.url();
    let ours = tier(&url, "listed:").await;
    let mine = names("key-", 300);
    fill(&ours, &mine).await;
    fill(&tier(&url, "other:").await, &names("key-", 100)).await;
    for (i, node) in cluster.nodes().iter().enumerate() {
        let held: u64 = node.cli(&["DBSIZE"]).parse().unwrap();
        assert!(held > 0, "primary {i} holds none of the keys");
    }
    let mine: BTreeSet<Bytes> = mine.into_iter().collect();
    for limit in [1, 7, 100, 10_000] {
        assert_eq!(listed(&ours, limit).await, mine, "pages of {limit}");
    }
}
