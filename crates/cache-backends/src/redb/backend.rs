//! [`RedbBackend`]: the disk tier as a byte-level [`Backend`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use bytes::Bytes;
use cache_core::{
    Backend, Entry, Error, ErrorKind, KeyCursor, KeyPage, Limits, Lookup, Removals, Result,
};
use tokio::sync::oneshot;

use super::builder::RedbBackendBuilder;
use super::error::{closed, needs_reopen};
use super::listing;
use super::readers::{Answer, Readers, guarded};
use super::shared::{Found, Shared};
use super::stats::RedbStats;
use super::writer::{Ack, Command, Record};
use crate::envelope;

/// The disk tier: entries in one crash-safe redb file, bounded in bytes,
/// with expiry, checksummed records and grouped commits. See the
/// [module documentation](super) for the file layout and durability.
///
/// Clones share the file. The reader threads, the writer thread and its
/// background work stop, and the file closes, when the last clone is
/// dropped; that drop waits for the writer's last commit.
#[derive(Clone)]
pub struct RedbBackend {
    inner: Arc<Inner>,
}

/// What the clones share. Its drop stops the reader threads and the writer
/// thread, then closes the file.
struct Inner {
    shared: Arc<Shared>,
    /// `None` only while the tier closes.
    readers: Option<Readers>,
    tx: Sender<Command>,
    writer: Option<JoinHandle<()>>,
    limits: Limits,
    max_bytes: u64,
    /// Whether a lookup from outside any tokio runtime runs on the
    /// caller's thread.
    inline_reads: bool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // No caller is left to queue a lookup, so the readers only finish
        // what is queued.
        drop(self.readers.take());
        // The writer finishes the commands queued before this one and makes
        // them durable. Once it is joined, `shared` holds the last
        // reference to the database, which closes as this drops: the file
        // is free to reopen once the last clone is gone.
        let _ = self.tx.send(Command::Shutdown);
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackend")
            .field("path", &self.inner.shared.path)
            .field("max_bytes", &self.inner.max_bytes)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

impl RedbBackend {
    /// Starts configuring a tier stored in the file at `path` (created if
    /// missing).
    pub fn builder(path: impl Into<PathBuf>) -> RedbBackendBuilder {
        RedbBackendBuilder::new(path.into())
    }

    /// A handle over an open file and its running writer thread.
    pub(super) fn new(
        shared: Arc<Shared>,
        readers: Readers,
        tx: Sender<Command>,
        writer: JoinHandle<()>,
        limits: Limits,
        max_bytes: u64,
        inline_reads: bool,
    ) -> Self {
        RedbBackend {
            inner: Arc::new(Inner {
                shared,
                readers: Some(readers),
                tx,
                writer: Some(writer),
                limits,
                max_bytes,
                inline_reads,
            }),
        }
    }

    /// The file this tier stores in.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// The tier's counters.
    pub fn stats(&self) -> RedbStats {
        self.inner.shared.counters.snapshot()
    }

    /// How many records failed their integrity check and were deleted.
    pub fn corrupted_count(&self) -> u64 {
        self.stats().corrupted
    }

    /// Writes the buffered access times and makes every write so far
    /// durable, whatever the [`Durability`](super::Durability).
    ///
    /// # Errors
    ///
    /// If the commit fails or the tier is closed.
    pub async fn sync(&self) -> Result<()> {
        self.call(|ack| Command::Sync { ack }).await
    }

    /// Deletes up to [`sweep_batch`](RedbBackendBuilder::sweep_batch)
    /// expired entries now, without waiting for the sweeper; returns how
    /// many it deleted.
    ///
    /// # Errors
    ///
    /// If the commit fails or the tier is closed.
    pub async fn sweep(&self) -> Result<u64> {
        self.call(|ack| Command::Sweep { ack }).await
    }

    /// Sends a command to the writer thread and waits for its answer, which
    /// comes only after the transaction holding it has committed.
    async fn call<T>(&self, command: impl FnOnce(Ack<T>) -> Command) -> Result<T> {
        let (ack, answer) = oneshot::channel();
        self.inner.tx.send(command(ack)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Checks and encodes an entry for the writer. Everything that can be
    /// wrong with the caller's input is found here, before anything is
    /// queued, so a rejected insert changes nothing.
    fn prepare(&self, key: Bytes, entry: &Entry) -> Result<Record> {
        self.inner.limits.check_key(&key)?;
        self.inner.limits.check_value(entry.value.len())?;
        let record = envelope::encode(entry)?;
        let size = (key.len() as u64).saturating_add(record.len() as u64);
        if size > self.inner.max_bytes {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "an entry of {size} bytes (key and record) cannot fit in a tier of {} bytes",
                    self.inner.max_bytes
                ),
            ));
        }
        Ok(Record { key, record })
    }

    /// Whether a lookup runs on the caller's thread. Outside a tokio
    /// runtime nothing else waits on this thread, so the hand-off to a
    /// reader (a queue, a wake-up each way) would be pure cost. Inside one,
    /// even on its blocking pool, the read goes to the readers: a thread
    /// cannot tell a worker from a blocking thread.
    fn read_here(&self) -> bool {
        self.inner.inline_reads && tokio::runtime::Handle::try_current().is_err()
    }

    /// Reads `keys` (on a reader thread, or on the caller's own thread
    /// outside any tokio runtime), then deletes what was corrupted and asks
    /// for an access flush if the batch of reads filled up.
    async fn read(&self, keys: Vec<Bytes>) -> Result<Vec<Lookup>> {
        let readers = self.inner.readers.as_ref().ok_or_else(closed)?;
        let Answer { found, keys, flush } = if self.read_here() {
            let shared = &self.inner.shared;
            let (mut found, flush) =
                self.checked(guarded(|| shared.read_batch(&[keys.as_slice()])))?;
            let found = found.pop().unwrap_or_default();
            Answer { found, keys, flush }
        } else {
            self.checked(readers.read(keys).await)?
        };
        self.flush_if(flush);
        let mut corrupted = Vec::new();
        let lookups = found
            .into_iter()
            .zip(keys)
            .map(|(found, key)| match found {
                Found::Hit(entry) => Lookup::from_entry(entry),
                Found::Miss => Lookup::Miss,
                Found::Corrupted(record) => {
                    corrupted.push((key, record));
                    Lookup::Miss
                }
            })
            .collect();
        self.drop_corrupted(corrupted).await;
        Ok(lookups)
    }

    /// Reads one key on the caller's thread: [`read`](Self::read) without
    /// the batch's allocations.
    async fn read_one_here(&self, key: &[u8]) -> Result<Lookup> {
        let shared = &self.inner.shared;
        let (found, flush) = self.checked(guarded(|| shared.read_one(key)))?;
        self.flush_if(flush);
        Ok(match found {
            Found::Hit(entry) => Lookup::from_entry(entry),
            Found::Miss => Lookup::Miss,
            Found::Corrupted(record) => {
                let records = vec![(Bytes::copy_from_slice(key), record)];
                self.drop_corrupted(records).await;
                Lookup::Miss
            }
        })
    }

    /// Passes a read's outcome on, first asking the writer to check the
    /// file if the read met an I/O error: a tier that only reads would
    /// otherwise never learn that redb has latched the failure, and would
    /// keep failing until the next write.
    fn checked<T>(&self, outcome: Result<T>) -> Result<T> {
        if let Err(error) = &outcome
            && needs_reopen(error)
            && self.inner.shared.ask_recover()
        {
            // A closed writer has nothing left to recover.
            let _ = self.inner.tx.send(Command::Recover);
        }
        outcome
    }

    /// Asks the writer to flush the access times when a read filled their
    /// buffer.
    fn flush_if(&self, flush: bool) {
        if flush {
            // Losing this request only delays the flush to the next write
            // or timer, so a closed writer is not an error here.
            let _ = self.inner.tx.send(Command::FlushAccess);
        }
    }

    /// Deletes records a read found corrupted, if they still hold what was
    /// read.
    async fn drop_corrupted(&self, records: Vec<(Bytes, Vec<u8>)>) {
        if records.is_empty() {
            return;
        }
        // The answer was a miss either way. If the delete fails, the next
        // read finds the record again and retries, so the error is not the
        // caller's concern.
        let _ = self
            .call(|ack| Command::DropCorrupted { records, ack })
            .await;
    }
}

impl Backend for RedbBackend {
    fn name(&self) -> &str {
        "redb"
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.inner.limits.check_key(key)?;
        if self.read_here() {
            return self.read_one_here(key).await;
        }
        let mut found = self.read(vec![Bytes::copy_from_slice(key)]).await?;
        Ok(found.pop().unwrap_or(Lookup::Miss))
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        let record = self.prepare(key, &entry)?;
        self.call(|ack| Command::Insert {
            records: vec![record],
            ack,
        })
        .await
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.inner.limits.check_key(key)?;
        let key = Bytes::copy_from_slice(key);
        self.call(|ack| Command::Remove { key, ack }).await
    }

    /// Removes the record in the writer's next transaction only if it
    /// still decodes to `seen` (the value a [`get`](Backend::get) returned)
    /// or is corrupted: the comparison and the delete are one transaction,
    /// so a value written since the caller's read is never deleted.
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        self.inner.limits.check_key(key)?;
        let key = Bytes::copy_from_slice(key);
        let seen = Bytes::copy_from_slice(seen);
        self.call(|ack| Command::RemoveIfUnchanged { key, seen, ack })
            .await
    }

    async fn clear(&self) -> Result<()> {
        self.call(|ack| Command::Clear { ack }).await
    }

    async fn len(&self) -> Result<u64> {
        self.call(|ack| Command::Len { ack }).await
    }

    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        for key in keys {
            self.inner.limits.check_key(key)?;
        }
        self.read(keys.to_vec()).await
    }

    /// Checks every entry first, so an oversized one stores none of them,
    /// then commits them all in one transaction.
    async fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> Result<()> {
        let records = entries
            .into_iter()
            .map(|(key, entry)| self.prepare(key, &entry))
            .collect::<Result<Vec<_>>>()?;
        if records.is_empty() {
            return Ok(());
        }
        self.call(|ack| Command::Insert { records, ack }).await
    }

    fn removals(&self) -> Option<Removals> {
        Some(self.inner.shared.counters.removals())
    }

    /// Lists keys in bytewise key order, one read transaction per page, off
    /// the async runtime's worker threads. Entries expired at the tier's
    /// clock are skipped whether or not the sweeper has reached them, and
    /// each key appears at most once per listing.
    ///
    /// The cursor is the last key a page visited, so it stays valid while
    /// the tier runs, after the file is reopened and in another process on
    /// the same file: the listing resumes after that key even if it has
    /// been removed since. Records are not read, so the key of a corrupted
    /// record is listed; reading it is then a miss that deletes it.
    async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
        let after = listing::resume_after(from)?;
        let shared = self.inner.shared.clone();
        let page = listing::off_runtime(self.inner.inline_reads, move || {
            guarded(|| listing::page(&shared, after.as_deref(), limit))
        })
        .await;
        self.checked(page).map(Some)
    }
}
