//! The state the writer thread and the readers share: the open database,
//! the clock, the batch of reads and the counters; and the read path.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use ::redb::{Database, ReadOnlyTable, ReadableDatabase};
use bytes::Bytes;
use cache_core::{Clock, Entry, Result};
use parking_lot::RwLock;

use super::access::AccessBuffer;
use super::error::{reopening, storage};
use super::stats::Counters;
use super::tables::ENTRIES;
use crate::envelope;

/// What a read found for one key.
#[derive(Debug)]
pub(super) enum Found {
    /// A live entry, negative or not: the tier's answer is built from it
    /// with `Lookup::from_entry`.
    Hit(Entry),
    /// Nothing live: absent or expired.
    Miss,
    /// A record that failed its integrity check, to be deleted.
    Corrupted(Vec<u8>),
}

/// A value on cache lines of its own. Every read changes the state of the
/// access buffer's lock; sharing a line with it would make each read of the
/// fields beside it (the clock, read on every lookup) a cache miss on
/// another core.
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Shared by every clone of a backend, its readers and its writer thread.
///
/// The file closes when this drops: after the reader and writer threads
/// have stopped (they hold the other references), when the last handle
/// goes. The writer also closes it, and opens it again, to recover from an
/// I/O error; see [`take_db`](Self::take_db).
#[derive(Debug)]
pub(super) struct Shared {
    /// The open database; `None` while the writer reopens it after an I/O
    /// error. Every transaction holds the read lock while it runs, so that
    /// the writer can close the database only when none is open. The lock
    /// changes state on every read, hence a line of its own.
    db: Line<RwLock<Option<Database>>>,
    /// Set once a read that met an I/O error has asked the writer to
    /// check the file, so that a burst of failing reads sends one request.
    recover_asked: AtomicBool,
    pub(super) path: PathBuf,
    pub(super) clock: Clock,
    pub(super) access: Line<AccessBuffer>,
    pub(super) counters: Counters,
}

impl Shared {
    /// State around a database whose entries total `used_bytes`.
    pub(super) fn new(
        db: Database,
        path: PathBuf,
        clock: Clock,
        access_batch: usize,
        used_bytes: u64,
    ) -> Self {
        Shared {
            db: Line(RwLock::new(Some(db))),
            recover_asked: AtomicBool::new(false),
            path,
            clock,
            access: Line(AccessBuffer::new(access_batch)),
            counters: Counters::new(used_bytes),
        }
    }

    /// Looks up several callers' keys in one read transaction. Returns
    /// what each key holds, per caller, and whether the batch of reads is
    /// full and should be flushed now. A storage error fails the whole
    /// batch: it means the file, not one key, is in trouble.
    pub(super) fn read_batch(&self, callers: &[&[Bytes]]) -> Result<(Vec<Vec<Found>>, bool)> {
        self.with_table(|table, now| {
            let mut hits = Vec::new();
            let mut answers = Vec::with_capacity(callers.len());
            for keys in callers {
                let mut found = Vec::with_capacity(keys.len());
                for key in *keys {
                    let held = lookup(table, key, now)?;
                    if matches!(held, Found::Hit(_)) {
                        hits.push(key.as_ref());
                    }
                    found.push(held);
                }
                answers.push(found);
            }
            // One lock of the access buffer for the whole batch.
            let flush = self.access.record_all(hits);
            Ok((answers, flush))
        })
    }

    /// [`read_batch`](Self::read_batch) for one key, without the batch's
    /// allocations: the path of a caller reading on its own thread.
    pub(super) fn read_one(&self, key: &[u8]) -> Result<(Found, bool)> {
        self.with_table(|table, now| {
            let found = lookup(table, key, now)?;
            let flush = matches!(found, Found::Hit(_)) && self.access.record_all([key]);
            Ok((found, flush))
        })
    }

    /// Runs `f` with the open database, or fails with
    /// [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable) while
    /// the writer is reopening it.
    pub(super) fn with_db<T>(&self, f: impl FnOnce(&Database) -> Result<T>) -> Result<T> {
        let db = self.db.read();
        f(db.as_ref().ok_or_else(reopening)?)
    }

    /// Takes the database out, once every transaction has ended, so that
    /// the writer can close it; reads fail with
    /// [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable) until
    /// [`install_db`](Self::install_db).
    pub(super) fn take_db(&self) -> Option<Database> {
        self.db.write().take()
    }

    /// Puts a freshly opened database in place.
    pub(super) fn install_db(&self, db: Database) {
        *self.db.write() = Some(db);
    }

    /// Whether the caller, whose read met an I/O error, is the first to
    /// ask the writer to check the file since it last did.
    pub(super) fn ask_recover(&self) -> bool {
        !self.recover_asked.swap(true, Ordering::AcqRel)
    }

    /// The writer has taken the request to check the file: the next read
    /// that fails asks again.
    pub(super) fn recover_taken(&self) {
        self.recover_asked.store(false, Ordering::Release);
    }

    /// Runs `f` on the entries table in a new read transaction, with the
    /// tier's clock read once for it.
    fn with_table<T>(&self, f: impl FnOnce(&EntriesTable, u64) -> Result<T>) -> Result<T> {
        self.with_db(|db| {
            let txn = db
                .begin_read()
                .map_err(|e| storage("cannot begin a redb read transaction", e))?;
            let table = txn
                .open_table(ENTRIES)
                .map_err(|e| storage("cannot open the redb entries table", e))?;
            f(&table, self.clock.now_ms())
        })
    }
}

/// The entries table as a read transaction sees it.
type EntriesTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// What `key` holds at `now_ms`.
///
/// Expiry is checked against the tier's clock on every read, so an expired
/// entry is a miss whether or not the sweeper has reached it.
fn lookup(table: &EntriesTable, key: &[u8], now_ms: u64) -> Result<Found> {
    let held = table
        .get(key)
        .map_err(|e| storage("cannot read from the redb file", e))?;
    let Some(held) = held else {
        return Ok(Found::Miss);
    };
    let record = held.value();
    // The checksum is verified before the expiry is trusted, even though
    // an expired entry could be skipped sooner: a flipped bit in the expiry
    // must count as corruption and delete the record, not pass for an
    // ordinary expired entry.
    Ok(match envelope::decode(record) {
        Ok(entry) if entry.meta.is_expired(now_ms) => Found::Miss,
        Ok(entry) => Found::Hit(entry),
        Err(_) => Found::Corrupted(record.to_vec()),
    })
}
