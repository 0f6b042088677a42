//! A run's plan: the keys of every source, deduplicated, ordered hottest
//! first and cut to the run's limit.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};

use crate::WarmKey;

/// One key of the plan, with what orders it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Planned<K> {
    /// The key to warm.
    pub(super) key: K,
    /// The index of the source that warms it.
    pub(super) source: usize,
    /// That source's priority.
    pub(super) priority: i32,
    /// The highest frequency any source gave the key.
    pub(super) frequency: u32,
    /// The key's place in the order sources and keys were given, which
    /// breaks ties so that the order is stable.
    seq: usize,
}

/// Builds the plan from each source's priority and listed keys (in the
/// order the sources were given; a failed listing is an empty one).
///
/// A key offered by several sources is warmed once, by the source with the
/// highest priority (the first given, among equals), and ranked by the
/// highest frequency any of them gave it. The plan is ordered by priority,
/// then frequency, both descending, then the order given, and holds at most
/// `max_keys` keys: the first ones in that order.
pub(super) fn plan<K: Clone + Hash + Eq>(
    listings: Vec<(i32, Vec<WarmKey<K>>)>,
    max_keys: usize,
) -> Vec<Planned<K>> {
    let total: usize = listings.iter().map(|(_, keys)| keys.len()).sum();
    let mut by_priority: Vec<_> = listings.into_iter().enumerate().collect();
    // Visiting the sources from the highest priority down means the first
    // source to offer a key is the one that warms it.
    by_priority.sort_by_key(|(_, (priority, _))| std::cmp::Reverse(*priority));

    let mut index: HashMap<K, usize> = HashMap::with_capacity(total);
    let mut planned: Vec<Planned<K>> = Vec::with_capacity(total);
    for (source, (priority, keys)) in by_priority {
        for WarmKey { key, frequency } in keys {
            match index.entry(key) {
                Entry::Occupied(seen) => {
                    let entry = &mut planned[*seen.get()];
                    entry.frequency = entry.frequency.max(frequency);
                }
                Entry::Vacant(slot) => {
                    planned.push(Planned {
                        key: slot.key().clone(),
                        source,
                        priority,
                        frequency,
                        seq: planned.len(),
                    });
                    slot.insert(planned.len() - 1);
                }
            }
        }
    }
    drop(index);

    if planned.len() > max_keys {
        // Selecting before sorting keeps a long listing from costing a
        // full sort when only the hottest few are kept.
        if max_keys > 0 {
            planned.select_nth_unstable_by(max_keys - 1, hottest_first);
        }
        planned.truncate(max_keys);
    }
    planned.sort_unstable_by(hottest_first);
    planned
}

/// The plan's order: priority, then frequency, descending, then the order
/// given. No two keys share a `seq`, so an unstable sort is stable here.
fn hottest_first<K>(a: &Planned<K>, b: &Planned<K>) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(b.frequency.cmp(&a.frequency))
        .then(a.seq.cmp(&b.seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(u32, u32)]) -> Vec<WarmKey<u32>> {
        list.iter()
            .map(|&(key, frequency)| WarmKey::with_frequency(key, frequency))
            .collect()
    }

    fn order(plan: &[Planned<u32>]) -> Vec<u32> {
        plan.iter().map(|p| p.key).collect()
    }

    #[test]
    fn priority_then_frequency_then_given_order() {
        let plan = plan(
            vec![
                (0, keys(&[(1, 9), (2, 0)])),
                (5, keys(&[(10, 1), (11, 5), (12, 1)])),
                (5, keys(&[(20, 5), (21, 0)])),
            ],
            usize::MAX,
        );
        assert_eq!(order(&plan), [11, 20, 10, 12, 21, 1, 2]);
    }

    #[test]
    fn a_duplicate_goes_to_the_higher_priority_with_the_highest_frequency() {
        let plan = plan(
            vec![
                (0, keys(&[(7, 9), (8, 3)])),
                (1, keys(&[(9, 5), (7, 1)])),
                (1, keys(&[(7, 2), (9, 0)])),
            ],
            usize::MAX,
        );
        assert_eq!(order(&plan), [7, 9, 8]);
        assert_eq!((plan[0].source, plan[0].frequency), (1, 9));
        assert_eq!((plan[1].source, plan[1].frequency), (1, 5));
        assert_eq!(plan[2].source, 0);
    }

    #[test]
    fn a_key_repeated_in_one_source_is_planned_once() {
        let plan = plan(vec![(0, keys(&[(1, 0), (2, 0), (1, 4)]))], usize::MAX);
        assert_eq!(order(&plan), [1, 2]);
        assert_eq!(plan[0].frequency, 4);
    }

    #[test]
    fn truncation_keeps_the_hottest() {
        let listed: Vec<(u32, u32)> = (0..100).map(|k| (k, (k * 37) % 100)).collect();
        let plan = plan(vec![(0, keys(&listed))], 5);
        let frequencies: Vec<u32> = plan.iter().map(|p| p.frequency).collect();
        assert_eq!(frequencies, [99, 98, 97, 96, 95]);
        assert!(super::plan(vec![(0, keys(&listed))], 0).is_empty());
    }
}
