//! The bounded queue of predicted keys waiting to be fetched, and the set of
//! keys queued or in flight that keeps a key from being fetched twice at
//! once.
//!
//! Lookups offer keys without waiting: a full queue drops the offer, since
//! a prediction is worth something only while the lookup it follows is
//! recent. The worker takes keys one at a time, each under a permit of the
//! concurrency limit, and reports each one finished.

use std::collections::{HashSet, VecDeque};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::prehashed::Prehashed;

/// What became of a key offered to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offer {
    /// It was queued.
    Issued,
    /// It was already queued or in flight.
    Duplicate,
    /// The queue was full.
    Dropped,
    /// The prefetcher is shut down.
    Closed,
}

/// The queue's counters and present length, for the stats.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct QueueCounts {
    pub(super) issued: u64,
    pub(super) deduplicated: u64,
    pub(super) dropped: u64,
    pub(super) queued: usize,
    pub(super) in_flight: usize,
}

struct State<K> {
    items: VecDeque<(u64, K)>,
    /// The hashes of the keys queued or in flight.
    pending: HashSet<u64, Prehashed>,
    in_flight: usize,
    issued: u64,
    deduplicated: u64,
    dropped: u64,
}

/// The prefetcher's queue of keys to fetch.
pub(super) struct Queue<K> {
    state: Mutex<State<K>>,
    capacity: usize,
    closed: AtomicBool,
    /// The worker waits here for a key to be queued (or for the close).
    wake: Notify,
    /// [`Queue::idle`] waits here for the last fetch to finish.
    drained: Notify,
    permits: Arc<Semaphore>,
}

impl<K> Queue<K> {
    /// A queue of at most `capacity` keys, fetched `concurrency` at a time.
    pub(super) fn new(capacity: usize, concurrency: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                pending: HashSet::with_capacity_and_hasher(
                    capacity + concurrency,
                    Prehashed::default(),
                ),
                in_flight: 0,
                issued: 0,
                deduplicated: 0,
                dropped: 0,
            }),
            capacity,
            closed: AtomicBool::new(false),
            wake: Notify::new(),
            drained: Notify::new(),
            permits: Arc::new(Semaphore::new(concurrency)),
        }
    }

    /// Whether the queue was closed; offers are then refused.
    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Queues `key` (whose hash is `hash`) unless it is already queued or
    /// in flight, the queue is full or it is closed. Never waits.
    pub(super) fn offer(&self, hash: u64, key: K) -> Offer {
        let mut state = self.state.lock();
        // Checked under the lock, so that a close cannot slip in between
        // the check and the push and leave a key behind it.
        if self.is_closed() {
            return Offer::Closed;
        }
        if state.pending.contains(&hash) {
            state.deduplicated += 1;
            return Offer::Duplicate;
        }
        if state.items.len() >= self.capacity {
            state.dropped += 1;
            return Offer::Dropped;
        }
        state.items.push_back((hash, key));
        state.pending.insert(hash);
        state.issued += 1;
        drop(state);
        self.wake.notify_one();
        Offer::Issued
    }

    /// Waits for a permit of the concurrency limit; `None` once closed.
    pub(super) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    /// Waits for the next key and counts it in flight until
    /// [`Queue::finish`]; `None` once closed. Only one task (the worker)
    /// may wait here: a wake-up stored for no waiter is kept for one.
    pub(super) async fn take(&self) -> Option<(u64, K)> {
        loop {
            {
                let mut state = self.state.lock();
                if self.is_closed() {
                    return None;
                }
                if let Some(item) = state.items.pop_front() {
                    state.in_flight += 1;
                    return Some(item);
                }
            }
            self.wake.notified().await;
        }
    }

    /// Marks the key whose hash is `hash`, taken earlier, as fetched.
    pub(super) fn finish(&self, hash: u64) {
        let drained = {
            let mut state = self.state.lock();
            state.pending.remove(&hash);
            state.in_flight -= 1;
            state.in_flight == 0 && state.items.is_empty()
        };
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// Waits until no key is queued or in flight.
    pub(super) async fn idle(&self) {
        loop {
            // Registered before the check, so that a finish between the
            // check and the wait still wakes this waiter.
            let mut notified = pin!(self.drained.notified());
            notified.as_mut().enable();
            {
                let state = self.state.lock();
                if state.in_flight == 0 && state.items.is_empty() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Refuses further offers, forgets the queued keys and stops the
    /// worker; keys in flight finish.
    pub(super) fn close(&self) {
        let drained = {
            let mut state = self.state.lock();
            self.closed.store(true, Ordering::Release);
            let State { items, pending, .. } = &mut *state;
            for (hash, _) in items.drain(..) {
                pending.remove(&hash);
            }
            state.in_flight == 0
        };
        self.permits.close();
        self.wake.notify_one();
        if drained {
            self.drained.notify_waiters();
        }
    }

    /// The counters and the present length.
    pub(super) fn counts(&self) -> QueueCounts {
        let state = self.state.lock();
        QueueCounts {
            issued: state.issued,
            deduplicated: state.deduplicated,
            dropped: state.dropped,
            queued: state.items.len(),
            in_flight: state.in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_are_bounded_and_deduplicated() {
        let q = Queue::new(2, 1);
        assert_eq!(q.offer(1, "a"), Offer::Issued);
        assert_eq!(q.offer(1, "a"), Offer::Duplicate);
        assert_eq!(q.offer(2, "b"), Offer::Issued);
        assert_eq!(q.offer(3, "c"), Offer::Dropped);
        let c = q.counts();
        assert_eq!(
            (c.issued, c.deduplicated, c.dropped, c.queued),
            (2, 1, 1, 2)
        );
    }

    #[tokio::test]
    async fn a_key_in_flight_is_still_deduplicated_until_finished() {
        let q = Queue::new(4, 1);
        q.offer(1, "a");
        assert_eq!(q.take().await, Some((1, "a")));
        assert_eq!(q.offer(1, "a"), Offer::Duplicate);
        assert_eq!(q.counts().in_flight, 1);
        q.finish(1);
        assert_eq!(q.offer(1, "a"), Offer::Issued);
    }

    #[tokio::test]
    async fn idle_waits_for_the_last_fetch() {
        let q = Arc::new(Queue::new(4, 1));
        q.offer(1, "a");
        let item = q.take().await;
        assert!(item.is_some());
        let waiter = tokio::spawn({
            let q = Arc::clone(&q);
            async move { q.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        q.finish(1);
        waiter.await.unwrap();
    }

    #[tokio::test]
    async fn close_empties_the_queue_and_stops_the_taker() {
        let q = Queue::new(4, 1);
        q.offer(1, "a");
        q.close();
        assert_eq!(q.offer(2, "b"), Offer::Closed);
        assert_eq!(q.take().await, None);
        assert!(q.permit().await.is_none());
        q.idle().await;
        assert_eq!(q.counts().queued, 0);
    }
}
