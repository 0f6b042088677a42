//! Dropping the last clone stops the background work and closes the file,
//! so the same process can open it again at once.
//!
//! This file holds one test, so the writer and reader threads it counts are
//! its own.
#![cfg(feature = "redb")]

use std::time::Duration;

use ::redb::{Database, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use bytes::Bytes;
use cache_backends::redb::{Durability, RedbBackend};
use cache_core::{Backend, Entry, Meta};

const ENTRIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tiercache_entries");

/// The threads of this process named `name`, like the tier's writer
/// (`tiercache-redb`) and reader (`tiercache-read`) threads.
#[cfg(target_os = "linux")]
fn threads(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim() == name)
        .count()
}

#[cfg(not(target_os = "linux"))]
fn threads(_name: &str) -> usize {
    0
}

/// Waits (up to ten seconds) until `threads(name)` is `count`, and says
/// whether it got there: a new thread names itself only once it runs, so
/// right after the tier is built its threads may not show yet.
async fn settles_at(name: &str, count: usize) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while threads(name) != count {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_clone_stops_the_writer_and_frees_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shutdown.redb");
    for durability in [
        Durability::Immediate,
        Durability::Periodic(Duration::from_secs(3600)),
    ] {
        let tier = RedbBackend::builder(&path)
            .durability(durability)
            .sweep_interval(Duration::from_millis(5))
            .access_flush_interval(Duration::from_millis(5))
            .read_threads(3)
            .build()
            .await
            .unwrap();
        if cfg!(target_os = "linux") {
            assert!(
                settles_at("tiercache-redb", 1).await,
                "one writer thread, not {}",
                threads("tiercache-redb")
            );
            assert!(
                settles_at("tiercache-read", 3).await,
                "three reader threads, not {}",
                threads("tiercache-read")
            );
        }
        let clones: Vec<_> = (0..4).map(|_| tier.clone()).collect();
        tier.insert(
            Bytes::from_static(b"k"),
            Entry::new(&b"v"[..], Meta::new(0)),
        )
        .await
        .unwrap();
        drop(tier);
        for clone in &clones {
            assert!(
                clone.get(b"k").await.unwrap().is_hit(),
                "clones keep it open"
            );
        }
        drop(clones);
        assert_eq!(
            threads("tiercache-redb"),
            0,
            "{durability:?}: the writer thread ended"
        );
        assert_eq!(
            threads("tiercache-read"),
            0,
            "{durability:?}: the reader threads ended"
        );

        // The lock is released: redb itself can open the file, and sees the
        // entry made durable on the way out.
        let db = Database::create(&path).expect("the file is free");
        let txn = db.begin_read().unwrap();
        assert_eq!(txn.open_table(ENTRIES).unwrap().len().unwrap(), 1);
        drop(txn);
        drop(db);
        std::fs::remove_file(&path).unwrap();
    }
}
