//! Single-flight loading: one loader per key, however many callers wait.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorKind, Result};

/// Coalesces concurrent loads of the same key.
///
/// The first caller for a key becomes the leader and runs its loader; every
/// caller that arrives while the load is running waits and receives a clone
/// of the leader's result, value or error. Nothing is remembered once the
/// load finishes: caching the value is the caller's job, and an error is
/// never cached.
///
/// If the leader panics or its future is dropped before finishing, the
/// waiters are released and one of them becomes the next leader, so a
/// cancelled request never strands the others.
///
/// Synchronous ([`run_blocking`](Self::run_blocking)) and asynchronous
/// ([`run`](Self::run)) callers can share one key. A blocking caller parks
/// its thread, so it must not be an async worker waiting on a load that only
/// that worker could drive.
///
/// ```
/// use cache_core::SingleFlight;
/// let flights: SingleFlight<u64, String> = SingleFlight::new();
/// let v = flights.run_blocking(&7, || Ok("seven".to_string())).unwrap();
/// assert_eq!(v, "seven");
/// ```
pub struct SingleFlight<K, V> {
    shards: Box<[Shard<K, V>]>,
    hasher: foldhash::fast::RandomState,
    /// Flights in the maps, so that [`detach`](Self::detach) costs no lock
    /// when nothing is loading.
    running: AtomicUsize,
}

type Shard<K, V> = Mutex<HashMap<K, Arc<Flight<V>>, foldhash::fast::RandomState>>;

struct Flight<V> {
    state: Mutex<State<V>>,
    done: Condvar,
}

enum State<V> {
    Running(Vec<Waker>),
    Done(Result<V>),
    Abandoned,
}

/// What a caller found when it looked up the key.
enum Role<V> {
    Leader(Arc<Flight<V>>),
    Follower(Arc<Flight<V>>),
}

const SHARDS: usize = 16;

impl<K, V> SingleFlight<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// An empty set of flights.
    pub fn new() -> Self {
        SingleFlight {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Default::default())))
                .collect(),
            hasher: Default::default(),
            running: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &K) -> &Shard<K, V> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h as usize) % SHARDS]
    }

    fn join(&self, key: &K) -> Role<V> {
        let mut map = self.shard(key).lock();
        if let Some(f) = map.get(key) {
            return Role::Follower(f.clone());
        }
        let f = Arc::new(Flight {
            state: Mutex::new(State::Running(Vec::new())),
            done: Condvar::new(),
        });
        map.insert(key.clone(), f.clone());
        self.running.fetch_add(1, Ordering::AcqRel);
        Role::Leader(f)
    }

    /// Lets callers that arrive from now on start a load of their own
    /// rather than join the one running for `key`: a write of the key has
    /// just ended, and what that load read may be older. Callers already
    /// waiting still share its result; they began before the write ended.
    pub fn detach(&self, key: &K) {
        if self.running.load(Ordering::Acquire) == 0 {
            return;
        }
        if self.shard(key).lock().remove(key).is_some() {
            self.running.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// [`detach`](Self::detach) for every key (the cache was cleared).
    pub fn detach_all(&self) {
        if self.running.load(Ordering::Acquire) == 0 {
            return;
        }
        for shard in self.shards.iter() {
            let mut map = shard.lock();
            self.running.fetch_sub(map.len(), Ordering::AcqRel);
            map.clear();
        }
    }

    /// Ends a flight: publishes its outcome, forgets it, wakes its waiters.
    fn finish(&self, key: &K, flight: &Arc<Flight<V>>, outcome: State<V>) {
        {
            let mut map = self.shard(key).lock();
            if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                map.remove(key);
                self.running.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let wakers = {
            let mut state = flight.state.lock();
            match std::mem::replace(&mut *state, outcome) {
                State::Running(w) => w,
                _ => Vec::new(),
            }
        };
        flight.done.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// Whether a load for `key` is running now.
    pub fn is_loading(&self, key: &K) -> bool {
        self.shard(key).lock().contains_key(key)
    }

    /// Runs `load` unless a load of `key` is already running, in which case
    /// this thread blocks until it ends and shares its result.
    pub fn run_blocking(&self, key: &K, load: impl FnOnce() -> Result<V>) -> Result<V> {
        let mut load = Some(load);
        loop {
            match self.join(key) {
                Role::Leader(flight) => {
                    let load = load.take().expect("a caller leads at most once");
                    let outcome = catch_unwind(AssertUnwindSafe(load));
                    match outcome {
                        Ok(result) => {
                            self.finish(key, &flight, State::Done(result.clone()));
                            return result;
                        }
                        Err(panic) => {
                            self.finish(key, &flight, State::Abandoned);
                            resume_unwind(panic);
                        }
                    }
                }
                Role::Follower(flight) => {
                    let mut state = flight.state.lock();
                    loop {
                        match &*state {
                            State::Running(_) => flight.done.wait(&mut state),
                            State::Done(r) => return r.clone(),
                            State::Abandoned => break,
                        }
                    }
                }
            }
        }
    }

    /// Runs the future from `load` unless a load of `key` is already running,
    /// in which case this task waits for it and shares its result.
    pub async fn run<F, Fut>(&self, key: &K, load: F) -> Result<V>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V>>,
    {
        let mut load = Some(load);
        loop {
            match self.join(key) {
                Role::Leader(flight) => {
                    let load = load.take().expect("a caller leads at most once");
                    // The guard releases the waiters if this future is
                    // dropped or the loader panics before it finishes.
                    let mut guard = LeaderGuard {
                        flights: self,
                        key,
                        flight: &flight,
                        armed: true,
                    };
                    let result = load().await;
                    guard.armed = false;
                    self.finish(key, &flight, State::Done(result.clone()));
                    return result;
                }
                Role::Follower(flight) => {
                    if let Some(r) = (Wait { flight: &flight }).await {
                        return r;
                    }
                }
            }
        }
    }
}

impl<K, V> Default for SingleFlight<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> std::fmt::Debug for SingleFlight<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let running: usize = self.shards.iter().map(|s| s.lock().len()).sum();
        f.debug_struct("SingleFlight")
            .field("running", &running)
            .finish()
    }
}

struct LeaderGuard<'a, K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    flights: &'a SingleFlight<K, V>,
    key: &'a K,
    flight: &'a Arc<Flight<V>>,
    armed: bool,
}

impl<K, V> Drop for LeaderGuard<'_, K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    fn drop(&mut self) {
        if self.armed {
            self.flights.finish(self.key, self.flight, State::Abandoned);
        }
    }
}

/// Waits for a flight to end: `Some(result)` when it finished, `None` when
/// its leader abandoned it.
struct Wait<'a, V> {
    flight: &'a Arc<Flight<V>>,
}

impl<V: Clone> Future for Wait<'_, V> {
    type Output = Option<Result<V>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.flight.state.lock();
        match &mut *state {
            State::Running(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Done(r) => Poll::Ready(Some(r.clone())),
            State::Abandoned => Poll::Ready(None),
        }
    }
}

/// Wraps a loader's own error as an [`ErrorKind::Loader`] error whose
/// source is the original, so every waiter can inspect it.
pub fn loader_error<E>(e: E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    Error::new(ErrorKind::Loader, "the loader failed").with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn blocking_callers_share_one_load() {
        let flights = Arc::new(SingleFlight::<u32, u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (flights, calls, barrier) = (flights.clone(), calls.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    flights.run_blocking(&1, || {
                        calls.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        Ok(11)
                    })
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), 11);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!flights.is_loading(&1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_callers_share_one_error_and_nothing_is_remembered() {
        let flights = Arc::new(SingleFlight::<u32, u32>::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (flights, calls) = (flights.clone(), calls.clone());
                tokio::spawn(async move {
                    flights
                        .run(&5, || async {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Err(Error::new(ErrorKind::Loader, "boom"))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap_err().kind(), ErrorKind::Loader);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The error was not remembered: the next call loads again.
        let v = flights.run(&5, || async { Ok(6) }).await.unwrap();
        assert_eq!(v, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_detached_load_is_not_joined_by_later_callers() {
        let flights: Arc<SingleFlight<u64, u64>> = Arc::new(SingleFlight::new());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let leader = tokio::spawn({
            let flights = flights.clone();
            async move {
                flights
                    .run(&1, || async move {
                        rx.await.ok();
                        Ok(1)
                    })
                    .await
            }
        });
        while !flights.is_loading(&1) {
            tokio::task::yield_now().await;
        }
        flights.detach(&1);
        assert!(!flights.is_loading(&1));
        // A caller after the detach runs its own loader.
        assert_eq!(flights.run(&1, || async { Ok(2) }).await.unwrap(), 2);
        tx.send(()).unwrap();
        assert_eq!(leader.await.unwrap().unwrap(), 1);
        assert_eq!(flights.running.load(Ordering::Acquire), 0);
        flights.detach_all();
        assert_eq!(flights.running.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_cancelled_leader_hands_over_to_a_waiter() {
        let flights = Arc::new(SingleFlight::<u32, u32>::new());
        let leader = {
            let flights = flights.clone();
            tokio::spawn(async move {
                flights
                    .run(&1, || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok(1)
                    })
                    .await
            })
        };
        while !flights.is_loading(&1) {
            tokio::task::yield_now().await;
        }
        let follower = {
            let flights = flights.clone();
            tokio::spawn(async move { flights.run(&1, || async { Ok(2) }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let v = tokio::time::timeout(Duration::from_secs(5), follower)
            .await
            .expect("the follower must not hang")
            .unwrap()
            .unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn a_panicking_leader_releases_waiters() {
        let flights = Arc::new(SingleFlight::<u32, u32>::new());
        let f2 = flights.clone();
        let r = std::thread::spawn(move || {
            f2.run_blocking(&3, || {
                std::thread::sleep(Duration::from_millis(50));
                panic!("loader panicked")
            })
        })
        .join();
        assert!(r.is_err());
        assert!(!flights.is_loading(&3));
        assert_eq!(flights.run_blocking(&3, || Ok(9)).unwrap(), 9);
    }
}
