//! Support code shared by the load-protection tests (refresh-ahead, load
//! timeouts, stale-if-error, negative caching, bypass rules): a system of
//! record whose loads a test can count, hold, fail or empty, and the small
//! helpers for keys, waits and clocks those tests have in common.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tiercache::{Cache, Error, ErrorKind, Loader, Lookup, Result};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::counting_loader::CountingLoader;

/// The system of record behind a cache: its n-th load of `key` answers
/// `"{key} v{n}"`. It counts its loads and can hold them (until
/// [`Source::release`]), fail them with an `Unavailable` error, or find no
/// value. Clones share everything.
#[derive(Clone)]
pub struct Source(Arc<SourceState>);

struct SourceState {
    calls: AtomicUsize,
    finished: AtomicUsize,
    hold: AtomicBool,
    fail: AtomicBool,
    gone: AtomicBool,
    started: Notify,
    release: Semaphore,
}

impl Default for Source {
    fn default() -> Self {
        Source(Arc::new(SourceState {
            calls: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            hold: AtomicBool::new(false),
            fail: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            started: Notify::new(),
            release: Semaphore::new(0),
        }))
    }
}

impl Source {
    /// A source that answers every load at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// A source that holds every load from the start (see
    /// [`hold`](Self::hold)).
    pub fn holding() -> Self {
        let source = Self::new();
        source.hold(true);
        source
    }

    /// How many loads have started.
    pub fn calls(&self) -> usize {
        self.0.calls.load(Ordering::SeqCst)
    }

    /// How many loads have returned.
    pub fn finished(&self) -> usize {
        self.0.finished.load(Ordering::SeqCst)
    }

    /// From now on each load waits for a [`release`](Self::release).
    pub fn hold(&self, on: bool) {
        self.0.hold.store(on, Ordering::SeqCst);
    }

    /// From now on each load fails with an `Unavailable` error.
    pub fn fail(&self, on: bool) {
        self.0.fail.store(on, Ordering::SeqCst);
    }

    /// From now on each load finds no value.
    pub fn gone(&self, on: bool) {
        self.0.gone.store(on, Ordering::SeqCst);
    }

    /// Waits until a held load has started.
    pub async fn started(&self) {
        self.0.started.notified().await;
    }

    /// Lets one held load go on.
    pub fn release(&self) {
        self.0.release.add_permits(1);
    }

    /// One load's work, for the cache's loader or a caller's own future.
    pub async fn answer(&self, key: &str) -> Result<Option<String>> {
        let s = &self.0;
        let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if s.hold.load(Ordering::SeqCst) {
            s.started.notify_one();
            s.release
                .acquire()
                .await
                .expect("the semaphore is never closed")
                .forget();
        }
        s.finished.fetch_add(1, Ordering::SeqCst);
        if s.fail.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorKind::Unavailable, "the source is down"));
        }
        if s.gone.load(Ordering::SeqCst) {
            return Ok(None);
        }
        Ok(Some(format!("{key} v{n}")))
    }

    /// One load's work as a caller's own future for `get_with`: the value
    /// (a source that fails or finds nothing must not be asked this way).
    pub async fn value(&self, key: &str) -> String {
        self.answer(key)
            .await
            .expect("a value source does not fail")
            .expect("a value source finds a value")
    }
}

impl Loader<String, String> for Source {
    async fn load(&self, key: &String) -> Result<Option<String>> {
        self.answer(key).await
    }
}

/// A key of the caches under test.
pub fn key(k: &str) -> String {
    k.to_string()
}

/// What `cache` answers a `get` of `k` with (an error panics).
pub async fn get(cache: &Cache<String, String>, k: &str) -> Option<String> {
    cache.get(&key(k)).await.unwrap()
}

/// What `cache` answers a `lookup` of `k` with (an error panics).
pub async fn lookup(cache: &Cache<String, String>, k: &str) -> Lookup<String> {
    cache.lookup(&key(k)).await.unwrap()
}

/// What `cache` answers an `optionally_get_with` of `k` with, `loader`
/// loading (an error panics).
pub async fn optionally(
    cache: &Cache<String, String>,
    k: &str,
    loader: &CountingLoader,
) -> Option<String> {
    cache
        .optionally_get_with(key(k), loader.optional(k))
        .await
        .unwrap()
}

/// A duration in whole milliseconds, as the caches' clocks count.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// Waits (in real time, at most 5 s) until `done` holds.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Lets background tasks run for a while (100 ms of real time), for checks
/// that nothing starts or for what a finished load does at once.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A `get` of `k` on a task of its own.
pub fn spawn_get(cache: &Cache<String, String>, k: &str) -> JoinHandle<Result<Option<String>>> {
    let (cache, k) = (cache.clone(), key(k));
    tokio::spawn(async move { cache.get(&k).await })
}
