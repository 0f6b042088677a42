//! Part 2, how fast a snapshot saves and loads: a memory-only cache of
//! many entries saved, then loaded into a fresh cache; and a smaller one
//! loaded into a cache with a redb tier beside a memory-only one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tiercache::Cache;
use tiercache::warm::SnapshotReport;

use crate::restart::{LIFE_TASKS, disk_tier};
use crate::workload::{mix, value};

/// The filled cache's capacity over its entries: room for every entry, as
/// the hot tier gives each of its partitions an equal share.
pub(crate) const FILL_CAPACITY_OVER: f64 = 1.25;

/// One save and one load.
#[derive(Clone, Debug)]
pub(crate) struct Timed {
    /// `save_snapshot`, measured around the call.
    pub(crate) save_s: f64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// `load_snapshot` into a fresh cache, measured around the call.
    pub(crate) load_s: f64,
    /// What the load's report says it took.
    pub(crate) load_report_s: f64,
    /// `read_snapshot` of the same file alone (reading and verifying
    /// every record, which a load must do at least once), timed after the
    /// load.
    pub(crate) read_s: f64,
    pub(crate) loaded: u64,
    pub(crate) over_capacity: u64,
    /// Entries in the fresh cache after the load.
    pub(crate) entries_after: u64,
}

impl Timed {
    /// Records read and handled a second.
    pub(crate) fn records_per_s(&self) -> f64 {
        self.records as f64 / self.load_s
    }
}

/// A memory-only cache holding the entries `0..entries` (keys spread by
/// [`mix`]), with room for them all.
pub(crate) async fn filled(entries: usize) -> Result<Cache<u64, Vec<u8>>, String> {
    let cache = Cache::<u64, Vec<u8>>::builder()
        .max_capacity((entries as f64 * FILL_CAPACITY_OVER).ceil() as u64)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    for i in 0..entries as u64 {
        let key = mix(i);
        cache
            .insert(key, value(key))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(cache)
}

/// A memory-only cache of `capacity` entries.
async fn empty(capacity: u64) -> Result<Cache<u64, Vec<u8>>, String> {
    Cache::<u64, Vec<u8>>::builder()
        .max_capacity(capacity)
        .build()
        .await
        .map_err(|e| e.to_string())
}

fn load_failed(e: tiercache::Error) -> String {
    format!("load_snapshot failed: {e}")
}

/// Reads and verifies the whole file at `path`, timed.
async fn timed_read(path: &Path) -> Result<f64, String> {
    let path = path.to_path_buf();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || tiercache::warm::read_snapshot(&path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("read_snapshot failed: {e}"))?;
    Ok(started.elapsed().as_secs_f64())
}

/// Loads `path` into `cache`, timed.
async fn timed_load(
    cache: &Cache<u64, Vec<u8>>,
    path: &Path,
) -> Result<(f64, SnapshotReport), String> {
    let started = Instant::now();
    let report = cache.load_snapshot(path).await.map_err(load_failed)?;
    Ok((started.elapsed().as_secs_f64(), report))
}

/// Saves `source` to `path`, then loads it into a fresh memory-only cache
/// of `capacity` entries.
pub(crate) async fn memory_run(
    source: &Cache<u64, Vec<u8>>,
    capacity: u64,
    path: &Path,
) -> Result<Timed, String> {
    let started = Instant::now();
    let saved = source
        .save_snapshot(path)
        .await
        .map_err(|e| format!("save_snapshot failed: {e}"))?;
    let save_s = started.elapsed().as_secs_f64();
    let fresh = empty(capacity).await?;
    let (load_s, report) = timed_load(&fresh, path).await?;
    let entries_after = fresh.entry_count();
    drop(fresh);
    let read_s = timed_read(path).await?;
    Ok(Timed {
        read_s,
        save_s,
        records: saved.records,
        bytes: saved.bytes,
        load_s,
        load_report_s: report.elapsed.as_secs_f64(),
        loaded: report.loaded,
        over_capacity: report.over_capacity,
        entries_after,
    })
}

async fn disk_cache(capacity: u64, tier: &Path) -> Result<Cache<u64, Vec<u8>>, String> {
    Cache::<u64, Vec<u8>>::builder()
        .max_capacity(capacity)
        .backend(disk_tier(tier).await?)
        .build()
        .await
        .map_err(|e| e.to_string())
}

/// The files of the comparison with a disk tier: a cache over a redb tier
/// in `dir` written `entries` entries (through to the tier, from
/// [`LIFE_TASKS`] tasks) and saved; returns the snapshot's report.
pub(crate) async fn disk_files(entries: usize, dir: &Path) -> Result<SnapshotReport, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let capacity = (entries as f64 * FILL_CAPACITY_OVER).ceil() as u64;
    let cache = Arc::new(disk_cache(capacity, &dir.join("load.redb")).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..LIFE_TASKS)
        .map(|_| {
            let (cache, next) = (cache.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= entries {
                        return Ok::<(), String>(());
                    }
                    let key = mix(i as u64);
                    cache
                        .insert(key, value(key))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let saved = cache
        .save_snapshot(dir.join("load.snapshot"))
        .await
        .map_err(|e| format!("save_snapshot failed: {e}"))?;
    drop(cache);
    Ok(saved)
}

/// One comparison run over [`disk_files`]' files: the snapshot loaded
/// into a fresh cache over the redb tier, and into a fresh memory-only
/// cache, both of `capacity` entries. Returns (memory-only, with redb).
pub(crate) async fn disk_run(
    dir: &Path,
    capacity: u64,
    saved: &SnapshotReport,
) -> Result<(Timed, Timed), String> {
    let path = dir.join("load.snapshot");
    let mut out = Vec::new();
    for with_disk in [false, true] {
        let fresh = if with_disk {
            disk_cache(capacity, &dir.join("load.redb")).await?
        } else {
            empty(capacity).await?
        };
        let (load_s, report) = timed_load(&fresh, &path).await?;
        out.push(Timed {
            read_s: timed_read(&path).await?,
            save_s: saved.elapsed.as_secs_f64(),
            records: report.records,
            bytes: report.bytes,
            load_s,
            load_report_s: report.elapsed.as_secs_f64(),
            loaded: report.loaded,
            over_capacity: report.over_capacity,
            entries_after: fresh.entry_count(),
        });
        drop(fresh);
    }
    let with_disk = out.pop().expect("two loads");
    let memory = out.pop().expect("two loads");
    Ok((memory, with_disk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_load_back_whole() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        runtime.block_on(async {
            let source = filled(2_000).await.unwrap();
            let t = memory_run(&source, 2_500, &dir.path().join("s"))
                .await
                .unwrap();
            assert_eq!(
                (t.records, t.loaded, t.entries_after),
                (2_000, 2_000, 2_000)
            );
            assert!(t.bytes > 2_000 * 100);
            let saved = disk_files(1_000, &dir.path().join("d")).await.unwrap();
            assert_eq!(saved.records, 1_000);
            let (m, d) = disk_run(&dir.path().join("d"), 1_000, &saved)
                .await
                .unwrap();
            assert_eq!(m.records, 1_000);
            assert!(m.loaded > 900, "{m:?}");
            assert!(d.loaded > 900, "{d:?}");
        });
    }
}
