//! One warming run: list, plan, warm, report.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use metrics::{Counter, Gauge};
use tokio::time::Instant;

use super::cancel::CancelToken;
use super::pacer::Pacer;
use super::plan::{Planned, plan};
use super::{Inner, ProgressFn, SourceReport, Status, WarmProgress, WarmReport};
use crate::{WARM_ENTRIES_TOTAL, WARM_PROGRESS, WARM_RUNS_TOTAL, WarmOutcome};

/// The least time between two progress callbacks within a run, so that a
/// run of a million quick keys does not call a progress bar a million
/// times.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Runs `inner`'s sources once, cancelled through `token`. The caller holds
/// the run lock.
pub(super) async fn run<K: Clone + Hash + Eq + Send + Sync + 'static>(
    inner: &Inner<K>,
    token: &Arc<CancelToken>,
) -> WarmReport {
    let started = Instant::now();
    let mut tally = Tally::start(inner, token);

    let limit = inner.settings.max_keys;
    let listings = futures::future::join_all(inner.sources.iter().map(|s| s.list_keys(limit)));
    let Some(listings) = token.or_cancelled(listings).await else {
        return tally.finish(started, true);
    };
    let listings = listings
        .into_iter()
        .zip(&inner.sources)
        .enumerate()
        .map(|(index, (listed, source))| {
            let keys = tally.listed(index, listed);
            (source.priority_level(), keys)
        })
        .collect();
    let plan = plan(listings, limit);
    tally.planned(plan.iter().map(|planned| planned.source));

    let sources = &inner.sources;
    let pacer = inner
        .settings
        .rate
        .map(|rate| Pacer::new(rate, Instant::now()));
    let starts = futures::stream::unfold(
        (plan.into_iter(), pacer),
        |(mut keys, mut pacer)| async move {
            let next = next_key(&mut keys, &mut pacer, token).await?;
            let source = next.source;
            let warming = sources[source]
                .warm_key(next.key)
                .map(move |outcome| (source, outcome));
            Some((warming, (keys, pacer)))
        },
    )
    // Boxed because otherwise the compiler cannot prove the spawned
    // schedule's future `Send` for every lifetime the closure borrows with;
    // boxing checks it here, for the lifetimes at hand.
    .boxed();
    // `buffer_unordered` asks for the next start only while fewer than
    // `concurrency` keys are in flight, so the rate limit paces starts into
    // free slots, and the keys in flight finish even once nothing more
    // starts.
    let mut outcomes = starts.buffer_unordered(inner.settings.concurrency);
    while let Some((source, outcome)) = outcomes.next().await {
        tally.record(source, outcome);
    }

    let cancelled = token.is_cancelled() && tally.report.done() < tally.report.total;
    tally.finish(started, cancelled)
}

/// Waits until the rate limit lets the next key of the plan start, and
/// returns it; `None` once the plan is done or the run is cancelled.
async fn next_key<K>(
    keys: &mut std::vec::IntoIter<Planned<K>>,
    pacer: &mut Option<Pacer>,
    token: &CancelToken,
) -> Option<Planned<K>> {
    let next = keys.next()?;
    if let Some(pacer) = pacer.as_mut() {
        let at = pacer.next_start();
        if at > Instant::now() && !token.sleep_until(at).await {
            return None;
        }
        pacer.started(Instant::now());
    }
    // The check comes last so that nothing starts after a cancel, even one
    // that came while no rate limit was waiting.
    if token.is_cancelled() {
        return None;
    }
    Some(next)
}

/// A run's counts as it goes, written to its report, the warmer's progress
/// and the metrics.
struct Tally<'a> {
    status: &'a Status,
    on_progress: Option<&'a ProgressFn>,
    last_progress: Instant,
    report: WarmReport,
    /// Per source, the outcome counters in the order of [`outcome_index`].
    counters: Vec<[Counter; 4]>,
    done: Gauge,
    total: Gauge,
}

/// The metric label of each outcome, in the order of [`outcome_index`].
const OUTCOMES: [&str; 4] = ["warmed", "present", "missing", "failed"];

/// Where an outcome's counter sits in [`Tally::counters`].
fn outcome_index(outcome: &WarmOutcome) -> usize {
    match outcome {
        WarmOutcome::Warmed => 0,
        WarmOutcome::Present => 1,
        WarmOutcome::Missing => 2,
        WarmOutcome::Failed(_) => 3,
    }
}

impl<'a> Tally<'a> {
    /// Starts a run: numbers it, resets the progress and registers `token`
    /// as the run under way.
    fn start<K>(inner: &'a Inner<K>, token: &Arc<CancelToken>) -> Self {
        let status = &*inner.status;
        let run = {
            let mut progress = status.progress.lock();
            *progress = WarmProgress {
                run: progress.run + 1,
                ..WarmProgress::default()
            };
            progress.run
        };
        *status.current.lock() = Some(Arc::clone(token));
        let sources = inner
            .sources
            .iter()
            .map(|source| SourceReport {
                name: source.name().to_owned(),
                ..SourceReport::default()
            })
            .collect();
        // The handles are made once a run, not once a key, because each
        // one is a look-up in the installed recorder.
        let counters = inner
            .sources
            .iter()
            .map(|source| {
                OUTCOMES.map(|outcome| {
                    metrics::counter!(WARM_ENTRIES_TOTAL, "source" => source.name().to_owned(), "outcome" => outcome)
                })
            })
            .collect();
        let done = metrics::gauge!(WARM_PROGRESS, "state" => "done");
        let total = metrics::gauge!(WARM_PROGRESS, "state" => "total");
        done.set(0.0);
        total.set(0.0);
        Tally {
            status,
            on_progress: inner.on_progress.as_ref(),
            last_progress: Instant::now(),
            report: WarmReport {
                run,
                sources,
                ..WarmReport::default()
            },
            counters,
            done,
            total,
        }
    }

    /// Records source `index`'s listing, returning its keys (none when it
    /// failed).
    fn listed<K>(
        &mut self,
        index: usize,
        listed: cache_core::Result<Vec<crate::WarmKey<K>>>,
    ) -> Vec<crate::WarmKey<K>> {
        match listed {
            Ok(keys) => {
                self.report.sources[index].listed = keys.len() as u64;
                keys
            }
            Err(error) => {
                self.keep_error(&error);
                self.report.sources[index].listing_error = Some(error);
                Vec::new()
            }
        }
    }

    /// Records the plan, given as the source of each of its keys.
    fn planned(&mut self, plan: impl Iterator<Item = usize>) {
        for source in plan {
            self.report.sources[source].planned += 1;
            self.report.total += 1;
        }
        self.total.set(self.report.total as f64);
        let snapshot = {
            let mut progress = self.status.progress.lock();
            progress.total = self.report.total;
            progress.clone()
        };
        self.notify(&snapshot);
    }

    /// Records one key's outcome.
    fn record(&mut self, source: usize, outcome: WarmOutcome) {
        self.counters[source][outcome_index(&outcome)].increment(1);
        let counts = &mut self.report.sources[source];
        match &outcome {
            WarmOutcome::Warmed => {
                counts.warmed += 1;
                self.report.warmed += 1;
            }
            WarmOutcome::Present => {
                counts.present += 1;
                self.report.present += 1;
            }
            WarmOutcome::Missing => {
                counts.missing += 1;
                self.report.missing += 1;
            }
            WarmOutcome::Failed(error) => {
                counts.failed += 1;
                self.report.failed += 1;
                self.keep_error(error);
            }
        }
        let done = self.report.done();
        self.done.set(done as f64);
        let mut progress = self.report.progress();
        progress.finished = false;
        let due = self.last_progress.elapsed() >= PROGRESS_EVERY;
        let snapshot = due.then(|| progress.clone());
        *self.status.progress.lock() = progress;
        if let Some(snapshot) = snapshot {
            self.notify(&snapshot);
        }
    }

    /// Ends the run: marks the progress finished, counts the run, and
    /// returns the report.
    fn finish(mut self, started: Instant, cancelled: bool) -> WarmReport {
        self.report.cancelled = cancelled;
        self.report.elapsed = started.elapsed();
        let result = if cancelled { "cancelled" } else { "completed" };
        metrics::counter!(WARM_RUNS_TOTAL, "result" => result).increment(1);
        let snapshot = self.report.progress();
        *self.status.progress.lock() = snapshot.clone();
        self.notify(&snapshot);
        std::mem::take(&mut self.report)
    }

    /// Calls the progress callback, if there is one.
    fn notify(&mut self, progress: &WarmProgress) {
        if let Some(on_progress) = self.on_progress {
            on_progress(progress);
        }
        self.last_progress = Instant::now();
    }

    /// Keeps `error` in the report, if it has room.
    fn keep_error(&mut self, error: &cache_core::Error) {
        if self.report.errors.len() < WarmReport::MAX_ERRORS {
            self.report.errors.push(error.clone());
        }
    }
}

impl Drop for Tally<'_> {
    /// Unregisters the run, and marks the progress finished, also when the
    /// run's future is dropped before the end: a progress bar must not wait
    /// for a run that is gone.
    fn drop(&mut self) {
        *self.status.current.lock() = None;
        self.status.progress.lock().finished = true;
    }
}
