//! The writer thread: the only place that writes to the file. It groups
//! every write waiting in its queue into one transaction, and runs the
//! sweeper, the access-time flush and the periodic durable commit.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::Result;
use tokio::sync::oneshot;

use super::durability::Durability;
use super::error::storage;
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
            Command::Remove { ack, .. } => {
                let _ = ack.send(result.map(|o| matches!(o, Outcome::Removed(true))));
            }
            Command::Sweep { ack } | Command::Len { ack } => {
                let _ = ack.send(result.map(|o| match o {
                    Outcome::Swept(n) | Outcome::Count(n) => n,
                    _ => 0,
                }));
            }
            Command::FlushAccess | Command::Shutdown => {}
        }
    }
}

/// The writer's settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) max_bytes: u64,
    pub(super) durability: Durability,
    pub(super) sweep_interval: Duration,
    pub(super) sweep_batch: usize,
    pub(super) access_flush_interval: Duration,
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
        settings,
        next_sweep: now + settings.sweep_interval,
        next_access_flush: now + settings.access_flush_interval,
        access_ready_at: now,
        access_wanted: false,
        next_durable: settings.durability.period().map(|p| now + p),
        not_durable: false,
        tick: Cell::new(next_tick),
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

    /// The earliest moment a timer needs the writer.
    fn next_deadline(&self) -> Instant {
        let mut first = self.next_sweep.min(self.next_access_flush);
        if self.access_wanted {
            first = first.min(self.access_ready_at);
        }
        self.next_durable.map_or(first, |at| at.min(first))
    }

    /// Commits a batch of commands together with whatever timers are due.
    fn step(&mut self, mut batch: Vec<Command>, stopping: bool) {
        let now = Instant::now();
        let sweep = now >= self.next_sweep;
        if sweep {
            self.next_sweep = now + self.settings.sweep_interval;
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
            self.next_access_flush = now + self.settings.access_flush_interval;
        }
        let durable_due = self.next_durable.is_some_and(|at| now >= at);
        if durable_due {
            self.next_durable = self.settings.durability.period().map(|p| now + p);
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
            self.access_ready_at = Instant::now() + took * ACCESS_PAUSE_FACTOR;
        }
        if swept == Some(self.settings.sweep_batch as u64) {
            // A full batch suggests more are due: sweep again promptly,
            // still one bounded transaction at a time between other writes.
            self.next_sweep = now;
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
        let result = (|| -> Result<_> {
            let mut txn = self
                .shared
                .db
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
        })();
        match result {
            Ok((bytes, delta, swept, committed)) => {
                if committed {
                    self.shared.counters.committed(bytes, delta, durable);
                    self.not_durable = !durable;
                }
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(Ok(outcome));
                }
                swept
            }
            Err(error) => {
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
                Command::Sync { .. } | Command::FlushAccess | Command::Shutdown => Outcome::Done,
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
