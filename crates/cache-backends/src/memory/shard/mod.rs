//! One partition of the memory engine: a hash table over a slab of nodes,
//! and the adaptive W-TinyLFU policy that decides what stays.
//!
//! The policy (after Einziger, Friedman and Manes, "TinyLFU", 2017, and
//! the adaptive window of Caffeine):
//!
//! - New entries enter the **window**. Entries pushed out of the window
//!   become *candidates* for the **main** region.
//! - Main is segmented: **probation** (entries that have not been hit since
//!   they arrived in main) and **protected** (80% of main; a hit in
//!   probation promotes there, and protected overflow is demoted back).
//! - When the shard is over capacity, each candidate is compared with the
//!   probation queue's least recently used entry; the less popular of the
//!   two is evicted. A frequency sketch holds the popularity of every key
//!   seen lately; a resident entry carries its own count on its node
//!   (the sketch's estimate on arrival plus its hits since, aged with the
//!   sketch), handed back to the sketch when it leaves, so comparing a
//!   candidate with a victim reads no sketch memory. Candidates with a warm count
//!   that would lose are still admitted at random (1 in 128), so an attacker
//!   cannot craft keys that keep every newcomer out.
//! - A hill climber moves capacity between window and main, so recency-
//!   heavy workloads get a large window (LRU-like) and frequency-heavy ones
//!   or loops a small one.
//!
//! Reads must not serialise on a lock, so a hit changes no queue. Each node
//! carries a small count of hits since the policy last looked at it, bumped
//! with a relaxed atomic under the shard's *shared* lock. The queues are
//! ordered by insertion and act as CLOCK approximations of LRU: when a node
//! with pending hits reaches the old end of its queue it gets a second
//! chance (it moves as an LRU hit would have moved it, and its hits are
//! added to its count); only a node without pending hits can be
//! a victim. All of that happens on the write path, under the exclusive
//! lock, so the cost of the policy is paid by misses, not by hits.
//!
//! Removed entries are pushed onto a notification list so the eviction
//! listener runs after the lock is released.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU8, Ordering};

use hashbrown::HashTable;

use super::RemovalCause;
use super::climber::Climber;
use super::counters::ReadCounters;
use super::expiry::{Expiries, ExpiryRule, NO_EXPIRY};
use super::sketch::{FrequencySketch, aged};

mod eviction;
mod keys;
mod queues;
mod rejects;
mod write;

use rejects::RecentRejects;

/// The "no node" index in the queue links.
const NIL: u32 = u32::MAX;

/// Entries removed while the lock was held. With an eviction listener they
/// are kept and handed to it after the lock is released; without one they
/// are dropped at once and only counted, so the write path allocates
/// nothing for them.
pub(crate) struct Removed<K, V> {
    /// The first entry kept, inline: most writes remove at most one, and
    /// a listener should not cost them an allocation.
    first: Option<(K, V, RemovalCause)>,
    /// The entries kept after the first.
    more: Vec<(K, V, RemovalCause)>,
    keep: bool,
    count: usize,
    /// Of `count`, the entries evicted for room and those that expired.
    pub(crate) evicted: u64,
    pub(crate) expired: u64,
}

impl<K, V> Removed<K, V> {
    pub(crate) fn new(keep: bool) -> Self {
        Removed {
            first: None,
            more: Vec::new(),
            keep,
            count: 0,
            evicted: 0,
            expired: 0,
        }
    }

    fn push(&mut self, entry: (K, V, RemovalCause)) {
        self.count += 1;
        match entry.2 {
            RemovalCause::Size => self.evicted += 1,
            RemovalCause::Expired => self.expired += 1,
            RemovalCause::Explicit | RemovalCause::Replaced => {}
        }
        if self.keep {
            if self.first.is_none() {
                self.first = Some(entry);
            } else {
                self.more.push(entry);
            }
        }
    }

    /// How many entries were removed.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// The removed entries, if they were kept.
    pub(crate) fn into_items(self) -> impl Iterator<Item = (K, V, RemovalCause)> {
        self.first.into_iter().chain(self.more)
    }
}

/// Hits a node remembers between two visits of the policy; more are not
/// needed because the sketch's counters stop at fifteen anyway.
const MAX_PENDING: u8 = 15;

/// The three queues an entry can be in. (An enum rather than a number so
/// that `Option<Node>` needs no separate tag.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum QueueId {
    Window = 0,
    Probation = 1,
    Protected = 2,
}
const WINDOW: QueueId = QueueId::Window;
const PROBATION: QueueId = QueueId::Probation;
const PROTECTED: QueueId = QueueId::Protected;

/// How a shard recomputes the 32-bit hash of a key it holds. Nodes do not
/// store their hash: the table needs it only to move or remove a node and
/// the policy only to consult the sketch, and recomputing it there costs
/// less than the memory (a 32-byte node for `u64 -> u64` instead of 40).
pub(crate) trait ShardHash<K> {
    /// The low half of the key's hash: the same value the cache passes as
    /// `hash` to the shard's operations.
    fn hash32(&self, key: &K) -> u32;
}

impl<K: Hash> ShardHash<K> for foldhash::fast::RandomState {
    #[inline]
    fn hash32(&self, key: &K) -> u32 {
        key_hash(self, key) as u32
    }
}

/// The hash the engine uses for `key`: the partition, the table and the
/// frequency sketch all take their bits from it.
///
/// foldhash's fast hash is seeded once per process, and for a few seeds
/// (about one process in a few hundred, measured on the keys `0..20_000`)
/// the bits the engine uses spread sequential integer keys so unevenly that
/// one partition got 60% more keys than its share and evicted while the
/// cache as a whole was far from full. One multiply-xorshift round on top
/// spreads every seed's output as evenly as a random function would, for
/// about a nanosecond.
#[inline]
pub(crate) fn key_hash<K: Hash + ?Sized>(state: &foldhash::fast::RandomState, key: &K) -> u64 {
    let h = state.hash_one(key);
    let h = (h ^ (h >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    h ^ (h >> 32)
}

/// For keys that are already well-mixed 32-bit hashes (the chooser's
/// ghosts).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PreHashed;

impl ShardHash<u32> for PreHashed {
    #[inline]
    fn hash32(&self, key: &u32) -> u32 {
        *key
    }
}

/// The table's hash of a node, from the low half of its key's hash: multiplying
/// spreads them over all 64 bits, so the table's control byte (the top
/// seven bits) and bucket index (the low bits) both vary.
#[inline]
fn table_hash(short: u32) -> u64 {
    u64::from(short).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A candidate this popular that would lose to its victim is still admitted
/// with probability 1/128 (a count of 6 or more out of 15 is "warm").
const WARM_CANDIDATE: u8 = 6;
const RANDOM_ADMIT_MASK: u64 = 127;

/// The hill climber judges the window over ten requests per unit of
/// capacity, as TinyLFU ages its sketch, but over at most 100,000 requests:
/// a hit ratio measured over that many requests is precise to a fraction of
/// a percent, and large caches would otherwise adapt only once per million
/// requests.
const SAMPLE_PER_CAPACITY: u64 = 10;
const MAX_SAMPLE: u64 = 100_000;
/// Below this many requests a sample is mostly noise.
const MIN_SAMPLE: u64 = 1_000;

/// The requests per hill-climbing step of a partition holding `capacity`,
/// one of `partitions`. A partition sees its share of the requests;
/// dividing the bound keeps adaptation as fast as in one large partition.
fn climber_sample(capacity: u64, partitions: usize) -> u64 {
    capacity
        .saturating_mul(SAMPLE_PER_CAPACITY)
        .min(MAX_SAMPLE / partitions as u64)
        .max(MIN_SAMPLE)
}

struct Node<K, V> {
    key: K,
    value: V,
    /// Towards the old end of its queue.
    older: u32,
    /// Towards the new end of its queue.
    newer: u32,
    /// Its expiry record, or [`NO_EXPIRY`] if it never expires.
    expiry: u32,
    /// Which queue the node is in.
    queue: QueueId,
    /// Hits since the policy last visited the node (see the module docs).
    pending: AtomicU8,
    /// The key's access count as of `epoch` (the low four bits; see
    /// [`Shard::freq_of`]), and [`DIRTY`] once hits were added to it.
    freq: u8,
    /// The sketch's epoch when `freq` was last set.
    epoch: u8,
}

/// The bits of [`Node::freq`] holding the count.
const COUNT_BITS: u8 = 0x0F;
/// Set in [`Node::freq`] once the node counted hits that the sketch has not
/// seen, so leaving hands its count back to the sketch.
const DIRTY: u8 = 0x10;

impl<K, V> Node<K, V> {
    /// Takes the pending hits, leaving none.
    fn take_pending(&mut self) -> u8 {
        std::mem::replace(self.pending.get_mut(), 0)
    }
}

/// An index-linked LRU queue over the slab.
#[derive(Clone, Copy, Debug)]
struct Queue {
    /// Least recently used.
    oldest: u32,
    /// Most recently used.
    newest: u32,
    weight: u64,
    len: usize,
}

impl Queue {
    const EMPTY: Queue = Queue {
        oldest: NIL,
        newest: NIL,
        weight: 0,
        len: 0,
    };
}

pub(crate) struct Shard<K, V, S = foldhash::fast::RandomState> {
    table: HashTable<u32>,
    /// Recomputes key hashes (the cache's own hasher).
    hasher: S,
    /// Each node's weight, by slot, when the shard counts weight; empty
    /// when every entry weighs 1, so count-bounded caches do not pay for it.
    weights: Vec<u32>,
    weighted: bool,
    nodes: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    queues: [Queue; 3],
    capacity: u64,
    window_max: u64,
    protected_max: u64,
    sketch: FrequencySketch,
    climber: Climber,
    expiries: Expiries,
    /// xorshift state for randomised admission.
    rng: u64,
    /// Requests per hill-climbing step.
    sample: u64,
    /// Hits and misses seen by readers since the climber last looked.
    reads: ReadCounters,
    /// Writes since the shard was made, to pace the climber's checks.
    writes: u32,
    /// Whether the hill climber sizes the window (not when the cache's
    /// window chooser does, and never in a ghost).
    climbs: bool,
    /// Candidates recently turned away, when the chooser found that
    /// admitting them on their return pays.
    rejects: Option<RecentRejects>,
}

/// What a read found.
pub(crate) enum Read<V> {
    Hit(V),
    Miss,
    /// The entry is there but expired; the caller removes it under the
    /// exclusive lock.
    Expired,
}

impl Shard<u32, (), PreHashed> {
    /// A ghost for the window chooser: keys only, its window fixed at
    /// `window_share` of the capacity.
    pub(crate) fn ghost(capacity: u64, window_share: f64, rejects: bool, seed: u64) -> Self {
        let mut s = Shard::new(capacity, 1, seed, false, PreHashed, false);
        s.set_rejects(rejects);
        s.window_max = ((capacity as f64 * window_share) as u64).min(capacity);
        s.protected_max = (capacity - s.window_max) / 5 * 4;
        s.climbs = false;
        s
    }
}

impl<K: Eq, V: Clone, S: ShardHash<K>> Shard<K, V, S> {
    /// An empty shard holding at most `capacity` weight, one of
    /// `partitions`; `seed` varies the randomised admission between shards
    /// and processes; `hasher` must be the one whose hashes the caller
    /// passes in; `weighted` when entries may weigh other than 1.
    ///
    /// With `climbs`, the shard's hill climber sizes its window; without,
    /// the cache's window chooser does, through `set_window_share`.
    pub(crate) fn new(
        capacity: u64,
        partitions: usize,
        seed: u64,
        climbs: bool,
        hasher: S,
        weighted: bool,
    ) -> Self {
        let window_max = capacity / 100;
        Shard {
            table: HashTable::new(),
            hasher,
            weights: Vec::new(),
            weighted,
            nodes: Vec::new(),
            free: Vec::new(),
            queues: [Queue::EMPTY; 3],
            capacity,
            window_max,
            protected_max: (capacity - window_max) / 5 * 4,
            // Sized for the capacity when it counts entries, and for a
            // modest start when it counts weight (it grows with the count).
            sketch: FrequencySketch::new(capacity.min(1 << 16)),
            climber: Climber::new(capacity),
            expiries: Expiries::new(),
            rng: seed | 1,
            sample: climber_sample(capacity, partitions),
            reads: ReadCounters::new(),
            writes: 0,
            climbs,
            rejects: None,
        }
    }

    /// Writes since the shard was made.
    pub(crate) fn writes(&self) -> u32 {
        self.writes
    }

    /// Turns the memory of rejected candidates on or off. It remembers as
    /// many candidates as half the capacity holds entries.
    pub(crate) fn set_rejects(&mut self, on: bool) {
        match (on, self.rejects.is_some()) {
            (true, false) => {
                let remembered = usize::try_from(self.capacity / 2).unwrap_or(usize::MAX);
                self.rejects = Some(RecentRejects::new(remembered.clamp(1, 1 << 24)));
            }
            (false, true) => self.rejects = None,
            _ => {}
        }
    }

    /// Moves the window to `share` of the capacity.
    pub(crate) fn set_window_share(&mut self, share: f64) {
        let target = ((self.capacity as f64 * share) as u64).min(self.capacity);
        if target > self.window_max {
            self.grow_window(target - self.window_max);
        } else if target < self.window_max {
            self.shrink_window(self.window_max - target);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.queues.iter().map(|q| q.weight).sum()
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    fn node(&self, idx: u32) -> &Node<K, V> {
        self.nodes[idx as usize]
            .as_ref()
            .expect("linked index points at a live node")
    }

    fn node_mut(&mut self, idx: u32) -> &mut Node<K, V> {
        self.nodes[idx as usize]
            .as_mut()
            .expect("linked index points at a live node")
    }

    /// The low half of the hash of node `idx`'s key.
    #[inline]
    fn hash_of(&self, idx: u32) -> u32 {
        self.hasher.hash32(&self.node(idx).key)
    }

    /// The weight of node `idx`.
    #[inline]
    fn weight_of(&self, idx: u32) -> u64 {
        if self.weighted {
            u64::from(self.weights[idx as usize])
        } else {
            1
        }
    }

    fn find(&self, hash: u32, key: &K) -> Option<u32> {
        let nodes = &self.nodes;
        self.table
            .find(table_hash(hash), |&i| {
                nodes[i as usize].as_ref().is_some_and(|n| n.key == *key)
            })
            .copied()
    }

    /// Raises the sketch's count of the key hashed `hash` to at least
    /// `count`, so that an entry restored from elsewhere (a snapshot)
    /// arrives as popular as it was.
    pub(crate) fn remember_frequency(&mut self, hash: u32, count: u8) {
        self.sketch.raise_to(u64::from(hash), count);
    }

    /// The access count of node `idx`: what the sketch estimated when it
    /// arrived plus its hits since, aged as the sketch has aged since.
    #[inline]
    fn freq_of(&self, idx: u32) -> u8 {
        let n = self.node(idx);
        aged(n.freq & COUNT_BITS, n.epoch, self.sketch.epoch())
    }

    /// Whether node `idx` has expired at `now`.
    #[inline]
    fn is_expired(&self, idx: u32, rule: ExpiryRule, now: u64) -> bool {
        let e = self.node(idx).expiry;
        e != NO_EXPIRY && rule.expired(self.expiries.get(e), now)
    }

    /// Unlinks a node and frees its slot, returning its key and value.
    fn take(&mut self, idx: u32) -> (K, V) {
        self.unlink(idx);
        let node = self.nodes[idx as usize]
            .take()
            .expect("taken index points at a live node");
        if node.expiry != NO_EXPIRY {
            self.expiries.remove(node.expiry);
        }
        self.table
            .find_entry(table_hash(self.hasher.hash32(&node.key)), |&i| i == idx)
            .expect("every live node is in the table")
            .remove();
        self.free.push(idx);
        (node.key, node.value)
    }

    /// Looks a key up under the shared lock. A hit is recorded on the node
    /// and changes no queue.
    #[inline]
    pub(crate) fn read(
        &self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
    ) -> Read<V> {
        let Some(idx) = self.find(hash, key) else {
            if self.climbs {
                self.reads.miss();
            }
            return Read::Miss;
        };
        let node = self.node(idx);
        if node.expiry != NO_EXPIRY {
            let now = now();
            let timed = self.expiries.get(node.expiry);
            if rule.expired(timed, now) {
                if self.climbs {
                    self.reads.miss();
                }
                return Read::Expired;
            }
            if rule.tti_ms.is_some() {
                timed.touch(now);
            }
        }
        // Only the hill climber reads these counts.
        if self.climbs {
            self.reads.hit();
        }
        let pending = node.pending.load(Ordering::Relaxed);
        if pending < MAX_PENDING {
            node.pending.store(pending + 1, Ordering::Relaxed);
        }
        Read::Hit(node.value.clone())
    }

    /// [`read`](Self::read), then the bookkeeping a hit defers, at once.
    pub(crate) fn read_exact(
        &mut self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
    ) -> Read<V> {
        let found = self.read(hash, key, rule, now);
        if matches!(found, Read::Hit(_))
            && let Some(idx) = self.find(hash, key)
        {
            self.fold_pending(idx);
            self.reorder_as_hit(idx);
        }
        found
    }

    /// Removes `key` if it is expired at `now` (a reader found it so).
    pub(crate) fn remove_expired(
        &mut self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        if let Some(idx) = self.find(hash, key)
            && self.is_expired(idx, rule, now)
        {
            let (k, v) = self.take(idx);
            removed.push((k, v, RemovalCause::Expired));
        }
    }

    /// Whether a live entry exists whose value `matches` accepts, without
    /// counting as a use.
    pub(crate) fn contains(
        &self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        matches: impl FnOnce(&V) -> bool,
    ) -> bool {
        self.find(hash, key).is_some_and(|idx| {
            let node = self.node(idx);
            let e = node.expiry;
            (e == NO_EXPIRY || !rule.expired(self.expiries.get(e), now())) && matches(&node.value)
        })
    }

    /// Reclaims the entries whose timer bucket fired and that have
    /// expired.
    fn expire(&mut self, rule: ExpiryRule, now: u64, removed: &mut Removed<K, V>) {
        for idx in self.expiries.advance(now, rule) {
            let (k, v) = self.take(idx);
            removed.push((k, v, RemovalCause::Expired));
        }
    }

    pub(crate) fn remove(
        &mut self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        removed: &mut Removed<K, V>,
    ) -> Option<V> {
        self.remove_if(hash, key, rule, now, |_| true, removed)
    }

    /// Removes `key` if it is live and `matches` accepts its value,
    /// returning the value removed. An expired entry is reclaimed whatever
    /// `matches` would say, and nothing is returned for it.
    pub(crate) fn remove_if(
        &mut self,
        hash: u32,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        matches: impl FnOnce(&V) -> bool,
        removed: &mut Removed<K, V>,
    ) -> Option<V> {
        let idx = self.find(hash, key)?;
        if self.node(idx).expiry != NO_EXPIRY && self.is_expired(idx, rule, now()) {
            let (k, v) = self.take(idx);
            removed.push((k, v, RemovalCause::Expired));
            return None;
        }
        if !matches(&self.node(idx).value) {
            return None;
        }
        let (k, v) = self.take(idx);
        removed.push((k, v.clone(), RemovalCause::Explicit));
        Some(v)
    }

    /// Removes every expired entry.
    pub(crate) fn purge_expired(
        &mut self,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        for q in [WINDOW, PROBATION, PROTECTED] {
            let mut idx = self.queues[q as usize].oldest;
            while idx != NIL {
                let (newer, expired) = (self.node(idx).newer, self.is_expired(idx, rule, now));
                if expired {
                    let (k, v) = self.take(idx);
                    removed.push((k, v, RemovalCause::Expired));
                }
                idx = newer;
            }
        }
    }

    pub(crate) fn clear(&mut self, removed: &mut Removed<K, V>) {
        for q in [WINDOW, PROBATION, PROTECTED] {
            while self.queues[q as usize].oldest != NIL {
                let (k, v) = self.take(self.queues[q as usize].oldest);
                removed.push((k, v, RemovalCause::Explicit));
            }
        }
        self.nodes.clear();
        self.free.clear();
        self.weights.clear();
        self.expiries.clear();
    }

    /// Checks every internal invariant, panicking with what broke.
    pub(crate) fn validate(&self, rule: ExpiryRule) {
        let mut count = 0usize;
        for q in [WINDOW, PROBATION, PROTECTED] {
            let queue = self.queues[q as usize];
            let (mut n_q, mut weight) = (0usize, 0u64);
            let mut older = NIL;
            let mut idx = queue.oldest;
            while idx != NIL {
                let n = self.node(idx);
                assert_eq!(n.queue, q, "node {idx} linked in the wrong queue");
                assert_eq!(n.older, older, "queue back-link broken at {idx}");
                assert_eq!(
                    self.find(self.hash_of(idx), &n.key),
                    Some(idx),
                    "queued node {idx} not findable in the table"
                );
                n_q += 1;
                weight += self.weight_of(idx);
                assert!(n_q <= self.nodes.len(), "queue {q:?} has a cycle");
                older = idx;
                idx = n.newer;
            }
            assert_eq!(queue.newest, older, "queue {q:?} newest is wrong");
            assert_eq!(queue.len, n_q, "queue {q:?} length is wrong");
            assert_eq!(queue.weight, weight, "queue {q:?} weight is wrong");
            count += n_q;
        }
        assert_eq!(count, self.table.len(), "queues and table disagree");
        assert!(self.weight() <= self.capacity, "shard over capacity");
        assert!(
            self.window_max + self.protected_max <= self.capacity,
            "window and protected shares exceed the capacity"
        );
        assert!(
            self.queues[PROTECTED as usize].weight <= self.protected_max,
            "protected over its share"
        );
        let live = self.nodes.iter().filter(|n| n.is_some()).count();
        assert_eq!(live, count, "orphaned nodes in the slab");
        let with_record = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| {
                assert!(
                    rule.tti_ms.is_none() || n.expiry != NO_EXPIRY,
                    "with time-to-idle every entry has an expiry record"
                );
                n.expiry != NO_EXPIRY
            })
            .count();
        let records = self.expiries.validate(rule, |idx| self.node(idx).expiry);
        assert_eq!(records, with_record, "expiry records and nodes disagree");
        assert_eq!(
            live + self.free.len(),
            self.nodes.len(),
            "free list is wrong"
        );
        assert!(
            self.weights.len() <= self.nodes.len() && (self.weighted || self.weights.is_empty()),
            "weights outgrew the slab"
        );
        self.sketch.validate();
        if let Some(rejects) = &self.rejects {
            rejects.validate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_u64_entry_fits_half_a_cache_line() {
        // Two nodes per cache line, none straddling two: a lookup reads
        // one line of the slab.
        assert_eq!(std::mem::size_of::<Option<Node<u64, u64>>>(), 32);
    }
}
