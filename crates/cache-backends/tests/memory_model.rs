//! `MemoryCache` behaves exactly like a plain map with expiry, checked
//! step by step on random operation sequences, as long as nothing is
//! evicted for size; across resizes (`set_capacity`), which may make room
//! scarce, an eviction for size is accepted only of an entry the model
//! holds, live and with that value, and the model then drops it.
#![cfg(feature = "memory")]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::{ErrorKind, ManualClock};
use proptest::prelude::*;

const KEYS: u16 = 24;
/// The heaviest entry with a weigher (see [`weight_of`]).
const MAX_WEIGHT: u64 = 4;
/// The capacity a cache is built with: room for every key many times over.
const ROOMY: u64 = 1_000_000;

/// What the weigher of a weighted cache gives an entry: 1 to
/// [`MAX_WEIGHT`].
fn weight_of(v: u32) -> u32 {
    1 + v % MAX_WEIGHT as u32
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    /// The per-entry TTL in microseconds, so that zero and sub-millisecond
    /// (invalid) TTLs come up as well as odd fractions of a millisecond.
    InsertWithTtl(u16, u32, u64),
    /// The absolute expiry as an offset from now, possibly in the past.
    InsertWithExpiry(u16, u32, Option<i64>),
    Get(u16),
    Remove(u16),
    ContainsKey(u16),
    Clear,
    Advance(u64),
    PurgeExpired,
    /// `set_capacity`: a shrink may evict, a grow makes room again.
    Resize(u64),
}

/// New capacities: down to one (refused with more partitions than that),
/// small enough that a partition cannot hold every key, and roomy again.
fn capacity() -> impl Strategy<Value = u64> {
    prop_oneof![Just(1u64), 2u64..=8, 9u64..200, Just(ROOMY)]
}

fn op() -> impl Strategy<Value = Op> {
    ops_resizing(1)
}

/// The operations, with resizes `resizes` times as likely as in [`op`].
fn ops_resizing(resizes: u32) -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    prop_oneof![
        6 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        3 => (
            key.clone(),
            any::<u32>(),
            prop_oneof![0u64..3_000, (1u64..150).prop_map(|ms| ms * 1_000)]
        )
            .prop_map(|(k, v, us)| Op::InsertWithTtl(k, v, us)),
        2 => (key.clone(), any::<u32>(), proptest::option::of(-20i64..150))
            .prop_map(|(k, v, at)| Op::InsertWithExpiry(k, v, at)),
        8 => key.clone().prop_map(Op::Get),
        3 => key.clone().prop_map(Op::Remove),
        3 => key.prop_map(Op::ContainsKey),
        1 => Just(Op::Clear),
        5 => (0u64..60).prop_map(Op::Advance),
        // Long enough to carry the timer wheel over bucket boundaries.
        1 => (500u64..5_000).prop_map(Op::Advance),
        2 => Just(Op::PurgeExpired),
        resizes => capacity().prop_map(Op::Resize),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Stored {
    value: u32,
    expires_at: u64,
    last_access: u64,
}

/// What the cache should hold: every entry it has not yet removed, expired
/// or not, since expired entries stay (and count) until touched or until a
/// write finds their timer-wheel bucket fired.
struct Model {
    map: HashMap<u16, Stored>,
    ttl_ms: Option<u64>,
    tti_ms: Option<u64>,
    events: Vec<(u16, u32, RemovalCause)>,
    /// The cache's capacity now, its partition count, and whether it
    /// weighs entries with [`weight_of`].
    capacity: u64,
    partitions: usize,
    weighted: bool,
}

impl Model {
    fn weight(&self, v: u32) -> u64 {
        if self.weighted {
            u64::from(weight_of(v))
        } else {
            1
        }
    }

    /// The total weight the cache should hold.
    fn total_weight(&self) -> u64 {
        self.map.values().map(|e| self.weight(e.value)).sum()
    }

    /// Whether a write may evict for size: the smallest partition's share
    /// cannot hold every key at its heaviest.
    fn may_evict(&self) -> bool {
        let heaviest = if self.weighted { MAX_WEIGHT } else { 1 };
        self.capacity / (self.partitions as u64) < u64::from(KEYS) * heaviest
    }

    fn expired(&self, e: &Stored, now: u64) -> bool {
        e.expires_at <= now || self.tti_ms.is_some_and(|tti| e.last_access + tti <= now)
    }

    fn insert(&mut self, k: u16, v: u32, expires_at: Option<u64>, now: u64) {
        let deadline = expires_at
            .unwrap_or(u64::MAX)
            .min(self.ttl_ms.map_or(u64::MAX, |ttl| now + ttl));
        if let Some(old) = self.map.remove(&k) {
            let cause = if self.expired(&old, now) {
                RemovalCause::Expired
            } else {
                RemovalCause::Replaced
            };
            self.events.push((k, old.value, cause));
        }
        if deadline <= now {
            self.events.push((k, v, RemovalCause::Expired));
        } else {
            self.map.insert(
                k,
                Stored {
                    value: v,
                    expires_at: deadline,
                    last_access: now,
                },
            );
        }
    }

    fn get(&mut self, k: u16, now: u64) -> Option<u32> {
        let e = *self.map.get(&k)?;
        if self.expired(&e, now) {
            self.map.remove(&k);
            self.events.push((k, e.value, RemovalCause::Expired));
            return None;
        }
        if self.tti_ms.is_some() {
            self.map.get_mut(&k).unwrap().last_access = now;
        }
        Some(e.value)
    }

    fn contains(&self, k: u16, now: u64) -> bool {
        self.map.get(&k).is_some_and(|e| !self.expired(e, now))
    }

    fn remove(&mut self, k: u16, now: u64) -> Option<u32> {
        let e = self.map.remove(&k)?;
        if self.expired(&e, now) {
            self.events.push((k, e.value, RemovalCause::Expired));
            None
        } else {
            self.events.push((k, e.value, RemovalCause::Explicit));
            Some(e.value)
        }
    }

    fn clear(&mut self) {
        for (k, e) in self.map.drain() {
            self.events.push((k, e.value, RemovalCause::Explicit));
        }
    }

    fn purge(&mut self, now: u64) -> usize {
        let expired: Vec<u16> = self
            .map
            .iter()
            .filter(|(_, e)| self.expired(e, now))
            .map(|(k, _)| *k)
            .collect();
        for k in &expired {
            let e = self.map.remove(k).unwrap();
            self.events.push((*k, e.value, RemovalCause::Expired));
        }
        expired.len()
    }
}

type Events = Arc<Mutex<Vec<(u16, u32, RemovalCause)>>>;

fn sorted(mut events: Vec<(u16, u32, RemovalCause)>) -> Vec<(u16, u32, RemovalCause)> {
    events.sort_by_key(|&(k, v, cause)| (k, v, format!("{cause:?}")));
    events
}

fn check(ops: &[Op], ttl_ms: Option<u64>, tti_ms: Option<u64>, partitions: usize) {
    check_weighed(ops, ttl_ms, tti_ms, partitions, false);
}

fn check_weighed(
    ops: &[Op],
    ttl_ms: Option<u64>,
    tti_ms: Option<u64>,
    partitions: usize,
    weighted: bool,
) {
    let clock = ManualClock::default();
    let events: Events = Arc::default();
    let sink = events.clone();
    let mut builder = MemoryCache::<u16, u32>::builder()
        .max_capacity(ROOMY)
        .partitions(partitions)
        .clock(clock.clock())
        .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((k, v, cause)));
    if let Some(ttl) = ttl_ms {
        builder = builder.time_to_live(Duration::from_millis(ttl));
    }
    if let Some(tti) = tti_ms {
        builder = builder.time_to_idle(Duration::from_millis(tti));
    }
    if weighted {
        builder = builder.weigher(|_, v| weight_of(*v));
    }
    let cache = builder.build();
    let mut model = Model {
        map: HashMap::new(),
        ttl_ms,
        tti_ms,
        events: Vec::new(),
        capacity: ROOMY,
        partitions,
        weighted,
    };

    for (step, op) in ops.iter().enumerate() {
        let now = clock.now_ms();
        match *op {
            Op::Insert(k, v) => {
                cache.insert(k, v);
                model.insert(k, v, None, now);
            }
            Op::InsertWithTtl(k, v, us) => {
                let ttl = Duration::from_micros(us);
                let result = cache.insert_with_ttl(k, v, ttl);
                if ttl < Duration::from_millis(1) {
                    let err = result.expect_err("a TTL under 1 ms must be rejected");
                    assert_eq!(err.kind(), ErrorKind::InvalidTtl, "step {step}: {op:?}");
                } else {
                    result.expect("a TTL of 1 ms or more is valid");
                    model.insert(k, v, Some(now + us / 1_000), now);
                }
            }
            Op::InsertWithExpiry(k, v, offset) => {
                let at = offset.map(|o| now.checked_add_signed(o).unwrap());
                cache.insert_with_expiry(k, v, at);
                model.insert(k, v, at, now);
            }
            Op::Get(k) => {
                assert_eq!(cache.get(&k), model.get(k, now), "step {step}: {op:?}");
            }
            Op::Remove(k) => {
                assert_eq!(
                    cache.remove(&k),
                    model.remove(k, now),
                    "step {step}: {op:?}"
                );
            }
            Op::ContainsKey(k) => {
                assert_eq!(
                    cache.contains_key(&k),
                    model.contains(k, now),
                    "step {step}: {op:?}"
                );
            }
            Op::Clear => {
                cache.clear();
                model.clear();
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Op::PurgeExpired => {
                assert_eq!(
                    cache.purge_expired(),
                    model.purge(now),
                    "step {step}: {op:?}"
                );
            }
            Op::Resize(capacity) => {
                let result = cache.set_capacity(capacity);
                if capacity < partitions as u64 {
                    let err = result.expect_err("each partition needs a unit of capacity");
                    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "step {step}: {op:?}");
                } else {
                    result.expect("a capacity of one unit per partition is valid");
                    model.capacity = capacity;
                }
                assert_eq!(cache.max_capacity(), model.capacity, "step {step}: {op:?}");
            }
        }

        cache.validate();
        let now = clock.now_ms();
        // A write also advances the timer wheel, which may reclaim entries
        // that expired some time ago (at most about a second late). The
        // model cannot know when a bucket fires, so it accepts such a
        // reclamation, but only of an entry it also holds as expired, with
        // that very value.
        //
        // Where room is scarce (after a shrink), a write or a resize may
        // also evict for size; the model accepts that of an entry it holds,
        // live and with that very value, and drops it too. Which entry the
        // policy picks is not the model's to say.
        let mut seen = std::mem::take(&mut *events.lock().unwrap());
        if matches!(
            op,
            Op::Insert(..) | Op::InsertWithTtl(..) | Op::InsertWithExpiry(..) | Op::Resize(..)
        ) {
            let may_evict = model.may_evict();
            seen.retain(|&(k, v, cause)| {
                let expected = model.events.contains(&(k, v, cause));
                let reclaimed = !expected
                    && model.map.get(&k).is_some_and(|e| {
                        e.value == v
                            && match cause {
                                RemovalCause::Expired => model.expired(e, now),
                                RemovalCause::Size => may_evict && !model.expired(e, now),
                                _ => false,
                            }
                    });
                if reclaimed {
                    model.map.remove(&k);
                }
                !reclaimed
            });
        }
        assert_eq!(
            cache.entry_count(),
            model.map.len() as u64,
            "step {step}: entry_count after {op:?}"
        );
        assert_eq!(
            cache.weighted_size(),
            model.total_weight(),
            "step {step}: weighted_size after {op:?}"
        );
        assert!(
            cache.weighted_size() <= model.capacity,
            "step {step}: over capacity after {op:?}"
        );
        assert_eq!(
            sorted(seen),
            sorted(std::mem::take(&mut model.events)),
            "step {step}: listener notifications after {op:?}"
        );
        // `contains_key` changes nothing, so every key can be probed.
        for k in 0..KEYS {
            assert_eq!(
                cache.contains_key(&k),
                model.contains(k, now),
                "step {step}: contains_key({k}) after {op:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn matches_a_map_without_cache_wide_expiry(ops in proptest::collection::vec(op(), 1..150)) {
        check(&ops, None, None, 4);
    }

    #[test]
    fn matches_a_map_with_time_to_live(
        ops in proptest::collection::vec(op(), 1..150),
        ttl in 1u64..120,
    ) {
        check(&ops, Some(ttl), None, 3);
    }

    #[test]
    fn matches_a_map_with_time_to_idle(
        ops in proptest::collection::vec(op(), 1..150),
        tti in 1u64..120,
    ) {
        check(&ops, None, Some(tti), 4);
    }

    #[test]
    fn matches_a_map_with_both_expiries(
        ops in proptest::collection::vec(op(), 1..150),
        ttl in 1u64..200,
        tti in 1u64..120,
        partitions in 1usize..6,
    ) {
        check(&ops, Some(ttl), Some(tti), partitions);
    }

    #[test]
    fn matches_a_map_across_resizes(
        ops in proptest::collection::vec(ops_resizing(6), 1..200),
        partitions in 1usize..4,
        weighted in any::<bool>(),
    ) {
        check_weighed(&ops, None, None, partitions, weighted);
    }

    #[test]
    fn matches_a_map_with_expiries_across_resizes(
        ops in proptest::collection::vec(ops_resizing(6), 1..200),
        ttl in 1u64..200,
        tti in proptest::option::of(1u64..120),
        partitions in 1usize..4,
        weighted in any::<bool>(),
    ) {
        check_weighed(&ops, Some(ttl), tti, partitions, weighted);
    }
}
