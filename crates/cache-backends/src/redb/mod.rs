//! The disk tier: [`RedbBackend`] keeps entries in one crash-safe
//! [redb](https://docs.rs/redb) file.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use cache_backends::redb::{Durability, RedbBackend};
//! use cache_core::{Backend, Entry, Meta};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let tier = RedbBackend::builder(dir.path().join("cache.redb"))
//!     .max_bytes(64 << 20)
//!     .durability(Durability::Periodic(Duration::from_millis(100)))
//!     .build()
//!     .await?;
//! tier.insert("k".into(), Entry::new(&b"v"[..], Meta::new(0))).await?;
//! assert!(tier.get(b"k").await?.is_hit());
//! // Make everything so far durable now, without waiting for the period.
//! tier.sync().await?;
//! # Ok::<(), cache_core::Error>(())
//! # }).unwrap();
//! ```
//!
//! # File layout
//!
//! The file holds five tables, all changed together in each write
//! transaction so they never disagree after a crash:
//!
//! | table | key → value | purpose |
//! |---|---|---|
//! | `tiercache_entries` | key bytes → record | the entries; a record is the crate's envelope (magic, version, flags, expiry, creation time, class, value, CRC-32) |
//! | `tiercache_keys` | key bytes → (access tick, expiry ms or `u64::MAX`, bytes counted) | each entry's place in the two indexes below, and its share of the byte total |
//! | `tiercache_by_expiry` | (expiry ms, key) → () | entries that expire, soonest first, for the sweeper |
//! | `tiercache_by_access` | (access tick, key) → () | every entry, least recently used first, for eviction |
//! | `tiercache_meta` | name → u64 | the layout version and the running total of key + record bytes |
//!
//! redb does not verify checksums on ordinary reads, so every record is
//! checked against its own CRC when it is read. A record that fails is a
//! miss: it is deleted and counted in [`RedbStats::corrupted`]. An expired
//! entry is never returned, whether or not the sweeper has reached it yet;
//! the sweeper deletes at most
//! [`sweep_batch`](RedbBackendBuilder::sweep_batch) expired entries per
//! transaction.
//!
//! # Access times in batches
//!
//! The tier is bounded by [`max_bytes`](RedbBackendBuilder::max_bytes) and
//! evicts the least recently used entries first. Recording every read in the
//! file would turn each read into a write transaction, so a read only notes
//! its key in an in-memory buffer, in the order of reads. The writer thread
//! writes the buffer (each key taking the next access tick in that order)
//! every [`access_flush_interval`](RedbBackendBuilder::access_flush_interval),
//! on [`RedbBackend::sync`], and earlier, along with other writes or when
//! the buffer holds [`access_batch`](RedbBackendBuilder::access_batch) keys,
//! as long as access times take at most about a tenth of the writer's time:
//! after each batch it waits nine times as long as that batch took before
//! it writes another early. A full buffer drops reads of new keys until it
//! is written. Eviction runs in the same transaction as the batch, so the
//! least-recently-used order is approximate by the reads still in the
//! buffer, while the byte bound itself holds after every commit.
//!
//! # Durability
//!
//! All writes go through one writer thread, which commits every write
//! waiting in its queue in one transaction, so concurrent inserts share a
//! commit. An insert is acknowledged only after that commit succeeded.
//!
//! - [`Durability::Immediate`] (the default): each commit is durable when it
//!   returns, so an acknowledged write survives a crash or power loss.
//! - [`Durability::Periodic`]: commits are made without `fsync`, and the
//!   writer makes them durable with one durable commit per period (and when
//!   the last handle is dropped, or on [`RedbBackend::sync`]). A crash loses
//!   at most one period of writes, never the file's consistency.
//!
//! # I/O errors
//!
//! redb latches an I/O failure (a full disk, a failing device): every later
//! transaction of that database fails, even once the storage works again.
//! The tier recovers by itself. After an I/O error the writer closes the
//! database and opens the file again, which runs redb's repair of a file
//! left without a clean shutdown. The first reopen waits 100 ms, and each
//! failure in a row doubles the wait, up to 10 s, so storage that stays
//! broken costs a reopen now and then, not one per write;
//! [`RedbStats::reopens`] counts the reopens that succeeded. Meanwhile:
//!
//! - writes, removes, `len`, `sync` and `sweep` fail at once with
//!   [`ErrorKind::Unavailable`](cache_core::ErrorKind::Unavailable), the
//!   I/O error as the source (the write that met the error fails with
//!   [`ErrorKind::Backend`](cache_core::ErrorKind::Backend));
//! - reads go on through the failed database until the first reopen, as
//!   far as redb can serve them from its page cache (the others fail with
//!   `Backend`), and fail with `Unavailable` while the file is closed
//!   between a failed reopen and the next.
//!
//! Once a reopen succeeds, the tier holds every durable commit made before
//! the error. With [`Durability::Periodic`], the writes acknowledged since
//! the last durable commit are lost, as in a crash.
//!
//! # Threads
//!
//! No redb call runs on the async runtime's worker threads:
//!
//! - Inside a tokio runtime, lookups go to a few reader threads
//!   ([`read_threads`](RedbBackendBuilder::read_threads)), each serving every
//!   lookup waiting when it wakes in one read transaction.
//! - Outside any tokio runtime (a plain thread polling the future, for
//!   example with `futures::executor::block_on`), a lookup runs on the
//!   caller's own thread, which nothing else waits on: no queue and no
//!   wake-ups, the cost of a direct redb read plus the record's checks.
//!   [`inline_reads`](RedbBackendBuilder::inline_reads) turns this off for
//!   callers on the workers of some other async runtime.
//!   [`RedbStats::handed_off`] counts the lookups that went to the readers.
//! - Writes and background work run on the writer thread.
//!
//! The reader and writer threads stop, and the file closes, when the last
//! clone of the backend is dropped.

mod access;
mod backend;
mod builder;
mod durability;
mod error;
mod listing;
mod open;
mod readers;
mod shared;
mod stats;
mod storage;
mod tables;
mod writer;

/// redb's storage trait, for [`RedbBackendBuilder::storage_backend`]:
/// re-exported so that an implementation names the same redb version as
/// the tier.
pub use ::redb::StorageBackend;
pub use backend::RedbBackend;
pub use builder::RedbBackendBuilder;
pub use durability::Durability;
pub use stats::RedbStats;
