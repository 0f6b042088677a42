//! The hot tier as the typed cache holds it: each value with what it needs
//! to move down the hierarchy later.

use std::collections::HashMap;
use std::hash::Hash;

use cache_backends::memory::MemoryCache;
use cache_core::{Clock, DataClass, Flags, Meta, Placement, Result};
use parking_lot::RwLock;

/// A value in the hot tier, with its expiry, class and whether the tier
/// below already holds the same value (so evicting it need not write it
/// there again).
#[derive(Clone, Debug)]
pub(crate) struct Slot<V> {
    /// `None` for a negative entry: the key is known to have no value.
    pub(crate) value: Option<V>,
    pub(crate) expires_at_ms: Option<u64>,
    pub(crate) created_at_ms: u64,
    /// An index into the cache's [`ClassNames`]: a copy of a small number
    /// rather than of a shared name, so that a hot hit touches no shared
    /// counter.
    pub(crate) class: u16,
    pub(crate) placement: Placement,
    /// The tier below already holds this very value (it was written
    /// through, or promoted from there), so evicting it writes nothing.
    pub(crate) held_below: bool,
    /// Where the value stands among the key's values (see
    /// [`crate::stripes`]): a write's `WriteGuard::seq`, or a copy's
    /// `copy_seq` (a promotion, a load). Later writes of the key have
    /// higher ones, so an entry waiting for demotion can tell whether it
    /// was replaced.
    pub(crate) seq: u64,
    /// The key is in the analytics' sample of entries whose use is followed
    /// (so a hot hit of it is reported, and hits of other keys cost
    /// nothing).
    pub(crate) tracked: bool,
    /// A negative entry that remembers a failed load
    /// ([`Flags::FAILED`]).
    pub(crate) failed: bool,
}

impl<V> Slot<V> {
    /// Whether the slot is unexpired at `now_ms` by its own expiry.
    #[inline]
    pub(crate) fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    /// The slot's metadata as the byte tiers store it: expiry, creation
    /// time, class (named through `names`) and flags.
    pub(crate) fn meta(&self, names: &ClassNames) -> Meta {
        let mut meta = Meta::new(self.created_at_ms).expires_at(self.expires_at_ms);
        meta.class = names.class(self.class);
        if self.value.is_none() {
            meta.flags = meta.flags.with(Flags::NEGATIVE);
        }
        if self.failed {
            meta.flags = meta.flags.with(Flags::FAILED);
        }
        if !self.placement.in_memory() {
            meta.flags = meta.flags.with(Flags::BELOW_MEMORY);
        }
        meta
    }
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

/// The hot tier of a [`Cache`](crate::Cache): typed values in memory,
/// for direct synchronous access and inspection. Changes made here do not
/// reach the tiers below.
pub struct HotTier<K, V> {
    pub(crate) engine: MemoryCache<K, Slot<V>>,
    pub(crate) clock: Clock,
    /// With stale-if-error the engine keeps entries past their expiry (the
    /// slot's), to serve them when a load fails; they are not live.
    pub(crate) stale: bool,
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
    /// The value for `key`, if present and unexpired; counts as a use. A
    /// negative entry has no value.
    pub fn get(&self, key: &K) -> Option<V> {
        self.live(key).and_then(|slot| slot.value)
    }

    /// Whether `key` has a live value here (a negative entry is none);
    /// does not count as a use.
    pub fn contains_key(&self, key: &K) -> bool {
        let now = self.stale.then(|| self.clock.now_ms());
        self.engine.contains_key_where(key, |slot| {
            slot.value.is_some() && now.is_none_or(|now| slot.is_live(now))
        })
    }

    /// The slot of `key` if it is live: unexpired by its own expiry, which
    /// the engine's passes under stale-if-error. Counts as a use.
    #[inline]
    pub(crate) fn live(&self, key: &K) -> Option<Slot<V>> {
        let slot = self.engine.get(key)?;
        if self.stale && !slot.is_live(self.clock.now_ms()) {
            return None;
        }
        Some(slot)
    }

    /// The value of `key` kept past its expiry for stale-if-error, if it
    /// is still within the window.
    pub(crate) fn stale_value(&self, key: &K) -> Option<V> {
        if !self.stale {
            return None;
        }
        self.engine.get(key)?.value
    }

    /// Removes `key` from this tier only, returning its value.
    pub fn remove(&self, key: &K) -> Option<V> {
        self.engine.remove(key).and_then(|slot| slot.value)
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

    /// Changes how many entries it holds, at run time, at once: a shrink
    /// evicts what no longer fits, as any eviction does. Once no write is
    /// running, the tier holds at most `max_capacity` entries. A capacity
    /// the engine would refuse (0, or fewer than its partitions) is an error
    /// and changes nothing.
    ///
    /// With write-on-evict, use
    /// [`Cache::set_capacity`](crate::Cache::set_capacity) instead: here a
    /// shrink queues what it evicts for demotion all at once, and past the
    /// queue's bound (10,000 entries) the rest is dropped (counted in
    /// [`HierarchyStats::demotions_dropped`](crate::HierarchyStats)).
    pub fn set_capacity(&self, max_capacity: u64) -> Result<()> {
        self.engine.set_capacity(max_capacity)
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
