//! A file that cannot be opened gives a clear error, and is recreated only
//! when asked to and only when that can help.
#![cfg(feature = "redb")]

use std::path::Path;

use ::redb::{Database, TableDefinition};
use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, ErrorKind, Meta};

fn garbage(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

async fn assert_usable(tier: &RedbBackend) {
    assert_eq!(tier.len().await.unwrap(), 0, "a recreated file is empty");
    tier.insert(
        Bytes::from_static(b"k"),
        Entry::new(&b"v"[..], Meta::new(0)),
    )
    .await
    .unwrap();
    assert!(tier.get(b"k").await.unwrap().is_hit());
}

async fn assert_clear_error(path: &Path) {
    let err = RedbBackend::builder(path).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(
        err.message().contains(&path.display().to_string()),
        "the message names the file: {err}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "redb's error is the source: {err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_a_redb_database_is_a_clear_error_unless_recreated() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("long.redb", garbage(64 * 1024)),
        ("short.redb", b"not a database".to_vec()),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        assert_clear_error(&path).await;
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "without recreate_on_error the file is left alone"
        );
        let tier = RedbBackend::builder(&path)
            .recreate_on_error(true)
            .build()
            .await
            .unwrap();
        assert_usable(&tier).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_database_with_other_tables_of_our_names_is_not_ours() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.redb");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let table: TableDefinition<'static, u64, u64> =
                TableDefinition::new("tiercache_entries");
            txn.open_table(table).unwrap().insert(1, 2).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = RedbBackend::builder(&path).build().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(
        err.source_as::<::redb::Error>().is_some(),
        "redb's error is the source: {err:?}"
    );
    let tier = RedbBackend::builder(&path)
        .recreate_on_error(true)
        .build()
        .await
        .unwrap();
    assert_usable(&tier).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_in_use_is_unavailable_and_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.redb");
    let first = RedbBackend::builder(&path).build().await.unwrap();
    first
        .insert(
            Bytes::from_static(b"k"),
            Entry::new(&b"v"[..], Meta::new(0)),
        )
        .await
        .unwrap();
    let err = RedbBackend::builder(&path)
        .recreate_on_error(true)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().contains(&path.display().to_string()), "{err}");
    assert!(
        first.get(b"k").await.unwrap().is_hit(),
        "the open file was kept"
    );
}

#[tokio::test]
async fn invalid_settings_are_rejected_before_the_file_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.redb");
    let err = RedbBackend::builder(&path)
        .max_bytes(0)
        .build()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let err = RedbBackend::builder(&path)
        .sweep_batch(0)
        .build_blocking()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let err = RedbBackend::builder(&path)
        .read_threads(0)
        .build_blocking()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    assert!(!path.exists());
}
