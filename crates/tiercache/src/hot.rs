//! The hot tier as the typed cache holds it: each value with what it needs
//! to move down the hierarchy later.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::{Clock, DataClass, Placement};
use parking_lot::{Mutex, RwLock};

/// A value in the hot tier, with its expiry, class and whether the warm
/// tier already holds the same value (so evicting it need not write it
/// there again).
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    pub(crate) value: V,
    pub(crate) expires_at_ms: Option<u64>,
    pub(crate) created_at_ms: u64,
    /// An index into the cache's [`ClassNames`]: a copy of a small number
    /// rather than of a shared name, so that a hot hit touches no shared
    /// counter.
    pub(crate) class: u16,
    pub(crate) placement: Placement,
    /// The warm tier holds this very value: written through, or promoted
    /// from below.
    pub(crate) clean: bool,
    /// The version of the key's stripe when the value was written (see
    /// [`crate::stripes`]): later writes of the key have higher ones, so
    /// an entry waiting for demotion can tell whether it was replaced.
    pub(crate) seq: u64,
    /// The key is in the analytics' sample of entries whose use is followed
    /// (so a hot hit of it is reported, and hits of other keys cost
    /// nothing).
    pub(crate) tracked: bool,
}

/// The class names the hot tier has seen, each under a small number.
#[derive(Debug, Default)]
pub(crate) struct ClassNames {
    names: RwLock<(Vec<DataClass>, HashMap<DataClass, u16>)>,
}

impl ClassNames {
    /// The number of `class`, given one on first sight. Past 65,535 names
    /// (classes are meant to be a handful) a class counts as the default.
    pub(crate) fn index(&self, class: &DataClass) -> u16 {
        if matches!(class, DataClass::Default) {
            return 0;
        }
        if let Some(&i) = self.names.read().1.get(class) {
            return i;
        }
        let mut names = self.names.write();
        let (list, index) = &mut *names;
        if let Some(&i) = index.get(class) {
            return i;
        }
        match u16::try_from(list.len() + 1) {
            Ok(i) => {
                list.push(class.clone());
                index.insert(class.clone(), i);
                i
            }
            Err(_) => 0,
        }
    }

    /// The class numbered `i`.
    pub(crate) fn class(&self, i: u16) -> DataClass {
        match i {
            0 => DataClass::Default,
            i => self.names.read().0[usize::from(i) - 1].clone(),
        }
    }
}

/// Entries the hot tier let go of that the warm tier does not hold yet
/// (write-on-evict), by key, until a demotion writes them there.
///
/// While an entry waits here it is still the key's value: a lookup that
/// misses the hot tier looks here before it looks below, so an entry is
/// never out of sight between leaving memory and reaching the warm tier.
/// A write or removal of the key takes it out (under the key's stripe
/// lock), so an older value can never be demoted over a newer one, and a
/// demotion removes it only after the warm tier took it, so a demotion
/// cancelled half way loses nothing.
pub(crate) struct Pending<K, V> {
    waiting: Mutex<HashMap<K, Slot<V>>>,
    /// The most entries waiting at once; beyond it an evicted entry is
    /// dropped (and counted) rather than let memory grow.
    bound: usize,
    dropped: AtomicU64,
}

impl<K: Hash + Eq + Clone, V: Clone> Pending<K, V> {
    pub(crate) fn new(bound: usize) -> Self {
        Pending {
            waiting: Mutex::new(HashMap::new()),
            bound,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues what the hot tier let go of. The hot tier's listener runs
    /// under its partition's lock, so this happens before any later change
    /// of the key; a newer write's entry is never replaced by an older one.
    fn push(&self, key: K, slot: Slot<V>) {
        let mut waiting = self.waiting.lock();
        let len = waiting.len();
        match waiting.entry(key) {
            Entry::Occupied(mut e) => {
                if e.get().seq <= slot.seq {
                    e.insert(slot);
                }
            }
            Entry::Vacant(e) if len < self.bound => {
                e.insert(slot);
            }
            Entry::Vacant(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The entry waiting for `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<Slot<V>> {
        self.waiting.lock().get(key).cloned()
    }

    /// Takes out the entry waiting for `key` if it was written before
    /// `seq` (a newer write or a removal of the key replaces it).
    pub(crate) fn purge(&self, key: &K, seq: u64) {
        let mut waiting = self.waiting.lock();
        if waiting.get(key).is_some_and(|slot| slot.seq < seq) {
            waiting.remove(key);
        }
    }

    /// Takes out the entry for `key` once the warm tier holds it, unless a
    /// newer one replaced it meanwhile.
    pub(crate) fn demoted(&self, key: &K, seq: u64) {
        let mut waiting = self.waiting.lock();
        if waiting.get(key).is_some_and(|slot| slot.seq == seq) {
            waiting.remove(key);
        }
    }

    /// Counts an entry the warm tier refused: it is given up, like an
    /// eviction without a tier below.
    pub(crate) fn failed(&self, key: &K, seq: u64) {
        self.demoted(key, seq);
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Up to `n` keys waiting, for a demotion pass.
    pub(crate) fn keys(&self, n: usize) -> Vec<K> {
        self.waiting.lock().keys().take(n).cloned().collect()
    }

    /// How many entries wait.
    pub(crate) fn len(&self) -> usize {
        self.waiting.lock().len()
    }

    /// Whether the queue is past half full, so callers should help empty it.
    pub(crate) fn is_crowded(&self) -> bool {
        self.len() > self.bound / 2
    }

    /// Forgets everything waiting (the cache is being cleared).
    pub(crate) fn clear(&self) {
        self.waiting.lock().clear();
    }

    /// Evicted entries dropped because too many were waiting, or because
    /// the warm tier refused them.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The listener that queues what the hot tier lets go of for the warm tier
/// (write-on-evict): entries evicted for room, and entries that idled out
/// (their time-to-idle passed while their time-to-live has not), that may
/// live below memory and that the warm tier does not already hold.
/// Entries expired, removed or replaced are not demoted.
pub(crate) fn demote_on_evict<K, V>(
    pending: Arc<Pending<K, V>>,
    clock: Clock,
) -> impl Fn(K, Slot<V>, RemovalCause) + Send + Sync + 'static
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    move |key, slot, cause| {
        if slot.clean || !slot.placement.below_memory() {
            return;
        }
        let demote = match cause {
            RemovalCause::Size => true,
            RemovalCause::Expired => slot.expires_at_ms.is_none_or(|at| at > clock.now_ms()),
            _ => false,
        };
        if demote {
            pending.push(key, slot);
        }
    }
}

/// The hot tier of a [`Cache`](crate::Cache): typed values in memory,
/// for direct synchronous access and inspection. Changes made here do not
/// reach the tiers below.
pub struct HotTier<K, V> {
    pub(crate) engine: MemoryCache<K, Slot<V>>,
}

impl<K, V> std::fmt::Debug for HotTier<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotTier")
            .field("engine", &self.engine)
            .finish()
    }
}

impl<K, V> HotTier<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The value for `key`, if present and unexpired; counts as a use.
    pub fn get(&self, key: &K) -> Option<V> {
        self.engine.get(key).map(|slot| slot.value)
    }

    /// Whether `key` has a live value here.
    pub fn contains_key(&self, key: &K) -> bool {
        self.engine.contains_key(key)
    }

    /// Removes `key` from this tier only, returning its value.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.engine.remove(key).map(|slot| slot.value)
    }

    /// Removes every entry from this tier only.
    pub fn clear(&self) {
        self.engine.clear();
    }

    /// The number of entries held.
    pub fn entry_count(&self) -> u64 {
        self.engine.entry_count()
    }

    /// The most entries (or weight) it holds.
    pub fn max_capacity(&self) -> u64 {
        self.engine.max_capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_get_stable_small_numbers() {
        let names = ClassNames::default();
        assert_eq!(names.index(&DataClass::Default), 0);
        let a = names.index(&DataClass::named("a"));
        let b = names.index(&DataClass::named("b"));
        assert_ne!(a, b);
        assert_eq!(names.index(&DataClass::named("a")), a);
        assert_eq!(names.class(a), DataClass::named("a"));
        assert_eq!(names.class(0), DataClass::Default);
    }
}
