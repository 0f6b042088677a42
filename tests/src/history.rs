//! Concurrent histories of a cache and their checking: a logical clock that
//! stamps each call's start and end, the records of calls, a checker that
//! finds reads of values older than a write that completed before the read
//! began (or written after it ended), and [`Delayed`], a byte tier that
//! sleeps at random around each call so that interleavings vary.
//!
//! The checker is deliberately one-sided: a read may always miss, and only
//! orders the history proves are judged. A write or removal whose call was
//! cancelled (its future dropped) or failed never completed: it can make no
//! read stale, yet its value may be read, since it may have partly applied.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tiercache::tier::{Backend, Entry, Removals};
use tiercache::{Lookup, Result};

/// The end of a call that never completed: later than every stamp.
pub const NEVER: u64 = u64::MAX;

/// A logical clock shared by every task of a run: each stamp is unique and
/// later than every stamp taken before it, in every thread.
#[derive(Debug, Default)]
pub struct LogicalClock(AtomicU64);

impl LogicalClock {
    /// The next stamp.
    pub fn tick(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// What a call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Wrote the value with this unique id.
    Insert {
        /// The id carried by the value written.
        id: u64,
    },
    /// Removed the key.
    Remove,
    /// Removed every key (the record's key is ignored).
    Clear,
    /// Read the key and found this value, or nothing.
    Get {
        /// The value read: the key it carries and its writer's id.
        seen: Option<Seen>,
        /// Whether the read was a load (`get_with`) that returned another
        /// call's value, rather than a plain `get`.
        load: bool,
    },
}

/// A value as a read saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The key the value was written under, as the value itself says.
    pub key: u64,
    /// The id of the write that made it.
    pub id: u64,
}

/// One call: its key, what it did, and its stamps. `end` is [`NEVER`] for
/// a call that was cancelled or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The key called on.
    pub key: u64,
    /// What the call did.
    pub op: Op,
    /// Stamped just before the call started.
    pub start: u64,
    /// Stamped just after it returned; [`NEVER`] if it did not complete.
    pub end: u64,
}

impl Record {
    /// Whether the call returned normally.
    pub fn completed(&self) -> bool {
        self.end != NEVER
    }
}

/// What kind of wrong answer a read gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// The value was written by a call that began after the read ended.
    Phantom,
    /// A write or removal of the key began after the value's write had
    /// completed and itself completed before the read began: the value was
    /// overwritten (or removed) before the read, so it is stale or
    /// resurrected.
    Stale,
    /// No write in the history made the value.
    Unknown,
    /// The value belongs to another key.
    WrongKey,
}

/// A read that broke the guarantee, with the intervals that prove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What went wrong.
    pub kind: ViolationKind,
    /// The read.
    pub get: Record,
    /// The write of the value it returned, when there is one.
    pub write: Option<Record>,
    /// The newer write, removal or clear that completed before the read
    /// began ([`ViolationKind::Stale`]).
    pub newer: Option<Record>,
}

fn interval(r: &Record) -> String {
    if r.completed() {
        format!("[{}, {}]", r.start, r.end)
    } else {
        format!("[{}, never]", r.start)
    }
}

fn describe(op: &Op) -> String {
    match op {
        Op::Insert { id } => format!("insert #{id}"),
        Op::Remove => "remove".to_string(),
        Op::Clear => "clear".to_string(),
        Op::Get { seen, load } => {
            let call = if *load { "get_with" } else { "get" };
            match seen {
                Some(s) => format!("{call} -> #{} (of key {})", s.id, s.key),
                None => format!("{call} -> none"),
            }
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}: key {}: {} {}",
            self.kind,
            self.get.key,
            describe(&self.get.op),
            interval(&self.get)
        )?;
        if let Some(w) = &self.write {
            write!(f, "; its write {} {}", describe(&w.op), interval(w))?;
        }
        if let Some(n) = &self.newer {
            write!(f, "; newer {} {}", describe(&n.op), interval(n))?;
        }
        Ok(())
    }
}

/// What [`check`] found in a history.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Calls in the history.
    pub ops: u64,
    /// Completed reads, each checked.
    pub gets_checked: u64,
    /// Of those, reads that found a value.
    pub hits: u64,
    /// Calls that were cancelled or failed (reads among them unchecked).
    pub incomplete: u64,
    /// Completed writes, removals and clears.
    pub writes_completed: u64,
    /// Every violation, in the order of the history's reads.
    pub violations: Vec<Violation>,
}

impl Report {
    /// Adds another history's report to this one.
    pub fn merge(&mut self, other: Report) {
        self.ops += other.ops;
        self.gets_checked += other.gets_checked;
        self.hits += other.hits;
        self.incomplete += other.incomplete;
        self.writes_completed += other.writes_completed;
        self.violations.extend(other.violations);
    }

    /// The number of violations of `kind`.
    pub fn count(&self, kind: ViolationKind) -> usize {
        self.violations.iter().filter(|v| v.kind == kind).count()
    }

    /// One line: the counts, and violations by kind.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ops, {} gets checked ({} hits), {} writes completed, {} cancelled or failed: {} violations",
            self.ops,
            self.gets_checked,
            self.hits,
            self.writes_completed,
            self.incomplete,
            self.violations.len()
        );
        if !self.violations.is_empty() {
            let kinds = [
                ViolationKind::Stale,
                ViolationKind::Phantom,
                ViolationKind::Unknown,
                ViolationKind::WrongKey,
            ];
            let by_kind: Vec<String> = kinds
                .iter()
                .filter(|k| self.count(**k) > 0)
                .map(|k| format!("{} {k:?}", self.count(*k)))
                .collect();
            s.push_str(&format!(" ({})", by_kind.join(", ")));
        }
        s
    }

    /// The first `n` violations, one per line.
    pub fn examples(&self, n: usize) -> String {
        self.violations
            .iter()
            .take(n)
            .map(|v| format!("    {v}\n"))
            .collect()
    }
}

/// The writes, removals and clears that bear on one key, sorted by start,
/// with the earliest-ending among each suffix.
struct Overwrites {
    /// Completed calls, by start.
    calls: Vec<Record>,
    /// `earliest[i]` is the index in `calls` of the call with the smallest
    /// end among `calls[i..]`.
    earliest: Vec<usize>,
}

impl Overwrites {
    fn new(mut calls: Vec<Record>) -> Self {
        calls.sort_by_key(|r| r.start);
        let mut earliest = vec![0; calls.len()];
        for i in (0..calls.len()).rev() {
            earliest[i] = if i + 1 < calls.len() && calls[earliest[i + 1]].end < calls[i].end {
                earliest[i + 1]
            } else {
                i
            };
        }
        Overwrites { calls, earliest }
    }

    /// A call that started after `after` and ended before `before`, if any.
    fn between(&self, after: u64, before: u64) -> Option<Record> {
        let first = self.calls.partition_point(|r| r.start <= after);
        let candidate = *self.earliest.get(first)?;
        let r = self.calls[candidate];
        (r.end < before).then_some(r)
    }
}

/// Checks a history, per key: every completed read that found a value must
/// have found one written by a call that began before the read ended, and
/// no write, removal or clear of that key may lie wholly between the end of
/// that value's write and the start of the read. A read that found nothing
/// is always allowed.
pub fn check(records: &[Record]) -> Report {
    let mut report = Report {
        ops: records.len() as u64,
        ..Report::default()
    };
    let mut writes: HashMap<u64, Record> = HashMap::new();
    let mut clears = Vec::new();
    let mut per_key: HashMap<u64, Vec<Record>> = HashMap::new();
    for r in records {
        if !r.completed() {
            report.incomplete += 1;
        }
        match r.op {
            Op::Insert { id } => {
                writes.insert(id, *r);
            }
            Op::Clear if r.completed() => clears.push(*r),
            _ => {}
        }
        if matches!(r.op, Op::Insert { .. } | Op::Remove) && r.completed() {
            per_key.entry(r.key).or_default().push(*r);
        }
        if !matches!(r.op, Op::Get { .. }) && r.completed() {
            report.writes_completed += 1;
        }
    }
    let mut overwrites: HashMap<u64, Overwrites> = HashMap::new();
    let mut keys: Vec<u64> = records
        .iter()
        .filter(|r| r.op != Op::Clear)
        .map(|r| r.key)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        let mut calls = per_key.remove(&key).unwrap_or_default();
        calls.extend_from_slice(&clears);
        overwrites.insert(key, Overwrites::new(calls));
    }
    for get in records {
        let Op::Get { seen, .. } = get.op else {
            continue;
        };
        if !get.completed() {
            continue;
        }
        report.gets_checked += 1;
        let Some(seen) = seen else { continue };
        report.hits += 1;
        let Some(write) = writes.get(&seen.id).copied() else {
            report.violations.push(Violation {
                kind: ViolationKind::Unknown,
                get: *get,
                write: None,
                newer: None,
            });
            continue;
        };
        let kind = if seen.key != get.key || write.key != get.key {
            Some(ViolationKind::WrongKey)
        } else if write.start > get.end {
            Some(ViolationKind::Phantom)
        } else {
            None
        };
        if let Some(kind) = kind {
            report.violations.push(Violation {
                kind,
                get: *get,
                write: Some(write),
                newer: None,
            });
            continue;
        }
        if !write.completed() {
            continue;
        }
        if let Some(newer) = overwrites[&get.key].between(write.end, get.start) {
            report.violations.push(Violation {
                kind: ViolationKind::Stale,
                get: *get,
                write: Some(write),
                newer: Some(newer),
            });
        }
    }
    report
}

/// How a call is cut short, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Awaited to the end.
    Never,
    /// Dropped if it has not finished within this long.
    After(Duration),
    /// Dropped if it has not finished within this many polls.
    Polls(u32),
}

impl Cancel {
    /// A random choice: uncancelled but for one call in `one_in`, which is
    /// given a timeout of up to 2 ms or a budget of 1 to 8 polls.
    pub fn random(rng: &mut impl Rng, one_in: u32) -> Cancel {
        if one_in == 0 || !rng.random_ratio(1, one_in) {
            Cancel::Never
        } else if rng.random_bool(0.5) {
            Cancel::After(Duration::from_micros(rng.random_range(0..2_000)))
        } else {
            Cancel::Polls(rng.random_range(1..=8))
        }
    }

    /// Runs `fut` under this cancellation: `None` if it was dropped before
    /// it finished.
    pub async fn run<F: Future>(self, fut: F) -> Option<F::Output> {
        match self {
            Cancel::Never => Some(fut.await),
            Cancel::After(d) => tokio::time::timeout(d, fut).await.ok(),
            Cancel::Polls(n) => {
                PollLimit {
                    fut: Box::pin(fut),
                    left: n,
                }
                .await
            }
        }
    }
}

/// A future that gives up on its inner future after a number of polls.
struct PollLimit<F> {
    fut: Pin<Box<F>>,
    left: u32,
}

impl<F: Future> Future for PollLimit<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending => {
                self.left = self.left.saturating_sub(1);
                if self.left == 0 {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

/// A byte tier that pauses at random before and after each call it
/// delegates (`get`, `insert`, `remove`, `remove_if_unchanged`, `clear`,
/// `len`, `contains`): not at all, for a few yields to the scheduler, or
/// asleep for up to its longest delay. Other calls are delegated as they
/// are.
#[derive(Debug)]
pub struct Delayed<B> {
    inner: B,
    longest: Duration,
    rng: Mutex<StdRng>,
}

/// A pause before or after a delegated call.
enum Pause {
    None,
    Yields(u32),
    Sleep(Duration),
}

impl<B: Backend> Delayed<B> {
    /// `inner`, with pauses of up to `longest`, drawn from `seed`.
    pub fn new(inner: B, seed: u64, longest: Duration) -> Self {
        Delayed {
            inner,
            longest,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// The tier delayed.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    async fn pause(&self) {
        let pause = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            match rng.random_range(0..10) {
                0..4 => Pause::None,
                4..7 => Pause::Yields(rng.random_range(1..=4)),
                _ => {
                    let us = self.longest.as_micros().max(1) as u64;
                    Pause::Sleep(Duration::from_micros(rng.random_range(0..=us)))
                }
            }
        };
        match pause {
            Pause::None => {}
            Pause::Yields(n) => {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            }
            Pause::Sleep(d) => tokio::time::sleep(d).await,
        }
    }
}

impl<B: Backend> Backend for Delayed<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.pause().await;
        let found = self.inner.get(key).await;
        self.pause().await;
        found
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.pause().await;
        let done = self.inner.insert(key, entry).await;
        self.pause().await;
        done
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.pause().await;
        let done = self.inner.remove(key).await;
        self.pause().await;
        done
    }

    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
        self.pause().await;
        let done = self.inner.remove_if_unchanged(key, seen).await;
        self.pause().await;
        done
    }

    async fn contains(&self, key: &[u8]) -> Result<bool> {
        self.pause().await;
        let found = self.inner.contains(key).await;
        self.pause().await;
        found
    }

    async fn clear(&self) -> Result<()> {
        self.pause().await;
        let done = self.inner.clear().await;
        self.pause().await;
        done
    }

    async fn len(&self) -> Result<u64> {
        self.pause().await;
        let n = self.inner.len().await;
        self.pause().await;
        n
    }

    fn get_many(&self, keys: &[Bytes]) -> impl Future<Output = Result<Vec<Lookup>>> + Send {
        self.inner.get_many(keys)
    }

    fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> impl Future<Output = Result<()>> + Send {
        self.inner.insert_many(entries)
    }

    fn removals(&self) -> Option<Removals> {
        self.inner.removals()
    }
}
