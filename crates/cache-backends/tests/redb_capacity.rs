//! The tier is bounded in bytes and evicts the least recently read entries
//! first; reads record their access without a write transaction.
#![cfg(feature = "redb")]

use std::path::Path;
use std::time::Duration;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, ManualClock, Meta};

const ENTRIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tiercache_entries");

/// The envelope's header for an entry of the default class.
const HEADER: usize = 28;
/// Each entry costs exactly this much: a 7-byte key and a record of a
/// header and 965 value bytes.
const COST: u64 = 1_000;
const MAX_BYTES: u64 = 100 * COST;

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key-{i:03}"))
}

fn entry(clock: &ManualClock, i: usize) -> Entry {
    let value = vec![i as u8; COST as usize - 7 - HEADER];
    Entry::new(value, Meta::new(clock.now_ms()))
}

/// The key and record bytes actually in the file.
fn bytes_in_file(path: &Path) -> (u64, u64) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(ENTRIES).unwrap();
    let mut total = 0;
    let mut count = 0;
    for row in table.iter().unwrap() {
        let (k, v) = row.unwrap();
        total += (k.value().len() + v.value().len()) as u64;
        count += 1;
    }
    (total, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filling_past_max_bytes_evicts_the_least_recently_read_first() {
    evicts_the_least_recently_read_first(false).await;
}

/// Reads on the caller's own thread (outside any runtime, where they skip
/// the reader threads) count for eviction just the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_on_the_callers_thread_count_for_eviction() {
    evicts_the_least_recently_read_first(true).await;
}

async fn evicts_the_least_recently_read_first(read_on_caller: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capacity.redb");
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .max_bytes(MAX_BYTES)
        .build()
        .await
        .unwrap();
    for i in 0..100 {
        tier.insert(key(i), entry(&clock, i)).await.unwrap();
        assert_eq!(tier.stats().used_bytes, (i as u64 + 1) * COST);
    }
    assert_eq!(tier.stats().evicted, 0, "exactly full, nothing evicted");
    // Reading the first half makes it more recent than the second half,
    // though it was written earlier.
    if read_on_caller {
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..50 {
                    let found = futures::executor::block_on(tier.get(&key(i)));
                    assert!(found.unwrap().is_hit());
                }
            });
        });
        assert_eq!(tier.stats().handed_off, 0);
    } else {
        for i in 0..50 {
            assert!(tier.get(&key(i)).await.unwrap().is_hit());
        }
    }
    for i in 100..150 {
        tier.insert(key(i), entry(&clock, i)).await.unwrap();
        let used = tier.stats().used_bytes;
        assert!(used <= MAX_BYTES, "{used} bytes held after inserting {i}");
    }
    assert_eq!(tier.stats().evicted, 50);
    for i in 50..100 {
        assert!(
            !tier.contains(&key(i)).await.unwrap(),
            "key {i} was never read and should have been evicted first"
        );
    }
    for i in (0..50).chain(100..150) {
        let got = tier.get(&key(i)).await.unwrap().into_hit();
        assert_eq!(
            got.map(|e| e.value),
            Some(entry(&clock, i).value),
            "key {i}"
        );
    }
    assert_eq!(tier.len().await.unwrap(), 100);

    // The running total matches what the file holds, and survives a reopen.
    drop(tier);
    assert_eq!(bytes_in_file(&path), (MAX_BYTES, 100));
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .max_bytes(MAX_BYTES / 2)
        .build()
        .await
        .unwrap();
    assert_eq!(
        tier.stats().used_bytes,
        MAX_BYTES / 2,
        "a smaller bound on reopen evicts down to it"
    );
    assert_eq!(tier.len().await.unwrap(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_batch_of_inserts_stays_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.redb");
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .max_bytes(MAX_BYTES)
        .build()
        .await
        .unwrap();
    let batch: Vec<_> = (0..250).map(|i| (key(i), entry(&clock, i))).collect();
    tier.insert_many(batch).await.unwrap();
    assert_eq!(tier.stats().used_bytes, MAX_BYTES);
    assert_eq!(tier.stats().evicted, 150);
    // Within one batch, the later writes are the more recent.
    assert!(!tier.contains(&key(149)).await.unwrap());
    assert!(tier.contains(&key(150)).await.unwrap());
    drop(tier);
    assert_eq!(bytes_in_file(&path), (MAX_BYTES, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_larger_than_the_whole_tier_is_rejected_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("huge.redb"))
        .clock(clock.clock())
        .max_bytes(MAX_BYTES)
        .build()
        .await
        .unwrap();
    tier.insert(key(0), entry(&clock, 0)).await.unwrap();
    let huge = Entry::new(vec![0u8; MAX_BYTES as usize], Meta::new(clock.now_ms()));
    let err = tier.insert(key(0), huge).await.unwrap_err();
    assert_eq!(err.kind(), cache_core::ErrorKind::ValueTooLarge, "{err}");
    assert_eq!(
        tier.get(&key(0)).await.unwrap().into_hit().map(|e| e.value),
        Some(entry(&clock, 0).value)
    );
    assert_eq!(tier.stats().used_bytes, COST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_cost_no_commit_until_their_batch_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("reads.redb"))
        .clock(clock.clock())
        .sweep_interval(Duration::from_secs(3600))
        .access_flush_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    for i in 0..10 {
        tier.insert(key(i), entry(&clock, i)).await.unwrap();
    }
    let commits = tier.stats().durable_commits;
    for _ in 0..20 {
        for i in 0..10 {
            assert!(tier.get(&key(i)).await.unwrap().is_hit());
        }
    }
    assert_eq!(
        tier.stats().durable_commits,
        commits,
        "200 reads made no commit"
    );
    tier.sync().await.unwrap();
    assert_eq!(
        tier.stats().durable_commits,
        commits + 1,
        "the whole batch of reads went out in one commit"
    );
}

/// A full batch of reads is written without waiting for the timer, and so
/// is the next one, once the writer's pause after the first has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_of_reads_is_written_before_its_timer() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("full.redb"))
        .clock(clock.clock())
        .sweep_interval(Duration::from_secs(3600))
        .access_flush_interval(Duration::from_secs(3600))
        .access_batch(4)
        .build()
        .await
        .unwrap();
    for i in 0..10 {
        tier.insert(key(i), entry(&clock, i)).await.unwrap();
    }
    for round in 0..2 {
        let commits = tier.stats().durable_commits;
        for i in 0..3 {
            assert!(tier.get(&key(i)).await.unwrap().is_hit());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            tier.stats().durable_commits,
            commits,
            "round {round}: three keys do not fill the batch"
        );
        assert!(tier.get(&key(3 + round)).await.unwrap().is_hit());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while tier.stats().durable_commits == commits {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the full batch was not written"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
