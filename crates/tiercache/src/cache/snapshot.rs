//! Snapshots of the hot tier (feature `warm`): its entries, or only their
//! keys, saved to a file and loaded back, the hottest that fit. The file's format
//! is `cache_warm`'s ([`SnapshotWriter`], [`SnapshotReader`]); this file
//! decides what is saved and what a loaded record may install.
//!
//! A loaded value never lands over a newer one: a key the cache already
//! holds is left alone; where a tier below holds the key, its copy (which
//! a write reaching the tier after the save made newer) is copied up
//! instead of the snapshot's; where the value would have been written
//! through to a tier below that no longer holds it (removed, evicted or
//! expired there since), nothing is installed; and the install waits for
//! no write of the key's stripe, as a promotion does.

use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::time::Instant;

use bytes::Bytes;
use cache_backends::memory::MemoryCache;
use cache_core::{Clock, Codec, Error, ErrorKind, Lookup, Result};
use cache_warm::{
    SNAPSHOT_ENTRIES, SNAPSHOT_VERSION, SnapshotContents, SnapshotHeader, SnapshotRecord,
    SnapshotWriter,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use super::Cache;
use crate::hot::{ClassNames, Slot};
use crate::warming::SnapshotReport;

/// Entries read from the hot tier at a time while saving: each page holds
/// one partition's lock only while its entries are cloned.
const SAVE_PAGE: usize = 1_024;

/// Records looked up in the first tier below memory with one `get_many`
/// while loading into a cache with tiers: one read of the tier (one redb
/// read transaction, one Redis pipeline) instead of one per record.
const LOAD_BATCH: usize = 512;

mod reading;

use reading::{Choice, LOAD_THREADS, Survey};

/// A key's decoder for a load; the builder makes one with the codec.
pub(crate) type KeyDecoder<K> = Arc<dyn Fn(&[u8]) -> Result<K> + Send + Sync>;

/// What one record came to.
enum Restored {
    Loaded,
    Present,
    NotBelow,
    Undecodable,
}

/// What a save reads: the hot tier's engine and class names, owned, so
/// that a save can run on a blocking thread and when the cache itself is
/// being dropped.
pub(crate) struct SnapshotSource<K, V, C> {
    engine: MemoryCache<K, Slot<V>>,
    names: Arc<ClassNames>,
    codec: C,
    clock: Clock,
}

impl<K, V, C> SnapshotSource<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + Send + Sync + 'static,
    C: Codec,
{
    /// Writes the hot tier's live entries (`Keys`: only the keys of those
    /// with a value) to `path`, through a temporary file renamed into
    /// place, so the previous snapshot stays whole until the new one is.
    pub(crate) fn save(&self, path: &Path, contents: SnapshotContents) -> Result<SnapshotReport> {
        let started = Instant::now();
        let header = SnapshotHeader {
            version: SNAPSHOT_VERSION,
            contents,
            saved_at_ms: self.clock.now_ms(),
            codec: self.codec.name().to_string(),
        };
        let mut writer = SnapshotWriter::create(path, &header)?;
        let now = self.clock.now_ms();
        let mut from = Some((0, 0));
        while let Some(position) = from {
            let (page, next) = self.engine.entries_page(position, SAVE_PAGE);
            for (key, slot, frequency) in page {
                // An entry kept past its expiry for stale-if-error is not
                // live: it is not saved.
                if !slot.is_live(now) {
                    continue;
                }
                let value = match (contents, &slot.value) {
                    (SnapshotContents::Values, Some(v)) => Some(Bytes::from(self.codec.encode(v)?)),
                    (SnapshotContents::Values, None) => None,
                    // A keys-only snapshot loads values from elsewhere;
                    // a negative entry has none to load.
                    (SnapshotContents::Keys, None) => continue,
                    (SnapshotContents::Keys, Some(_)) => None,
                };
                writer.write(&SnapshotRecord {
                    key: Bytes::from(self.codec.encode(&key)?),
                    value,
                    meta: slot.meta(&self.names),
                    frequency,
                })?;
            }
            from = next;
        }
        let file = writer.finish()?;
        metrics::gauge!(SNAPSHOT_ENTRIES, "op" => "save").set(file.records as f64);
        Ok(SnapshotReport {
            path: path.to_path_buf(),
            contents,
            records: file.records,
            bytes: file.bytes,
            elapsed: started.elapsed(),
            ..SnapshotReport::default()
        })
    }
}

impl<K, V, C> Cache<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Saves the hot tier to `path`: its live entries with their absolute
    /// expiry, class and the eviction policy's estimate of how often each
    /// is used, or only their keys if the cache was built with
    /// [`snapshot_contents(Keys)`](crate::CacheBuilder::snapshot_contents).
    /// The file is written beside `path` and renamed over it once
    /// complete and on disk, so a crash mid-save leaves the previous
    /// snapshot whole. Entries written while it runs may or may not be in
    /// it.
    pub async fn save_snapshot(&self, path: impl AsRef<Path>) -> Result<SnapshotReport> {
        self.save_snapshot_with(path, self.inner.warm.contents)
            .await
    }

    /// [`save_snapshot`](Self::save_snapshot) with its contents chosen
    /// here: `Keys` saves only keys (a load copies their values up from
    /// the tiers below, or loads them from the cache's source).
    pub async fn save_snapshot_with(
        &self,
        path: impl AsRef<Path>,
        contents: SnapshotContents,
    ) -> Result<SnapshotReport> {
        let source = self.snapshot_source();
        let path = path.as_ref().to_path_buf();
        // Encoding every entry and writing the file block: a blocking
        // thread does it.
        let saved = tokio::task::spawn_blocking(move || source.save(&path, contents))
            .await
            .unwrap_or_else(|e| {
                Err(Error::new(ErrorKind::Backend, "the snapshot save stopped").with_source(e))
            });
        self.inner.warm.counts.saved(&saved);
        saved
    }

    /// What a save reads, owned.
    pub(crate) fn snapshot_source(&self) -> SnapshotSource<K, V, C> {
        SnapshotSource {
            engine: self.inner.hot.engine.clone(),
            names: self.inner.class_names.clone(),
            codec: self.inner.codec.clone(),
            clock: self.inner.clock.clone(),
        }
    }

    /// Loads the snapshot at `path` into the hot tier: the hottest entries
    /// (by the frequency saved with each) until the hot tier is full, the
    /// rest counted as over capacity. Expired entries are skipped, every entry keeps its absolute expiry
    /// and class, and the eviction policy learns how popular each was. A
    /// key the cache holds already keeps its value; a key a tier below
    /// holds gets that tier's copy (see the module notes); in a keys-only
    /// snapshot each key's value is copied up from below or loaded from the
    /// cache's source.
    ///
    /// A damaged, truncated or foreign file (or one written with another
    /// codec) is an error naming the file and what is wrong, and nothing
    /// of it is installed: the file is read twice, every record checked
    /// in the first reading (which also counts them by frequency, to choose
    /// the hottest), and installed as the second reading of the same open
    /// file goes, so memory holds a batch of records at a time, not the
    /// file.
    pub async fn load_snapshot(&self, path: impl AsRef<Path>) -> Result<SnapshotReport>
    where
        K: DeserializeOwned,
    {
        let codec = self.inner.codec.clone();
        let decode: KeyDecoder<K> = Arc::new(move |bytes| codec.decode(bytes));
        self.load_snapshot_decoding(path.as_ref(), &decode).await
    }

    /// [`load_snapshot`](Self::load_snapshot) with the keys decoded by
    /// `decode` (the builder's, which loads at build without asking `K`
    /// to be decodable everywhere).
    pub(crate) async fn load_snapshot_decoding(
        &self,
        path: &Path,
        decode: &KeyDecoder<K>,
    ) -> Result<SnapshotReport> {
        let loaded = self.load_records(path, decode).await;
        self.inner.warm.counts.loaded(&loaded);
        if let Ok(report) = &loaded {
            metrics::gauge!(SNAPSHOT_ENTRIES, "op" => "load").set(report.loaded as f64);
        }
        loaded
    }

    async fn load_records(&self, path: &Path, decode: &KeyDecoder<K>) -> Result<SnapshotReport> {
        let started = Instant::now();
        let now = self.inner.clock.now_ms();
        // 1. Every record verified, on a blocking thread, before any is
        //    installed; the unexpired ones counted by frequency.
        let owned: PathBuf = path.to_path_buf();
        let survey = tokio::task::spawn_blocking(move || Survey::take(&owned, now))
            .await
            .unwrap_or_else(|e| {
                Err(Error::new(ErrorKind::Backend, "the snapshot load stopped").with_source(e))
            })?;
        let header = survey.header.clone();
        if header.codec != self.inner.codec.name() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "snapshot {}: written with the {} codec, this cache uses {}",
                    path.display(),
                    header.codec,
                    self.inner.codec.name()
                ),
            ));
        }
        // 2. The hottest that fit in the hot tier's room.
        let hot = &self.inner.hot;
        let room = hot.max_capacity().saturating_sub(hot.entry_count());
        let live: u64 = survey.live.iter().sum();
        let mut report = SnapshotReport {
            path: path.to_path_buf(),
            contents: header.contents,
            records: survey.records,
            expired: survey.records - live,
            over_capacity: live.saturating_sub(room),
            bytes: survey.bytes,
            ..SnapshotReport::default()
        };
        let choice = Choice::new(&survey.live, room);
        // 3. The same open file read again, on a blocking thread. A
        //    memory-only cache installs each record there as it is read
        //    (one thread allocates and frees the records, and nothing is
        //    handed between threads); a cache with tiers is handed the
        //    records in batches, each installed as it comes.
        let mut count = |restored: Restored| match restored {
            Restored::Loaded => report.loaded += 1,
            Restored::Present => report.present += 1,
            Restored::NotBelow => report.not_below += 1,
            Restored::Undecodable => report.undecodable += 1,
        };
        let read = if self.inner.memory_only() {
            let cache = self.clone();
            let decode = decode.clone();
            let parts = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, LOAD_THREADS);
            let installed = tokio::task::spawn_blocking(move || {
                survey.reread_in_parts(now, choice, parts, || {
                    let cache = cache.clone();
                    let decode = decode.clone();
                    Box::new(move |record: SnapshotRecord| match decode(&record.key) {
                        Ok(key) => cache.restore_in_memory(key, record),
                        Err(_) => Restored::Undecodable,
                    })
                })
            })
            .await;
            match installed {
                Ok(Ok(installed)) => {
                    installed.into_iter().for_each(&mut count);
                    Ok(Ok(()))
                }
                Ok(Err(e)) => Ok(Err(e)),
                Err(e) => Err(e),
            }
        } else {
            let (batches, mut arriving) = tokio::sync::mpsc::channel(4);
            let reading = tokio::task::spawn_blocking(move || {
                let mut batch = Vec::with_capacity(LOAD_BATCH);
                let read = survey.reread(now, choice, |record| {
                    batch.push(record);
                    if batch.len() < LOAD_BATCH {
                        return true;
                    }
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
                    batches.blocking_send(full).is_ok()
                });
                if !batch.is_empty() {
                    let _ = batches.blocking_send(batch);
                }
                read
            });
            while let Some(batch) = arriving.recv().await {
                for restored in self.restore_batch(batch, decode, header.contents).await {
                    count(restored);
                }
            }
            reading.await
        };
        // The file was checked whole in step 1; the second reading fails
        // only if the file changed in place since (the cache's own saves
        // never do that: they rename a new file over it).
        read.unwrap_or_else(|e| {
            Err(Error::new(ErrorKind::Backend, "the snapshot load stopped").with_source(e))
        })?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// The value of a values snapshot's record (`None` for a negative
    /// entry), and whether the hot tier may hold it; `Err` for a record
    /// with no value to install.
    fn restored_value(&self, record: &SnapshotRecord) -> std::result::Result<Option<V>, Restored> {
        if record.meta.is_negative() {
            return Ok(None);
        }
        match &record.value {
            Some(bytes) => self
                .inner
                .codec
                .decode(bytes)
                .map(Some)
                .map_err(|_| Restored::Undecodable),
            // A values snapshot's record without a value, and not
            // negative: nothing to install.
            None => Err(Restored::Undecodable),
        }
    }

    /// Where the record's entry may live, as its class says now (or its
    /// flag, for an entry placed below memory).
    fn restored_placement(&self, record: &SnapshotRecord) -> cache_core::Placement {
        if record.meta.flags.contains(cache_core::Flags::BELOW_MEMORY) {
            cache_core::Placement::BelowMemory
        } else {
            self.inner
                .classes
                .load()
                .policy(&record.meta.class)
                .placement
        }
    }

    /// A record of a values snapshot into a memory-only cache: installed
    /// unless the key has a live entry, atomically with that check.
    fn restore_in_memory(&self, key: K, record: SnapshotRecord) -> Restored {
        let value = match self.restored_value(&record) {
            Ok(value) => value,
            Err(restored) => return restored,
        };
        if record.value.is_none() && !record.meta.is_negative() {
            return Restored::NotBelow;
        }
        let placement = self.restored_placement(&record);
        if !placement.in_memory() {
            return Restored::NotBelow;
        }
        let class = self.inner.class_names.index(&record.meta.class);
        let expiry = self.inner.protect.hot_expiry(record.meta.expires_at_ms);
        let slot = Self::slot(value, &record.meta, class, placement, false, 0);
        if self
            .inner
            .hot
            .engine
            .insert_if_absent(key, slot, expiry, record.frequency)
        {
            Restored::Loaded
        } else {
            Restored::Present
        }
    }

    /// Up to [`LOAD_BATCH`] records into a cache with tiers or a source:
    /// the first tier below memory is read once for all of them, and a key
    /// it holds (with nothing newer in the demotion queue or write-back's
    /// log) is copied up from there as a promotion would; the others take
    /// the one-record path, [`restore`](Self::restore).
    async fn restore_batch(
        &self,
        batch: Vec<SnapshotRecord>,
        decode: &KeyDecoder<K>,
        contents: SnapshotContents,
    ) -> Vec<Restored> {
        let mut out = Vec::with_capacity(batch.len());
        // Each key's stripe version is noted before the tier is read, so a
        // copy of what it answers installs only if no write of the key
        // ended since.
        let mut asked = Vec::with_capacity(batch.len());
        for record in batch {
            let Ok(key) = decode(&record.key) else {
                out.push(Restored::Undecodable);
                continue;
            };
            let Ok(kb) = self.encode_key(&key) else {
                out.push(Restored::Undecodable);
                continue;
            };
            let seen = self.inner.stripes.of(&kb).version();
            asked.push((key, kb, seen, record));
        }
        let first = self.inner.tiers.iter().next();
        let answers = match first {
            Some(tier) => {
                let kbs: Vec<Bytes> = asked.iter().map(|(_, kb, _, _)| kb.clone()).collect();
                tier.backend().dyn_get_many(&kbs).await.ok()
            }
            None => None,
        };
        let now = self.inner.clock.now_ms();
        for (i, (key, kb, seen, record)) in asked.into_iter().enumerate() {
            let usable = match (first, answers.as_ref().and_then(|a| a.get(i))) {
                (Some(tier), Some(found)) => {
                    let entry = match found {
                        Lookup::Hit(entry) => Some(entry.clone()),
                        Lookup::Negative(meta) => Some(cache_core::Entry::negative(meta.clone())),
                        _ => None,
                    };
                    entry.filter(|e| {
                        !e.meta.is_expired(now)
                            && !tier.distrusts(&e.meta)
                            && e.meta.flags.compression() == 0
                            && !tier.is_stale(&kb)
                    })
                }
                _ => None,
            };
            let restored = match usable {
                Some(entry) => self.restore_copied(key, kb, seen, record, entry).await,
                None => self.restore(key, kb, seen, record, contents).await,
            };
            out.push(restored);
        }
        out
    }

    /// A record whose key the first tier below memory holds: that copy is
    /// installed (it is the snapshot's or a newer one), unless the hot tier,
    /// the demotion queue or write-back's log has something of the key, or
    /// bypass rules keep it out; then the one-record path decides.
    async fn restore_copied(
        &self,
        key: K,
        kb: Bytes,
        seen: u64,
        record: SnapshotRecord,
        entry: cache_core::Entry,
    ) -> Restored {
        let engine = &self.inner.hot.engine;
        if engine.contains_key(&key) {
            return Restored::Present;
        }
        let mut skip = self.get_skip(&key);
        let queued = self
            .inner
            .policy
            .queue()
            .is_some_and(|q| q.get(&key).is_some());
        if skip.everything
            || skip.memory
            || skip.tier(0)
            || queued
            || self.inner.record.dirty(&kb).is_some()
        {
            return self
                .restore(key, kb, seen, record, SnapshotContents::Values)
                .await;
        }
        skip.warming = true;
        let value: Option<V> = if entry.meta.is_negative() {
            None
        } else {
            match self.inner.codec.decode(&entry.value) {
                Ok(v) => Some(v),
                // The one-record path counts and drops a record that does
                // not decode.
                Err(_) => {
                    return self
                        .restore(key, kb, seen, record, SnapshotContents::Values)
                        .await;
                }
            }
        };
        let Some(tier) = self.inner.tiers.iter().next() else {
            return Restored::NotBelow;
        };
        tier.count_hit();
        engine.remember_frequency(&key, record.frequency);
        self.promote(0, &key, &kb, value.as_ref(), entry, seen, skip)
            .await;
        if engine.contains_key(&key) {
            Restored::Loaded
        } else {
            Restored::Present
        }
    }

    /// Installs one record into a cache with tiers or a source, unless
    /// something newer stands (see the module notes); `seen` is the key's
    /// stripe version, noted before anything of the key was read.
    async fn restore(
        &self,
        key: K,
        kb: Bytes,
        seen: u64,
        record: SnapshotRecord,
        contents: SnapshotContents,
    ) -> Restored {
        if contents == SnapshotContents::Keys {
            self.inner
                .hot
                .engine
                .remember_frequency(&key, record.frequency);
            return match self.warm_key(&key, None).await {
                cache_warm::WarmOutcome::Warmed => Restored::Loaded,
                cache_warm::WarmOutcome::Present => Restored::Present,
                _ => Restored::NotBelow,
            };
        }
        let value = match self.restored_value(&record) {
            Ok(value) => value,
            Err(restored) => return restored,
        };
        let placement = self.restored_placement(&record);
        if !placement.in_memory() {
            return Restored::NotBelow;
        }
        let class = self.inner.class_names.index(&record.meta.class);
        let expiry = self.inner.protect.hot_expiry(record.meta.expires_at_ms);
        let engine = &self.inner.hot.engine;
        let stripe = self.inner.stripes.of(&kb);
        if engine.contains_key(&key) {
            return Restored::Present;
        }
        let mut skip = self.get_skip(&key);
        if skip.everything || skip.memory {
            return Restored::NotBelow;
        }
        skip.warming = true;
        // A tier below (or write-back's log) holding the key holds the
        // newer copy, or the same one: it is copied up instead.
        engine.remember_frequency(&key, record.frequency);
        match self.lookup_below_hot(&key, &kb, seen, skip).await {
            Ok(Lookup::Hit(_) | Lookup::Negative(_)) => {
                return if engine.contains_key(&key) {
                    Restored::Loaded
                } else {
                    Restored::Present
                };
            }
            Ok(_) => {}
            Err(_) => return Restored::NotBelow,
        }
        // Written through to a tier that no longer holds it: removed,
        // evicted or expired there since the save, and that stands.
        if !self.inner.tiers.is_empty() && self.inner.policy.writes_below(placement) {
            return Restored::NotBelow;
        }
        let Some(lock) = stripe.unchanged_since(seen) else {
            return Restored::Present;
        };
        let slot = Self::slot(
            value,
            &record.meta,
            class,
            placement,
            false,
            crate::stripes::copy_seq(seen),
        );
        let installed = engine.insert_if_absent(key, slot, expiry, record.frequency);
        drop(lock);
        if installed {
            Restored::Loaded
        } else {
            Restored::Present
        }
    }
}
