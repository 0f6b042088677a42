//! The hot tier as the typed cache holds it: each value with what it needs
//! to move down the hierarchy later.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use cache_backends::memory::{MemoryCache, RemovalCause};
use cache_core::{DataClass, Placement};
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

/// Entries the hot tier evicted for room, waiting to be written to the warm
/// tier by the call that evicted them (write-on-evict).
pub(crate) struct Evicted<K, V> {
    queue: Mutex<Vec<(K, Slot<V>)>>,
    /// The most entries waiting at once; beyond it an evicted entry is
    /// dropped (and counted) rather than let memory grow.
    bound: usize,
    dropped: std::sync::atomic::AtomicU64,
}

impl<K, V> Evicted<K, V> {
    pub(crate) fn new(bound: usize) -> Self {
        Evicted {
            queue: Mutex::new(Vec::new()),
            bound,
            dropped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn push(&self, key: K, slot: Slot<V>) {
        let mut queue = self.queue.lock();
        if queue.len() < self.bound {
            queue.push((key, slot));
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Takes everything waiting.
    pub(crate) fn take(&self) -> Vec<(K, Slot<V>)> {
        std::mem::take(&mut *self.queue.lock())
    }

    /// Whether nothing is waiting (without taking the lock for long).
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }

    /// Evicted entries dropped because too many were waiting.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The listener that queues what the hot tier evicts for the warm tier
/// (write-on-evict): only entries evicted for room (not expired, removed
/// or replaced), that may live below memory, and that the warm tier does
/// not already hold.
pub(crate) fn demote_on_evict<K, V>(
    evicted: Arc<Evicted<K, V>>,
) -> impl Fn(K, Slot<V>, RemovalCause) + Send + Sync + 'static
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    move |key, slot, cause| {
        if cause == RemovalCause::Size && !slot.clean && slot.placement.below_memory() {
            evicted.push(key, slot);
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
