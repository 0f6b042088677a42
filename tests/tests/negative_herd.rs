//! Herd protection for keys that have no value: a thousand concurrent
//! callers of a missing key (`optionally_get_with`, `get_or_load`, `get`
//! on a cache with its own loader) cause one load, which stores a negative entry; a thousand more cause none
//! while it lives; once the clock passes the negative time-to-live, the
//! next thousand cause exactly one more.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tiercache::{Cache, Result};
use tiercache_tests::counting_loader::CountingLoader;
use tiercache_tests::stack_with;

const CALLERS: usize = 1_000;
const KEY: &str = "missing";
const NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// How long each load takes: long enough for the callers to pile up.
const LOAD_TIME: Duration = Duration::from_millis(20);

/// Starts [`CALLERS`] tasks that each run `call` on the cache at the same
/// moment (behind a barrier), and returns their answers.
async fn herd<F, Fut>(cache: &Cache<String, String>, call: F) -> Vec<Option<String>>
where
    F: Fn(Cache<String, String>) -> Fut,
    Fut: Future<Output = Result<Option<String>>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(CALLERS));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let barrier = barrier.clone();
            let call = call(cache.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(CALLERS);
    for task in tasks {
        answers.push(
            task.await
                .expect("a caller's task")
                .expect("a caller's answer"),
        );
    }
    answers
}

/// Runs the three rounds on a cache with `tiers` byte tiers (and, with
/// `cache_loader`, the loader as the cache's own), each caller calling
/// `call` with the cache and the loader: one load, then none, then (past
/// the negative time-to-live) one.
async fn three_rounds<F, Fut>(tiers: usize, cache_loader: bool, call: F)
where
    F: Fn(Cache<String, String>, CountingLoader) -> Fut + Copy,
    Fut: Future<Output = Result<Option<String>>> + Send + 'static,
{
    let loader = CountingLoader::none().with_delay(LOAD_TIME);
    let s = stack_with(100, tiers, None, |b| {
        let b = b.negative_ttl(NEGATIVE_TTL);
        if cache_loader {
            b.loader(loader.clone())
        } else {
            b
        }
    })
    .await;
    let round = || herd(&s.cache, |cache| call(cache, loader.clone()));

    let answers = round().await;
    assert_eq!(answers.len(), CALLERS);
    assert!(answers.iter().all(Option::is_none), "{tiers} tiers");
    assert_eq!(loader.calls(), 1, "the first herd, {tiers} tiers");
    assert_eq!(s.cache.load_stats().negatives_stored, 1, "{tiers} tiers");

    let answers = round().await;
    assert!(answers.iter().all(Option::is_none), "{tiers} tiers");
    assert_eq!(
        loader.calls(),
        1,
        "the second herd, within the negative time-to-live, {tiers} tiers"
    );
    assert_eq!(s.cache.load_stats().negatives_stored, 1, "{tiers} tiers");

    s.clock.advance(NEGATIVE_TTL + Duration::from_millis(1));
    let answers = round().await;
    assert!(answers.iter().all(Option::is_none), "{tiers} tiers");
    assert_eq!(
        loader.calls(),
        2,
        "the third herd, past the negative time-to-live, {tiers} tiers"
    );
    assert_eq!(s.cache.load_stats().negatives_stored, 2, "{tiers} tiers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_optionally_get_with_callers_of_a_missing_key_cause_one_load() {
    for tiers in [0, 1] {
        three_rounds(tiers, false, |cache, loader| async move {
            cache
                .optionally_get_with(KEY.to_string(), loader.optional(KEY))
                .await
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_get_or_load_callers_of_a_missing_key_cause_one_load() {
    for tiers in [0, 1] {
        three_rounds(tiers, false, |cache, loader| async move {
            cache.get_or_load(&KEY.to_string(), &loader).await
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_gets_of_a_missing_key_from_the_cache_loader_cause_one_load() {
    for tiers in [0, 1] {
        three_rounds(tiers, true, |cache, _| async move {
            cache.get(&KEY.to_string()).await
        })
        .await;
    }
}
