//! Every duration the disk tier accepts takes `Duration::MAX` as "never":
//! the tier builds, works, syncs and closes without a panic.
#![cfg(feature = "redb")]

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redb::{Durability, RedbBackend, RedbBackendBuilder};
use cache_core::{Backend, Entry, Meta};

/// A change to a builder.
type Setting = fn(RedbBackendBuilder) -> RedbBackendBuilder;

/// Each setting that takes a duration, at `Duration::MAX`, alone, then
/// all of them together.
fn settings() -> Vec<(&'static str, Setting)> {
    vec![
        ("sweep_interval", |b| b.sweep_interval(Duration::MAX)),
        ("access_flush_interval", |b| {
            b.access_flush_interval(Duration::MAX)
        }),
        ("durability periodic", |b| {
            b.durability(Durability::Periodic(Duration::MAX))
        }),
        ("all of them", |b| {
            b.sweep_interval(Duration::MAX)
                .access_flush_interval(Duration::MAX)
                .durability(Durability::Periodic(Duration::MAX))
        }),
    ]
}

async fn exercise(tier: &RedbBackend, what: &str) {
    tier.insert(
        Bytes::from_static(b"k"),
        Entry::new(&b"v"[..], Meta::new(0)),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(tier.get(b"k").await.unwrap().is_hit(), "{what}");
    // Nothing is waiting on a timer that never fires: `sync` and `sweep`
    // still do their work on demand.
    tier.sync().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    tier.sweep().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(tier.len().await.unwrap(), 1, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_max_is_never_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, set)) in settings().into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.redb"));
        let tier = set(RedbBackend::builder(&path))
            .build()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        exercise(&tier, what).await;
        drop(tier);
        // What was synced is in the file when it opens again.
        let tier = RedbBackend::builder(&path).build().await.unwrap();
        assert!(tier.get(b"k").await.unwrap().is_hit(), "{what}");
    }
}

/// The same from a plain thread, where `build_blocking` runs the setup on
/// the caller's own thread.
#[test]
fn duration_max_builds_on_the_callers_thread() {
    use futures::executor::block_on;
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, set)) in settings().into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.redb"));
        let tier = set(RedbBackend::builder(&path))
            .build_blocking()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        block_on(exercise(&tier, what));
    }
}
