//! The policies the simulator replays: tiercache's engine, the exact
//! baselines, the peer crates as built by their own defaults, and reference
//! points at exact capacity (the classic ARC and LIRS, and moka with its
//! maintenance run after every insert).

use std::fmt;

use foyer_memory::{CacheBuilder, LfuConfig, S3FifoConfig};
use tiercache::memory::MemoryCache;

use crate::{Admission, Arc, ConcurrentCache, Lirs, Lru, Opt};

/// A cache replayed over a trace: it only has to say whether a request hit.
pub trait Policy {
    /// Requests `key`: returns `true` on a hit; on a miss the policy caches
    /// the key if it wants to (the replay is "get, then insert on a miss").
    fn access(&mut self, key: u64) -> bool;
}

/// Replays `keys` through `policy` and returns the number of hits.
///
/// `progress` is called with the number of requests done after every
/// tenth of the trace, so a caller can report on long replays.
pub fn replay<P: Policy + ?Sized>(
    policy: &mut P,
    keys: &[u64],
    mut progress: impl FnMut(usize),
) -> u64 {
    let chunk = keys.len().div_ceil(10).max(1);
    let mut hits = 0;
    let mut done = 0;
    for part in keys.chunks(chunk) {
        hits += part.iter().filter(|&&key| policy.access(key)).count() as u64;
        done += part.len();
        progress(done);
    }
    hits
}

/// Every policy the simulator knows, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// `tiercache::memory::MemoryCache` with its builder's defaults.
    Tiercache,
    /// `tiercache::memory::MemoryCache` with the hidden `exact_reads(true)`:
    /// each hit's policy bookkeeping is applied at once instead of being
    /// deferred, which measures what the deferral costs in hit ratio.
    TiercacheExact,
    /// The exact LRU of this crate ([`Lru`]).
    Lru,
    /// Belady's optimal policy ([`Opt`]) with [`Admission::Bypass`]: the
    /// bound no policy may beat, admission filters included.
    Opt,
    /// `moka::sync::Cache::new(capacity)`.
    Moka,
    /// `quick_cache::sync::Cache::new(capacity)`.
    QuickCache,
    /// `foyer_memory::Cache` with `LfuConfig::default()` (W-TinyLFU).
    FoyerLfu,
    /// `foyer_memory::Cache` with `S3FifoConfig::default()`.
    FoyerS3Fifo,
    /// ARC, the Adaptive Replacement Cache of this crate ([`Arc`]).
    Arc,
    /// LIRS of this crate ([`Lirs`]): 1 % of the capacity for resident HIR
    /// entries, at most 3 × capacity non-resident ones.
    Lirs,
    /// `moka::sync::Cache::new(capacity)` like [`PolicyKind::Moka`], with
    /// `run_pending_tasks()` after every insert: moka defers its evictions
    /// and may hold well above its capacity in between, which this variant
    /// never does.
    MokaSynced,
}

impl PolicyKind {
    /// Every policy, in the order of the simulator's table columns.
    pub const ALL: [Self; 11] = [
        Self::Tiercache,
        Self::TiercacheExact,
        Self::Lru,
        Self::Opt,
        Self::Moka,
        Self::QuickCache,
        Self::FoyerLfu,
        Self::FoyerS3Fifo,
        Self::Arc,
        Self::Lirs,
        Self::MokaSynced,
    ];

    /// The name on the command line and in JSON output.
    pub fn id(self) -> &'static str {
        match self {
            Self::Tiercache => "tiercache",
            Self::TiercacheExact => "tiercache-exact",
            Self::Lru => "lru",
            Self::Opt => "opt",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::FoyerLfu => "foyer-lfu",
            Self::FoyerS3Fifo => "foyer-s3fifo",
            Self::Arc => "arc",
            Self::Lirs => "lirs",
            Self::MokaSynced => "moka-synced",
        }
    }

    /// The column header in tables and the legend in plots.
    pub fn label(self) -> &'static str {
        match self {
            Self::Tiercache => "tiercache",
            Self::TiercacheExact => "tiercache (exact)",
            Self::Lru => "LRU",
            Self::Opt => "OPT",
            Self::Moka => "moka",
            Self::QuickCache => "quick_cache",
            Self::FoyerLfu => "foyer W-TinyLFU",
            Self::FoyerS3Fifo => "foyer S3-FIFO",
            Self::Arc => "ARC",
            Self::Lirs => "LIRS",
            Self::MokaSynced => "moka (synced)",
        }
    }

    /// The policy named `id` (as [`PolicyKind::id`] spells it, case
    /// insensitive).
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.id().eq_ignore_ascii_case(id.trim()))
    }

    /// Whether the policy counts as a peer: the exact LRU and the peer
    /// crates as built by their own defaults; not tiercache itself (either
    /// variant), not the OPT bound, and not the reference algorithms ARC and
    /// LIRS nor moka in its non-default synced configuration.
    pub fn is_peer(self) -> bool {
        !matches!(
            self,
            Self::Tiercache
                | Self::TiercacheExact
                | Self::Opt
                | Self::Arc
                | Self::Lirs
                | Self::MokaSynced
        )
    }

    /// Whether the policy seeds its hashing at random, so that its hit
    /// ratio moves from run to run: tiercache (both variants), moka (both
    /// variants) and quick_cache. LRU, OPT, ARC, LIRS and foyer (with its
    /// default fixed hasher) replay the same way every time.
    pub fn is_seeded(self) -> bool {
        matches!(
            self,
            Self::Tiercache
                | Self::TiercacheExact
                | Self::Moka
                | Self::QuickCache
                | Self::MokaSynced
        )
    }

    /// A new, empty instance holding at most `capacity` entries, for a
    /// replay of `keys`. Only OPT reads `keys` and their `next_use` (from
    /// [`next_uses`](crate::next_uses)).
    pub fn build<'a>(
        self,
        capacity: u64,
        keys: &'a [u64],
        next_use: &'a [u32],
    ) -> Box<dyn Policy + Send + 'a> {
        let entries = usize::try_from(capacity).expect("capacity fits usize");
        match self {
            Self::Tiercache => Box::new(Shared(MemoryCache::with_capacity(capacity))),
            Self::TiercacheExact => Box::new(Shared(
                MemoryCache::builder()
                    .max_capacity(capacity)
                    .exact_reads(true)
                    .build(),
            )),
            Self::Lru => Box::new(Lru::new(entries)),
            Self::Opt => Box::new(Opt::new(entries, Admission::Bypass, keys, next_use)),
            Self::Moka => Box::new(Shared(moka::sync::Cache::with_capacity(capacity))),
            Self::QuickCache => Box::new(Shared(quick_cache::sync::Cache::with_capacity(capacity))),
            Self::FoyerLfu => Box::new(Shared::<foyer_memory::Cache<u64, u64>>(
                CacheBuilder::new(entries)
                    .with_eviction_config(LfuConfig::default())
                    .build(),
            )),
            Self::FoyerS3Fifo => Box::new(Shared::<foyer_memory::Cache<u64, u64>>(
                CacheBuilder::new(entries)
                    .with_eviction_config(S3FifoConfig::default())
                    .build(),
            )),
            Self::Arc => Box::new(Arc::new(entries)),
            Self::Lirs => Box::new(Lirs::new(entries)),
            Self::MokaSynced => Box::new(Synced(moka::sync::Cache::with_capacity(capacity))),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Replays a [`ConcurrentCache`]: get, then insert on a miss.
struct Shared<C>(C);

impl<C: ConcurrentCache> Policy for Shared<C> {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        false
    }
}

/// Replays a [`ConcurrentCache`] like [`Shared`], applying the cache's
/// deferred maintenance ([`ConcurrentCache::sync`]) after every insert so
/// that it never holds more than its capacity when the next request comes.
struct Synced<C>(C);

impl<C: ConcurrentCache> Policy for Synced<C> {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(key).is_some() {
            return true;
        }
        self.0.insert(key, key);
        self.0.sync();
        false
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Zipf};

    use super::*;
    use crate::next_uses;

    #[test]
    fn ids_round_trip() {
        for kind in PolicyKind::ALL {
            assert_eq!(PolicyKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(PolicyKind::from_id(" MOKA "), Some(PolicyKind::Moka));
        assert_eq!(PolicyKind::from_id("clock"), None);
        assert_eq!(PolicyKind::from_id("ARC"), Some(PolicyKind::Arc));
    }

    /// Keys mixing a skewed popular set with a scan, so recency, frequency
    /// and admission all matter.
    fn mixed_trace(len: usize, seed: u64) -> Vec<u64> {
        let zipf = Zipf::new(2_000.0, 0.9).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut scan = 1_000_000;
        (0..len)
            .map(|i| {
                if i % 7 == 0 {
                    scan += 1;
                    scan
                } else {
                    zipf.sample(&mut rng) as u64
                }
            })
            .collect()
    }

    #[test]
    fn no_policy_beats_opt() {
        for (seed, capacity) in [(1, 10), (2, 100), (3, 500)] {
            let keys = mixed_trace(20_000, seed);
            let next = next_uses(&keys);
            let mut hits = Vec::new();
            for kind in PolicyKind::ALL {
                let mut policy = kind.build(capacity, &keys, &next);
                hits.push((kind, replay(policy.as_mut(), &keys, |_| {})));
            }
            let opt = *hits
                .iter()
                .find(|(kind, _)| *kind == PolicyKind::Opt)
                .expect("OPT is one of ALL");
            let mut demand = Opt::new(capacity as usize, Admission::Demand, &keys, &next);
            let demand = replay(&mut demand, &keys, |_| {});
            assert!(demand <= opt.1, "demand OPT {demand} > OPT {}", opt.1);
            for (kind, h) in hits {
                assert!(
                    h <= opt.1,
                    "{kind} hit {h} times at capacity {capacity}, OPT only {}",
                    opt.1
                );
                assert!(h > 0, "{kind} never hit at capacity {capacity}");
            }
        }
    }

    #[test]
    fn synced_moka_never_holds_more_than_its_capacity() {
        let capacity = 100;
        let keys = mixed_trace(5_000, 4);
        let mut synced = Synced(moka::sync::Cache::<u64, u64>::with_capacity(capacity));
        let mut hits = 0;
        for &key in &keys {
            hits += u64::from(synced.access(key));
            let held = synced.0.iter().count() as u64;
            assert!(held <= capacity, "{held} entries held, capacity {capacity}");
        }
        assert!(hits > 0);
    }

    #[test]
    fn replay_reports_progress_in_tenths() {
        let keys: Vec<u64> = (0..95).collect();
        let mut seen = Vec::new();
        let hits = replay(&mut Lru::new(10), &keys, |done| seen.push(done));
        assert_eq!(hits, 0);
        assert_eq!(seen, [10, 20, 30, 40, 50, 60, 70, 80, 90, 95]);
    }
}
