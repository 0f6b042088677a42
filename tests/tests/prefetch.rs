//! The prefetcher through the facade: a cache built with
//! `CacheBuilder::prefetch` learns which page follows which in each
//! `tiercache::warm::in_session` session and loads the likely next page
//! ahead with the cache's loader. On sessions that follow typical paths
//! its prefetches are mostly used and the hot tier's hit ratio rises
//! clearly above the same workload's without a prefetcher; on independent
//! Zipf lookups it loads almost nothing extra.
//!
//! The figures are printed; `cargo test --test prefetch -- --nocapture`
//! shows them.

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiercache::warm::{PrefetchSettings, in_session};
use tiercache::{Cache, ErrorKind, Result};

/// A loader of pages that counts its calls.
#[derive(Clone, Default)]
struct Pages {
    calls: Arc<AtomicU64>,
}

impl Pages {
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    fn loader(&self) -> impl Fn(u64) -> Ready<Result<Option<String>>> + Send + Sync + 'static {
        let calls = self.calls.clone();
        move |page: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(Some(format!("page {page}"))))
        }
    }
}

/// A cache of `capacity` pages over the counting loader, with a
/// prefetcher (default settings) or without.
async fn cache(capacity: u64, prefetch: bool, pages: &Pages) -> Cache<u64, String> {
    let mut builder = Cache::builder()
        .max_capacity(capacity)
        .loader(pages.loader());
    if prefetch {
        builder = builder.prefetch(PrefetchSettings::default());
    }
    builder.build().await.expect("a cache with a loader")
}

/// Waits until the prefetcher, if any, has nothing queued or running.
async fn settle(cache: &Cache<u64, String>) {
    if let Some(prefetcher) = cache.prefetcher() {
        prefetcher.idle().await;
    }
}

const PAGES: u64 = 300;
const PATHS: usize = 20;
/// Sessions walked at once, interleaved step by step.
const STREAMS: usize = 8;
const TRAINING_SESSIONS: usize = 1_500;
const MEASURED_SESSIONS: usize = 1_500;
/// The hot tier holds about a third of the pages the paths use. (Measured
/// on this workload: with 40 entries the hit ratio goes from about 0.62 to
/// 0.74 and precision is about 0.58, since many prefetched pages are
/// evicted before their read; with 100 entries, from 0.86 to 0.89 at a
/// precision of about 0.82.)
const CAPACITY: u64 = 40;

/// Hot-tier hits and lookups of the measured phase.
#[derive(Debug, Default)]
struct Counted {
    lookups: u64,
    hits: u64,
}

impl Counted {
    fn hit_ratio(&self) -> f64 {
        self.hits as f64 / self.lookups as f64
    }
}

/// Runs the session workload of `seed` on `cache`: 20 typical paths of 5
/// to 8 pages (the first the most popular), walked by sessions that detour
/// to a random page one step in eight and give up one step in twenty;
/// training sessions first, then measured ones. Returns the measured
/// phase's hot-tier hits.
async fn sessions(cache: &Cache<u64, String>, seed: u64) -> Counted {
    let mut rng = StdRng::seed_from_u64(seed);
    let paths: Vec<Vec<u64>> = (0..PATHS)
        .map(|_| {
            let len = rng.random_range(5..=8);
            let mut path: Vec<u64> = Vec::new();
            while path.len() < len {
                let page = rng.random_range(0..PAGES);
                if !path.contains(&page) {
                    path.push(page);
                }
            }
            path
        })
        .collect();
    let weights: Vec<f64> = (0..PATHS).map(|i| 1.0 / (i + 1) as f64).collect();
    let total: f64 = weights.iter().sum();
    let pick = |rng: &mut StdRng| {
        let mut x = rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        PATHS - 1
    };
    // Each stream: (session id, path, next step).
    let mut streams: Vec<(u64, usize, usize)> = (0..STREAMS)
        .map(|i| (i as u64, pick(&mut rng), 0))
        .collect();
    let mut next_id = STREAMS as u64;
    let mut finished = 0;
    let mut counted = Counted::default();
    while finished < TRAINING_SESSIONS + MEASURED_SESSIONS {
        let slot = rng.random_range(0..STREAMS);
        let (id, path, step) = streams[slot];
        let page = if rng.random_bool(1.0 / 8.0) {
            rng.random_range(0..PAGES)
        } else {
            streams[slot].2 += 1;
            paths[path][step]
        };
        let hit = cache.hot().contains_key(&page);
        let value = in_session(id, cache.get(&page)).await.unwrap();
        assert_eq!(value, Some(format!("page {page}")));
        if finished >= TRAINING_SESSIONS {
            counted.lookups += 1;
            counted.hits += u64::from(hit);
        }
        // Time passes between a session's page views: the fetches that
        // view started land before the next.
        settle(cache).await;
        if streams[slot].2 == paths[path].len() || rng.random_bool(1.0 / 20.0) {
            streams[slot] = (next_id, pick(&mut rng), 0);
            next_id += 1;
            finished += 1;
        }
    }
    counted
}

#[tokio::test]
async fn sessions_on_typical_paths_are_prefetched_precisely_and_raise_the_hit_ratio() {
    let seed = 2024;
    let without_pages = Pages::default();
    let without = cache(CAPACITY, false, &without_pages).await;
    let baseline = sessions(&without, seed).await;
    assert!(without.prefetch_stats().is_none());

    let with_pages = Pages::default();
    let with = cache(CAPACITY, true, &with_pages).await;
    let measured = sessions(&with, seed).await;
    let stats = with.prefetch_stats().expect("built with a prefetcher");
    println!(
        "sessions: hot-tier hit ratio {:.3} without prefetch, {:.3} with ({} lookups measured); \
         precision {:.3}, coverage {:.3}; loader calls {} without, {} with; {stats:?}",
        baseline.hit_ratio(),
        measured.hit_ratio(),
        measured.lookups,
        stats.precision(),
        stats.coverage(),
        without_pages.calls(),
        with_pages.calls(),
    );
    assert_eq!(baseline.lookups, measured.lookups, "the same workload");
    assert!(
        stats.warmed > 500,
        "the prefetcher hardly fetched: {stats:?}"
    );
    assert!(
        stats.precision() > 0.5,
        "precision {:.3}: most prefetched pages should be read",
        stats.precision()
    );
    assert!(
        measured.hit_ratio() > baseline.hit_ratio() + 0.08,
        "hit ratio {:.3} with prefetch is not clearly above {:.3} without",
        measured.hit_ratio(),
        baseline.hit_ratio()
    );
    // Every lookup the cache answered was seen.
    assert!(stats.observed >= measured.lookups, "{stats:?}");
}

/// Draws keys `0..n` with probability proportional to `1 / (rank + 1)`.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut sum = 0.0;
        let mut cdf: Vec<f64> = (0..n)
            .map(|rank| {
                sum += 1.0 / (rank + 1) as f64;
                sum
            })
            .collect();
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut StdRng) -> u64 {
        let x = rng.random::<f64>();
        self.cdf.partition_point(|&c| c < x).min(self.cdf.len() - 1) as u64
    }
}

const ZIPF_KEYS: usize = 100_000;
const ZIPF_REQUESTS: u64 = 100_000;

/// Runs independent Zipf lookups (no session: one stream, the thread's)
/// on `cache`.
async fn independent_zipf(cache: &Cache<u64, String>, seed: u64) {
    let zipf = Zipf::new(ZIPF_KEYS);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..ZIPF_REQUESTS {
        let key = zipf.sample(&mut rng);
        assert!(cache.get(&key).await.unwrap().is_some());
        if i % 1_024 == 0 {
            settle(cache).await;
        }
    }
    settle(cache).await;
}

#[tokio::test]
async fn independent_zipf_lookups_cause_almost_no_extra_loads() {
    let seed = 99;
    let without_pages = Pages::default();
    let without = cache(10_000, false, &without_pages).await;
    independent_zipf(&without, seed).await;

    let with_pages = Pages::default();
    let with = cache(10_000, true, &with_pages).await;
    independent_zipf(&with, seed).await;
    let stats = with.prefetch_stats().unwrap();
    let fetched = stats.warmed + stats.missing + stats.failed;
    let extra = with_pages.calls() as i64 - without_pages.calls() as i64;
    println!(
        "independent Zipf: {ZIPF_REQUESTS} requests over {ZIPF_KEYS} keys, 10,000 held; \
         loader calls {} without prefetch, {} with (extra {extra}); prefetch fetches {fetched} \
         ({:.3} % of requests); {stats:?}",
        without_pages.calls(),
        with_pages.calls(),
        100.0 * fetched as f64 / ZIPF_REQUESTS as f64,
    );
    assert_eq!(stats.observed, ZIPF_REQUESTS, "{stats:?}");
    assert!(
        fetched * 100 < ZIPF_REQUESTS,
        "{fetched} prefetch loads for {ZIPF_REQUESTS} requests"
    );
    assert!(
        extra * 100 < ZIPF_REQUESTS as i64,
        "{extra} extra loader calls for {ZIPF_REQUESTS} requests"
    );
}

#[tokio::test]
async fn a_sequence_is_learned_and_its_next_key_loaded_ahead() {
    let pages = Pages::default();
    let cache = cache(100, true, &pages).await;
    // Three sessions read 1, 2, 3.
    for session in 0..3 {
        in_session(session, async {
            for page in [1, 2, 3] {
                cache.get(&page).await.unwrap();
            }
        })
        .await;
        settle(&cache).await;
        cache.hot().clear();
    }
    let prefetcher = cache.prefetcher().unwrap();
    assert_eq!(
        prefetcher
            .predict(&1)
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>(),
        vec![2]
    );
    // A fourth session's read of 1 loads 2 ahead, and its read of 2 hits.
    let before = pages.calls();
    in_session(3, cache.get(&1)).await.unwrap();
    settle(&cache).await;
    assert!(cache.hot().contains_key(&2), "2 was not prefetched");
    assert_eq!(pages.calls(), before + 2, "1 loaded, 2 prefetched");
    in_session(3, cache.get(&2)).await.unwrap();
    let stats = cache.prefetch_stats().unwrap();
    assert!(stats.used >= 1, "{stats:?}");
    assert_eq!(
        cache.get(&2).await.unwrap().as_deref(),
        Some("page 2"),
        "the prefetched value is the loader's"
    );
}

#[tokio::test]
async fn sessions_are_kept_apart() {
    let pages = Pages::default();
    let cache = cache(100, true, &pages).await;
    // Two sessions interleave their reads: 1, 10, 2, 20, ... as one
    // stream, each session's own sequence is 1 -> 2 and 10 -> 20.
    for round in 0..4 {
        let (a, b) = (100 + 2 * round, 101 + 2 * round);
        in_session(a, cache.get(&1)).await.unwrap();
        in_session(b, cache.get(&10)).await.unwrap();
        in_session(a, cache.get(&2)).await.unwrap();
        in_session(b, cache.get(&20)).await.unwrap();
        settle(&cache).await;
    }
    let prefetcher = cache.prefetcher().unwrap();
    let next = |k: u64| {
        prefetcher
            .predict(&k)
            .iter()
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
    };
    assert_eq!(next(1), vec![2]);
    assert_eq!(next(10), vec![20]);
}

#[tokio::test]
async fn the_prefetch_loader_fetches_for_a_cache_without_a_source() {
    // A memory-only cache: its lookups load with `get_with`'s futures,
    // and what the prefetcher fetches ahead comes from the prefetch loader.
    let ahead = Pages::default();
    let cache: Cache<u64, String> = Cache::builder()
        .prefetch(PrefetchSettings::default())
        .prefetch_loader(ahead.loader())
        .build()
        .await
        .unwrap();
    for session in 0..4 {
        in_session(session, async {
            for page in [1, 2] {
                cache
                    .get_with(page, async move { format!("page {page}") })
                    .await
                    .unwrap();
                // What the lookup of 1 predicted is fetched before 2 is
                // asked for.
                settle(&cache).await;
            }
        })
        .await;
        settle(&cache).await;
        cache.hot().remove(&2);
    }
    // From the fourth session on, 2 is predicted after 1 and fetched ahead.
    assert!(ahead.calls() >= 1, "the prefetch loader was never called");
    assert!(cache.prefetch_stats().unwrap().used >= 1);
}

#[tokio::test]
async fn a_cache_with_a_source_prefetches_from_it_first() {
    // The cache's own loader is asked first, as a lookup would; the
    // prefetch loader stands in only where the cache has no source.
    let own = Pages::default();
    let ahead = Pages::default();
    let cache: Cache<u64, String> = Cache::builder()
        .loader(own.loader())
        .prefetch(PrefetchSettings::default())
        .prefetch_loader(ahead.loader())
        .build()
        .await
        .unwrap();
    for session in 0..4 {
        in_session(session, async {
            cache.get(&1).await.unwrap();
            settle(&cache).await;
            cache.get(&2).await.unwrap();
        })
        .await;
        settle(&cache).await;
        cache.hot().remove(&2);
    }
    // The lookups' misses (1 and 2 in the first session, 2 in the next
    // two) and, from the fourth session on, the fetch ahead of 2: all
    // through the cache's loader.
    assert_eq!(
        ahead.calls(),
        0,
        "the prefetch loader stood in for the cache's"
    );
    assert!(
        own.calls() >= 4,
        "the cache's loader: {} calls",
        own.calls()
    );
    assert!(cache.prefetch_stats().unwrap().warmed >= 1);
}

#[tokio::test]
async fn prefetch_settings_are_checked_at_build() {
    let pages = Pages::default();
    let e = Cache::<u64, String>::builder()
        .loader(pages.loader())
        .prefetch(PrefetchSettings::default().threshold(0.0))
        .build()
        .await
        .expect_err("a zero threshold must not build");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
    // Nothing to fetch from: no tier below memory, no source.
    let e = Cache::<u64, String>::builder()
        .prefetch(PrefetchSettings::default())
        .build()
        .await
        .expect_err("a prefetcher with nothing to fetch from must not build");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
}
