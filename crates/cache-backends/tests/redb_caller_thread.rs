//! Outside a tokio runtime a lookup runs on the caller's own thread: no
//! hand-off to the reader threads. Inside one it always goes to the
//! readers, so that no redb call blocks a runtime worker.
#![cfg(feature = "redb")]

use std::time::Duration;

use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, Lookup, ManualClock, Meta};
use futures::executor::block_on;

fn entry(clock: &ManualClock, value: &str, ttl: Option<Duration>) -> Entry {
    let mut meta = Meta::new(clock.now_ms());
    meta.expires_at_ms = ttl.map(|ttl| clock.now_ms() + ttl.as_millis() as u64);
    Entry::new(value.to_owned(), meta)
}

fn value(found: Lookup) -> Option<Bytes> {
    found.into_hit().map(|e| e.value)
}

#[test]
fn lookups_outside_a_runtime_answer_on_the_callers_thread() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("caller.redb"))
        .clock(clock.clock())
        .sweep_interval(Duration::from_secs(3600))
        .build_blocking()
        .unwrap();
    block_on(tier.insert("a".into(), entry(&clock, "1", None))).unwrap();
    block_on(tier.insert("b".into(), entry(&clock, "2", Some(Duration::from_secs(5))))).unwrap();

    assert_eq!(value(block_on(tier.get(b"a")).unwrap()), Some("1".into()));
    assert_eq!(value(block_on(tier.get(b"b")).unwrap()), Some("2".into()));
    assert_eq!(block_on(tier.get(b"absent")).unwrap(), Lookup::Miss);
    let keys = [Bytes::from("b"), Bytes::from("absent"), Bytes::from("a")];
    let found: Vec<_> = block_on(tier.get_many(&keys)).unwrap();
    let found: Vec<_> = found.into_iter().map(value).collect();
    assert_eq!(found, [Some("2".into()), None, Some("1".into())]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        block_on(tier.get(b"b")).unwrap(),
        Lookup::Miss,
        "expiry holds on the caller's thread too"
    );
    assert_eq!(tier.stats().handed_off, 0, "no lookup went to a reader");

    // Inside a runtime, on a worker or on the blocking pool, lookups go to
    // the readers.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let found = runtime.block_on(tier.get(b"a")).unwrap();
    assert_eq!(value(found), Some("1".into()));
    assert_eq!(tier.stats().handed_off, 1);
    let on_worker = tier.clone();
    let found = runtime
        .block_on(runtime.spawn(async move { on_worker.get(b"a").await }))
        .unwrap()
        .unwrap();
    assert_eq!(value(found), Some("1".into()));
    assert_eq!(tier.stats().handed_off, 2);
    let on_pool = tier.clone();
    let found = runtime
        .block_on(runtime.spawn_blocking(move || {
            block_on(on_pool.get_many(&[Bytes::from("a"), Bytes::from("b")]))
        }))
        .unwrap()
        .unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(tier.stats().handed_off, 4);
    drop(runtime);
}

#[test]
fn inline_reads_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("readers.redb"))
        .clock(clock.clock())
        .inline_reads(false)
        .build_blocking()
        .unwrap();
    block_on(tier.insert("a".into(), entry(&clock, "1", None))).unwrap();
    assert_eq!(value(block_on(tier.get(b"a")).unwrap()), Some("1".into()));
    assert_eq!(block_on(tier.get(b"absent")).unwrap(), Lookup::Miss);
    assert_eq!(tier.stats().handed_off, 2);
}

/// Many plain threads reading at once while a writer replaces values: each
/// read sees a whole value, old or new, never a mix or an error.
#[test]
fn concurrent_caller_thread_reads_see_whole_values() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::default();
    let tier = RedbBackend::builder(dir.path().join("many.redb"))
        .clock(clock.clock())
        .access_batch(16)
        .build_blocking()
        .unwrap();
    let value_of = |i: usize, round: usize| format!("{i}:{round}:").repeat(50);
    let seed = (0..64)
        .map(|i| {
            (
                Bytes::from(format!("k{i}")),
                entry(&clock, &value_of(i, 0), None),
            )
        })
        .collect();
    block_on(tier.insert_many(seed)).unwrap();
    std::thread::scope(|scope| {
        for reader in 0..8 {
            let tier = &tier;
            scope.spawn(move || {
                for n in 0..2_000 {
                    let i = (reader * 13 + n * 7) % 64;
                    let found = block_on(tier.get(format!("k{i}").as_bytes())).unwrap();
                    let found = value(found).expect("every key stays present");
                    let text = std::str::from_utf8(&found).unwrap();
                    let round: usize = text.split(':').nth(1).unwrap().parse().unwrap();
                    assert_eq!(text, value_of(i, round), "a whole value");
                }
            });
        }
        for round in 1..=20 {
            let batch = (0..64)
                .map(|i| {
                    (
                        Bytes::from(format!("k{i}")),
                        entry(&clock, &value_of(i, round), None),
                    )
                })
                .collect();
            block_on(tier.insert_many(batch)).unwrap();
        }
    });
    assert_eq!(tier.stats().handed_off, 0);
    assert_eq!(tier.stats().evicted, 0);
}
