//! With the `compress` feature the builder compresses the disk and Redis
//! tiers (lz4 by default): large values are stored compressed where that
//! pays and read back transparently; the hot tier holds typed values.

use std::time::Duration;

use tiercache::compress::{CompressionLayer, Gzip, Lz4};
use tiercache::redis::RedisBackend;
use tiercache::tier::Backend;
use tiercache::{Cache, Codec, Postcard};
use tiercache_tests::{RedisServer, connected};

/// A value that compresses well: repetitive JSON-like text of about 8 KiB.
fn document(i: usize) -> String {
    format!(
        "{{\"id\": {i}, \"body\": \"{}\"}}",
        "lorem ipsum dolor sit amet ".repeat(300)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_stores_large_values_compressed_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u32, String> = Cache::builder()
        .disk(dir.path().join("c.redb"))
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        cache.insert(i, document(i as usize)).await.unwrap();
    }
    cache.insert(100, "small".into()).await.unwrap();
    cache.hot().clear();
    for i in 0..20 {
        assert_eq!(cache.get(&i).await.unwrap(), Some(document(i as usize)));
    }
    assert_eq!(cache.get(&100).await.unwrap().as_deref(), Some("small"));
    let stats = cache.compression_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].0, "redb");
    let lz4 = stats[0].1.algorithm(Lz4::ID).expect("lz4 by default");
    assert_eq!(lz4.values, 20, "the 20 large values, not the small one");
    assert!(lz4.ratio() < 0.2, "ratio {}", lz4.ratio());
    assert!(stats[0].1.bytes_saved() > 20 * 6_000);
    // Per class: every value of the default class judged, the small one
    // stored as it was.
    let by_class = cache.compression_by_class();
    assert_eq!(by_class.len(), 1, "{by_class:?}");
    assert_eq!(by_class[0].0, "default");
    assert!(by_class[0].1 < 0.2, "{by_class:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_can_be_chosen_or_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let off: Cache<u32, String> = Cache::builder()
        .disk(dir.path().join("off.redb"))
        .compression(None)
        .build()
        .await
        .unwrap();
    off.insert(1, document(1)).await.unwrap();
    assert!(off.compression_stats().is_empty());
    off.hot().clear();
    assert_eq!(off.get(&1).await.unwrap(), Some(document(1)));

    let gzip: Cache<u32, String> = Cache::builder()
        .disk(dir.path().join("gzip.redb"))
        .disk_compression(Some(CompressionLayer::new(Gzip::new(6))))
        .build()
        .await
        .unwrap();
    gzip.insert(1, document(1)).await.unwrap();
    let stats = gzip.compression_stats();
    assert_eq!(stats[0].1.algorithm(Gzip::ID).unwrap().values, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_tier_holds_compressed_frames() {
    let Some(server) = RedisServer::start("the_redis_tier_holds_compressed_frames") else {
        return;
    };
    let cache: Cache<u32, String> = Cache::builder().redis(&server.url()).build().await.unwrap();
    // The tier connects in the background: retry until a write lands.
    let mut landed = false;
    for _ in 0..100 {
        let before = cache.tier_stats()[1].errors;
        cache.insert(7, document(7)).await.unwrap();
        if cache.tier_stats()[1].errors == before {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(landed, "the cache never reached Redis");
    // Read the raw record with a tier of the same prefix and no compression.
    let raw: RedisBackend = connected(RedisBackend::builder(server.url())).await;
    let key = Postcard.encode(&7u32).unwrap();
    let stored = raw
        .get(&key)
        .await
        .unwrap()
        .into_hit()
        .expect("stored in Redis");
    assert_eq!(stored.meta.flags.compression(), Lz4::ID);
    assert!(stored.value.len() < document(7).len() / 5);
    cache.hot().clear();
    assert_eq!(cache.get(&7).await.unwrap(), Some(document(7)));
}

/// Each tier reports its own compression, even beside another tier of the
/// same name: the figures used to be matched to tiers by name, so an
/// uncompressed redb tier added below the disk tier showed the disk tier's
/// ratio as its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tiers_of_one_name_keep_their_own_compression_figures() {
    let dir = tempfile::tempdir().unwrap();
    let plain = tiercache::redb::RedbBackend::builder(dir.path().join("plain.redb"))
        .build()
        .await
        .unwrap();
    let cache: Cache<u32, String> = Cache::builder()
        .disk(dir.path().join("c.redb"))
        .backend(plain)
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        cache.insert(i, document(i as usize)).await.unwrap();
    }
    let stats = cache.stats().await.expect("analytics is on by default");
    let names: Vec<&str> = stats.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["hot", "redb", "redb"]);
    let ratio = stats.tiers[1]
        .compression_ratio
        .expect("the disk tier compresses");
    assert!(ratio < 0.2, "{ratio}");
    assert_eq!(
        stats.tiers[2].compression_ratio, None,
        "the second compresses nothing"
    );
    assert_eq!(cache.compression_stats().len(), 1);
}
