//! The redb tier lists its keys a page at a time from a real file: in key
//! order, within each page's limit, without removed or expired entries,
//! and from a cursor kept across closing and reopening the file.
#![cfg(feature = "redb")]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use cache_backends::redb::RedbBackend;
use cache_core::{Backend, Entry, ErrorKind, KeyCursor, KeyPage, ManualClock, Meta};

async fn open(path: &Path, clock: &ManualClock) -> RedbBackend {
    RedbBackend::builder(path)
        .clock(clock.clock())
        // The sweeper must not be what hides expired entries here.
        .sweep_interval(Duration::from_secs(3600))
        .build()
        .await
        .expect("the file opens")
}

fn key(i: usize) -> Bytes {
    Bytes::from(format!("k{i:03}"))
}

/// One page from `from`, checked against its limit.
async fn page(tier: &RedbBackend, from: &KeyCursor, limit: usize) -> KeyPage {
    let page = tier
        .keys(from, limit)
        .await
        .expect("a page")
        .expect("the redb tier lists its keys");
    assert!(
        page.keys.len() <= limit.max(1),
        "{} keys in a page of {limit}",
        page.keys.len()
    );
    page
}

/// Every key from `from` to the end, and how many pages that took.
async fn rest(tier: &RedbBackend, mut from: KeyCursor, limit: usize) -> (Vec<Bytes>, usize) {
    let (mut keys, mut pages) = (Vec::new(), 0);
    loop {
        let p = page(tier, &from, limit).await;
        keys.extend(p.keys);
        pages += 1;
        assert!(pages < 10_000, "the listing does not end");
        match p.next {
            Some(next) => from = next,
            None => return (keys, pages),
        }
    }
}

/// Writes 100 keys, removes ten and lets ten expire; returns the keys left.
async fn fill(tier: &RedbBackend, clock: &ManualClock) -> Vec<Bytes> {
    let now = clock.now_ms();
    let entries = (0..100)
        .map(|i| {
            let meta = match i % 10 {
                // These expire in a second.
                3 => Meta::new(now).expires_at(Some(now + 1_000)),
                // These in an hour: still live when the test lists.
                5 => Meta::new(now).expires_at(Some(now + 3_600_000)),
                // Negative entries are keys like the others.
                7 => return (key(i), Entry::negative(Meta::new(now))),
                _ => Meta::new(now),
            };
            (key(i), Entry::new(vec![i as u8; 64], meta))
        })
        .collect();
    tier.insert_many(entries).await.unwrap();
    for i in (0..100).filter(|i| i % 10 == 8) {
        assert!(tier.remove(&key(i)).await.unwrap());
    }
    clock.advance(Duration::from_secs(1));
    (0..100)
        .filter(|i| i % 10 != 3 && i % 10 != 8)
        .map(key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_list_the_live_keys_in_order_without_removed_or_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let tier = open(&dir.path().join("keys.redb"), &clock).await;
    assert_eq!(
        page(&tier, &KeyCursor::start(), 5).await,
        KeyPage::default(),
        "an empty file lists nothing, and is done"
    );
    let live = fill(&tier, &clock).await;
    assert_eq!(live.len(), 80);
    // Expired entries are still in the file: only the listing skips them.
    assert_eq!(tier.len().await.unwrap(), 90);

    for limit in [7, 1, 0, 80, 1_000] {
        let (keys, pages) = rest(&tier, KeyCursor::start(), limit).await;
        assert_eq!(
            keys, live,
            "pages of {limit}: every live key once, in order"
        );
        let least = live.len().div_ceil(limit.max(1));
        assert!(
            (least..=least + 1).contains(&pages),
            "pages of {limit}: {pages} pages for {} keys",
            live.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_resumes_after_the_file_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("resume.redb");
    let clock = ManualClock::new(1_000_000);
    let tier = open(&path, &clock).await;
    let live = fill(&tier, &clock).await;

    let mut listed = Vec::new();
    let mut cursor = KeyCursor::start();
    for _ in 0..3 {
        let p = page(&tier, &cursor, 9).await;
        assert_eq!(p.keys.len(), 9);
        listed.extend(p.keys);
        cursor = p.next.expect("more pages follow");
    }
    // The key the cursor stands on goes; the listing resumes after it all
    // the same.
    assert!(tier.remove(listed.last().unwrap()).await.unwrap());
    drop(tier);

    let stored = cursor.as_bytes().to_vec();
    let tier = open(&path, &clock).await;
    let (more, _) = rest(&tier, KeyCursor::from_bytes(stored), 9).await;
    listed.extend(more);
    assert_eq!(listed, live, "the pages before and after the reopen");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_another_tier_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let tier = open(&dir.path().join("garbage.redb"), &clock).await;
    fill(&tier, &clock).await;
    for garbage in [&b"\xffgarbage"[..], b"m\x00\x00\x00\x00\x00\x00\x00\x01"] {
        let e = tier
            .keys(&KeyCursor::from_bytes(garbage), 5)
            .await
            .expect_err("a cursor this tier did not make");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
}

/// Outside any tokio runtime a page is read on the caller's thread, or,
/// with inline reads off, on a thread of its own; both list the same keys.
#[test]
fn pages_are_listed_outside_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    for inline in [true, false] {
        let path = dir.path().join(format!("outside-{inline}.redb"));
        let tier = RedbBackend::builder(path)
            .clock(clock.clock())
            .inline_reads(inline)
            .build_blocking()
            .unwrap();
        futures::executor::block_on(async {
            for i in 0..10 {
                let entry = Entry::new(&b"v"[..], Meta::new(clock.now_ms()));
                tier.insert(key(i), entry).await.unwrap();
            }
            let mut listed = BTreeSet::new();
            let mut cursor = KeyCursor::start();
            loop {
                let p = tier.keys(&cursor, 4).await.unwrap().unwrap();
                assert!(p.keys.len() <= 4);
                listed.extend(p.keys);
                match p.next {
                    Some(next) => cursor = next,
                    None => break,
                }
            }
            assert_eq!(listed, (0..10).map(key).collect(), "inline reads {inline}");
        });
    }
}
