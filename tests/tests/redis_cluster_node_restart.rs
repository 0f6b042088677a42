//! A cluster primary is killed and restarted mid-run: keys the other
//! primaries serve keep working throughout, keys of the dead node fail
//! fast, and the tier serves them again once the node is back, without
//! being rebuilt.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ErrorKind, Lookup, Meta};
use tiercache_tests::{RedisCluster, connected};

const PREFIX: &str = "restart:";
const COMMAND_TIMEOUT: Duration = Duration::from_millis(250);
/// Scheduling on a loaded machine, on top of the timeout.
const SLACK: Duration = Duration::from_millis(250);
const VICTIM: usize = 0;

fn entry(i: usize) -> Entry {
    Entry::new(Bytes::from(format!("value-{i}")), Meta::new(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_primaries_keep_serving_while_one_restarts() {
    let Some(mut cluster) =
        RedisCluster::start("other_primaries_keep_serving_while_one_restarts", 3)
    else {
        return;
    };
    let tier = connected(
        RedisBackend::builder(cluster.url())
            .prefix(PREFIX)
            .command_timeout(COMMAND_TIMEOUT)
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(500)),
    )
    .await;

    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    let owners: Vec<usize> = keys
        .iter()
        .map(|k| cluster.owner_of(std::str::from_utf8(&tier.redis_key(k.as_bytes())).unwrap()))
        .collect();
    let (victims, survivors): (Vec<usize>, Vec<usize>) =
        (0..keys.len()).partition(|&i| owners[i] == VICTIM);
    assert!(!victims.is_empty() && !survivors.is_empty());
    for (i, key) in keys.iter().enumerate() {
        tier.insert(Bytes::from(key.clone()), entry(i))
            .await
            .unwrap();
    }

    tokio::task::block_in_place(|| cluster.node_mut(VICTIM).stop());
    let down_since = Instant::now();
    let mut rounds = 0;
    while down_since.elapsed() < Duration::from_millis(1_500) {
        for &i in &survivors {
            let key = keys[i].as_bytes();
            assert_eq!(
                tier.get(key).await.expect("a surviving primary answers"),
                Lookup::Hit(entry(i)),
                "{} while node {VICTIM} is down",
                keys[i]
            );
            tier.insert(Bytes::from(keys[i].clone()), entry(i))
                .await
                .expect("a surviving primary takes writes");
        }
        for &i in &victims {
            let started = Instant::now();
            let err = tier
                .get(keys[i].as_bytes())
                .await
                .expect_err("the dead primary's keys fail");
            let took = started.elapsed();
            assert!(
                matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                "{err}"
            );
            assert!(took <= COMMAND_TIMEOUT + SLACK, "a call took {took:?}");
        }
        rounds += 1;
    }
    assert!(rounds > 1);

    tokio::task::block_in_place(|| cluster.node_mut(VICTIM).restart());
    // The restarted node has no data (nothing persists), so recovery shows
    // as its keys taking writes and answering reads again.
    let back_since = Instant::now();
    for &i in &victims {
        loop {
            let key = Bytes::from(keys[i].clone());
            let written = tier.insert(key.clone(), entry(i)).await;
            if written.is_ok()
                && tier
                    .get(&key)
                    .await
                    .is_ok_and(|l| l == Lookup::Hit(entry(i)))
            {
                break;
            }
            assert!(
                back_since.elapsed() < Duration::from_secs(10),
                "{} not served after the restart: {written:?}, {:?}",
                keys[i],
                tier.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "the restarted node served again after {:?}; {:?}",
        back_since.elapsed(),
        tier.stats()
    );
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            tier.get(key.as_bytes()).await.unwrap(),
            Lookup::Hit(entry(i))
        );
    }
    assert_eq!(tier.len().await.unwrap(), keys.len() as u64);
}
