//! What a run has done so far ([`WarmProgress`]) and what it came to
//! ([`WarmReport`], [`SourceReport`]).

use std::time::Duration;

use cache_core::Error;

/// The progress of a warming run, as a progress bar would draw it.
///
/// `done` counts the keys whose warming has ended, whatever the outcome; it
/// never goes backwards within a run. Run 0 is "no run yet".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarmProgress {
    /// The run's number, counting from 1 for each warmer.
    pub run: u64,
    /// Keys whose warming has ended.
    pub done: u64,
    /// Keys the run means to warm: those listed, deduplicated and cut to
    /// `max_keys`. It is 0 until every source has listed its keys.
    pub total: u64,
    /// Keys now in the cache because of this run.
    pub warmed: u64,
    /// Keys the cache already held.
    pub present: u64,
    /// Keys the source had no value for.
    pub missing: u64,
    /// Keys whose warming failed.
    pub failed: u64,
    /// Whether the run has ended, completed or cancelled.
    pub finished: bool,
}

impl WarmProgress {
    /// The part of the run done, from 0.0 to 1.0. A finished run with
    /// nothing to warm is wholly done; one still listing its keys has done
    /// nothing.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            if self.finished { 1.0 } else { 0.0 }
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        }
    }
}

/// What a warming run came to.
#[derive(Clone, Debug, Default)]
pub struct WarmReport {
    /// The run's number, counting from 1 for each warmer.
    pub run: u64,
    /// Keys the run meant to warm (see [`WarmProgress::total`]).
    pub total: u64,
    /// Keys now in the cache because of this run.
    pub warmed: u64,
    /// Keys the cache already held.
    pub present: u64,
    /// Keys the source had no value for.
    pub missing: u64,
    /// Keys whose warming failed.
    pub failed: u64,
    /// Whether the run was cancelled before starting every key. A cancelled
    /// run still waits for the keys it had started.
    pub cancelled: bool,
    /// How long the run took, listing included.
    pub elapsed: Duration,
    /// Each source's part, in the order the sources were given.
    pub sources: Vec<SourceReport>,
    /// The run's first errors (at most [`WarmReport::MAX_ERRORS`]), in the
    /// order they happened: failed listings, then failed keys.
    pub errors: Vec<Error>,
}

impl WarmReport {
    /// The most errors a report keeps; a run against a tier that is down
    /// fails every key the same way, and a few examples say as much as a
    /// million.
    pub const MAX_ERRORS: usize = 10;

    /// Keys whose warming ended, whatever the outcome.
    pub fn done(&self) -> u64 {
        self.warmed + self.present + self.missing + self.failed
    }

    /// The progress this report ends with.
    pub fn progress(&self) -> WarmProgress {
        WarmProgress {
            run: self.run,
            done: self.done(),
            total: self.total,
            warmed: self.warmed,
            present: self.present,
            missing: self.missing,
            failed: self.failed,
            finished: true,
        }
    }
}

/// One source's part in a warming run.
#[derive(Clone, Debug, Default)]
pub struct SourceReport {
    /// The source's name.
    pub name: String,
    /// Keys the source listed, duplicates included.
    pub listed: u64,
    /// Keys of the run's plan that fell to this source: those it listed,
    /// less the ones a source of higher priority also offered, less the
    /// ones cut by `max_keys`.
    pub planned: u64,
    /// Of those, keys now in the cache because of this run.
    pub warmed: u64,
    /// Keys the cache already held.
    pub present: u64,
    /// Keys the source had no value for.
    pub missing: u64,
    /// Keys whose warming failed.
    pub failed: u64,
    /// Why the source's key listing failed, if it did; the run went on with
    /// the other sources.
    pub listing_error: Option<Error>,
}
