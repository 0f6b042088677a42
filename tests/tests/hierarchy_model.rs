//! The whole stack (hot memory, a redb file, and a memory backend standing
//! in for Redis) against a `HashMap` with expiry, under the manual clock,
//! with write-through and with write-on-evict.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tiercache::memory::MemoryBackend;
use tiercache::{Cache, ManualClock, Placement};

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u16),
    InsertTtl(u8, u16, u16),
    InsertBelowMemory(u8, u16),
    Remove(u8),
    Get(u8),
    Contains(u8),
    Advance(u16),
    /// Drops the hot tier's contents (write-through only: with
    /// write-on-evict the hot tier is the only copy of recent writes).
    ClearHot,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0u8..12;
    prop_oneof![
        4 => (key.clone(), any::<u16>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (key.clone(), any::<u16>(), 1u16..3_000).prop_map(|(k, v, t)| Op::InsertTtl(k, v, t)),
        1 => (key.clone(), any::<u16>()).prop_map(|(k, v)| Op::InsertBelowMemory(k, v)),
        2 => key.clone().prop_map(Op::Remove),
        5 => key.clone().prop_map(Op::Get),
        1 => key.prop_map(Op::Contains),
        2 => (1u16..2_000).prop_map(Op::Advance),
        1 => Just(Op::ClearHot),
    ]
}

/// The model: each key's value and absolute expiry.
#[derive(Default)]
struct Model {
    entries: HashMap<u8, (u16, Option<u64>)>,
}

impl Model {
    fn get(&self, k: u8, now: u64) -> Option<u16> {
        match self.entries.get(&k) {
            Some(&(v, expiry)) if expiry.is_none_or(|at| now < at) => Some(v),
            _ => None,
        }
    }
}

async fn run(ops: Vec<Op>, write_on_evict: bool) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let remote = MemoryBackend::builder()
        .max_bytes(1 << 20)
        .clock(clock.clock())
        .build();
    let cache: Cache<u8, u16> = Cache::builder()
        .max_capacity(4)
        .clock(clock.clock())
        .class_placement("cold", Placement::BelowMemory)
        .disk(dir.path().join("model.redb"))
        .tier(Arc::new(remote))
        .write_on_evict(write_on_evict)
        .build()
        .await
        .unwrap();
    let mut model = Model::default();
    for op in ops {
        let now = clock.now_ms();
        match op {
            Op::Insert(k, v) => {
                cache.insert(k, v).await.unwrap();
                model.entries.insert(k, (v, None));
            }
            Op::InsertTtl(k, v, ms) => {
                let ttl = Duration::from_millis(u64::from(ms));
                cache.insert_with_ttl(k, v, ttl).await.unwrap();
                model.entries.insert(k, (v, Some(now + u64::from(ms))));
            }
            Op::InsertBelowMemory(k, v) => {
                cache.insert_with_class(k, v, "cold").await.unwrap();
                model.entries.insert(k, (v, None));
            }
            Op::Remove(k) => {
                cache.remove(&k).await.unwrap();
                model.entries.remove(&k);
            }
            Op::Get(k) => {
                assert_eq!(cache.get(&k).await.unwrap(), model.get(k, now), "get {k}");
            }
            Op::Contains(k) => {
                let held = cache.contains_key(&k).await.unwrap();
                assert_eq!(held, model.get(k, now).is_some(), "contains {k}");
            }
            Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
            Op::ClearHot => {
                if !write_on_evict {
                    cache.hot().clear();
                }
            }
        }
    }
    // Everything the model holds is served, whatever tier holds it.
    let now = clock.now_ms();
    for k in 0..12 {
        assert_eq!(
            cache.get(&k).await.unwrap(),
            model.get(k, now),
            "final get {k}"
        );
    }
    assert_eq!(cache.hierarchy_stats().demotions_dropped, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_stack_behaves_like_a_map_with_expiry(
        ops in prop::collection::vec(op(), 1..120),
        write_on_evict in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(run(ops, write_on_evict));
    }
}
