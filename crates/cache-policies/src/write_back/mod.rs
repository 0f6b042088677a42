//! Write-back: writes are durable in a redb log when `insert` returns, and
//! a background flusher saves them to the store later.
//!
//! - `log.rs`: the file and its one writing thread (group commit);
//! - `dirty.rs`: what the log holds, in memory, for reads and the flusher;
//! - `flusher.rs`: the task that saves batches, retries and dead-letters;
//! - `record.rs`: the bytes of a record, with its checksum.

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;

use bytes::Bytes;
use cache_core::{Codec, Error, ErrorKind, Result};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::dead::DeadLetter;
use crate::policy::{WhenFull, WriteBackSettings};
use crate::report::WriteBackStats;
use crate::store::DynStore;

mod dirty;
mod flusher;
mod log;
mod record;
mod shared;

use log::Command;
pub use log::{CORRUPTED_TABLE, DEAD_TABLE, QUEUE_TABLE};
use shared::Shared;

/// The write-back engine of one cache: its log, its flusher, and the
/// store it flushes to. Dropping it stops the flusher; what is still dirty
/// stays in the log and is flushed when the log is opened again.
pub struct WriteBack<K, V, C> {
    core: Arc<Core<K, V, C>>,
}

/// What the handle and the flusher share.
pub(crate) struct Core<K, V, C> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) log: Mutex<Sender<Command>>,
    pub(crate) store: Arc<dyn DynStore<K, V>>,
    pub(crate) codec: C,
    pub(crate) decode_key: KeyDecoder<K>,
    pub(crate) settings: WriteBackSettings,
    path: PathBuf,
}

/// Turns a key's bytes back into the key, for the store (the flusher
/// decodes the keys it replays from the log).
pub type KeyDecoder<K> = Arc<dyn Fn(&[u8]) -> Result<K> + Send + Sync>;

impl<K, V, C> WriteBack<K, V, C>
where
    K: Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Opens (or creates) the log at `path`, as
    /// [`open_with`](Self::open_with) does, decoding keys with `codec`.
    pub async fn open(
        path: impl AsRef<Path>,
        settings: WriteBackSettings,
        store: Arc<dyn DynStore<K, V>>,
        codec: C,
    ) -> Result<Self> {
        let keys = codec.clone();
        let decode_key: KeyDecoder<K> = Arc::new(move |kb: &[u8]| keys.decode(kb));
        Self::open_with(path, settings, store, codec, decode_key).await
    }
}

impl<K, V, C> WriteBack<K, V, C>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Opens (or creates) the log at `path`, replays it, and starts the
    /// flusher on the current tokio runtime: what an earlier run
    /// acknowledged and did not flush is flushed now. A record that fails
    /// its checksum is set aside and counted
    /// ([`WriteBackStats::corrupted`]), and the rest replays.
    ///
    /// Keys are encoded with `codec` and decoded with `decode_key`, for a
    /// key type that is decoded only where the caller knows how.
    pub async fn open_with(
        path: impl AsRef<Path>,
        settings: WriteBackSettings,
        store: Arc<dyn DynStore<K, V>>,
        codec: C,
        decode_key: KeyDecoder<K>,
    ) -> Result<Self> {
        settings.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                "write-back runs its flusher on a tokio runtime: build the cache inside one",
            )
        })?;
        let path = path.as_ref().to_path_buf();
        let opening = path.clone();
        let opened = tokio::task::spawn_blocking(move || log::open(&opening))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Backend, "opening the write-back log panicked").with_source(e)
            })??;
        let shared = Arc::new(Shared::default());
        shared.full_batch.store(
            settings.max_batch.min(settings.max_dirty),
            Ordering::Relaxed,
        );
        let c = &shared.counters;
        c.corrupted.store(opened.corrupted, Ordering::Relaxed);
        c.replayed
            .store(opened.dirty.len() as u64, Ordering::Relaxed);
        shared
            .last_seq
            .store(opened.next_seq - 1, Ordering::Relaxed);
        let mut dirty = opened.dirty;
        for (key, value) in opened.dead {
            dirty.dead_added(key, value);
        }
        *shared.dirty.lock() = dirty;
        let log = log::start(path.clone(), opened.db, opened.next_seq, shared.clone())?;
        let core = Arc::new(Core {
            shared,
            log: Mutex::new(log),
            store,
            codec,
            decode_key,
            settings,
            path,
        });
        // The flusher is not aborted when the handle goes: it finishes the
        // store call under way (which a store may already have applied)
        // and records it, so that a cache opened again on the same log,
        // which waits for the file, never races an older save of its own.
        runtime.spawn(flusher::run(core.clone()));
        Ok(WriteBack { core })
    }
}

impl<K, V, C> WriteBack<K, V, C>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Queues `value` (encoded) as the latest write of `key` (encoded) and
    /// returns once the log has made it durable. While the log holds its
    /// most dirty keys it waits for room, or fails, as the settings say.
    pub async fn save(&self, key: Bytes, value: Bytes) -> Result<()> {
        self.append(key, Some(value)).await
    }

    /// Queues the removal of `key` (encoded), durably, like
    /// [`save`](Self::save).
    pub async fn delete(&self, key: Bytes) -> Result<()> {
        self.append(key, None).await
    }

    async fn append(&self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        let _room = self.reserve(&key).await?;
        let (ack, done) = oneshot::channel();
        self.send(Command::Append { key, value, ack })?;
        self.answer(done).await
    }

    /// Room in the log for a write of `key`: a dirty key has it already.
    async fn reserve(&self, key: &Bytes) -> Result<Room<'_>> {
        let shared = &self.core.shared;
        let max = self.core.settings.max_dirty;
        let mut counted = false;
        loop {
            let mut freed = pin!(shared.space.notified());
            freed.as_mut().enable();
            let admitted = shared.dirty.lock().admit(key, max);
            if let Some(rewrite) = admitted {
                return Ok(Room {
                    shared,
                    rewrite: rewrite.then(|| key.clone()),
                });
            }
            if !counted {
                shared.counters.full.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            if self.core.settings.when_full == WhenFull::Fail {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("the write-back queue is full: {max} dirty keys wait for the store"),
                ));
            }
            if shared.closed.load(Ordering::Acquire) {
                // Nobody will make room.
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the write-back queue is full and its flusher has stopped",
                ));
            }
            shared.work.notify_one();
            freed.await;
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        self.core.log.lock().send(command).map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the write-back log {} has stopped",
                    self.core.path.display()
                ),
            )
        })
    }

    async fn answer<T>(&self, done: oneshot::Receiver<Result<T>>) -> Result<T> {
        done.await.map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the write-back log {} stopped before it answered",
                    self.core.path.display()
                ),
            )
        })?
    }

    /// The latest write of `key` (encoded) if it has not reached the store
    /// yet, dirty or in the dead-letter list: `Some(Some(value))`, or
    /// `Some(None)` for a removal. Reads of such a key answer from this,
    /// never from the store's older copy.
    pub fn dirty(&self, key: &[u8]) -> Option<Option<Bytes>> {
        self.core.shared.dirty.lock().latest(key)
    }

    /// Whether `key` (encoded) has a write that has not reached the store.
    pub fn is_dirty(&self, key: &[u8]) -> bool {
        self.core.shared.dirty.lock().contains(key)
    }

    /// How many keys have writes that have not reached the store.
    pub fn dirty_len(&self) -> usize {
        self.core.shared.dirty.lock().len()
    }

    /// The running totals.
    pub fn stats(&self) -> WriteBackStats {
        self.core.shared.stats()
    }

    /// Waits until every write made durable before the call has reached
    /// the store or the dead-letter list (or was replaced by a later write
    /// of its key that did), hurrying the flusher past its interval.
    /// Writes waiting after a failure keep their retry times.
    pub async fn flush(&self) -> Result<()> {
        let shared = &self.core.shared;
        let target = shared.last_seq.load(Ordering::Acquire);
        let _hurry = Hurry::start(shared);
        loop {
            let mut progress = pin!(shared.progress.notified());
            progress.as_mut().enable();
            if shared.dirty.lock().oldest().is_none_or(|seq| seq > target) {
                return Ok(());
            }
            if shared.closed.load(Ordering::Acquire) {
                return Err(Error::new(ErrorKind::Unavailable, "write-back has stopped"));
            }
            shared.work.notify_one();
            progress.await;
        }
    }

    /// Every write in the dead-letter list, decoded. A record whose key or
    /// value no longer decodes (the codec or the types changed) is left in
    /// the list and not shown.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter<K, V>>> {
        let (ack, done) = oneshot::channel();
        self.send(Command::ListDead { ack })?;
        let rows = self.answer(done).await?;
        let codec = &self.core.codec;
        Ok(rows
            .into_iter()
            .filter_map(|(key, d)| {
                let value = match &d.value {
                    Some(v) => Some(codec.decode(v).ok()?),
                    None => None,
                };
                Some(DeadLetter {
                    key: (self.core.decode_key)(&key).ok()?,
                    value,
                    tries: d.tries,
                    failed_at_ms: d.failed_at_ms,
                    error: d.error,
                })
            })
            .collect())
    }

    /// Queues the dead letters of `keys` (every one with `None`) again, as
    /// new writes; a key written since it died keeps its newer write. The
    /// number queued.
    pub async fn retry_dead(&self, keys: Option<&[K]>) -> Result<usize> {
        let keys = self.encode_keys(keys)?;
        let (ack, done) = oneshot::channel();
        self.send(Command::Retry { keys, ack })?;
        let n = self.answer(done).await?;
        self.core.shared.work.notify_one();
        Ok(n)
    }

    /// Deletes the dead letters of `keys` (every one with `None`): those
    /// writes will never reach the store. The number deleted.
    pub async fn discard_dead(&self, keys: Option<&[K]>) -> Result<usize> {
        let keys = self.encode_keys(keys)?;
        let (ack, done) = oneshot::channel();
        self.send(Command::Discard { keys, ack })?;
        self.answer(done).await
    }

    fn encode_keys(&self, keys: Option<&[K]>) -> Result<Option<Vec<Bytes>>> {
        keys.map(|keys| {
            keys.iter()
                .map(|k| self.core.codec.encode(k).map(Bytes::from))
                .collect()
        })
        .transpose()
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &WriteBackSettings {
        &self.core.settings
    }

    /// Where its log lives.
    pub fn path(&self) -> &Path {
        &self.core.path
    }
}

impl<K, V, C> Drop for WriteBack<K, V, C> {
    fn drop(&mut self) {
        self.core.shared.closed.store(true, Ordering::Release);
        self.core.shared.work.notify_one();
        self.core.shared.progress.notify_waiters();
    }
}

impl<K, V, C> std::fmt::Debug for WriteBack<K, V, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBack")
            .field("path", &self.core.path)
            .field("dirty", &self.core.shared.dirty.lock().len())
            .finish_non_exhaustive()
    }
}

/// Room promised to one append, given back when it is done (the key is
/// then counted as dirty) or abandoned. `rewrite` is the key of an append
/// let in as a rewrite of a dirty key, which took no room.
struct Room<'a> {
    shared: &'a Shared,
    rewrite: Option<Bytes>,
}

impl Drop for Room<'_> {
    fn drop(&mut self) {
        self.shared.dirty.lock().release(self.rewrite.as_deref());
        self.shared.space.notify_waiters();
    }
}

/// A flush waiting: the flusher does not wait for a full batch meanwhile.
struct Hurry<'a>(&'a Shared);

impl<'a> Hurry<'a> {
    fn start(shared: &'a Shared) -> Self {
        shared.hurry.fetch_add(1, Ordering::AcqRel);
        Hurry(shared)
    }
}

impl Drop for Hurry<'_> {
    fn drop(&mut self) {
        self.0.hurry.fetch_sub(1, Ordering::AcqRel);
    }
}
