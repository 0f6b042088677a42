//! Choosing the window size by miniature simulation.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::expiry::{ExpiryRule, NEVER};
use super::shard::{PreHashed, Read, Removed, Shard};

/// The window sizes tried, as shares of the capacity: from none (pure
/// TinyLFU, best on loops) to nearly all of it (close to LRU). Adding 5%
/// and 50% did not raise the hit ratios on the shared traces but cost half
/// as much again in ghost work.
const FRACTIONS: [f64; 4] = [0.0, 0.01, 0.2, 0.9];
/// Every window size is tried without and with the memory of rejected
/// candidates.
const CONFIGS: usize = 2 * FRACTIONS.len();

/// The window share and rejects setting of configuration `i`.
fn config(i: usize) -> (f64, bool) {
    (FRACTIONS[i % FRACTIONS.len()], i >= FRACTIONS.len())
}
/// Orders the configurations by their cost per miss: a larger window makes
/// the candidate an older node, colder in the processor's caches (and
/// without a window a losing newcomer is never stored at all), and the
/// rejects memory adds a lookup to every insertion and one more to every
/// rejection.
fn cost_rank(i: usize) -> (usize, bool) {
    (i % FRACTIONS.len(), i >= FRACTIONS.len())
}
/// The smallest ghost worth simulating: sampling stops halving the key
/// space at this size. Below about a thousand keys the sample's size varies
/// too much for workloads that barely fit, such as a loop slightly longer
/// than the cache, whose hit ratio jumps from nearly all to nothing.
const MIN_GHOST: u64 = 1_024;
/// Room for sampled reads between two feeds of the ghosts (a power of
/// two). A write feeds them once a quarter of the ring is waiting, or every
/// sixteenth write of a partition, so samples are lost only when thousands
/// of sampled reads pass without a write.
const RING: usize = 4_096;
/// A period lasts this many sampled requests per ghost entry.
const PERIOD_PER_ENTRY: u64 = 4;
/// The configuration a cache starts with, until the ghosts have a verdict:
/// a 1% window with the rejects memory, the best of the fixed
/// configurations over the shared traces on average (as in Caffeine, whose
/// window starts at 1%).
const START: usize = FRACTIONS.len() + 1;
/// How far behind the best a configuration may score and still count as
/// good as the best.
const MARGIN: f64 = 0.005;
/// How much of the previous periods' hits a new period keeps.
const DECAY: f64 = 0.5;

/// Picks the window size, and whether to admit recently rejected keys on
/// their return, by running small copies of the cache ("ghosts", keys
/// only), each with a fixed configuration, on a hash-sampled subset of the
/// keys, and following whichever of them hits most.
///
/// Sampling by key hash keeps each sampled key's whole access history, so a
/// ghost of `capacity × rate` entries sees the workload the real cache sees,
/// scaled down (the "miniature simulation" of Waldspurger et al., USENIX
/// ATC 2017). There is one chooser per cache, and one ring of sampled
/// reads, so the ghosts see the requests in the order the cache did (per
/// partition rings would batch each partition's requests together and
/// distort every reuse distance). Readers drop hashes into the ring without
/// a lock; writes feed the ghosts when nobody else is doing so.
pub(crate) struct WindowChooser {
    ghosts: Mutex<Ghosts>,
    ring: Box<[AtomicU32]>,
    head: AtomicUsize,
    /// Where the ring was last read up to (written while feeding).
    tail: AtomicUsize,
    /// The configuration that did best lately.
    target: AtomicU64,
    /// A hash is sampled when these low bits are all zero.
    mask: u32,
}

struct Ghosts {
    shards: Vec<Shard<u32, (), PreHashed>>,
    scores: [f64; CONFIGS],
    hits: [u64; CONFIGS],
    /// Sampled requests fed this period, and the period's length.
    fed: u64,
    period: u64,
    /// Whether the ghosts have filled up. Hits scored while they fill
    /// favour the configurations that fill fastest (the large windows)
    /// rather than the ones that keep the right entries, so no period
    /// starts before.
    full: bool,
    /// The configuration followed now.
    current: usize,
}

/// Spreads a sampled hash (whose low bits are zero) over all 32 bits, so
/// the ghosts' tables and sketches see well-mixed hashes.
fn mix(h: u32) -> u32 {
    let h = (h ^ (h >> 16)).wrapping_mul(0x7FEB_352D);
    let h = (h ^ (h >> 15)).wrapping_mul(0x846C_A68B);
    h ^ (h >> 16)
}

impl WindowChooser {
    /// A chooser for a cache of `capacity` entries.
    pub(crate) fn new(capacity: u64, seed: u64) -> Self {
        let mut shift = 0;
        while shift < 16 && (capacity >> (shift + 1)) >= MIN_GHOST {
            shift += 1;
        }
        let ghost_capacity = (capacity >> shift).max(1);
        WindowChooser {
            ghosts: Mutex::new(Ghosts {
                shards: (0..CONFIGS)
                    .map(|i| {
                        let (share, rejects) = config(i);
                        Shard::ghost(ghost_capacity, share, rejects, seed.wrapping_add(i as u64))
                    })
                    .collect(),
                scores: [0.0; CONFIGS],
                hits: [0; CONFIGS],
                fed: 0,
                period: PERIOD_PER_ENTRY * ghost_capacity,
                full: false,
                current: START,
            }),
            ring: (0..RING).map(|_| AtomicU32::new(0)).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            target: AtomicU64::new(START as u64),
            mask: (1u32 << shift) - 1,
        }
    }

    /// Notes a read, if its key is sampled.
    #[inline]
    pub(crate) fn record(&self, hash: u32) {
        if hash & self.mask == 0 {
            let i = self.head.fetch_add(1, Ordering::Relaxed);
            self.ring[i & (RING - 1)].store(hash, Ordering::Relaxed);
        }
    }

    /// Whether a write that is a partition's `writes`-th should feed the
    /// ghosts now.
    #[inline]
    pub(crate) fn due(&self, writes: u32) -> bool {
        writes.is_multiple_of(16) || self.waiting() >= RING / 4
    }

    fn waiting(&self) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        head.saturating_sub(self.tail.load(Ordering::Relaxed))
    }

    /// The window share, and whether to remember rejected candidates,
    /// that the partitions should use now.
    pub(crate) fn config(&self) -> (f64, bool) {
        config(self.target.load(Ordering::Relaxed) as usize)
    }

    /// Feeds the sampled reads waiting in the ring to the ghosts, unless
    /// another thread is feeding them right now.
    pub(crate) fn feed(&self) {
        let Some(mut ghosts) = self.ghosts.try_lock() else {
            return;
        };
        let head = self.head.load(Ordering::Relaxed);
        // Reads that the ring overwrote before this feed are lost; the
        // ghosts only need a representative sample.
        let tail = self.tail.load(Ordering::Relaxed);
        let start = tail.max(head.saturating_sub(RING));
        for i in start..head {
            ghosts.feed(self.ring[i & (RING - 1)].load(Ordering::Relaxed));
        }
        self.tail.store(head, Ordering::Relaxed);
        if let Some(best) = ghosts.decide() {
            self.target.store(best as u64, Ordering::Relaxed);
        }
    }
}

impl Ghosts {
    fn feed(&mut self, hash: u32) {
        let gh = mix(hash);
        let rule = ExpiryRule::default();
        let full = self.full;
        for (i, ghost) in self.shards.iter_mut().enumerate() {
            // The key is the mixed hash itself, so the ghost recomputes
            // it for free.
            match ghost.read(gh, &gh, rule, || 0) {
                Read::Hit(()) => self.hits[i] += u64::from(full),
                _ => {
                    let mut dropped = Removed::new(false);
                    ghost.insert(gh, gh, (), 1, NEVER, rule, || 0, &mut dropped);
                }
            }
        }
        if full {
            self.fed += 1;
        } else {
            // Every ghost inserts every key it misses, so all fill together.
            let first = &self.shards[0];
            self.full = first.len() as u64 >= first.capacity();
        }
    }

    /// At the end of a period, the configuration whose ghost did best.
    fn decide(&mut self) -> Option<usize> {
        if self.fed < self.period {
            return None;
        }
        self.fed = 0;
        for (score, hits) in self.scores.iter_mut().zip(self.hits.iter_mut()) {
            *score = *score * DECAY + std::mem::take(hits) as f64;
        }
        let best = self
            .scores
            .iter()
            .copied()
            .max_by(f64::total_cmp)
            .unwrap_or(0.0);
        // Configurations within the margin of the best are as good as it:
        // the differences are noise. Moving the window reshuffles the
        // cache, so the current one stays while it is among them, unless a
        // cheaper one is too; otherwise the cheapest of them takes over.
        let floor = best / (1.0 + MARGIN);
        let cheapest = (0..CONFIGS)
            .filter(|&i| self.scores[i] >= floor)
            .min_by_key(|&i| cost_rank(i))
            .unwrap_or(self.current);
        if self.scores[self.current] < floor || cost_rank(cheapest) < cost_rank(self.current) {
            self.current = cheapest;
        }
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(chooser: &WindowChooser, keys: impl Iterator<Item = u32>) {
        for (i, k) in keys.enumerate() {
            chooser.record(k);
            if i % 64 == 0 {
                chooser.feed();
            }
        }
    }

    #[test]
    fn a_loop_drives_the_window_shut() {
        // A loop 10% longer than the cache: only a frequency-filtered main
        // region keeps a stable part of it.
        let chooser = WindowChooser::new(500, 1);
        feed_all(
            &chooser,
            (0..200_000u32).map(|i| (i % 550).wrapping_mul(2_654_435_761)),
        );
        assert_eq!(chooser.config().0, 0.0);
    }

    #[test]
    fn a_sliding_working_set_opens_the_window() {
        // Each key is used a few times in quick succession and never again:
        // only recency pays.
        let chooser = WindowChooser::new(500, 1);
        let keys = (0..200_000u32).map(|i| {
            let k = i / 4 + (i % 4) * 50;
            k.wrapping_mul(2_654_435_761)
        });
        feed_all(&chooser, keys);
        assert!(chooser.config().0 >= 0.2, "config {:?}", chooser.config());
    }
}
