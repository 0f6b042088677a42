//! A loader that counts its calls, for the load-protection tests: how many
//! times a cache asked its system of record is what those tests check.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tiercache::{Loader, Result};

/// What a [`CountingLoader`] answers for a key.
type Answer = dyn Fn(&str) -> Result<Option<String>> + Send + Sync;

/// A loader of `String` values that counts every call, optionally after a
/// delay. Clones share the count.
///
/// It is a [`Loader`] (for `get_or_load` and `CacheBuilder::loader`), and
/// [`optional`](Self::optional) and [`value`](Self::value) make one-shot
/// futures of it for `optionally_get_with` and `get_with`.
#[derive(Clone)]
pub struct CountingLoader {
    calls: Arc<AtomicUsize>,
    delay: Duration,
    answer: Arc<Answer>,
}

impl CountingLoader {
    /// A loader answering `answer(key)` for each key.
    pub fn new(answer: impl Fn(&str) -> Result<Option<String>> + Send + Sync + 'static) -> Self {
        CountingLoader {
            calls: Arc::new(AtomicUsize::new(0)),
            delay: Duration::ZERO,
            answer: Arc::new(answer),
        }
    }

    /// A loader that finds no value for any key.
    pub fn none() -> Self {
        Self::new(|_| Ok(None))
    }

    /// A loader that finds `"loaded <key>"` for every key.
    pub fn values() -> Self {
        Self::new(|k| Ok(Some(format!("loaded {k}"))))
    }

    /// The same loader, each call taking `delay` (a tokio sleep) before it
    /// answers.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// How many times the loader was called, by any clone.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// One call for `key`: counted when it starts, answered after the
    /// delay.
    pub fn call(&self, key: &str) -> impl Future<Output = Result<Option<String>>> + Send + 'static {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (delay, answer, key) = (self.delay, self.answer.clone(), key.to_string());
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            answer(&key)
        }
    }

    /// A one-shot future for `optionally_get_with`: counted only if the
    /// cache polls it, and the answer's error, if any, panics.
    pub fn optional(&self, key: &str) -> impl Future<Output = Option<String>> + Send + 'static {
        let this = self.clone();
        let key = key.to_string();
        async move {
            this.call(&key)
                .await
                .expect("an optional loader does not fail")
        }
    }

    /// A one-shot future for `get_with`: counted only if the cache polls
    /// it; a key the loader has no value for answers `"none"`.
    pub fn value(&self, key: &str) -> impl Future<Output = String> + Send + 'static {
        let optional = self.optional(key);
        async move { optional.await.unwrap_or_else(|| "none".to_string()) }
    }
}

impl Loader<String, String> for CountingLoader {
    fn load(&self, key: &String) -> impl Future<Output = Result<Option<String>>> + Send {
        self.call(key)
    }
}
