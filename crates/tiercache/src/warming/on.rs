//! The warming seam with the `warm` feature: the prefetcher the read path
//! tells of each lookup, the snapshot's settings and counters, and the
//! save made when the last handle of the cache is dropped.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cache_core::Result;
use cache_warm::{PrefetchSettings, Prefetcher, SnapshotContents};
use parking_lot::Mutex;

/// The builder's warming settings that do not depend on the key and value
/// types.
#[derive(Clone, Debug, Default)]
pub(crate) struct WarmSettings {
    /// The snapshot file, and how often it is saved in the background.
    pub(crate) snapshot: Option<(PathBuf, Duration)>,
    pub(crate) contents: SnapshotContents,
    pub(crate) prefetch: Option<PrefetchSettings>,
    /// The codec changed after `snapshot`, whose key decoder was made with
    /// the earlier one.
    pub(crate) codec_after_snapshot: bool,
}

/// What the cache keeps for warming.
pub(crate) struct Warming<K> {
    /// Set once the cache exists: its fetches go through the cache.
    pub(crate) prefetch: OnceLock<Prefetcher<K>>,
    /// What [`Cache::save_snapshot`](crate::Cache::save_snapshot) saves by
    /// default.
    pub(crate) contents: SnapshotContents,
    pub(crate) counts: Arc<SnapshotCounts>,
    /// The save on a clean shutdown, set once the cache exists; dropped
    /// (and so run) with the cache's last handle.
    pub(crate) shutdown: OnceLock<ShutdownSave>,
}

impl<K> Warming<K> {
    pub(crate) fn new(contents: SnapshotContents) -> Self {
        Warming {
            prefetch: OnceLock::new(),
            contents,
            counts: Arc::default(),
            shutdown: OnceLock::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Warming<K> {
    /// A counted lookup of the hot tier found `key` (`hit`) or did not:
    /// the prefetcher learns the sequence and fetches what tends to come
    /// next.
    #[inline(always)]
    pub(crate) fn on_access(&self, key: &K, hit: bool) {
        if let Some(prefetch) = self.prefetch.get() {
            prefetch.observe(stream(), key, hit);
        }
    }
}

/// Snapshot saves and loads, counted.
#[derive(Debug, Default)]
pub(crate) struct SnapshotCounts {
    saves: AtomicU64,
    save_errors: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    last_error: Mutex<Option<cache_core::Error>>,
}

impl SnapshotCounts {
    /// Counts a save's outcome, in the counters and the metrics.
    pub(crate) fn saved<T>(&self, outcome: &Result<T>) {
        self.count(outcome, &self.saves, &self.save_errors, "save");
    }

    /// Counts a load's outcome.
    pub(crate) fn loaded<T>(&self, outcome: &Result<T>) {
        self.count(outcome, &self.loads, &self.load_errors, "load");
    }

    fn count<T>(&self, outcome: &Result<T>, ok: &AtomicU64, failed: &AtomicU64, op: &'static str) {
        let result = match outcome {
            Ok(_) => {
                ok.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
            Err(e) => {
                failed.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock() = Some(e.clone());
                "error"
            }
        };
        metrics::counter!(cache_warm::SNAPSHOT_TOTAL, "op" => op, "result" => result).increment(1);
    }

    pub(crate) fn stats(&self) -> SnapshotStats {
        SnapshotStats {
            saves: self.saves.load(Ordering::Relaxed),
            save_errors: self.save_errors.load(Ordering::Relaxed),
            loads: self.loads.load(Ordering::Relaxed),
            load_errors: self.load_errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}

/// Snapshot saves and loads since the cache was built:
/// [`Cache::snapshot_stats`](crate::Cache::snapshot_stats).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SnapshotStats {
    /// Snapshots saved (by a call, the background schedule or the
    /// shutdown).
    pub saves: u64,
    /// Saves that failed; the previous snapshot file is then untouched.
    pub save_errors: u64,
    /// Snapshots loaded (by a call, or when the cache was built).
    pub loads: u64,
    /// Loads that failed (a damaged, truncated or foreign file); the cache
    /// then loaded nothing from it.
    pub load_errors: u64,
    /// The last failure, with the file it concerned.
    pub last_error: Option<cache_core::Error>,
}

/// What saving or loading a snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotReport {
    /// The snapshot file.
    pub path: PathBuf,
    /// Whether it holds values or only keys.
    pub contents: SnapshotContents,
    /// Records written (a save) or read from the file (a load).
    pub records: u64,
    /// Entries installed in the hot tier (a load).
    pub loaded: u64,
    /// Records skipped as expired.
    pub expired: u64,
    /// Records skipped because the cache already held the key, or a write
    /// of the key came in while loading (the cache's value is newer).
    pub present: u64,
    /// Records left out because the hot tier was full: the coldest.
    pub over_capacity: u64,
    /// Records whose value no tier below held any longer (a keys-only
    /// snapshot, or values a tier below holds the newer copy of): nothing
    /// was installed for them.
    pub not_below: u64,
    /// Records whose key or value no longer decodes (a type changed since
    /// the save); never installed.
    pub undecodable: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
}

/// The save made when the cache's last handle is dropped, and the
/// background saver it stops.
pub(crate) struct ShutdownSave {
    pub(crate) save: Arc<dyn Fn() -> Result<SnapshotReport> + Send + Sync>,
    pub(crate) stop: Arc<tokio::sync::Notify>,
}

impl Drop for ShutdownSave {
    fn drop(&mut self) {
        self.stop.notify_one();
        // Its outcome is counted by the save itself; there is no caller
        // left to hand an error to.
        if let Err(e) = (self.save)() {
            log::warn!("tiercache: the snapshot save at shutdown failed: {e}");
        }
    }
}

tokio::task_local! {
    static SESSION: u64;
}

/// Runs `future` as session `id` for the prefetcher: the lookups it makes
/// form one access sequence, apart from other sessions' lookups, however
/// the runtime moves it between threads. Without a session, each thread's
/// lookups form one sequence.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// # let cache: tiercache::Cache<u32, u32> = tiercache::Cache::builder().build().await.unwrap();
/// let user = 42;
/// tiercache::warm::in_session(user, async {
///     cache.get(&1).await?;
///     cache.get(&2).await // learned as "2 follows 1" for this session
/// })
/// .await?;
/// # Ok::<(), tiercache::Error>(())
/// # }).unwrap();
/// ```
pub async fn in_session<F: Future>(id: u64, future: F) -> F::Output {
    SESSION.scope(id, future).await
}

/// The access sequence a lookup belongs to: its session, else its thread.
#[inline]
fn stream() -> u64 {
    thread_local! {
        static THREAD: u64 = {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            // Kept apart from small session numbers.
            NEXT.fetch_add(1, Ordering::Relaxed) | (1 << 63)
        };
    }
    SESSION
        .try_with(|id| *id)
        .unwrap_or_else(|_| THREAD.with(|t| *t))
}
