//! The builder's settings for a store behind the cache: which store, the
//! write policy, and write-back's log and flushing; checked before any
//! tier opens, and opened with the cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Codec, Error, ErrorKind, Result};
use cache_policies::{
    DynStore, KeyDecoder, Store, WhenFull, WriteBack, WriteBackSettings, WritePolicy,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CacheBuilder;
use crate::record::Record;

/// The store, and how write-back decodes its keys.
pub(super) struct StoreSetting<K, V> {
    store: Arc<dyn DynStore<K, V>>,
    decode_key: KeyDecoder<K>,
}

/// Everything else the builder is told about the store.
#[derive(Debug, Default)]
pub(super) struct RecordSettings {
    policy: Option<WritePolicy>,
    log: Option<PathBuf>,
    write_back: WriteBackSettings,
    /// The codec changed after the store was set, so write-back would
    /// decode the log's keys with the wrong one.
    pub(super) codec_after_store: bool,
}

/// What `build` opens: the store and its policy, checked.
pub(super) struct Plan<K, V> {
    store: Option<(StoreSetting<K, V>, WritePolicy)>,
    log: Option<PathBuf>,
    write_back: WriteBackSettings,
}

/// The write-back log beside the disk tier's file `disk`:
/// `<disk file name>.write-back.redb` in the same directory.
pub(crate) fn default_log_path(disk: &Path) -> PathBuf {
    let mut name = disk.file_name().unwrap_or_default().to_os_string();
    name.push(".write-back.redb");
    disk.with_file_name(name)
}

impl RecordSettings {
    /// Checks the settings against each other, before anything opens.
    pub(super) fn plan<K, V>(
        &mut self,
        store: Option<StoreSetting<K, V>>,
        disk: Option<&Path>,
    ) -> Result<Plan<K, V>> {
        let invalid = |message: &'static str| Err(Error::new(ErrorKind::InvalidConfig, message));
        let Some(store) = store else {
            if self.policy.is_some() {
                return invalid("a write policy needs a store: set one with CacheBuilder::store");
            }
            return Ok(Plan {
                store: None,
                log: None,
                write_back: self.write_back.clone(),
            });
        };
        let policy = self.policy.unwrap_or_default();
        let mut log = None;
        if policy == WritePolicy::Back {
            self.write_back.validate()?;
            if self.codec_after_store {
                return invalid(
                    "write-back decodes its log's keys with the codec set before CacheBuilder::store: call codec first",
                );
            }
            log = self.log.take().or_else(|| disk.map(default_log_path));
            if log.is_none() {
                return invalid(
                    "write-back needs a durable log: set CacheBuilder::write_back_log, or add a disk tier (the log then defaults to a file beside it)",
                );
            }
        }
        Ok(Plan {
            store: Some((store, policy)),
            log,
            write_back: self.write_back.clone(),
        })
    }
}

impl<K, V> Plan<K, V>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Opens the store's side of the cache: for write-back, the log,
    /// replayed, and its flusher.
    pub(super) async fn open<C: Codec>(self, codec: C) -> Result<Record<K, V, C>> {
        let Some((setting, policy)) = self.store else {
            return Ok(Record::none());
        };
        if policy != WritePolicy::Back {
            return Ok(Record::direct(setting.store, policy));
        }
        let path = self.log.expect("planned with a log");
        let log = WriteBack::open_with(
            path,
            self.write_back,
            setting.store.clone(),
            codec,
            setting.decode_key,
        )
        .await?;
        Ok(Record::back(setting.store, log))
    }
}

impl<K, V, C> CacheBuilder<K, V, C>
where
    K: std::hash::Hash + Eq + Clone + Serialize + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Puts the cache in front of `store`, its system of record: a miss in
    /// every tier loads from it (read-through), and writes reach it as the
    /// [`write_policy`](Self::write_policy) says (write-through by
    /// default). Values that loaders produce are cached, not saved.
    pub fn store<S: Store<K, V>>(mut self, store: S) -> Self
    where
        K: DeserializeOwned,
    {
        let keys = self.codec.clone();
        self.store = Some(StoreSetting {
            store: Arc::new(store),
            decode_key: Arc::new(move |kb: &[u8]| keys.decode(kb)),
        });
        self
    }

    /// When writes reach the [`store`](Self::store):
    /// [`WritePolicy::Through`] (the default), [`WritePolicy::Back`] or
    /// [`WritePolicy::Around`]. A policy without a store is refused by
    /// `build`.
    pub fn write_policy(mut self, policy: WritePolicy) -> Self {
        self.settings.record.policy = Some(policy);
        self
    }

    /// Where write-back keeps its durable queue: a redb file, created if
    /// missing and replayed if it holds writes an earlier run did not
    /// flush. Without it, a cache with a [`disk`](Self::disk) tier uses
    /// `<disk file name>.write-back.redb` beside the disk tier's file, and
    /// a cache without one fails to build under [`WritePolicy::Back`].
    /// One cache at a time may open a log.
    pub fn write_back_log(mut self, path: impl AsRef<Path>) -> Self {
        self.settings.record.log = Some(path.as_ref().to_path_buf());
        self
    }

    /// All of write-back's flushing settings at once (see
    /// [`WriteBackSettings`] for each and its default).
    pub fn write_back(mut self, settings: WriteBackSettings) -> Self {
        self.settings.record.write_back = settings;
        self
    }

    /// How long a write may wait in the log before the flusher saves it
    /// when fewer than [`max_batch`](Self::max_batch) keys are dirty
    /// (100 ms by default).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.settings.record.write_back.flush_interval = interval;
        self
    }

    /// The most keys one call of [`Store::save_many`] (or `delete_many`)
    /// carries (256 by default).
    pub fn max_batch(mut self, max_batch: usize) -> Self {
        self.settings.record.write_back.max_batch = max_batch;
        self
    }

    /// How many times a failed save is tried before the write goes to the
    /// dead-letter list (10 by default).
    pub fn max_retries(mut self, max_retries: u32) -> Self {
        self.settings.record.write_back.max_retries = max_retries;
        self
    }

    /// The wait after a key's first failed save (100 ms by default),
    /// doubling with each further one up to `last` (30 s by default), with
    /// random jitter of up to half of it.
    pub fn retry_backoff(mut self, first: Duration, last: Duration) -> Self {
        self.settings.record.write_back.first_retry = first;
        self.settings.record.write_back.last_retry = last;
        self
    }

    /// The most dirty keys the log holds (100,000 by default); past it an
    /// insert of a clean key waits for room, or fails, as
    /// [`when_full`](Self::when_full) says.
    pub fn max_dirty(mut self, max_dirty: usize) -> Self {
        self.settings.record.write_back.max_dirty = max_dirty;
        self
    }

    /// What an insert does when the log is full: wait (the default) or
    /// fail with an [`ErrorKind::Unavailable`] error. It never drops a
    /// write.
    pub fn when_full(mut self, when_full: WhenFull) -> Self {
        self.settings.record.write_back.when_full = when_full;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_log_sits_beside_the_disk_file() {
        assert_eq!(
            default_log_path(Path::new("/data/cache.redb")),
            Path::new("/data/cache.redb.write-back.redb")
        );
    }
}
