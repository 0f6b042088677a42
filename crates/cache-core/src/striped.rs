//! Counters that many threads add to at once without fighting over a
//! cache line.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Copies of each counter. Threads are dealt stripes round-robin, so up to
/// this many busy threads never share one; past that, two threads share a
/// stripe and still cost far less than one shared counter.
const STRIPES: usize = 16;

thread_local! {
    /// This thread's stripe, dealt once on first use.
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
    };
}

/// One copy of the `N` counters, alone on its cache lines (128 bytes: some
/// processors fetch lines in pairs).
#[derive(Debug)]
#[repr(align(128))]
struct Stripe<const N: usize>([AtomicU64; N]);

/// `N` counters, each added to by many threads and read rarely.
///
/// A single shared counter bounces its cache line between the cores on
/// every add, which on a path of a hundred nanoseconds (a hot-tier hit) costs
/// a large share of the throughput. Here each thread adds to its own copy;
/// a read sums the copies, so it sees every add that happened before it
/// (relaxed: counts, not synchronisation).
///
/// ```
/// use cache_core::StripedCounters;
///
/// let counters: StripedCounters<2> = StripedCounters::new();
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| (0..1000).for_each(|_| counters.add(1, 1)));
///     }
/// });
/// assert_eq!(counters.get(0), 0);
/// assert_eq!(counters.get(1), 4000);
/// ```
#[derive(Debug)]
pub struct StripedCounters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
}

impl<const N: usize> StripedCounters<N> {
    /// `N` counters at zero.
    pub fn new() -> Self {
        StripedCounters {
            stripes: (0..STRIPES)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }

    /// Adds `n` to counter `i`. Panics if `i >= N`.
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        self.stripes[STRIPE.with(|s| *s)].0[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` to counter `i` and returns what this thread's copy held
    /// before: a running count of this thread's adds (and those of any
    /// thread dealt the same copy), free to use for one-in-n decisions
    /// that would otherwise need a counter of their own. Panics if
    /// `i >= N`.
    #[inline]
    pub fn add_and_fetch_stripe(&self, i: usize, n: u64) -> u64 {
        self.stripes[STRIPE.with(|s| *s)].0[i].fetch_add(n, Ordering::Relaxed)
    }

    /// Counter `i`: the sum of its copies. Panics if `i >= N`.
    pub fn get(&self, i: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[i].load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// Every counter at once.
    pub fn snapshot(&self) -> [u64; N] {
        let mut out = [0u64; N];
        for stripe in self.stripes.iter() {
            for (total, c) in out.iter_mut().zip(&stripe.0) {
                *total = total.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        out
    }
}

impl<const N: usize> Default for StripedCounters<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_from_many_threads_are_all_counted() {
        let counters: StripedCounters<3> = StripedCounters::new();
        std::thread::scope(|s| {
            for t in 0..(STRIPES as u64 + 3) {
                let counters = &counters;
                s.spawn(move || {
                    for _ in 0..500 {
                        counters.add(0, 1);
                        counters.add(2, t);
                    }
                });
            }
        });
        let expected_2: u64 = (0..STRIPES as u64 + 3).map(|t| t * 500).sum();
        assert_eq!(counters.get(0), (STRIPES as u64 + 3) * 500);
        assert_eq!(counters.get(1), 0);
        assert_eq!(counters.get(2), expected_2);
        assert_eq!(
            counters.snapshot(),
            [(STRIPES as u64 + 3) * 500, 0, expected_2]
        );
    }

    #[test]
    fn one_thread_sees_its_own_running_count() {
        let counters: StripedCounters<1> = StripedCounters::new();
        std::thread::spawn(move || {
            let seen: Vec<u64> = (0..5)
                .map(|_| counters.add_and_fetch_stripe(0, 2))
                .collect();
            let first = seen[0];
            assert_eq!(seen, (0..5).map(|k| first + 2 * k).collect::<Vec<_>>());
            assert_eq!(counters.get(0), 10);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn each_stripe_has_cache_lines_of_its_own() {
        assert_eq!(std::mem::align_of::<Stripe<1>>(), 128);
        assert_eq!(std::mem::size_of::<Stripe<17>>() % 128, 0);
    }
}
