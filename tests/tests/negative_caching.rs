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

use tiercache::redis::RedisBackend;
use tiercache::tier::{Backend, Flags};
use tiercache::{Cache, DEFAULT_NEGATIVE_TTL, Error, ErrorKind, Lookup, ManualClock};
use tiercache_tests::counting_loader::CountingLoader;
use tiercache_tests::{RedisServer, TestStore, connected, held, key_bytes, stack, stack_with};

/// The negative time-to-live the tests set, where they set one.
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// How long the `cache_errors` policy remembers a [`DbError::Forbidden`].
const ERROR_TTL: Duration = Duration::from_secs(10);

fn key(k: &str) -> String {
    k.to_string()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// The expiry a negative entry `lookup` reports, or a panic if the lookup
/// is not negative.
fn negative_expiry(found: Lookup<String>) -> Option<u64> {
    match found {
        Lookup::Negative(meta) => {
            assert!(meta.is_negative(), "{meta:?}");
            meta.expires_at_ms
        }
        other => panic!("expected a negative entry, got {other:?}"),
    }
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

#[tokio::test]
async fn optionally_get_with_stores_none_and_later_callers_do_not_load() {
    let s = stack_with(100, 0, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let first = CountingLoader::none();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), first.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(first.calls(), 1);
    // Later callers' loaders, which would find a value, never run.
    let later = CountingLoader::values();
    for _ in 0..3 {
        assert_eq!(
            s.cache
                .optionally_get_with(key("k"), later.optional("k"))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(later.calls(), 0);
    assert_eq!(
        negative_expiry(s.cache.lookup(&key("k")).await.unwrap()),
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
        s.cache
            .optionally_get_with(key("j"), later.optional("j"))
            .await
            .unwrap(),
        Some("loaded j".to_string())
    );
    assert_eq!(later.calls(), 1);
}

#[tokio::test]
async fn optionally_get_with_stores_the_negative_in_every_byte_tier() {
    let s = stack_with(100, 2, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let first = CountingLoader::none();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), first.optional("k"))
            .await
            .unwrap(),
        None
    );
    for tier in &s.tiers {
        match tier.inner().get(&key_bytes("k")).await.unwrap() {
            Lookup::Negative(meta) => assert_eq!(
                meta.expires_at_ms,
                Some(s.clock.now_ms() + ms(NEGATIVE_TTL))
            ),
            other => panic!("expected a negative entry, got {other:?}"),
        }
    }
    // With the hot tier emptied, the tiers below answer.
    s.cache.hot().clear();
    let later = CountingLoader::values();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), later.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!((first.calls(), later.calls()), (1, 0));
    assert_eq!(s.cache.load_stats().negatives_stored, 1);
}

#[tokio::test]
async fn optionally_get_with_stores_the_negative_in_redb_which_answers_without_loading() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .disk(dir.path().join("negatives.redb"))
        .negative_ttl(NEGATIVE_TTL)
        .build()
        .await
        .unwrap();
    let names: Vec<String> = cache.tier_stats().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["hot", "redb"]);
    let first = CountingLoader::none();
    assert_eq!(
        cache
            .optionally_get_with(key("k"), first.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(first.calls(), 1);
    // Only redb holds it now: it answers, and no loader runs.
    cache.hot().clear();
    let later = CountingLoader::values();
    assert_eq!(
        cache
            .optionally_get_with(key("k"), later.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(later.calls(), 0);
    assert_eq!(cache.tier_stats()[1].hits, 1, "answered by redb");
    assert_eq!(
        negative_expiry(cache.lookup(&key("k")).await.unwrap()),
        Some(clock.now_ms() + ms(NEGATIVE_TTL))
    );
    // Expired in both tiers: the next caller loads.
    clock.advance(NEGATIVE_TTL);
    cache.hot().clear();
    assert_eq!(
        cache
            .optionally_get_with(key("k"), later.optional("k"))
            .await
            .unwrap(),
        Some("loaded k".to_string())
    );
    assert_eq!(later.calls(), 1);
}

/// A cache with its own hot tier over the Redis at `url`, under `prefix`,
/// on `clock`, remembering [`DbError::Forbidden`].
async fn cache_on_redis(url: &str, prefix: &str, clock: &ManualClock) -> Cache<String, String> {
    let redis = connected(
        RedisBackend::builder(url)
            .prefix(prefix)
            .clock(clock.clock()),
    )
    .await;
    Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .cache_errors(remember_forbidden)
        .backend(redis)
        .build()
        .await
        .expect("a cache over the test Redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_negative_stored_in_redis_answers_another_cache_without_its_loader() {
    let Some(server) =
        RedisServer::start("a_negative_stored_in_redis_answers_another_cache_without_its_loader")
    else {
        return;
    };
    let clock = ManualClock::default();
    let prefix = "negative-caching-shared:";
    let a = cache_on_redis(&server.url(), prefix, &clock).await;
    let b = cache_on_redis(&server.url(), prefix, &clock).await;
    let loader_a = CountingLoader::none();
    assert_eq!(
        a.optionally_get_with(key("k"), loader_a.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(loader_a.calls(), 1);
    // Redis holds the negative entry, with the negative time-to-live.
    let raw = connected(
        RedisBackend::builder(server.url())
            .prefix(prefix)
            .clock(clock.clock()),
    )
    .await;
    match raw.get(&key_bytes("k")).await.unwrap() {
        Lookup::Negative(meta) => {
            assert_eq!(meta.expires_at_ms, Some(clock.now_ms() + ms(NEGATIVE_TTL)));
        }
        other => panic!("expected a negative entry in Redis, got {other:?}"),
    }
    // b has never seen the key: its hot tier misses, Redis answers.
    let loader_b = CountingLoader::values();
    assert_eq!(
        b.optionally_get_with(key("k"), loader_b.optional("k"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(b.get(&key("k")).await.unwrap(), None);
    assert!(matches!(
        b.lookup(&key("k")).await.unwrap(),
        Lookup::Negative(_)
    ));
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
        b.optionally_get_with(key("k"), loader_b.optional("k"))
            .await
            .unwrap(),
        Some("loaded k".to_string())
    );
    assert_eq!(loader_b.calls(), 1);
    a.hot().clear();
    assert_eq!(
        a.get(&key("k")).await.unwrap(),
        Some("loaded k".to_string())
    );
    assert_eq!(loader_a.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_remembered_in_redis_fails_another_caches_load_without_its_loader() {
    let Some(server) = RedisServer::start(
        "an_error_remembered_in_redis_fails_another_caches_load_without_its_loader",
    ) else {
        return;
    };
    let clock = ManualClock::default();
    let prefix = "negative-caching-errors:";
    let a = cache_on_redis(&server.url(), prefix, &clock).await;
    let b = cache_on_redis(&server.url(), prefix, &clock).await;
    let calls = AtomicUsize::new(0);
    a.try_get_with(key("k"), fallible(&calls, Err(DbError::Forbidden)))
        .await
        .unwrap_err();
    assert_eq!(a.load_stats().errors_cached, 1);
    // b has never seen the key: Redis tells it the load failed.
    let err = b
        .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "b's loader ran");
    let values = CountingLoader::values();
    assert_eq!(
        b.get_or_load(&key("k"), &values).await.unwrap_err().kind(),
        ErrorKind::Loader
    );
    assert_eq!(values.calls(), 0);
    assert_eq!(b.get(&key("k")).await.unwrap(), None);
    assert_eq!(b.load_stats().cached_errors_returned, 2);
    // Past the error's own time-to-live, b loads.
    clock.advance(ERROR_TTL);
    assert_eq!(
        b.try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
            .await
            .unwrap(),
        key("v")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_error_remembered_in_redb_fails_the_load_after_the_hot_tier_forgot_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .disk(dir.path().join("errors.redb"))
        .cache_errors(remember_forbidden)
        .build()
        .await
        .unwrap();
    let calls = AtomicUsize::new(0);
    cache
        .try_get_with(key("k"), fallible(&calls, Err(DbError::Forbidden)))
        .await
        .unwrap_err();
    cache.hot().clear();
    let err = cache
        .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.tier_stats()[1].hits, 1, "answered by redb");
    match cache.lookup(&key("k")).await.unwrap() {
        Lookup::Negative(meta) => assert!(meta.flags.contains(Flags::FAILED), "{meta:?}"),
        other => panic!("expected a remembered error, got {other:?}"),
    }
    assert_eq!(cache.load_stats().cached_errors_returned, 1);
}

#[tokio::test]
async fn a_negative_expires_by_the_clock_and_then_one_caller_loads() {
    let s = stack_with(100, 1, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let none = CountingLoader::none();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), none.optional("k"))
            .await
            .unwrap(),
        None
    );
    s.clock.advance(NEGATIVE_TTL - Duration::from_millis(1));
    let values = CountingLoader::values();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), values.optional("k"))
            .await
            .unwrap(),
        None,
        "1 ms before its expiry the negative still answers"
    );
    assert_eq!(values.calls(), 0);
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(s.cache.lookup(&key("k")).await.unwrap(), Lookup::Miss);
    for _ in 0..3 {
        assert_eq!(
            s.cache
                .optionally_get_with(key("k"), values.optional("k"))
                .await
                .unwrap(),
            Some("loaded k".to_string())
        );
    }
    assert_eq!((none.calls(), values.calls()), (1, 1));
    assert_eq!(
        held(&s.tiers[0], "k").await.map(|(v, _)| v),
        Some("loaded k".to_string())
    );
}

#[tokio::test]
async fn the_default_negative_ttl_is_300_seconds() {
    assert_eq!(DEFAULT_NEGATIVE_TTL, Duration::from_secs(300));
    let s = stack(100, 1, None).await;
    let none = CountingLoader::none();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), none.optional("k"))
            .await
            .unwrap(),
        None
    );
    let start = s.clock.now_ms();
    assert_eq!(
        negative_expiry(s.cache.lookup(&key("k")).await.unwrap()),
        Some(start + 300_000)
    );
    s.clock.advance(Duration::from_secs(299));
    let values = CountingLoader::values();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), values.optional("k"))
            .await
            .unwrap(),
        None,
        "still negative at 299 s"
    );
    assert_eq!(values.calls(), 0);
    s.clock.advance(Duration::from_secs(2));
    assert_eq!(
        s.cache.lookup(&key("k")).await.unwrap(),
        Lookup::Miss,
        "gone at 301 s"
    );
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), values.optional("k"))
            .await
            .unwrap(),
        Some("loaded k".to_string())
    );
    assert_eq!((none.calls(), values.calls()), (1, 1));
}

#[tokio::test]
async fn with_negative_caching_off_nothing_is_stored_and_every_caller_loads() {
    let s = stack_with(100, 1, None, |b| b.negative_caching(false)).await;
    let none = CountingLoader::none();
    for _ in 0..3 {
        assert_eq!(
            s.cache
                .optionally_get_with(key("k"), none.optional("k"))
                .await
                .unwrap(),
            None
        );
        assert_eq!(s.cache.get_or_load(&key("j"), &none).await.unwrap(), None);
    }
    assert_eq!(none.calls(), 6);
    assert_eq!(s.cache.lookup(&key("k")).await.unwrap(), Lookup::Miss);
    assert_eq!(s.cache.lookup(&key("j")).await.unwrap(), Lookup::Miss);
    for k in ["k", "j"] {
        assert_eq!(
            s.tiers[0].inner().get(&key_bytes(k)).await.unwrap(),
            Lookup::Miss
        );
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
    assert_eq!(cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(loader.calls(), 2);
    assert_eq!(cache.load_stats().negatives_stored, 0);
}

#[tokio::test]
async fn get_on_a_negative_entry_answers_none_and_counts_a_negative_hit() {
    let s = stack_with(100, 1, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let none = CountingLoader::none();
    s.cache
        .optionally_get_with(key("k"), none.optional("k"))
        .await
        .unwrap();
    assert_eq!(s.cache.load_stats().negative_hits, 0);
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(s.cache.load_stats().negative_hits, 2);
    // A key the cache knows nothing of is a miss, not a negative hit.
    assert_eq!(s.cache.get(&key("unknown")).await.unwrap(), None);
    assert_eq!(s.cache.load_stats().negative_hits, 2);
    // Answered from the tier below, it counts as well.
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(s.cache.load_stats().negative_hits, 3);
    assert_eq!(s.cache.load_stats().negatives_stored, 1);
    assert_eq!(none.calls(), 1);
}

#[tokio::test]
async fn an_insert_replaces_a_negative_entry_in_every_tier() {
    let s = stack_with(100, 2, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let none = CountingLoader::none();
    s.cache
        .optionally_get_with(key("k"), none.optional("k"))
        .await
        .unwrap();
    s.cache.insert(key("k"), key("v")).await.unwrap();
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), Some(key("v")));
    for tier in &s.tiers {
        assert_eq!(held(tier, "k").await.map(|(v, _)| v), Some(key("v")));
    }
    let values = CountingLoader::values();
    assert_eq!(
        s.cache
            .optionally_get_with(key("k"), values.optional("k"))
            .await
            .unwrap(),
        Some(key("v"))
    );
    assert_eq!(
        s.cache.get_or_load(&key("k"), &values).await.unwrap(),
        Some(key("v"))
    );
    assert_eq!(values.calls(), 0);
    assert_eq!(s.cache.load_stats().negative_hits, 0);
    // The value outlives the negative time-to-live it replaced.
    s.clock.advance(NEGATIVE_TTL);
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), Some(key("v")));
}

#[tokio::test]
async fn get_or_load_caches_a_loaders_none_as_a_negative_entry() {
    let s = stack_with(100, 1, None, |b| b.negative_ttl(NEGATIVE_TTL)).await;
    let none = CountingLoader::none();
    for _ in 0..3 {
        assert_eq!(s.cache.get_or_load(&key("k"), &none).await.unwrap(), None);
    }
    assert_eq!(none.calls(), 1);
    assert_eq!(
        negative_expiry(s.cache.lookup(&key("k")).await.unwrap()),
        Some(s.clock.now_ms() + ms(NEGATIVE_TTL))
    );
    assert!(
        s.tiers[0]
            .inner()
            .get(&key_bytes("k"))
            .await
            .unwrap()
            .is_negative()
    );
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
    let err = s
        .cache
        .try_get_with(key("k"), fallible(&calls, Err(DbError::Forbidden)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(err.source_as::<DbError>(), Some(&DbError::Forbidden));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Remembered: fallible loads fail at once, their loaders not called.
    let err = s
        .cache
        .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let values = CountingLoader::values();
    let err = s.cache.get_or_load(&key("k"), &values).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Loader);
    assert_eq!(values.calls(), 0);
    // Lookups see a negative entry that says a load failed.
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    match s.cache.lookup(&key("k")).await.unwrap() {
        Lookup::Negative(meta) => {
            assert!(meta.flags.contains(Flags::FAILED), "{meta:?}");
            assert_eq!(meta.expires_at_ms, Some(s.clock.now_ms() + ms(ERROR_TTL)));
        }
        other => panic!("expected a remembered error, got {other:?}"),
    }
    // The tier below remembers it too.
    s.cache.hot().clear();
    let err = s
        .cache
        .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
        .await
        .unwrap_err();
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
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    let stats = s.cache.load_stats();
    assert_eq!((stats.errors_cached, stats.cached_errors_returned), (1, 3));
}

#[tokio::test]
async fn an_error_the_policy_does_not_pick_is_not_remembered() {
    let s = stack_with(100, 1, None, |b| b.cache_errors(remember_forbidden)).await;
    let calls = AtomicUsize::new(0);
    for attempt in 1..=3 {
        let err = s
            .cache
            .try_get_with(key("k"), fallible(&calls, Err(DbError::Flaky)))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Loader);
        assert_eq!(err.source_as::<DbError>(), Some(&DbError::Flaky));
        assert_eq!(calls.load(Ordering::SeqCst), attempt);
    }
    assert_eq!(s.cache.lookup(&key("k")).await.unwrap(), Lookup::Miss);
    assert_eq!(
        s.tiers[0].inner().get(&key_bytes("k")).await.unwrap(),
        Lookup::Miss
    );
    // The next load succeeds and is cached.
    assert_eq!(
        s.cache
            .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
            .await
            .unwrap(),
        key("v")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), Some(key("v")));
    let stats = s.cache.load_stats();
    assert_eq!((stats.errors_cached, stats.cached_errors_returned), (0, 0));

    // Without a policy, no error is remembered, the picked kind included.
    let s = stack(100, 1, None).await;
    for _ in 0..2 {
        s.cache
            .try_get_with(key("k"), fallible(&calls, Err(DbError::Forbidden)))
            .await
            .unwrap_err();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(s.cache.lookup(&key("k")).await.unwrap(), Lookup::Miss);
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
    s.cache
        .try_get_with(key("k"), fallible(&calls, Err(DbError::Forbidden)))
        .await
        .unwrap_err();
    s.clock.advance(ERROR_TTL - Duration::from_millis(1));
    s.cache
        .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    s.clock.advance(Duration::from_millis(1));
    assert_eq!(s.cache.lookup(&key("k")).await.unwrap(), Lookup::Miss);
    assert_eq!(
        s.cache
            .try_get_with(key("k"), fallible(&calls, Ok(key("v"))))
            .await
            .unwrap(),
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
    match s.cache.lookup(&key("s")).await.unwrap() {
        Lookup::Negative(meta) => {
            assert_eq!(meta.expires_at_ms, Some(start + 10_000));
            assert_eq!(meta.class.as_str(), "session");
        }
        other => panic!("expected a negative entry, got {other:?}"),
    }
    // A class without its own negative time-to-live has the cache's.
    assert_eq!(
        negative_expiry(s.cache.lookup(&key("o")).await.unwrap()),
        Some(start + ms(NEGATIVE_TTL))
    );
    // The tier below holds each with its class's expiry.
    match s.tiers[0].inner().get(&key_bytes("s")).await.unwrap() {
        Lookup::Negative(meta) => assert_eq!(meta.expires_at_ms, Some(start + 10_000)),
        other => panic!("expected a negative entry below, got {other:?}"),
    }
    let values = CountingLoader::values();
    assert_eq!(
        s.cache
            .optionally_get_with(key("s"), values.optional("s"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(values.calls(), 0);
    s.clock.advance(Duration::from_secs(10));
    assert_eq!(s.cache.lookup(&key("s")).await.unwrap(), Lookup::Miss);
    assert!(matches!(
        s.cache.lookup(&key("o")).await.unwrap(),
        Lookup::Negative(_)
    ));
    s.clock.advance(NEGATIVE_TTL - Duration::from_secs(10));
    assert_eq!(s.cache.lookup(&key("o")).await.unwrap(), Lookup::Miss);
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
        negative_expiry(s.cache.lookup(&key("k")).await.unwrap()),
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
    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .loader(loader)
        .build()
        .await
        .unwrap();
    for _ in 0..3 {
        assert_eq!(cache.get(&key("k")).await.unwrap(), None);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(matches!(
        cache.lookup(&key("k")).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert_eq!(cache.load_stats().negatives_stored, 1);
    clock.advance(NEGATIVE_TTL);
    assert_eq!(cache.get(&key("k")).await.unwrap(), None);
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
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(store.calls().loads, 1);
    assert!(
        s.tiers[0]
            .inner()
            .get(&key_bytes("k"))
            .await
            .unwrap()
            .is_negative()
    );
    // A value that appears in the store is not seen until the negative
    // expires.
    store.preload(key("k"), key("v"));
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    s.cache.hot().clear();
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(store.calls().loads, 1);
    s.clock.advance(NEGATIVE_TTL);
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), Some(key("v")));
    assert_eq!(s.cache.get(&key("k")).await.unwrap(), Some(key("v")));
    assert_eq!(store.calls().loads, 2);
}

#[tokio::test]
async fn a_get_that_loads_none_stores_a_negative_but_is_no_negative_hit() {
    // The load that finds nothing calls the loader: it is not a lookup
    // answered by a negative entry. The next one is.
    let loader = CountingLoader::none();
    let clock = ManualClock::default();
    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .loader(loader.clone())
        .build()
        .await
        .unwrap();
    assert_eq!(cache.get(&key("k")).await.unwrap(), None);
    let stats = cache.load_stats();
    assert_eq!(
        (stats.negatives_stored, stats.negative_hits),
        (1, 0),
        "{stats:?}"
    );
    assert_eq!(cache.get(&key("k")).await.unwrap(), None);
    assert_eq!(cache.load_stats().negative_hits, 1);
    assert_eq!(loader.calls(), 1);
}

#[tokio::test]
async fn the_lookup_that_loads_none_reports_the_negative_entry_it_stored() {
    let loader = CountingLoader::none();
    let clock = ManualClock::default();
    let cache: Cache<String, String> = Cache::builder()
        .clock(clock.clock())
        .negative_ttl(NEGATIVE_TTL)
        .loader(loader.clone())
        .build()
        .await
        .unwrap();
    let expected = Some(clock.now_ms() + ms(NEGATIVE_TTL));
    assert_eq!(
        negative_expiry(cache.lookup(&key("k")).await.unwrap()),
        expected,
        "the first lookup, which loaded"
    );
    assert_eq!(
        negative_expiry(cache.lookup(&key("k")).await.unwrap()),
        expected,
        "a later lookup"
    );
    assert_eq!(loader.calls(), 1);
}
