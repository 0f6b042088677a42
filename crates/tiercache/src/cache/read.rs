//! The read path, in order: the hot tier, the entries waiting for
//! demotion, a dirty key's latest write (write-back), each byte tier
//! below, the promotion of a hit into the tiers above it, and on a miss
//! everywhere the store behind the cache (read-through, `cache/store.rs`).

use std::hash::Hash;

use bytes::Bytes;
use cache_core::{Codec, Entry, Flags, Lookup, Placement, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Cache, HOT_LOOKUPS, HOT_MISSES, PROMOTIONS};
use crate::hot::Slot;

/// What a load's own look found: the answer, whether it came from the
/// cache's source (read-through; so that a "none" just loaded is not taken
/// for a negative hit), and the version noted before the look (the
/// stripe's, or in a memory-only cache the key's, `stripes::KeyVersions`),
/// under which what the caller loads next may be installed.
pub(super) struct Looked<V> {
    pub(super) found: Lookup<V>,
    pub(super) loaded: bool,
    pub(super) seen: u64,
}
use crate::protect::{LoadCounts, Skip};
use crate::tiers::{Change, Tier};

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// The value for `key`, from the nearest tier that has it. A negative
    /// entry (see [`insert_negative`](Self::insert_negative)) answers
    /// `None`, as a key with no value does; [`lookup`](Self::lookup) tells
    /// them apart.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        Ok(self.lookup(key).await?.into_hit())
    }

    /// What the cache knows of `key`: [`Lookup::Hit`] with its value,
    /// [`Lookup::Negative`] with the metadata of a negative entry (the key
    /// is known to have no value until it expires), or [`Lookup::Miss`].
    pub async fn lookup(&self, key: &K) -> Result<Lookup<V>> {
        let sample = self.start_lookup(key);
        let found = self.lookup_counted(key).await;
        self.inner.observer.done(sample);
        found
    }

    /// Counts a lookup of the hot tier as it starts, and starts its
    /// analytics sample.
    #[inline(always)]
    pub(super) fn start_lookup(&self, key: &K) -> crate::observe::Sample {
        let running = self.inner.counters.add_and_fetch_stripe(HOT_LOOKUPS, 1);
        self.inner.observer.start_lookup(running, key)
    }

    /// 1. The hot tier: a hit (or a negative entry) answers at once; a
    ///    hit on an entry old enough starts its refresh in the background.
    #[inline]
    pub(super) fn hot_lookup(&self, key: &K) -> Option<Lookup<V>> {
        let Some(slot) = self.inner.hot.live(key) else {
            self.inner.warm.on_access(key, false);
            return None;
        };
        self.inner.warm.on_access(key, slot.value.is_some());
        if slot.value.is_some() {
            self.inner
                .observer
                .on_hot_hit(key, slot.class, slot.tracked);
            self.refresh_if_due(key, slot.created_at_ms, slot.class);
        }
        Some(self.slot_lookup(slot))
    }

    /// 0. Bypass rules, then step 1, for a lookup that loads on a miss:
    ///    `None` when the hot tier has nothing, or the rules keep the
    ///    lookup out of it.
    #[inline]
    pub(super) fn hot_lookup_for(&self, key: &K, skip: Skip) -> Option<Lookup<V>> {
        if skip.memory {
            return None;
        }
        self.hot_lookup(key)
    }

    /// [`lookup`](Self::lookup), with the hot tier's counters.
    async fn lookup_counted(&self, key: &K) -> Result<Lookup<V>> {
        // 0. Bypass rules: a lookup they keep out of every tier goes to
        //    the source behind the cache, if there is one, and caches
        //    nothing.
        let skip = self.get_skip(key);
        if skip.everything {
            return self.bypassed_lookup(key).await;
        }
        if let Some(found) = self.hot_lookup_for(key, skip) {
            if found.is_negative() {
                // No value: for the entry tracker, a miss.
                self.inner.observer.on_miss(key, None);
                LoadCounts::add(&self.inner.protect.counts.negative_hits);
            }
            return Ok(found);
        }
        self.inner.counters.add(HOT_MISSES, 1);
        if self.inner.memory_only() {
            self.inner.observer.on_miss(key, None);
            return Ok(Lookup::Miss);
        }
        let kb = self.encode_key(key)?;
        let seen = self.inner.stripes.of(&kb).version();
        let mut loaded = false;
        let found = match self.lookup_below_hot(key, &kb, seen, skip).await {
            // 6. Missed everywhere: the store or the cache's loader, one
            //    load per key however many callers ask.
            Ok(Lookup::Miss) if self.inner.has_source() => {
                loaded = true;
                self.load_through(key, skip).await
            }
            found => found,
        };
        if matches!(found, Ok(Lookup::Miss | Lookup::Negative(_))) {
            self.inner.observer.on_miss(key, Some(&kb));
        }
        // A negative entry a tier answered; not one the load just stored.
        if !loaded && matches!(found, Ok(Lookup::Negative(_))) {
            LoadCounts::add(&self.inner.protect.counts.negative_hits);
        }
        found
    }

    /// A lookup bypass rules keep out of every tier: answered by the
    /// cache's source (nothing is cached), else [`Lookup::Bypassed`].
    async fn bypassed_lookup(&self, key: &K) -> Result<Lookup<V>> {
        if !self.inner.has_source() {
            return Ok(Lookup::Bypassed);
        }
        Ok(match self.source_load(key).await? {
            Some(v) => Lookup::Hit(v),
            None => Lookup::Miss,
        })
    }

    /// The leader of a load looks again, because another load may have
    /// finished between its first look and its turn; this second look is
    /// not a new request, so the hot tier's counters are left alone.
    pub(super) async fn lookup_uncounted(&self, key: &K, skip: Skip) -> Result<Looked<V>> {
        let hot = || {
            let slot = (!skip.memory).then(|| self.inner.hot.live(key)).flatten()?;
            Some(self.slot_lookup(slot))
        };
        if self.inner.memory_only() {
            // Noted before the look, so that what the caller loads after a
            // miss is stored only if no write of the key began since.
            let seen = self.inner.key_versions.version(key);
            return Ok(Looked {
                found: hot().unwrap_or(Lookup::Miss),
                loaded: false,
                seen,
            });
        }
        let kb = self.encode_key(key)?;
        // Noted before anything is read, so that what the caller loads
        // after a miss installs only if no write of the key ended since.
        let seen = self.inner.stripes.of(&kb).version();
        if let Some(found) = hot() {
            return Ok(Looked {
                found,
                loaded: false,
                seen,
            });
        }
        let (found, loaded) = match self.lookup_below_hot(key, &kb, seen, skip).await? {
            Lookup::Miss if self.inner.has_source() => {
                (self.read_through(key, &kb, seen).await?, true)
            }
            found => (found, false),
        };
        Ok(Looked {
            found,
            loaded,
            seen,
        })
    }

    /// Everything after a first miss in the hot tier, in order, with the
    /// stripe's version `seen` noted before.
    pub(super) async fn lookup_below_hot(
        &self,
        key: &K,
        kb: &Bytes,
        seen: u64,
        skip: Skip,
    ) -> Result<Lookup<V>> {
        let stripe = self.inner.stripes.of(kb);
        // 2. The version was noted before anything below is read: a
        //    promotion of what is found installs only if no write of the
        //    key ended since.
        // 3. The hot tier once more: a write that ended before the version
        //    was noted left its value there, or in the demotion queue, or
        //    (demoted) below.
        if !skip.memory
            && let Some(slot) = self.inner.hot.live(key)
        {
            return Ok(self.slot_lookup(slot));
        }
        //    Then, with write-on-evict, an entry on its way to the warm tier.
        if let Some(slot) = self.inner.policy.queue().and_then(|q| q.get(key))
            && slot
                .expires_at_ms
                .is_none_or(|at| at > self.inner.clock.now_ms())
        {
            return Ok(self.slot_lookup(slot));
        }
        //    Then, with write-back, the latest write of a dirty key: newer
        //    than what a tier below holds if the write was cut short.
        if let Some(found) = self.dirty_lookup(kb) {
            return Ok(found);
        }
        // 4. Each byte tier in order; the first answer is promoted (5).
        for (i, tier) in self.inner.tiers.iter().enumerate() {
            if skip.tier(i) {
                continue;
            }
            if tier.is_stale(kb) {
                // A write or removal failed here earlier: what it holds
                // for the key may be out of date, so it is not asked. The
                // removal that settles it waits for the key's writes.
                let _held = stripe.hold().await;
                tier.settle(kb).await;
                tier.count_miss();
                continue;
            }
            let Some(entry) = self.live_entry(tier, kb).await else {
                continue;
            };
            if entry.meta.is_negative() {
                tier.count_hit();
                self.promote(i, key, kb, None, entry.clone(), seen, skip)
                    .await;
                return Ok(Lookup::Negative(entry.meta));
            }
            if entry.meta.flags.compression() != 0 {
                // A compressed frame this stack does not decompress (a
                // tier shared with a cache that compresses it): neither
                // ours to decode nor corrupted, so it is left alone.
                tier.count_miss();
                continue;
            }
            let value: V = match self.inner.codec.decode(&entry.value) {
                Ok(v) => v,
                Err(_) => {
                    // A record that does not decode is never returned: it
                    // is counted as corrupted and dropped from the tier,
                    // unless a valid value replaced it meanwhile.
                    tier.count_error(cache_core::ErrorKind::Corrupted);
                    let _ = tier
                        .backend()
                        .dyn_remove_if_unchanged(kb, &entry.value)
                        .await;
                    continue;
                }
            };
            tier.count_hit();
            self.inner.observer.on_hit(key, kb);
            // With refresh-ahead, what the promotion consumes is kept to
            // see whether a reload is due.
            let due = self
                .inner
                .protect
                .refresh_after_ms
                .map(|_| (entry.meta.created_at_ms, entry.meta.class.clone()));
            self.promote(i, key, kb, Some(&value), entry, seen, skip)
                .await;
            if let Some((created_at_ms, class)) = due {
                let class = self.inner.class_names.index(&class);
                self.refresh_if_due(key, created_at_ms, class);
            }
            return Ok(Lookup::Hit(value));
        }
        Ok(Lookup::Miss)
    }

    /// What `tier` holds for `kb` that the cache may use: a value or a
    /// negative entry that is live by the cache's own clock (clocks of
    /// different machines disagree) and not distrusted. Anything else is
    /// counted as a miss or an error and is `None`.
    async fn live_entry(&self, tier: &Tier, kb: &Bytes) -> Option<Entry> {
        let entry = match tier.backend().dyn_get(kb).await {
            Ok(Lookup::Hit(entry)) => entry,
            // Kept as an entry, so that one check of expiry and distrust
            // below serves both answers.
            Ok(Lookup::Negative(meta)) => Entry::negative(meta),
            Ok(Lookup::Miss | Lookup::Bypassed) => {
                tier.count_miss();
                return None;
            }
            Err(e) => {
                tier.count_error(e.kind());
                return None;
            }
        };
        if entry.meta.is_expired(self.inner.clock.now_ms()) || tier.distrusts(&entry.meta) {
            tier.count_miss();
            return None;
        }
        Some(entry)
    }

    /// Step 5, the promotion, when the promotion policy says it is due:
    /// copies what tier `found_in` held (a value, or a negative entry when `value`
    /// is `None`) into every tier above it that its placement allows,
    /// keeping its absolute expiry (and so its remaining time to live),
    /// unless a write of the key's stripe ended after version `seen` was
    /// noted, or is under way, since the hit may then be older than that
    /// write. Tiers that bypass rules keep the key out of are left alone.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn promote(
        &self,
        found_in: usize,
        key: &K,
        kb: &Bytes,
        value: Option<&V>,
        entry: Entry,
        seen: u64,
        skip: Skip,
    ) {
        if !skip.warming
            && let Some(window) = &self.inner.promotion
            && !window.hit(kb, self.inner.clock.now_ms())
        {
            return;
        }
        // A copy upward is a write of the tiers above: the rules that keep
        // writes out of a tier keep the copy out too.
        let set = self.set_skip(key, entry.value.len(), &entry.meta.class, false);
        if set.everything {
            return;
        }
        let skip = Skip {
            everything: false,
            memory: skip.memory || set.memory,
            tiers: skip.tiers | set.tiers,
            warming: skip.warming,
        };
        let stripe = self.inner.stripes.of(kb);
        let Some(lock) = stripe.unchanged_since(seen) else {
            return;
        };
        self.inner.counters.add(PROMOTIONS, 1);
        let placement = if entry.meta.flags.contains(Flags::BELOW_MEMORY) {
            Placement::BelowMemory
        } else {
            self.inner
                .classes
                .load()
                .policy(&entry.meta.class)
                .placement
        };
        if placement.in_memory() && !skip.memory {
            // The tier below holds this value once the copies are done (or
            // held it already), so evicting it writes nothing.
            let class = self.inner.class_names.index(&entry.meta.class);
            let mut slot = Self::slot(
                value.cloned(),
                &entry.meta,
                class,
                Placement::Everywhere,
                true,
                crate::stripes::copy_seq(seen),
            );
            slot.tracked = self.inner.observer.follows(key);
            self.inner.hot.engine.insert_with_expiry(
                key.clone(),
                slot,
                self.inner.protect.hot_expiry(entry.meta.expires_at_ms),
            );
        }
        self.inner
            .tiers
            .apply_skipping(
                ..found_in,
                Change::Copy(kb, &entry),
                skip.tiers,
                &self.inner.clock,
            )
            .await;
        drop(lock);
        self.demote_pending().await;
    }

    /// What a hot-tier slot (or one waiting for demotion) answers: its
    /// value, or a negative entry.
    pub(super) fn slot_lookup(&self, slot: Slot<V>) -> Lookup<V> {
        match slot.value {
            Some(v) => Lookup::Hit(v),
            None => Lookup::Negative(slot.meta(&self.inner.class_names)),
        }
    }

    /// Whether any tier holds a live value for `key` (without promoting
    /// it); a negative entry holds none.
    pub async fn contains_key(&self, key: &K) -> Result<bool> {
        // Neither check counts as a use of the entry.
        if self.inner.hot.stale {
            // The engine may hold an entry kept past its expiry, which
            // answers nothing: only a live value does.
            if self.inner.hot.contains_key(key) {
                return Ok(true);
            }
        } else if self.inner.hot.engine.contains_key(key) {
            return Ok(self.inner.hot.contains_key(key));
        }
        if self.inner.memory_only() {
            return Ok(false);
        }
        let kb = self.encode_key(key)?;
        if let Some(slot) = self.inner.policy.queue().and_then(|q| q.get(key))
            && slot
                .expires_at_ms
                .is_none_or(|at| at > self.inner.clock.now_ms())
        {
            return Ok(slot.value.is_some());
        }
        if let Some(dirty) = self.inner.record.dirty(&kb) {
            return Ok(dirty.is_some());
        }
        for tier in self.inner.tiers.iter() {
            if tier.is_stale(&kb) {
                continue;
            }
            if let Some(entry) = self.live_entry(tier, &kb).await {
                return Ok(!entry.meta.is_negative());
            }
        }
        Ok(false)
    }
}
