//! The workloads: Zipf keys spread over the key space, values that carry
//! their key, user sessions that walk pages in typical orders, and the
//! counting loader every cache loads through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use tiercache_benches::zipf_keys;

/// The length of every value, in bytes.
pub(crate) const VALUE_BYTES: usize = 100;

/// SplitMix64's finalizer, a bijection of `u64`: a Zipf rank becomes a
/// key spread over the whole space, so that neither a tier's key order nor
/// the hot tier's partitions line up with popularity.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `len` requests for Zipf(`s`) ranks over `1..=keys`, each rank turned
/// into its key by [`mix`], from a fixed seed.
pub(crate) fn zipf_requests(keys: u64, s: f64, len: usize, seed: u64) -> Vec<u64> {
    zipf_keys(keys, s, len, seed)
        .into_iter()
        .map(|rank| mix(rank.clamp(1, keys)))
        .collect()
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

/// Checks the answer to a request for `key`.
pub(crate) fn check(key: u64, found: Option<&Vec<u8>>) -> Result<(), String> {
    match found {
        Some(v) if is_value_of(v, key) => Ok(()),
        Some(v) => Err(format!(
            "key {key} answered another value ({:?}…)",
            &v[..8.min(v.len())]
        )),
        None => Err(format!("key {key} answered no value")),
    }
}

tokio::task_local! {
    /// Set around the requesting tasks: a loader call made on such a task
    /// serves a request. A call without it runs on a task of the cache's
    /// own: the prefetcher's, or a warmer's.
    pub(crate) static FOREGROUND: ();
}

/// The loader's counters: calls made on a request's task and on the
/// cache's own tasks, counted while `counting` is set.
#[derive(Default)]
pub(crate) struct Calls {
    counting: AtomicBool,
    foreground: AtomicU64,
    background: AtomicU64,
}

impl Calls {
    /// Counting from now on (or no longer).
    pub(crate) fn count(&self, on: bool) {
        self.counting.store(on, Ordering::SeqCst);
    }

    /// Calls made for requests so far.
    pub(crate) fn foreground(&self) -> u64 {
        self.foreground.load(Ordering::SeqCst)
    }

    /// Calls made by the cache's own tasks so far.
    pub(crate) fn background(&self) -> u64 {
        self.background.load(Ordering::SeqCst)
    }

    fn called(&self) {
        if !self.counting.load(Ordering::Relaxed) {
            return;
        }
        let counter = if FOREGROUND.try_with(|_| ()).is_ok() {
            &self.foreground
        } else {
            &self.background
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// A loader that answers every key's [`value`] after `delay` (none when
/// zero), counting its calls in `calls`.
pub(crate) fn loader(
    calls: Arc<Calls>,
    delay: Duration,
) -> impl Fn(u64) -> futures::future::BoxFuture<'static, tiercache::Result<Option<Vec<u8>>>>
+ Send
+ Sync
+ 'static {
    move |key: u64| {
        let calls = calls.clone();
        Box::pin(async move {
            calls.called();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Some(value(key)))
        })
    }
}

/// How the user sessions of part 3 are made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionShape {
    /// Pages `0..pages`.
    pub(crate) pages: u64,
    /// Typical paths through them.
    pub(crate) paths: usize,
    /// The shortest and the longest path, in pages.
    pub(crate) path_len: (usize, usize),
    /// The Zipf exponent of the paths' popularity.
    pub(crate) path_s: f64,
    /// The chance that a step visits a random page instead of the path's.
    pub(crate) detour: f64,
}

/// A session workload: each session's pages.
pub(crate) struct Sessions {
    pub(crate) sessions: Vec<Vec<u64>>,
    /// Requests that followed their path (not a detour).
    pub(crate) on_path: u64,
    /// Distinct pages on some path.
    pub(crate) path_pages: usize,
}

impl Sessions {
    /// `count` sessions of `shape`, from `seed`: each picks a path by its
    /// Zipf popularity and visits its pages in order, each step visiting a
    /// page drawn uniformly from all pages instead with probability
    /// `detour` (and going on with the path after it).
    pub(crate) fn generate(shape: SessionShape, count: usize, seed: u64) -> Sessions {
        let mut rng = StdRng::seed_from_u64(seed);
        let paths: Vec<Vec<u64>> = (0..shape.paths)
            .map(|_| {
                let len = rng.random_range(shape.path_len.0..=shape.path_len.1);
                let mut path: Vec<u64> = Vec::with_capacity(len);
                while path.len() < len {
                    let page = rng.random_range(0..shape.pages);
                    // A path does not visit the page it is on again.
                    if !path.contains(&page) {
                        path.push(page);
                    }
                }
                path
            })
            .collect();
        let zipf = Zipf::new(shape.paths as f64, shape.path_s).expect("a valid Zipf");
        let mut on_path = 0;
        let sessions = (0..count)
            .map(|_| {
                let path = &paths[(zipf.sample(&mut rng) as usize).clamp(1, shape.paths) - 1];
                path.iter()
                    .map(|&page| {
                        if rng.random_bool(shape.detour) {
                            rng.random_range(0..shape.pages)
                        } else {
                            on_path += 1;
                            page
                        }
                    })
                    .collect()
            })
            .collect();
        let mut distinct: Vec<u64> = paths.iter().flatten().copied().collect();
        distinct.sort_unstable();
        distinct.dedup();
        Sessions {
            sessions,
            on_path,
            path_pages: distinct.len(),
        }
    }

    /// Every request of every session.
    pub(crate) fn requests(&self) -> usize {
        self.sessions.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_key() {
        let v = value(77);
        assert_eq!(v.len(), VALUE_BYTES);
        assert!(check(77, Some(&v)).is_ok());
        assert!(check(78, Some(&v)).is_err());
        assert!(check(77, None).is_err());
    }

    #[test]
    fn zipf_requests_are_spread_and_repeatable() {
        let a = zipf_requests(1_000, 1.0, 10_000, 3);
        assert_eq!(a, zipf_requests(1_000, 1.0, 10_000, 3));
        // The hottest rank is the most requested key, and it is not 1.
        let hottest = mix(1);
        let count = a.iter().filter(|&&k| k == hottest).count();
        assert!(count > 500, "{count}");
        assert_ne!(hottest, 1);
    }

    #[test]
    fn sessions_follow_their_paths() {
        let shape = SessionShape {
            pages: 1_000,
            paths: 20,
            path_len: (5, 10),
            path_s: 1.0,
            detour: 0.1,
        };
        let s = Sessions::generate(shape, 500, 1);
        assert_eq!(s.sessions.len(), 500);
        assert!(s.sessions.iter().all(|p| (5..=10).contains(&p.len())));
        assert!(s.path_pages <= 20 * 10);
        let share = s.on_path as f64 / s.requests() as f64;
        assert!((0.85..0.95).contains(&share), "{share}");
        assert!(s.sessions.iter().flatten().all(|&p| p < 1_000));
    }
}
