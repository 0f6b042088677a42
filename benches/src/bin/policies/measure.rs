//! The measurements: inserts under each policy, the size of a held-back
//! log, and raw redb commits of the log's shape.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition, WriteTransaction};
use tiercache::policies::WriteBackStats;
use tiercache::{Cache, WritePolicy};

use crate::procfs::{CpuSplit, Io, Threads};
use crate::store::{Calls, SlowStore, value};

/// The concurrent writers of every measurement.
pub(crate) const TASKS: usize = 64;
/// The latency of each store call.
pub(crate) const LATENCY: Duration = Duration::from_millis(1);

/// The policies measured, in their order in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setup {
    Back,
    Through,
    Around,
    /// Write-back with its log on tmpfs, where `fsync` costs nothing: what
    /// the engine does without the disk's commit latency.
    BackTmpfs,
}

impl Setup {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Setup::Back => "Back",
            Setup::Through => "Through",
            Setup::Around => "Around",
            Setup::BackTmpfs => "Back, log on tmpfs",
        }
    }

    pub(crate) fn key(self) -> &'static str {
        match self {
            Setup::Back => "back",
            Setup::Through => "through",
            Setup::Around => "around",
            Setup::BackTmpfs => "back_tmpfs",
        }
    }

    fn policy(self) -> WritePolicy {
        match self {
            Setup::Back | Setup::BackTmpfs => WritePolicy::Back,
            Setup::Through => WritePolicy::Through,
            Setup::Around => WritePolicy::Around,
        }
    }
}

/// One measurement of one setup.
#[derive(Clone, Debug)]
pub(crate) struct Measured {
    pub(crate) inserts: u64,
    /// From the first insert until the last returned.
    pub(crate) insert_s: f64,
    /// From the first insert until `flush` returned: the store holds
    /// every write.
    pub(crate) end_to_end_s: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) p999_us: f64,
    pub(crate) max_us: f64,
    /// Write-back's totals after the flush.
    pub(crate) stats: Option<WriteBackStats>,
    /// The most dirty keys seen (sampled every millisecond).
    pub(crate) peak_dirty: usize,
    pub(crate) store: Calls,
    /// What the process wrote from the first insert until the flush
    /// returned (under write-back, the log's writes), where `/proc` says.
    pub(crate) io: Option<Io>,
    /// The CPU time the process's threads spent over the same span.
    pub(crate) cpu: CpuSplit,
}

impl Measured {
    pub(crate) fn rate(&self) -> f64 {
        self.inserts as f64 / self.insert_s
    }
}

/// The `p`-th percentile (nearest rank) of sorted `values`.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

/// A memory-only cache in front of `store` under `setup`'s policy, with
/// write-back's log at `log` and its default settings.
async fn open(
    setup: Setup,
    store: &Arc<SlowStore>,
    log: &Path,
    capacity: u64,
) -> Result<Cache<u64, Vec<u8>>, String> {
    let mut builder = Cache::<u64, Vec<u8>>::builder()
        .max_capacity(capacity)
        .store(store.clone())
        .write_policy(setup.policy());
    if setup.policy() == WritePolicy::Back {
        builder = builder.write_back_log(log);
    }
    builder
        .build()
        .await
        .map_err(|e| format!("{}: cannot build the cache: {e}", setup.label()))
}

/// Inserts keys `first..first + per_task * TASKS` from [`TASKS`] tasks,
/// task `t` the `t`-th run of `per_task` keys, each insert awaited before
/// the next; every insert's latency in nanoseconds, sorted.
async fn insert_all(
    cache: &Cache<u64, Vec<u8>>,
    first: u64,
    per_task: u64,
) -> Result<Vec<u64>, String> {
    let tasks: Vec<_> = (0..TASKS as u64)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task as usize);
                let start = first + t * per_task;
                for key in start..start + per_task {
                    let v = value(key);
                    let started = Instant::now();
                    cache.insert(key, v).await.map_err(|e| e.to_string())?;
                    latencies.push(started.elapsed().as_nanos() as u64);
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(per_task as usize * TASKS);
    for task in tasks {
        all.extend(task.await.map_err(|e| format!("a task failed: {e}"))??);
    }
    all.sort_unstable();
    Ok(all)
}

/// Samples the cache's dirty keys every millisecond until `stop`; the most
/// it saw.
fn watch_dirty(cache: &Cache<u64, Vec<u8>>, stop: &Arc<AtomicBool>) -> Arc<AtomicUsize> {
    let peak = Arc::new(AtomicUsize::new(0));
    let (cache, stop, seen) = (cache.clone(), stop.clone(), peak.clone());
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            seen.fetch_max(cache.dirty_len(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    peak
}

/// One measurement: a fresh store and cache (and log, in `dir`), `inserts`
/// distinct keys from [`TASKS`] tasks, then `flush`; checks that the store
/// holds every key's value.
pub(crate) async fn measure(
    setup: Setup,
    dir: &Path,
    run: usize,
    inserts: u64,
) -> Result<Measured, String> {
    let per_task = inserts / TASKS as u64;
    let total = per_task * TASKS as u64;
    let store = SlowStore::new(LATENCY);
    let log = dir.join(format!("{}-{run}.redb", setup.key()));
    let cache = open(setup, &store, &log, total).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_dirty(&cache, &stop);
    let (io_before, cpu_before) = (Io::now(), Threads::now());
    let started = Instant::now();
    let latencies = insert_all(&cache, 0, per_task).await?;
    let insert_s = started.elapsed().as_secs_f64();
    cache
        .flush()
        .await
        .map_err(|e| format!("{}: flush: {e}", setup.label()))?;
    let end_to_end_s = started.elapsed().as_secs_f64();
    let cpu = Threads::now().since(&cpu_before);
    let io = Io::now()
        .zip(io_before)
        .map(|(after, before)| after.since(before));
    stop.store(true, Ordering::Relaxed);
    store
        .check_holds(total)
        .map_err(|e| format!("{} after the flush: {e}", setup.label()))?;
    let stats = cache.write_back_stats();
    drop(cache);
    let us = |p: f64| percentile(&latencies, p) / 1e3;
    Ok(Measured {
        inserts: total,
        insert_s,
        end_to_end_s,
        p50_us: us(50.0),
        p99_us: us(99.0),
        p999_us: us(99.9),
        max_us: us(100.0),
        stats,
        peak_dirty: peak.load(Ordering::Relaxed),
        store: store.calls(),
        io,
        cpu,
    })
}

/// The write-back log's size while it holds writes the store has not
/// taken.
#[derive(Clone, Debug)]
pub(crate) struct LogSize {
    /// Distinct keys queued.
    pub(crate) queued: u64,
    /// The file before the first insert.
    pub(crate) empty_bytes: u64,
    /// The file with half of them queued.
    pub(crate) half_bytes: u64,
    /// The file with all of them queued.
    pub(crate) full_bytes: u64,
    /// The file once the store took them all and the flush returned.
    pub(crate) flushed_bytes: u64,
    /// What a queued write holds in the log, on average over the queued
    /// keys: the 8-byte number its row is stored under, and the row
    /// ([`row_bytes`] for its key).
    pub(crate) payload_bytes: f64,
    pub(crate) dirty: usize,
    /// The log's commits while the keys were queued.
    pub(crate) commits: u64,
}

impl LogSize {
    /// The whole file's growth over the queued writes, per write.
    pub(crate) fn per_write(&self) -> f64 {
        (self.full_bytes as f64 - self.empty_bytes as f64) / self.queued as f64
    }

    /// The file's growth over the second half of the writes, per write:
    /// what one more queued write costs, without the file's fixed part.
    pub(crate) fn marginal(&self) -> f64 {
        (self.full_bytes as f64 - self.half_bytes as f64) / (self.queued / 2) as f64
    }
}

/// The length of `n` as a postcard varint, as the cache encodes its keys.
pub(crate) fn varint_len(n: u64) -> u64 {
    u64::from(64 - n.leading_zeros()).div_ceil(7).max(1)
}

fn file_len(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("cannot read the size of {}: {e}", path.display()))
}

/// Holds the store's batch calls back, queues `queued` distinct keys
/// (in two halves, from [`TASKS`] tasks) under write-back, and reads the
/// log's file size before, between and after; then lets the store go,
/// flushes, and checks that it holds them all.
pub(crate) async fn log_size(dir: &Path, run: usize, queued: u64) -> Result<LogSize, String> {
    let per_task = queued / 2 / TASKS as u64;
    let queued = per_task * TASKS as u64 * 2;
    let store = SlowStore::new(LATENCY);
    let held = store.hold_down().await;
    let log = dir.join(format!("held-{run}.redb"));
    let cache = open(Setup::Back, &store, &log, queued).await?;
    let empty_bytes = file_len(&log)?;
    insert_all(&cache, 0, per_task).await?;
    let half_bytes = file_len(&log)?;
    insert_all(&cache, queued / 2, per_task).await?;
    let full_bytes = file_len(&log)?;
    let dirty = cache.dirty_len();
    let commits = cache.write_back_stats().map_or(0, |s| s.log_commits);
    drop(held);
    cache
        .flush()
        .await
        .map_err(|e| format!("held log: flush: {e}"))?;
    let flushed_bytes = file_len(&log)?;
    store
        .check_holds(queued)
        .map_err(|e| format!("held log after the flush: {e}"))?;
    drop(cache);
    let rows: u64 = (0..queued)
        .map(|k| 8 + row_bytes(varint_len(k) as usize) as u64)
        .sum();
    let payload_bytes = rows as f64 / queued as f64;
    Ok(LogSize {
        queued,
        empty_bytes,
        half_bytes,
        full_bytes,
        flushed_bytes,
        payload_bytes,
        dirty,
        commits,
    })
}

/// The tables of the raw redb baseline, named and typed as the log's:
/// the queue under the write's number, the dead letters under the key.
const QUEUE: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("tiercache_write_back_queue");
const DEAD: TableDefinition<'static, &[u8], &[u8]> =
    TableDefinition::new("tiercache_write_back_dead");

/// The bytes of a key in the raw baseline (the cache's postcard varint of
/// most of the measured keys).
pub(crate) const RAW_KEY_BYTES: usize = 3;
/// The bytes of a queue row in the raw baseline: the log's row for a key
/// of [`RAW_KEY_BYTES`] and the measured value, [`row_bytes`].
pub(crate) const RAW_ROW_BYTES: usize = row_bytes(RAW_KEY_BYTES);

/// The bytes of the log's queue row for a key of `key` bytes and the
/// measured value: the format and the operation (2 bytes), the key's
/// length (4) and bytes, the encoded value (a 2-byte varint length and
/// the bytes), and the checksum (4). The row is stored under the write's
/// 8-byte number.
pub(crate) const fn row_bytes(key: usize) -> usize {
    2 + 4 + key + ENCODED_VALUE_BYTES + 4
}

/// The measured value as the cache encodes it: a postcard varint length
/// (2 bytes for 512) and the bytes.
pub(crate) const ENCODED_VALUE_BYTES: usize = crate::store::VALUE_BYTES + 2;

/// How the raw baseline writes a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The floor: the queue table alone, opened once per transaction, one
    /// insert per record.
    Lean,
    /// As the log's thread writes a group of appends: both tables opened
    /// once per transaction; per record, an insert into the queue under
    /// the next number and a removal of the key from the dead letters
    /// (empty, as in the measurements).
    AsTheLog,
}

/// Raw redb write transactions of `group` records each (a [`RAW_ROW_BYTES`]
/// row under the next `u64` number, as the log's queue), committed with
/// redb's default durability (`Immediate`: `fsync`ed), one after another
/// on this thread; each transaction's time from `begin_write` until
/// `commit` returned, in seconds, sorted.
pub(crate) fn raw_commits(
    path: &Path,
    group: usize,
    shape: Shape,
    commits: usize,
) -> Result<Vec<f64>, String> {
    let fail = |e: redb::Error| format!("raw redb at {}: {e}", path.display());
    let db = Database::create(path).map_err(|e| fail(e.into()))?;
    let record = vec![0x5a_u8; RAW_ROW_BYTES];
    let mut times = Vec::with_capacity(commits);
    let mut next: u64 = 1;
    for _ in 0..commits {
        let started = Instant::now();
        let txn = db.begin_write().map_err(|e| fail(e.into()))?;
        fill(&txn, group, shape, &mut next, &record).map_err(fail)?;
        txn.commit().map_err(|e| fail(e.into()))?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// Writes one group of the raw baseline into `txn`, numbers from `next` on.
fn fill(
    txn: &WriteTransaction,
    group: usize,
    shape: Shape,
    next: &mut u64,
    record: &[u8],
) -> Result<(), redb::Error> {
    let mut queue = txn.open_table(QUEUE)?;
    let mut dead = match shape {
        Shape::Lean => None,
        Shape::AsTheLog => Some(txn.open_table(DEAD)?),
    };
    for _ in 0..group {
        queue.insert(*next, record)?;
        if let Some(dead) = &mut dead {
            // The key's bytes: the low bytes of its number.
            dead.remove(&next.to_le_bytes()[..RAW_KEY_BYTES])?;
        }
        *next += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.9), 100.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7], 50.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn rows_are_the_logs() {
        // The log's row for a 3-byte key and a 512-byte value.
        assert_eq!(RAW_ROW_BYTES, 2 + 4 + 3 + 514 + 4);
        assert_eq!(row_bytes(1), 525);
    }

    #[test]
    fn varints_grow_by_seven_bits() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(512), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn every_policy_reaches_the_store_and_the_log_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for setup in [Setup::Back, Setup::Through, Setup::Around] {
                let m = measure(setup, dir.path(), 0, 640).await.unwrap();
                assert_eq!(m.inserts, 640);
                assert!(m.end_to_end_s >= m.insert_s);
                assert!(m.p50_us <= m.p99_us && m.p99_us <= m.max_us);
                match setup {
                    Setup::Back => {
                        let stats = m.stats.unwrap();
                        assert_eq!((stats.appended, stats.saved), (640, 640));
                        assert!(stats.log_commits >= 1);
                        assert!(m.store.batches >= 1);
                    }
                    _ => {
                        assert!(m.stats.is_none());
                        assert_eq!(m.store.calls, 640);
                    }
                }
            }
            let size = log_size(dir.path(), 0, 1_280).await.unwrap();
            assert_eq!((size.queued, size.dirty), (1_280, 1_280));
            // A fresh file is about 1 MiB, which redb gives back when it
            // trims the file's end: so few writes may leave it smaller.
            assert!(size.full_bytes >= size.half_bytes, "{size:?}");
            assert!(size.per_write().is_finite() && size.marginal() >= 0.0);
            // 8 + 2 + 4 + (1 or 2) + 514 + 4.
            assert!(size.payload_bytes > 533.0 && size.payload_bytes < 534.0);
        });
        for shape in [Shape::Lean, Shape::AsTheLog] {
            let path = dir.path().join(format!("raw-{shape:?}.redb"));
            let times = raw_commits(&path, 4, shape, 3).unwrap();
            assert_eq!(times.len(), 3);
            assert!(times.windows(2).all(|w| w[0] <= w[1]));
            let db = Database::open(&path).unwrap();
            let txn = db.begin_read().unwrap();
            let queue = txn.open_table(QUEUE).unwrap();
            assert_eq!(queue.len().unwrap(), 12);
            let first = queue.first().unwrap().unwrap();
            assert_eq!(first.0.value(), 1);
            assert_eq!(first.1.value().len(), RAW_ROW_BYTES);
            assert_eq!(queue.last().unwrap().unwrap().0.value(), 12);
            assert_eq!(txn.open_table(DEAD).is_ok(), shape == Shape::AsTheLog);
        }
    }
}
