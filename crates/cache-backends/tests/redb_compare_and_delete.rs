//! `remove_if_unchanged` removes a record only while it still holds the
//! value a reader saw (or is corrupted), in one write transaction, so a
//! value written between the read and the delete is never lost.
#![cfg(feature = "redb")]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::redb::{Database, ReadableTable, TableDefinition};
use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, Lookup, Meta};

const ENTRIES: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("tiercache_entries");

fn entry(value: &str) -> Entry {
    Entry::new(value.to_string(), Meta::new(0))
}

async fn open(path: &Path) -> RedbBackend {
    RedbBackend::builder(path).build().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_value_is_removed_and_a_changed_one_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(&dir.path().join("cad.redb")).await;
    tier.insert(Bytes::from_static(b"k"), entry("v1"))
        .await
        .unwrap();

    let seen = tier.get(b"k").await.unwrap().into_hit().unwrap().value;
    assert!(
        tier.remove_if_unchanged(b"k", &seen).await.unwrap(),
        "the value the read saw is still there: it is removed"
    );
    assert_eq!(tier.get(b"k").await.unwrap(), Lookup::Miss);
    assert_eq!(tier.len().await.unwrap(), 0);
    assert!(
        !tier.remove_if_unchanged(b"k", &seen).await.unwrap(),
        "an absent key removes nothing"
    );

    // A write lands between the read and the delete: the delete must not
    // take the newer value with it.
    tier.insert(Bytes::from_static(b"k"), entry("v1"))
        .await
        .unwrap();
    let seen = tier.get(b"k").await.unwrap().into_hit().unwrap().value;
    tier.insert(Bytes::from_static(b"k"), entry("v2"))
        .await
        .unwrap();
    assert!(!tier.remove_if_unchanged(b"k", &seen).await.unwrap());
    assert_eq!(
        tier.get(b"k").await.unwrap().into_hit(),
        Some(entry("v2")),
        "the concurrent write survives"
    );
    assert_eq!(tier.corrupted_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_record_is_removed_whatever_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.redb");
    let tier = open(&path).await;
    tier.insert(Bytes::from_static(b"bad"), entry("value"))
        .await
        .unwrap();
    tier.insert(Bytes::from_static(b"good"), entry("value"))
        .await
        .unwrap();
    drop(tier);
    {
        // Flip a byte of the value on disk, where the record's checksum
        // no longer covers it.
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(ENTRIES).unwrap();
            let mut record = table.get(&b"bad"[..]).unwrap().unwrap().value().to_vec();
            let last = record.len() - 1;
            record[last] ^= 0x20;
            table.insert(&b"bad"[..], record.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let tier = open(&path).await;
    assert!(
        tier.remove_if_unchanged(b"bad", b"anything").await.unwrap(),
        "a corrupted record is never valid data: removing it loses nothing"
    );
    assert_eq!(tier.corrupted_count(), 1);
    assert!(
        !tier.remove_if_unchanged(b"good", b"other").await.unwrap(),
        "an intact record holding another value stays"
    );
    assert_eq!(tier.len().await.unwrap(), 1);
    assert!(tier.get(b"good").await.unwrap().is_hit());
}

/// One writer gives a key ever newer values while a remover reads it and
/// deletes what it read. If the key ends up absent, the remover must have
/// removed the last value itself (having read exactly it): a delete based
/// on an older read must never take the last write with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_a_compare_and_delete_is_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open(&dir.path().join("race.redb")).await;
    const ROUNDS: usize = 20;
    const WRITES: usize = 40;
    for round in 0..ROUNDS {
        let key = Bytes::from(format!("k{round}"));
        let done = Arc::new(AtomicBool::new(false));
        let remover = {
            let (tier, key, done) = (tier.clone(), key.clone(), done.clone());
            tokio::spawn(async move {
                let mut removed = Vec::new();
                while !done.load(Ordering::Acquire) {
                    if let Lookup::Hit(found) = tier.get(&key).await.unwrap()
                        && tier.remove_if_unchanged(&key, &found.value).await.unwrap()
                    {
                        removed.push(found.value);
                    }
                    tokio::task::yield_now().await;
                }
                removed
            })
        };
        let last = format!("r{round}-w{WRITES}");
        for write in 1..=WRITES {
            let value = format!("r{round}-w{write}");
            tier.insert(key.clone(), entry(&value)).await.unwrap();
            tokio::task::yield_now().await;
        }
        done.store(true, Ordering::Release);
        let removed = remover.await.unwrap();
        match tier.get(&key).await.unwrap() {
            Lookup::Hit(found) => assert_eq!(found.value, last, "round {round}"),
            Lookup::Miss => assert!(
                removed.iter().any(|v| *v == last),
                "round {round}: the last write vanished though the remover \
                 never saw it (removed {removed:?})"
            ),
            other => panic!("round {round}: {other:?}"),
        }
    }
}
