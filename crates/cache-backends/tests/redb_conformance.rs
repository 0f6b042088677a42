//! `RedbBackend` honours the byte-level `Backend` contract, with either
//! durability.
#![cfg(feature = "redb")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_backends::redb::{Durability, RedbBackend};
use cache_core::conformance;

/// Runs the suite with every check on a fresh, empty file.
async fn conforms_with(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let files = AtomicUsize::new(0);
    conformance::run(|h| {
        let path = dir
            .path()
            .join(format!("{}.redb", files.fetch_add(1, Ordering::Relaxed)));
        async move {
            RedbBackend::builder(path)
                .clock(h.clock.clock())
                .limits(h.limits)
                .max_bytes(256 << 20)
                .durability(durability)
                .build()
                .await
                .expect("a fresh file opens")
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_backend_passes_the_conformance_suite() {
    conforms_with(Durability::Immediate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_backend_passes_the_conformance_suite_with_periodic_durability() {
    conforms_with(Durability::Periodic(Duration::from_millis(50))).await;
}
