//! A full disk under the tier: writes fail clearly, reads answer or fail
//! clearly (never a panic or a wrong value), and once space returns the
//! tier works again by itself, with the data committed before intact.
//!
//! redb latches an I/O failure, so without a reopen every later
//! transaction would fail for good. The storage here is the real file
//! behind a switch that makes every write, resize and `fsync` fail as a
//! full disk does.
#![cfg(feature = "redb")]

use std::fs::OpenOptions;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::redb::backends::FileBackend;
use ::redb::{BackendError, StorageBackend};
use bytes::Bytes;
use cache_backends::redb::{RedbBackend, RedbBackendBuilder};
use cache_core::{Backend, Entry, Error, ErrorKind, Lookup, Meta};

/// The switches shared by every handle the tier opens.
#[derive(Debug, Default)]
struct Disk {
    full: AtomicBool,
    /// Reads fail as on a failing device.
    unreadable: AtomicBool,
    /// Writes, resizes and syncs refused, to show the fault was met.
    refused: AtomicU64,
}

impl Disk {
    fn check(&self) -> io::Result<()> {
        if self.full.load(Ordering::Acquire) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            ));
        }
        Ok(())
    }

    fn check_read(&self) -> io::Result<()> {
        if self.unreadable.load(Ordering::Acquire) {
            return Err(io::Error::other("input/output error (injected)"));
        }
        Ok(())
    }
}

/// redb's own file backend, with the disk's switch in front of every
/// operation that needs free space.
#[derive(Debug)]
struct FullableFile {
    file: FileBackend,
    disk: Arc<Disk>,
}

impl StorageBackend for FullableFile {
    fn len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.disk.check_read()?;
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.disk.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.disk.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.disk.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// A builder for the file at `path` on `disk`: each open is a fresh handle
/// on the file, as the tier's reopen needs.
fn on_disk(path: &Path, disk: &Arc<Disk>) -> RedbBackendBuilder {
    let (at, disk) = (path.to_path_buf(), disk.clone());
    RedbBackend::builder(path).storage_backend(move || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&at)?;
        Ok(FullableFile {
            file: FileBackend::new(file).map_err(io::Error::other)?,
            disk: disk.clone(),
        })
    })
}

fn entry(value: &str) -> Entry {
    Entry::new(value.to_string(), Meta::new(0))
}

/// A tier failure the caller can tell from bad input, never a panic.
fn assert_clear(error: &Error, what: &str) {
    assert!(
        matches!(error.kind(), ErrorKind::Backend | ErrorKind::Unavailable),
        "{what}: {error:?}"
    );
    assert!(!error.kind().is_input_error(), "{what}: {error:?}");
}

/// Keeps writing until a write succeeds, as a caller whose writes fail
/// would; the tier must come back without anyone reopening it. The bound
/// only keeps a broken tier from hanging the test.
async fn first_successful_write(tier: &RedbBackend) -> usize {
    for attempt in 0..3_000 {
        match tier
            .insert(Bytes::from_static(b"after"), entry("after"))
            .await
        {
            Ok(()) => return attempt,
            Err(error) => assert_clear(&error, "a write while recovering"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the tier did not recover after the disk had space again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_clearly_and_the_tier_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.redb");
    let disk = Arc::new(Disk::default());
    let tier = on_disk(&path, &disk).build().await.unwrap();
    let before: Vec<(Bytes, Entry)> = (0..50)
        .map(|i| (Bytes::from(format!("k{i}")), entry(&format!("v{i}"))))
        .collect();
    tier.insert_many(before.clone()).await.unwrap();

    disk.full.store(true, Ordering::Release);
    let error = tier
        .insert(Bytes::from_static(b"during"), entry("during"))
        .await
        .unwrap_err();
    assert_clear(&error, "the write that meets the full disk");
    assert!(disk.refused.load(Ordering::Relaxed) > 0);
    // The disk stays full for a while: every call answers, clearly.
    for round in 0..20 {
        let key = Bytes::from(format!("during-{round}"));
        match tier.insert(key, entry("during")).await {
            Ok(()) => panic!("round {round}: a write succeeded on a full disk"),
            Err(error) => assert_clear(&error, "a write on a full disk"),
        }
        if let Err(error) = tier.remove(b"k0").await {
            assert_clear(&error, "a remove on a full disk");
        }
        // A read of committed data answers it, or fails clearly; redb
        // serves it from its page cache until the tier closes the failed
        // database to reopen it.
        for (key, value) in before.iter().step_by(7) {
            match tier.get(key).await {
                Ok(Lookup::Hit(found)) => assert_eq!(&found, value),
                Ok(other) => panic!("round {round}: {key:?} read as {other:?}"),
                Err(error) => assert_clear(&error, "a read on a full disk"),
            }
        }
        if let Err(error) = tier.sync().await {
            assert_clear(&error, "a sync on a full disk");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    disk.full.store(false, Ordering::Release);
    first_successful_write(&tier).await;
    assert!(tier.stats().reopens >= 1, "{:?}", tier.stats());
    for (key, value) in &before[1..] {
        assert_eq!(
            tier.get(key).await.unwrap().into_hit().as_ref(),
            Some(value),
            "{key:?} committed before the disk filled"
        );
    }
    assert_eq!(
        tier.get(b"after").await.unwrap().into_hit(),
        Some(entry("after"))
    );
    tier.insert(Bytes::from_static(b"later"), entry("later"))
        .await
        .unwrap();
    tier.sync().await.unwrap();
    drop(tier);

    // The recovered file is whole: it opens again and holds everything.
    let tier = on_disk(&path, &disk).build().await.unwrap();
    for (key, value) in &before[1..] {
        assert_eq!(
            tier.get(key).await.unwrap().into_hit().as_ref(),
            Some(value)
        );
    }
    for key in [&b"after"[..], b"later"] {
        assert!(tier.get(key).await.unwrap().is_hit());
    }
}

/// A tier that only reads, when the failure comes from a read: the read
/// fails clearly and the tier reopens by itself, without any write to show
/// it the error (redb latches a failed read as it does a failed write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_met_only_by_reads_is_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reads.redb");
    let disk = Arc::new(Disk::default());
    // No page cache and no timed background writes: every read goes to
    // the storage, and nothing but reads reaches the tier.
    let tier = on_disk(&path, &disk)
        .cache_size(0)
        .sweep_interval(Duration::MAX)
        .access_flush_interval(Duration::MAX)
        .build()
        .await
        .unwrap();
    tier.insert(Bytes::from_static(b"k"), entry("v"))
        .await
        .unwrap();
    disk.unreadable.store(true, Ordering::Release);
    let error = tier.get(b"k").await.unwrap_err();
    assert_clear(&error, "a read of a failing device");
    disk.unreadable.store(false, Ordering::Release);
    let mut answered = false;
    for _ in 0..3_000 {
        match tier.get(b"k").await {
            Ok(found) => {
                assert_eq!(found.into_hit(), Some(entry("v")));
                answered = true;
                break;
            }
            Err(error) => assert_clear(&error, "a read while recovering"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "reads never came back");
    assert_eq!(tier.stats().reopens, 1, "{:?}", tier.stats());
    first_successful_write(&tier).await;
}
