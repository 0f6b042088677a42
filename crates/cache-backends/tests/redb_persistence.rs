//! Entries outlive the process that wrote them: a second process sees every
//! unexpired entry whose commit was durable, and none that had expired.
//!
//! Each test runs its own test binary again as the writer (selected by an
//! environment variable), which exits without closing the file, as a
//! crashed process would; the test then opens the file itself.
#![cfg(feature = "redb")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_backends::redb::{Durability, RedbBackend};
use cache_core::{Backend, Entry, Lookup, ManualClock, Meta};

const ROLE: &str = "TIERCACHE_REDB_TEST_WRITER";
const PATH: &str = "TIERCACHE_REDB_TEST_PATH";
const NOW: &str = "TIERCACHE_REDB_TEST_NOW_MS";

/// Runs `test` in a child process as the writer, and waits for it.
fn run_writer(test: &str, path: &Path, now_ms: u64) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, test)
        .env(PATH, path)
        .env(NOW, now_ms.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the writer process failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The writer's settings when this process is the writer for `test`.
fn writer_role(test: &str) -> Option<(std::path::PathBuf, ManualClock)> {
    if std::env::var(ROLE).ok()? != test {
        return None;
    }
    let path = std::env::var_os(PATH).unwrap().into();
    let now = std::env::var(NOW).unwrap().parse().unwrap();
    Some((path, ManualClock::new(now)))
}

fn entry(clock: &ManualClock, ttl: Option<Duration>, i: u8) -> Entry {
    let meta = match ttl {
        Some(ttl) => Meta::with_ttl(clock.now_ms(), ttl).unwrap(),
        None => Meta::new(clock.now_ms()),
    };
    Entry::new(vec![i; 100], meta)
}

const SHORT: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_sees_acknowledged_unexpired_entries() {
    const TEST: &str = "a_second_process_sees_acknowledged_unexpired_entries";
    if let Some((path, clock)) = writer_role(TEST) {
        let tier = RedbBackend::builder(path)
            .clock(clock.clock())
            .build()
            .await
            .unwrap();
        for i in 0..10u8 {
            for (name, ttl) in [("keep", None), ("long", Some(LONG)), ("short", Some(SHORT))] {
                let key = Bytes::from(format!("{name}-{i}"));
                tier.insert(key, entry(&clock, ttl, i)).await.unwrap();
            }
        }
        // Exit without dropping the tier: only what the acknowledged commits
        // made durable may be relied on.
        std::process::exit(0);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.redb");
    let start = ManualClock::default();
    run_writer(TEST, &path, start.now_ms());

    let clock = ManualClock::new(start.now_ms());
    clock.advance(SHORT * 2);
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    for i in 0..10u8 {
        for name in ["keep", "long"] {
            let key = format!("{name}-{i}");
            let ttl = (name == "long").then_some(LONG);
            let got = tier.get(key.as_bytes()).await.unwrap().into_hit();
            assert_eq!(got, Some(entry(&start, ttl, i)), "{key}");
        }
        let key = format!("short-{i}");
        assert_eq!(
            tier.get(key.as_bytes()).await.unwrap(),
            Lookup::Miss,
            "{key}"
        );
    }
    assert_eq!(
        tier.sweep().await.unwrap(),
        10,
        "the expired entries were stored"
    );
    assert_eq!(tier.len().await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_durability_reads_back_at_once_and_is_durable_after_the_flush() {
    const TEST: &str = "periodic_durability_reads_back_at_once_and_is_durable_after_the_flush";
    if let Some((path, clock)) = writer_role(TEST) {
        let tier = RedbBackend::builder(path)
            .clock(clock.clock())
            .durability(Durability::Periodic(Duration::from_millis(50)))
            .build()
            .await
            .unwrap();
        for i in 0..10u8 {
            tier.insert(Bytes::from(format!("k{i}")), entry(&clock, None, i))
                .await
                .unwrap();
            let got = tier.get(format!("k{i}").as_bytes()).await.unwrap();
            assert_eq!(got.into_hit(), Some(entry(&clock, None, i)));
        }
        // The writer commits in order, so a durable commit counted after
        // the last insert was acknowledged covers every insert.
        let before = tier.stats().durable_commits;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tier.stats().durable_commits == before {
            assert!(Instant::now() < deadline, "no periodic durable commit");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::process::exit(0);
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("periodic.redb");
    let clock = ManualClock::default();
    run_writer(TEST, &path, clock.now_ms());
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .build()
        .await
        .unwrap();
    for i in 0..10u8 {
        let got = tier.get(format!("k{i}").as_bytes()).await.unwrap();
        assert_eq!(got.into_hit(), Some(entry(&clock, None, i)), "k{i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_durability_loses_nothing_on_a_clean_drop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drop.redb");
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        // Far longer than the test: only the drop can make it durable.
        .durability(Durability::Periodic(Duration::from_secs(3600)))
        .build()
        .await
        .unwrap();
    let other = tier.clone();
    tier.insert(Bytes::from_static(b"a"), entry(&clock, None, 1))
        .await
        .unwrap();
    drop(tier);
    other
        .insert(Bytes::from_static(b"b"), entry(&clock, None, 2))
        .await
        .unwrap();
    drop(other);
    let tier = RedbBackend::builder(&path)
        .clock(clock.clock())
        .build()
        .await
        .unwrap();
    assert_eq!(tier.len().await.unwrap(), 2);
    assert!(tier.get(b"a").await.unwrap().is_hit());
    assert!(tier.get(b"b").await.unwrap().is_hit());
}
