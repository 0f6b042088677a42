//! Part 1, restarts: a previous life fills the cache (and the disk tier),
//! a clean shutdown saves the snapshot, and the same files start the cache
//! again cold, from the snapshot, or warmed from the disk tier; the hit
//! ratio of the first requests after the restart is measured.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiercache::Cache;
use tiercache::redb::{Durability, RedbBackend};

use crate::workload::{Calls, FOREGROUND, check, loader};

/// The tasks that make the previous life's requests: enough for the disk
/// tier's writer to group their inserts into shared commits.
pub(crate) const LIFE_TASKS: usize = 16;
/// How many keys the warmer warms at once.
pub(crate) const WARM_CONCURRENCY: usize = 8;
/// The disk tier's durability: commits skip `fsync`, one durable commit a
/// second (see the report's method for why).
pub(crate) const DISK_SYNC: Duration = Duration::from_secs(1);
/// The snapshot's background save interval: longer than any measurement,
/// so that the only saves are the shutdowns'.
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(3_600);

const SNAPSHOT_FILE: &str = "hot.snapshot";
const TIER_FILE: &str = "tier.redb";

/// The tiers below the hot one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stack {
    /// A redb disk tier under the hot tier.
    Disk,
    /// The hot tier alone (with the loader behind it).
    Memory,
}

impl Stack {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Stack::Disk => "memory_and_redb",
            Stack::Memory => "memory_only",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Stack::Disk => "hot tier + redb disk tier",
            Stack::Memory => "hot tier only",
        }
    }

    /// The ways this stack restarts.
    pub(crate) fn starts(self) -> &'static [Start] {
        match self {
            Stack::Disk => &[Start::Cold, Start::Snapshot, Start::Warmer],
            Stack::Memory => &[Start::Cold, Start::Snapshot],
        }
    }
}

/// How the cache starts again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// The hot tier empty (no snapshot).
    Cold,
    /// The snapshot loaded at build (`CacheBuilder::snapshot`).
    Snapshot,
    /// A warmer copies the disk tier's keys up before the requests.
    Warmer,
}

impl Start {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Start::Cold => "cold",
            Start::Snapshot => "snapshot",
            Start::Warmer => "warmer_from_redb",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Start::Cold => "cold (no snapshot)",
            Start::Snapshot => "snapshot loaded at build",
            Start::Warmer => "warmer from the redb tier",
        }
    }
}

/// A workload of part 1: the requests of the previous life, then those
/// after the restart, and the hot tier's capacity.
pub(crate) struct Workload {
    pub(crate) key: &'static str,
    pub(crate) requests: Arc<Vec<u64>>,
    pub(crate) life: usize,
    pub(crate) after: usize,
    pub(crate) capacity: u64,
}

/// What the previous life came to.
#[derive(Clone, Debug)]
pub(crate) struct Life {
    pub(crate) seconds: f64,
    pub(crate) loader_calls: u64,
    /// Hot-tier hits over the last `after` requests of the life (the
    /// steady state a restart starts from).
    pub(crate) steady_hot_hits: u64,
    pub(crate) steady_requests: u64,
    /// Loader calls over those requests.
    pub(crate) steady_loader_calls: u64,
    /// Entries in the hot tier at shutdown.
    pub(crate) entries: u64,
    pub(crate) snapshot_records: u64,
    pub(crate) snapshot_bytes: u64,
    pub(crate) tier_bytes: u64,
    /// How long the drop took: the shutdown's snapshot save and the disk
    /// tier's close.
    pub(crate) shutdown_s: f64,
}

/// What the warmer did before the requests.
#[derive(Clone, Debug)]
pub(crate) struct Warmed {
    pub(crate) seconds: f64,
    pub(crate) total: u64,
    pub(crate) warmed: u64,
    pub(crate) present: u64,
    pub(crate) missing: u64,
    pub(crate) failed: u64,
    /// Keys the redb tier listed.
    pub(crate) listed: u64,
}

/// One restart.
#[derive(Clone, Debug)]
pub(crate) struct Restarted {
    pub(crate) start: Start,
    /// `build()`, the snapshot's load included.
    pub(crate) build_s: f64,
    /// Entries in the hot tier when the requests began.
    pub(crate) entries: u64,
    pub(crate) warm: Option<Warmed>,
    pub(crate) requests: u64,
    pub(crate) hot_hits: u64,
    pub(crate) loader_calls: u64,
}

impl Restarted {
    pub(crate) fn hot_ratio(&self) -> f64 {
        self.hot_hits as f64 / self.requests.max(1) as f64
    }

    /// The share of the requests answered without calling the loader.
    pub(crate) fn no_load_ratio(&self) -> f64 {
        1.0 - self.loader_calls as f64 / self.requests.max(1) as f64
    }
}

/// The disk tier at `path`, as `CacheBuilder::disk` opens it but with
/// [`DISK_SYNC`] periodic durability.
pub(crate) async fn disk_tier(path: &Path) -> Result<RedbBackend, String> {
    RedbBackend::builder(path)
        .durability(Durability::Periodic(DISK_SYNC))
        .build()
        .await
        .map_err(|e| format!("cannot open the disk tier {}: {e}", path.display()))
}

/// The cache of a life: `capacity` entries, the counting loader, the disk
/// tier in `dir` for [`Stack::Disk`], and the snapshot in `dir` when
/// `snapshot`.
async fn cache(
    stack: Stack,
    capacity: u64,
    dir: &Path,
    snapshot: bool,
    calls: &Arc<Calls>,
) -> Result<Cache<u64, Vec<u8>>, String> {
    let mut builder = Cache::<u64, Vec<u8>>::builder()
        .max_capacity(capacity)
        .loader(loader(calls.clone(), Duration::ZERO));
    if stack == Stack::Disk {
        builder = builder.backend(disk_tier(&dir.join(TIER_FILE)).await?);
    }
    if snapshot {
        builder = builder.snapshot(dir.join(SNAPSHOT_FILE), SNAPSHOT_INTERVAL);
    }
    builder
        .build()
        .await
        .map_err(|e| format!("cannot build the cache: {e}"))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The previous life: the workload's first `life` requests from
/// [`LIFE_TASKS`] tasks, then a clean shutdown (the last handle dropped),
/// which saves the snapshot in `dir`.
pub(crate) async fn previous_life(stack: Stack, w: &Workload, dir: &Path) -> Result<Life, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let calls = Arc::new(Calls::default());
    calls.count(true);
    let started = Instant::now();
    let cache = Arc::new(cache(stack, w.capacity, dir, true, &calls).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let steady_from = w.life.saturating_sub(w.after);
    // Requests and hot-tier hits over the steady window, and the loader's
    // count when the window's first request was taken.
    let steady = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
    let tasks: Vec<_> = (0..LIFE_TASKS)
        .map(|_| {
            let (cache, next, steady, calls) =
                (cache.clone(), next.clone(), steady.clone(), calls.clone());
            let requests = w.requests.clone();
            let life = w.life;
            tokio::spawn(FOREGROUND.scope((), async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= life {
                        return Ok::<(), String>(());
                    }
                    let key = requests[i];
                    if i == steady_from {
                        // The window's loader calls are those made from
                        // here to the end: exact but for the requests
                        // other tasks still have in flight (at most
                        // LIFE_TASKS - 1).
                        steady.2.store(calls.foreground(), Ordering::SeqCst);
                    }
                    let counted = i >= steady_from;
                    let hot = counted && cache.hot().contains_key(&key);
                    let found = cache.get(&key).await.map_err(|e| e.to_string())?;
                    check(key, found.as_ref())?;
                    if counted {
                        steady.0.fetch_add(1, Ordering::Relaxed);
                        steady.1.fetch_add(u64::from(hot), Ordering::Relaxed);
                    }
                }
            }))
        })
        .collect();
    for task in tasks {
        task.await
            .map_err(|e| format!("a request task failed: {e}"))??;
    }
    let seconds = started.elapsed().as_secs_f64();
    let entries = cache.entry_count();
    let cache = Arc::into_inner(cache).ok_or("the cache is still shared after the life")?;
    let shutdown = Instant::now();
    drop(cache);
    let shutdown_s = shutdown.elapsed().as_secs_f64();
    let snapshot = dir.join(SNAPSHOT_FILE);
    if !snapshot.exists() {
        return Err(format!(
            "the shutdown saved no snapshot at {}",
            snapshot.display()
        ));
    }
    let records = tokio::task::spawn_blocking({
        let snapshot = snapshot.clone();
        move || tiercache::warm::read_snapshot(&snapshot).map(|(_, r)| r.len() as u64)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("the saved snapshot does not read back: {e}"))?;
    Ok(Life {
        seconds,
        loader_calls: calls.foreground(),
        steady_requests: steady.0.load(Ordering::Relaxed),
        steady_hot_hits: steady.1.load(Ordering::Relaxed),
        steady_loader_calls: calls.foreground() - steady.2.load(Ordering::SeqCst),
        entries,
        snapshot_records: records,
        snapshot_bytes: file_len(&snapshot),
        tier_bytes: file_len(&dir.join(TIER_FILE)),
        shutdown_s,
    })
}

/// Copies the previous life's files from `life_dir` into a fresh `dir`
/// (the disk tier for [`Stack::Disk`], the snapshot for
/// [`Start::Snapshot`]), so that every restart starts from the same files.
fn copy_files(stack: Stack, start: Start, life_dir: &Path, dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut files = Vec::new();
    if stack == Stack::Disk {
        files.push(TIER_FILE);
    }
    if start == Start::Snapshot {
        files.push(SNAPSHOT_FILE);
    }
    for name in files {
        let (from, to): (PathBuf, PathBuf) = (life_dir.join(name), dir.join(name));
        std::fs::copy(&from, &to)
            .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(())
}

/// One restart from the previous life's files in `life_dir`, in a fresh
/// `dir`: the cache is built (loading the snapshot for
/// [`Start::Snapshot`]), warmed for [`Start::Warmer`], and then answers
/// the workload's `after` requests that follow the life, one at a time.
pub(crate) async fn restart(
    stack: Stack,
    start: Start,
    w: &Workload,
    life_dir: &Path,
    dir: &Path,
) -> Result<Restarted, String> {
    copy_files(stack, start, life_dir, dir)?;
    let calls = Arc::new(Calls::default());
    let built = Instant::now();
    let cache = cache(stack, w.capacity, dir, start == Start::Snapshot, &calls).await?;
    let build_s = built.elapsed().as_secs_f64();
    if start == Start::Snapshot {
        let stats = cache.snapshot_stats();
        if stats.loads != 1 {
            return Err(format!(
                "the snapshot did not load at build: {:?}",
                stats.last_error
            ));
        }
    }
    let warm = match start {
        Start::Warmer => {
            let warmer = cache
                .warmer()
                .source(cache.warm_from_tier(0).map_err(|e| e.to_string())?)
                .concurrency(WARM_CONCURRENCY)
                .rate_limit(None)
                .build()
                .map_err(|e| e.to_string())?;
            let report = warmer.run().await;
            if let Some(e) = report.errors.first() {
                return Err(format!("the warmer failed: {e}"));
            }
            Some(Warmed {
                seconds: report.elapsed.as_secs_f64(),
                total: report.total,
                warmed: report.warmed,
                present: report.present,
                missing: report.missing,
                failed: report.failed,
                listed: report.sources.first().map_or(0, |s| s.listed),
            })
        }
        Start::Cold | Start::Snapshot => None,
    };
    let entries = cache.entry_count();
    calls.count(true);
    let (mut hot_hits, mut loader_calls) = (0, 0);
    let after = &w.requests[w.life..w.life + w.after];
    FOREGROUND
        .scope((), async {
            for &key in after {
                let hot = cache.hot().contains_key(&key);
                let before = calls.foreground();
                let found = cache.get(&key).await.map_err(|e| e.to_string())?;
                check(key, found.as_ref())?;
                hot_hits += u64::from(hot);
                loader_calls += calls.foreground() - before;
            }
            Ok::<(), String>(())
        })
        .await?;
    drop(cache);
    std::fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    Ok(Restarted {
        start,
        build_s,
        entries,
        warm,
        requests: after.len() as u64,
        hot_hits,
        loader_calls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::zipf_requests;

    #[test]
    fn a_snapshot_restarts_warmer_than_cold() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let w = Workload {
            key: "test",
            requests: Arc::new(zipf_requests(5_000, 1.0, 21_000, 1)),
            life: 20_000,
            after: 1_000,
            capacity: 500,
        };
        runtime.block_on(async {
            for stack in [Stack::Memory, Stack::Disk] {
                let life_dir = dir.path().join(stack.key());
                let life = previous_life(stack, &w, &life_dir).await.unwrap();
                assert!(life.snapshot_records > 0 && life.snapshot_records <= 500);
                assert_eq!(life.steady_requests, 1_000);
                let mut ratios = Vec::new();
                for &start in stack.starts() {
                    let r = restart(stack, start, &w, &life_dir, &dir.path().join("r"))
                        .await
                        .unwrap();
                    assert_eq!(r.requests, 1_000);
                    ratios.push((start, r.hot_ratio(), r.no_load_ratio()));
                    if start == Start::Warmer {
                        assert!(r.warm.as_ref().unwrap().warmed > 0);
                    }
                }
                let (_, cold, cold_no_load) = ratios[0];
                let (_, snap, _) = ratios[1];
                assert!(snap > cold, "{stack:?}: {ratios:?}");
                if stack == Stack::Disk {
                    // Every key the life asked for is on disk.
                    assert!(cold_no_load > cold, "{ratios:?}");
                }
            }
        });
    }
}
