//! The warming service: keys from several sources, warmed hottest first
//! under a concurrency limit and a rate limit, once or on a schedule, with
//! progress, cancellation and a report.
//!
//! The service is generic over the key and knows nothing of the typed
//! cache: each [`WarmSource`] brings a [`WarmFn`] that warms one key
//! through the cache's normal insert path, which the facade supplies.

mod builder;
mod cancel;
mod handle;
mod pacer;
mod plan;
mod progress;
mod run;
mod source;

use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use builder::WarmerBuilder;
pub use handle::WarmHandle;
pub use progress::{SourceReport, WarmProgress, WarmReport};
pub use source::{WarmFn, WarmSource};

use cancel::CancelToken;
use handle::ReportLog;

/// The progress callback set by [`WarmerBuilder::on_progress`].
type ProgressFn = Arc<dyn Fn(&WarmProgress) + Send + Sync>;

/// Warms a cache from several [`WarmSource`]s.
///
/// A run lists every source's keys, drops duplicates, orders them by the
/// sources' priorities and the keys' frequencies, keeps the hottest
/// [`max_keys`](WarmerBuilder::max_keys), and warms them with at most
/// [`concurrency`](WarmerBuilder::concurrency) in flight and at most
/// [`rate_limit`](WarmerBuilder::rate_limit) started a second. Runs of one
/// warmer never overlap: a run asked for while another is under way waits
/// for it to end. Cloning is cheap and the clones share everything.
///
/// ```
/// # use std::sync::Arc;
/// # use futures::FutureExt;
/// use cache_warm::{WarmFn, WarmOutcome, WarmSource, Warmer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> cache_core::Result<()> {
/// let warm: WarmFn<u64> = Arc::new(|_key| async { WarmOutcome::Warmed }.boxed());
/// let warmer = Warmer::builder()
///     .source(WarmSource::list("config", [1, 2, 3], warm.clone()).priority(1))
///     .source(WarmSource::list("recent", [3, 4], warm))
///     .concurrency(8)
///     .build()?;
/// let report = warmer.run().await;
/// assert_eq!((report.total, report.warmed), (4, 4));
/// # Ok(())
/// # }
/// ```
pub struct Warmer<K> {
    inner: Arc<Inner<K>>,
}

/// A warmer's settings, fixed when it is built.
#[derive(Clone, Copy, Debug)]
struct Settings {
    concurrency: usize,
    rate: Option<u32>,
    max_keys: usize,
    every: Option<Duration>,
}

/// What the clones of a warmer share.
struct Inner<K> {
    sources: Vec<WarmSource<K>>,
    settings: Settings,
    on_progress: Option<ProgressFn>,
    status: Arc<Status>,
    /// Held for the whole of a run, so that runs never overlap and the
    /// progress always describes one run.
    run_lock: tokio::sync::Mutex<()>,
}

/// The part of a warmer's state that its handles see too; it does not
/// depend on the key type, so neither does [`WarmHandle`].
#[derive(Debug, Default)]
struct Status {
    progress: Mutex<WarmProgress>,
    /// The cancellation token of the run under way, if any.
    current: Mutex<Option<Arc<CancelToken>>>,
    /// The tokens of the schedules spawned from this warmer, so that
    /// [`Warmer::cancel`] ends them too; a weak reference, because a
    /// schedule that has ended has nothing left to cancel.
    schedules: Mutex<Vec<Weak<CancelToken>>>,
}

impl<K: Clone + Hash + Eq + Send + Sync + 'static> Warmer<K> {
    /// A builder with no sources, a concurrency of 4, a rate limit of
    /// 10 000 keys a second, at most 1 000 000 keys a run, and no schedule.
    pub fn builder() -> WarmerBuilder<K> {
        WarmerBuilder::new()
    }

    /// Runs once now, to completion or cancellation, and returns the
    /// report. If another run of this warmer is under way, this one starts
    /// when it ends.
    pub async fn run(&self) -> WarmReport {
        self.run_with(&Arc::new(CancelToken::new())).await
    }

    /// Spawns the warmer on the current tokio runtime: it runs at once, then
    /// (with [`every`](WarmerBuilder::every)) again each interval until
    /// cancelled. The next run is due one interval after the previous one
    /// started; after a run that took longer than the interval, one
    /// interval after it ended, so runs are never back to back.
    ///
    /// Dropping the handle leaves the schedule running; end it with
    /// [`WarmHandle::cancel`], [`WarmHandle::stop`] or [`Warmer::cancel`].
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(&self) -> WarmHandle {
        let token = Arc::new(CancelToken::new());
        {
            let mut schedules = self.inner.status.schedules.lock();
            schedules.retain(|schedule| schedule.strong_count() > 0);
            schedules.push(Arc::downgrade(&token));
        }
        let (log, first) = ReportLog::new();
        let recent = log.recent();
        let warmer = self.clone();
        let schedule_token = Arc::clone(&token);
        let task = tokio::spawn(async move {
            warmer.schedule(&schedule_token, log).await;
        });
        WarmHandle::new(Arc::clone(&self.inner.status), token, recent, first, task)
    }

    /// The runs of a spawned warmer, one after another until `token` is
    /// cancelled, each report kept in `log`.
    async fn schedule(&self, token: &Arc<CancelToken>, mut log: ReportLog) {
        loop {
            let started = Instant::now();
            log.keep(self.run_with(token).await);
            let Some(every) = self.inner.settings.every else {
                return;
            };
            let now = Instant::now();
            let due = started + every;
            let next = if due > now { due } else { now + every };
            if !token.sleep_until(next).await {
                return;
            }
        }
    }

    /// One run, cancelled through `token`.
    async fn run_with(&self, token: &Arc<CancelToken>) -> WarmReport {
        let _one_at_a_time = self.inner.run_lock.lock().await;
        run::run(&self.inner, token).await
    }
}

impl<K> Warmer<K> {
    /// The progress of the run under way, or of the last one (run 0 when
    /// none has started).
    pub fn progress(&self) -> WarmProgress {
        self.inner.status.progress.lock().clone()
    }

    /// Cancels the run under way and every schedule spawned from this
    /// warmer: keys already started finish, nothing more starts, and the
    /// run's report says it was cancelled. A later [`run`](Self::run) or
    /// [`spawn`](Self::spawn) works as usual.
    pub fn cancel(&self) {
        let status = &self.inner.status;
        for schedule in status.schedules.lock().drain(..) {
            if let Some(schedule) = schedule.upgrade() {
                schedule.cancel();
            }
        }
        if let Some(current) = status.current.lock().as_ref() {
            current.cancel();
        }
    }
}

// Written by hand because a derive would demand `K: Clone`.
impl<K> Clone for Warmer<K> {
    fn clone(&self) -> Self {
        Warmer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for Warmer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Warmer")
            .field("sources", &self.inner.sources)
            .field("settings", &self.inner.settings)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}
