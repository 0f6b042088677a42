//! The write policies against a model of the store behind the cache:
//! random inserts, removals, reads, flushes, outages and (under
//! write-back) restarts, checked against a `HashMap` of what the store
//! must hold in the end. Then the cases a user relies on one at a time:
//! outages and dead letters under write-back, the store's errors under
//! write-through, write-around's invalidation, read-through with single
//! flight, and reads of dirty keys the hot tier has evicted.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tiercache::{Cache, ErrorKind, WritePolicy};
use tiercache_tests::TestStore;

/// The model's key space: small, so that keys are written, removed and
/// read again many times in one run.
const KEYS: u8 = 6;

/// The hot tier's capacity in the model: below the key space, so that
/// reads also go past memory to the disk tier, the log or the store.
const HOT_CAPACITY: u64 = 2;

/// Retries this fast keep a run short while the store is down, and this
/// many of them never give up within one, so nothing is dead-lettered
/// and the store must end up with every acknowledged write.
const FIRST_RETRY: Duration = Duration::from_millis(1);
const LAST_RETRY: Duration = Duration::from_millis(5);
const NEVER_GIVE_UP: u32 = 1_000_000;

/// Longer than any flush the tests wait for may take, so that a flush
/// that never finishes fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(30);

/// A cache and the store behind it, and how the cache is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Setup {
    /// Write-back over the hot tier alone, with its log set explicitly.
    BackInMemory,
    /// Write-back with a disk tier, the log defaulting to a file beside it.
    BackWithDisk,
    /// Write-through over the hot tier alone.
    Through,
    /// Write-around over the hot tier alone.
    Around,
}

impl Setup {
    fn is_back(self) -> bool {
        matches!(self, Setup::BackInMemory | Setup::BackWithDisk)
    }
}

/// Builds the cache of `setup` in front of `store`, with its files in
/// `dir`; building it again on the same `dir` replays its log.
async fn open(
    setup: Setup,
    store: &TestStore<u8, String>,
    dir: &Path,
) -> tiercache::Result<Cache<u8, String>> {
    let builder = Cache::<u8, String>::builder()
        .max_capacity(HOT_CAPACITY)
        .store(store.clone())
        // A short interval flushes in the background between the model's
        // steps, not only when it asks, so that flushes and reads overlap.
        .flush_interval(Duration::from_millis(2))
        .retry_backoff(FIRST_RETRY, LAST_RETRY)
        .max_retries(NEVER_GIVE_UP);
    let builder = match setup {
        Setup::BackInMemory => builder
            .write_policy(WritePolicy::Back)
            .write_back_log(dir.join("log.redb")),
        Setup::BackWithDisk => builder
            .write_policy(WritePolicy::Back)
            .disk(dir.join("cache.redb")),
        Setup::Through => builder.write_policy(WritePolicy::Through),
        Setup::Around => builder.write_policy(WritePolicy::Around),
    };
    builder.build().await
}

#[derive(Clone, Debug)]
enum Op {
    /// Inserts a value no earlier insert used, so that the store's history
    /// tells each write apart.
    Insert(u8),
    Remove(u8),
    Get(u8),
    Flush,
    StoreDown,
    StoreUp,
    /// Drops the cache and builds it again on the same files (write-back
    /// only: the log is replayed).
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..KEYS;
    prop_oneof![
        5 => key.clone().prop_map(Op::Insert),
        2 => key.clone().prop_map(Op::Remove),
        5 => key.prop_map(Op::Get),
        1 => Just(Op::Flush),
        1 => Just(Op::StoreDown),
        1 => Just(Op::StoreUp),
        1 => Just(Op::Reopen),
    ]
}

/// What the store must hold once every acknowledged write has reached
/// it, and every acknowledged write of each key in order.
#[derive(Default)]
struct Model {
    latest: HashMap<u8, String>,
    acknowledged: HashMap<u8, Vec<Option<String>>>,
}

impl Model {
    fn acknowledge(&mut self, k: u8, value: Option<String>) {
        match &value {
            Some(v) => self.latest.insert(k, v.clone()),
            None => self.latest.remove(&k),
        };
        self.acknowledged.entry(k).or_default().push(value);
    }
}

/// Whether the store's history of a key is its acknowledged writes in
/// order, some left out (write-back coalesces a key's writes and saves
/// only the latest) and some repeated (a write reaches the store at least
/// once: a retried batch or a replayed log saves it again).
fn in_acknowledged_order(history: &[Option<String>], acknowledged: &[Option<String>]) -> bool {
    let mut at = 0;
    for change in history {
        if at > 0 && acknowledged[at - 1] == *change {
            continue;
        }
        match acknowledged[at..].iter().position(|a| a == change) {
            Some(i) => at += i + 1,
            None => return false,
        }
    }
    true
}

async fn run(setup: Setup, preloaded: BTreeSet<u8>, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::<u8, String>::new();
    let mut model = Model::default();
    for &k in &preloaded {
        store.preload(k, format!("pre{k}"));
        model.latest.insert(k, format!("pre{k}"));
    }
    let mut down = false;
    let mut cache = Some(open(setup, &store, dir.path()).await.unwrap());
    for (i, op) in ops.into_iter().enumerate() {
        let c = cache.as_ref().expect("a cache between steps");
        match op {
            Op::Insert(k) => {
                let v = format!("{k}.{i}");
                let inserted = c.insert(k, v.clone()).await;
                if setup.is_back() || !down {
                    // Write-back accepts writes while the store is down:
                    // the log holds them until it is back.
                    inserted.unwrap_or_else(|e| panic!("step {i}: insert {k}: {e}"));
                    model.acknowledge(k, Some(v));
                } else {
                    // Write-through and write-around wait for the store,
                    // so a refused save is the caller's error, and no
                    // tier changed: later reads see the old value.
                    let e = inserted.expect_err("a save the store refused");
                    assert_eq!(e.kind(), ErrorKind::Unavailable, "step {i}: {e}");
                }
            }
            Op::Remove(k) => {
                let removed = c.remove(&k).await;
                if setup.is_back() || !down {
                    removed.unwrap_or_else(|e| panic!("step {i}: remove {k}: {e}"));
                    model.acknowledge(k, None);
                } else {
                    let e = removed.expect_err("a delete the store refused");
                    assert_eq!(e.kind(), ErrorKind::Unavailable, "step {i}: {e}");
                }
            }
            Op::Get(k) => match c.get(&k).await {
                // Whatever answers (the hot tier, the disk tier, a dirty
                // key's latest write, or the store) answers the latest
                // acknowledged value, never an older copy.
                Ok(found) => assert_eq!(found.as_ref(), model.latest.get(&k), "step {i}: get {k}"),
                // A read that had to load from the store fails while it is
                // down, with the store's own error.
                Err(e) => {
                    assert!(down, "step {i}: get {k} failed with the store up: {e}");
                    assert_eq!(e.kind(), ErrorKind::Unavailable, "step {i}: {e}");
                }
            },
            Op::Flush if setup.is_back() && down => {
                // Under write-back a flush waits for the store; while it is
                // down it returns only if every write had already
                // reached it, and then the store must hold them all.
                if let Ok(flushed) = tokio::time::timeout(Duration::from_millis(5), c.flush()).await
                {
                    flushed.unwrap_or_else(|e| panic!("step {i}: flush: {e}"));
                    assert_eq!(
                        store.contents(),
                        model.latest,
                        "step {i}: flushed while down"
                    );
                }
            }
            Op::Flush => {
                let report = tokio::time::timeout(PATIENCE, c.flush())
                    .await
                    .unwrap_or_else(|_| panic!("step {i}: the flush never finished"))
                    .unwrap_or_else(|e| panic!("step {i}: flush: {e}"));
                assert_eq!(report.dead_lettered, 0, "step {i}");
                assert_eq!(report.dirty, 0, "step {i}: nothing was written during it");
                assert_eq!(c.dirty_len(), 0, "step {i}");
                assert_eq!(store.contents(), model.latest, "step {i}: after a flush");
            }
            Op::StoreDown => {
                store.set_failing(true);
                down = true;
            }
            Op::StoreUp => {
                store.set_failing(false);
                down = false;
            }
            Op::Reopen if setup.is_back() => {
                // No retry here: building the cache again right after the
                // drop must work, since the open waits the moment the
                // dropped cache takes to let its log go.
                drop(cache.take());
                let reopened = open(setup, &store, dir.path()).await;
                cache = Some(reopened.unwrap_or_else(|e| panic!("step {i}: reopen: {e}")));
            }
            Op::Reopen => {}
        }
        if !setup.is_back() {
            // Write-through and write-around change the store before they
            // return, so it matches the model after every step.
            assert_eq!(store.contents(), model.latest, "step {i}: {setup:?}");
        }
    }

    // Once the store is back and a flush has returned, the store holds
    // exactly the latest acknowledged write of every key.
    store.set_failing(false);
    let cache = cache.expect("a cache at the end");
    let report = tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("the final flush finishes")
        .unwrap();
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(cache.dirty_len(), 0);
    assert_eq!(cache.dead_letters().len(), 0);
    assert_eq!(
        store.contents(),
        model.latest,
        "the store after the final flush"
    );
    for k in 0..KEYS {
        assert_eq!(
            cache.get(&k).await.unwrap().as_ref(),
            model.latest.get(&k),
            "final get {k}"
        );
        let history = store.history(&k);
        let acknowledged = model.acknowledged.remove(&k).unwrap_or_default();
        assert!(
            in_acknowledged_order(&history, &acknowledged),
            "key {k}: the store applied {history:?}, the cache acknowledged {acknowledged:?}"
        );
    }
}

fn run_model(setup: Setup, preloaded: BTreeSet<u8>, ops: Vec<Op>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(setup, preloaded, ops));
}

fn preloaded() -> impl Strategy<Value = BTreeSet<u8>> {
    prop::collection::btree_set(0u8..KEYS, 0..=KEYS as usize)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn write_back_in_memory_ends_with_the_store_holding_every_acknowledged_write(
        preloaded in preloaded(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_model(Setup::BackInMemory, preloaded, ops);
    }

    #[test]
    fn write_back_with_a_disk_tier_ends_with_the_store_holding_every_acknowledged_write(
        preloaded in preloaded(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_model(Setup::BackWithDisk, preloaded, ops);
    }

    #[test]
    fn write_through_keeps_the_store_equal_to_every_acknowledged_write(
        preloaded in preloaded(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_model(Setup::Through, preloaded, ops);
    }

    #[test]
    fn write_around_keeps_the_store_equal_to_every_acknowledged_write(
        preloaded in preloaded(),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run_model(Setup::Around, preloaded, ops);
    }
}

#[test]
fn the_history_check_allows_coalescing_and_repeats_but_not_reordering() {
    let s = |v: &str| Some(v.to_string());
    let acknowledged = [s("a"), None, s("b"), s("c")];
    assert!(in_acknowledged_order(&[], &acknowledged));
    assert!(in_acknowledged_order(&[s("a"), s("c")], &acknowledged));
    assert!(in_acknowledged_order(
        &[s("a"), s("a"), None, s("c"), s("c")],
        &acknowledged
    ));
    assert!(!in_acknowledged_order(&[s("c"), s("a")], &acknowledged));
    assert!(!in_acknowledged_order(&[s("d")], &acknowledged));
}

/// A write-back cache over the hot tier alone, its log in `dir`.
async fn write_back(
    store: &TestStore<String, String>,
    dir: &Path,
    max_retries: u32,
) -> Cache<String, String> {
    Cache::<String, String>::builder()
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.join("log.redb"))
        // Long, so that only the test's flushes (and full batches) hurry
        // the flusher and each report covers every write before it.
        .flush_interval(Duration::from_secs(10))
        .retry_backoff(FIRST_RETRY, LAST_RETRY)
        .max_retries(max_retries)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_write_back_loses_nothing_and_the_flusher_retries_until_the_store_is_back()
{
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    let cache = write_back(&store, dir.path(), NEVER_GIVE_UP).await;
    store.set_failing(true);
    for i in 0..20 {
        cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    assert_eq!(cache.dirty_len(), 20);
    // The flush starts while the store is down and the store comes back
    // while it waits, so the flush itself sees the retries.
    let recovery = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            store.set_failing(false);
        })
    };
    let report = tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("the flush finishes once the store is back")
        .unwrap();
    recovery.await.unwrap();
    let stats = cache.write_back_stats().expect("write-back has stats");
    assert!(
        report.retries > 0 || stats.retries > 0,
        "{report:?} {stats:?}"
    );
    assert!(store.calls().failed > 0);
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(report.saved, 20, "{report:?}");
    assert_eq!(cache.dirty_len(), 0);
    let expected: HashMap<String, String> = (0..20)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    assert_eq!(store.contents(), expected);
    // Each key reached the store once: retries repeat failed tries only.
    for i in 0..20 {
        assert_eq!(store.history(&format!("k{i}")), [Some(format!("v{i}"))]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_store_keeps_refusing_go_to_the_dead_letters_and_reach_it_when_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    store.preload("gone".to_string(), "old".to_string());
    let cache = write_back(&store, dir.path(), 2).await;
    store.set_failing(true);
    cache.insert("a".into(), "1".into()).await.unwrap();
    cache.insert("b".into(), "2".into()).await.unwrap();
    cache.remove(&"gone".to_string()).await.unwrap();
    let report = tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("a flush ends when the writes are dead-lettered")
        .unwrap();
    assert_eq!(report.dead_lettered, 3, "{report:?}");
    assert_eq!(report.saved + report.deleted, 0);
    assert_eq!(cache.dirty_len(), 0);
    assert!(!cache.is_dirty(&"a".to_string()));
    let dead = cache.dead_letters();
    assert_eq!(dead.len(), 3);
    let mut letters = dead.list().await.unwrap();
    letters.sort_by(|x, y| x.key.cmp(&y.key));
    let listed: Vec<_> = letters
        .iter()
        .map(|d| (d.key.as_str(), d.value.as_deref(), d.tries))
        .collect();
    assert_eq!(
        listed,
        [("a", Some("1"), 2), ("b", Some("2"), 2), ("gone", None, 2)]
    );
    assert!(
        letters.iter().all(|d| d.error.contains("down")),
        "{letters:?}"
    );
    assert_eq!(store.value(&"gone".to_string()).as_deref(), Some("old"));

    store.set_failing(false);
    assert_eq!(dead.retry_all().await.unwrap(), 3);
    let report = tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("the retried writes flush")
        .unwrap();
    assert_eq!((report.saved, report.deleted), (2, 1), "{report:?}");
    assert_eq!(cache.dead_letters().len(), 0);
    assert!(cache.dead_letters().list().await.unwrap().is_empty());
    let expected: HashMap<String, String> = [("a", "1"), ("b", "2")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(store.contents(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_acknowledged_before_a_restart_reach_the_store_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    store.set_failing(true);
    let cache = write_back(&store, dir.path(), NEVER_GIVE_UP).await;
    for i in 0..5 {
        cache
            .insert(format!("k{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    drop(cache);
    store.set_failing(false);
    let cache = write_back(&store, dir.path(), NEVER_GIVE_UP).await;
    assert_eq!(cache.write_back_stats().unwrap().replayed, 5);
    // The replayed writes answer reads before they reach the store.
    assert_eq!(
        cache.get(&"k3".to_string()).await.unwrap().as_deref(),
        Some("v3")
    );
    tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("the replayed writes flush")
        .unwrap();
    assert_eq!(store.contents().len(), 5);
    assert_eq!(store.value(&"k4".to_string()).as_deref(), Some("v4"));
}

/// A cache over a disk tier under `policy`, so that "every tier" means
/// more than memory.
async fn with_disk(
    store: &TestStore<String, String>,
    dir: &Path,
    policy: WritePolicy,
) -> Cache<String, String> {
    Cache::<String, String>::builder()
        .store(store.clone())
        .write_policy(policy)
        .disk(dir.join("cache.redb"))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_insert_the_store_refuses_returns_its_error_and_keeps_the_old_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    let cache = with_disk(&store, dir.path(), WritePolicy::Through).await;
    let k = "k".to_string();
    cache.insert(k.clone(), "old".into()).await.unwrap();
    store.set_failing(true);
    let e = cache.insert(k.clone(), "new".into()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("old"));
    // The disk tier kept the old value too: with memory cleared it
    // answers, without asking the store.
    cache.hot().clear();
    let loads = store.calls().loads;
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("old"));
    assert_eq!(store.calls().loads, loads);
    store.set_failing(false);
    assert_eq!(store.value(&k).as_deref(), Some("old"));
    assert_eq!(store.history(&k), [Some("old".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_removal_deletes_from_the_store_then_from_every_tier() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    let cache = with_disk(&store, dir.path(), WritePolicy::Through).await;
    let k = "k".to_string();
    cache.insert(k.clone(), "v".into()).await.unwrap();

    // A removal the store refuses is the caller's error and leaves the
    // value everywhere.
    store.set_failing(true);
    let e = cache.remove(&k).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("v"));
    store.set_failing(false);
    assert_eq!(store.value(&k).as_deref(), Some("v"));

    cache.remove(&k).await.unwrap();
    assert_eq!(store.value(&k), None);
    assert_eq!(store.history(&k), [Some("v".to_string()), None]);
    assert_eq!(cache.get(&k).await.unwrap(), None);
    // No tier below memory kept it either: memory cleared, the read goes
    // to the store, which has none.
    cache.hot().clear();
    assert_eq!(cache.get(&k).await.unwrap(), None);
    assert!(!cache.contains_key(&k).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_around_insert_saves_to_the_store_and_the_next_read_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = TestStore::new();
    let cache = with_disk(&store, dir.path(), WritePolicy::Around).await;
    let k = "k".to_string();
    cache.insert(k.clone(), "v1".into()).await.unwrap();
    assert_eq!(store.value(&k).as_deref(), Some("v1"));
    assert!(
        !cache.hot().contains_key(&k),
        "write-around skips the cache"
    );
    let loads = store.calls().loads;
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("v1"));
    assert_eq!(store.calls().loads, loads + 1);
    // What a read loaded is cached: the next read does not load again.
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("v1"));
    assert_eq!(store.calls().loads, loads + 1);
    // A new write drops the cached copy, so the next read loads the new
    // value rather than serve the old one.
    cache.insert(k.clone(), "v2".into()).await.unwrap();
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("v2"));
    assert_eq!(store.calls().loads, loads + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_only_the_store_holds_is_read_through_and_then_cached() {
    let store = TestStore::new();
    store.preload("k".to_string(), "stored".to_string());
    let cache = Cache::<String, String>::builder()
        .store(store.clone())
        .build()
        .await
        .unwrap();
    let k = "k".to_string();
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("stored"));
    assert_eq!(cache.get(&k).await.unwrap().as_deref(), Some("stored"));
    assert_eq!(store.calls().loads, 1);
    assert_eq!(cache.get(&"absent".to_string()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_of_a_missing_key_load_it_from_the_store_once() {
    let store = TestStore::new();
    store.preload("k".to_string(), "stored".to_string());
    // Slow enough that every reader arrives while the first load runs.
    store.set_latency(Duration::from_millis(20));
    let cache = Cache::<String, String>::builder()
        .store(store.clone())
        .build()
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, barrier) = (cache.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache.get(&"k".to_string()).await
            })
        })
        .collect();
    for reader in readers {
        let found = reader.await.unwrap().unwrap();
        assert_eq!(found.as_deref(), Some("stored"));
    }
    assert_eq!(store.calls().loads, 1);
}

/// A write-back cache whose hot tier holds two entries, in front of a
/// store that is down and holds an older copy of every key.
async fn dirty_keys_over_older_copies(
    dir: &Path,
) -> (Cache<String, String>, TestStore<String, String>) {
    let store = TestStore::new();
    for i in 0..20 {
        store.preload(format!("k{i}"), format!("old{i}"));
    }
    let cache = Cache::<String, String>::builder()
        .max_capacity(2)
        .store(store.clone())
        .write_policy(WritePolicy::Back)
        .write_back_log(dir.join("log.redb"))
        .retry_backoff(FIRST_RETRY, LAST_RETRY)
        .max_retries(NEVER_GIVE_UP)
        .build()
        .await
        .unwrap();
    // Down, so that nothing is flushed and every write stays dirty.
    store.set_failing(true);
    (cache, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dirty_key_evicted_from_memory_answers_its_latest_write_not_the_stores_older_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, store) = dirty_keys_over_older_copies(dir.path()).await;
    for i in 0..20 {
        cache
            .insert(format!("k{i}"), format!("new{i}"))
            .await
            .unwrap();
    }
    assert_eq!(cache.dirty_len(), 20);
    assert!(cache.hot().entry_count() <= 2, "the hot tier evicted");
    for i in 0..20 {
        let k = format!("k{i}");
        assert!(cache.is_dirty(&k));
        assert_eq!(cache.get(&k).await.unwrap(), Some(format!("new{i}")), "{k}");
    }
    // A dirty key is answered from its latest write: the store is never
    // asked (and, down, it could not answer).
    assert_eq!(store.calls().loads, 0);
    assert_eq!(store.value(&"k0".to_string()).as_deref(), Some("old0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_dirty_key_answers_none_though_the_store_still_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, store) = dirty_keys_over_older_copies(dir.path()).await;
    let k = "k7".to_string();
    cache.insert(k.clone(), "new7".into()).await.unwrap();
    cache.remove(&k).await.unwrap();
    assert!(cache.is_dirty(&k));
    assert_eq!(cache.get(&k).await.unwrap(), None);
    assert!(!cache.contains_key(&k).await.unwrap());
    assert_eq!(store.calls().loads, 0);
    assert_eq!(store.value(&k).as_deref(), Some("old7"));
    // Once the store is back the removal reaches it, and the key is
    // still gone.
    store.set_failing(false);
    tokio::time::timeout(PATIENCE, cache.flush())
        .await
        .expect("the removal flushes")
        .unwrap();
    assert_eq!(store.value(&k), None);
    assert_eq!(cache.get(&k).await.unwrap(), None);
}
