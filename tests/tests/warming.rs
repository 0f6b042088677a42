//! The warming service through the facade: `Cache::warmer` with the
//! cache's sources fills an empty hot tier from the disk tier, from Redis,
//! from a snapshot's keys, from the analytics' hot keys, or from a list of
//! keys and a loader; keys the cache holds are skipped, higher priorities
//! go first when a run is cut short, a failed listing leaves the other
//! sources warming, and a warmed value never lands over a newer write.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tiercache::warm::SnapshotContents;
use tiercache::{Cache, Error};
use tiercache_tests::RedisServer;
use tiercache_tests::counting_loader::CountingLoader;
use tokio::sync::Semaphore;

fn k(name: &str) -> String {
    name.to_string()
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A cache of `capacity` entries over the redb file at `path`.
async fn on_disk(path: &Path, capacity: u64) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(capacity)
        .disk(path)
        .build()
        .await
        .expect("a cache over a redb file")
}

/// Writes `k0..k{n}` = `v0..` through a cache on `path`, then closes it.
async fn fill_disk(path: &Path, n: usize) {
    let cache = on_disk(path, 10_000).await;
    for i in 0..n {
        cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_hot_tier_is_warmed_from_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.redb");
    fill_disk(&db, 500).await;

    let cache = on_disk(&db, 1_000).await;
    assert_eq!(cache.entry_count(), 0);
    let warmer = cache
        .warmer()
        .source(cache.warm_from_tier(0).unwrap())
        .concurrency(8)
        .build()
        .unwrap();
    let report = warmer.run().await;
    println!("{report:?}");
    assert_eq!(report.total, 500, "{report:?}");
    assert_eq!(report.warmed, 500, "{report:?}");
    assert_eq!((report.present, report.missing, report.failed), (0, 0, 0));
    assert!(!report.cancelled);
    assert_eq!(report.sources.len(), 1);
    assert_eq!(report.sources[0].listed, 500);
    assert_eq!(cache.entry_count(), 500);
    for i in 0..500 {
        assert_eq!(cache.hot().get(&format!("k{i}")), Some(format!("v{i}")));
    }
    // Warming counts no lookups: the hit ratio is the application's.
    assert_eq!(cache.tier_stats()[0].hits + cache.tier_stats()[0].misses, 0);

    // A second run finds everything present.
    let again = warmer.run().await;
    assert_eq!((again.warmed, again.present), (0, 500), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_warms_no_more_keys_than_the_hot_tier_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.redb");
    fill_disk(&db, 500).await;
    let cache = on_disk(&db, 200).await;
    let report = cache
        .warmer()
        .source(cache.warm_from_tier(0).unwrap())
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.sources[0].listed, 500, "{report:?}");
    assert_eq!(report.total, 200, "{report:?}");
    assert_eq!(report.warmed, 200, "{report:?}");
    assert!(cache.entry_count() <= 200);
}

#[tokio::test]
async fn a_tier_that_is_not_there_is_an_error() {
    let cache: Cache<String, String> = Cache::builder().build().await.unwrap();
    let e = cache
        .warm_from_tier(0)
        .expect_err("a memory-only cache has no tier 0 below memory");
    assert_eq!(e.kind(), tiercache::ErrorKind::InvalidInput, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_hot_tier_is_warmed_from_redis() {
    let Some(server) = RedisServer::start("an_empty_hot_tier_is_warmed_from_redis") else {
        return;
    };
    let open = || async {
        Cache::<String, String>::builder()
            .max_capacity(1_000)
            .redis(&server.url())
            .build()
            .await
            .expect("a cache over the test server")
    };
    let writer = open().await;
    // The tier connects in the background: retry until a write lands.
    let mut landed = false;
    for _ in 0..100 {
        let before = writer.tier_stats()[1].errors;
        writer.insert(k("k0"), k("v0")).await.unwrap();
        if writer.tier_stats()[1].errors == before {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(landed, "the writer never reached Redis");
    let errors = writer.tier_stats()[1].errors;
    for i in 1..300 {
        writer
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    assert_eq!(writer.tier_stats()[1].errors, errors);
    assert_eq!(server.cli(&["DBSIZE"]), "300");
    drop(writer);

    let cache = open().await;
    let warmer = cache
        .warmer()
        .source(cache.warm_from_tier(0).unwrap())
        .build()
        .unwrap();
    // Until the tier is connected, its listing fails and the run warms
    // nothing; then it lists every key.
    let mut report = warmer.run().await;
    for _ in 0..100 {
        if report.sources[0].listing_error.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        report = warmer.run().await;
    }
    println!("{report:?}");
    assert!(report.sources[0].listing_error.is_none(), "{report:?}");
    assert_eq!(report.warmed, 300, "{report:?}");
    assert_eq!(cache.entry_count(), 300);
    for i in 0..300 {
        assert_eq!(cache.hot().get(&format!("k{i}")), Some(format!("v{i}")));
    }
}

#[tokio::test]
async fn keys_the_cache_holds_are_skipped_and_the_others_loaded_once() {
    let cache: Cache<String, String> = Cache::builder().max_capacity(100).build().await.unwrap();
    cache.insert(k("k1"), k("mine")).await.unwrap();
    cache.insert(k("k4"), k("mine too")).await.unwrap();
    let loader = CountingLoader::new(|key| Ok((key != "k9").then(|| format!("loaded {key}"))));
    let warmer = cache
        .warmer()
        .source(cache.warm_keys("list", keys("k", 10), loader.clone()))
        .build()
        .unwrap();
    let report = warmer.run().await;
    println!("{report:?}");
    assert_eq!(report.total, 10);
    assert_eq!(report.present, 2, "{report:?}");
    assert_eq!(report.warmed, 7, "{report:?}");
    assert_eq!(report.missing, 1, "{report:?}");
    assert_eq!(
        loader.calls(),
        8,
        "only the missing keys are loaded, once each"
    );
    assert_eq!(cache.hot().get(&k("k1")).as_deref(), Some("mine"));
    assert_eq!(cache.hot().get(&k("k4")).as_deref(), Some("mine too"));
    for i in [0, 2, 3, 5, 6, 7, 8] {
        assert_eq!(
            cache.hot().get(&format!("k{i}")),
            Some(format!("loaded k{i}"))
        );
    }
    assert_eq!(cache.hot().get(&k("k9")), None);

    // Run again: only the key with no value is asked for again.
    let again = warmer.run().await;
    assert_eq!(again.present, 9, "{again:?}");
    assert!(loader.calls() <= 9, "{} calls", loader.calls());
}

#[tokio::test]
async fn a_warmed_key_is_cached_like_a_loaded_one() {
    // The warmed entry takes the cache's time-to-live and answers lookups
    // from the hot tier.
    let clock = tiercache::ManualClock::default();
    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .time_to_live(Duration::from_secs(60))
        .build()
        .await
        .unwrap();
    let loader = CountingLoader::values();
    let report = cache
        .warmer()
        .source(cache.warm_keys("list", [k("a")], loader.clone()))
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.warmed, 1, "{report:?}");
    assert_eq!(
        cache.get(&k("a")).await.unwrap().as_deref(),
        Some("loaded a")
    );
    assert_eq!(cache.tier_stats()[0].hits, 1);
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        cache.get(&k("a")).await.unwrap(),
        None,
        "expired with the cache's TTL"
    );
    assert_eq!(loader.calls(), 1);
}

#[tokio::test]
async fn warm_keys_reads_through_the_caches_own_source_first() {
    // As a lookup would: the cache's own loader is the source of record;
    // the source's loader stands in only for a cache without one.
    let own = CountingLoader::new(|key| Ok(Some(format!("own {key}"))));
    let cache: Cache<String, String> = Cache::builder().loader(own.clone()).build().await.unwrap();
    let warm = CountingLoader::values();
    let report = cache
        .warmer()
        .source(cache.warm_keys("list", [k("a"), k("b")], warm.clone()))
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.warmed, 2, "{report:?}");
    assert_eq!(
        (warm.calls(), own.calls()),
        (0, 2),
        "(the source's loader calls, the cache's loader calls)"
    );
    assert_eq!(cache.hot().get(&k("a")).as_deref(), Some("own a"));
}

/// The keys a [`recording`] loader was asked for, in order.
type Order = Arc<Mutex<Vec<String>>>;

/// What one call of a [`recording`] loader answers.
type Loaded = std::future::Ready<tiercache::Result<Option<String>>>;

/// A loader that records the order of the keys it was asked for.
fn recording() -> (Order, impl Fn(String) -> Loaded + Clone + Send + Sync) {
    let order = Arc::new(Mutex::new(Vec::new()));
    let seen = order.clone();
    let loader = move |key: String| {
        seen.lock().push(key.clone());
        std::future::ready(Ok::<_, Error>(Some(format!("loaded {key}"))))
    };
    (order, loader)
}

#[tokio::test]
async fn higher_priority_sources_are_warmed_first() {
    let cache: Cache<String, String> = Cache::builder().max_capacity(100).build().await.unwrap();
    let (order, loader) = recording();
    // Given low first: the priority, not the order given, decides.
    let report = cache
        .warmer()
        .source(cache.warm_keys("low", keys("low", 5), loader.clone()))
        .source(
            cache
                .warm_keys("high", keys("high", 5), loader.clone())
                .priority(10),
        )
        .source(
            cache
                .warm_keys("middle", keys("mid", 5), loader)
                .priority(5),
        )
        .concurrency(1)
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.warmed, 15, "{report:?}");
    let order = order.lock().clone();
    let rank = |key: &String| {
        if key.starts_with("high") {
            0
        } else if key.starts_with("mid") {
            1
        } else {
            2
        }
    };
    let ranks: Vec<i32> = order.iter().map(rank).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] <= w[1]),
        "warmed out of priority order: {order:?}"
    );
}

#[tokio::test]
async fn a_run_cut_short_keeps_the_higher_priority_keys() {
    let cache: Cache<String, String> = Cache::builder().max_capacity(100).build().await.unwrap();
    let (order, loader) = recording();
    let report = cache
        .warmer()
        .source(cache.warm_keys("low", keys("low", 5), loader.clone()))
        .source(cache.warm_keys("high", keys("high", 3), loader).priority(1))
        .max_keys(3)
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.total, 3, "{report:?}");
    assert_eq!(report.warmed, 3, "{report:?}");
    for key in keys("high", 3) {
        assert!(cache.hot().contains_key(&key), "{key} was not warmed");
    }
    for key in keys("low", 5) {
        assert!(!cache.hot().contains_key(&key), "{key} was warmed");
    }
    assert_eq!(order.lock().len(), 3);
    let low = report.sources.iter().find(|s| s.name == "low").unwrap();
    assert_eq!((low.listed, low.planned), (5, 0), "{low:?}");
}

/// The boxed future of one of [`held_loader`]'s calls.
type BoxedLoad = Pin<Box<dyn Future<Output = tiercache::Result<Option<String>>> + Send + 'static>>;

/// A loader answering `"old <key>"`, held inside each call until the test
/// lets it go: `started` gets a permit when a call begins, and the call
/// answers once `release` has one for it.
fn held_loader(
    started: Arc<Semaphore>,
    release: Arc<Semaphore>,
) -> impl Fn(String) -> BoxedLoad + Send + Sync + 'static {
    move |key: String| {
        let (started, release) = (started.clone(), release.clone());
        Box::pin(async move {
            started.add_permits(1);
            release.acquire().await.expect("open").forget();
            Ok(Some(format!("old {key}")))
        })
    }
}

/// Warms `k` with a loader held mid-load while `k` is written, and checks
/// that the write stands.
async fn a_write_during_a_warm_stands(cache: Cache<String, String>, stack: &str) {
    let started = Arc::new(Semaphore::new(0));
    let release = Arc::new(Semaphore::new(0));
    a_write_during_a_warm_stands_with(cache, stack, started, release).await;
}

/// [`a_write_during_a_warm_stands`] with the held loader's semaphores.
async fn a_write_during_a_warm_stands_with(
    cache: Cache<String, String>,
    stack: &str,
    started: Arc<Semaphore>,
    release: Arc<Semaphore>,
) {
    let warmer = cache
        .warmer()
        .source(cache.warm_keys(
            "slow",
            [k("k")],
            held_loader(started.clone(), release.clone()),
        ))
        .build()
        .unwrap();
    let run = tokio::spawn(async move { warmer.run().await });
    tokio::time::timeout(Duration::from_secs(10), started.acquire())
        .await
        .unwrap_or_else(|_| panic!("{stack}: the warm never called a loader"))
        .unwrap()
        .forget();
    cache.insert(k("k"), k("new")).await.unwrap();
    release.add_permits(1);
    let report = run.await.unwrap();
    println!("{stack}: {report:?}");
    assert_eq!(
        cache.hot().get(&k("k")).as_deref(),
        Some("new"),
        "{stack}: the warm's older value landed over the write in the hot tier"
    );
    assert_eq!(
        cache.get(&k("k")).await.unwrap().as_deref(),
        Some("new"),
        "{stack}: the write made during the warm was lost"
    );
    // Only a stack with tiers below memory has a copy there to check.
    if cache.tier_stats().len() > 1 {
        cache.hot().remove(&k("k"));
        assert_eq!(
            cache.get(&k("k")).await.unwrap().as_deref(),
            Some("new"),
            "{stack}: the tiers below hold the warm's older value"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_never_lands_over_a_write_made_while_it_loads_in_memory() {
    let memory: Cache<String, String> = Cache::builder().build().await.unwrap();
    a_write_during_a_warm_stands(memory, "memory only").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_never_lands_over_a_write_made_while_it_loads_over_redb() {
    let dir = tempfile::tempdir().unwrap();
    let disk = on_disk(&dir.path().join("cache.redb"), 100).await;
    a_write_during_a_warm_stands(disk, "memory + redb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_never_lands_over_a_write_made_while_it_loads_with_a_loader() {
    // A memory-only cache with a loader of its own keeps versions. The
    // held loader is the cache's as well as the source's, so whichever the
    // warm calls is held.
    let started = Arc::new(Semaphore::new(0));
    let release = Arc::new(Semaphore::new(0));
    let memory: Cache<String, String> = Cache::builder()
        .loader(held_loader(started.clone(), release.clone()))
        .build()
        .await
        .unwrap();
    a_write_during_a_warm_stands_with(memory, "memory only, with a loader", started, release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warming_leaves_a_value_written_before_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = on_disk(&dir.path().join("cache.redb"), 100).await;
    cache.insert(k("k"), k("new")).await.unwrap();
    let loader = CountingLoader::new(|key| Ok(Some(format!("old {key}"))));
    let report = cache
        .warmer()
        .source(cache.warm_keys("list", [k("k")], loader.clone()))
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.present, 1, "{report:?}");
    assert_eq!(loader.calls(), 0);
    // Not even from below: out of the hot tier, the key is copied up from
    // the disk tier, which holds the write, and not loaded.
    cache.hot().remove(&k("k"));
    let report = cache
        .warmer()
        .source(cache.warm_keys("list", [k("k")], loader.clone()))
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.warmed, 1, "{report:?}");
    assert_eq!(loader.calls(), 0, "the disk tier's copy was there");
    assert_eq!(cache.hot().get(&k("k")).as_deref(), Some("new"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshots_keys_are_warmed_from_the_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.redb");
    let snap = dir.path().join("hot.snap");
    {
        let cache = on_disk(&db, 1_000).await;
        for i in 0..50 {
            cache
                .insert(format!("k{i}"), format!("v{i}"))
                .await
                .unwrap();
        }
        cache
            .insert_negative(k("nothing"), Duration::from_secs(600))
            .await
            .unwrap();
        cache.save_snapshot(&snap).await.unwrap();
        // After the save the disk tier's copy of k7 is newer, and k8 is
        // removed.
        cache.insert(k("k7"), k("v7 again")).await.unwrap();
        cache.remove(&k("k8")).await.unwrap();
    }
    let cache = on_disk(&db, 1_000).await;
    let report = cache
        .warmer()
        .source(cache.warm_from_snapshot(&snap))
        .build()
        .unwrap()
        .run()
        .await;
    println!("{report:?}");
    assert_eq!(
        report.total, 50,
        "the negative entry is left out: {report:?}"
    );
    assert_eq!(report.warmed, 49, "{report:?}");
    assert_eq!(report.missing, 1, "{report:?}");
    for i in (0..50).filter(|i| ![7, 8].contains(i)) {
        assert_eq!(cache.hot().get(&format!("k{i}")), Some(format!("v{i}")));
    }
    assert_eq!(cache.hot().get(&k("k7")).as_deref(), Some("v7 again"));
    assert_eq!(cache.get(&k("k8")).await.unwrap(), None, "not resurrected");

    // A keys-only snapshot serves as well.
    let keys_only = dir.path().join("keys.snap");
    cache
        .save_snapshot_with(&keys_only, SnapshotContents::Keys)
        .await
        .unwrap();
    cache.hot().clear();
    let report = cache
        .warmer()
        .source(cache.warm_from_snapshot(&keys_only))
        .build()
        .unwrap()
        .run()
        .await;
    assert_eq!(report.warmed, 49, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_snapshot_fails_its_source_and_the_others_still_warm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cache.redb");
    fill_disk(&db, 20).await;
    let bad = dir.path().join("bad.snap");
    std::fs::write(&bad, b"TIERSNAP but nothing after it").unwrap();
    let cache = on_disk(&db, 100).await;
    let report = cache
        .warmer()
        .source(cache.warm_from_snapshot(&bad).priority(5))
        .source(cache.warm_from_tier(0).unwrap())
        .build()
        .unwrap()
        .run()
        .await;
    println!("{report:?}");
    let failed = report
        .sources
        .iter()
        .find(|s| s.name.contains("bad.snap"))
        .expect("the snapshot source is reported");
    let error = failed.listing_error.as_ref().expect("its listing failed");
    assert!(
        error.message().contains(&bad.display().to_string()),
        "{error}"
    );
    assert_eq!(report.warmed, 20, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hottest_keys_come_back_after_a_clear_of_the_hot_tier() {
    let dir = tempfile::tempdir().unwrap();
    // Every lookup feeds the hot-key sketch.
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(1_000)
        .disk(dir.path().join("cache.redb"))
        .analytics_sampling(1)
        .build()
        .await
        .unwrap();
    for i in 0..200 {
        cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    let hot = ["k3", "k17", "k42", "k99", "k150"];
    for _ in 0..50 {
        for key in hot {
            cache.get(&k(key)).await.unwrap();
        }
    }
    for i in 0..200 {
        cache.get(&format!("k{i}")).await.unwrap();
    }
    cache.hot().clear();
    let report = cache
        .warmer()
        .source(cache.warm_from_hot_keys(5))
        .build()
        .unwrap()
        .run()
        .await;
    println!("{report:?}");
    assert_eq!(report.total, 5, "{report:?}");
    assert_eq!(report.warmed, 5, "{report:?}");
    for key in hot {
        assert!(cache.hot().contains_key(&k(key)), "{key} is not back");
    }
    assert_eq!(cache.entry_count(), 5);
}
