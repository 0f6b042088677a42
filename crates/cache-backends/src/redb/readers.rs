//! The reader threads: where the tier's lookups run, off the async
//! runtime's worker threads, several lookups to one read transaction.
//!
//! A lookup handed to the runtime's blocking pool costs a thread hand-off
//! and a wake-up each way, which cost far more than the redb read itself
//! (a read transaction and a B-tree walk of a few microseconds). Here a
//! small fixed set of threads takes lookups from one queue, as many as are
//! waiting at once, and serves them all in one read transaction: under
//! load a thread rarely sleeps, the transaction's setup is shared by the
//! batch, and a caller's only costs are a queue push and its answer.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use cache_core::{Error, ErrorKind, Result};
use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::error::closed;
use super::shared::{Found, Shared};

/// The most lookups one read transaction serves. A transaction pins the
/// pages of its snapshot until it ends, so a bound keeps each one short
/// while a flood of lookups waits.
const MAX_BATCH: usize = 128;

/// What a lookup answers: what each key holds, the keys themselves (the
/// caller needs them to delete corrupted records), and whether the batch
/// of access times is full and should be written now.
pub(super) struct Answer {
    pub(super) found: Vec<Found>,
    pub(super) keys: Vec<Bytes>,
    pub(super) flush: bool,
}

/// One caller's lookup of one or more keys.
struct Request {
    keys: Vec<Bytes>,
    reply: oneshot::Sender<Result<Answer>>,
}

/// The lookups waiting for a reader, and who is there to take them.
#[derive(Default)]
struct State {
    waiting: VecDeque<Request>,
    /// Readers asleep on [`Queue::ready`], so a caller only pays for a
    /// wake-up when one is needed.
    idle: usize,
    /// Set when the tier closes; readers finish what is queued, then stop.
    closed: bool,
}

#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

/// The reader threads of one tier. Dropping it stops them, after they have
/// answered every lookup already queued.
pub(super) struct Readers {
    queue: Arc<Queue>,
    threads: Vec<JoinHandle<()>>,
}

impl Readers {
    /// Starts `count` reader threads over `shared`.
    pub(super) fn spawn(shared: &Arc<Shared>, count: usize) -> std::io::Result<Readers> {
        let mut readers = Readers {
            queue: Arc::new(Queue::default()),
            threads: Vec::with_capacity(count),
        };
        for _ in 0..count {
            let (shared, queue) = (shared.clone(), readers.queue.clone());
            // If a later thread fails to start, dropping `readers` stops
            // the ones already running.
            let thread = std::thread::Builder::new()
                .name("tiercache-read".into())
                .spawn(move || run(&shared, &queue))?;
            readers.threads.push(thread);
        }
        Ok(readers)
    }

    /// Looks up `keys` on a reader thread and waits for the answer.
    pub(super) async fn read(&self, keys: Vec<Bytes>) -> Result<Answer> {
        let (reply, answer) = oneshot::channel();
        let wake = {
            let mut state = self.queue.state.lock();
            if state.closed {
                return Err(closed());
            }
            state.waiting.push_back(Request { keys, reply });
            state.idle > 0
        };
        if wake {
            self.queue.ready.notify_one();
        }
        answer.await.map_err(|_| closed())?
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        self.queue.state.lock().closed = true;
        self.queue.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A reader thread's loop: take every waiting lookup (up to
/// [`MAX_BATCH`]), serve them together, repeat; sleep only when none is
/// waiting.
fn run(shared: &Shared, queue: &Queue) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        {
            let mut state = queue.state.lock();
            while state.waiting.is_empty() {
                if state.closed {
                    return;
                }
                state.idle += 1;
                queue.ready.wait(&mut state);
                state.idle -= 1;
            }
            let take = state.waiting.len().min(MAX_BATCH);
            batch.extend(state.waiting.drain(..take));
        }
        serve(shared, &mut batch);
    }
}

/// Runs a read, with a panic in redb (which it documents for some kinds of
/// file damage) turned into an error. On a reader thread the panic would
/// otherwise end the thread with its batch unanswered: its callers would
/// wait forever, and so would every later caller once all readers had
/// gone.
pub(super) fn guarded<T>(read: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Backend,
            "a redb read panicked; the file may be damaged",
        ))
    })
}

/// Serves a batch in one read transaction and answers every request in
/// it, leaving `batch` empty.
fn serve(shared: &Shared, batch: &mut Vec<Request>) {
    let keys: Vec<&[Bytes]> = batch.iter().map(|r| r.keys.as_slice()).collect();
    shared
        .counters
        .handed_off(keys.iter().map(|k| k.len()).sum());
    let outcome = guarded(|| shared.read_batch(&keys));
    drop(keys);
    match outcome {
        Ok((found, mut flush)) => {
            for (request, found) in batch.drain(..).zip(found) {
                // One caller asking the writer for the flush is enough.
                let flush = std::mem::take(&mut flush);
                // A caller that stopped waiting is not an error.
                let _ = request.reply.send(Ok(Answer {
                    found,
                    keys: request.keys,
                    flush,
                }));
            }
        }
        Err(error) => {
            for request in batch.drain(..) {
                let _ = request.reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use cache_core::{Backend, Entry, Lookup, Meta};

    use crate::redb::RedbBackend;

    /// Many tasks share one reader thread, so their lookups are served in
    /// batches; each must still get the answer to its own keys.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_lookups_each_get_their_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let tier = RedbBackend::builder(dir.path().join("readers.redb"))
            .read_threads(1)
            .build()
            .await
            .unwrap();
        let entries = (0..100)
            .map(|i| {
                let entry = Entry::new(format!("v{i}"), Meta::new(0));
                (Bytes::from(format!("k{i}")), entry)
            })
            .collect();
        tier.insert_many(entries).await.unwrap();
        let expect = |i: usize, found: Lookup| match found {
            Lookup::Hit(entry) => assert_eq!(entry.value, format!("v{i}")),
            other => assert!(i >= 100, "k{i}: {other:?}"),
        };
        let tasks: Vec<_> = (0..32)
            .map(|task| {
                let tier = tier.clone();
                tokio::spawn(async move {
                    for round in 0..50 {
                        // Keys from 100 up were never written: misses mixed in.
                        let i = (task * 7 + round * 3) % 120;
                        expect(i, tier.get(format!("k{i}").as_bytes()).await.unwrap());
                    }
                    let wanted: Vec<usize> = (0..5).map(|j| task * 3 + j * 17).collect();
                    let keys: Vec<Bytes> = wanted.iter().map(|i| format!("k{i}").into()).collect();
                    let found = tier.get_many(&keys).await.unwrap();
                    assert_eq!(found.len(), wanted.len());
                    for (i, found) in wanted.into_iter().zip(found) {
                        expect(i, found);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
}
