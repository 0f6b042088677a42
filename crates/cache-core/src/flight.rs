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
/// The cache's loading paths go through
/// [`get_or_load`](Self::get_or_load) (or its blocking twin) on a flight of
/// `Option<V>`: look again, load, store, and share "not found" and errors
/// with the waiters as [`LoaderErrors`] says.
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
    Done(Outcome<V>),
    Abandoned,
}

/// How a flight ended.
#[derive(Clone)]
struct Outcome<V> {
    result: Result<V>,
    /// Whether `result` is the error of the leader's loader, which a waiter
    /// under [`LoaderErrors::Retried`] does not take.
    loader_failed: bool,
}

impl<V> Outcome<V> {
    /// An outcome that is not a loader's error.
    fn plain(result: Result<V>) -> Self {
        Outcome {
            result,
            loader_failed: false,
        }
    }

    /// What a waiter under `errors` takes from this outcome: `None` when it
    /// is to run its own loader instead.
    fn taken(self, errors: LoaderErrors) -> Option<Result<V>> {
        (!self.loader_failed || errors == LoaderErrors::Shared).then_some(self.result)
    }
}

/// How a caller that waited on another caller's load treats that load's
/// loader error (see [`SingleFlight::get_or_load`]).
///
/// Only the error of the leader's `load` step is concerned: an error of its
/// `look` or `store` step reaches every waiter, and a leader that panics or
/// whose future is dropped always hands over to a waiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoaderErrors {
    /// Returned to every waiter: one failure answers all (`try_get_with`,
    /// whose own loader could fail the same way).
    Shared,
    /// A waiter whose own loader has not run runs it instead (`get_with`,
    /// whose loader cannot fail, so another caller's failure is not its
    /// answer).
    Retried,
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

    /// How many callers wait on the flight of `key`: every holder of the
    /// flight but the map and its leader.
    #[cfg(test)]
    fn waiting(&self, key: &K) -> usize {
        self.shard(key)
            .lock()
            .get(key)
            .map_or(0, |f| Arc::strong_count(f).saturating_sub(2))
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
                            self.finish(key, &flight, State::Done(Outcome::plain(result.clone())));
                            return result;
                        }
                        Err(panic) => {
                            self.finish(key, &flight, State::Abandoned);
                            resume_unwind(panic);
                        }
                    }
                }
                Role::Follower(flight) => {
                    if let Some(outcome) = wait_blocking(&flight) {
                        return outcome.result;
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
                    self.finish(key, &flight, State::Done(Outcome::plain(result.clone())));
                    return result;
                }
                Role::Follower(flight) => {
                    if let Some(outcome) = (Wait { flight: &flight }).await {
                        return outcome.result;
                    }
                }
            }
        }
    }
}

/// Loading through a flight whose value is "the key's value, or none":
/// the one helper every loading path of the cache calls, so that looking
/// again, loading, storing and the rule for another caller's loader error
/// are written once.
impl<K, V> SingleFlight<K, Option<V>>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// Looks again with `look` (another load may have just finished), else
    /// runs `load`, hands its outcome to `store`, and returns it — once per
    /// key however many callers wait.
    ///
    /// The caller that leads the key's flight runs the three steps in turn:
    ///
    /// - `look`: `Ok(Some(v))` ends the flight with `v`, and neither `load`
    ///   nor `store` runs; `Ok(None)` goes on to `load`.
    /// - `load`: its `Ok(outcome)` (`None`: the system of record has no
    ///   value) goes to `store`.
    /// - `store` receives a clone of the loaded outcome, `None` included,
    ///   so a negative entry can be stored for it.
    ///
    /// Every caller that arrives while the flight runs waits and receives
    /// its outcome, `Ok(None)` included; an error of `look` or `store` is
    /// the outcome too. An error of `load` reaches the waiters as `errors`
    /// says: [`LoaderErrors::Shared`] returns it to them,
    /// [`LoaderErrors::Retried`] has each of them run its own steps instead
    /// (a `get_with` caller, whose loader cannot fail, does not take a
    /// `try_get_with` caller's failure as its answer). Nothing is
    /// remembered once the flight ends.
    ///
    /// A caller leads at most once, so each of its steps runs at most once
    /// and only if it leads; `FnOnce` is enough. A waiter that is handed
    /// the flight (its leader was cancelled or panicked) or retries with
    /// its own loader leads a new flight, and so starts with its own
    /// `look`: what the earlier leader stored before it went is found there
    /// rather than loaded again.
    ///
    /// If this future is dropped or a step panics before the flight ends,
    /// its waiters are released and one of them leads the next flight. The
    /// future is `Send` when the steps and their futures are.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use cache_core::{LoaderErrors, SingleFlight};
    /// let flights: SingleFlight<u64, Option<String>> = SingleFlight::new();
    /// let stored = std::sync::Mutex::new(Vec::new());
    /// let v = flights
    ///     .get_or_load(
    ///         &7,
    ///         LoaderErrors::Shared,
    ///         || async { Ok(None) },
    ///         || async { Ok(Some("seven".to_string())) },
    ///         |v| {
    ///             stored.lock().unwrap().push(v);
    ///             async { Ok(()) }
    ///         },
    ///     )
    ///     .await?;
    /// assert_eq!(v.as_deref(), Some("seven"));
    /// assert_eq!(*stored.lock().unwrap(), [Some("seven".to_string())]);
    /// # Ok::<(), cache_core::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn get_or_load<LookF, LookFut, LoadF, LoadFut, StoreF, StoreFut>(
        &self,
        key: &K,
        errors: LoaderErrors,
        look: LookF,
        load: LoadF,
        store: StoreF,
    ) -> Result<Option<V>>
    where
        LookF: FnOnce() -> LookFut,
        LookFut: Future<Output = Result<Option<V>>>,
        LoadF: FnOnce() -> LoadFut,
        LoadFut: Future<Output = Result<Option<V>>>,
        StoreF: FnOnce(Option<V>) -> StoreFut,
        StoreFut: Future<Output = Result<()>>,
    {
        self.get_or_load_within(key, errors, std::future::pending, look, load, store)
            .await
    }

    /// [`get_or_load`](Self::get_or_load) for a caller that waits on
    /// another caller's load only until the future `patience` makes is
    /// ready (a timer, for a load timeout): it then returns an
    /// [`ErrorKind::Timeout`] error, and the load goes on for the callers
    /// still waiting. A caller that leads runs its steps to the end:
    /// `patience` concerns waiting, not loading.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use cache_core::{ErrorKind, LoaderErrors, SingleFlight};
    /// let flights: SingleFlight<u64, Option<u64>> = SingleFlight::new();
    /// let slow = flights.get_or_load(
    ///     &7,
    ///     LoaderErrors::Shared,
    ///     || async { Ok(None) },
    ///     || async {
    ///         tokio::time::sleep(Duration::from_millis(50)).await;
    ///         Ok(Some(70))
    ///     },
    ///     |_| async { Ok(()) },
    /// );
    /// let impatient = flights.get_or_load_within(
    ///     &7,
    ///     LoaderErrors::Shared,
    ///     || tokio::time::sleep(Duration::from_millis(5)),
    ///     || async { Ok(None) },
    ///     || async { unreachable!("the first caller leads") },
    ///     |_| async { Ok(()) },
    /// );
    /// let (slow, impatient) = tokio::join!(slow, impatient);
    /// assert_eq!(slow?, Some(70));
    /// assert_eq!(impatient.unwrap_err().kind(), ErrorKind::Timeout);
    /// # Ok::<(), cache_core::Error>(())
    /// # }).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn get_or_load_within<P, PFut, LookF, LookFut, LoadF, LoadFut, StoreF, StoreFut>(
        &self,
        key: &K,
        errors: LoaderErrors,
        patience: P,
        look: LookF,
        load: LoadF,
        store: StoreF,
    ) -> Result<Option<V>>
    where
        P: Fn() -> PFut,
        PFut: Future<Output = ()>,
        LookF: FnOnce() -> LookFut,
        LookFut: Future<Output = Result<Option<V>>>,
        LoadF: FnOnce() -> LoadFut,
        LoadFut: Future<Output = Result<Option<V>>>,
        StoreF: FnOnce(Option<V>) -> StoreFut,
        StoreFut: Future<Output = Result<()>>,
    {
        let mut steps = Some((look, load, store));
        loop {
            match self.join(key) {
                Role::Leader(flight) => {
                    let (look, load, store) = steps.take().expect("a caller leads at most once");
                    // The guard releases the waiters if this future is
                    // dropped or a step panics before the flight ends.
                    let mut guard = LeaderGuard {
                        flights: self,
                        key,
                        flight: &flight,
                        armed: true,
                    };
                    let outcome = match look().await {
                        Ok(None) => match load().await {
                            Ok(loaded) => {
                                Outcome::plain(store(loaded.clone()).await.map(|()| loaded))
                            }
                            Err(e) => Outcome {
                                result: Err(e),
                                loader_failed: true,
                            },
                        },
                        found => Outcome::plain(found),
                    };
                    guard.armed = false;
                    self.finish(key, &flight, State::Done(outcome.clone()));
                    return outcome.result;
                }
                Role::Follower(flight) => {
                    let wait = Wait { flight: &flight };
                    let gave_up = patience();
                    let mut wait = std::pin::pin!(wait);
                    let mut gave_up = std::pin::pin!(gave_up);
                    let waited = std::future::poll_fn(|cx| {
                        if let Poll::Ready(o) = wait.as_mut().poll(cx) {
                            return Poll::Ready(Some(o));
                        }
                        gave_up.as_mut().poll(cx).map(|()| None)
                    })
                    .await;
                    let Some(outcome) = waited else {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            "the load of this key did not finish within the load timeout",
                        ));
                    };
                    if let Some(result) = outcome.and_then(|o| o.taken(errors)) {
                        return result;
                    }
                }
            }
        }
    }

    /// The blocking twin of [`get_or_load`](Self::get_or_load), for the
    /// synchronous engine: a waiter parks its thread (see the type's notes
    /// on mixing blocking and async callers). A panic in a step releases
    /// the waiters and then propagates.
    ///
    /// ```
    /// use cache_core::{LoaderErrors, SingleFlight};
    /// let flights: SingleFlight<u64, Option<u64>> = SingleFlight::new();
    /// let found = flights.get_or_load_blocking(
    ///     &7,
    ///     LoaderErrors::Retried,
    ///     || Ok(Some(70)),
    ///     || unreachable!("look found the value"),
    ///     |_| unreachable!("nothing was loaded"),
    /// );
    /// assert_eq!(found.unwrap(), Some(70));
    /// ```
    pub fn get_or_load_blocking(
        &self,
        key: &K,
        errors: LoaderErrors,
        look: impl FnOnce() -> Result<Option<V>>,
        load: impl FnOnce() -> Result<Option<V>>,
        store: impl FnOnce(Option<V>) -> Result<()>,
    ) -> Result<Option<V>> {
        let mut steps = Some((look, load, store));
        loop {
            match self.join(key) {
                Role::Leader(flight) => {
                    let (look, load, store) = steps.take().expect("a caller leads at most once");
                    let steps = || match look() {
                        Ok(None) => match load() {
                            Ok(loaded) => Outcome::plain(store(loaded.clone()).map(|()| loaded)),
                            Err(e) => Outcome {
                                result: Err(e),
                                loader_failed: true,
                            },
                        },
                        found => Outcome::plain(found),
                    };
                    match catch_unwind(AssertUnwindSafe(steps)) {
                        Ok(outcome) => {
                            self.finish(key, &flight, State::Done(outcome.clone()));
                            return outcome.result;
                        }
                        Err(panic) => {
                            self.finish(key, &flight, State::Abandoned);
                            resume_unwind(panic);
                        }
                    }
                }
                Role::Follower(flight) => {
                    if let Some(result) = wait_blocking(&flight).and_then(|o| o.taken(errors)) {
                        return result;
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

/// Blocks until a flight ends: `Some(outcome)` when it finished, `None`
/// when its leader abandoned it.
fn wait_blocking<V: Clone>(flight: &Flight<V>) -> Option<Outcome<V>> {
    let mut state = flight.state.lock();
    loop {
        match &*state {
            State::Running(_) => flight.done.wait(&mut state),
            State::Done(outcome) => return Some(outcome.clone()),
            State::Abandoned => return None,
        }
    }
}

/// Waits for a flight to end: `Some(outcome)` when it finished, `None` when
/// its leader abandoned it.
struct Wait<'a, V> {
    flight: &'a Arc<Flight<V>>,
}

impl<V: Clone> Future for Wait<'_, V> {
    type Output = Option<Outcome<V>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.flight.state.lock();
        match &mut *state {
            State::Running(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            State::Done(outcome) => Poll::Ready(Some(outcome.clone())),
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

    /// A step that must not run.
    fn never<T>() -> std::future::Ready<Result<T>> {
        panic!("this step must not run")
    }

    fn loader_failure() -> Error {
        Error::new(ErrorKind::Loader, "the loader failed")
    }

    /// What the `store` steps of a test received.
    type Stored = Mutex<Vec<Option<u32>>>;

    /// Flights of `u32` keys to maybe-`u32` values, and what their callers
    /// stored.
    fn loading() -> (SingleFlight<u32, Option<u32>>, Stored) {
        (SingleFlight::new(), Mutex::new(Vec::new()))
    }

    #[tokio::test]
    async fn a_leader_whose_look_finds_a_value_runs_no_loader() {
        let (flights, _) = loading();
        for errors in [LoaderErrors::Shared, LoaderErrors::Retried] {
            let v = flights
                .get_or_load(&1, errors, || async { Ok(Some(10)) }, never, |_| never())
                .await;
            assert_eq!(v.unwrap(), Some(10));
            let v = flights.get_or_load_blocking(
                &1,
                errors,
                || Ok(Some(11)),
                || panic!("look found the value"),
                |_| panic!("nothing was loaded"),
            );
            assert_eq!(v.unwrap(), Some(11));
        }
        assert!(!flights.is_loading(&1));
    }

    #[tokio::test]
    async fn none_is_stored_and_shared_with_waiters() {
        let (flights, stored) = loading();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut leader = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Shared,
            || async { Ok(None) },
            || async {
                released.await.ok();
                Ok(None)
            },
            |v| {
                stored.lock().push(v);
                async { Ok(()) }
            },
        ));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut shared =
            std::pin::pin!(
                flights.get_or_load(&1, LoaderErrors::Shared, never, never, |_| never())
            );
        let mut retried = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Retried,
            never,
            never,
            |_| never()
        ));
        assert!(futures::poll!(shared.as_mut()).is_pending());
        assert!(futures::poll!(retried.as_mut()).is_pending());
        assert_eq!(flights.waiting(&1), 2);
        release.send(()).unwrap();
        assert_eq!(leader.await.unwrap(), None);
        // "Not found" is an answer, not a failure: every waiter takes it.
        assert_eq!(shared.await.unwrap(), None);
        assert_eq!(retried.await.unwrap(), None);
        assert_eq!(*stored.lock(), [None]);
    }

    #[tokio::test]
    async fn another_callers_loader_error_is_shared_or_retried_as_asked() {
        let (flights, stored) = loading();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut leader = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Shared,
            || async { Ok(None) },
            || async {
                released.await.ok();
                Err(loader_failure())
            },
            |_| never(),
        ));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut shared =
            std::pin::pin!(
                flights.get_or_load(&1, LoaderErrors::Shared, never, never, |_| never())
            );
        let looked = AtomicUsize::new(0);
        let mut retried = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Retried,
            || {
                looked.fetch_add(1, Ordering::SeqCst);
                async { Ok(None) }
            },
            || async { Ok(Some(2)) },
            |v| {
                stored.lock().push(v);
                async { Ok(()) }
            },
        ));
        assert!(futures::poll!(shared.as_mut()).is_pending());
        assert!(futures::poll!(retried.as_mut()).is_pending());
        assert_eq!(flights.waiting(&1), 2);
        release.send(()).unwrap();
        assert_eq!(leader.await.unwrap_err().kind(), ErrorKind::Loader);
        assert_eq!(shared.await.unwrap_err().kind(), ErrorKind::Loader);
        // The retrying waiter leads a flight of its own, looking first.
        assert_eq!(retried.await.unwrap(), Some(2));
        assert_eq!(looked.load(Ordering::SeqCst), 1);
        assert_eq!(*stored.lock(), [Some(2)]);
        assert!(!flights.is_loading(&1));
    }

    #[test]
    fn another_blocking_callers_loader_error_is_shared_or_retried_as_asked() {
        let (flights, stored) = loading();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let flights = &flights;
            let leader = s.spawn(move || {
                flights.get_or_load_blocking(
                    &1,
                    LoaderErrors::Retried,
                    || Ok(None),
                    || {
                        released.recv().unwrap();
                        Err(loader_failure())
                    },
                    |_| panic!("nothing was loaded"),
                )
            });
            while !flights.is_loading(&1) {
                std::thread::yield_now();
            }
            let shared = s.spawn(|| {
                flights.get_or_load_blocking(
                    &1,
                    LoaderErrors::Shared,
                    || panic!("a waiter does not look"),
                    || panic!("a waiter sharing the error does not load"),
                    |_| panic!("nothing was loaded"),
                )
            });
            let retried = s.spawn(|| {
                flights.get_or_load_blocking(
                    &1,
                    LoaderErrors::Retried,
                    || Ok(None),
                    || Ok(Some(3)),
                    |v| {
                        stored.lock().push(v);
                        Ok(())
                    },
                )
            });
            while flights.waiting(&1) < 2 {
                std::thread::yield_now();
            }
            release.send(()).unwrap();
            assert_eq!(
                leader.join().unwrap().unwrap_err().kind(),
                ErrorKind::Loader
            );
            assert_eq!(
                shared.join().unwrap().unwrap_err().kind(),
                ErrorKind::Loader
            );
            assert_eq!(retried.join().unwrap().unwrap(), Some(3));
        });
        assert_eq!(*stored.lock(), [Some(3)]);
    }

    #[tokio::test]
    async fn a_store_error_reaches_even_a_retrying_waiter() {
        let (flights, _) = loading();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let mut leader = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Retried,
            || async { Ok(None) },
            || async {
                released.await.ok();
                Ok(Some(1))
            },
            |_| async { Err(Error::new(ErrorKind::ValueTooLarge, "too large")) },
        ));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut retried = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Retried,
            never,
            never,
            |_| never()
        ));
        assert!(futures::poll!(retried.as_mut()).is_pending());
        release.send(()).unwrap();
        assert_eq!(leader.await.unwrap_err().kind(), ErrorKind::ValueTooLarge);
        assert_eq!(retried.await.unwrap_err().kind(), ErrorKind::ValueTooLarge);
    }

    #[tokio::test]
    async fn a_leader_cancelled_mid_load_hands_over_to_a_waiter() {
        let (flights, stored) = loading();
        let (_never_sent, never_released) = tokio::sync::oneshot::channel::<()>();
        let mut leader = Box::pin(flights.get_or_load(
            &1,
            LoaderErrors::Shared,
            || async { Ok(None) },
            || async {
                never_released.await.ok();
                Ok(Some(1))
            },
            |_| never(),
        ));
        assert!(futures::poll!(leader.as_mut()).is_pending());
        let mut waiter = std::pin::pin!(flights.get_or_load(
            &1,
            LoaderErrors::Shared,
            || async { Ok(None) },
            || async { Ok(Some(2)) },
            |v| {
                stored.lock().push(v);
                async { Ok(()) }
            },
        ));
        assert!(futures::poll!(waiter.as_mut()).is_pending());
        assert_eq!(flights.waiting(&1), 1);
        drop(leader);
        assert_eq!(waiter.await.unwrap(), Some(2));
        assert_eq!(*stored.lock(), [Some(2)]);
        assert!(!flights.is_loading(&1));
    }

    #[test]
    fn a_panicking_blocking_loader_hands_over_to_a_waiter() {
        let (flights, stored) = loading();
        let (release, released) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let flights = &flights;
            let leader = s.spawn(move || {
                flights.get_or_load_blocking(
                    &1,
                    LoaderErrors::Shared,
                    || Ok(None),
                    || {
                        released.recv().unwrap();
                        panic!("the loader panicked on purpose")
                    },
                    |_| panic!("nothing was loaded"),
                )
            });
            while !flights.is_loading(&1) {
                std::thread::yield_now();
            }
            let waiter = s.spawn(|| {
                flights.get_or_load_blocking(
                    &1,
                    LoaderErrors::Shared,
                    || Ok(None),
                    || Ok(Some(4)),
                    |v| {
                        stored.lock().push(v);
                        Ok(())
                    },
                )
            });
            while flights.waiting(&1) < 1 {
                std::thread::yield_now();
            }
            release.send(()).unwrap();
            assert!(leader.join().is_err(), "the leader's panic propagates");
            assert_eq!(waiter.join().unwrap().unwrap(), Some(4));
        });
        assert_eq!(*stored.lock(), [Some(4)]);
        assert!(!flights.is_loading(&1));
    }

    /// Compiles only if `get_or_load`'s future is `Send` whenever its
    /// steps' futures are, so the facade can spawn it.
    #[allow(dead_code)]
    fn get_or_load_is_send<'a, K, V>(
        flights: &'a SingleFlight<K, Option<V>>,
        key: &'a K,
        value: V,
    ) -> impl Future<Output = Result<Option<V>>> + Send + 'a
    where
        K: Hash + Eq + Clone + Send + Sync,
        V: Clone + Send + Sync + 'a,
    {
        flights.get_or_load(
            key,
            LoaderErrors::Retried,
            || async { Ok(None) },
            move || async move { Ok(Some(value)) },
            |_| async { Ok(()) },
        )
    }

    #[test]
    fn get_or_load_futures_can_be_spawned() {
        fn assert_send<T: Send>(_: &T) {}
        let flights: SingleFlight<String, Option<Vec<u8>>> = SingleFlight::new();
        let key = "k".to_string();
        let fut = get_or_load_is_send(&flights, &key, vec![1]);
        assert_send(&fut);
    }
}
