//! The measurements: a fresh service and cache per setup, 64 tasks making
//! Zipf requests for a fixed time, every request timed and classified.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Zipf};
use tiercache::{Cache, LoadStats};

use crate::service::{Calls, FOREGROUND, Service, is_value_of};

/// The concurrent requesters of every measurement.
pub(crate) const TASKS: usize = 64;
/// The Zipf exponent of the key stream.
pub(crate) const ZIPF_S: f64 = 1.0;
/// Part 2: the time-to-live of every entry.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Part 2: the age past which a hit reloads its entry in the background.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_millis(800);
/// The caches' capacity over the key space: room for every key (each
/// value, or each negative entry) with a margin, as tiercache's hot tier
/// gives each of its partitions an equal share.
pub(crate) const CAPACITY_OVER_KEYS: f64 = 1.25;
/// The latency thresholds counted besides the exact count of waits.
pub(crate) const OVER_MS: [f64; 2] = [1.0, 1.5];
/// The upper bounds of the latency distribution's buckets, in µs (the
/// last bucket is everything above the last bound).
pub(crate) const BUCKETS_US: [u64; 6] = [100, 1_000, 1_500, 2_000, 3_000, 5_000];

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// 20 % of the keys do not exist; entries never expire.
    Negative,
    /// Every key exists; entries live [`TTL`].
    Refresh,
}

impl Part {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Part::Negative => "negative_caching",
            Part::Refresh => "refresh_ahead",
        }
    }
}

/// The three setups of each part: tiercache with the protection on, with
/// it off, and moka.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setup {
    On,
    Off,
    Moka,
}

impl Setup {
    pub(crate) const ALL: [Setup; 3] = [Setup::On, Setup::Off, Setup::Moka];

    pub(crate) fn label(self, part: Part) -> &'static str {
        match (part, self) {
            (Part::Negative, Setup::On) => "tiercache, negative caching on",
            (Part::Negative, Setup::Off) => "tiercache, `negative_caching(false)`",
            (Part::Negative, Setup::Moka) => "moka `future::Cache`",
            (Part::Refresh, Setup::On) => "tiercache, `refresh_after_write(800 ms)`",
            (Part::Refresh, Setup::Off) => "tiercache, no refresh-ahead",
            (Part::Refresh, Setup::Moka) => "moka `future::Cache`",
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Setup::On => "tiercache_on",
            Setup::Off => "tiercache_off",
            Setup::Moka => "moka",
        }
    }
}

/// A measured cache and how a request reaches it.
enum Target {
    Tier(Cache<u64, Vec<u8>>),
    Moka(moka::future::Cache<u64, Vec<u8>>),
}

impl Target {
    async fn build(
        part: Part,
        setup: Setup,
        keys: u64,
        service: &Arc<Service>,
    ) -> Result<Target, String> {
        let capacity = (keys as f64 * CAPACITY_OVER_KEYS).ceil() as u64;
        let builder = Cache::<u64, Vec<u8>>::builder().max_capacity(capacity);
        let builder = match (part, setup) {
            (_, Setup::Moka) => {
                let moka = moka::future::Cache::builder().max_capacity(capacity);
                let moka = match part {
                    Part::Negative => moka,
                    Part::Refresh => moka.time_to_live(TTL),
                };
                return Ok(Target::Moka(moka.build()));
            }
            (Part::Negative, Setup::On) => builder,
            (Part::Negative, Setup::Off) => builder.negative_caching(false),
            (Part::Refresh, on_or_off) => {
                let service = service.clone();
                let builder = builder.time_to_live(TTL).loader(move |k: u64| {
                    let service = service.clone();
                    async move { Ok::<_, tiercache::Error>(service.fetch(k).await) }
                });
                if on_or_off == Setup::On {
                    builder.refresh_after_write(REFRESH_AFTER)
                } else {
                    builder
                }
            }
        };
        builder
            .build()
            .await
            .map(Target::Tier)
            .map_err(|e| format!("{}: cannot build the cache: {e}", setup.label(part)))
    }

    /// One request for `key`.
    async fn request(
        &self,
        part: Part,
        key: u64,
        service: &Service,
    ) -> Result<Option<Vec<u8>>, String> {
        match (self, part) {
            (Target::Tier(cache), Part::Negative) => cache
                .optionally_get_with(key, service.fetch(key))
                .await
                .map_err(|e| e.to_string()),
            (Target::Tier(cache), Part::Refresh) => {
                cache.get(&key).await.map_err(|e| e.to_string())
            }
            (Target::Moka(cache), Part::Negative) => {
                Ok(cache.optionally_get_with(key, service.fetch(key)).await)
            }
            (Target::Moka(cache), Part::Refresh) => {
                let load = async { service.fetch(key).await.unwrap_or_default() };
                Ok(Some(cache.get_with(key, load).await))
            }
        }
    }

    fn load_stats(&self) -> Option<LoadStats> {
        match self {
            Target::Tier(cache) => Some(cache.load_stats()),
            Target::Moka(_) => None,
        }
    }
}

/// What one task saw of the requests it started in the measured window.
#[derive(Default)]
struct Seen {
    /// Every request's latency in nanoseconds (saturated at `u32::MAX`).
    latencies: Vec<u32>,
    missing: u64,
    /// Requests during which a call for their key, made on a request's
    /// task, finished: they waited for a load.
    waited: u64,
    waited_missing: u64,
    /// Requests whose key had not been asked for in the previous [`TTL`]
    /// (or ever): part 2's floor.
    cold: u64,
    waited_cold: u64,
    /// Waits of warm requests whose key's previous request came at least
    /// the refresh window (`TTL - REFRESH_AFTER`) earlier.
    waited_sparse: u64,
    over: [u64; OVER_MS.len()],
    /// The longest request that did not wait, in nanoseconds.
    max_unwaited_ns: u64,
    /// The shortest request that waited, in nanoseconds.
    min_waited_ns: u64,
}

impl Seen {
    fn add(&mut self, other: Seen) {
        self.latencies.extend(other.latencies);
        self.missing += other.missing;
        self.waited += other.waited;
        self.waited_missing += other.waited_missing;
        self.cold += other.cold;
        self.waited_cold += other.waited_cold;
        self.waited_sparse += other.waited_sparse;
        for (a, b) in self.over.iter_mut().zip(other.over) {
            *a += b;
        }
        self.max_unwaited_ns = self.max_unwaited_ns.max(other.max_unwaited_ns);
        self.min_waited_ns = match (self.min_waited_ns, other.min_waited_ns) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
    }
}

/// One measurement of one setup.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    /// The measured window's length, in seconds.
    pub(crate) seconds: f64,
    pub(crate) requests: u64,
    /// Requests for keys that do not exist.
    pub(crate) missing: u64,
    pub(crate) waited: u64,
    pub(crate) waited_missing: u64,
    pub(crate) cold: u64,
    pub(crate) waited_cold: u64,
    /// Waits of warm requests whose key had no request in the refresh
    /// window's length (`TTL - REFRESH_AFTER`) before.
    pub(crate) waited_sparse: u64,
    /// Requests longer than each of [`OVER_MS`].
    pub(crate) over: [u64; OVER_MS.len()],
    /// Requests in each latency bucket of [`BUCKETS_US`] and above.
    pub(crate) buckets: [u64; BUCKETS_US.len() + 1],
    pub(crate) max_unwaited_us: f64,
    pub(crate) min_waited_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
    pub(crate) calls: Calls,
    /// tiercache's load-protection counters at the end (warm-up included).
    pub(crate) stats: Option<LoadStats>,
}

impl Measured {
    pub(crate) fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub(crate) fn per_s(&self, n: u64) -> f64 {
        n as f64 / self.seconds
    }

    /// The share of the requests that waited for a load.
    pub(crate) fn waited_share(&self) -> f64 {
        self.waited as f64 / self.requests.max(1) as f64
    }

    /// The share of the requests answered without waiting for a load.
    pub(crate) fn hit_ratio(&self) -> f64 {
        1.0 - self.waited_share()
    }

    /// The share of the requests whose key was not asked for within a TTL.
    pub(crate) fn cold_share(&self) -> f64 {
        self.cold as f64 / self.requests.max(1) as f64
    }

    /// The share of the requests that waited although their key had been
    /// asked for within a TTL.
    pub(crate) fn waited_warm_share(&self) -> f64 {
        (self.waited - self.waited_cold) as f64 / self.requests.max(1) as f64
    }
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The times each task shares: the start of the measured window, its
/// end, and (part 2) each key's last request.
struct Clock {
    base: Instant,
    from: Instant,
    until: Instant,
    /// Per key: nanoseconds from `base` to its last request, plus one
    /// (0: never asked for). Part 2 only.
    last: Vec<AtomicU64>,
}

/// One task: requests until the window ends, each awaited before the
/// next, from its own Zipf stream.
async fn requester(
    part: Part,
    target: Arc<Target>,
    service: Arc<Service>,
    clock: Arc<Clock>,
    keys: u64,
    seed: u64,
) -> Result<Seen, String> {
    let zipf = Zipf::new(keys as f64, ZIPF_S).map_err(|e| format!("Zipf: {e}"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = Seen::default();
    let ttl_ns = TTL.as_nanos() as u64;
    let window_ns = (TTL - REFRESH_AFTER).as_nanos() as u64;
    loop {
        let key = (zipf.sample(&mut rng) as u64).clamp(1, keys);
        let before = service.finished(key);
        let started = Instant::now();
        if started >= clock.until {
            break;
        }
        let (cold, sparse) = match part {
            Part::Negative => (false, false),
            Part::Refresh => {
                let now = started.duration_since(clock.base).as_nanos() as u64 + 1;
                let last = clock.last[(key - 1) as usize].swap(now, Ordering::Relaxed);
                let gap = now.saturating_sub(last);
                let cold = last == 0 || gap >= ttl_ns;
                (cold, !cold && gap >= window_ns)
            }
        };
        let found = target.request(part, key, &service).await?;
        let ns = started.elapsed().as_nanos() as u64;
        // A server's request ends its task, or awaits its next request:
        // without this, a task whose requests all hit would never give its
        // worker up, and the runtime's timers (the service's latency) and
        // the cache's own tasks (refresh-ahead) would wait behind it.
        tokio::task::yield_now().await;
        let waited = service.finished(key) != before;
        let missing = service.missing(key);
        let right = match &found {
            Some(v) => !missing && is_value_of(v, key),
            None => missing,
        };
        if !right {
            return Err(format!(
                "key {key} ({}) answered {:?}",
                if missing { "missing" } else { "existing" },
                found.as_deref().map(|v| &v[..8.min(v.len())])
            ));
        }
        if started < clock.from {
            continue;
        }
        seen.latencies.push(u32::try_from(ns).unwrap_or(u32::MAX));
        seen.missing += u64::from(missing);
        seen.cold += u64::from(cold);
        if waited {
            seen.waited += 1;
            seen.waited_missing += u64::from(missing);
            seen.waited_cold += u64::from(cold);
            seen.waited_sparse += u64::from(sparse);
            if seen.min_waited_ns == 0 || ns < seen.min_waited_ns {
                seen.min_waited_ns = ns.max(1);
            }
        } else {
            seen.max_unwaited_ns = seen.max_unwaited_ns.max(ns);
        }
        for (count, ms) in seen.over.iter_mut().zip(OVER_MS) {
            *count += u64::from(ns as f64 > ms * 1e6);
        }
    }
    Ok(seen)
}

/// One measurement: a fresh service and cache, [`TASKS`] tasks making
/// requests for `warmup` (not counted) and then `seconds`.
pub(crate) async fn measure(
    part: Part,
    setup: Setup,
    keys: u64,
    warmup: Duration,
    seconds: Duration,
    seed: u64,
) -> Result<Measured, String> {
    let service = Arc::new(Service::new(keys, part == Part::Negative));
    let target = Arc::new(Target::build(part, setup, keys, &service).await?);
    let base = Instant::now();
    let from = base + warmup;
    let until = from + seconds;
    service.open_window(from, until);
    let clock = Arc::new(Clock {
        base,
        from,
        until,
        last: match part {
            Part::Negative => Vec::new(),
            Part::Refresh => (0..keys).map(|_| AtomicU64::new(0)).collect(),
        },
    });
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|t| {
            let run = requester(
                part,
                target.clone(),
                service.clone(),
                clock.clone(),
                keys,
                seed.wrapping_mul(1_000).wrapping_add(t),
            );
            tokio::spawn(FOREGROUND.scope((), run))
        })
        .collect();
    let mut seen = Seen::default();
    for task in tasks {
        let one = task
            .await
            .map_err(|e| format!("a task failed: {e}"))?
            .map_err(|e| format!("{}: {e}", setup.label(part)))?;
        seen.add(one);
    }
    let stats = target.load_stats();
    drop(target);
    seen.latencies.sort_unstable();
    let lat = &seen.latencies;
    let mut buckets = [0u64; BUCKETS_US.len() + 1];
    let mut lower = 0;
    for (i, &bound) in BUCKETS_US.iter().enumerate() {
        let upper = lat.partition_point(|&ns| u64::from(ns) < bound * 1_000);
        buckets[i] = (upper - lower) as u64;
        lower = upper;
    }
    buckets[BUCKETS_US.len()] = (lat.len() - lower) as u64;
    let us = |p: f64| percentile(lat, p) / 1e3;
    Ok(Measured {
        seconds: seconds.as_secs_f64(),
        requests: lat.len() as u64,
        missing: seen.missing,
        waited: seen.waited,
        waited_missing: seen.waited_missing,
        cold: seen.cold,
        waited_cold: seen.waited_cold,
        waited_sparse: seen.waited_sparse,
        over: seen.over,
        buckets,
        max_unwaited_us: seen.max_unwaited_ns as f64 / 1e3,
        min_waited_us: if seen.min_waited_ns == 0 {
            f64::NAN
        } else {
            seen.min_waited_ns as f64 / 1e3
        },
        p50_us: us(50.0),
        p99_us: us(99.0),
        p999_us: us(99.9),
        max_us: us(100.0),
        calls: service.calls(),
        stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.9), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn every_setup_answers_and_counts() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (warmup, seconds) = (Duration::from_millis(100), Duration::from_millis(300));
        runtime.block_on(async {
            for part in [Part::Negative, Part::Refresh] {
                for setup in Setup::ALL {
                    let m = measure(part, setup, 1_000, warmup, seconds, 1)
                        .await
                        .unwrap();
                    let what = setup.label(part);
                    assert!(m.requests > 0, "{what}");
                    assert_eq!(m.buckets.iter().sum::<u64>(), m.requests, "{what}");
                    assert!(m.waited <= m.requests && m.waited_cold <= m.waited);
                    assert!(m.waited_cold + m.waited_sparse <= m.waited, "{what}");
                    assert!(m.p50_us <= m.p99_us && m.p99_us <= m.max_us, "{what}");
                    assert_eq!(m.stats.is_some(), setup != Setup::Moka);
                    match part {
                        Part::Negative => {
                            assert!(m.missing > 0, "{what}");
                            assert_eq!(m.calls.background, 0, "{what}");
                        }
                        Part::Refresh => {
                            assert_eq!((m.missing, m.calls.missing), (0, 0), "{what}");
                            assert!(m.cold > 0, "{what}");
                        }
                    }
                    if (part, setup) == (Part::Negative, Setup::On) {
                        assert!(m.stats.unwrap().negative_hits > 0, "{what}");
                    }
                }
            }
        });
    }
}
