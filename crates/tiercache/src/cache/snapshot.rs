//! Snapshots of the hot tier (feature `warm`): its entries, or only their
//! keys, saved to a file and loaded back hottest first. The file's format
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
    SnapshotWriter, read_snapshot,
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

/// Records installed between two yields of a load, so that a large load
/// run on the caller's task leaves the runtime's other tasks their turn.
const LOAD_YIELD_EVERY: u64 = 4_096;

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

    /// Loads the snapshot at `path` into the hot tier, hottest first (by
    /// the frequency saved with each entry) until the hot tier is full:
    /// expired entries are skipped, every entry keeps its absolute expiry
    /// and class, and the eviction policy learns how popular each was. A
    /// key the cache holds already keeps its value; a key a tier below
    /// holds gets that tier's copy (see the module notes); in a keys-only
    /// snapshot each key's value is copied up from below or loaded from the
    /// cache's source.
    ///
    /// A damaged, truncated or foreign file (or one written with another
    /// codec) is an error naming the file and what is wrong, and nothing
    /// of it is installed: every record is checked before the first is.
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
        let owned: PathBuf = path.to_path_buf();
        let (header, records) = tokio::task::spawn_blocking(move || read_snapshot(&owned))
            .await
            .unwrap_or_else(|e| {
                Err(Error::new(ErrorKind::Backend, "the snapshot load stopped").with_source(e))
            })?;
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
        let mut report = SnapshotReport {
            path: path.to_path_buf(),
            contents: header.contents,
            records: records.len() as u64,
            bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
            ..SnapshotReport::default()
        };
        let now = self.inner.clock.now_ms();
        let mut live: Vec<SnapshotRecord> = records
            .into_iter()
            .filter(|r| !r.meta.is_expired(now))
            .collect();
        report.expired = report.records - live.len() as u64;
        // Hottest first; among equals, the order they were saved in.
        live.sort_by_key(|r| std::cmp::Reverse(r.frequency));
        let hot = &self.inner.hot;
        let room = hot.max_capacity().saturating_sub(hot.entry_count());
        for (i, record) in live.into_iter().enumerate() {
            if report.loaded >= room {
                report.over_capacity += 1;
                continue;
            }
            let Ok(key) = decode(&record.key) else {
                report.undecodable += 1;
                continue;
            };
            match self.restore(key, record, header.contents).await {
                Restored::Loaded => report.loaded += 1,
                Restored::Present => report.present += 1,
                Restored::NotBelow => report.not_below += 1,
                Restored::Undecodable => report.undecodable += 1,
            }
            if (i as u64 + 1).is_multiple_of(LOAD_YIELD_EVERY) {
                tokio::task::yield_now().await;
            }
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Installs one record, unless something newer stands (see the module
    /// notes).
    async fn restore(&self, key: K, record: SnapshotRecord, contents: SnapshotContents) -> Restored {
        let negative = record.meta.is_negative();
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
        let value: Option<V> = match (&record.value, negative) {
            (_, true) => None,
            (Some(bytes), false) => match self.inner.codec.decode(bytes) {
                Ok(v) => Some(v),
                Err(_) => return Restored::Undecodable,
            },
            // A values snapshot's record without a value, and not
            // negative: nothing to install.
            (None, false) => return Restored::Undecodable,
        };
        let class = self.inner.class_names.index(&record.meta.class);
        let placement = if record
            .meta
            .flags
            .contains(cache_core::Flags::BELOW_MEMORY)
        {
            cache_core::Placement::BelowMemory
        } else {
            self.inner
                .classes
                .load()
                .policy(&record.meta.class)
                .placement
        };
        if !placement.in_memory() {
            return Restored::NotBelow;
        }
        let expiry = self.inner.protect.hot_expiry(record.meta.expires_at_ms);
        let engine = &self.inner.hot.engine;
        if self.inner.memory_only() {
            let slot = Self::slot(value, &record.meta, class, placement, false, 0);
            return if engine.insert_if_absent(key, slot, expiry, record.frequency) {
                Restored::Loaded
            } else {
                Restored::Present
            };
        }
        let Ok(kb) = self.encode_key(&key) else {
            return Restored::Undecodable;
        };
        let stripe = self.inner.stripes.of(&kb);
        let seen = stripe.version();
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
