//! Refresh-ahead (`CacheBuilder::refresh_after_write`): a hit on an entry
//! written longer than the interval ago answers the current value at once
//! and reloads it in the background (from the cache's loader or its
//! store), once per key however many hits come; the reloaded value
//! replaces the entry in every tier, the disk tier included; a failed
//! reload keeps the old value and is counted; an insert made while a
//! reload is loading wins over it. Entries age by the cache's manual
//! clock; the reloads run on real tokio tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiercache::{Cache, Error, ErrorKind, Loader, Lookup, ManualClock, Result};
use tiercache_tests::{StoreCalls, TestStore, held, stack_with};
use tokio::sync::{Notify, Semaphore};

/// The refresh interval of every cache here.
const REFRESH: Duration = Duration::from_secs(10);

/// The system of record behind the cache: its n-th load of `key` answers
/// `"{key} v{n}"`. It counts its loads and can hold them (until
/// [`Source::release`]), fail them, or find no value.
#[derive(Clone)]
struct Source(Arc<SourceState>);

struct SourceState {
    calls: AtomicUsize,
    finished: AtomicUsize,
    hold: AtomicBool,
    fail: AtomicBool,
    gone: AtomicBool,
    started: Notify,
    release: Semaphore,
}

impl Source {
    fn new() -> Self {
        Source(Arc::new(SourceState {
            calls: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            hold: AtomicBool::new(false),
            fail: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            started: Notify::new(),
            release: Semaphore::new(0),
        }))
    }

    fn calls(&self) -> usize {
        self.0.calls.load(Ordering::SeqCst)
    }

    /// How many loads have returned.
    fn finished(&self) -> usize {
        self.0.finished.load(Ordering::SeqCst)
    }

    /// From now on each load waits for a [`release`](Self::release).
    fn hold(&self, on: bool) {
        self.0.hold.store(on, Ordering::SeqCst);
    }

    fn fail(&self, on: bool) {
        self.0.fail.store(on, Ordering::SeqCst);
    }

    fn gone(&self, on: bool) {
        self.0.gone.store(on, Ordering::SeqCst);
    }

    /// Waits until a held load has started.
    async fn started(&self) {
        self.0.started.notified().await;
    }

    /// Lets one held load go on.
    fn release(&self) {
        self.0.release.add_permits(1);
    }
}

impl Loader<String, String> for Source {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        let s = &self.0;
        let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if s.hold.load(Ordering::SeqCst) {
            s.started.notify_one();
            s.release
                .acquire()
                .await
                .expect("the semaphore is never closed")
                .forget();
        }
        s.finished.fetch_add(1, Ordering::SeqCst);
        if s.fail.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "the source is down"));
        }
        if s.gone.load(Ordering::SeqCst) {
            return Ok(None);
        }
        Ok(Some(format!("{key} v{n}")))
    }
}

/// Waits (in real time, at most 5 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets background tasks run for a while, for checks that nothing starts.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn key() -> String {
    "k".to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_hit_answers_the_old_value_at_once_and_many_hits_start_one_reload() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.hold(true);
    s.clock.advance(REFRESH);
    // Fifty hits at once, while the one reload they start is held: every
    // one answers the old value without waiting for it.
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cache = s.cache.clone();
            tokio::spawn(async move { cache.get(&key()).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("old"));
    }
    src.started().await;
    for _ in 0..10 {
        assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    }
    settle().await;
    assert_eq!(src.calls(), 1, "one reload for sixty hits");
    assert_eq!(
        s.cache.load_stats().refreshes,
        0,
        "the reload is still held"
    );
    src.release();
    eventually("the reload", || s.cache.load_stats().refreshes == 1).await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("k v1"),
        "the tier below memory holds the reloaded value"
    );
    // The reloaded entry is new: more hits at the same time reload nothing.
    for _ in 0..10 {
        assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    }
    settle().await;
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!((stats.refreshes, stats.refreshes_failed), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_before_the_interval_starts_no_reload() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(REFRESH - Duration::from_millis(1));
    for _ in 0..10 {
        assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    }
    // A hit from the tier below memory is not due either.
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    settle().await;
    assert_eq!(src.calls(), 0);
    assert_eq!(s.cache.load_stats().refreshes, 0);
    // One millisecond later it is.
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the reload", || s.cache.load_stats().refreshes == 1).await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_through_the_store_replaces_the_value_and_saves_nothing() {
    let store: TestStore<String, String> = TestStore::new();
    store.preload(key(), "old".into());
    let s = stack_with(100, 1, None, |b| {
        b.store(store.clone()).refresh_after_write(REFRESH)
    })
    .await;
    // Read through on a miss everywhere.
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    assert_eq!(store.calls().loads, 1);
    // The store's value changes behind the cache's back.
    store.preload(key(), "new".into());
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the reload", || s.cache.load_stats().refreshes == 1).await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("new"));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("new")
    );
    settle().await;
    assert_eq!(
        store.calls(),
        StoreCalls {
            loads: 2,
            ..StoreCalls::default()
        },
        "a reload reads the store and writes nothing back"
    );
    assert!(store.history(&key()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_replaces_the_value_in_the_disk_tier_too() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let src = Source::new();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .disk(dir.path().join("tier.redb"))
        .loader(src.clone())
        .refresh_after_write(REFRESH)
        .build()
        .await
        .unwrap();
    cache.insert(key(), "old".into()).await.unwrap();
    clock.advance(REFRESH);
    // A hot hit starts the reload.
    assert_eq!(cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the first reload", || cache.load_stats().refreshes == 1).await;
    cache.hot().clear();
    assert_eq!(
        cache.get(&key()).await.unwrap().as_deref(),
        Some("k v1"),
        "the disk tier holds the reloaded value"
    );
    assert_eq!(src.calls(), 1);
    // A hit from the disk tier starts one too, and it replaces the value in
    // both tiers.
    clock.advance(REFRESH);
    cache.hot().clear();
    assert_eq!(cache.get(&key()).await.unwrap().as_deref(), Some("k v1"));
    eventually("the second reload", || cache.load_stats().refreshes == 2).await;
    assert_eq!(cache.hot().get(&key()).as_deref(), Some("k v2"));
    cache.hot().clear();
    assert_eq!(cache.get(&key()).await.unwrap().as_deref(), Some("k v2"));
    settle().await;
    assert_eq!(src.calls(), 2);
    assert_eq!(cache.load_stats().refreshes_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_keeps_the_old_value_and_is_counted() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.fail(true);
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the failed reload", || {
        s.cache.load_stats().refreshes_failed == 1
    })
    .await;
    // Read without a hit of the cache, which would start another reload.
    assert_eq!(s.cache.hot().get(&key()).as_deref(), Some("old"));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("old")
    );
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().refreshes, 0);
    // The old entry is still due: once the source is back, the next hit
    // reloads it.
    src.fail(false);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the second reload", || s.cache.load_stats().refreshes == 1).await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v2"));
    let stats = s.cache.load_stats();
    assert_eq!((stats.refreshes, stats.refreshes_failed), (1, 1));
    assert_eq!(src.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_during_a_reload_wins_over_the_reloaded_value() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.hold(true);
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    src.started().await;
    s.cache.insert(key(), "written".into()).await.unwrap();
    src.release();
    eventually("the reload to end", || src.finished() == 1).await;
    // What the reload does after loading, it does at once: give it time to.
    settle().await;
    assert_eq!(
        s.cache.get(&key()).await.unwrap().as_deref(),
        Some("written")
    );
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("written")
    );
    s.cache.hot().clear();
    assert_eq!(
        s.cache.get(&key()).await.unwrap().as_deref(),
        Some("written")
    );
    settle().await;
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().refreshes_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_during_a_reload_is_not_undone() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.hold(true);
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    src.started().await;
    s.cache.remove(&key()).await.unwrap();
    src.release();
    eventually("the reload to end", || src.finished() == 1).await;
    settle().await;
    assert_eq!(s.cache.hot().get(&key()), None);
    assert_eq!(held(&s.tiers[0], "k").await, None);
    assert_eq!(src.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_through_get_with_and_its_kin_start_reloads_too() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    // The callers' own loaders must not run: every call below is a hit.
    let inits = Arc::new(AtomicUsize::new(0));
    let init = || {
        let inits = inits.clone();
        async move {
            inits.fetch_add(1, Ordering::SeqCst);
            "from init".to_string()
        }
    };
    let other = Source::new();
    s.cache.insert(key(), "old".into()).await.unwrap();

    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get_with(key(), init()).await.unwrap(), "old");
    eventually("the reload after get_with", || {
        s.cache.load_stats().refreshes == 1
    })
    .await;
    assert_eq!(s.cache.get_with(key(), init()).await.unwrap(), "k v1");

    s.clock.advance(REFRESH);
    let fallible = async { Ok::<_, std::io::Error>(init().await) };
    assert_eq!(s.cache.try_get_with(key(), fallible).await.unwrap(), "k v1");
    eventually("the reload after try_get_with", || {
        s.cache.load_stats().refreshes == 2
    })
    .await;
    assert_eq!(
        s.cache
            .get_or_load(&key(), &other)
            .await
            .unwrap()
            .as_deref(),
        Some("k v2")
    );

    s.clock.advance(REFRESH);
    assert_eq!(
        s.cache
            .get_or_load(&key(), &other)
            .await
            .unwrap()
            .as_deref(),
        Some("k v2")
    );
    eventually("the reload after get_or_load", || {
        s.cache.load_stats().refreshes == 3
    })
    .await;

    s.clock.advance(REFRESH);
    let optional = async { Some(init().await) };
    assert_eq!(
        s.cache
            .optionally_get_with(key(), optional)
            .await
            .unwrap()
            .as_deref(),
        Some("k v3")
    );
    eventually("the reload after optionally_get_with", || {
        s.cache.load_stats().refreshes == 4
    })
    .await;
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("k v4"));
    settle().await;
    assert_eq!(src.calls(), 4);
    assert_eq!(other.calls(), 0);
    assert_eq!(inits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_entry_lives_a_full_time_to_live_from_the_reload() {
    let ttl = Duration::from_secs(60);
    let src = Source::new();
    let s = stack_with(100, 1, Some(ttl), |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    let t0 = s.clock.now_ms();
    s.cache.insert(key(), "old".into()).await.unwrap();
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the reload", || s.cache.load_stats().refreshes == 1).await;
    // Past the inserted entry's expiry, before the reloaded one's.
    s.clock.set_ms(t0 + 65_000);
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v).as_deref(),
        Some("k v1")
    );
    assert_eq!(s.cache.hot().get(&key()).as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_finds_no_value_leaves_a_negative_entry() {
    let src = Source::new();
    let s = stack_with(100, 1, None, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    src.gone(true);
    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get(&key()).await.unwrap().as_deref(), Some("old"));
    eventually("the reload", || s.cache.load_stats().refreshes == 1).await;
    assert!(matches!(
        s.cache.lookup(&key()).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert_eq!(s.cache.get(&key()).await.unwrap(), None);
    settle().await;
    assert_eq!(src.calls(), 1, "the negative entry answers without a load");
}
