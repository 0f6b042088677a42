//! Negative caching by loads: a load that finds no value
//! (`optionally_get_with`'s `None`, a `Loader`'s `Ok(None)`, a store's or
//! the cache loader's `None` on a `get`) is stored as a negative entry for
//! the negative time-to-live in every tier, memory, redb and a Redis
//! shared with another cache, and answers later callers without loading
//! until it expires; `negative_caching(false)` stores nothing; an insert
//! replaces it; errors picked by `cache_errors` are remembered the same way
//! for their own time-to-live; `class_negative_ttl` sets the time-to-live
//! of a class's negative entries; `load_stats` counts all of it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tempfile::TempDir;
use tiercache::redis::RedisBackend;
use tiercache::tier::{Backend, Flags};
use tiercache::{
    Cache, CacheBuilder, DEFAULT_NEGATIVE_TTL, Error, ErrorKind, Loader, Lookup, ManualClock, Meta,
};
use tiercache_tests::counting_loader::CountingLoader;
use tiercache_tests::protect_support::{get, key, lookup, ms, optionally};
use tiercache_tests::{
    RedisServer, Stack, TestStore, connected, held_in, key_bytes, stack, stack_with,
};

/// The negative time-to-live the tests set, where they set one.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// How long the `cache_errors` policy remembers a [`DbError::Forbidden`].
const ERROR_TTL: Duration = Duration::from_secs(10);

/// The metadata of the negative entry `found` (`what` names it), or a
/// panic if it is no negative entry.
#[track_caller]
fn negative_meta<V: fmt::Debug>(found: Lookup<V>, what: &str) -> Meta {
    match found {
        Lookup::Negative(meta) => meta,
        other => panic!("expected {what}, got {other:?}"),
    }
}

/// The expiry a negative entry `lookup` reports, or a panic if the lookup
/// is not negative.
#[track_caller]
fn negative_expiry(found: Lookup<String>) -> Option<u64> {
    let meta = negative_meta(found, "a negative entry");
    assert!(meta.is_negative(), "{meta:?}");
    meta.expires_at_ms
}

/// The metadata of the remembered error `found`, which must be flagged as
/// a failed load.
#[track_caller]
fn remembered_error(found: Lookup<String>) -> Meta {
    let meta = negative_meta(found, "a remembered error");
    assert!(meta.flags.contains(Flags::FAILED), "{meta:?}");
    meta
}

/// What a byte tier holds for `k`, read from the tier itself.
async fn in_tier(tier: &impl Backend, k: &str) -> Lookup {
    tier.get(&key_bytes(k)).await.unwrap()
}

/// A system of record's own error, which the `cache_errors` policy picks
/// by downcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DbError {
    /// Remembered for [`ERROR_TTL`].
    Forbidden,
    /// Not remembered: the next load tries again.
    Flaky,
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the database said {self:?}")
    }
}

impl std::error::Error for DbError {}

fn remember_forbidden(e: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    match e.downcast_ref::<DbError>()? {
        DbError::Forbidden => Some(ERROR_TTL),
        DbError::Flaky => None,
    }
}

/// A fallible one-shot loader for `try_get_with`, counted when polled.
async fn fallible(calls: &AtomicUsize, answer: Result<String, DbError>) -> Result<String, DbError> {
    calls.fetch_add(1, Ordering::SeqCst);
    answer
}

/// What `cache` answers a `try_get_with` of `"k"` with, loading by
/// [`fallible`].
async fn try_load(
    cache: &Cache<String, String>,
    calls: &AtomicUsize,
    answer: Result<String, DbError>,
) -> tiercache::Result<String> {
    cache.try_get_with(key("k"), fallible(calls, answer)).await
}

/// Loads `"k"` into `cache` by an `optionally_get_with` whose loader
/// finds no value, which answers `None`; answers that loader.
async fn load_a_negative(cache: &Cache<String, String>) -> CountingLoader {
    let none = CountingLoader::none();
    assert_eq!(optionally(cache, "k", &none).await, None);
    none
}

/// A loader that would find a value for `"k"`, which the negative entry
/// `cache` holds for it keeps from running (`when` says when), the
/// `optionally_get_with` answering `None`.
async fn kept_from_loading(cache: &Cache<String, String>, when: &str) -> CountingLoader {
    let values = CountingLoader::values();
    assert_eq!(optionally(cache, "k", &values).await, None, "{when}");
    assert_eq!(values.calls(), 0);
    values
}

/// A stack of `tiers` byte tiers whose negative entries live
/// [`NEGATIVE_TTL`].
async fn negative_stack(tiers: usize) -> Stack {
    stack_with(100, tiers, None, |b| b.negative_ttl(NEGATIVE_TTL)).await
}

/// A cache on a new clock over a redb tier in a new directory's `file`,
/// with more settings by `configure`; the directory lives as long as the
/// answer's.
async fn redb_cache(
    file: &str,
    configure: impl FnOnce(CacheBuilder<String, String>) -> CacheBuilder<String, String>,
) -> (TempDir, ManualClock, Cache<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let builder = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .disk(dir.path().join(file));
    let cache = configure(builder).build().await.unwrap();
    (dir, clock, cache)
}

/// A cache of a hot tier only, on `clock`, whose negative entries live
/// [`NEGATIVE_TTL`] and whose own loader is `loader`.
async fn loading_cache(
    clock: &ManualClock,
    loader: impl Loader<String, String> + 'static,
) -> Cache<String, String> {
    Cache::builder()
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .loader(loader)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn optionally_get_with_stores_none_and_later_callers_do_not_load() {
    let s = negative_stack(0).await;
    let first = load_a_negative(&s.cache).await;
    assert_eq!(first.calls(), 1);
    // Later callers' loaders, which would find a value, never run.
    let later = CountingLoader::values();
    for _ in 0..3 {
        assert_eq!(optionally(&s.cache, "k", &later).await, None);
    }
    assert_eq!(later.calls(), 0);
    assert_eq!(
        negative_expiry(lookup(&s.cache, "k").await),
        Some(s.clock.now_ms() + ms(NEGATIVE_TTL))
    );
    let stats = s.cache.load_stats();
    assert_eq!(stats.negatives_stored, 1);
    assert_eq!(
        stats.negative_hits, 4,
        "three loads and a lookup: {stats:?}"
    );
    // Another key loads as usual.
    assert_eq!(
        optionally(&s.cache, "j", &later).await,
        Some("loaded j".to_string())
    );
    assert_eq!(later.calls(), 1);
}

#[tokio::test]
async fn optionally_get_with_stores_the_negative_in_every_byte_tier() {
    let s = negative_stack(2).await;
    let first = load_a_negative(&s.cache).await;
    for tier in &s.tiers {
        assert_eq!(
            negative_meta(in_tier(tier.inner(), "k").await, "a negative entry").expires_at_ms,
            Some(s.clock.now_ms() + ms(NEGATIVE_TTL))
        );
    }
    // With the hot tier emptied, the tiers below answer.
    s.cache.hot().clear();
    let later = CountingLoader::values();
    assert_eq!(optionally(&s.cache, "k", &later).await, None);
    assert_eq!((first.calls(), later.calls()), (1, 0));
    assert_eq!(s.cache.load_stats().negatives_stored, 1);
}

#[tokio::test]
async fn optionally_get_with_stores_the_negative_in_redb_which_answers_without_loading() {
    let (_dir, clock, cache) = redb_cache("negatives.redb", |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let names: Vec<String> = cache.tier_stats().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["hot", "redb"]);
    let first = load_a_negative(&cache).await;
    assert_eq!(first.calls(), 1);
    // Only redb holds it now: it answers, and no loader runs.
    cache.hot().clear();
    let later = kept_from_loading(&cache, "only redb holds it").await;
    assert_eq!(cache.tier_stats()[1].hits, 1, "answered by redb");
    assert_eq!(
        negative_expiry(lookup(&cache, "k").await),
        Some(clock.now_ms() + ms(NEGATIVE_TTL))
    );
    // Expired in both tiers: the next caller loads.
    clock.advance(NEGATIVE_TTL);
    cache.hot().clear();
    assert_eq!(
        optionally(&cache, "k", &later).await,
        Some("loaded k".to_string())
    );
    assert_eq!(later.calls(), 1);
}

/// A Redis tier over the server at `url`, under `prefix`, on `clock`.
async fn redis_tier(url: &str, prefix: &str, clock: &ManualClock) -> RedisBackend {
    connected(
        RedisBackend::builder(url)
            .prefix(prefix)
            .clock(clock.clock()),
    )
    .await
}

/// A cache with its own hot tier over the Redis at `url`, under `prefix`,
/// on `clock`, remembering [`DbError::Forbidden`].
async fn cache_on_redis(url: &str, prefix: &str, clock: &ManualClock) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .cache_errors(remember_forbidden)
        .backend(redis_tier(url, prefix, clock).await)
        .build()
        .await
        .expect("a cache over the test Redis")
}

/// A Redis server for `test`, a clock and two caches on it sharing the
/// server under `prefix` ([`cache_on_redis`]), or `None` where no Redis is
/// installed.
async fn two_caches_on_redis(
    test: &str,
    prefix: &str,
) -> Option<(
    RedisServer,
    ManualClock,
    Cache<String, String>,
    Cache<String, String>,
)> {
    let server = RedisServer::start(test)?;
    let clock = ManualClock::default();
    let a = cache_on_redis(&server.url(), prefix, &clock).await;
    let b = cache_on_redis(&server.url(), prefix, &clock).await;
    Some((server, clock, a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_stored_in_redis_answers_another_cache_without_its_loader() {
    let prefix = "negative-caching-shared:";
    let Some((server, clock, a, b)) = two_caches_on_redis(
        "a_negative_stored_in_redis_answers_another_cache_without_its_loader",
        prefix,
    )
    .await
    else {
        return;
    };
    let loader_a = load_a_negative(&a).await;
    assert_eq!(loader_a.calls(), 1);
    // Redis holds the negative entry, with the negative time-to-live.
    let raw = redis_tier(&server.url(), prefix, &clock).await;
    assert_eq!(
        negative_meta(in_tier(&raw, "k").await, "a negative entry in Redis").expires_at_ms,
        Some(clock.now_ms() + ms(NEGATIVE_TTL))
    );
    // b has never seen the key: its hot tier misses, Redis answers.
    let loader_b = CountingLoader::values();
    assert_eq!(optionally(&b, "k", &loader_b).await, None);
    assert_eq!(get(&b, "k").await, None);
    assert!(matches!(lookup(&b, "k").await, Lookup::Negative(_)));
    assert_eq!(loader_b.calls(), 0);
    assert_eq!(b.load_stats().negatives_stored, 0);
    assert_eq!(b.load_stats().negative_hits, 3);
    assert_eq!(
        b.get_or_load(&key("k"), &loader_b).await.unwrap(),
        None,
        "get_or_load is answered by the negative entry too"
    );
    assert_eq!(loader_b.calls(), 0);
    // Past the negative time-to-live, b loads once, and a sees its value.
    clock.advance(NEGATIVE_TTL);
    assert_eq!(
        optionally(&b, "k", &loader_b).await,
        Some("loaded k".to_string())
    );
    assert_eq!(loader_b.calls(), 1);
    a.hot().clear();
    assert_eq!(get(&a, "k").await, Some("loaded k".to_string()));
    assert_eq!(loader_a.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_remembered_in_redis_fails_another_caches_load_without_its_loader() {
    let Some((_server, clock, a, b)) = two_caches_on_redis(
        "an_error_remembered_in_redis_fails_another_caches_load_without_its_loader",
        "negative-caching-errors:",
    )
    .await
    else {
        return;
    };
    let calls = AtomicUsize::new(0);
    try_load(&a, &calls, Err(DbError::Forbidden))
        .await
        .unwrap_err();
    assert_eq!(a.load_stats().errors_cached, 1);
    // b has never seen the key: Redis tells it the load failed.
    let err = try_load(&b, &calls, Ok(key("v"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "b's loader ran");
    let values = CountingLoader::values();
    assert_eq!(
        b.get_or_load(&key("k"), &values).await.unwrap_err().kind(),
        ErrorKind::Loader
    );
    assert_eq!(values.calls(), 0);
    assert_eq!(get(&b, "k").await, None);
    assert_eq!(b.load_stats().cached_errors_returned, 2);
    // Past the error's own time-to-live, b loads.
    clock.advance(ERROR_TTL);
    assert_eq!(try_load(&b, &calls, Ok(key("v"))).await.unwrap(), key("v"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_error_remembered_in_redb_fails_the_load_after_the_hot_tier_forgot_it() {
    let (_dir, _clock, cache) =
        redb_cache("errors.redb", |b| b.cache_errors(remember_forbidden)).await;
    let calls = AtomicUsize::new(0);
    try_load(&cache, &calls, Err(DbError::Forbidden))
        .await
        .unwrap_err();
    cache.hot().clear();
    let err = try_load(&cache, &calls, Ok(key("v"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.tier_stats()[1].hits, 1, "answered by redb");
    remembered_error(lookup(&cache, "k").await);
    assert_eq!(cache.load_stats().cached_errors_returned, 1);
}

#[tokio::test]
async fn a_negative_expires_by_the_clock_and_then_one_caller_loads() {
    let s = negative_stack(1).await;
    let none = load_a_negative(&s.cache).await;
    s.clock.advance(NEGATIVE_TTL - Duration::from_millis(1));
    let values = kept_from_loading(
        &s.cache,
        "1 ms before its expiry the negative still answers",
    )
    .await;
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
    for _ in 0..3 {
        assert_eq!(
            optionally(&s.cache, "k", &values).await,
            Some("loaded k".to_string())
        );
    }
    assert_eq!((none.calls(), values.calls()), (1, 1));
    assert_eq!(
        held_in(s.tiers[0].inner(), "k").await,
        Some("loaded k".to_string())
    );
}

#[tokio::test]
async fn the_default_negative_ttl_is_300_seconds() {
    assert_eq!(DEFAULT_NEGATIVE_TTL, Duration::from_secs(300));
    let s = stack(100, 1, None).await;
    let none = load_a_negative(&s.cache).await;
    let start = s.clock.now_ms();
    assert_eq!(
        negative_expiry(lookup(&s.cache, "k").await),
        Some(start + 300_000)
    );
    s.clock.advance(Duration::from_secs(299));
    let values = kept_from_loading(&s.cache, "still negative at 299 s").await;
    s.clock.advance(Duration::from_secs(2));
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss, "gone at 301 s");
    assert_eq!(
        optionally(&s.cache, "k", &values).await,
        Some("loaded k".to_string())
    );
    assert_eq!((none.calls(), values.calls()), (1, 1));
}

#[tokio::test]
async fn with_negative_caching_off_nothing_is_stored_and_every_caller_loads() {
    let s = stack_with(100, 1, None, |b| b.negative_caching(false)).await;
    let none = CountingLoader::none();
    for _ in 0..3 {
        assert_eq!(optionally(&s.cache, "k", &none).await, None);
        assert_eq!(s.cache.get_or_load(&key("j"), &none).await.unwrap(), None);
    }
    assert_eq!(none.calls(), 6);
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
    assert_eq!(lookup(&s.cache, "j").await, Lookup::Miss);
    for k in ["k", "j"] {
        assert_eq!(in_tier(s.tiers[0].inner(), k).await, Lookup::Miss);
    }
    let stats = s.cache.load_stats();
    assert_eq!((stats.negatives_stored, stats.negative_hits), (0, 0));

    // A cache loader's None is not stored either.
    let loader = CountingLoader::none();
    let cache: Cache<String, String> = Cache::builder()
        .negative_caching(false)
        .loader(loader.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(get(&cache, "k").await, None);
    assert_eq!(get(&cache, "k").await, None);
    assert_eq!(loader.calls(), 2);
    assert_eq!(cache.load_stats().negatives_stored, 0);
}

#[tokio::test]
async fn get_on_a_negative_entry_answers_none_and_counts_a_negative_hit() {
    let s = negative_stack(1).await;
    let none = CountingLoader::none();
    optionally(&s.cache, "k", &none).await;
    assert_eq!(s.cache.load_stats().negative_hits, 0);
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(s.cache.load_stats().negative_hits, 2);
    // A key the cache knows nothing of is a miss, not a negative hit.
    assert_eq!(get(&s.cache, "unknown").await, None);
    assert_eq!(s.cache.load_stats().negative_hits, 2);
    // Answered from the tier below, it counts as well.
    s.cache.hot().clear();
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(s.cache.load_stats().negative_hits, 3);
    assert_eq!(s.cache.load_stats().negatives_stored, 1);
    assert_eq!(none.calls(), 1);
}

#[tokio::test]
async fn an_insert_replaces_a_negative_entry_in_every_tier() {
    let s = negative_stack(2).await;
    let none = CountingLoader::none();
    optionally(&s.cache, "k", &none).await;
    s.cache.insert(key("k"), key("v")).await.unwrap();
    assert_eq!(get(&s.cache, "k").await, Some(key("v")));
    for tier in &s.tiers {
        assert_eq!(held_in(tier.inner(), "k").await, Some(key("v")));
    }
    let values = CountingLoader::values();
    assert_eq!(optionally(&s.cache, "k", &values).await, Some(key("v")));
    assert_eq!(
        s.cache.get_or_load(&key("k"), &values).await.unwrap(),
        Some(key("v"))
    );
    assert_eq!(values.calls(), 0);
    assert_eq!(s.cache.load_stats().negative_hits, 0);
    // The value outlives the negative time-to-live it replaced.
    s.clock.advance(NEGATIVE_TTL);
    s.cache.hot().clear();
    assert_eq!(get(&s.cache, "k").await, Some(key("v")));
}

#[tokio::test]
async fn get_or_load_caches_a_loaders_none_as_a_negative_entry() {
    let s = negative_stack(1).await;
    let none = CountingLoader::none();
    for _ in 0..3 {
        assert_eq!(s.cache.get_or_load(&key("k"), &none).await.unwrap(), None);
    }
    assert_eq!(none.calls(), 1);
    assert_eq!(
        negative_expiry(lookup(&s.cache, "k").await),
        Some(s.clock.now_ms() + ms(NEGATIVE_TTL))
    );
    assert!(in_tier(s.tiers[0].inner(), "k").await.is_negative());
    // From the tier below, with the hot tier emptied.
    s.cache.hot().clear();
    let values = CountingLoader::values();
    assert_eq!(s.cache.get_or_load(&key("k"), &values).await.unwrap(), None);
    assert_eq!(values.calls(), 0);
    let stats = s.cache.load_stats();
    assert_eq!(stats.negatives_stored, 1);
    assert_eq!(stats.negative_hits, 4, "{stats:?}");
    // Expired: one more load.
    s.clock.advance(NEGATIVE_TTL);
    assert_eq!(
        s.cache.get_or_load(&key("k"), &values).await.unwrap(),
        Some(key("loaded k"))
    );
    assert_eq!(values.calls(), 1);
}

#[tokio::test]
async fn a_picked_error_is_remembered_and_answered_without_the_loader() {
    let s = stack_with(100, 1, None, |b| b.cache_errors(remember_forbidden)).await;
    let calls = AtomicUsize::new(0);
    let err = try_load(&s.cache, &calls, Err(DbError::Forbidden))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(err.source_as::<DbError>(), Some(&DbError::Forbidden));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Remembered: fallible loads fail at once, their loaders not called.
    let err = try_load(&s.cache, &calls, Ok(key("v"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let values = CountingLoader::values();
    let err = s.cache.get_or_load(&key("k"), &values).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(values.calls(), 0);
    // Lookups see a negative entry that says a load failed.
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(
        remembered_error(lookup(&s.cache, "k").await).expires_at_ms,
        Some(s.clock.now_ms() + ms(ERROR_TTL))
    );
    // The tier below remembers it too.
    s.cache.hot().clear();
    let err = try_load(&s.cache, &calls, Ok(key("v"))).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    let stats = s.cache.load_stats();
    assert_eq!(stats.errors_cached, 1, "{stats:?}");
    assert_eq!(stats.cached_errors_returned, 3, "{stats:?}");
    assert_eq!(stats.negatives_stored, 0, "{stats:?}");
    assert_eq!(stats.negative_hits, 2, "the get and the lookup: {stats:?}");
}

#[tokio::test]
async fn get_or_load_remembers_a_picked_error_by_the_loaders_own_source() {
    let s = stack_with(100, 1, None, |b| b.cache_errors(remember_forbidden)).await;
    let failing = CountingLoader::new(|_| {
        Err(Error::new(ErrorKind::Loader, "the database refused").with_source(DbError::Forbidden))
    });
    let err = s.cache.get_or_load(&key("k"), &failing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(failing.calls(), 1);
    for _ in 0..3 {
        let err = s.cache.get_or_load(&key("k"), &failing).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Loader);
    }
    assert_eq!(failing.calls(), 1);
    assert_eq!(get(&s.cache, "k").await, None);
    let stats = s.cache.load_stats();
    assert_eq!((stats.errors_cached, stats.cached_errors_returned), (1, 3));
}

#[tokio::test]
async fn an_error_the_policy_does_not_pick_is_not_remembered() {
    let s = stack_with(100, 1, None, |b| b.cache_errors(remember_forbidden)).await;
    let calls = AtomicUsize::new(0);
    for attempt in 1..=3 {
        let err = try_load(&s.cache, &calls, Err(DbError::Flaky))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Loader);
        assert_eq!(err.source_as::<DbError>(), Some(&DbError::Flaky));
        assert_eq!(calls.load(Ordering::SeqCst), attempt);
    }
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
    assert_eq!(in_tier(s.tiers[0].inner(), "k").await, Lookup::Miss);
    // The next load succeeds and is cached.
    assert_eq!(
        try_load(&s.cache, &calls, Ok(key("v"))).await.unwrap(),
        key("v")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(get(&s.cache, "k").await, Some(key("v")));
    let stats = s.cache.load_stats();
    assert_eq!((stats.errors_cached, stats.cached_errors_returned), (0, 0));

    // Without a policy, no error is remembered, the picked kind included.
    let s = stack(100, 1, None).await;
    for _ in 0..2 {
        try_load(&s.cache, &calls, Err(DbError::Forbidden))
            .await
            .unwrap_err();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
    assert_eq!(s.cache.load_stats().errors_cached, 0);
}

#[tokio::test]
async fn a_remembered_error_expires_by_its_own_ttl() {
    // The negative time-to-live is longer than the error's: the error's
    // own one counts.
    let s = stack_with(100, 1, None, |b| {
        b.negative_ttl(NEGATIVE_TTL)
            .cache_errors(remember_forbidden)
    })
    .await;
    let calls = AtomicUsize::new(0);
    try_load(&s.cache, &calls, Err(DbError::Forbidden))
        .await
        .unwrap_err();
    s.clock.advance(ERROR_TTL - Duration::from_millis(1));
    try_load(&s.cache, &calls, Ok(key("v"))).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
    assert_eq!(
        try_load(&s.cache, &calls, Ok(key("v"))).await.unwrap(),
        key("v")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(s.cache.load_stats().cached_errors_returned, 1);
}

#[tokio::test]
async fn class_negative_ttl_sets_the_ttl_of_that_classs_negative_entries() {
    let s = stack_with(100, 1, None, |b| {
        b.negative_ttl(NEGATIVE_TTL)
            .class("session", Duration::from_secs(3_600))
            .class("other", Duration::from_secs(3_600))
            .class_negative_ttl("session", Duration::from_secs(10))
    })
    .await;
    let start = s.clock.now_ms();
    s.cache
        .insert_negative_in(key("s"), "session")
        .await
        .unwrap();
    s.cache.insert_negative_in(key("o"), "other").await.unwrap();
    let meta = negative_meta(lookup(&s.cache, "s").await, "a negative entry");
    assert_eq!(meta.expires_at_ms, Some(start + 10_000));
    assert_eq!(meta.class.as_str(), "session");
    // A class without its own negative time-to-live has the cache's.
    assert_eq!(
        negative_expiry(lookup(&s.cache, "o").await),
        Some(start + ms(NEGATIVE_TTL))
    );
    // The tier below holds each with its class's expiry.
    assert_eq!(
        negative_meta(
            in_tier(s.tiers[0].inner(), "s").await,
            "a negative entry below"
        )
        .expires_at_ms,
        Some(start + 10_000)
    );
    let values = CountingLoader::values();
    assert_eq!(optionally(&s.cache, "s", &values).await, None);
    assert_eq!(values.calls(), 0);
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(lookup(&s.cache, "s").await, Lookup::Miss);
    assert!(matches!(lookup(&s.cache, "o").await, Lookup::Negative(_)));
    s.clock.advance(NEGATIVE_TTL - Duration::from_secs(10));
    assert_eq!(lookup(&s.cache, "o").await, Lookup::Miss);
}

#[tokio::test]
async fn a_class_negative_ttl_of_the_default_class_applies_to_loads() {
    let s = stack_with(100, 1, None, |b| {
        b.negative_ttl(NEGATIVE_TTL)
            .class_negative_ttl("default", Duration::from_secs(5))
    })
    .await;
    let none = CountingLoader::none();
    s.cache.get_or_load(&key("k"), &none).await.unwrap();
    assert_eq!(
        negative_expiry(lookup(&s.cache, "k").await),
        Some(s.clock.now_ms() + 5_000)
    );
    s.clock.advance(Duration::from_secs(5));
    s.cache.get_or_load(&key("k"), &none).await.unwrap();
    assert_eq!(none.calls(), 2);
}

#[tokio::test]
async fn a_cache_loaders_none_on_get_is_cached_negatively() {
    let calls = Arc::new(AtomicUsize::new(0));
    let loader = {
        let calls = calls.clone();
        move |k: String| {
            let calls = calls.clone();
            async move {
                assert_eq!(k, "k");
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<Option<String>, tiercache::Error>(None)
            }
        }
    };
    let clock = ManualClock::default();
    let cache = loading_cache(&clock, loader).await;
    for _ in 0..3 {
        assert_eq!(get(&cache, "k").await, None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(matches!(lookup(&cache, "k").await, Lookup::Negative(_)));
    assert_eq!(cache.load_stats().negatives_stored, 1);
    clock.advance(NEGATIVE_TTL);
    assert_eq!(get(&cache, "k").await, None);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.load_stats().negatives_stored, 2);
}

#[tokio::test]
async fn a_stores_none_on_get_is_cached_negatively_in_every_tier() {
    let store = TestStore::<String, String>::new();
    let s = stack_with(100, 1, None, |b| {
        b.negative_ttl(NEGATIVE_TTL).store(store.clone())
    })
    .await;
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(store.calls().loads, 1);
    assert!(in_tier(s.tiers[0].inner(), "k").await.is_negative());
    // A value that appears in the store is not seen until the negative
    // expires.
    store.preload(key("k"), key("v"));
    assert_eq!(get(&s.cache, "k").await, None);
    s.cache.hot().clear();
    assert_eq!(get(&s.cache, "k").await, None);
    assert_eq!(store.calls().loads, 1);
    s.clock.advance(NEGATIVE_TTL);
    assert_eq!(get(&s.cache, "k").await, Some(key("v")));
    assert_eq!(get(&s.cache, "k").await, Some(key("v")));
    assert_eq!(store.calls().loads, 2);
}

#[tokio::test]
async fn a_get_that_loads_none_stores_a_negative_but_is_no_negative_hit() {
    // The load that finds nothing calls the loader: it is not a lookup
    // answered by a negative entry. The next one is.
    let loader = CountingLoader::none();
    let clock = ManualClock::default();
    let cache = loading_cache(&clock, loader.clone()).await;
    assert_eq!(get(&cache, "k").await, None);
    let stats = cache.load_stats();
    assert_eq!(
        (stats.negatives_stored, stats.negative_hits),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(get(&cache, "k").await, None);
    assert_eq!(cache.load_stats().negative_hits, 1);
    assert_eq!(loader.calls(), 1);
}

#[tokio::test]
async fn the_lookup_that_loads_none_reports_the_negative_entry_it_stored() {
    let loader = CountingLoader::none();
    let clock = ManualClock::default();
    let cache = loading_cache(&clock, loader.clone()).await;
    let expected = Some(clock.now_ms() + ms(NEGATIVE_TTL));
    assert_eq!(
        negative_expiry(lookup(&cache, "k").await),
        expected,
        "the first lookup, which loaded"
    );
    assert_eq!(
        negative_expiry(lookup(&cache, "k").await),
        expected,
        "a later lookup"
    );
    assert_eq!(loader.calls(), 1);
}
