//! The backing service behind the measured caches: every call awaits a
//! fixed latency, is counted (for existing and for missing keys, in the
//! measured window or not), and tells the requests which of them waited
//! for it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The latency of every call.
pub(crate) const LATENCY: Duration = Duration::from_millis(2);
/// The length of every value.
pub(crate) const VALUE_BYTES: usize = 64;
/// Of every hundred keys, this many do not exist (by [`is_missing`]).
pub(crate) const MISSING_PERCENT: u64 = 20;

tokio::task_local! {
    /// Set around every request task's loop: a call made on such a task
    /// serves a request that waits for it. A call without it runs on a task
    /// of the cache's own (a refresh-ahead), which nobody waits for.
    pub(crate) static FOREGROUND: ();
}

/// SplitMix64's finalizer: a fixed, well-mixed hash of a key.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Whether `key` has no value in the service (when some keys do not
/// exist): its hash falls in the lowest [`MISSING_PERCENT`] of a hundred.
pub(crate) fn is_missing(key: u64) -> bool {
    mix(key) % 100 < MISSING_PERCENT
}

/// The value of `key`: its 8 bytes, little-endian, then a pattern,
/// [`VALUE_BYTES`] in all.
pub(crate) fn value(key: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_BYTES);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend((8..VALUE_BYTES).map(|i| (i as u8) ^ (key as u8)));
    v
}

/// Whether `found` is `key`'s own value.
pub(crate) fn is_value_of(found: &[u8], key: u64) -> bool {
    found.len() == VALUE_BYTES && found[..8] == key.to_le_bytes()
}

/// The calls counted in the measured window.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Calls {
    /// Calls for keys that exist, on a request's task.
    pub(crate) existing: u64,
    /// Calls for keys that do not exist, on a request's task.
    pub(crate) missing: u64,
    /// Calls for missing keys that were the key's first call since the
    /// service started (warm-up included): no cache could have answered
    /// them.
    pub(crate) missing_first: u64,
    /// Calls for existing keys that were the key's first call.
    pub(crate) existing_first: u64,
    /// Calls on the cache's own tasks (refresh-ahead), which no request
    /// waits for.
    pub(crate) background: u64,
    /// The time from each call's start until its latency had passed,
    /// summed over the calls.
    pub(crate) nanos: u64,
}

impl Calls {
    /// Every call.
    pub(crate) fn total(&self) -> u64 {
        self.existing + self.missing + self.background
    }

    /// The mean measured latency of one call, in milliseconds.
    pub(crate) fn mean_ms(&self) -> f64 {
        if self.total() == 0 {
            return f64::NAN;
        }
        self.nanos as f64 / self.total() as f64 / 1e6
    }
}

/// The service: keys `1..=keys`, of which [`is_missing`] ones have no
/// value when `with_missing`.
pub(crate) struct Service {
    with_missing: bool,
    /// The measured window; calls that start outside it are not counted.
    window: OnceLock<(Instant, Instant)>,
    /// Per key (index `key - 1`): the calls made on a request's task that
    /// have finished, at any time. A request whose key's count moved while
    /// it ran waited for a call (it made it, or joined the one that did).
    finished: Vec<AtomicU64>,
    /// Per key: every call started, at any time.
    started: Vec<AtomicU64>,
    existing: AtomicU64,
    missing: AtomicU64,
    missing_first: AtomicU64,
    existing_first: AtomicU64,
    background: AtomicU64,
    nanos: AtomicU64,
}

impl Service {
    pub(crate) fn new(keys: u64, with_missing: bool) -> Service {
        let counters = || (0..keys).map(|_| AtomicU64::new(0)).collect();
        Service {
            with_missing,
            window: OnceLock::new(),
            finished: counters(),
            started: counters(),
            existing: AtomicU64::new(0),
            missing: AtomicU64::new(0),
            missing_first: AtomicU64::new(0),
            existing_first: AtomicU64::new(0),
            background: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        }
    }

    /// Counts the calls that start within `from..until` from now on.
    pub(crate) fn open_window(&self, from: Instant, until: Instant) {
        self.window
            .set((from, until))
            .expect("a service measures one window");
    }

    fn in_window(&self, at: Instant) -> bool {
        self.window
            .get()
            .is_some_and(|&(from, until)| at >= from && at < until)
    }

    /// Whether `key` has no value here.
    pub(crate) fn missing(&self, key: u64) -> bool {
        self.with_missing && is_missing(key)
    }

    /// The foreground calls of `key` finished so far.
    #[inline]
    pub(crate) fn finished(&self, key: u64) -> u64 {
        self.finished[(key - 1) as usize].load(Ordering::Acquire)
    }

    /// One call: waits [`LATENCY`], counts itself, and answers `key`'s
    /// value, or `None` for a missing key.
    pub(crate) async fn fetch(&self, key: u64) -> Option<Vec<u8>> {
        let index = (key - 1) as usize;
        let first = self.started[index].fetch_add(1, Ordering::Relaxed) == 0;
        let started = Instant::now();
        tokio::time::sleep(LATENCY).await;
        let took = started.elapsed().as_nanos() as u64;
        let foreground = FOREGROUND.try_with(|_| ()).is_ok();
        let missing = self.missing(key);
        if self.in_window(started) {
            self.nanos.fetch_add(took, Ordering::Relaxed);
            let counter = match (foreground, missing) {
                (false, _) => &self.background,
                (true, true) => &self.missing,
                (true, false) => &self.existing,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if foreground && first {
                let firsts = if missing {
                    &self.missing_first
                } else {
                    &self.existing_first
                };
                firsts.fetch_add(1, Ordering::Relaxed);
            }
        }
        if foreground {
            self.finished[index].fetch_add(1, Ordering::Release);
        }
        (!missing).then(|| value(key))
    }

    pub(crate) fn calls(&self) -> Calls {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Calls {
            existing: get(&self.existing),
            missing: get(&self.missing),
            missing_first: get(&self.missing_first),
            existing_first: get(&self.existing_first),
            background: get(&self.background),
            nanos: get(&self.nanos),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifth_of_the_keys_are_missing() {
        let missing = (1..=100_000).filter(|&k| is_missing(k)).count();
        assert!((19_000..21_000).contains(&missing), "{missing}");
        assert_eq!(is_missing(12_345), is_missing(12_345));
    }

    #[test]
    fn values_carry_their_key() {
        let v = value(77);
        assert_eq!(v.len(), VALUE_BYTES);
        assert!(is_value_of(&v, 77));
        assert!(!is_value_of(&v, 78));
    }

    #[test]
    fn calls_are_counted_in_the_window_only() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let service = Service::new(10, true);
            let (present, absent) = (1..=10).partition::<Vec<u64>, _>(|&k| !is_missing(k));
            // Before the window: not counted, but finished all the same.
            FOREGROUND.scope((), service.fetch(present[0])).await;
            let now = Instant::now();
            service.open_window(now, now + Duration::from_secs(60));
            assert!(
                FOREGROUND
                    .scope((), service.fetch(present[0]))
                    .await
                    .is_some()
            );
            if let Some(&k) = absent.first() {
                assert!(FOREGROUND.scope((), service.fetch(k)).await.is_none());
            }
            // Not on a request's task: in the background.
            service.fetch(present[0]).await;
            let calls = service.calls();
            assert_eq!(calls.existing, 1);
            assert_eq!(calls.existing_first, 0, "its first call came before");
            assert_eq!(calls.missing, absent.len().min(1) as u64);
            assert_eq!(calls.missing_first, calls.missing);
            assert_eq!(calls.background, 1);
            assert_eq!(service.finished(present[0]), 2);
            assert!(calls.mean_ms() >= 2.0);
        });
    }
}
