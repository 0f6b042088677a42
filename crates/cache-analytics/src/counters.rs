//! The live, sharded counters of one tier, and how they become a
//! [`TierStats`].

use std::array;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::DataClass;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use crate::latency::LatencyHistogram;
use crate::op::{Op, Outcome};
use crate::shard::{shard_count, thread_index};
use crate::stats::{ClassStats, OpStats, ResultCounts, TierStats};

/// The most named classes a shard counts separately; further ones are
/// counted together under [`OTHER_CLASSES`].
pub(crate) const MAX_NAMED_CLASSES: usize = 64;

/// The class that named classes beyond the first 64 are counted under (the
/// cap applies to each of a tier's recording shards), so a stream of
/// made-up class names cannot grow the counters without bound.
pub const OTHER_CLASSES: &str = "other";

/// What happened to an entry of some class.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ClassEvent {
    /// A hit returning this many value bytes.
    Hit(usize),
    Miss,
    Negative,
    /// An insert storing this many value bytes.
    Insert(usize),
}

/// The counts of one class. Atomics even under the named classes' mutex,
/// so that the default class, the common case, needs no lock at all.
#[derive(Debug, Default)]
struct ClassCells {
    hits: AtomicU64,
    misses: AtomicU64,
    negatives: AtomicU64,
    inserts: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl ClassCells {
    fn count(&self, event: ClassEvent) {
        let add = |cell: &AtomicU64, n: usize| {
            cell.fetch_add(n as u64, Ordering::Relaxed);
        };
        match event {
            ClassEvent::Hit(bytes) => {
                add(&self.hits, 1);
                add(&self.bytes_out, bytes);
            }
            ClassEvent::Miss => add(&self.misses, 1),
            ClassEvent::Negative => add(&self.negatives, 1),
            ClassEvent::Insert(bytes) => {
                add(&self.inserts, 1);
                add(&self.bytes_in, bytes);
            }
        }
    }

    fn add_to(&self, into: &mut ClassStats) {
        let read = |cell: &AtomicU64| cell.load(Ordering::Relaxed);
        into.hits += read(&self.hits);
        into.misses += read(&self.misses);
        into.negatives += read(&self.negatives);
        into.inserts += read(&self.inserts);
        into.bytes_in += read(&self.bytes_in);
        into.bytes_out += read(&self.bytes_out);
    }
}

/// The counters one group of threads writes. Aligned to two cache lines so
/// that neighbouring shards never share one (adjacent-line prefetching
/// pairs lines on common x86 parts).
#[derive(Debug, Default)]
#[repr(align(128))]
struct CounterShard {
    requests: [[AtomicU64; Outcome::COUNT]; Op::COUNT],
    default_class: ClassCells,
    named_classes: Mutex<HashMap<DataClass, ClassCells, RandomState>>,
}

/// Exact counts per operation and outcome and per class, and a latency
/// histogram per operation.
///
/// Every count is a relaxed atomic add on the calling thread's shard, so
/// threads do not bounce a shared cache line; a snapshot adds the shards up.
#[derive(Debug)]
pub(crate) struct TierCounters {
    shards: Box<[CounterShard]>,
    latency: [LatencyHistogram; Op::COUNT],
}

impl TierCounters {
    pub(crate) fn new() -> Self {
        TierCounters {
            shards: (0..shard_count())
                .map(|_| CounterShard::default())
                .collect(),
            latency: array::from_fn(|_| LatencyHistogram::new()),
        }
    }

    fn shard(&self) -> &CounterShard {
        &self.shards[thread_index() % self.shards.len()]
    }

    /// Counts `n` calls (or keys) of `op` that ended in `outcome`.
    #[inline]
    pub(crate) fn request(&self, op: Op, outcome: Outcome, n: u64) {
        self.shard().requests[op.index()][outcome.index()].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts an event of `class`.
    #[inline]
    pub(crate) fn class(&self, class: &DataClass, event: ClassEvent) {
        let shard = self.shard();
        if let DataClass::Default = class {
            shard.default_class.count(event);
            return;
        }
        let mut named = shard.named_classes.lock();
        if let Some(cells) = named.get(class) {
            cells.count(event);
        } else if named.len() < MAX_NAMED_CLASSES {
            named.entry(class.clone()).or_default().count(event);
        } else {
            named
                .entry(DataClass::named(OTHER_CLASSES))
                .or_default()
                .count(event);
        }
    }

    /// The latency histogram of `op`.
    pub(crate) fn latency(&self, op: Op) -> &LatencyHistogram {
        &self.latency[op.index()]
    }

    /// Everything counted so far, labelled `tier`.
    pub(crate) fn snapshot(&self, tier: &str) -> TierStats {
        let ops = Op::ALL
            .iter()
            .map(|&op| OpStats {
                op,
                results: ResultCounts::from_fn(|outcome| {
                    self.shards
                        .iter()
                        .map(|s| s.requests[op.index()][outcome.index()].load(Ordering::Relaxed))
                        .sum()
                }),
                latency: self.latency(op).snapshot(),
            })
            .collect();
        let mut classes: HashMap<String, ClassStats> = HashMap::new();
        let mut merge = |name: &str, cells: &ClassCells| {
            let stats = classes
                .entry(name.to_owned())
                .or_insert_with(|| ClassStats {
                    class: name.to_owned(),
                    ..ClassStats::default()
                });
            cells.add_to(stats);
        };
        for shard in &self.shards {
            merge(DataClass::Default.as_str(), &shard.default_class);
            for (class, cells) in shard.named_classes.lock().iter() {
                merge(class.as_str(), cells);
            }
        }
        let mut classes: Vec<ClassStats> = classes
            .into_values()
            .filter(|c| {
                *c != ClassStats {
                    class: c.class.clone(),
                    ..ClassStats::default()
                }
            })
            .collect();
        classes.sort_by(|a, b| a.class.cmp(&b.class));
        TierStats {
            tier: tier.to_owned(),
            ops,
            classes,
            entries: None,
            bytes: None,
            removals: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_exactly() {
        let counters = Arc::new(TierCounters::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = Arc::clone(&counters);
                thread::spawn(move || {
                    for _ in 0..1_000 {
                        c.request(Op::Get, Outcome::Hit, 1);
                        c.request(Op::GetMany, Outcome::Miss, 3);
                        c.class(&DataClass::named("session"), ClassEvent::Insert(10));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = counters.snapshot("memory");
        assert_eq!(s.count(Op::Get, Outcome::Hit), 8_000);
        assert_eq!(s.count(Op::GetMany, Outcome::Miss), 24_000);
        assert_eq!(s.count(Op::Get, Outcome::Miss), 0);
        let session = s.class("session").unwrap();
        assert_eq!((session.inserts, session.bytes_in), (8_000, 80_000));
    }

    #[test]
    fn classes_without_counts_are_left_out_and_the_rest_sorted() {
        let counters = TierCounters::new();
        counters.class(&DataClass::named("b"), ClassEvent::Hit(4));
        counters.class(&DataClass::named("a"), ClassEvent::Miss);
        counters.class(&DataClass::named("a"), ClassEvent::Negative);
        let s = counters.snapshot("t");
        let names: Vec<_> = s.classes.iter().map(|c| c.class.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!((s.classes[0].misses, s.classes[0].negatives), (1, 1));
        assert_eq!((s.classes[1].hits, s.classes[1].bytes_out), (1, 4));
    }

    #[test]
    fn classes_past_the_cap_are_counted_together() {
        let counters = TierCounters::new();
        for i in 0..MAX_NAMED_CLASSES + 10 {
            counters.class(&DataClass::named(&format!("c{i}")), ClassEvent::Insert(1));
        }
        let s = counters.snapshot("t");
        assert_eq!(s.classes.len(), MAX_NAMED_CLASSES + 1);
        assert_eq!(s.class(OTHER_CLASSES).unwrap().inserts, 10);
        let total: u64 = s.classes.iter().map(|c| c.inserts).sum();
        assert_eq!(total, MAX_NAMED_CLASSES as u64 + 10);
    }
}
