//! Redis fails while tasks hammer the tier, killed outright or frozen: no
//! call outlasts the command timeout by more than a little slack, every
//! failure is `Unavailable` or `Timeout`, the circuit breaker opens, and
//! once the server is back the same backend recovers by itself.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_backends::redis::RedisBackend;
use cache_core::{Backend, Entry, ErrorKind, Meta};
use tiercache_tests::{RedisServer, connected};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(200);
/// Scheduling on a loaded machine, on top of the timeout.
const SLACK: Duration = Duration::from_millis(250);
const TASKS: u64 = 8;

/// What the load tasks saw.
#[derive(Default)]
struct Seen {
    ok: AtomicU64,
    failed: AtomicU64,
    timeouts: AtomicU64,
    /// The slowest call and how it ended.
    slowest: Mutex<(Duration, String)>,
    /// Failures of a kind other than Unavailable or Timeout.
    wrong_kinds: Mutex<Vec<String>>,
}

/// Tasks calling the tier in a loop until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn hammer(tier: RedisBackend, task: u64, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let key = Bytes::from(format!("t{task}-{}", i % 64));
        let started = Instant::now();
        let result = if i.is_multiple_of(2) {
            let value = Bytes::from(vec![task as u8; 64]);
            tier.insert(key, Entry::new(value, Meta::new(0))).await
        } else {
            tier.get(&key).await.map(drop)
        };
        let took = started.elapsed();
        {
            let mut slowest = seen.slowest.lock().expect("not poisoned");
            if took > slowest.0 {
                *slowest = (took, format!("{result:?}"));
            }
        }
        match result {
            Ok(()) => {
                seen.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                seen.failed.fetch_add(1, Ordering::Relaxed);
                match e.kind() {
                    ErrorKind::Timeout => {
                        seen.timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    ErrorKind::Unavailable => {}
                    _ => seen
                        .wrong_kinds
                        .lock()
                        .expect("not poisoned")
                        .push(e.to_string()),
                }
                // A failing tier answers at once; a short pause keeps the
                // loop from starving the runtime while the breaker is open.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        i += 1;
    }
}

impl Load {
    fn start(tier: &RedisBackend) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let tasks = (0..TASKS)
            .map(|t| tokio::spawn(hammer(tier.clone(), t, stop.clone(), seen.clone())))
            .collect();
        Load { stop, seen, tasks }
    }

    fn ok(&self) -> u64 {
        self.seen.ok.load(Ordering::Relaxed)
    }

    /// Stops the tasks and checks what every call saw.
    async fn finish(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load task panicked");
        }
        let seen = self.seen;
        let wrong = seen.wrong_kinds.lock().expect("not poisoned");
        assert!(wrong.is_empty(), "failures of other kinds: {wrong:?}");
        drop(wrong);
        let (slowest, how) = seen.slowest.lock().expect("not poisoned").clone();
        assert!(
            slowest <= COMMAND_TIMEOUT + SLACK,
            "a call took {slowest:?} ({how})"
        );
        seen
    }
}

async fn tier_for(server: &RedisServer) -> RedisBackend {
    connected(
        RedisBackend::builder(server.url())
            .command_timeout(COMMAND_TIMEOUT)
            .breaker_threshold(5)
            .breaker_open_for(Duration::from_millis(300))
            .reconnect_delay(Duration::from_millis(20), Duration::from_millis(500)),
    )
    .await
}

/// Waits until a write and a read succeed again; how long that took.
async fn recovers(tier: &RedisBackend) -> Duration {
    let since = Instant::now();
    loop {
        let probe = tier
            .insert("probe".into(), Entry::new(&b"back"[..], Meta::new(0)))
            .await;
        if probe.is_ok() && tier.get(b"probe").await.is_ok_and(|l| l.is_hit()) {
            return since.elapsed();
        }
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "the tier did not recover: {probe:?}, {:?}",
            tier.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tier_survives_redis_being_killed_under_load() {
    let Some(mut server) = RedisServer::start("the_tier_survives_redis_being_killed_under_load")
    else {
        return;
    };
    let tier = tier_for(&server).await;
    let load = Load::start(&tier);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(load.ok() > 0, "the load runs against the live server");

    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = tier.stats();
    assert!(down.breaker_trips >= 1, "the breaker opened: {down:?}");
    assert_eq!(down.connected, 0);
    let ok_while_down = load.ok();

    tokio::task::block_in_place(|| server.restart());
    let recovered = recovers(&tier).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok_after = load.ok();
    let seen = load.finish().await;

    assert!(ok_after > ok_while_down, "the load succeeds again");
    assert!(seen.failed.load(Ordering::Relaxed) > 0);
    let stats = tier.stats();
    assert_eq!(stats.open_breakers, 0, "the breaker closed: {stats:?}");
    eprintln!("killed: recovered {recovered:?} after the restart; {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tier_times_out_on_a_frozen_redis_under_load() {
    let Some(server) = RedisServer::start("the_tier_times_out_on_a_frozen_redis_under_load") else {
        return;
    };
    let tier = tier_for(&server).await;
    let load = Load::start(&tier);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(load.ok() > 0, "the load runs against the live server");

    server.pause();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let frozen = tier.stats();
    assert!(frozen.breaker_trips >= 1, "the breaker opened: {frozen:?}");
    assert!(
        load.seen.timeouts.load(Ordering::Relaxed) > 0,
        "calls to a frozen server time out"
    );
    let ok_while_frozen = load.ok();

    server.resume();
    let recovered = recovers(&tier).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ok_after = load.ok();
    load.finish().await;

    assert!(ok_after > ok_while_frozen, "the load succeeds again");
    eprintln!(
        "frozen: recovered {recovered:?} after resuming; {:?}",
        tier.stats()
    );
}
