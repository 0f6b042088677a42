//! Part 3, the prefetcher: user sessions that walk pages in typical
//! orders, and independent Zipf requests, each with and without the
//! prefetcher, in front of a loader that answers after a small delay.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiercache::Cache;
use tiercache::warm::{PrefetchSettings, PrefetchStats, in_session};

use crate::workload::{Calls, FOREGROUND, Sessions, check, loader};

/// The loader's delay.
pub(crate) const LOAD_DELAY: Duration = Duration::from_millis(1);
/// The concurrent requesters.
pub(crate) const TASKS: usize = 64;
/// A user's pause between two pages of a session.
pub(crate) const THINK: Duration = Duration::from_millis(5);

/// What is requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Workload {
    /// User sessions walking typical paths, each in its own
    /// `in_session`.
    Sessions,
    /// Independent Zipf keys, no sessions: each worker thread's lookups
    /// are one stream.
    ZipfThreads,
    /// Independent Zipf keys, each task in a session of its own.
    ZipfSessions,
}

impl Workload {
    pub(crate) const ALL: [Workload; 3] = [
        Workload::Sessions,
        Workload::ZipfThreads,
        Workload::ZipfSessions,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Workload::Sessions => "sessions",
            Workload::ZipfThreads => "zipf_no_sessions",
            Workload::ZipfSessions => "zipf_session_per_task",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Workload::Sessions => "user sessions",
            Workload::ZipfThreads => "independent Zipf, no sessions (a stream per thread)",
            Workload::ZipfSessions => "independent Zipf, a session per task",
        }
    }
}

/// The requests of one workload and how they are split.
pub(crate) enum Requests {
    /// Sessions, the first `warmup` of them not counted.
    Sessions {
        sessions: Arc<Sessions>,
        warmup: usize,
    },
    /// Keys, the first `warmup` not counted.
    Keys {
        keys: Arc<Vec<u64>>,
        warmup: usize,
        sessions: bool,
    },
}

/// One measurement.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    pub(crate) requests: u64,
    pub(crate) hot_hits: u64,
    /// Loader calls made for requests.
    pub(crate) foreground_loads: u64,
    /// Loader calls made by the cache's own tasks: the prefetcher's.
    pub(crate) background_loads: u64,
    pub(crate) seconds: f64,
    /// The prefetcher's counters over the measured phase.
    pub(crate) stats: Option<PrefetchStats>,
    /// Its counters over the whole run, warm-up included.
    pub(crate) total: Option<PrefetchStats>,
}

impl Measured {
    pub(crate) fn hot_ratio(&self) -> f64 {
        self.hot_hits as f64 / self.requests.max(1) as f64
    }

    pub(crate) fn loads(&self) -> u64 {
        self.foreground_loads + self.background_loads
    }

    /// Loads per request.
    pub(crate) fn loads_per_request(&self) -> f64 {
        self.loads() as f64 / self.requests.max(1) as f64
    }

    /// The prefetcher's loads as a share of the requests.
    pub(crate) fn prefetch_load_share(&self) -> f64 {
        self.background_loads as f64 / self.requests.max(1) as f64
    }
}

/// `b - a`, counter by counter; the gauges (`learned_keys`, `queued`,
/// `in_flight`) are `b`'s.
fn delta(a: &PrefetchStats, b: &PrefetchStats) -> PrefetchStats {
    PrefetchStats {
        observed: b.observed - a.observed,
        misses: b.misses - a.misses,
        predicted: b.predicted - a.predicted,
        issued: b.issued - a.issued,
        deduplicated: b.deduplicated - a.deduplicated,
        dropped: b.dropped - a.dropped,
        warmed: b.warmed - a.warmed,
        present: b.present - a.present,
        missing: b.missing - a.missing,
        failed: b.failed - a.failed,
        used: b.used - a.used,
        unused: b.unused - a.unused,
        ..b.clone()
    }
}

/// What a phase's tasks counted.
#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    hot_hits: AtomicU64,
}

/// One request, counted.
async fn request(cache: &Cache<u64, Vec<u8>>, key: u64, counts: &Counts) -> Result<(), String> {
    let hot = cache.hot().contains_key(&key);
    let found = cache.get(&key).await.map_err(|e| e.to_string())?;
    check(key, found.as_ref())?;
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.hot_hits.fetch_add(u64::from(hot), Ordering::Relaxed);
    Ok(())
}

/// Runs the requests of `range` (sessions or keys) from [`TASKS`] tasks.
async fn phase(
    cache: &Arc<Cache<u64, Vec<u8>>>,
    requests: &Requests,
    range: Range<usize>,
) -> Result<Counts, String> {
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    let mut tasks = Vec::with_capacity(TASKS);
    for task in 0..TASKS {
        let (cache, counts, next) = (cache.clone(), counts.clone(), next.clone());
        let handle = match requests {
            Requests::Sessions { sessions, .. } => {
                let sessions = sessions.clone();
                tokio::spawn(FOREGROUND.scope((), async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            return Ok::<(), String>(());
                        }
                        let pages = &sessions.sessions[i];
                        in_session(i as u64 + 1, async {
                            for (step, &page) in pages.iter().enumerate() {
                                if step > 0 {
                                    tokio::time::sleep(THINK).await;
                                }
                                request(&cache, page, &counts).await?;
                            }
                            Ok::<(), String>(())
                        })
                        .await?;
                    }
                }))
            }
            Requests::Keys { keys, sessions, .. } => {
                let (keys, sessions) = (keys.clone(), *sessions);
                let run = async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= end {
                            return Ok::<(), String>(());
                        }
                        request(&cache, keys[i], &counts).await?;
                        // A server's request ends its task: the runtime's
                        // timers (the loader's delay) and the prefetcher's
                        // fetches get their turn.
                        tokio::task::yield_now().await;
                    }
                };
                if sessions {
                    tokio::spawn(FOREGROUND.scope((), in_session(task as u64 + 1, run)))
                } else {
                    tokio::spawn(FOREGROUND.scope((), run))
                }
            }
        };
        tasks.push(handle);
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("a request task failed: {e}"))??;
    }
    Arc::into_inner(counts).ok_or_else(|| "the counts are still shared".to_string())
}

/// One measurement: a fresh cache of `capacity` entries in front of the
/// loader, with the default prefetcher when `prefetch`; the warm-up
/// requests (not counted), then the measured ones, each phase waiting for
/// the prefetcher to finish what it queued.
pub(crate) async fn measure(
    requests: &Requests,
    capacity: u64,
    prefetch: bool,
) -> Result<Measured, String> {
    let calls = Arc::new(Calls::default());
    let mut builder = Cache::<u64, Vec<u8>>::builder()
        .max_capacity(capacity)
        .loader(loader(calls.clone(), LOAD_DELAY));
    if prefetch {
        builder = builder.prefetch(PrefetchSettings::default());
    }
    let cache = Arc::new(
        builder
            .build()
            .await
            .map_err(|e| format!("cannot build the cache: {e}"))?,
    );
    let (warmup, len) = match requests {
        Requests::Sessions { sessions, warmup } => (*warmup, sessions.sessions.len()),
        Requests::Keys { keys, warmup, .. } => (*warmup, keys.len()),
    };
    phase(&cache, requests, 0..warmup).await?;
    if let Some(p) = cache.prefetcher() {
        p.idle().await;
    }
    let before = cache.prefetch_stats();
    calls.count(true);
    let started = Instant::now();
    let counts = phase(&cache, requests, warmup..len).await?;
    let seconds = started.elapsed().as_secs_f64();
    if let Some(p) = cache.prefetcher() {
        p.idle().await;
    }
    calls.count(false);
    let total = cache.prefetch_stats();
    let stats = before
        .as_ref()
        .zip(total.as_ref())
        .map(|(a, b)| delta(a, b));
    Ok(Measured {
        requests: counts.requests.load(Ordering::Relaxed),
        hot_hits: counts.hot_hits.load(Ordering::Relaxed),
        foreground_loads: calls.foreground(),
        background_loads: calls.background(),
        seconds,
        stats,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{SessionShape, zipf_requests};

    #[test]
    fn the_prefetcher_learns_sessions_and_leaves_zipf_alone() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let shape = SessionShape {
            pages: 2_000,
            paths: 20,
            path_len: (5, 10),
            path_s: 1.0,
            detour: 0.1,
        };
        let sessions = Requests::Sessions {
            sessions: Arc::new(Sessions::generate(shape, 600, 1)),
            warmup: 300,
        };
        let zipf = Requests::Keys {
            keys: Arc::new(zipf_requests(100_000, 1.0, 20_000, 1)),
            warmup: 10_000,
            sessions: false,
        };
        runtime.block_on(async {
            let off = measure(&sessions, 50, false).await.unwrap();
            let on = measure(&sessions, 50, true).await.unwrap();
            assert_eq!(off.requests, on.requests);
            assert_eq!(off.background_loads, 0);
            assert!(off.stats.is_none());
            let stats = on.stats.clone().unwrap();
            assert!(stats.used > 0 && stats.used <= stats.warmed, "{stats:?}");
            // Each fetch calls the loader at most once (none when it joins
            // a request's load).
            let fetched = stats.warmed + stats.present + stats.missing + stats.failed;
            assert!(on.background_loads <= fetched, "{on:?}");
            let z = measure(&zipf, 5_000, true).await.unwrap();
            assert_eq!(z.requests, 10_000);
            assert!(z.prefetch_load_share() < 0.05, "{z:?}");
        });
    }
}
