//! The prefetcher: learns which key tends to follow which in each stream of
//! lookups, and after a lookup fetches the likely next keys in the
//! background.
//!
//! A lookup ([`Prefetcher::observe`]) does three things, none of which
//! waits or allocates in the common case:
//!
//! 1. It swaps its key's hash into its stream's slot of a fixed table
//!    (`streams`), getting the stream's previous key.
//! 2. It counts "this key followed the previous one" in the previous key's
//!    node of the successor table (`table`): a bounded, sharded map from a
//!    key's hash to its successors and their counts, which age so that a
//!    changed sequence is relearned.
//! 3. Under the lock of its own key's shard (`shard`), it counts itself,
//!    checks whether it was a prefetched key not yet read (`tracker`, for
//!    precision), and reads its own likely successors: those whose share of
//!    its transitions reaches the threshold and whose count reaches the
//!    minimum. Each that the cache does not hold is offered to a bounded,
//!    de-duplicating queue (`queue`) that a background task (`worker`)
//!    drains under a concurrency limit.
//!
//! A workload with no sequence predicts almost nothing: each key's
//! successors are then spread over many keys, none reaching the threshold,
//! and the few that do are usually the hottest keys, which the cache holds.

mod prehashed;
mod queue;
mod settings;
mod shard;
mod stats;
mod streams;
mod table;
mod tracker;
mod worker;

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use cache_core::{Error, ErrorKind, Result};
use foldhash::fast::RandomState;
use futures::future::BoxFuture;
use parking_lot::Mutex;

use crate::WarmOutcome;
use queue::Queue;
use shard::Shard;
use stats::OutcomeCounts;
use streams::Streams;

pub use settings::PrefetchSettings;
pub use stats::PrefetchStats;

/// Fetches one predicted key into the cache (the facade's closure: checks
/// presence, loads through the cache's loader or copies up from a lower
/// tier), reporting what it did.
pub type FetchFn<K> = Arc<dyn Fn(K) -> BoxFuture<'static, WarmOutcome> + Send + Sync>;

/// Says whether the cache already holds a key, so that a prediction of it
/// is not fetched. It is called on the lookup's own thread, so it should be
/// as cheap as a lookup, and must not wait.
pub type PresentFn<K> = Arc<dyn Fn(&K) -> bool + Send + Sync>;

/// The most shards the per-key state is split into; enough that lookups on
/// many threads rarely meet on one lock.
const MAX_SHARDS: usize = 64;

/// A shard halves its counts after learning this many transitions per key
/// it can hold: long enough that a sequence seen a few times in each key's
/// share of traffic survives, short enough that a changed one is relearned
/// within a few passes over the table's worth of keys.
const AGE_FACTOR: usize = 8;

/// The fewest transitions between halvings, so that a tiny table does not
/// forget faster than it can learn a minimum count.
const MIN_AGE_PERIOD: usize = 32;

/// A prefetcher that learns access sequences and warms the cache ahead of
/// them.
///
/// Cloning it is cheap and shares the prefetcher; the worker stops on
/// [`shutdown`](Prefetcher::shutdown) or when the last clone is dropped.
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::Arc;
///
/// use cache_warm::{FetchFn, PrefetchSettings, Prefetcher, PresentFn, WarmOutcome};
/// use futures::FutureExt;
/// use parking_lot::Mutex;
///
/// tokio::runtime::Builder::new_current_thread()
///     .build()
///     .unwrap()
///     .block_on(async {
///         let cache = Arc::new(Mutex::new(HashSet::new()));
///         let present: PresentFn<&str> = {
///             let cache = Arc::clone(&cache);
///             Arc::new(move |key| cache.lock().contains(key))
///         };
///         let fetch: FetchFn<&str> = {
///             let cache = Arc::clone(&cache);
///             Arc::new(move |key| {
///                 cache.lock().insert(key);
///                 async { WarmOutcome::Warmed }.boxed()
///             })
///         };
///         let prefetcher = Prefetcher::new(PrefetchSettings::default(), present, fetch).unwrap();
///         // Three sessions read the home page, then the news.
///         for session in 0..3 {
///             prefetcher.observe(session, &"home", false);
///             prefetcher.observe(session, &"news", false);
///         }
///         assert_eq!(prefetcher.predict(&"home"), vec![("news", 1.0)]);
///         // The next read of the home page fetches the news ahead.
///         cache.lock().clear();
///         prefetcher.observe(3, &"home", false);
///         prefetcher.idle().await;
///         assert!(cache.lock().contains("news"));
///     });
/// ```
pub struct Prefetcher<K> {
    owner: Arc<Owner<K>>,
}

impl<K> Clone for Prefetcher<K> {
    fn clone(&self) -> Self {
        Prefetcher {
            owner: Arc::clone(&self.owner),
        }
    }
}

/// Shared by the clones of a [`Prefetcher`] (and not by its worker, which
/// holds the [`Core`] only), so that dropping the last clone stops the
/// worker.
struct Owner<K> {
    core: Arc<Core<K>>,
}

impl<K> Drop for Owner<K> {
    fn drop(&mut self) {
        self.core.queue.close();
    }
}

/// The prefetcher's state, shared with its worker and fetch tasks.
struct Core<K> {
    settings: PrefetchSettings,
    hasher: RandomState,
    /// A power of two of shards, chosen by bits of the key hash that the
    /// shards' own maps do not use for their buckets or tags.
    shards: Box<[Mutex<Shard<K>>]>,
    key_capacity: usize,
    streams: Streams,
    present: PresentFn<K>,
    fetch: FetchFn<K>,
    queue: Queue<K>,
    outcomes: OutcomeCounts,
}

impl<K: Clone> Core<K> {
    fn shard(&self, hash: u64) -> &Mutex<Shard<K>> {
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    /// Counts a fetch's outcome; a warmed key is followed until it is read.
    fn record(&self, hash: u64, outcome: &WarmOutcome) {
        self.outcomes.record(outcome);
        if matches!(outcome, WarmOutcome::Warmed) {
            self.shard(hash).lock().prefetched(hash);
        }
    }
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Prefetcher<K> {
    /// A prefetcher with `settings` that asks `present` whether the cache
    /// holds a predicted key and has `fetch` fetch it when it does not.
    ///
    /// It must be called inside a tokio runtime, where it spawns the
    /// worker. Errors (with [`ErrorKind::InvalidConfig`]) on invalid
    /// settings, on a memory bound too small for one key, or outside a
    /// runtime.
    pub fn new(
        settings: PrefetchSettings,
        present: PresentFn<K>,
        fetch: FetchFn<K>,
    ) -> Result<Self> {
        settings.validate_for::<K>()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                "a Prefetcher must be created inside a tokio runtime, where it spawns its worker",
            )
        })?;
        let capacity = settings.key_capacity::<K>();
        // The largest power of two not above the capacity (and the shard
        // limit), so that every shard holds at least one key.
        let shards = MAX_SHARDS.min(1 << capacity.ilog2());
        let per_shard = capacity / shards;
        let period =
            u32::try_from((AGE_FACTOR * per_shard).max(MIN_AGE_PERIOD)).unwrap_or(u32::MAX);
        let tracked = (settings.tracked / shards).max(1);
        let core = Arc::new(Core {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(per_shard, settings.candidates, period, tracked)))
                .collect(),
            key_capacity: shards * per_shard,
            hasher: RandomState::default(),
            streams: Streams::new(),
            present,
            fetch,
            queue: Queue::new(settings.queue, settings.concurrency),
            outcomes: OutcomeCounts::default(),
            settings,
        });
        runtime.spawn(worker::run(Arc::clone(&core)));
        Ok(Prefetcher {
            owner: Arc::new(Owner { core }),
        })
    }

    /// Learns from one lookup of `key` in `stream`, and queues the
    /// predictions the cache does not hold. `hit`: whether the lookup was
    /// answered from the cache (a hit on a prefetched, unread key counts as
    /// used; a miss on one as unused).
    ///
    /// It never waits: a full queue drops the prediction.
    pub fn observe(&self, stream: u64, key: &K, hit: bool) {
        let core = &*self.owner.core;
        let hash = core.hasher.hash_one(key);
        // A key read twice in a row teaches nothing: it is in the cache.
        if let Some(previous) = core.streams.advance(stream, hash)
            && previous != hash
        {
            core.shard(previous).lock().table.learn(previous, hash, key);
        }
        let predictions = core.shard(hash).lock().read(
            hash,
            hit,
            core.settings.threshold,
            core.settings.min_count,
        );
        let Some(predictions) = predictions else {
            return;
        };
        // The presence check runs outside every lock: it calls into the
        // cache, which may well call `observe` again.
        for (successor, successor_hash, _) in predictions.into_entries() {
            if core.queue.is_closed() {
                return;
            }
            if !(core.present)(&successor) {
                core.queue.offer(successor_hash, successor);
            }
        }
    }

    /// The successors of `key` whose estimated probability reaches the
    /// threshold (and count the minimum), most likely first, with their
    /// estimated probabilities.
    pub fn predict(&self, key: &K) -> Vec<(K, f64)> {
        let core = &*self.owner.core;
        let hash = core.hasher.hash_one(key);
        let predictions = core.shard(hash).lock().table.likely(
            hash,
            core.settings.threshold,
            core.settings.min_count,
        );
        predictions
            .map(|p| p.into_entries().map(|(key, _, p)| (key, p)).collect())
            .unwrap_or_default()
    }

    /// The counters, summed over the shards.
    pub fn stats(&self) -> PrefetchStats {
        let core = &*self.owner.core;
        let mut stats = PrefetchStats::default();
        for shard in &*core.shards {
            shard.lock().add_to(&mut stats);
        }
        core.outcomes.fill(&mut stats);
        let queue = core.queue.counts();
        stats.issued = queue.issued;
        stats.deduplicated = queue.deduplicated;
        stats.dropped = queue.dropped;
        stats.queued = queue.queued as u64;
        stats.in_flight = queue.in_flight as u64;
        stats
    }

    /// Writes the counters to the installed metrics recorder: counter
    /// [`PREFETCH_TOTAL`](crate::PREFETCH_TOTAL) with `event` `issued`,
    /// `warmed`, `present`, `missing`, `failed`, `dropped`, `used` and
    /// `unused`, set to their totals.
    pub fn emit_metrics(&self) {
        let s = self.stats();
        for (event, value) in [
            ("issued", s.issued),
            ("warmed", s.warmed),
            ("present", s.present),
            ("missing", s.missing),
            ("failed", s.failed),
            ("dropped", s.dropped),
            ("used", s.used),
            ("unused", s.unused),
        ] {
            ::metrics::counter!(crate::PREFETCH_TOTAL, "event" => event).absolute(value);
        }
    }

    /// Waits until no key is queued and no fetch is running (for tests and
    /// benchmarks).
    pub async fn idle(&self) {
        self.owner.core.queue.idle().await;
    }

    /// Stops the worker: queued keys are forgotten, later predictions are
    /// not queued, and fetches already running finish. Dropping the last
    /// clone does the same.
    pub fn shutdown(&self) {
        self.owner.core.queue.close();
    }

    /// The most keys the successor table holds: at most
    /// [`PrefetchSettings::key_capacity`], rounded down to whole shards.
    pub fn key_capacity(&self) -> usize {
        self.owner.core.key_capacity
    }

    /// The settings it was created with.
    pub fn settings(&self) -> &PrefetchSettings {
        &self.owner.core.settings
    }
}

impl<K> fmt::Debug for Prefetcher<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = &*self.owner.core;
        f.debug_struct("Prefetcher")
            .field("settings", &core.settings)
            .field("key_capacity", &core.key_capacity)
            .field("shards", &core.shards.len())
            .finish_non_exhaustive()
    }
}
