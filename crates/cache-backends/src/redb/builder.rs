//! Configuration of a [`RedbBackend`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::redb::StorageBackend;
use cache_core::{Clock, Error, ErrorKind, Limits, Result};

use super::backend::RedbBackend;
use super::durability::Durability;
use super::open::Opener;
use super::readers::Readers;
use super::shared::Shared;
use super::storage::{CustomStorage, Described, FileStorage, Storage};
use super::writer::{self, Settings};

/// Builds a [`RedbBackend`]; start from [`RedbBackend::builder`].
///
/// Every duration it takes may be `Duration::MAX`, which reads as
/// "never": the timer it sets does not fire, and the work waits for the
/// calls that do it on demand ([`RedbBackend::sync`],
/// [`RedbBackend::sweep`]) or for the close.
#[derive(Clone)]
pub struct RedbBackendBuilder {
    path: PathBuf,
    max_bytes: u64,
    clock: Clock,
    limits: Limits,
    durability: Durability,
    sweep_interval: Duration,
    sweep_batch: usize,
    access_flush_interval: Duration,
    access_batch: usize,
    cache_size: usize,
    read_threads: usize,
    inline_reads: bool,
    recreate_on_error: bool,
    /// A caller's storage in place of the file at `path`.
    storage: Option<Arc<dyn Storage>>,
}

impl fmt::Debug for RedbBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbBackendBuilder")
            .field("path", &self.path)
            .field("max_bytes", &self.max_bytes)
            .field("clock", &self.clock)
            .field("limits", &self.limits)
            .field("durability", &self.durability)
            .field("sweep_interval", &self.sweep_interval)
            .field("sweep_batch", &self.sweep_batch)
            .field("access_flush_interval", &self.access_flush_interval)
            .field("access_batch", &self.access_batch)
            .field("cache_size", &self.cache_size)
            .field("read_threads", &self.read_threads)
            .field("inline_reads", &self.inline_reads)
            .field("recreate_on_error", &self.recreate_on_error)
            .field("storage", &Described(&self.storage))
            .finish()
    }
}

impl RedbBackendBuilder {
    /// The default settings for a file at `path`.
    pub(super) fn new(path: PathBuf) -> Self {
        RedbBackendBuilder {
            path,
            max_bytes: 1 << 30,
            clock: Clock::system(),
            limits: Limits::DEFAULT,
            durability: Durability::Immediate,
            sweep_interval: Duration::from_secs(1),
            sweep_batch: 1_000,
            access_flush_interval: Duration::from_secs(1),
            access_batch: 10_000,
            cache_size: 64 << 20,
            // Each reader serves every lookup waiting when it wakes in one
            // transaction, so a few threads keep up with many tasks; more
            // than the cores would only add wake-ups.
            read_threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
            inline_reads: true,
            recreate_on_error: false,
            storage: None,
        }
    }

    /// The most key and record bytes the file holds (each record is the
    /// value plus a header of about 30 bytes and its class name). Least
    /// recently used entries are evicted beyond it. 1 GiB by default.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The clock used for expiry (a manual clock in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The key and value size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// When commits reach the disk. [`Durability::Immediate`] by default.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How often the sweeper looks for expired entries. Every second by
    /// default; `Duration::MAX` turns the timed sweep off (expired entries
    /// are still never returned, and [`RedbBackend::sweep`] still deletes
    /// them).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// The most expired entries one sweep deletes, so that a sweep is a
    /// short transaction however many entries expired at once. 1,000 by
    /// default.
    pub fn sweep_batch(mut self, batch: usize) -> Self {
        self.sweep_batch = batch;
        self
    }

    /// The longest reads wait, buffered in memory, before their access
    /// times are written. Every second by default; with `Duration::MAX`
    /// they are written only along with other writes, when the buffer is
    /// full, on [`RedbBackend::sync`] and at the close.
    pub fn access_flush_interval(mut self, interval: Duration) -> Self {
        self.access_flush_interval = interval;
        self
    }

    /// How many distinct keys read the buffer holds. A full buffer asks
    /// for a flush before the timer (the writer grants it once its pause
    /// after the last batch of access times has passed; see the [module
    /// documentation](super)) and drops reads of new keys until then.
    /// 10,000 by default.
    pub fn access_batch(mut self, batch: usize) -> Self {
        self.access_batch = batch;
        self
    }

    /// The memory redb may use to cache pages of the file. 64 MiB by
    /// default.
    pub fn cache_size(mut self, bytes: usize) -> Self {
        self.cache_size = bytes;
        self
    }

    /// How many threads serve lookups, so that no redb read runs on the
    /// async runtime's worker threads. Each serves all the lookups waiting
    /// when it wakes in one read transaction. The number of cores, at most
    /// 4, by default.
    pub fn read_threads(mut self, threads: usize) -> Self {
        self.read_threads = threads;
        self
    }

    /// Whether a lookup made outside any tokio runtime (from a plain
    /// thread, for example under `futures::executor::block_on`) reads on
    /// the caller's thread instead of going to a reader thread. A lookup
    /// made inside a tokio runtime always goes to the reader threads, so
    /// that no redb call blocks a runtime worker. On by default; turn it
    /// off if the tier is polled from the worker threads of some other
    /// async runtime, which a blocking read would stall.
    pub fn inline_reads(mut self, inline: bool) -> Self {
        self.inline_reads = inline;
        self
    }

    /// Deletes and recreates a file that exists but cannot be read as this
    /// tier's file (not a redb database, damaged, or of another layout),
    /// instead of failing. A file open in another process is never deleted.
    /// Off by default: the file might hold something else of value.
    pub fn recreate_on_error(mut self, recreate: bool) -> Self {
        self.recreate_on_error = recreate;
        self
    }

    /// Stores the database in storage that `open` makes, instead of the
    /// file at the builder's path (which then only names the tier in
    /// errors and in [`RedbBackend::path`]): an encrypted or instrumented
    /// file, or one that injects faults in a test.
    ///
    /// `open` is called once when the tier is built and again each time
    /// the tier reopens its database after an I/O error, so each call must
    /// return a fresh handle on the same storage (for a file, a newly
    /// opened [`File`](std::fs::File) in redb's `FileBackend`), never one
    /// shared with an earlier call. With
    /// [`recreate_on_error`](Self::recreate_on_error), unreadable storage
    /// is emptied with [`StorageBackend::set_len`]`(0)` on a handle from
    /// `open`.
    pub fn storage_backend<F, B>(mut self, open: F) -> Self
    where
        F: Fn() -> std::io::Result<B> + Send + Sync + 'static,
        B: StorageBackend,
    {
        self.storage = Some(Arc::new(CustomStorage(open)));
        self
    }

    /// Opens the file on the runtime's blocking pool and starts the tier.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a zero bound, batch or interval;
    /// [`ErrorKind::Unavailable`] if another process has the file open;
    /// [`ErrorKind::Backend`] if the file cannot be opened or is not this
    /// tier's file (the message names the path, the source is redb's
    /// error).
    pub async fn build(self) -> Result<RedbBackend> {
        tokio::task::spawn_blocking(move || self.build_blocking())
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Backend, "opening the redb file failed").with_source(e)
            })?
    }

    /// Opens the file and starts the tier, blocking the calling thread. For
    /// callers outside an async runtime; inside one, use
    /// [`build`](Self::build).
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build).
    pub fn build_blocking(self) -> Result<RedbBackend> {
        self.validate()?;
        let storage = self
            .storage
            .clone()
            .unwrap_or_else(|| Arc::new(FileStorage(self.path.clone())));
        let opener = Opener {
            storage,
            path: self.path.clone(),
            cache_size: self.cache_size,
            max_bytes: self.max_bytes,
            recreate: self.recreate_on_error,
        };
        let opened = opener.open()?;
        let shared = Arc::new(Shared::new(
            opened.db,
            self.path.clone(),
            self.clock,
            self.access_batch,
            opened.used_bytes,
        ));
        let settings = Settings {
            max_bytes: self.max_bytes,
            durability: self.durability,
            sweep_interval: self.sweep_interval,
            sweep_batch: self.sweep_batch,
            access_flush_interval: self.access_flush_interval,
            opener,
        };
        let readers = Readers::spawn(&shared, self.read_threads).map_err(|e| {
            Error::new(ErrorKind::Backend, "cannot start the redb reader threads").with_source(e)
        })?;
        let (tx, thread) =
            writer::spawn(shared.clone(), settings, opened.next_tick).map_err(|e| {
                Error::new(ErrorKind::Backend, "cannot start the redb writer thread").with_source(e)
            })?;
        Ok(RedbBackend::new(
            shared,
            readers,
            tx,
            thread,
            self.limits,
            self.max_bytes,
            self.inline_reads,
        ))
    }

    fn validate(&self) -> Result<()> {
        let invalid = |what: &'static str| Err(Error::new(ErrorKind::InvalidConfig, what));
        if self.max_bytes == 0 {
            return invalid("max_bytes must be at least 1");
        }
        if self.sweep_batch == 0 {
            return invalid("sweep_batch must be at least 1");
        }
        if self.access_batch == 0 {
            return invalid("access_batch must be at least 1");
        }
        if self.read_threads == 0 {
            return invalid("read_threads must be at least 1");
        }
        if self.sweep_interval.is_zero() || self.access_flush_interval.is_zero() {
            return invalid("the sweep and access flush intervals must be above zero");
        }
        if self.durability.period().is_some_and(|p| p.is_zero()) {
            return invalid("a periodic durability needs a period above zero");
        }
        Ok(())
    }
}
