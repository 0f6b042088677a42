//! The writer thread: the only place that writes to the file. It groups
//! every write waiting in its queue into one transaction, runs the
//! sweeper, the access-time flush and the periodic durable commit, and
//! reopens the file after an I/O error.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Error, ErrorKind, Result};
use tokio::sync::oneshot;

use super::durability::Durability;
use super::error::{needs_reopen, storage};
use super::open::Opener;
use super::shared::Shared;
use super::tables::Tables;

/// The most commands applied in one transaction, so that one commit (and
/// the memory of its pending records) stays bounded under a flood of writes.
const MAX_BATCH: usize = 1024;

/// After writing a batch of access times, the writer waits this many times
/// as long as that commit took before it writes the next batch early (for a
/// full buffer, or along with other writes): access times then take at
/// most about a tenth of the writer's time, however fast reads come. The
/// timed flush every `access_flush_interval` is not held back.
const ACCESS_PAUSE_FACTOR: u32 = 9;

/// How long the writer waits after an I/O error before it reopens the
/// file. The wait doubles with each failure in a row, up to
/// [`LAST_RETRY`], so that storage that stays broken (a full disk) costs a
/// reopen (and redb's repair of the file) now and then, not one per write.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// The longest wait between two reopens.
const LAST_RETRY: Duration = Duration::from_secs(10);

/// The wait before the next reopen after `failures` I/O failures in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << failures.min(16))
        .min(LAST_RETRY)
}

/// The moment `wait` after `now`. A wait too long for an `Instant` (a
/// setting of `Duration::MAX`, meaning "never") lands a century away
/// instead of overflowing.
fn later(now: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(wait)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// Where the writer sends the outcome of a command.
pub(super) type Ack<T> = oneshot::Sender<Result<T>>;

/// An entry ready to store: its key and its encoded record.
#[derive(Debug)]
pub(super) struct Record {
    pub(super) key: Bytes,
    pub(super) record: Vec<u8>,
}

/// A request to the writer thread.
#[derive(Debug)]
pub(super) enum Command {
    /// Store these records.
    Insert { records: Vec<Record>, ack: Ack<()> },
    /// Remove a key, answering whether a live entry was removed.
    Remove { key: Bytes, ack: Ack<bool> },
    /// Remove a key only while its record holds the value `seen` (or is
    /// corrupted), answering whether it removed the record.
    RemoveIfUnchanged {
        key: Bytes,
        seen: Bytes,
        ack: Ack<bool>,
    },
    /// Delete records readers found corrupted (if still unchanged).
    DropCorrupted {
        records: Vec<(Bytes, Vec<u8>)>,
        ack: Ack<()>,
    },
    /// Remove every entry.
    Clear { ack: Ack<()> },
    /// Run one bounded sweep now, answering how many entries it removed.
    Sweep { ack: Ack<u64> },
    /// Write the batch of reads and make everything durable.
    Sync { ack: Ack<()> },
    /// Count the entries, expired ones not yet swept included.
    Len { ack: Ack<u64> },
    /// The batch of reads is full: write it soon.
    FlushAccess,
    /// A read met an I/O error: check whether the file needs reopening.
    Recover,
    /// The last handle is gone: finish and close the file.
    Shutdown,
}

/// What a command produced, sent once its transaction has committed.
#[derive(Clone, Copy)]
enum Outcome {
    Done,
    Removed(bool),
    Swept(u64),
    Count(u64),
}

impl Command {
    /// Sends the command's outcome, or the transaction's error, to its
    /// caller. A caller that stopped waiting is not an error.
    fn answer(self, result: Result<Outcome>) {
        match self {
            Command::Insert { ack, .. }
            | Command::DropCorrupted { ack, .. }
            | Command::Clear { ack }
            | Command::Sync { ack } => {
                let _ = ack.send(result.map(|_| ()));
            }
            Command::Remove { ack, .. } | Command::RemoveIfUnchanged { ack, .. } => {
                let _ = ack.send(result.map(|o| matches!(o, Outcome::Removed(true))));
            }
            Command::Sweep { ack } | Command::Len { ack } => {
                let _ = ack.send(result.map(|o| match o {
                    Outcome::Swept(n) | Outcome::Count(n) => n,
                    _ => 0,
                }));
            }
            Command::FlushAccess | Command::Recover | Command::Shutdown => {}
        }
    }
}

/// The writer's settings.
pub(super) struct Settings {
    pub(super) max_bytes: u64,
    pub(super) durability: Durability,
    pub(super) sweep_interval: Duration,
    pub(super) sweep_batch: usize,
    pub(super) access_flush_interval: Duration,
    /// How to open the file again after an I/O error.
    pub(super) opener: Opener,
}

/// Starts the writer thread over an open file whose newest access tick is
/// below `next_tick`.
pub(super) fn spawn(
    shared: Arc<Shared>,
    settings: Settings,
    next_tick: u64,
) -> std::io::Result<(Sender<Command>, JoinHandle<()>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let now = Instant::now();
    let writer = Writer {
        shared,
        next_sweep: later(now, settings.sweep_interval),
        next_access_flush: later(now, settings.access_flush_interval),
        access_ready_at: now,
        access_wanted: false,
        next_durable: settings.durability.period().map(|p| later(now, p)),
        not_durable: false,
        tick: Cell::new(next_tick),
        broken: None,
        failures: 0,
        settings,
    };
    let thread = std::thread::Builder::new()
        .name("tiercache-redb".into())
        .spawn(move || writer.run(&rx))?;
    Ok((tx, thread))
}

/// The writer thread's state: the timers of its background work and
/// whether the file holds commits that are not yet durable.
struct Writer {
    shared: Arc<Shared>,
    settings: Settings,
    /// The logical clock of accesses: writes and flushed reads each take
    /// the next tick, so the least recently used entry has the smallest
    /// one. Only this thread hands ticks out.
    tick: Cell<u64>,
    next_sweep: Instant,
    next_access_flush: Instant,
    /// The earliest moment a batch of access times may be written before
    /// its timer is due; see [`ACCESS_PAUSE_FACTOR`].
    access_ready_at: Instant,
    /// Whether a full buffer asked for a flush that has not happened yet.
    access_wanted: bool,
    /// When the next durable commit is due under periodic durability.
    next_durable: Option<Instant>,
    /// Whether a commit since the last durable one skipped `fsync`.
    not_durable: bool,
    /// Set from an I/O error until the file has been opened again.
    broken: Option<Broken>,
    /// I/O failures (of commits and of reopens) since the last successful
    /// commit, which set the wait before the next reopen.
    failures: u32,
}

/// The file failed with an I/O error and waits to be reopened.
///
/// redb latches an I/O failure: every later transaction of that database
/// fails with `PreviousIo`, even once the storage works again. So the
/// writer closes the database and opens it afresh, which also runs redb's
/// repair of a file left without a clean shutdown. Until then it answers
/// every command at once with an error; reads go on through the failed
/// database for as long as redb can serve them from its page cache, and
/// fail with [`ErrorKind::Unavailable`] while the file is closed between a
/// failed reopen and the next.
struct Broken {
    /// When the next reopen is due.
    retry_at: Instant,
    /// The error that broke the file, or that the last reopen met.
    cause: Error,
}

impl Writer {
    /// Serves commands until the last handle is gone, then closes the file.
    /// Waiting on the queue with a timeout lets the same loop run the
    /// timers, so the tier needs no thread beyond this one.
    fn run(mut self, rx: &Receiver<Command>) {
        let mut stopping = false;
        while !stopping {
            let mut batch = Vec::new();
            let wait = self
                .next_deadline()
                .saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Command::Shutdown) | Err(RecvTimeoutError::Disconnected) => stopping = true,
                Ok(command) => batch.push(command),
                Err(RecvTimeoutError::Timeout) => {}
            }
            while !stopping && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => stopping = true,
                    Ok(command) => batch.push(command),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.step(batch, stopping);
        }
    }

    /// The next access tick.
    fn next_tick(&self) -> u64 {
        let tick = self.tick.get();
        self.tick.set(tick + 1);
        tick
    }

    /// The earliest moment a timer needs the writer. While the file is
    /// broken only the reopen is: the other timers' work waits for it.
    fn next_deadline(&self) -> Instant {
        if let Some(broken) = &self.broken {
            return broken.retry_at;
        }
        let mut first = self.next_sweep.min(self.next_access_flush);
        if self.access_wanted {
            first = first.min(self.access_ready_at);
        }
        self.next_durable.map_or(first, |at| at.min(first))
    }

    /// Commits a batch of commands together with whatever timers are due.
    fn step(&mut self, mut batch: Vec<Command>, stopping: bool) {
        if batch.iter().any(|c| matches!(c, Command::Recover)) {
            batch.retain(|c| !matches!(c, Command::Recover));
            self.shared.recover_taken();
            if self.broken.is_none() {
                self.probe();
            }
        }
        if self.broken.is_some() && !stopping {
            self.recover(batch);
            return;
        }
        if let Some(broken) = &self.broken {
            // Closing: what the failed database did not make durable is
            // lost either way, so there is nothing to reopen for.
            let error = refused(&broken.cause);
            for command in batch {
                command.answer(Err(error.clone()));
            }
            return;
        }
        let now = Instant::now();
        let sweep = now >= self.next_sweep;
        if sweep {
            self.next_sweep = later(now, self.settings.sweep_interval);
        }
        let before = batch.len();
        batch.retain(|c| !matches!(c, Command::FlushAccess));
        self.access_wanted |= batch.len() < before;
        // The timer, a caller's `sync` and the close always write the
        // access times; anything else only once the pause after the last
        // batch has passed.
        let timed = now >= self.next_access_flush;
        let forced = stopping || batch.iter().any(|c| matches!(c, Command::Sync { .. }));
        let take_access = timed || forced || now >= self.access_ready_at;
        if timed {
            self.next_access_flush = later(now, self.settings.access_flush_interval);
        }
        let durable_due = self.next_durable.is_some_and(|at| now >= at);
        if durable_due {
            self.next_durable = self.settings.durability.period().map(|p| later(now, p));
        }
        // A durable commit is needed when one is due (or the file closes)
        // and something since the last one skipped `fsync`.
        let durable = (durable_due || stopping) && self.not_durable;
        let access_due = take_access && !self.shared.access.is_empty();
        let work = !batch.is_empty() || sweep || access_due;
        if !(work || durable) {
            return;
        }
        if access_due {
            self.access_wanted = false;
        }
        let swept = self.commit(batch, sweep, access_due, durable || stopping);
        if access_due {
            let took = now.elapsed();
            self.access_ready_at = later(Instant::now(), took.saturating_mul(ACCESS_PAUSE_FACTOR));
        }
        if swept == Some(self.settings.sweep_batch as u64) {
            // A full batch suggests more are due: sweep again promptly,
            // still one bounded transaction at a time between other writes.
            self.next_sweep = now;
        }
    }

    /// While the file is broken: reopens it once the wait is over, and
    /// answers the batch with an error if it is still broken. A batch that
    /// arrives after a successful reopen is committed as usual.
    fn recover(&mut self, batch: Vec<Command>) {
        if self
            .broken
            .as_ref()
            .is_some_and(|b| Instant::now() >= b.retry_at)
        {
            self.reopen();
        }
        match &self.broken {
            None => self.step(batch, false),
            Some(broken) => {
                let error = refused(&broken.cause);
                for command in batch {
                    command.answer(Err(error.clone()));
                }
            }
        }
    }

    /// Marks the file broken by `cause`, with the next reopen due after
    /// the backoff.
    fn break_down(&mut self, cause: Error) {
        let wait = backoff(self.failures);
        self.failures = self.failures.saturating_add(1);
        self.broken = Some(Broken {
            retry_at: later(Instant::now(), wait),
            cause,
        });
    }

    /// Closes the failed database and opens the file again.
    fn reopen(&mut self) {
        // redb holds a lock on the file while a database is open, so the
        // failed one must be closed (once every read of it has ended)
        // before the file can open again.
        drop(self.shared.take_db());
        match self.settings.opener.open() {
            Ok(opened) => {
                self.shared.install_db(opened.db);
                self.shared.counters.reopened(opened.used_bytes);
                // The file holds only durable commits now, and its ticks
                // may lag the ones handed out before the failure: ticks
                // must keep increasing.
                self.tick.set(self.tick.get().max(opened.next_tick));
                self.not_durable = false;
                self.broken = None;
            }
            Err(error) => self.break_down(error),
        }
    }

    /// Checks, after a read met an I/O error, whether the database has
    /// latched it: redb then refuses every write transaction.
    fn probe(&mut self) {
        let outcome = self.shared.with_db(|db| {
            let txn = db
                .begin_write()
                .map_err(|e| storage("cannot begin a redb write transaction", e))?;
            txn.abort()
                .map_err(|e| storage("cannot end a redb write transaction", e))
        });
        if let Err(error) = outcome
            && needs_reopen(&error)
        {
            self.break_down(error);
        }
    }

    /// Applies `batch` in one transaction, then answers every command.
    /// Returns how many entries the timed sweep removed, if it ran and the
    /// transaction succeeded.
    fn commit(
        &mut self,
        batch: Vec<Command>,
        sweep: bool,
        take_access: bool,
        force_durable: bool,
    ) -> Option<u64> {
        // A caller's `sync` needs a durable commit even when nothing changed,
        // since earlier commits may have skipped `fsync`.
        let must_commit = force_durable || batch.iter().any(|c| matches!(c, Command::Sync { .. }));
        let durable = must_commit || self.settings.durability == Durability::Immediate;
        // Taken before the transaction: if it fails, these access times are
        // lost, which only makes eviction a little less exact.
        let access = if take_access {
            self.shared.access.take()
        } else {
            Default::default()
        };
        let mut outcomes = Vec::with_capacity(batch.len());
        let result = self.shared.with_db(|db| {
            let mut txn = db
                .begin_write()
                .map_err(|e| storage("cannot begin a redb write transaction", e))?;
            let level = if durable {
                ::redb::Durability::Immediate
            } else {
                ::redb::Durability::None
            };
            txn.set_durability(level)
                .map_err(|e| storage("cannot set the redb commit durability", e))?;
            let mut tables =
                Tables::open(&txn).map_err(|e| storage("cannot open the redb tables", e))?;
            let swept = self
                .apply(&mut tables, &batch, &access, sweep, &mut outcomes)
                .map_err(|e| storage("a redb write failed", e))?;
            let (bytes, delta, dirty) = tables
                .finish()
                .map_err(|e| storage("a redb write failed", e))?;
            let committed = if dirty || must_commit {
                txn.commit()
                    .map_err(|e| storage("cannot commit to the redb file", e))?;
                true
            } else {
                // Nothing changed (an idle sweep, a remove of an absent
                // key): dropping the transaction saves a commit and, with
                // immediate durability, an `fsync`.
                txn.abort()
                    .map_err(|e| storage("cannot end a redb write transaction", e))?;
                false
            };
            Ok((bytes, delta, swept, committed))
        });
        match result {
            Ok((bytes, delta, swept, committed)) => {
                if committed {
                    self.shared.counters.committed(bytes, delta, durable);
                    self.not_durable = !durable;
                    self.failures = 0;
                }
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(Ok(outcome));
                }
                swept
            }
            Err(error) => {
                if needs_reopen(&error) {
                    self.break_down(error.clone());
                }
                for command in batch {
                    command.answer(Err(error.clone()));
                }
                None
            }
        }
    }

    /// The body of a transaction: the batch of reads, then each command in
    /// order, then the timed sweep and eviction.
    fn apply(
        &self,
        tables: &mut Tables<'_>,
        batch: &[Command],
        access: &[Box<[u8]>],
        sweep: bool,
        outcomes: &mut Vec<Outcome>,
    ) -> std::result::Result<Option<u64>, ::redb::Error> {
        let now = self.shared.clock.now_ms();
        tables.record_access(access, || self.next_tick())?;
        for command in batch {
            let outcome = match command {
                Command::Insert { records, .. } => {
                    for r in records {
                        let tick = self.next_tick();
                        tables.insert(&r.key, &r.record, tick, now)?;
                    }
                    Outcome::Done
                }
                Command::Remove { key, .. } => Outcome::Removed(tables.remove(key, now)?),
                Command::RemoveIfUnchanged { key, seen, .. } => {
                    Outcome::Removed(tables.remove_if_unchanged(key, seen)?)
                }
                Command::DropCorrupted { records, .. } => {
                    for (key, record) in records {
                        tables.drop_corrupted(key, record)?;
                    }
                    Outcome::Done
                }
                Command::Clear { .. } => {
                    tables.clear()?;
                    Outcome::Done
                }
                Command::Sweep { .. } => {
                    Outcome::Swept(tables.sweep(now, self.settings.sweep_batch)?)
                }
                Command::Len { .. } => Outcome::Count(tables.len()?),
                Command::Sync { .. }
                | Command::FlushAccess
                | Command::Recover
                | Command::Shutdown => Outcome::Done,
            };
            outcomes.push(outcome);
        }
        let swept = if sweep {
            Some(tables.sweep(now, self.settings.sweep_batch)?)
        } else {
            None
        };
        tables.evict(self.settings.max_bytes)?;
        Ok(swept)
    }
}

/// The error of a command refused while the file waits to be reopened,
/// with the I/O error behind it as its source.
fn refused(cause: &Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "the redb file failed with an I/O error; the tier reopens it shortly",
    )
    .with_source(cause.clone())
}
