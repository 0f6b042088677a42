//! Where the keys to warm come from, and how each is warmed.

use std::fmt;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use cache_core::{Error, ErrorKind, Result};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};

use crate::{WarmKey, WarmOutcome};

/// Warms one key: the facade's closure checks presence, loads or promotes,
/// and inserts through the cache's normal insert path.
pub type WarmFn<K> = Arc<dyn Fn(K) -> BoxFuture<'static, WarmOutcome> + Send + Sync>;

/// Lists a source's keys for one run; the argument is the most keys the
/// run will warm, which a stream source stops at.
type ListFn<K> = Arc<dyn Fn(usize) -> BoxFuture<'static, Result<Vec<WarmKey<K>>>> + Send + Sync>;

/// A source of keys to warm, with its priority and how to warm each key.
///
/// The keys are listed afresh at every run, so a source can follow what is
/// hot (the hot keys of the last run, a lower tier's keys).
pub struct WarmSource<K> {
    name: String,
    priority: i32,
    list: ListFn<K>,
    warm: WarmFn<K>,
}

impl<K: Clone + Hash + Eq + Send + Sync + 'static> WarmSource<K> {
    /// A source whose `keys` is called at every run and lists the keys,
    /// with frequency estimates: a list, the hot keys of the last run, a
    /// lower tier's keys. A listing that fails (or panics) is reported in
    /// the run's [`SourceReport`](crate::SourceReport) and the run goes on
    /// with the other sources.
    pub fn new<F, Fut>(name: impl Into<String>, keys: F, warm: WarmFn<K>) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<WarmKey<K>>>> + Send + 'static,
    {
        WarmSource {
            name: name.into(),
            priority: 0,
            list: Arc::new(move |_| keys().boxed()),
            warm,
        }
    }

    /// A fixed list of keys, each of unknown frequency (0), warmed in the
    /// order given among the keys of equal priority and frequency.
    pub fn list(
        name: impl Into<String>,
        keys: impl IntoIterator<Item = K>,
        warm: WarmFn<K>,
    ) -> Self {
        Self::weighted(name, keys.into_iter().map(WarmKey::new), warm)
    }

    /// A fixed list of keys with their estimated frequencies; the more
    /// frequent are warmed first.
    pub fn weighted(
        name: impl Into<String>,
        keys: impl IntoIterator<Item = WarmKey<K>>,
        warm: WarmFn<K>,
    ) -> Self {
        let keys: Arc<[WarmKey<K>]> = keys.into_iter().collect();
        Self::new(
            name,
            move || futures::future::ready(Ok(keys.to_vec())),
            warm,
        )
    }

    /// A user's stream of keys, made afresh for each run by `make` and
    /// drained up to the warmer's [`max_keys`](crate::WarmerBuilder::max_keys),
    /// so an endless stream is fine. Its keys have unknown frequency and
    /// keep the stream's order.
    pub fn stream<F, S>(name: impl Into<String>, make: F, warm: WarmFn<K>) -> Self
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Stream<Item = K> + Send + 'static,
    {
        WarmSource {
            name: name.into(),
            priority: 0,
            list: Arc::new(move |limit| {
                make()
                    .take(limit)
                    .map(WarmKey::new)
                    .collect::<Vec<_>>()
                    .map(Ok)
                    .boxed()
            }),
            warm,
        }
    }

    /// Sets the priority: the keys of sources with higher priorities are
    /// all started before any key of a lower one. The default is 0.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }
}

impl<K> WarmSource<K> {
    /// The source's name, as given; it labels the source's report and
    /// metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source's priority (0 unless set).
    pub(super) fn priority_level(&self) -> i32 {
        self.priority
    }

    /// Lists the source's keys for one run, at most `limit` of them from a
    /// stream. A panicking listing is turned into an error, because one
    /// broken source must not take down a run (or a schedule) of others.
    pub(super) fn list_keys(&self, limit: usize) -> BoxFuture<'static, Result<Vec<WarmKey<K>>>>
    where
        K: Send + 'static,
    {
        let name = self.name.clone();
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.list)(limit))) {
            Ok(listing) => AssertUnwindSafe(listing)
                .catch_unwind()
                .map(move |listed| listed.unwrap_or_else(|_| Err(listing_panicked(&name))))
                .boxed(),
            Err(_) => futures::future::ready(Err(listing_panicked(&name))).boxed(),
        }
    }

    /// Warms one key. A panicking warm function counts as a failure of that
    /// key, for the same reason as a panicking listing.
    pub(super) fn warm_key(&self, key: K) -> BoxFuture<'static, WarmOutcome> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| (self.warm)(key))) {
            Ok(warming) => AssertUnwindSafe(warming)
                .catch_unwind()
                .map(|outcome| outcome.unwrap_or_else(|_| WarmOutcome::Failed(warm_panicked())))
                .boxed(),
            Err(_) => futures::future::ready(WarmOutcome::Failed(warm_panicked())).boxed(),
        }
    }
}

/// The error standing for a key listing that panicked.
fn listing_panicked(name: &str) -> Error {
    Error::new(
        ErrorKind::LoaderAborted,
        format!("the key listing of warming source `{name}` panicked"),
    )
}

/// The error standing for a warm function that panicked.
fn warm_panicked() -> Error {
    Error::new(ErrorKind::LoaderAborted, "the warm function panicked")
}

// Written by hand because neither closure can be cloned or printed through
// a derive that would demand `K: Clone` or `K: Debug`.
impl<K> Clone for WarmSource<K> {
    fn clone(&self) -> Self {
        WarmSource {
            name: self.name.clone(),
            priority: self.priority,
            list: Arc::clone(&self.list),
            warm: Arc::clone(&self.warm),
        }
    }
}

impl<K> fmt::Debug for WarmSource<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmSource")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}
