//! The write path, in order: check and encode the input, then, holding the
//! key's stripe lock, change the hot tier, the demotion queue and (through
//! the write policy) every tier below; `remove` and `clear` the same way.

use std::hash::Hash;
use std::time::Duration;

use cache_core::{
    Codec, DataClass, Entry, Error, ErrorKind, Flags, Meta, Placement, Result, expiry_after,
    validate_ttl,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use bytes::Bytes;

use super::Cache;
use crate::options::InsertOptions;
use crate::record::Staged;
use crate::stripes::WriteGuard;

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Stores a value in every tier; it lives for the cache's time-to-live.
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new()).await
    }

    /// Stores a value in every tier with its own time-to-live. A zero or
    /// unrepresentable `ttl` is an [`ErrorKind::InvalidTtl`] error and
    /// changes nothing.
    pub async fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().time_to_live(ttl))
            .await
    }

    /// Stores a value in the data class `class`: with the class's
    /// time-to-live, in the tiers the class may live in (see
    /// [`CacheBuilder::class`](crate::CacheBuilder::class)).
    pub async fn insert_with_class(&self, key: K, value: V, class: &str) -> Result<()> {
        self.insert_with(key, value, InsertOptions::new().class(class))
            .await
    }

    /// Stores a value as `options` say: its class, its own time-to-live and
    /// its placement, each falling back to the class's and then the
    /// cache's.
    ///
    /// The value replaces the key's value in every tier it may live in, and
    /// the key is removed from the others, so no tier keeps an older value.
    /// With write-on-evict, the tiers below memory lose the key now and get
    /// the value when the hot tier evicts it. Everything that can fail
    /// because of the input (the time-to-live, the key's and value's sizes
    /// and encodings) is checked before any tier changes.
    pub async fn insert_with(&self, key: K, value: V, options: InsertOptions) -> Result<()> {
        // 1. The entry's metadata, checked (in `write`, from `new_meta`).
        let class = options.class.clone();
        self.write(key, Some(value), &class, true, |now| {
            self.new_meta(now, options)
        })
        .await
    }

    /// Stores a negative entry for `key`: the key is known to have no
    /// value, for `ttl`. It replaces any value of the key and is written
    /// like any insert: through to every tier its class may live in (so
    /// other caches sharing a Redis tier see it too), or, with
    /// write-on-evict, kept in memory and demoted when evicted. Until it
    /// expires [`get`](Self::get) answers `None` and
    /// [`lookup`](Self::lookup) answers [`Lookup::Negative`](crate::Lookup::Negative).
    /// An insert of a value replaces it. A zero or unrepresentable `ttl` is
    /// an [`ErrorKind::InvalidTtl`] error and changes nothing.
    pub async fn insert_negative(&self, key: K, ttl: Duration) -> Result<()> {
        let options = InsertOptions::new().time_to_live(ttl);
        self.write(key, None, &DataClass::Default, true, |now| {
            self.new_meta(now, options)
        })
        .await
    }

    /// Stores a value with the metadata a tier stored it with: its absolute
    /// expiry (and so its remaining time to live), creation time and class,
    /// as when warming the cache from a lower tier or a snapshot. It goes
    /// wherever its class may live, like any insert. An entry whose expiry
    /// has passed, or lies further ahead than any time-to-live may, is an
    /// [`ErrorKind::InvalidTtl`] error and changes nothing. A negative
    /// `meta` stores a negative entry (`value` is then not stored). It
    /// fills the cache only: a store behind it is not written.
    pub async fn insert_with_meta(&self, key: K, value: V, meta: &Meta) -> Result<()> {
        let value = (!meta.is_negative()).then_some(value);
        self.write(key, value, &meta.class, false, |now| {
            self.kept_meta(now, meta)
        })
        .await
    }

    /// Stores what a loader produced, in the tiers only: a value read from
    /// somewhere is cached, not saved to a store behind the cache.
    pub(super) async fn fill(&self, key: K, value: V) -> Result<()> {
        let options = InsertOptions::new();
        self.write(key, Some(value), &DataClass::Default, false, |now| {
            self.new_meta(now, options)
        })
        .await
    }

    /// [`fill`](Self::fill) only if no write of the key's stripe ended since
    /// version `seen`; says whether it filled.
    pub(super) async fn fill_if_unchanged(&self, key: K, value: V, seen: u64) -> Result<bool> {
        let options = InsertOptions::new();
        self.write_if(
            key,
            Some(value),
            &DataClass::Default,
            false,
            Some(seen),
            |now| self.new_meta(now, options),
        )
        .await
    }

    /// A new entry's metadata and placement from `options`, its class and
    /// the cache, checked.
    pub(super) fn new_meta(&self, now: u64, options: InsertOptions) -> Result<(Meta, Placement)> {
        let policy = self.inner.classes.load().policy(&options.class);
        let ttl = options
            .time_to_live
            .or(policy.time_to_live)
            .or(self.inner.time_to_live);
        let expires_at = ttl.map(|ttl| expiry_after(now, ttl)).transpose()?;
        let mut meta = Meta::new(now).expires_at(expires_at);
        meta.class = options.class;
        Ok((meta, options.placement.unwrap_or(policy.placement)))
    }

    /// The metadata a tier stored an entry with, checked as a new entry's
    /// time-to-live is, and where the entry goes.
    fn kept_meta(&self, now: u64, meta: &Meta) -> Result<(Meta, Placement)> {
        if let Some(at) = meta.expires_at_ms {
            if at <= now {
                return Err(Error::new(
                    ErrorKind::InvalidTtl,
                    "the entry's expiry has already passed",
                ));
            }
            validate_ttl(Duration::from_millis(at - now))?;
        }
        let mut kept = Meta::new(meta.created_at_ms).expires_at(meta.expires_at_ms);
        kept.class = meta.class.clone();
        let placement = if meta.flags.contains(Flags::BELOW_MEMORY) {
            Placement::BelowMemory
        } else {
            self.inner.classes.load().policy(&kept.class).placement
        };
        Ok((kept, placement))
    }

    /// Stores `value` (`None`: a negative entry) of class `class` under the
    /// metadata and placement `prepare` gives for the time now; with
    /// `to_store`, a value goes to the store behind the cache too (a
    /// negative entry never does: it is the cache's own knowledge). The
    /// insert is counted (and maybe timed) whether or not its input is
    /// valid.
    pub(super) async fn write(
        &self,
        key: K,
        value: Option<V>,
        class: &DataClass,
        to_store: bool,
        prepare: impl FnOnce(u64) -> Result<(Meta, Placement)>,
    ) -> Result<()> {
        self.write_if(key, value, class, to_store, None, prepare)
            .await
            .map(|_| ())
    }

    /// [`write`](Self::write), which with `unchanged_since: Some(seen)`
    /// writes only if no write of the key's stripe ended since version
    /// `seen` (checked under the stripe's lock, so none can end between the
    /// check and the write): a loaded value never lands over a write that
    /// ended while it loaded. Says whether it wrote. A memory-only cache
    /// checks its key versions instead (`stripes::KeyVersions`), under the
    /// hot tier's partition lock.
    pub(super) async fn write_if(
        &self,
        key: K,
        value: Option<V>,
        class: &DataClass,
        to_store: bool,
        unchanged_since: Option<u64>,
        prepare: impl FnOnce(u64) -> Result<(Meta, Placement)>,
    ) -> Result<bool> {
        let class = self.inner.class_names.index(class);
        let sample = self.inner.observer.start_insert(class);
        let stored = match prepare(self.inner.clock.now_ms()) {
            Ok((meta, placement)) => {
                self.write_prepared(
                    key,
                    value,
                    meta,
                    class,
                    placement,
                    to_store,
                    unchanged_since,
                )
                .await
            }
            Err(e) => Err(e),
        };
        self.inner.observer.done(sample);
        stored
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_prepared(
        &self,
        key: K,
        value: Option<V>,
        mut meta: Meta,
        class: u16,
        placement: Placement,
        to_store: bool,
        unchanged_since: Option<u64>,
    ) -> Result<bool> {
        let codec = &self.inner.codec;
        let to_store = to_store && self.inner.record.is_on() && value.is_some();
        if self.inner.memory_only() {
            // 2. With nothing below memory and no store, nothing is
            //    encoded (unless a bypass rule asks the value's size):
            //    every placement lives in the hot tier, which orders the
            //    writes of a key by itself. A write a rule bypasses
            //    leaves the key out.
            if self.has_bypass_rules() {
                let size = value
                    .as_ref()
                    .and_then(|v| codec.encode(v).ok())
                    .map_or(0, |v| v.len());
                let skip = self.set_skip(&key, size, &meta.class, true);
                if skip.everything || skip.memory {
                    self.inner.key_versions.advance(&key);
                    self.inner.hot.engine.remove(&key);
                    self.inner.flights.detach(&key);
                    return Ok(true);
                }
            }
            let size = || {
                value
                    .as_ref()
                    .and_then(|v| codec.encode(v).ok())
                    .map(|v| v.len())
            };
            let tracked = self.inner.observer.on_insert(&key, None, size, &meta);
            let expires_at = self.inner.protect.hot_expiry(meta.expires_at_ms);
            let mut slot = Self::slot(value, &meta, class, Placement::MemoryOnly, false, 0);
            slot.tracked = tracked;
            let versions = &self.inner.key_versions;
            if let Some(seen) = unchanged_since {
                // A loaded value: stored only if no write of the key began
                // since the load noted `seen`, asked under the partition's
                // lock.
                let version = versions.version(&key);
                let probe = key.clone();
                let stored = version == seen
                    && self
                        .inner
                        .hot
                        .engine
                        .insert_if(key, slot, expires_at, || versions.version(&probe) == seen);
                return Ok(stored);
            }
            // Advanced before the hot tier changes: a load that checks
            // after this stores nothing, and one that stored before is
            // replaced just below.
            versions.advance(&key);
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, expires_at);
            self.inner.flights.detach(&key);
            return Ok(true);
        }
        // 2. The key and value encoded once, and their sizes checked,
        //    before any tier changes.
        let kb = self.encode_key(&key)?;
        let vb = Bytes::from(match &value {
            Some(v) => codec.encode(v)?,
            None => Vec::new(),
        });
        self.inner.limits.check_value(vb.len())?;
        //    Bypass rules see the encoded size: a write they keep out of
        //    every tier (or out of memory, where it may live nowhere
        //    else) only removes the key; one they keep out of memory
        //    lives below it, and out of a tier, elsewhere.
        let skip = self.set_skip(&key, vb.len(), &meta.class, true);
        let placed = skip.placement(placement);
        let skip_all = placed.is_none();
        let placement = placed.unwrap_or(placement);
        mark(&mut meta, placement, value.is_none());
        let held_below = self.inner.policy.writes_below(placement);
        let size = vb.len();
        let tracked = self
            .inner
            .observer
            .on_insert(&key, Some(&kb), || Some(size), &meta);
        // 3. Every tier changes under the key's stripe lock, so no
        //    promotion or demotion of an older value lands in between.
        let write = self.inner.stripes.of(&kb).write().await;
        if let Some(seen) = unchanged_since
            && write.version() != seen
        {
            // A write of the stripe ended while the value loaded: it may
            // be newer, and stands. Nothing changed (letting go of the
            // guard advances the version, which at most makes a promotion
            // under way skip its copy).
            drop(write);
            return Ok(false);
        }
        let seq = write.seq();
        // 4. The system of record first: the store saves the value
        //    (write-through, write-around) or the log makes it durable
        //    (write-back). If it fails, no tier has changed.
        let mut staged = Staged::Write;
        let mut unfinished = None;
        if to_store && let Some(v) = &value {
            // Armed before the await: a caller dropped while the store or
            // the log works may leave the write taken there (an append
            // sent to the log commits regardless), so the tiers must not
            // keep the older value.
            let guard = Unfinished::new(self, &key, &kb);
            match self.inner.record.insert(&key, v, &kb, &vb).await {
                Ok(s) => staged = s,
                Err(e) => {
                    // An error means nothing was taken: the tiers stand.
                    Unfinished::done(Some(guard));
                    return Err(e);
                }
            }
            unfinished = Some(guard);
        }
        if staged == Staged::Invalidate || skip_all {
            // Write-around (or a write bypass rules keep out): the store
            // holds the value; every tier loses the key, and the next read
            // loads it.
            self.remove_locked(&key, &kb, write, unfinished).await;
            return Ok(true);
        }
        if placement.in_memory() {
            let expires_at = self.inner.protect.hot_expiry(meta.expires_at_ms);
            let mut slot = Self::slot(value, &meta, class, placement, held_below, seq);
            slot.tracked = tracked;
            self.inner
                .hot
                .engine
                .insert_with_expiry(key.clone(), slot, expires_at);
        } else {
            self.inner.hot.engine.remove(&key);
        }
        // 5. An older value of the key waiting for the warm tier is replaced.
        if let Some(queue) = self.inner.policy.queue() {
            queue.purge(&key, seq);
        }
        // 6. The tiers below, as the write policy says.
        let entry = Entry::new(vb, meta);
        self.inner
            .policy
            .insert_below(
                &self.inner.tiers,
                placement,
                &kb,
                &entry,
                skip.tiers,
                &self.inner.clock,
            )
            .await;
        Unfinished::done(unfinished);
        drop(write);
        // 7. A load of the key that began before this write may have read an
        //    older value: later callers must not be handed its result. Then
        //    what the hot tier evicted to make room goes to the warm tier.
        self.inner.flights.detach(&key);
        self.demote_pending().await;
        Ok(true)
    }

    /// Removes `key` from every tier (and from the demotion queue), and
    /// from the store behind the cache first, if there is one (under
    /// write-back, the removal is queued durably, as a tombstone). A store
    /// or log failure returns its error and changes no tier.
    pub async fn remove(&self, key: &K) -> Result<()> {
        if self.inner.memory_only() {
            self.inner.key_versions.advance(key);
            self.inner.hot.engine.remove(key);
            self.inner.flights.detach(key);
            self.inner.observer.on_remove(key, None);
            return Ok(());
        }
        let kb = self.encode_key(key)?;
        self.inner.observer.on_remove(key, Some(&kb));
        let write = self.inner.stripes.of(&kb).write().await;
        let mut unfinished = None;
        if self.inner.record.is_on() {
            let guard = Unfinished::new(self, key, &kb);
            if let Err(e) = self.inner.record.remove(key, &kb).await {
                Unfinished::done(Some(guard));
                return Err(e);
            }
            unfinished = Some(guard);
        }
        self.remove_locked(key, &kb, write, unfinished).await;
        Ok(())
    }

    /// The rest of a removal (or of a write-around insert) once the key's
    /// stripe lock is held and the store has taken it: the key leaves the
    /// hot tier, the demotion queue and every tier below, then the lock
    /// goes and loads that began before are detached.
    async fn remove_locked(
        &self,
        key: &K,
        kb: &Bytes,
        write: WriteGuard<'_>,
        unfinished: Option<Unfinished<'_, K, V, C>>,
    ) {
        self.inner.hot.engine.remove(key);
        if let Some(queue) = self.inner.policy.queue() {
            queue.purge(key, u64::MAX);
        }
        self.inner
            .policy
            .remove_below(&self.inner.tiers, kb, &self.inner.clock)
            .await;
        Unfinished::done(unfinished);
        drop(write);
        self.inner.flights.detach(key);
    }

    /// Removes every entry from every tier. It waits for the writes under
    /// way and holds back new ones until every tier is cleared, so nothing
    /// written before it returns survives it. A store behind the cache is
    /// not cleared, and under write-back what is dirty stays queued for it
    /// (and is still what reads of those keys answer).
    pub async fn clear(&self) -> Result<()> {
        if self.inner.tiers.is_empty() {
            self.inner.key_versions.advance_all();
            self.inner.hot.clear();
            self.inner.flights.detach_all();
            return Ok(());
        }
        let all = self.inner.stripes.write_all().await;
        self.inner.hot.clear();
        self.inner
            .policy
            .clear_below(&self.inner.tiers, &self.inner.clock)
            .await;
        drop(all);
        self.inner.flights.detach_all();
        Ok(())
    }
}

/// Sets the flags a stored entry carries for where it lives and whether it
/// is negative.
pub(super) fn mark(meta: &mut Meta, placement: Placement, negative: bool) {
    if placement == Placement::BelowMemory {
        meta.flags = meta.flags.with(Flags::BELOW_MEMORY);
    }
    if negative {
        meta.flags = meta.flags.with(Flags::NEGATIVE);
    }
}

/// A write the system of record took whose tiers are not all written yet.
/// If the caller's future is dropped here, the store (or the log) holds a
/// write the tiers do not: the hot tier drops the key and every tier below
/// is marked stale for it, so that reads go past them to the log or the
/// store rather than serve the older value.
struct Unfinished<'a, K, V, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    cache: &'a Cache<K, V, C>,
    key: &'a K,
    kb: &'a Bytes,
    armed: bool,
}

impl<'a, K, V, C> Unfinished<'a, K, V, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(cache: &'a Cache<K, V, C>, key: &'a K, kb: &'a Bytes) -> Self {
        Unfinished {
            cache,
            key,
            kb,
            armed: true,
        }
    }

    /// The tiers are written: nothing to undo.
    fn done(unfinished: Option<Self>) {
        if let Some(mut u) = unfinished {
            u.armed = false;
        }
    }
}

impl<K, V, C> Drop for Unfinished<'_, K, V, C>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let inner = &self.cache.inner;
        inner.hot.engine.remove(self.key);
        let now = inner.clock.now_ms();
        for tier in inner.tiers.iter() {
            tier.mark_stale(self.kb, now);
        }
    }
}
