//! The concurrent history checker (issue 15): many tasks get, insert,
//! remove, load (`get_with`) and now and then clear a few hot keys, over
//! every tier stack the builder allows (memory only, memory and redb, memory
//! and Redis, memory and redb and Redis), each in write-through and
//! write-on-evict, with and without a time-to-idle, with a hot tier smaller
//! than the key set and one that holds every key. Each byte tier pauses at
//! random around each call ([`Delayed`]), and one call in ten is cancelled:
//! dropped after a tiny timeout or a few polls.
//!
//! Every call is stamped on a shared logical clock just before it starts and
//! just after it returns, and each value carries its key and the unique id of
//! the write that made it, so a read names exactly which write it saw. After
//! each run [`check`] verifies, per key, that no read returned a value
//! written after the read ended, nor one older than a write, removal or
//! clear that completed before the read began (stale, or a removed key come
//! back). A read that finds nothing always passes.
//!
//! Each run prints its seed. `TIERCACHE_HISTORY_SEED=N` replays the same
//! choices of ops, keys, delays and cancellations (the threads' interleaving
//! still varies), and `TIERCACHE_HISTORY_SECS=S` runs each combination for
//! S seconds (1 by default; a long run is split into rounds of at most two
//! seconds, each over a fresh cache and checked on its own).
//!
//! `history_with_a_store` runs the same tasks with a store behind the
//! cache, under each write policy (through, back, around), without clears
//! (a clear empties the cache, not the store): reads then also go to the
//! write-back log and the store. `history_with_load_protection` adds
//! refresh-ahead every 2 ms (background reloads from the store that race
//! with the writes of their keys), stale-if-error and negative caching of
//! the store's "none". `history_with_warming` runs them over memory and
//! redb with the prefetcher copying up every likely next key (its
//! threshold is set so low that it fetches after almost every lookup) and
//! a background task that warms the hot tier from the redb tier again and
//! again, and (write-through) saves a snapshot and loads it back: warming
//! moves values up while the writes of their keys go on.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::conformance::{self, ReferenceBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tiercache::compress::CompressionLayer;
use tiercache::redb::RedbBackend;
use tiercache::redis::RedisBackend;
use tiercache::tier::{Backend, DynBackend, Layer};
use tiercache::{Cache, WritePolicy};
use tiercache_tests::history::{
    Cancel, Delayed, LogicalClock, NEVER, Op, Record, Report, Seen, ViolationKind, check,
};
use tiercache_tests::{RedisServer, TestStore, connected};

/// The keys the tasks share.
const KEYS: u64 = 6;
/// Tasks calling the cache at once.
const TASKS: u64 = 16;
/// A hot tier smaller than the key set: evictions, promotions and (under
/// write-on-evict) demotions all the time.
const SMALL_HOT: u64 = 2;
/// A hot tier that holds every key.
const LARGE_HOT: u64 = 64;
/// The hot tier's time-to-idle where one is set: short enough that entries
/// idle out between the tasks' calls.
const TIME_TO_IDLE: Duration = Duration::from_millis(3);
/// The longest pause a byte tier makes before or after a call.
const LONGEST_DELAY: Duration = Duration::from_millis(2);
/// One call in this many is cancelled.
const CANCEL_ONE_IN: u32 = 10;
/// The longest round; longer runs are split into rounds.
const ROUND: Duration = Duration::from_secs(2);
/// The most calls one round records, so a fast stack's history stays small.
const MAX_OPS_PER_ROUND: u64 = 400_000;
/// Violations shown per failing combination.
const EXAMPLES: usize = 4;

/// A cached value: its key and the id of the write that made it, and, for
/// one write in four, 2 KiB of padding that the compression layer
/// compresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Value {
    key: u64,
    id: u64,
    pad: Vec<u8>,
}

impl Value {
    fn new(key: u64, id: u64, rng: &mut impl Rng) -> Value {
        let pad = if rng.random_ratio(1, 4) {
            vec![b'h'; 2048]
        } else {
            Vec::new()
        };
        Value { key, id, pad }
    }

    fn seen(&self) -> Seen {
        Seen {
            key: self.key,
            id: self.id,
        }
    }
}

/// The byte tiers below the hot tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lower {
    None,
    Redb,
    Redis,
    RedbRedis,
}

impl Lower {
    fn redb(self) -> bool {
        matches!(self, Lower::Redb | Lower::RedbRedis)
    }

    fn redis(self) -> bool {
        matches!(self, Lower::Redis | Lower::RedbRedis)
    }
}

impl fmt::Display for Lower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lower::None => "memory",
            Lower::Redb => "memory+redb",
            Lower::Redis => "memory+redis",
            Lower::RedbRedis => "memory+redb+redis",
        })
    }
}

/// One stack and its settings.
#[derive(Clone, Copy, Debug)]
struct Combo {
    lower: Lower,
    write_on_evict: bool,
    time_to_idle: bool,
    hot_capacity: u64,
    /// A store behind the cache, written under this policy.
    store: Option<WritePolicy>,
    /// Load protection on: refresh-ahead from the store every few
    /// milliseconds, stale-if-error, negative caching of the store's
    /// "none".
    protect: bool,
    /// Warming under way: the prefetcher, a warmer from the redb tier, and
    /// (write-through) snapshots saved and loaded back.
    warm: bool,
}

impl fmt::Display for Combo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, {}, hot {}",
            self.lower,
            if self.write_on_evict {
                "write-on-evict"
            } else {
                "write-through"
            },
            if self.time_to_idle {
                "tti 3ms"
            } else {
                "no tti"
            },
            self.hot_capacity
        )?;
        if let Some(policy) = self.store {
            write!(f, ", store {policy:?}")?;
        }
        if self.protect {
            write!(f, ", refresh-ahead")?;
        }
        if self.warm {
            write!(f, ", warming")?;
        }
        Ok(())
    }
}

/// The eight combinations over `lower`.
fn combos(lower: Lower) -> Vec<Combo> {
    let mut out = Vec::new();
    for write_on_evict in [false, true] {
        for time_to_idle in [false, true] {
            for hot_capacity in [SMALL_HOT, LARGE_HOT] {
                out.push(Combo {
                    lower,
                    write_on_evict,
                    time_to_idle,
                    hot_capacity,
                    store: None,
                    protect: false,
                    warm: false,
                });
            }
        }
    }
    out
}

/// The combinations with a store behind the cache: each write policy over
/// memory alone and over memory and redb, with a hot tier smaller than the
/// key set (so reads go below it and to the store), write-through and
/// write-on-evict between the tiers.
fn store_combos() -> Vec<Combo> {
    let mut out = Vec::new();
    for policy in [WritePolicy::Through, WritePolicy::Back, WritePolicy::Around] {
        for (lower, write_on_evict) in [
            (Lower::None, false),
            (Lower::Redb, false),
            (Lower::Redb, true),
        ] {
            out.push(Combo {
                lower,
                write_on_evict,
                time_to_idle: false,
                hot_capacity: SMALL_HOT,
                store: Some(policy),
                protect: false,
                warm: false,
            });
        }
    }
    out
}

/// The combinations with load protection: a store under write-through and
/// write-back, over memory alone and over memory and redb, with a hot tier
/// that holds every key (so hits are many, and each old enough starts a
/// refresh that races with the writes) and one smaller than the key set.
fn protected_combos() -> Vec<Combo> {
    let mut out = Vec::new();
    for policy in [WritePolicy::Through, WritePolicy::Back] {
        for lower in [Lower::None, Lower::Redb] {
            for hot_capacity in [SMALL_HOT, LARGE_HOT] {
                out.push(Combo {
                    lower,
                    write_on_evict: false,
                    time_to_idle: false,
                    hot_capacity,
                    store: Some(policy),
                    protect: true,
                    warm: false,
                });
            }
        }
    }
    out
}

/// The combinations with warming: memory and redb, write-through and
/// write-on-evict, with a hot tier smaller than the key set (so there is
/// always something to warm) and one that holds every key.
fn warm_combos() -> Vec<Combo> {
    let mut out = Vec::new();
    for write_on_evict in [false, true] {
        for hot_capacity in [SMALL_HOT, LARGE_HOT] {
            out.push(Combo {
                lower: Lower::Redb,
                write_on_evict,
                time_to_idle: false,
                hot_capacity,
                store: None,
                protect: false,
                warm: true,
            });
        }
    }
    out
}

/// Warms the cache of a round until `deadline`: a warmer from the redb
/// tier, and under write-through a snapshot saved and loaded back (under
/// write-on-evict a load may rightly bring back a value removed since the
/// save that only the hot tier held, so it is not checked there).
async fn warm_round(
    cache: Cache<u64, Value>,
    dir: std::path::PathBuf,
    combo: Combo,
    deadline: Instant,
) -> u64 {
    let warmer = cache
        .warmer()
        .source(cache.warm_from_tier(0).expect("the redb tier"))
        .concurrency(4)
        .rate_limit(None)
        .build()
        .expect("a valid warmer");
    let path = dir.join("history.snapshot");
    let mut warmed = 0;
    while Instant::now() < deadline {
        warmed += warmer.run().await.warmed;
        if !combo.write_on_evict
            && cache.save_snapshot(&path).await.is_ok()
            && let Ok(report) = cache.load_snapshot(&path).await
        {
            warmed += report.loaded;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    warmed
}

/// Prints straight to stderr: the harness captures `eprintln!` of passing
/// tests, and the seed and the counts must be seen.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The run's seed and length, from the environment or chosen now.
struct Settings {
    seed: u64,
    per_combo: Duration,
}

fn settings(test: &str) -> Settings {
    let seed = match std::env::var("TIERCACHE_HISTORY_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("TIERCACHE_HISTORY_SEED is an unsigned integer"),
        Err(_) => rand::rng().random(),
    };
    let secs: f64 = match std::env::var("TIERCACHE_HISTORY_SECS") {
        Ok(s) => s
            .trim()
            .parse()
            .expect("TIERCACHE_HISTORY_SECS is a number of seconds"),
        Err(_) => 1.0,
    };
    assert!(
        secs.is_finite() && secs > 0.0,
        "TIERCACHE_HISTORY_SECS must be positive"
    );
    say(&format!(
        "{test}: seed {seed} (replay with TIERCACHE_HISTORY_SEED={seed}), {secs} s per combination"
    ));
    Settings {
        seed,
        per_combo: Duration::from_secs_f64(secs),
    }
}

/// A seed for one part of a run, mixed from the run's seed and the part's
/// coordinates.
fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for p in parts {
        h = (h ^ p).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h
}

/// `tier` delayed at random, under the compression layer the builder puts
/// on the disk and Redis tiers it opens itself.
fn delayed<B: Backend>(tier: B, seed: u64) -> Arc<dyn DynBackend> {
    Arc::new(CompressionLayer::default().layer(Delayed::new(tier, seed, LONGEST_DELAY)))
}

/// The cache of one round. The redb and Redis tiers are opened here, as
/// `.disk(path)` and `.redis(url)` open them (default settings, the
/// system clock, default limits, lz4), so that they can be delayed.
async fn build(
    combo: Combo,
    seed: u64,
    dir: &Path,
    redis: Option<(&str, String)>,
) -> Cache<u64, Value> {
    let mut b = Cache::builder()
        .max_capacity(combo.hot_capacity)
        .write_on_evict(combo.write_on_evict);
    if combo.time_to_idle {
        b = b.time_to_idle(TIME_TO_IDLE);
    }
    if combo.lower.redb() {
        let redb = RedbBackend::builder(dir.join("history.redb"))
            .build()
            .await
            .expect("a redb file in a temporary directory");
        b = b.tier(delayed(redb, mix(seed, &[1])));
    }
    if let Some((url, prefix)) = redis {
        let redis = connected(RedisBackend::builder(url).prefix(prefix)).await;
        b = b.tier(delayed(redis, mix(seed, &[2])));
    }
    if let Some(policy) = combo.store {
        // Write-back flushes small batches all the time, so that flushes
        // race with the reads and writes of the keys they carry.
        b = b
            .store(TestStore::new())
            .write_policy(policy)
            .write_back_log(dir.join("write-back.redb"))
            .flush_interval(Duration::from_millis(1))
            .max_batch(4);
    }
    if combo.warm {
        // Nearly every lookup predicts its likely successors, and each is
        // copied up from the redb tier in the background.
        b = b.prefetch(tiercache::warm::PrefetchSettings {
            threshold: 0.01,
            min_count: 1,
            ..Default::default()
        });
    }
    if combo.protect {
        // Entries older than 2 ms are reloaded from the store on a hit, in
        // the background, racing with the writes of their keys.
        b = b
            .time_to_live(Duration::from_secs(30))
            .refresh_after_write(Duration::from_millis(2))
            .stale_if_error(Duration::from_millis(50))
            .negative_ttl(Duration::from_millis(50));
    }
    b.build().await.expect("a valid cache")
}

/// What one task shares with the others.
struct Shared {
    cache: Cache<u64, Value>,
    clock: LogicalClock,
    ids: AtomicU64,
    calls: AtomicU64,
    /// Whether the tasks clear the cache now and then.
    clears: bool,
}

/// One task's calls until `deadline` (or until the round has made
/// [`MAX_OPS_PER_ROUND`] calls), recorded.
async fn task(shared: Arc<Shared>, seed: u64, deadline: Instant) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut log = Vec::new();
    let s = &*shared;
    while Instant::now() < deadline && s.calls.fetch_add(1, Ordering::Relaxed) < MAX_OPS_PER_ROUND {
        let key = rng.random_range(0..KEYS);
        let cancel = Cancel::random(&mut rng, CANCEL_ONE_IN);
        let pick = rng.random_range(0..1000);
        // A store keeps what `clear` takes out of the cache (clearing the
        // cache is not deleting the system of record), so with a store
        // there are no clears.
        if pick < 3 && s.clears {
            let start = s.clock.tick();
            let done = cancel.run(s.cache.clear()).await;
            let end = s.clock.tick();
            log.push(Record {
                key,
                op: Op::Clear,
                start,
                end: if matches!(done, Some(Ok(()))) {
                    end
                } else {
                    NEVER
                },
            });
        } else if pick < 520 {
            let start = s.clock.tick();
            let found = cancel.run(s.cache.get(&key)).await;
            let end = s.clock.tick();
            let (seen, end) = match found {
                Some(Ok(v)) => (v.map(|v| v.seen()), end),
                _ => (None, NEVER),
            };
            log.push(Record {
                key,
                op: Op::Get { seen, load: false },
                start,
                end,
            });
        } else if pick < 600 {
            // A load: a write when its own loader's value comes back, a
            // read of another write otherwise; cut short, its loader may
            // still have stored its value.
            let id = s.ids.fetch_add(1, Ordering::Relaxed);
            let value = Value::new(key, id, &mut rng);
            let start = s.clock.tick();
            let found = cancel.run(s.cache.get_with(key, async { value })).await;
            let end = s.clock.tick();
            match found {
                Some(Ok(v)) if v.id == id => log.push(Record {
                    key,
                    op: Op::Insert { id },
                    start,
                    end,
                }),
                Some(Ok(v)) => {
                    log.push(Record {
                        key,
                        op: Op::Insert { id },
                        start,
                        end: NEVER,
                    });
                    log.push(Record {
                        key,
                        op: Op::Get {
                            seen: Some(v.seen()),
                            load: true,
                        },
                        start,
                        end,
                    });
                }
                _ => log.push(Record {
                    key,
                    op: Op::Insert { id },
                    start,
                    end: NEVER,
                }),
            }
        } else if pick < 880 {
            let id = s.ids.fetch_add(1, Ordering::Relaxed);
            let value = Value::new(key, id, &mut rng);
            // One insert in eight has a time-to-live of its own, short
            // enough that some expire during the round.
            let ttl = rng
                .random_ratio(1, 8)
                .then(|| Duration::from_millis(rng.random_range(20..500)));
            let start = s.clock.tick();
            let done = match ttl {
                Some(ttl) => cancel.run(s.cache.insert_with_ttl(key, value, ttl)).await,
                None => cancel.run(s.cache.insert(key, value)).await,
            };
            let end = s.clock.tick();
            log.push(Record {
                key,
                op: Op::Insert { id },
                start,
                end: if matches!(done, Some(Ok(()))) {
                    end
                } else {
                    NEVER
                },
            });
        } else {
            let start = s.clock.tick();
            let done = cancel.run(s.cache.remove(&key)).await;
            let end = s.clock.tick();
            log.push(Record {
                key,
                op: Op::Remove,
                start,
                end: if matches!(done, Some(Ok(()))) {
                    end
                } else {
                    NEVER
                },
            });
        }
    }
    log
}

/// What a combination's rounds found, and how the cache moved entries.
struct Outcome {
    combo: Combo,
    report: Report,
    promotions: u64,
    demotions: u64,
    tier_errors: u64,
    /// Background reloads that replaced an entry (or found it gone).
    refreshes: u64,
    /// Entries warming installed: warmed, prefetched or loaded from a
    /// snapshot.
    warmed: u64,
}

impl Outcome {
    fn line(&self) -> String {
        let mut line = format!(
            "{}: {}; {} promotions, {} demotions, {} tier errors",
            self.combo,
            self.report.summary(),
            self.promotions,
            self.demotions,
            self.tier_errors
        );
        if self.combo.protect {
            line.push_str(&format!(", {} refreshes", self.refreshes));
        }
        if self.combo.warm {
            line.push_str(&format!(", {} warmed", self.warmed));
        }
        line
    }
}

/// Runs `combo` for `settings.per_combo`, in rounds over fresh caches.
async fn run_combo(
    combo: Combo,
    index: u64,
    settings: &Settings,
    server: Option<&RedisServer>,
) -> Outcome {
    let mut outcome = Outcome {
        combo,
        report: Report::default(),
        promotions: 0,
        demotions: 0,
        tier_errors: 0,
        refreshes: 0,
        warmed: 0,
    };
    let mut left = settings.per_combo;
    let mut round = 0u64;
    while !left.is_zero() {
        let length = left.min(ROUND);
        left -= length;
        let seed = mix(settings.seed, &[combo.lower as u64, index, round]);
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = server.map(RedisServer::url);
        let redis = url
            .as_deref()
            .map(|url| (url, format!("history-{index}-{round}-{seed:x}:")));
        let cache = build(combo, seed, dir.path(), redis).await;
        let shared = Arc::new(Shared {
            cache,
            clock: LogicalClock::default(),
            ids: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            clears: combo.store.is_none(),
        });
        let deadline = Instant::now() + length;
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(task(shared.clone(), mix(seed, &[100 + t]), deadline)))
            .collect();
        let warming = combo.warm.then(|| {
            tokio::spawn(warm_round(
                shared.cache.clone(),
                dir.path().to_path_buf(),
                combo,
                deadline,
            ))
        });
        let mut records = Vec::new();
        for t in tasks {
            records.extend(t.await.expect("a task of the run"));
        }
        if let Some(warming) = warming {
            outcome.warmed += warming.await.expect("the warming task");
            if let Some(stats) = shared.cache.prefetch_stats() {
                outcome.warmed += stats.warmed;
            }
        }
        outcome.report.merge(check(&records));
        let moved = shared.cache.hierarchy_stats();
        outcome.promotions += moved.promotions;
        outcome.demotions += moved.demotions;
        outcome.refreshes += shared.cache.load_stats().refreshes;
        outcome.tier_errors += shared
            .cache
            .tier_stats()
            .iter()
            .map(|t| t.errors)
            .sum::<u64>();
        round += 1;
    }
    outcome
}

/// Runs every combination over `lower`; fails listing each combination's
/// counts and examples of its violations if any has one.
async fn run_stack(test: &str, lower: Lower) {
    run_combos(test, lower, combos(lower)).await;
}

/// Runs `combos` (over `lower`, which says whether a Redis server is
/// needed), failing as [`run_stack`] does.
async fn run_combos(test: &str, lower: Lower, combos: Vec<Combo>) {
    let server = if lower.redis() {
        match RedisServer::start(test) {
            Some(server) => Some(server),
            None => return,
        }
    } else {
        None
    };
    let settings = settings(test);
    let mut outcomes = Vec::new();
    for (i, combo) in combos.into_iter().enumerate() {
        let outcome = run_combo(combo, i as u64, &settings, server.as_ref()).await;
        say(&format!("{test}: {}", outcome.line()));
        outcomes.push(outcome);
    }
    let failing: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !o.report.violations.is_empty())
        .collect();
    if failing.is_empty() {
        return;
    }
    let mut message = format!(
        "{test}: {} of {} combinations returned values a completed write had replaced \
         (or written after the read); seed {} (TIERCACHE_HISTORY_SEED={} replays the choices)\n",
        failing.len(),
        outcomes.len(),
        settings.seed,
        settings.seed
    );
    for o in &outcomes {
        message.push_str(&format!("  {}\n", o.line()));
    }
    for o in failing {
        message.push_str(&format!("  examples, {}:\n", o.combo));
        message.push_str(&o.report.examples(EXAMPLES));
    }
    panic!("{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_memory_only() {
    run_stack("history_memory_only", Lower::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_memory_redb() {
    run_stack("history_memory_redb", Lower::Redb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_memory_redis() {
    run_stack("history_memory_redis", Lower::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_memory_redb_redis() {
    run_stack("history_memory_redb_redis", Lower::RedbRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_with_a_store() {
    run_combos("history_with_a_store", Lower::None, store_combos()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_with_load_protection() {
    run_combos(
        "history_with_load_protection",
        Lower::None,
        protected_combos(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_with_warming() {
    run_combos("history_with_warming", Lower::Redb, warm_combos()).await;
}

// The checker itself, on histories made by hand: it must be able to fail.

fn insert(key: u64, id: u64, start: u64, end: u64) -> Record {
    Record {
        key,
        op: Op::Insert { id },
        start,
        end,
    }
}

fn remove(key: u64, start: u64, end: u64) -> Record {
    Record {
        key,
        op: Op::Remove,
        start,
        end,
    }
}

fn clear(start: u64, end: u64) -> Record {
    Record {
        key: 0,
        op: Op::Clear,
        start,
        end,
    }
}

fn get(key: u64, seen: Option<(u64, u64)>, start: u64, end: u64) -> Record {
    Record {
        key,
        op: Op::Get {
            seen: seen.map(|(key, id)| Seen { key, id }),
            load: false,
        },
        start,
        end,
    }
}

fn kinds(records: &[Record]) -> Vec<ViolationKind> {
    check(records).violations.iter().map(|v| v.kind).collect()
}

#[test]
fn checker_finds_a_stale_read() {
    // Write 1, then write 2 completes, then a read begins and sees write 1.
    let h = [
        insert(7, 1, 0, 1),
        insert(7, 2, 2, 3),
        get(7, Some((7, 1)), 4, 5),
    ];
    let report = check(&h);
    assert_eq!(report.violations.len(), 1, "{}", report.summary());
    let v = report.violations[0];
    assert_eq!(v.kind, ViolationKind::Stale);
    assert_eq!(v.write, Some(h[0]));
    assert_eq!(v.newer, Some(h[1]));
    assert!(report.examples(1).contains("Stale: key 7"));
    // The same with the newer write on another key is fine.
    assert!(
        kinds(&[
            insert(7, 1, 0, 1),
            insert(8, 2, 2, 3),
            get(7, Some((7, 1)), 4, 5)
        ])
        .is_empty()
    );
}

#[test]
fn checker_finds_a_removed_key_that_reappears() {
    let after_remove = [
        insert(1, 1, 0, 1),
        remove(1, 2, 3),
        get(1, Some((1, 1)), 4, 5),
    ];
    assert_eq!(kinds(&after_remove), [ViolationKind::Stale]);
    // A clear removes every key.
    let after_clear = [insert(1, 1, 0, 1), clear(2, 3), get(1, Some((1, 1)), 4, 5)];
    assert_eq!(kinds(&after_clear), [ViolationKind::Stale]);
}

#[test]
fn checker_finds_a_phantom_and_values_from_nowhere() {
    // The read ended before the write began.
    assert_eq!(
        kinds(&[get(3, Some((3, 9)), 0, 1), insert(3, 9, 2, 3)]),
        [ViolationKind::Phantom]
    );
    // Even a cancelled write cannot be seen before it started.
    assert_eq!(
        kinds(&[get(3, Some((3, 9)), 0, 1), insert(3, 9, 2, NEVER)]),
        [ViolationKind::Phantom]
    );
    assert_eq!(
        kinds(&[get(3, Some((3, 42)), 0, 1)]),
        [ViolationKind::Unknown]
    );
    assert_eq!(
        kinds(&[insert(4, 1, 0, 1), get(3, Some((4, 1)), 2, 3)]),
        [ViolationKind::WrongKey]
    );
}

#[test]
fn checker_accepts_concurrent_and_unfinished_calls() {
    let h = [
        // Write 1 overlaps write 2, so either may be the last.
        insert(5, 1, 0, 6),
        insert(5, 2, 1, 3),
        get(5, Some((5, 1)), 7, 8),
        get(5, Some((5, 2)), 9, 10),
        // A read overlapping a write may see it before it returns...
        insert(5, 3, 11, 15),
        get(5, Some((5, 3)), 12, 13),
        // ...or the value before it.
        get(5, Some((5, 2)), 14, 16),
        // A miss is always allowed.
        get(5, None, 17, 18),
        // A cancelled remove never completed: it makes nothing stale.
        remove(5, 19, NEVER),
        get(5, Some((5, 3)), 20, 21),
        // A cancelled write may have applied: its value may be read, and it
        // makes no older value stale.
        insert(5, 4, 22, NEVER),
        get(5, Some((5, 4)), 23, 24),
        get(5, Some((5, 3)), 25, 26),
        // A cancelled read is not checked.
        get(5, Some((5, 1)), 27, NEVER),
    ];
    let report = check(&h);
    assert!(
        report.violations.is_empty(),
        "{}\n{}",
        report.summary(),
        report.examples(10)
    );
    assert_eq!(report.gets_checked, 8);
    assert_eq!(report.hits, 7);
    assert_eq!(report.incomplete, 3);
    // But once a completed write lies wholly between them, the old value is
    // stale: write 5 ends before the read starts, after write 3 ended.
    let mut stale = h.to_vec();
    stale.push(insert(5, 5, 28, 29));
    stale.push(get(5, Some((5, 3)), 30, 31));
    assert_eq!(kinds(&stale), [ViolationKind::Stale]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delayed_tier_conforms() {
    conformance::run(|h| async move {
        Delayed::new(
            ReferenceBackend::new(h.clock.clock(), h.limits),
            7,
            Duration::from_micros(300),
        )
    })
    .await;
}
