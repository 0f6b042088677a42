//! When a hit in a lower tier is copied into the tiers above it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::time::Duration;

use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// When a hit in a lower tier is promoted into the tiers above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Promotion {
    /// On every hit (the default).
    #[default]
    Always,
    /// Once the key has been hit `hits` times in lower tiers within
    /// `window`: a key read once from disk does not displace hot entries.
    AfterHits {
        /// Hits needed, counting the one that promotes; 1 is `Always`.
        hits: u32,
        /// How close together the hits must be.
        window: Duration,
    },
}

/// How many keys [`HitWindow`] follows at most: past it, keys whose
/// window has passed are forgotten, and if that is not enough, all are.
const MAX_TRACKED: usize = 65_536;
/// Independent parts of the tracker, so concurrent lookups rarely share a
/// lock.
const SHARDS: usize = 16;

/// Counts recent lower-tier hits per key, in bounded memory, for
/// [`Promotion::AfterHits`].
pub(crate) struct HitWindow {
    hits: u32,
    window_ms: u64,
    hasher: RandomState,
    /// Key hash → (hits in the current window, when it opened).
    shards: Vec<Mutex<HashMap<u64, (u32, u64)>>>,
}

impl HitWindow {
    pub(crate) fn new(hits: u32, window: Duration) -> Self {
        HitWindow {
            hits: hits.max(1),
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            hasher: RandomState::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Records a lower-tier hit of `key` at `now_ms`; `true` when it is the
    /// one that promotes. A promoted key starts counting again.
    pub(crate) fn hit(&self, key: &[u8], now_ms: u64) -> bool {
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shards[(hash as usize) % SHARDS].lock();
        let window = self.window_ms;
        let count = {
            let (count, opened) = shard.entry(hash).or_insert((0, now_ms));
            if now_ms.saturating_sub(*opened) > window {
                (*count, *opened) = (0, now_ms);
            }
            *count += 1;
            *count
        };
        if count >= self.hits {
            shard.remove(&hash);
            return true;
        }
        if shard.len() > MAX_TRACKED / SHARDS {
            shard.retain(|_, (_, opened)| now_ms.saturating_sub(*opened) <= window);
            if shard.len() > MAX_TRACKED / SHARDS {
                shard.clear();
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotes_on_the_nth_hit_within_the_window() {
        let w = HitWindow::new(3, Duration::from_millis(100));
        assert!(!w.hit(b"k", 0));
        assert!(!w.hit(b"k", 50));
        assert!(w.hit(b"k", 100), "third hit within 100 ms");
        assert!(!w.hit(b"k", 101), "counting starts again");
        assert!(!w.hit(b"k", 150));
        assert!(!w.hit(b"k", 300), "the window passed: this is a first hit");
        assert!(!w.hit(b"other", 300));
        assert!(!w.hit(b"k", 350));
        assert!(w.hit(b"k", 360));
    }

    #[test]
    fn memory_stays_bounded() {
        let w = HitWindow::new(2, Duration::from_secs(3600));
        for i in 0..(MAX_TRACKED as u64 * 3) {
            w.hit(&i.to_le_bytes(), 0);
        }
        let held: usize = w.shards.iter().map(|s| s.lock().len()).sum();
        assert!(held <= MAX_TRACKED + SHARDS, "{held} keys tracked");
    }
}
