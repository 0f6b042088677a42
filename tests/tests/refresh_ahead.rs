//! Refresh-ahead (`CacheBuilder::refresh_after_write`): a hit on an entry
//! written longer than the interval ago answers the current value at once
//! and reloads it in the background (from the cache's loader or its
//! store), once per key however many hits come; the reloaded value
//! replaces the entry in every tier, the disk tier included; a failed
//! reload keeps the old value and is counted; an insert made while a
//! reload is loading wins over it. Entries age by the cache's manual
//! clock; the reloads run on real tokio tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Cache, Lookup, ManualClock};
use tiercache_tests::protect_support::{Source, eventually, get, lookup, settle, spawn_get};
use tiercache_tests::{Stack, StoreCalls, TestStore, held_in, stack_with};

/// The refresh interval of every cache here.
const REFRESH: Duration = Duration::from_secs(10);

fn key() -> String {
    "k".to_string()
}

/// What the tier below memory holds for the key.
async fn below(s: &Stack) -> Option<String> {
    held_in(s.tiers[0].inner(), "k").await
}

/// What `cache` answers a `get_or_load` of the key from `loader` with.
async fn get_or_load(cache: &Cache<String, String>, loader: &Source) -> Option<String> {
    cache.get_or_load(&key(), loader).await.unwrap()
}

/// Waits until `cache` has counted `n` reloads.
async fn reloads(cache: &Cache<String, String>, n: u64, what: &str) {
    eventually(what, || cache.load_stats().refreshes == n).await;
}

/// A one-tier stack (its entries living `ttl`, if any) whose loader is a
/// new source and whose entries are due for a reload `REFRESH` after their
/// write, holding `"old"` for the key.
async fn old_entry(ttl: Option<Duration>) -> (Source, Stack) {
    let src = Source::new();
    let s = stack_with(100, 1, ttl, |b| {
        b.loader(src.clone()).refresh_after_write(REFRESH)
    })
    .await;
    s.cache.insert(key(), "old".into()).await.unwrap();
    (src, s)
}

/// Makes the entry due, and hits it: the hit answers `"old"` at once.
async fn due_hit(s: &Stack) {
    s.clock.advance(REFRESH);
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
}

/// An [`old_entry`] stack whose due hit started a reload the source holds.
async fn held_reload() -> (Source, Stack) {
    let (src, s) = old_entry(None).await;
    src.hold(true);
    due_hit(&s).await;
    src.started().await;
    (src, s)
}

/// Lets the held reload go on; what it does after loading, it does at
/// once: gives it time to.
async fn end_held_reload(src: &Source) {
    src.release();
    eventually("the reload to end", || src.finished() == 1).await;
    settle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_hit_answers_the_old_value_at_once_and_many_hits_start_one_reload() {
    let (src, s) = old_entry(None).await;
    src.hold(true);
    s.clock.advance(REFRESH);
    // Fifty hits at once, while the one reload they start is held: every
    // one answers the old value without waiting for it.
    let tasks: Vec<_> = (0..50).map(|_| spawn_get(&s.cache, "k")).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().as_deref(), Some("old"));
    }
    src.started().await;
    for _ in 0..10 {
        assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    }
    settle().await;
    assert_eq!(src.calls(), 1, "one reload for sixty hits");
    assert_eq!(
        s.cache.load_stats().refreshes,
        0,
        "the reload is still held"
    );
    src.release();
    reloads(&s.cache, 1, "the reload").await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    assert_eq!(
        below(&s).await.as_deref(),
        Some("k v1"),
        "the tier below memory holds the reloaded value"
    );
    // The reloaded entry is new: more hits at the same time reload nothing.
    for _ in 0..10 {
        assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
    }
    settle().await;
    assert_eq!(src.calls(), 1);
    let stats = s.cache.load_stats();
    assert_eq!((stats.refreshes, stats.refreshes_failed), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_before_the_interval_starts_no_reload() {
    let (src, s) = old_entry(None).await;
    s.clock.advance(REFRESH - Duration::from_millis(1));
    for _ in 0..10 {
        assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    }
    // A hit from the tier below memory is not due either.
    s.cache.hot().clear();
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    settle().await;
    assert_eq!(src.calls(), 0);
    assert_eq!(s.cache.load_stats().refreshes, 0);
    // One millisecond later it is.
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    reloads(&s.cache, 1, "the reload").await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v1"));
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
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    assert_eq!(store.calls().loads, 1);
    // The store's value changes behind the cache's back.
    store.preload(key(), "new".into());
    due_hit(&s).await;
    reloads(&s.cache, 1, "the reload").await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("new"));
    assert_eq!(below(&s).await.as_deref(), Some("new"));
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
    assert_eq!(get(&cache, "k").await.as_deref(), Some("old"));
    reloads(&cache, 1, "the first reload").await;
    cache.hot().clear();
    assert_eq!(
        get(&cache, "k").await.as_deref(),
        Some("k v1"),
        "the disk tier holds the reloaded value"
    );
    assert_eq!(src.calls(), 1);
    // A hit from the disk tier starts one too, and it replaces the value in
    // both tiers.
    clock.advance(REFRESH);
    cache.hot().clear();
    assert_eq!(get(&cache, "k").await.as_deref(), Some("k v1"));
    reloads(&cache, 2, "the second reload").await;
    assert_eq!(cache.hot().get(&key()).as_deref(), Some("k v2"));
    cache.hot().clear();
    assert_eq!(get(&cache, "k").await.as_deref(), Some("k v2"));
    settle().await;
    assert_eq!(src.calls(), 2);
    assert_eq!(cache.load_stats().refreshes_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reload_keeps_the_old_value_and_is_counted() {
    let (src, s) = old_entry(None).await;
    src.fail(true);
    due_hit(&s).await;
    eventually("the failed reload", || {
        s.cache.load_stats().refreshes_failed == 1
    })
    .await;
    // Read without a hit of the cache, which would start another reload.
    assert_eq!(s.cache.hot().get(&key()).as_deref(), Some("old"));
    assert_eq!(below(&s).await.as_deref(), Some("old"));
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().refreshes, 0);
    // The old entry is still due: once the source is back, the next hit
    // reloads it.
    src.fail(false);
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("old"));
    reloads(&s.cache, 1, "the second reload").await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v2"));
    let stats = s.cache.load_stats();
    assert_eq!((stats.refreshes, stats.refreshes_failed), (1, 1));
    assert_eq!(src.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_during_a_reload_wins_over_the_reloaded_value() {
    let (src, s) = held_reload().await;
    s.cache.insert(key(), "written".into()).await.unwrap();
    end_held_reload(&src).await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("written"));
    assert_eq!(below(&s).await.as_deref(), Some("written"));
    s.cache.hot().clear();
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("written"));
    settle().await;
    assert_eq!(src.calls(), 1);
    assert_eq!(s.cache.load_stats().refreshes_failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_during_a_reload_is_not_undone() {
    let (src, s) = held_reload().await;
    s.cache.remove(&key()).await.unwrap();
    end_held_reload(&src).await;
    assert_eq!(s.cache.hot().get(&key()), None);
    assert_eq!(below(&s).await, None);
    assert_eq!(src.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_through_get_with_and_its_kin_start_reloads_too() {
    let (src, s) = old_entry(None).await;
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

    s.clock.advance(REFRESH);
    assert_eq!(s.cache.get_with(key(), init()).await.unwrap(), "old");
    reloads(&s.cache, 1, "the reload after get_with").await;
    assert_eq!(s.cache.get_with(key(), init()).await.unwrap(), "k v1");

    s.clock.advance(REFRESH);
    let fallible = async { Ok::<_, std::io::Error>(init().await) };
    assert_eq!(s.cache.try_get_with(key(), fallible).await.unwrap(), "k v1");
    reloads(&s.cache, 2, "the reload after try_get_with").await;
    assert_eq!(get_or_load(&s.cache, &other).await.as_deref(), Some("k v2"));

    s.clock.advance(REFRESH);
    assert_eq!(get_or_load(&s.cache, &other).await.as_deref(), Some("k v2"));
    reloads(&s.cache, 3, "the reload after get_or_load").await;

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
    reloads(&s.cache, 4, "the reload after optionally_get_with").await;
    assert_eq!(get(&s.cache, "k").await.as_deref(), Some("k v4"));
    settle().await;
    assert_eq!(src.calls(), 4);
    assert_eq!(other.calls(), 0);
    assert_eq!(inits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_entry_lives_a_full_time_to_live_from_the_reload() {
    let ttl = Duration::from_secs(60);
    let (src, s) = old_entry(Some(ttl)).await;
    // The manual clock has not moved since the insert.
    let t0 = s.clock.now_ms();
    due_hit(&s).await;
    reloads(&s.cache, 1, "the reload").await;
    // Past the inserted entry's expiry, before the reloaded one's.
    s.clock.set_ms(t0 + 65_000);
    assert_eq!(below(&s).await.as_deref(), Some("k v1"));
    assert_eq!(s.cache.hot().get(&key()).as_deref(), Some("k v1"));
    assert_eq!(src.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_finds_no_value_leaves_a_negative_entry() {
    let (src, s) = old_entry(None).await;
    src.gone(true);
    due_hit(&s).await;
    reloads(&s.cache, 1, "the reload").await;
    assert!(matches!(lookup(&s.cache, "k").await, Lookup::Negative(_)));
    assert_eq!(get(&s.cache, "k").await, None);
    settle().await;
    assert_eq!(src.calls(), 1, "the negative entry answers without a load");
}
