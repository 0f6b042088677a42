//! Write-back end to end: real redb logs in temporary directories, flushed
//! to an in-memory store that can be made to fail, to answer slowly, and
//! that records every write it is asked for.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Codec, Error, ErrorKind, Postcard};
use cache_policies::{CORRUPTED_TABLE, QUEUE_TABLE, Store, WhenFull, WriteBack, WriteBackSettings};
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata};

/// The engine under test: string keys, numbered values, postcard bytes.
type Engine = WriteBack<String, u64, Postcard>;

/// The message of every failure of the test store, so that tests can find
/// it again in a dead letter.
const DOWN: &str = "the rows are down";

/// How long a test waits for something that should happen at once, such as
/// a dropped engine letting go of its file, before it gives up.
const PATIENCE: Duration = Duration::from_secs(5);

/// One write the store was asked to apply: `Some(value)` for a save, `None`
/// for a delete.
type Applied = Option<u64>;

/// An in-memory system of record with fault injection.
#[derive(Default)]
struct Rows {
    rows: Mutex<HashMap<String, u64>>,
    /// Every write applied, per key, in the order the store applied them.
    history: Mutex<HashMap<String, Vec<Applied>>>,
    /// When each call of `save_many` and `delete_many` began, failed ones
    /// included.
    calls: Mutex<Vec<Instant>>,
    /// When the store was asked for each key, failed tries included.
    tries: Mutex<HashMap<String, Vec<Instant>>>,
    /// While set, every call fails.
    down: AtomicBool,
    /// This many further calls fail, then the store recovers by itself.
    fail_next: AtomicUsize,
    /// How long each call takes before it answers.
    latency: Duration,
}

impl Rows {
    fn up() -> Arc<Self> {
        Arc::new(Rows::default())
    }

    fn down() -> Arc<Self> {
        let rows = Rows::default();
        rows.down.store(true, Ordering::SeqCst);
        Arc::new(rows)
    }

    fn failing_first(calls: usize) -> Arc<Self> {
        let rows = Rows::default();
        rows.fail_next.store(calls, Ordering::SeqCst);
        Arc::new(rows)
    }

    fn slow(latency: Duration) -> Arc<Self> {
        Arc::new(Rows {
            latency,
            ..Rows::default()
        })
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Puts a row in place without it counting as a write of the engine.
    fn preload(&self, key: &str, value: u64) {
        self.rows.lock().unwrap().insert(key.to_owned(), value);
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.rows.lock().unwrap().get(key).copied()
    }

    fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    fn history(&self, key: &str) -> Vec<Applied> {
        self.history
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn call_times(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }

    fn tries(&self, key: &str) -> Vec<Instant> {
        self.tries
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// One call of the store for `keys`: counted, delayed, and failed if
    /// the store is down or still has failures to hand out.
    async fn call<'a>(&self, keys: impl Iterator<Item = &'a String>) -> cache_core::Result<()> {
        let now = Instant::now();
        self.calls.lock().unwrap().push(now);
        {
            let mut tries = self.tries.lock().unwrap();
            for key in keys {
                tries.entry(key.clone()).or_default().push(now);
            }
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let failing_next = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.down.load(Ordering::SeqCst) || failing_next {
            return Err(Error::new(ErrorKind::Unavailable, DOWN));
        }
        Ok(())
    }

    fn apply(&self, key: &str, write: Applied) {
        let mut rows = self.rows.lock().unwrap();
        match write {
            Some(value) => rows.insert(key.to_owned(), value),
            None => rows.remove(key),
        };
        self.history
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .push(write);
    }
}

impl Store<String, u64> for Rows {
    async fn load(&self, key: &String) -> cache_core::Result<Option<u64>> {
        Ok(self.get(key))
    }

    async fn save(&self, key: &String, value: &u64) -> cache_core::Result<()> {
        self.save_many(&[(key.clone(), *value)]).await
    }

    async fn delete(&self, key: &String) -> cache_core::Result<()> {
        self.delete_many(std::slice::from_ref(key)).await
    }

    async fn save_many(&self, entries: &[(String, u64)]) -> cache_core::Result<()> {
        self.call(entries.iter().map(|(key, _)| key)).await?;
        for (key, value) in entries {
            self.apply(key, Some(*value));
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> cache_core::Result<()> {
        self.call(keys.iter()).await?;
        for key in keys {
            self.apply(key, None);
        }
        Ok(())
    }
}

/// The encoded form of a key, as the cache hands it to write-back.
fn key(name: &str) -> Bytes {
    Bytes::from(Postcard.encode(name).unwrap())
}

/// The encoded form of a value.
fn value(v: u64) -> Bytes {
    Bytes::from(Postcard.encode(&v).unwrap())
}

fn name(i: usize) -> String {
    format!("k{i}")
}

/// Settings that flush and retry within milliseconds, so that the tests
/// run fast, and that never give a write up unless a test says so.
fn fast() -> WriteBackSettings {
    WriteBackSettings {
        flush_interval: Duration::from_millis(5),
        first_retry: Duration::from_millis(5),
        last_retry: Duration::from_millis(20),
        max_retries: 1_000,
        ..WriteBackSettings::default()
    }
}

fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("write-back.redb")
}

/// Opens the engine, waiting while a dropped engine still holds the file:
/// its flusher and its log's thread stop a moment after the drop, not
/// during it.
async fn open(path: &Path, settings: WriteBackSettings, rows: &Arc<Rows>) -> Engine {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match Engine::open(path, settings.clone(), rows.clone(), Postcard).await {
            Ok(engine) => return engine,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("the write-back log did not open: {e}"),
        }
    }
}

/// Opens the log file directly with redb, once no engine holds it any more.
async fn open_file(path: &Path) -> redb::Database {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match redb::Database::create(path) {
            Ok(db) => return db,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("the log file was not let go of: {e}"),
        }
    }
}

/// Flushes, failing the test rather than hanging it if the flush never
/// finishes.
async fn flush(wb: &Engine) {
    tokio::time::timeout(PATIENCE, wb.flush())
        .await
        .expect("the flush did not finish")
        .unwrap();
}

/// Waits until `done` holds, polling, and fails the test if it never does.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Drops the engine and lets its flusher run, so that it sees the drop and
/// lets go of the log.
async fn close(engine: Engine) {
    drop(engine);
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn the_store_ends_with_each_keys_last_write_in_fewer_calls_than_writes() {
    // A slow store, so that later rounds are written while earlier ones
    // are still being saved; a long interval and a batch larger than the
    // keys, so that only the flushes of the test reach the store, and what
    // was written between two of them must be coalesced.
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::slow(Duration::from_millis(2));
    let settings = WriteBackSettings {
        flush_interval: Duration::from_secs(10),
        max_batch: 16,
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    let keys = 12;
    let rounds = 10;
    // k0 is deleted in round 4, not written in round 5, whose flush must
    // therefore take the delete to the store, and saved again after it;
    // k1 is deleted last.
    let skipped = |i: usize, round: u64| i == 0 && round == 5;
    let write = |i: usize, round: u64| {
        let wb = &wb;
        async move {
            let k = key(&name(i));
            if (i == 0 && round == 4) || (i == 1 && round == rounds - 1) {
                wb.delete(k).await
            } else {
                wb.save(k, value(round)).await
            }
        }
    };
    for round in 0..rounds {
        let writes = futures::future::try_join_all(
            (0..keys)
                .filter(|&i| !skipped(i, round))
                .map(|i| write(i, round)),
        );
        if round % 3 == 2 {
            // A flush under way while the next writes arrive: a key written
            // while its older write is in flight must keep the newer one.
            let (written, ()) = futures::future::join(writes, flush(&wb)).await;
            written.unwrap();
        } else {
            writes.await.unwrap();
        }
    }
    flush(&wb).await;

    assert_eq!(wb.dirty_len(), 0);
    assert_eq!(
        rows.get("k0"),
        Some(rounds - 1),
        "re-saved after its delete"
    );
    assert_eq!(rows.get("k1"), None, "its last write was a delete");
    for i in 2..keys {
        assert_eq!(rows.get(&name(i)), Some(rounds - 1), "{}", name(i));
    }
    assert_eq!(rows.len(), keys - 1);

    // Each value is the round that wrote it, so a key's saves never go
    // back to a smaller one; and k0 is never saved from before its delete
    // once the delete has reached the store.
    for i in 0..keys {
        let history = rows.history(&name(i));
        let saves: Vec<u64> = history.iter().flatten().copied().collect();
        assert!(
            saves.is_sorted(),
            "{} went back to an older value: {history:?}",
            name(i)
        );
        if i == 0 {
            let after_delete = history
                .iter()
                .rposition(Option::is_none)
                .expect("the delete reached the store");
            assert!(
                history[after_delete + 1..]
                    .iter()
                    .all(|w| w.is_some_and(|v| v > 4)),
                "k0 was saved from before its delete after it: {history:?}"
            );
        }
    }

    let stats = wb.stats();
    let writes = keys * rounds as usize - 1;
    assert_eq!(stats.appended, writes as u64);
    assert!(
        stats.saved + stats.deleted < stats.appended,
        "nothing was coalesced: {stats:?}"
    );
    assert!(
        rows.calls() < writes,
        "{} store calls for {writes} writes",
        rows.calls()
    );
}

#[tokio::test]
async fn a_write_made_while_its_key_is_being_saved_is_saved_after_it() {
    // The first save of the key takes 50 ms; the second write arrives in
    // the middle of it. When the first save settles, the key must stay
    // dirty with the second write, not be marked clean.
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::slow(Duration::from_millis(50));
    let settings = WriteBackSettings {
        flush_interval: Duration::from_secs(10),
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    let k = key("k");
    wb.save(k.clone(), value(1)).await.unwrap();
    let rewrite = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        wb.save(k.clone(), value(2)).await
    };
    let ((), rewritten) = futures::future::join(flush(&wb), rewrite).await;
    rewritten.unwrap();
    assert_eq!(
        wb.dirty(&k),
        Some(Some(value(2))),
        "the newer write was lost when the older one settled"
    );
    flush(&wb).await;
    assert_eq!(rows.history("k"), [Some(1), Some(2)]);
    assert_eq!(rows.get("k"), Some(2));
    assert!(!wb.is_dirty(&k));
}

#[tokio::test]
async fn a_write_made_while_its_key_is_being_saved_survives_a_restart() {
    // As above, but the store goes down once the first save is in, and the
    // engine stops before the second write reaches it: settling the first
    // write must not have taken the second out of the log.
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let rows = Rows::slow(Duration::from_millis(50));
    let settings = WriteBackSettings {
        flush_interval: Duration::from_secs(10),
        ..fast()
    };
    let wb = open(&path, settings.clone(), &rows).await;
    let k = key("k");
    wb.save(k.clone(), value(1)).await.unwrap();
    let rewrite = async {
        tokio::time::sleep(Duration::from_millis(15)).await;
        wb.save(k.clone(), value(2)).await
    };
    let ((), rewritten) = futures::future::join(flush(&wb), rewrite).await;
    rewritten.unwrap();
    // The store answers only after its latency, so a save of the second
    // write already under way fails too.
    rows.set_down(true);
    assert_eq!(rows.get("k"), Some(1));
    close(wb).await;

    let up = Rows::up();
    let wb = open(&path, settings, &up).await;
    assert_eq!(wb.stats().replayed, 1, "the second write left the log");
    assert_eq!(wb.dirty(&k), Some(Some(value(2))));
    flush(&wb).await;
    assert_eq!(up.get("k"), Some(2));
}

#[tokio::test]
async fn a_failed_write_is_tried_again_only_after_a_backoff_that_doubles() {
    // A store that is down for good, a key that is never given up on, and
    // waits long enough to measure: 20 ms, 40 ms, then 80 ms, the cap (the
    // jitter only ever lengthens a wait). Fresh keys keep arriving
    // meanwhile, so the flusher always has other work to take the waiting
    // key along with.
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    let settings = WriteBackSettings {
        first_retry: Duration::from_millis(20),
        last_retry: Duration::from_millis(80),
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    wb.save(key("k"), value(1)).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let mut fresh = 0;
    while rows.tries("k").len() < 4 {
        assert!(Instant::now() < deadline, "k was not tried four times");
        wb.save(key(&format!("fresh{fresh}")), value(fresh))
            .await
            .unwrap();
        fresh += 1;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let tries = rows.tries("k");
    let waits: Vec<Duration> = tries.windows(2).map(|w| w[1] - w[0]).collect();
    for (wait, least) in waits.iter().zip([20, 40, 80]) {
        assert!(
            *wait >= Duration::from_millis(least),
            "tried again after {wait:?}, before its backoff of {least} ms: {waits:?}"
        );
    }
    // The flusher did call the store for other keys while k waited, and
    // left k out of those calls.
    let (first, last) = (tries[0], tries[tries.len() - 1]);
    let others = rows
        .call_times()
        .into_iter()
        .filter(|t| first < *t && *t < last && !tries.contains(t))
        .count();
    assert!(others > 0, "no other key was tried while k waited");
    assert!(wb.is_dirty(&key("k")));
    assert_eq!(wb.stats().dead_lettered, 0);
}

#[tokio::test]
async fn writes_are_accepted_during_an_outage_and_all_reach_the_store_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    let wb = open(&log_path(&dir), fast(), &rows).await;
    for i in 0..10 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    // The flusher tries, fails and backs off a few times.
    wait_until("the flusher tries the store", || rows.calls() >= 3).await;
    assert_eq!(rows.len(), 0);
    // The outage goes on: writes are still acknowledged, from the log.
    for i in 10..20 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    assert_eq!(wb.dirty_len(), 20);

    rows.set_down(false);
    flush(&wb).await;
    for i in 0..20 {
        assert_eq!(rows.get(&name(i)), Some(i as u64), "{}", name(i));
    }
    let stats = wb.stats();
    assert!(stats.retries > 0, "{stats:?}");
    assert_eq!(stats.dead_letters, 0);
    assert_eq!(stats.dead_lettered, 0);
    assert_eq!(stats.saved, 20);
    assert!(wb.dead_letters().await.unwrap().is_empty());
    assert_eq!(wb.dirty_len(), 0);
}

#[tokio::test]
async fn a_store_that_recovers_by_itself_loses_nothing() {
    // The first four calls fail, then the store works: the writes that
    // failed are retried after their backoff, without anyone's help.
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::failing_first(4);
    let settings = WriteBackSettings {
        max_retries: 10,
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    for i in 0..8 {
        wb.save(key(&name(i)), value(100 + i as u64)).await.unwrap();
    }
    flush(&wb).await;
    for i in 0..8 {
        assert_eq!(rows.get(&name(i)), Some(100 + i as u64));
    }
    assert!(wb.stats().retries > 0);
    assert_eq!(wb.stats().dead_letters, 0);
}

#[tokio::test]
async fn writes_the_store_keeps_refusing_become_dead_letters_that_can_be_retried_or_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    // Rows the engine will try to delete, and one whose new write will be
    // discarded, so that the end shows which writes arrived.
    rows.preload("k1", 11);
    rows.preload("k5", 55);
    let settings = WriteBackSettings {
        max_retries: 3,
        first_retry: Duration::from_millis(1),
        last_retry: Duration::from_millis(4),
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    for i in 0..5 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    wb.delete(key("k5")).await.unwrap();
    // Every write is tried three times and then gives up, so a flush
    // finishes although nothing reached the store.
    flush(&wb).await;
    assert_eq!(wb.dirty_len(), 0);
    let stats = wb.stats();
    assert_eq!(stats.dead_letters, 6);
    assert_eq!(stats.dead_lettered, 6);
    // Two failures of each write were scheduled again; the third was not.
    assert_eq!(stats.retries, 12);

    let mut dead = wb.dead_letters().await.unwrap();
    dead.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = dead.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["k0", "k1", "k2", "k3", "k4", "k5"]);
    for (i, d) in dead.iter().enumerate() {
        let expected = (i < 5).then_some(i as u64);
        assert_eq!(d.value, expected, "{}", d.key);
        assert_eq!(d.tries, 3, "{}", d.key);
        assert!(d.error.contains(DOWN), "{}: {}", d.key, d.error);
        assert!(d.failed_at_ms > 0);
    }

    // A newer write of a dead key takes its dead letter's place: it is
    // queued at once, and when it dies too its own value is what is kept.
    // (The checks before the next await cannot race the flusher, which
    // runs on this test's thread; the new write may die again after them.)
    wb.save(key("k0"), value(100)).await.unwrap();
    assert_eq!(wb.stats().dead_letters, 5);
    assert_eq!(wb.dirty(&key("k0")), Some(Some(value(100))));
    assert!(
        !wb.dead_letters()
            .await
            .unwrap()
            .iter()
            .any(|d| d.key == "k0" && d.value == Some(0)),
        "the older write of k0 is still a dead letter"
    );
    flush(&wb).await;
    let dead = wb.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 6);
    let k0 = dead.iter().find(|d| d.key == "k0").unwrap();
    assert_eq!(k0.value, Some(100));
    assert_eq!(k0.tries, 3);
    assert_eq!(wb.stats().dead_letters, 6);

    // The store is repaired; the operator drops one write and retries the
    // rest.
    rows.set_down(false);
    assert_eq!(wb.discard_dead(Some(&["k1".to_owned()])).await.unwrap(), 1);
    assert_eq!(wb.discard_dead(Some(&["k1".to_owned()])).await.unwrap(), 0);
    assert_eq!(wb.stats().dead_letters, 5);
    assert_eq!(wb.retry_dead(None).await.unwrap(), 5);
    flush(&wb).await;
    assert_eq!(rows.get("k0"), Some(100));
    assert_eq!(rows.get("k1"), Some(11), "the discarded write arrived");
    for i in 2..5 {
        assert_eq!(rows.get(&name(i)), Some(i as u64));
    }
    assert_eq!(rows.get("k5"), None, "the retried delete did not arrive");
    assert!(wb.dead_letters().await.unwrap().is_empty());
    assert_eq!(wb.stats().dead_letters, 0);
    assert_eq!(wb.dirty_len(), 0);
}

#[tokio::test]
async fn writes_acknowledged_before_a_restart_are_flushed_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let down = Rows::down();
    let wb = open(&path, fast(), &down).await;
    for i in 0..8 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    // Rewrites before the restart: only the last one is replayed.
    wb.save(key("k0"), value(1_000)).await.unwrap();
    wb.save(key("k0"), value(2_000)).await.unwrap();
    wb.delete(key("gone")).await.unwrap();
    assert_eq!(down.len(), 0);
    close(wb).await;

    // The store is back after the restart, and still holds the row whose
    // delete was acknowledged before it.
    let up = Rows::up();
    up.preload("gone", 1);
    let settings = WriteBackSettings {
        flush_interval: Duration::from_secs(10),
        ..fast()
    };
    let wb = open(&path, settings, &up).await;
    let stats = wb.stats();
    assert_eq!(stats.replayed, 9);
    assert_eq!(stats.corrupted, 0);
    assert_eq!(wb.dirty_len(), 9);
    assert_eq!(wb.dirty(&key("k0")), Some(Some(value(2_000))));
    assert_eq!(wb.dirty(&key("gone")), Some(None));

    flush(&wb).await;
    assert_eq!(up.get("k0"), Some(2_000));
    for i in 1..8 {
        assert_eq!(up.get(&name(i)), Some(i as u64));
    }
    assert_eq!(up.get("gone"), None);
    assert_eq!(
        up.history("k0"),
        [Some(2_000)],
        "an older write was replayed"
    );
    assert_eq!(wb.stats().saved, 8);
    assert_eq!(wb.stats().deleted, 1);
    assert_eq!(wb.dirty_len(), 0);
}

#[tokio::test]
async fn a_damaged_record_is_set_aside_on_replay_and_the_rest_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let down = Rows::down();
    let wb = open(&path, fast(), &down).await;
    for i in 0..5 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    close(wb).await;

    // One byte of k2's value flips on disk: the record still has the right
    // shape, so only its checksum can tell.
    let damaged_key = key("k2");
    let damaged = damage_row(&path, "k2").await;

    let up = Rows::up();
    let wb = open(&path, fast(), &up).await;
    let stats = wb.stats();
    assert_eq!(stats.corrupted, 1);
    assert_eq!(stats.replayed, 4);
    assert_eq!(wb.dirty(&damaged_key), None, "a damaged write was replayed");
    flush(&wb).await;
    for i in [0, 1, 3, 4] {
        assert_eq!(up.get(&name(i)), Some(i as u64), "{}", name(i));
    }
    assert_eq!(up.get("k2"), None, "a damaged write reached the store");
    assert!(up.history("k2").is_empty());
    close(wb).await;

    // The damaged record is kept as it was found, for inspection, and the
    // queue is empty now that the rest is flushed.
    let db = open_file(&path).await;
    let txn = db.begin_read().unwrap();
    let corrupted = txn.open_table(CORRUPTED_TABLE).unwrap();
    assert_eq!(corrupted.len().unwrap(), 1);
    let kept = corrupted.get(damaged.0).unwrap().expect("set aside");
    assert_eq!(kept.value(), &damaged.1[..]);
    let queue = txn.open_table(QUEUE_TABLE).unwrap();
    assert_eq!(queue.len().unwrap(), 0);
}

/// Settings for the bound tests: room for four dirty keys, and a store
/// that is retried often but never given up on.
fn bounded(when_full: WhenFull) -> WriteBackSettings {
    WriteBackSettings {
        max_dirty: 4,
        when_full,
        ..fast()
    }
}

#[tokio::test]
async fn a_full_log_refuses_a_new_key_but_takes_rewrites_of_dirty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    let wb = open(&log_path(&dir), bounded(WhenFull::Fail), &rows).await;
    for i in 0..4 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    let e = tokio::time::timeout(PATIENCE, wb.save(key("k4"), value(4)))
        .await
        .expect("a write waited for room although the settings say fail")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(!wb.is_dirty(&key("k4")), "a refused write was queued");
    assert!(wb.stats().full >= 1);
    // A dirty key has its room already.
    wb.save(key("k2"), value(22)).await.unwrap();
    wb.delete(key("k3")).await.unwrap();
    assert_eq!(wb.dirty_len(), 4);
    assert_eq!(wb.dirty(&key("k2")), Some(Some(value(22))));

    // Once the store takes the dirty keys there is room again.
    rows.set_down(false);
    flush(&wb).await;
    wb.save(key("k4"), value(4)).await.unwrap();
    flush(&wb).await;
    assert_eq!(rows.get("k2"), Some(22));
    assert_eq!(rows.get("k3"), None);
    assert_eq!(rows.get("k4"), Some(4));
}

#[tokio::test]
async fn a_rewrite_under_way_takes_no_room_from_a_new_key() {
    // Three of four keys are dirty. A rewrite of one of them and the write
    // of a fourth key arrive together: the rewrite needs no room, so the
    // fourth key fits, even with the settings that fail rather than wait.
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    let wb = open(&log_path(&dir), bounded(WhenFull::Fail), &rows).await;
    for i in 0..3 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    let (rewritten, added) =
        futures::future::join(wb.save(key("k0"), value(10)), wb.save(key("k3"), value(3))).await;
    rewritten.unwrap();
    added.expect("a rewrite under way took the room of a new key");
    assert_eq!(wb.dirty_len(), 4);
    assert_eq!(wb.stats().full, 0);
    // Now the log is full.
    let e = wb.save(key("k4"), value(4)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_full_log_makes_a_new_key_wait_until_the_store_takes_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::down();
    let wb = open(&log_path(&dir), bounded(WhenFull::Wait), &rows).await;
    for i in 0..4 {
        wb.save(key(&name(i)), value(i as u64)).await.unwrap();
    }
    let mut fifth = pin!(wb.save(key("k4"), value(4)));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), fifth.as_mut())
            .await
            .is_err(),
        "a fifth key was taken while the store was down"
    );
    assert!(!wb.is_dirty(&key("k4")));
    assert!(wb.stats().full >= 1);
    // A rewrite of a dirty key does not wait behind it.
    tokio::time::timeout(Duration::from_secs(1), wb.save(key("k0"), value(10)))
        .await
        .expect("a rewrite waited for room")
        .unwrap();

    rows.set_down(false);
    tokio::time::timeout(PATIENCE, fifth)
        .await
        .expect("the fifth key still waits after the store recovered")
        .unwrap();
    flush(&wb).await;
    assert_eq!(rows.get("k0"), Some(10));
    for i in 1..5 {
        assert_eq!(rows.get(&name(i)), Some(i as u64));
    }
}

#[tokio::test]
async fn reads_see_a_queued_save_or_delete_until_it_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let rows = Rows::up();
    rows.preload("k1", 1);
    // A long interval keeps the writes queued until the test flushes.
    let settings = WriteBackSettings {
        flush_interval: Duration::from_secs(10),
        ..fast()
    };
    let wb = open(&log_path(&dir), settings, &rows).await;
    wb.save(key("k0"), value(7)).await.unwrap();
    wb.save(key("k0"), value(8)).await.unwrap();
    wb.delete(key("k1")).await.unwrap();
    assert_eq!(wb.dirty(&key("k0")), Some(Some(value(8))));
    assert_eq!(wb.dirty(&key("k1")), Some(None), "a queued delete");
    assert_eq!(wb.dirty(&key("k2")), None, "a key never written");
    assert!(wb.is_dirty(&key("k0")) && wb.is_dirty(&key("k1")));
    assert_eq!(rows.get("k1"), Some(1), "flushed before the interval");

    flush(&wb).await;
    assert_eq!(wb.dirty(&key("k0")), None);
    assert_eq!(wb.dirty(&key("k1")), None);
    assert!(!wb.is_dirty(&key("k0")) && !wb.is_dirty(&key("k1")));
    assert_eq!(rows.get("k0"), Some(8));
    assert_eq!(rows.get("k1"), None);
}

#[tokio::test]
async fn settings_that_cannot_work_are_refused_before_a_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let rows = Rows::up();
    for settings in [
        WriteBackSettings {
            max_batch: 0,
            ..fast()
        },
        WriteBackSettings {
            max_retries: 0,
            ..fast()
        },
        WriteBackSettings {
            max_dirty: 0,
            ..fast()
        },
    ] {
        let e = Engine::open(&path, settings.clone(), rows.clone(), Postcard)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{settings:?}");
        assert!(!path.exists(), "a log was made for {settings:?}");
    }
}

/// Flips a byte in the value of the queued row of `name`, on disk, and
/// returns the row's number and its damaged bytes. Rows are stored under
/// the write's number; each starts with the format, the operation and the
/// key's 4-byte length, then the key, then the value, and the checksum
/// ends it: the record keeps its shape, so only the checksum can tell.
async fn damage_row(path: &Path, name: &str) -> (u64, Vec<u8>) {
    let damaged_key = key(name);
    let db = open_file(path).await;
    let txn = db.begin_write().unwrap();
    let damaged = {
        let mut queue = txn.open_table(QUEUE_TABLE).unwrap();
        let (seq, mut record) = queue
            .iter()
            .unwrap()
            .map(|row| row.unwrap())
            .map(|(k, v)| (k.value(), v.value().to_vec()))
            .find(|(_, r)| r.get(6..6 + damaged_key.len()) == Some(&damaged_key[..]))
            .expect("the key is queued");
        assert!(record.len() > 6 + damaged_key.len() + 4, "{record:?}");
        let in_value = record.len() - 5;
        record[in_value] ^= 0xff;
        queue.insert(seq, &record[..]).unwrap();
        (seq, record)
    };
    txn.commit().unwrap();
    damaged
}

#[tokio::test]
async fn records_set_aside_are_never_overwritten_by_later_ones() {
    // A drained log numbers its next writes on from the records it set
    // aside, so a second damaged record does not replace the first.
    let dir = tempfile::tempdir().unwrap();
    let path = log_path(&dir);
    let mut set_aside = Vec::new();
    for round in 0..2 {
        let down = Rows::down();
        let wb = open(&path, fast(), &down).await;
        wb.save(key(&format!("a{round}")), value(1)).await.unwrap();
        wb.save(key(&format!("b{round}")), value(2)).await.unwrap();
        close(wb).await;
        set_aside.push(damage_row(&path, &format!("a{round}")).await.0);
        let up = Rows::up();
        let wb = open(&path, fast(), &up).await;
        assert_eq!(wb.stats().corrupted, 1);
        flush(&wb).await;
        close(wb).await;
    }
    assert_ne!(set_aside[0], set_aside[1]);
    let db = open_file(&path).await;
    let txn = db.begin_read().unwrap();
    let corrupted = txn.open_table(CORRUPTED_TABLE).unwrap();
    assert_eq!(corrupted.len().unwrap(), 2, "both damaged records are kept");
}
