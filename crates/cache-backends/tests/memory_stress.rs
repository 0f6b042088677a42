//! `MemoryCache` under many threads: capacity holds at every moment, counts
//! are exact once the threads stop, and the internal structure stays sound.
#![cfg(feature = "memory")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use cache_backends::memory::MemoryCache;

const THREADS: u64 = 6;
const OPS: u64 = 50_000;
const KEYS: u64 = 5_000;

/// A small xorshift generator, so each thread has its own reproducible
/// stream without shared state.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `work` on `THREADS` threads while another thread checks `watch`
/// continuously; returns what the workers returned and how often the
/// monitor looked.
fn with_monitor<T: Send + 'static>(
    work: impl Fn(u64) -> T + Send + Sync + 'static,
    watch: impl Fn() + Send + 'static,
) -> (Vec<T>, u64) {
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let done = done.clone();
        thread::spawn(move || {
            let mut looks = 0u64;
            while !done.load(Ordering::Acquire) {
                watch();
                looks += 1;
                thread::yield_now();
            }
            looks
        })
    };
    let work = Arc::new(work);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let work = work.clone();
            thread::spawn(move || work(t))
        })
        .collect();
    let results = workers.into_iter().map(|w| w.join().unwrap()).collect();
    done.store(true, Ordering::Release);
    (results, monitor.join().unwrap())
}

fn mixed_workload(cache: MemoryCache<u64, u64>, removals: Arc<AtomicU64>) {
    let inserts = Arc::new(AtomicU64::new(0));
    let watched = cache.clone();
    let (_, looks) = with_monitor(
        {
            let (cache, inserts) = (cache.clone(), inserts.clone());
            move |t| {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1));
                for i in 0..OPS {
                    let r = rng.next();
                    let key = (r >> 8) % KEYS;
                    match r % 10 {
                        0..=3 => {
                            cache.insert(key, key | (t << 32) | (i << 40));
                            inserts.fetch_add(1, Ordering::Relaxed);
                        }
                        4..=7 => {
                            if let Some(v) = cache.get(&key) {
                                assert_eq!(v & 0xFFFF_FFFF, key, "a value under the wrong key");
                            }
                        }
                        8 => {
                            let _ = cache.remove(&key);
                        }
                        _ => {
                            let _ = cache.contains_key(&key);
                        }
                    }
                }
            }
        },
        move || {
            let size = watched.weighted_size();
            assert!(
                size <= watched.max_capacity(),
                "weighted_size {size} above capacity {}",
                watched.max_capacity()
            );
            assert!(watched.entry_count() <= watched.max_capacity());
        },
    );
    assert!(looks > 0, "the monitor never looked");

    let probed = (0..KEYS).filter(|k| cache.contains_key(k)).count() as u64;
    assert_eq!(
        cache.entry_count(),
        probed,
        "entry_count must be exact at rest"
    );
    assert!(cache.weighted_size() <= cache.max_capacity());
    // Every entry stored either is still there or left through the
    // listener, exactly once.
    assert_eq!(
        inserts.load(Ordering::Relaxed) - removals.load(Ordering::Relaxed),
        cache.entry_count(),
        "inserts minus notified removals must equal what is held"
    );
    cache.validate();
}

#[test]
fn mixed_operations_keep_capacity_and_exact_counts() {
    for partitions in [None, Some(1), Some(7)] {
        let removals = Arc::new(AtomicU64::new(0));
        let counter = removals.clone();
        let mut b = MemoryCache::builder()
            .max_capacity(1_000)
            .eviction_listener(move |_, _, _| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
        if let Some(p) = partitions {
            b = b.partitions(p);
        }
        mixed_workload(b.build(), removals);
    }
}

#[test]
fn weighted_entries_keep_capacity_under_contention() {
    let cache: MemoryCache<u64, Vec<u8>> = MemoryCache::builder()
        .max_capacity(64 * 1024)
        .partitions(8)
        .weigher(|_, v: &Vec<u8>| v.len() as u32)
        .build();
    let watched = cache.clone();
    let (_, looks) = with_monitor(
        {
            let cache = cache.clone();
            move |t| {
                let mut rng = Rng(0xDEAD_BEEF ^ (t + 1));
                for _ in 0..OPS / 2 {
                    let r = rng.next();
                    let key = (r >> 8) % KEYS;
                    if r.is_multiple_of(3) {
                        let _ = cache.get(&key);
                    } else {
                        // Up to 10 KiB, more than a partition's 8 KiB share
                        // now and then, so rejections race with the rest.
                        let len = (r >> 32) as usize % (10 * 1024);
                        cache.insert(key, vec![key as u8; len]);
                    }
                }
            }
        },
        move || {
            let size = watched.weighted_size();
            assert!(size <= 64 * 1024, "weighted_size {size} above capacity");
        },
    );
    assert!(looks > 0);
    let mut held = 0u64;
    let mut count = 0u64;
    for k in 0..KEYS {
        if let Some(v) = cache.get(&k) {
            assert!(v.iter().all(|&b| b == k as u8), "a torn or misplaced value");
            held += v.len() as u64;
            count += 1;
        }
    }
    assert_eq!(cache.entry_count(), count);
    assert_eq!(cache.weighted_size(), held);
    cache.validate();
}

#[test]
fn disjoint_writers_leave_an_exact_count() {
    const PER_THREAD: u64 = 5_000;
    let cache: MemoryCache<u64, u64> = MemoryCache::builder()
        .max_capacity(1_000_000)
        .partitions(16)
        .build();
    let (kept, _) = with_monitor(
        {
            let cache = cache.clone();
            move |t| {
                let base = t * 1_000_000;
                for i in 0..PER_THREAD {
                    cache.insert(base + i, i);
                }
                // Insert again (replacing) and remove every third key.
                let mut removed = 0;
                for i in 0..PER_THREAD {
                    if i.is_multiple_of(2) {
                        cache.insert(base + i, i + 1);
                    }
                    if i.is_multiple_of(3) {
                        assert!(cache.remove(&(base + i)).is_some(), "own key vanished");
                        removed += 1;
                    }
                }
                PER_THREAD - removed
            }
        },
        {
            let watched = cache.clone();
            move || assert!(watched.entry_count() <= THREADS * PER_THREAD)
        },
    );
    let expected: u64 = kept.iter().sum();
    assert_eq!(cache.entry_count(), expected);
    assert_eq!(cache.weighted_size(), expected);
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let want = match (i % 3, i % 2) {
                (0, _) => None,
                (_, 0) => Some(i + 1),
                _ => Some(i),
            };
            assert_eq!(cache.get(&(t * 1_000_000 + i)), want, "thread {t} key {i}");
        }
    }
    cache.validate();
}

#[test]
fn clear_racing_with_writers_leaves_a_sound_cache() {
    let cache: MemoryCache<u64, u64> = MemoryCache::builder()
        .max_capacity(2_000)
        .partitions(4)
        .build();
    let watched = cache.clone();
    let (_, _) = with_monitor(
        {
            let cache = cache.clone();
            move |t| {
                let mut rng = Rng(77 + t);
                for i in 0..OPS / 5 {
                    let key = rng.next() % KEYS;
                    cache.insert(key, key);
                    if t == 0 && i.is_multiple_of(1_000) {
                        cache.clear();
                    }
                }
            }
        },
        move || {
            watched.purge_expired();
            assert!(watched.weighted_size() <= 2_000);
        },
    );
    let probed = (0..KEYS).filter(|k| cache.contains_key(k)).count() as u64;
    assert_eq!(cache.entry_count(), probed);
    cache.validate();
    cache.clear();
    assert_eq!(cache.entry_count(), 0);
    cache.validate();
}
