//! The write-back log: a redb file that holds every dirty key's latest
//! write, and the dead-letter list, and the one thread that writes it.
//!
//! The thread groups every command waiting in its queue into one write
//! transaction and one durable commit (group commit), so that many
//! concurrent inserts share one `fsync`; then it applies what the commit
//! made durable to the in-memory [`Dirty`] state, and only then answers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_core::{Error, ErrorKind, Result};
use redb::{Database, DatabaseError, ReadableTable, Table, TableDefinition};
use tokio::sync::oneshot;

use super::dirty::Dirty;
use super::record::{Dead, Queued};
use super::shared::Shared;

/// The write's number → its key and value: every dirty key's latest
/// write (a format byte, `1` save or `2` delete, the key's length as a
/// little-endian `u32`, the key, the value, and a CRC-32 over the number
/// and all before it). Keyed by number, so that appends land at the end of
/// the table (a few pages per commit, however scattered the keys) and
/// replay reads the writes in the order they were made.
pub const QUEUE_TABLE: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("tiercache_write_back_queue");
/// Key bytes → the write the store refused too many times: its number,
/// tries, time of the last failure, the store's error and the value, with
/// a CRC-32.
pub const DEAD_TABLE: TableDefinition<'static, &[u8], &[u8]> =
    TableDefinition::new("tiercache_write_back_dead");
/// The write's number → a queued record that failed its checksum when the
/// log was replayed, kept as found for inspection and never saved.
pub const CORRUPTED_TABLE: TableDefinition<'static, u64, &[u8]> =
    TableDefinition::new("tiercache_write_back_corrupted");

/// The most commands applied in one transaction.
const MAX_GROUP: usize = 4096;
/// The longest a commit waits for the writers the last one answered.
const MAX_GROUP_WAIT: Duration = Duration::from_millis(2);

type Ack<T> = oneshot::Sender<Result<T>>;

/// A request to the log's thread.
pub(crate) enum Command {
    /// Queue `value` (`None`: a removal) as the latest write of `key`.
    Append {
        key: Bytes,
        value: Option<Bytes>,
        ack: Ack<()>,
    },
    /// These writes reached the store (`saved`) or gave up (`dead`); each
    /// leaves the queue unless its key was written again meanwhile.
    Settle {
        saved: Vec<(Bytes, u64)>,
        dead: Vec<(Bytes, Dead)>,
        ack: Ack<()>,
    },
    /// Queue these dead letters again (every one with `None`).
    Retry {
        keys: Option<Vec<Bytes>>,
        ack: Ack<usize>,
    },
    /// Delete these dead letters (every one with `None`).
    Discard {
        keys: Option<Vec<Bytes>>,
        ack: Ack<usize>,
    },
    /// Every dead letter.
    ListDead { ack: Ack<Vec<(Bytes, Dead)>> },
}

/// What a command changed, applied to the in-memory state once the commit
/// is durable.
enum Effect {
    Wrote(Bytes, Queued),
    Settled(Bytes, u64),
    /// A write of this key died, with this value (`None`: a removal).
    DeadAdded(Bytes, Option<Bytes>),
    /// These keys' dead letters are gone.
    DeadRemoved(Vec<Bytes>),
}

/// What a command answers once its transaction has committed.
enum Answer {
    Done,
    Count(usize),
    Dead(Vec<(Bytes, Dead)>),
}

fn storage(path: &Path, what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("write-back log {}: {what}", path.display()),
    )
    .with_source(e)
}

/// What [`open`] found in the file.
pub(crate) struct Opened {
    pub(crate) db: Database,
    pub(crate) dirty: Dirty,
    pub(crate) next_seq: u64,
    /// The dead letters' keys and values (`None`: a removal).
    pub(crate) dead: Vec<(Bytes, Option<Bytes>)>,
    pub(crate) corrupted: u64,
}

/// Opens (or creates) the log at `path` and replays it: every queued
/// write that passes its checksum is dirty again; one that fails it is
/// moved to the corrupted table and counted, and the rest replays.
pub(crate) fn open(path: &Path) -> Result<Opened> {
    let db = create(path)?;
    let fail = |what: &'static str| move |e: redb::Error| storage(path, what, e);
    let txn = db
        .begin_write()
        .map_err(|e| fail("cannot replay")(e.into()))?;
    let (writes, dead, corrupted, mut next_seq) = {
        let mut queue = txn
            .open_table(QUEUE_TABLE)
            .map_err(|e| fail("cannot open its queue")(e.into()))?;
        let dead = txn
            .open_table(DEAD_TABLE)
            .map_err(|e| fail("cannot open its dead letters")(e.into()))?;
        let mut corrupted = txn
            .open_table(CORRUPTED_TABLE)
            .map_err(|e| fail("cannot open its corrupted records")(e.into()))?;
        let mut writes = Vec::new();
        let mut damaged = Vec::new();
        // Numbers are never reused, not even those of records set aside,
        // which are kept under their number.
        let mut next_seq = corrupted
            .last()
            .map_err(|e| fail("cannot read")(e.into()))?
            .map_or(1, |(k, _)| k.value() + 1);
        for row in queue.iter().map_err(|e| fail("cannot read")(e.into()))? {
            let (k, v) = row.map_err(|e| fail("cannot read")(e.into()))?;
            let seq = k.value();
            next_seq = next_seq.max(seq + 1);
            match Queued::decode(seq, v.value()) {
                Some((key, q)) => writes.push((key, q)),
                None => damaged.push((seq, v.value().to_vec())),
            }
        }
        let mut dead_letters = Vec::new();
        for row in dead.iter().map_err(|e| fail("cannot read")(e.into()))? {
            let (k, v) = row.map_err(|e| fail("cannot read")(e.into()))?;
            if let Some(d) = Dead::decode(k.value(), v.value()) {
                next_seq = next_seq.max(d.seq + 1);
                dead_letters.push((Bytes::copy_from_slice(k.value()), d.value));
            }
        }
        for (seq, record) in &damaged {
            corrupted
                .insert(*seq, &record[..])
                .map_err(|e| fail("cannot set a corrupted record aside")(e.into()))?;
            queue
                .remove(*seq)
                .map_err(|e| fail("cannot set a corrupted record aside")(e.into()))?;
        }
        // One row per key is the rule; should an older row of a key have
        // been left behind, the later one is the write, and the older goes.
        let mut latest: std::collections::HashMap<&Bytes, u64> = Default::default();
        for (key, q) in &writes {
            if let Some(older) = latest.insert(key, q.seq) {
                queue
                    .remove(older)
                    .map_err(|e| fail("cannot replay")(e.into()))?;
            }
        }
        (writes, dead_letters, damaged.len() as u64, next_seq)
    };
    txn.commit().map_err(|e| fail("cannot replay")(e.into()))?;
    let mut dirty = Dirty::default();
    for (key, q) in writes {
        dirty.write(key, q);
    }
    next_seq = next_seq.max(1);
    Ok(Opened {
        db,
        dirty,
        next_seq,
        dead,
        corrupted,
    })
}

/// How long opening waits for an earlier handle of this process on the
/// same file to close it (a cache dropped just before: its log's thread
/// finishes the commit under way first).
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// Opens the file, waiting a little while this process still has it open.
fn create(path: &Path) -> Result<Database> {
    let deadline = Instant::now() + OPEN_WAIT;
    loop {
        match Database::create(path) {
            Ok(db) => return Ok(db),
            Err(DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "write-back log {} is open in another cache: one cache at a time may use a log",
                        path.display()
                    ),
                ));
            }
            Err(e) => return Err(storage(path, "cannot open", e)),
        }
    }
}

/// Starts the log's thread on an opened file; it ends when every sender
/// is gone.
pub(crate) fn start(
    path: PathBuf,
    db: Database,
    next_seq: u64,
    shared: Arc<Shared>,
) -> Result<Sender<Command>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tiercache-write-back-log".into())
        .spawn(move || {
            Writer {
                path,
                db,
                next_seq,
                shared,
            }
            .run(rx)
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                "cannot start the write-back log's thread",
            )
            .with_source(e)
        })?;
    Ok(tx)
}

/// The log's two tables, opened once per transaction, and the queued
/// write of each key this transaction has changed.
struct Tables<'txn> {
    queue: Table<'txn, u64, &'static [u8]>,
    dead: Table<'txn, &'static [u8], &'static [u8]>,
    current: std::collections::HashMap<Bytes, Option<u64>>,
}

/// Moves every command already waiting into `group`, up to its bound.
fn drain(rx: &Receiver<Command>, group: &mut Vec<Command>) {
    while group.len() < MAX_GROUP {
        match rx.try_recv() {
            Ok(c) => group.push(c),
            Err(_) => return,
        }
    }
}

struct Writer {
    path: PathBuf,
    db: Database,
    next_seq: u64,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        // The appends the last commit answered, and how long it took: their
        // callers are about to come back with their next writes.
        let mut answered = 0usize;
        let mut took = Duration::ZERO;
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            drain(&rx, &mut group);
            // Writers that each wait for their own commit split into two
            // cohorts taking turns (one queues while the other's commit
            // runs), so each commit carries half of them and each write
            // waits out two commits. Waiting a little (at most half a
            // commit) for the cohort just answered merges them: one commit
            // carries both, and a write waits about one commit.
            let target = answered + group.len();
            if target > group.len() && answered > 1 {
                let deadline = Instant::now() + (took / 2).min(MAX_GROUP_WAIT);
                while group.len() < target.min(MAX_GROUP) {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(c) => {
                            group.push(c);
                            drain(&rx, &mut group);
                        }
                        Err(_) => break,
                    }
                }
            }
            let started = Instant::now();
            let seq_before = self.next_seq;
            match self.apply(&group) {
                Ok((answers, effects)) => {
                    took = started.elapsed();
                    answered = group
                        .iter()
                        .filter(|c| matches!(c, Command::Append { .. }))
                        .count();
                    self.shared.note_commit(
                        self.next_seq - 1,
                        effects
                            .iter()
                            .filter_map(|e| match e {
                                Effect::Wrote(..) => Some(()),
                                _ => None,
                            })
                            .count(),
                    );
                    self.publish(effects);
                    for (command, answer) in group.into_iter().zip(answers) {
                        answer_with(command, Ok(answer));
                    }
                }
                Err(e) => {
                    answered = 0;
                    self.next_seq = seq_before;
                    for command in group {
                        answer_with(command, Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Carries out a group of commands in one transaction and commits it.
    fn apply(&mut self, group: &[Command]) -> Result<(Vec<Answer>, Vec<Effect>)> {
        let path = self.path.clone();
        let fail = |e: redb::Error| storage(&path, "cannot write", e);
        let txn = self.db.begin_write().map_err(|e| fail(e.into()))?;
        let mut answers = Vec::with_capacity(group.len());
        let mut effects = Vec::with_capacity(group.len());
        {
            let mut tables = Tables {
                queue: txn.open_table(QUEUE_TABLE).map_err(|e| fail(e.into()))?,
                dead: txn.open_table(DEAD_TABLE).map_err(|e| fail(e.into()))?,
                current: Default::default(),
            };
            for command in group {
                answers.push(
                    self.command(&mut tables, command, &mut effects)
                        .map_err(fail)?,
                );
            }
        }
        txn.commit().map_err(|e| fail(e.into()))?;
        Ok((answers, effects))
    }

    fn command(
        &mut self,
        tables: &mut Tables<'_>,
        command: &Command,
        effects: &mut Vec<Effect>,
    ) -> Result<Answer, redb::Error> {
        match command {
            Command::Append { key, value, .. } => {
                let q = Queued {
                    seq: self.take_seq(),
                    value: value.clone(),
                };
                // The key's earlier write, if it is still queued, gives way:
                // one row per key, its latest write.
                if let Some(older) = self.queued_seq(tables, key) {
                    tables.queue.remove(older)?;
                }
                tables.queue.insert(q.seq, &q.encode(key)[..])?;
                tables.current.insert(key.clone(), Some(q.seq));
                let dead = &mut tables.dead;
                // A newer write of the key supersedes one that died.
                if dead.remove(&key[..])?.is_some() {
                    effects.push(Effect::DeadRemoved(vec![key.clone()]));
                }
                effects.push(Effect::Wrote(key.clone(), q));
                Ok(Answer::Done)
            }
            Command::Settle {
                saved, dead: died, ..
            } => {
                for (key, seq) in saved {
                    if self.queued_seq(tables, key) == Some(*seq) {
                        tables.queue.remove(*seq)?;
                        tables.current.insert(key.clone(), None);
                    }
                    effects.push(Effect::Settled(key.clone(), *seq));
                }
                for (key, d) in died {
                    if self.queued_seq(tables, key) == Some(d.seq) {
                        tables.queue.remove(d.seq)?;
                        tables.current.insert(key.clone(), None);
                        tables.dead.insert(&key[..], &d.encode(key)[..])?;
                        effects.push(Effect::DeadAdded(key.clone(), d.value.clone()));
                    }
                    // A write replaced meanwhile is superseded, not dead.
                    effects.push(Effect::Settled(key.clone(), d.seq));
                }
                Ok(Answer::Done)
            }
            Command::Retry { keys, .. } => {
                let rows = dead_rows(&tables.dead, keys.as_deref())?;
                let mut queued = 0;
                for (key, d) in &rows {
                    tables.dead.remove(&key[..])?;
                    if self.queued_seq(tables, key).is_some() {
                        // A newer write waits already; it wins.
                        continue;
                    }
                    let q = Queued {
                        seq: self.take_seq(),
                        value: d.value.clone(),
                    };
                    tables.queue.insert(q.seq, &q.encode(key)[..])?;
                    tables.current.insert(key.clone(), Some(q.seq));
                    effects.push(Effect::Wrote(key.clone(), q));
                    queued += 1;
                }
                effects.push(Effect::DeadRemoved(
                    rows.iter().map(|(k, _)| k.clone()).collect(),
                ));
                Ok(Answer::Count(queued))
            }
            Command::Discard { keys, .. } => {
                let rows = dead_rows(&tables.dead, keys.as_deref())?;
                for (key, _) in &rows {
                    tables.dead.remove(&key[..])?;
                }
                effects.push(Effect::DeadRemoved(
                    rows.iter().map(|(k, _)| k.clone()).collect(),
                ));
                Ok(Answer::Count(rows.len()))
            }
            Command::ListDead { .. } => Ok(Answer::Dead(dead_rows(&tables.dead, None)?)),
        }
    }

    /// The number of `key`'s queued write, as this transaction has left
    /// it so far: the commands before in the group, else the last commit
    /// (which the dirty map shows, and which only this thread changes).
    fn queued_seq(&self, tables: &Tables<'_>, key: &Bytes) -> Option<u64> {
        match tables.current.get(key) {
            Some(seq) => *seq,
            None => self.shared.dirty.lock().latest_seq(key),
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Applies what a commit made durable to the in-memory state, and
    /// wakes whoever waits on it.
    fn publish(&self, effects: Vec<Effect>) {
        let mut freed = false;
        let mut settled = false;
        let mut dirty = self.shared.dirty.lock();
        for effect in effects {
            match effect {
                Effect::Wrote(key, q) => {
                    dirty.write(key, q);
                }
                Effect::Settled(key, seq) => {
                    freed |= dirty.settled(&key, seq);
                    settled = true;
                }
                Effect::DeadAdded(key, value) => {
                    dirty.dead_added(key, value);
                    self.shared.dead_added();
                }
                Effect::DeadRemoved(keys) => {
                    for key in keys {
                        dirty.dead_removed(&key);
                    }
                }
            }
        }
        let len = dirty.len();
        drop(dirty);
        self.shared.after_publish(len, freed, settled);
    }
}

/// The dead letters of `keys` (every one with `None`) that pass their
/// checksum.
fn dead_rows(
    dead: &impl ReadableTable<&'static [u8], &'static [u8]>,
    keys: Option<&[Bytes]>,
) -> Result<Vec<(Bytes, Dead)>, redb::Error> {
    let mut rows = Vec::new();
    match keys {
        Some(keys) => {
            for key in keys {
                if let Some(v) = dead.get(&key[..])?
                    && let Some(d) = Dead::decode(key, v.value())
                {
                    rows.push((key.clone(), d));
                }
            }
        }
        None => {
            for row in dead.iter()? {
                let (k, v) = row?;
                if let Some(d) = Dead::decode(k.value(), v.value()) {
                    rows.push((Bytes::copy_from_slice(k.value()), d));
                }
            }
        }
    }
    Ok(rows)
}

fn answer_with(command: Command, result: Result<Answer>) {
    // A caller that stopped waiting is not an error.
    match command {
        Command::Append { ack, .. } | Command::Settle { ack, .. } => {
            let _ = ack.send(result.map(drop));
        }
        Command::Retry { ack, .. } | Command::Discard { ack, .. } => {
            let _ = ack.send(result.map(|a| match a {
                Answer::Count(n) => n,
                _ => 0,
            }));
        }
        Command::ListDead { ack } => {
            let _ = ack.send(result.map(|a| match a {
                Answer::Dead(rows) => rows,
                _ => Vec::new(),
            }));
        }
    }
}
