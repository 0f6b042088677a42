//! On a cluster, batches span every primary and many hash slots: writes
//! land on the right nodes, and `get_many` answers in the order asked.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, Lookup, Meta};
use tiercache_tests::{RedisCluster, connected};

const PREFIX: &str = "batch:";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_many_across_slots_answers_in_order() {
    let Some(cluster) = RedisCluster::start("get_many_across_slots_answers_in_order", 3) else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(cluster.url())
            .prefix(PREFIX)
            .command_timeout(Duration::from_secs(2)),
    )
    .await;

    let stored: Vec<(Bytes, Entry)> = (0..400u32)
        .map(|i| {
            (
                Bytes::from(format!("key-{i}")),
                Entry::new(Bytes::from(i.to_le_bytes().to_vec()), Meta::new(0)),
            )
        })
        .collect();
    tier.insert_many(stored).await.unwrap();
    assert_eq!(tier.len().await.unwrap(), 400);

    // The keys really are spread: over every node and many slots.
    let sample: Vec<String> = (0..400)
        .step_by(20)
        .map(|i| String::from_utf8(tier.redis_key(format!("key-{i}").as_bytes()).to_vec()).unwrap())
        .collect();
    let owners: BTreeSet<usize> = sample.iter().map(|k| cluster.owner_of(k)).collect();
    assert_eq!(owners.len(), 3, "keys on every primary");
    let slots: BTreeSet<u16> = sample.iter().map(|k| cluster.slot_of(k)).collect();
    assert!(slots.len() > 10, "keys in many slots: {slots:?}");

    // A scrambled order, absent keys among present ones, and a repeat.
    let mut asked: Vec<u32> = (0..500).map(|i| (i * 7919) % 500).collect();
    asked.push(3);
    asked.push(450);
    let keys: Vec<Bytes> = asked
        .iter()
        .map(|i| Bytes::from(format!("key-{i}")))
        .collect();
    let answers = tier.get_many(&keys).await.unwrap();
    assert_eq!(answers.len(), keys.len());
    for (i, answer) in asked.iter().zip(answers) {
        match answer {
            Lookup::Hit(e) if *i < 400 => {
                assert_eq!(e.value, Bytes::from(i.to_le_bytes().to_vec()), "key-{i}")
            }
            Lookup::Miss if *i >= 400 => {}
            other => panic!("key-{i} answered {other:?}"),
        }
    }

    tier.clear().await.unwrap();
    assert_eq!(tier.len().await.unwrap(), 0, "clear reaches every primary");
    for node in cluster.nodes() {
        assert_eq!(node.cli(&["DBSIZE"]), "0");
    }
}
