//! A record damaged on disk is a miss, never garbage or a panic; it is
//! deleted and counted.
#![cfg(feature = "redb")]

use std::path::Path;
use std::time::Duration;

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, DataClass, Entry, Lookup, ManualClock, Meta};

const ENTRIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tiercache_entries");

/// Where the test damages a record: one byte in each field of the envelope
/// header (magic, version, reserved, checksum, flags, expiry, creation
/// time, class length, class name) and in the value.
const FLIPPED_AT: [usize; 11] = [0, 2, 3, 5, 8, 11, 17, 20, 26, 30, 40];

fn entry(clock: &ManualClock) -> Entry {
    let meta = Meta::with_ttl(clock.now_ms(), Duration::from_secs(3600))
        .unwrap()
        .class(DataClass::named("rows"));
    Entry::new(vec![7u8; 64], meta)
}

/// Rewrites records in the file with redb's own API, as a disk or another
/// program might have left them.
fn damage(path: &Path, change: impl Fn(&[u8], &mut Vec<u8>)) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(ENTRIES).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = table
            .iter()
            .unwrap()
            .map(|row| {
                let (k, v) = row.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        for (key, mut record) in rows {
            change(&key, &mut record);
            table.insert(key.as_slice(), record.as_slice()).unwrap();
        }
    }
    txn.commit().unwrap();
}

fn keys_in_file(path: &Path) -> Vec<Vec<u8>> {
    let db = Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(ENTRIES).unwrap();
    table
        .iter()
        .unwrap()
        .map(|row| row.unwrap().0.value().to_vec())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_bytes_are_misses_and_the_records_are_deleted_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.redb");
    let clock = ManualClock::default();
    let open = || {
        RedbBackend::builder(&path)
            .clock(clock.clock())
            .sweep_interval(Duration::from_secs(3600))
            .build()
    };
    let tier = open().await.unwrap();
    for at in FLIPPED_AT {
        tier.insert(Bytes::from(format!("bad-{at:02}")), entry(&clock))
            .await
            .unwrap();
    }
    for name in ["good", "short", "empty"] {
        tier.insert(Bytes::from(name), entry(&clock)).await.unwrap();
    }
    drop(tier);

    damage(&path, |key, record| {
        let key = std::str::from_utf8(key).unwrap();
        if let Some(at) = key.strip_prefix("bad-") {
            record[at.parse::<usize>().unwrap()] ^= 0x10;
        } else if key == "short" {
            record.truncate(20);
        } else if key == "empty" {
            record.clear();
        }
    });

    let tier = open().await.unwrap();
    for at in FLIPPED_AT {
        let key = format!("bad-{at:02}");
        assert_eq!(
            tier.get(key.as_bytes()).await.unwrap(),
            Lookup::Miss,
            "a record with byte {at} flipped"
        );
    }
    assert_eq!(tier.corrupted_count(), FLIPPED_AT.len() as u64);
    let lookups = tier
        .get_many(&[Bytes::from("short"), Bytes::from("good")])
        .await
        .unwrap();
    assert_eq!(lookups[0], Lookup::Miss, "a truncated record");
    assert_eq!(lookups[1].clone().into_hit(), Some(entry(&clock)));
    assert!(
        !tier.remove(b"empty").await.unwrap(),
        "removing an empty record removes nothing live"
    );
    assert_eq!(tier.corrupted_count(), FLIPPED_AT.len() as u64 + 2);
    // A second read of a deleted record is an ordinary miss, not counted.
    assert_eq!(tier.get(b"bad-00").await.unwrap(), Lookup::Miss);
    assert_eq!(tier.corrupted_count(), FLIPPED_AT.len() as u64 + 2);
    assert_eq!(tier.len().await.unwrap(), 1);
    // Only "good" is left: a 4-byte key and a record of the header, the
    // 4-byte class name and the 64-byte value.
    assert_eq!(
        tier.stats().used_bytes,
        4 + 28 + 4 + 64,
        "the deleted records' bytes are freed, whatever size they were left at"
    );
    drop(tier);
    assert_eq!(keys_in_file(&path), vec![b"good".to_vec()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_over_a_damaged_record_replaces_it_without_counting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replaced.redb");
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .build()
        .await
        .unwrap();
    tier.insert(Bytes::from_static(b"k"), entry(&clock))
        .await
        .unwrap();
    drop(tier);
    damage(&path, |_, record| record[40] ^= 1);
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .build()
        .await
        .unwrap();
    // The fresh insert replaces the damaged record before any read sees it.
    tier.insert(Bytes::from_static(b"k"), entry(&clock))
        .await
        .unwrap();
    assert_eq!(
        tier.get(b"k").await.unwrap().into_hit(),
        Some(entry(&clock))
    );
    assert_eq!(tier.corrupted_count(), 0);
}

/// The same checks on the caller's own thread, outside any runtime, where
/// a lookup skips the reader threads.
#[test]
fn a_damaged_record_read_on_the_callers_thread_is_deleted_and_counted() {
    use futures::executor::block_on;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("caller.redb");
    let clock = ManualClock::default();
    let open = || {
        RedbBackend::builder(&path)
            .clock(clock.clock())
            .build_blocking()
            .unwrap()
    };
    let tier = open();
    for key in ["bad", "short", "good"] {
        block_on(tier.insert(Bytes::from(key), entry(&clock))).unwrap();
    }
    drop(tier);
    damage(&path, |key, record| match key {
        b"bad" => record[40] ^= 0x04,
        b"short" => record.truncate(30),
        _ => {}
    });

    let tier = open();
    assert_eq!(block_on(tier.get(b"bad")).unwrap(), Lookup::Miss);
    assert_eq!(tier.corrupted_count(), 1);
    let found = block_on(tier.get_many(&[Bytes::from("short"), Bytes::from("good")])).unwrap();
    assert_eq!(found[0], Lookup::Miss, "a truncated record");
    assert_eq!(found[1].clone().into_hit(), Some(entry(&clock)));
    assert_eq!(tier.corrupted_count(), 2);
    assert_eq!(block_on(tier.get(b"bad")).unwrap(), Lookup::Miss);
    assert_eq!(
        tier.corrupted_count(),
        2,
        "a deleted record is not met again"
    );
    assert_eq!(tier.stats().handed_off, 0);
    drop(tier);
    assert_eq!(keys_in_file(&path), vec![b"good".to_vec()]);
}
