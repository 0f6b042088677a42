//! The memory tier lists its keys a page at a time: every live key once,
//! across every partition, within each page's limit, expired and removed
//! entries left out, and the keys that stay put listed while other keys
//! are written and removed around them.
#![cfg(feature = "memory")]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_backends::memory::{MemoryBackend, MemoryCache};
use cache_core::{Backend, Entry, ErrorKind, KeyCursor, ManualClock, Meta};

fn key(i: usize) -> Bytes {
    Bytes::from(format!("k{i:04}"))
}

/// Every key from the start in pages of `limit`, each page checked
/// against it.
async fn list(tier: &MemoryBackend, limit: usize) -> Vec<Bytes> {
    let mut keys = Vec::new();
    let mut cursor = KeyCursor::start();
    for _ in 0..100_000 {
        let page = tier
            .keys(&cursor, limit)
            .await
            .expect("a page")
            .expect("the memory tier lists its keys");
        assert!(page.keys.len() <= limit.max(1), "a page over {limit}");
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => return keys,
        }
    }
    panic!("the listing does not end");
}

#[tokio::test]
async fn every_live_key_is_listed_once_across_partitions() {
    let clock = ManualClock::new(1_000_000);
    let tier = MemoryBackend::builder()
        .clock(clock.clock())
        .partitions(8)
        .build();
    let now = clock.now_ms();
    let mut live = BTreeSet::new();
    for i in 0..500 {
        let entry = match i % 10 {
            3 => Entry::new(&b"v"[..], Meta::new(now).expires_at(Some(now + 1_000))),
            7 => Entry::negative(Meta::new(now)),
            _ => Entry::new(&b"v"[..], Meta::new(now)),
        };
        tier.insert(key(i), entry).await.unwrap();
        if i % 10 != 3 && i % 10 != 8 {
            live.insert(key(i));
        }
    }
    for i in (0..500).filter(|i| i % 10 == 8) {
        assert!(tier.remove(&key(i)).await.unwrap());
    }
    clock.advance(Duration::from_secs(1));
    for limit in [1, 0, 7, 64, 10_000] {
        let listed = list(&tier, limit).await;
        let unique: BTreeSet<Bytes> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "pages of {limit}: a key twice");
        assert_eq!(unique, live, "pages of {limit}");
    }
}

#[tokio::test]
async fn a_cursor_the_tier_did_not_make_is_refused() {
    let tier = MemoryBackend::builder().partitions(4).build();
    for i in 0..20 {
        tier.insert(key(i), Entry::new(&b"v"[..], Meta::new(0)))
            .await
            .unwrap();
    }
    let first = tier.keys(&KeyCursor::start(), 1).await.unwrap().unwrap();
    let real = first.next.expect("more keys follow");
    let bytes = real.as_bytes();
    let mut bad: Vec<Vec<u8>> = vec![b"\xffgarbage".to_vec(), [bytes, b"x"].concat()];
    bad.extend((1..bytes.len()).map(|n| bytes[..n].to_vec()));
    // A partition this tier does not have.
    let mut partition = bytes.to_vec();
    partition[1..5].copy_from_slice(&4u32.to_be_bytes());
    bad.push(partition);
    for b in bad {
        let e = tier
            .keys(&KeyCursor::from_bytes(b.clone()), 3)
            .await
            .expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{b:?}");
    }
}

/// Writers insert and remove keys of their own while the listing runs:
/// each key that stays put for the whole listing is listed exactly once,
/// and nothing is listed that was never written.
#[test]
fn keys_that_stay_put_are_listed_while_others_churn() {
    const STABLE: u64 = 2_000;
    let cache: MemoryCache<u64, u64> = MemoryCache::builder()
        .max_capacity(1_000_000)
        .partitions(16)
        .build();
    for k in 0..STABLE {
        cache.insert(k, k);
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (cache, done) = (&cache, &done);
            s.spawn(move || {
                let base = 1_000_000 * (t + 1);
                let mut i = 0;
                while !done.load(Ordering::Relaxed) {
                    cache.insert(base + i % 5_000, i);
                    cache.remove(&(base + (i + 2_500) % 5_000));
                    i += 1;
                }
            });
        }
        for _ in 0..20 {
            let mut listed = Vec::new();
            let mut at = Some((0, 0));
            while let Some(from) = at {
                let (keys, next) = cache.keys_page(from, 5);
                assert!(keys.len() <= 5);
                listed.extend(keys);
                at = next;
            }
            let stable = listed.iter().filter(|&&k| k < STABLE).count();
            let unique: BTreeSet<u64> = listed.iter().copied().filter(|&k| k < STABLE).collect();
            assert_eq!((stable, unique.len()), (STABLE as usize, STABLE as usize));
            assert!(
                listed
                    .iter()
                    .all(|&k| k < STABLE || (1_000_000..3_005_000).contains(&k))
            );
        }
        done.store(true, Ordering::Relaxed);
    });
    cache.validate();
}
