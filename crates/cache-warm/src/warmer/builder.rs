//! Configuring a [`Warmer`].

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Error, ErrorKind, Result};

use super::{Inner, ProgressFn, Settings, Status, WarmProgress, WarmSource, Warmer};

/// The default number of keys warmed at once: enough to hide one tier's
/// latency, few enough that warming takes a small share of the tiers and
/// loaders that live traffic also needs.
const DEFAULT_CONCURRENCY: usize = 4;

/// The default number of keys started a second. Warming must never starve
/// live traffic, so it is limited even when the concurrency limit would
/// allow more; 10 000 a second still warms a million keys in under two
/// minutes.
const DEFAULT_RATE: u32 = 10_000;

/// The default number of keys a run warms at most.
const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Builds a [`Warmer`]; made by [`Warmer::builder`].
pub struct WarmerBuilder<K> {
    sources: Vec<WarmSource<K>>,
    settings: Settings,
    on_progress: Option<ProgressFn>,
}

impl<K: Clone + Hash + Eq + Send + Sync + 'static> WarmerBuilder<K> {
    /// The defaults described at [`Warmer::builder`].
    pub(super) fn new() -> Self {
        WarmerBuilder {
            sources: Vec::new(),
            settings: Settings {
                concurrency: DEFAULT_CONCURRENCY,
                rate: Some(DEFAULT_RATE),
                max_keys: DEFAULT_MAX_KEYS,
                every: None,
            },
            on_progress: None,
        }
    }

    /// Adds a source of keys. Among sources of equal priority, those added
    /// first are warmed first.
    pub fn source(mut self, source: WarmSource<K>) -> Self {
        self.sources.push(source);
        self
    }

    /// At most this many keys warmed at once (default 4; 0 is an
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) error at build).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// At most this many keys started a second, paced evenly rather than in
    /// bursts (default 10 000, so that warming never starves live traffic);
    /// `None` for no limit. `Some(0)` is an
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) error at build.
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.settings.rate = per_second;
        self
    }

    /// At most this many keys a run (default 1 000 000): the first ones by
    /// priority and frequency, so the hottest are kept. A stream source is
    /// read no further than this. 0 is an
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) error at build.
    pub fn max_keys(mut self, n: usize) -> Self {
        self.settings.max_keys = n;
        self
    }

    /// For a spawned warmer ([`Warmer::spawn`]), runs at start and then
    /// every `interval`; `None` (the default) runs once. A zero interval is
    /// an [`InvalidConfig`](ErrorKind::InvalidConfig) error at build.
    pub fn every(mut self, interval: Option<Duration>) -> Self {
        self.settings.every = interval;
        self
    }

    /// Calls `f` with the progress: when the keys are listed, as keys
    /// complete (at most every 100 ms), and once at the end of the run with
    /// `finished` set, so a progress bar can be drawn. Calls come one at a
    /// time from the task doing the run, and `done` never goes backwards
    /// within a run. `f` should return quickly: the run waits for it.
    pub fn on_progress(mut self, f: impl Fn(&WarmProgress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// Builds the warmer.
    ///
    /// # Errors
    ///
    /// [`InvalidConfig`](ErrorKind::InvalidConfig) for a concurrency, rate
    /// limit, `max_keys` or interval of zero, since each would make a
    /// warmer that never warms anything.
    pub fn build(self) -> Result<Warmer<K>> {
        let settings = self.settings;
        let invalid = |message: &'static str| Err(Error::new(ErrorKind::InvalidConfig, message));
        if settings.concurrency == 0 {
            return invalid("warmer concurrency must be at least 1");
        }
        if settings.rate == Some(0) {
            return invalid("warmer rate limit must be at least 1 key a second (or None)");
        }
        if settings.max_keys == 0 {
            return invalid("warmer max_keys must be at least 1");
        }
        if settings.every == Some(Duration::ZERO) {
            return invalid("warmer interval must be longer than zero (or None)");
        }
        Ok(Warmer {
            inner: Arc::new(Inner {
                sources: self.sources,
                settings,
                on_progress: self.on_progress,
                status: Arc::new(Status::default()),
                run_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

impl<K> fmt::Debug for WarmerBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmerBuilder")
            .field("sources", &self.sources)
            .field("settings", &self.settings)
            .field("on_progress", &self.on_progress.is_some())
            .finish()
    }
}
