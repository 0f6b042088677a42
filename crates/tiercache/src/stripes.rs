//! The order of changes to a key across tiers: striped locks and versions.
//!
//! A write of a key changes several tiers one after another, and a read
//! copies what it found below into the tiers above. Without an order
//! between the two, a copy made from a read that began before a write can
//! land after it and bring the old value back. So every change of a key in
//! more than one tier (insert, remove, a promotion's copies, a demotion)
//! holds the lock of the key's stripe while it changes the tiers, and a
//! write advances the stripe's version as it lets go. A read notes the
//! version before it looks below the hot tier, and installs what it found
//! only if the version is unchanged once it holds the lock: no write of
//! any key of the stripe ended in between, and none is under way.
//!
//! The lock is asynchronous because the tiers are: a write holds it across
//! the awaits of its tier writes. A future dropped while it holds the lock
//! lets go of it and still advances the version (see [`WriteGuard`]), so
//! cancellation cannot leave a read believing nothing changed.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, MutexGuard};

/// How many stripes a cache has: keys that share one wait for each other's
/// writes and may skip each other's promotions, so there are enough that
/// concurrent writers rarely meet, and few enough to cost little memory.
const STRIPES: usize = 1024;

/// One lock and version per stripe of keys.
pub(crate) struct Stripes {
    stripes: Box<[Stripe]>,
    hasher: foldhash::fast::FixedState,
}

/// A stripe: its lock, and how many writes of its keys have ended.
pub(crate) struct Stripe {
    lock: Mutex<()>,
    version: AtomicU64,
}

/// Held while a write changes the tiers; advances the stripe's version
/// when it is dropped, whether the write finished or was cancelled.
pub(crate) struct WriteGuard<'a> {
    stripe: &'a Stripe,
    _lock: MutexGuard<'a, ()>,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // Advanced before the lock is released (fields drop after this
        // body), so a reader that takes the lock next sees the change.
        self.stripe.version.fetch_add(1, Ordering::AcqRel);
    }
}

impl WriteGuard<'_> {
    /// The stripe's version while this write holds it (the count of writes
    /// of its keys that have ended).
    pub(crate) fn version(&self) -> u64 {
        self.stripe.version.load(Ordering::Acquire)
    }

    /// Where the entries this write makes stand among the key's entries:
    /// higher than every earlier write's and every copy made before it
    /// ([`copy_seq`]), lower than every later one's. Odd: `2 × version + 1`.
    pub(crate) fn seq(&self) -> u64 {
        self.version() * 2 + 1
    }
}

/// Where a copy of a key's value made at stripe version `seen` stands (a
/// promotion, or a load installed while no write ended): after the write
/// that ended last before it, before the next write, which takes the lock
/// at that same version. Even: `2 × seen`, so that the next write's entry
/// (odd, `2 × seen + 1`) is always newer, and replaces or purges it.
pub(crate) fn copy_seq(seen: u64) -> u64 {
    seen * 2
}

impl Stripes {
    pub(crate) fn new() -> Self {
        Stripes {
            stripes: (0..STRIPES)
                .map(|_| Stripe {
                    lock: Mutex::new(()),
                    version: AtomicU64::new(0),
                })
                .collect(),
            hasher: foldhash::fast::FixedState::with_seed(0x7469_6572_6361_6368),
        }
    }

    /// The stripe of an encoded key.
    pub(crate) fn of(&self, key: &[u8]) -> &Stripe {
        let hash = self.hasher.hash_one(key);
        // The high bits: foldhash mixes them best.
        let i = (hash >> 54) as usize % STRIPES;
        &self.stripes[i]
    }

    /// Every stripe's write lock, taken in order (so two callers taking
    /// them all cannot deadlock, and nobody else holds more than one).
    pub(crate) async fn write_all(&self) -> Vec<WriteGuard<'_>> {
        let mut guards = Vec::with_capacity(self.stripes.len());
        for stripe in self.stripes.iter() {
            guards.push(stripe.write().await);
        }
        guards
    }
}

impl Stripe {
    /// The version now; a reader notes it before it looks below the hot
    /// tier.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Waits for the stripe's lock, for a write.
    pub(crate) async fn write(&self) -> WriteGuard<'_> {
        WriteGuard {
            _lock: self.lock.lock().await,
            stripe: self,
        }
    }

    /// Waits for the stripe's lock and keeps it only if the version is
    /// still `seen`: no write of the stripe's keys ended since, and none
    /// is under way. A copy made under the returned guard cannot land over
    /// a newer write.
    ///
    /// It does not wait: a write under way holds the lock and will advance
    /// the version anyway, so a promotion that finds the lock taken is
    /// skipped rather than made to wait out a commit it would lose to.
    pub(crate) fn unchanged_since(&self, seen: u64) -> Option<MutexGuard<'_, ()>> {
        if self.version() != seen {
            return None;
        }
        let guard = self.lock.try_lock().ok()?;
        (self.version() == seen).then_some(guard)
    }

    /// Waits for the stripe's lock for a change that leaves every key's
    /// value as it was (dropping a record a tier should not serve), so the
    /// version is not advanced and promotions go on.
    pub(crate) async fn hold(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().await
    }
}

/// The versions of a memory-only cache's keys, by a hash of the typed key.
///
/// Such a cache encodes nothing and takes no stripe lock: the hot tier
/// orders each key's writes by itself. A load is the one change that
/// needs more, since what it loaded may be older than a write that ended
/// while it ran. So a write advances its key's version before it changes
/// the hot tier, a load notes the version before it looks, and it installs
/// what it loaded only if the version is unchanged, checked under the hot
/// tier's partition lock (`MemoryCache::insert_if`): a write either began
/// before the check (and the load installs nothing) or changes the hot
/// tier after the install (and replaces it).
pub(crate) struct KeyVersions {
    slots: Box<[PaddedVersion]>,
    /// Advanced by a clear, which changes every key.
    cleared: AtomicU64,
    hasher: foldhash::fast::RandomState,
}

/// A version alone on its cache line, so writers of different keys do not
/// contend for one.
#[repr(align(64))]
#[derive(Default)]
struct PaddedVersion(AtomicU64);

impl KeyVersions {
    pub(crate) fn new() -> Self {
        KeyVersions {
            slots: (0..STRIPES).map(|_| PaddedVersion::default()).collect(),
            cleared: AtomicU64::new(0),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn slot<K: std::hash::Hash>(&self, key: &K) -> &AtomicU64 {
        let i = self.hasher.hash_one(key) as usize % self.slots.len();
        &self.slots[i].0
    }

    /// The version of `key` now: it grows with every write of a key of its
    /// slot and with every clear.
    #[inline]
    pub(crate) fn version<K: std::hash::Hash>(&self, key: &K) -> u64 {
        self.slot(key)
            .load(Ordering::Acquire)
            .wrapping_add(self.cleared.load(Ordering::Acquire))
    }

    /// A write of `key` begins.
    #[inline]
    pub(crate) fn advance<K: std::hash::Hash>(&self, key: &K) {
        self.slot(key).fetch_add(1, Ordering::AcqRel);
    }

    /// A clear begins.
    pub(crate) fn advance_all(&self) {
        self.cleared.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_ends_by_advancing_the_version() {
        let stripes = Stripes::new();
        let stripe = stripes.of(b"k");
        let seen = stripe.version();
        assert!(stripe.unchanged_since(seen).is_some());
        let w = stripe.write().await;
        assert!(stripe.unchanged_since(seen).is_none(), "a write under way");
        let seq = w.seq();
        let during = w.version();
        drop(w);
        assert!(stripe.version() > during);
        assert!(stripe.unchanged_since(seen).is_none());
        // The write's entries stand above a copy made at the version it
        // took the lock at, and below a copy made after it ended.
        assert!(copy_seq(during) < seq);
        assert!(seq < copy_seq(stripe.version()));
    }

    #[tokio::test]
    async fn a_cancelled_write_still_advances_the_version() {
        let stripes = Stripes::new();
        let stripe = stripes.of(b"k");
        let seen = stripe.version();
        let write = async {
            let _w = stripe.write().await;
            std::future::pending::<()>().await;
        };
        // Polled once: it takes the lock and waits forever; dropping it is
        // a caller giving up.
        let mut write = Box::pin(write);
        assert!(futures::poll!(&mut write).is_pending());
        drop(write);
        assert_ne!(stripe.version(), seen);
        assert!(stripe.unchanged_since(stripe.version()).is_some());
    }
}
