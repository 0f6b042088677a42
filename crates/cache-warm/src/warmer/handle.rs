//! The handle of a spawned warmer, and the reports its runs leave.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cancel::CancelToken;
use super::{Status, WarmProgress, WarmReport};

/// How many reports a handle keeps: enough to see a trend, bounded so that
/// a schedule running for months does not grow.
const KEPT_REPORTS: usize = 16;

/// The reports of recent runs, shared by a schedule and its handle.
type Recent = Arc<Mutex<VecDeque<WarmReport>>>;

/// The schedule's side of the reports: it alone holds the sender of the
/// first report, so a schedule that dies before its first run ends (its
/// task panicked, its runtime shut down) closes the channel rather than
/// leaving [`WarmHandle::first_run`] waiting forever.
pub(super) struct ReportLog {
    recent: Recent,
    first: Option<watch::Sender<Option<WarmReport>>>,
}

impl ReportLog {
    /// An empty log, and the receiver of its first report.
    pub(super) fn new() -> (Self, watch::Receiver<Option<WarmReport>>) {
        let (sender, receiver) = watch::channel(None);
        let log = ReportLog {
            recent: Arc::default(),
            first: Some(sender),
        };
        (log, receiver)
    }

    /// The shared list of recent reports.
    pub(super) fn recent(&self) -> Recent {
        Arc::clone(&self.recent)
    }

    /// Keeps a run's report.
    pub(super) fn keep(&mut self, report: WarmReport) {
        if let Some(first) = self.first.take() {
            first.send_replace(Some(report.clone()));
        }
        let mut recent = self.recent.lock();
        if recent.len() == KEPT_REPORTS {
            recent.pop_front();
        }
        recent.push_back(report);
    }
}

/// A warmer running in the background, made by
/// [`Warmer::spawn`](crate::Warmer::spawn).
///
/// Dropping it leaves the schedule running.
pub struct WarmHandle {
    status: Arc<Status>,
    token: Arc<CancelToken>,
    recent: Recent,
    first: watch::Receiver<Option<WarmReport>>,
    task: JoinHandle<()>,
}

impl WarmHandle {
    /// How many reports [`reports`](Self::reports) keeps at most.
    pub const KEPT_REPORTS: usize = KEPT_REPORTS;

    /// A handle on the schedule run by `task`.
    pub(super) fn new(
        status: Arc<Status>,
        token: Arc<CancelToken>,
        recent: Recent,
        first: watch::Receiver<Option<WarmReport>>,
        task: JoinHandle<()>,
    ) -> Self {
        WarmHandle {
            status,
            token,
            recent,
            first,
            task,
        }
    }

    /// The progress of the warmer's run under way, or of its last one.
    pub fn progress(&self) -> WarmProgress {
        self.status.progress.lock().clone()
    }

    /// Cancels the schedule and its run under way: keys already started
    /// finish, nothing more starts, and no further run begins.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Waits for the schedule's first run to end and returns its report;
    /// once it has, returns the same report at once, however often called.
    /// If the schedule died before its first run ended (its task panicked
    /// or its runtime shut down), returns an empty report marked cancelled.
    pub async fn first_run(&self) -> WarmReport {
        let mut first = self.first.clone();
        let report = match first.wait_for(Option::is_some).await {
            Ok(report) => report.clone(),
            Err(_) => None,
        };
        report.unwrap_or_else(|| WarmReport {
            cancelled: true,
            ..WarmReport::default()
        })
    }

    /// The reports of the runs so far, most recent last; only the last
    /// [`KEPT_REPORTS`](Self::KEPT_REPORTS) are kept.
    pub fn reports(&self) -> Vec<WarmReport> {
        self.recent.lock().iter().cloned().collect()
    }

    /// Whether the schedule has ended: cancelled, or its only run done.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Cancels the schedule and waits for its background task to stop,
    /// which is once the keys in flight have finished.
    ///
    /// # Panics
    ///
    /// If the background task panicked (a progress callback that panics
    /// does that), the panic is resumed here.
    pub async fn stop(self) {
        self.cancel();
        if let Err(error) = self.task.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

impl fmt::Debug for WarmHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarmHandle")
            .field("progress", &self.progress())
            .field("cancelled", &self.token.is_cancelled())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
