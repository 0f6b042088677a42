//! With the `prometheus` feature, a cache's metrics are served over HTTP
//! with tier labels for every tier. The `metrics` recorder is global, so
//! this is the only test in this binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tiercache::{Cache, WritePolicy};
use tiercache_tests::{TestStore, unused_port};

/// GETs `/metrics`, retrying while the listener starts.
fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            stream.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )?;
            let mut body = String::new();
            stream.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if body.contains("tiercache_") => return body,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("no metrics from {addr}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tier_is_scraped_with_its_label() {
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(10)
        .analytics_sampling(1)
        .disk(dir.path().join("m.redb"))
        // Keys from 1,000 up are never cached.
        .bypass(|k: &u32, _op: tiercache::BypassOp<'_>| *k >= 1_000)
        .build()
        .await
        .unwrap();
    for i in 0..50 {
        cache.insert(i, format!("v{i}")).await.unwrap();
    }
    for i in 0..50 {
        assert!(cache.get(&i).await.unwrap().is_some());
    }
    // Load protection: a key with no value, remembered as a negative entry
    // in both tiers (the hot tier evicts one more entry for it) and then
    // answered by it; a bypassed write and a bypassed lookup.
    assert_eq!(
        cache
            .optionally_get_with(500, async { None })
            .await
            .unwrap(),
        None
    );
    assert_eq!(cache.get(&500).await.unwrap(), None);
    cache.insert(1_000, "never cached".into()).await.unwrap();
    assert_eq!(cache.get(&1_001).await.unwrap(), None);
    // A write-back cache in front of a store: 20 writes saved, 5 left
    // dirty while the store is down. Its analytics are off (its hot tier
    // would share the first cache's series), and its write-back figures
    // are emitted all the same.
    let store: TestStore<u32, String> = TestStore::new();
    let behind: Cache<u32, String> = Cache::builder()
        .analytics(false)
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.path().join("log.redb"))
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        behind.insert(i, format!("v{i}")).await.unwrap();
    }
    behind.flush().await.unwrap();
    store.set_failing(true);
    for i in 100..105 {
        behind.insert(i, format!("v{i}")).await.unwrap();
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], unused_port()));
    tiercache::analytics::serve_prometheus(addr).unwrap();
    cache.emit_metrics().await;
    behind.emit_metrics().await;
    let body = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap();
    for wanted in [
        "tiercache_requests_total{tier=\"hot\",op=\"get\",result=\"hit\"}",
        "tiercache_requests_total{tier=\"redb\",op=\"insert\",result=\"ok\"} 51",
        "tiercache_latency_seconds{tier=\"redb\",op=\"get\",quantile=\"0.99\"}",
        "tiercache_entries{tier=\"hot\"} 10",
        "tiercache_entries{tier=\"redb\"} 51",
        // 50 inserted, 40 promoted back from disk, and the negative entry
        // twice (written, turned away by the hot tier's admission, then
        // promoted back from disk by the get), into room for 10: 82
        // evicted, all of the default class.
        "tiercache_removals_total{tier=\"hot\",class=\"default\",cause=\"evicted\"} 82",
        "tiercache_requests_total{tier=\"hot\",op=\"get\",result=\"negative\"} 1",
        "tiercache_requests_total{tier=\"hot\",op=\"get\",result=\"bypassed\"} 1",
        "tiercache_requests_total{tier=\"hot\",op=\"insert\",result=\"bypassed\"} 1",
        "tiercache_bypassed_total{op=\"get\"} 1",
        "tiercache_bypassed_total{op=\"set\"} 1",
        "tiercache_load_events_total{event=\"negative_stored\"} 1",
        "tiercache_load_events_total{event=\"negative_hit\"} 1",
        "tiercache_write_back_queue 5",
        "tiercache_write_back_saves_total{op=\"save\"} 20",
        "tiercache_write_back_dead_letters 0",
        "tiercache_write_back_log_total{event=\"appended\"} 25",
    ] {
        assert!(body.contains(wanted), "{wanted} missing from:\n{body}");
    }
}
