//! A circuit breaker: after a run of failures, calls skip the server for a
//! while instead of each paying a timeout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cache_core::{Error, ErrorKind, Result};
use parking_lot::Mutex;

/// Where the breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` counts the failures in a row so far.
    Closed { failures: u32 },
    /// Calls are refused until `until`.
    Open { until: Instant },
    /// One probe call is in flight; every other call is refused until it
    /// reports.
    Probing,
}

/// A consecutive-failure circuit breaker for one server connection.
///
/// It reads [`Instant`], not the tier's [`Clock`](cache_core::Clock): the
/// breaker measures how long a server has been failing in real time, and a
/// manual clock that tests move by hours must not hold it open (or let it
/// close) early.
#[derive(Debug)]
pub(super) struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
    trips: AtomicU64,
}

/// Permission for one call, handed out by [`Breaker::admit`].
///
/// The call reports its outcome with [`success`](Permit::success) or
/// [`failure`](Permit::failure). A permit dropped without a report counts as
/// a failure: a caller that gave up on a call (its future was dropped) must
/// not leave a probe in flight forever, which would keep the breaker from
/// ever closing.
#[derive(Debug)]
pub(super) struct Permit<'a> {
    breaker: &'a Breaker,
    reported: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row and
    /// stays open for `open_for`.
    pub(super) fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            state: Mutex::new(State::Closed { failures: 0 }),
            trips: AtomicU64::new(0),
        }
    }

    /// Lets a call through, or refuses it with [`ErrorKind::Unavailable`]
    /// while the breaker is open or a probe is in flight.
    pub(super) fn admit(&self) -> Result<Permit<'_>> {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => {}
            State::Open { until } if Instant::now() >= until => *state = State::Probing,
            State::Open { .. } | State::Probing => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the Redis circuit breaker is open after repeated failures",
                ));
            }
        }
        Ok(Permit {
            breaker: self,
            reported: false,
        })
    }

    /// Whether calls are being refused now.
    pub(super) fn is_open(&self) -> bool {
        match *self.state.lock() {
            State::Closed { .. } => false,
            State::Open { until } => Instant::now() < until,
            State::Probing => true,
        }
    }

    /// How many times the breaker has opened.
    pub(super) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    fn record(&self, ok: bool) {
        let mut state = self.state.lock();
        let next = match (*state, ok) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            // A failure while already open comes from a call admitted
            // before the breaker opened; it does not extend the open time.
            (open @ State::Open { .. }, false) => open,
            (State::Closed { .. } | State::Probing, false) => {
                self.trips.fetch_add(1, Ordering::Relaxed);
                State::Open {
                    until: Instant::now() + self.open_for,
                }
            }
        };
        *state = next;
    }
}

impl Permit<'_> {
    /// The call reached the server and it answered.
    pub(super) fn success(mut self) {
        self.reported = true;
        self.breaker.record(true);
    }

    /// The call failed for want of a healthy server (unreachable or slow).
    pub(super) fn failure(mut self) {
        self.reported = true;
        self.breaker.record(false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.record(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &Breaker) {
        b.admit().expect("admitted").failure();
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_calls() {
        let b = Breaker::new(3, Duration::from_secs(60));
        fail(&b);
        fail(&b);
        assert!(!b.is_open());
        fail(&b);
        assert!(b.is_open());
        assert_eq!(b.trips(), 1);
        let err = b.admit().expect_err("an open breaker refuses calls");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = Breaker::new(2, Duration::from_secs(60));
        fail(&b);
        b.admit().unwrap().success();
        fail(&b);
        assert!(!b.is_open());
    }

    #[test]
    fn one_probe_after_the_open_time_then_close_or_reopen() {
        let b = Breaker::new(1, Duration::from_millis(20));
        fail(&b);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(30));
        let probe = b.admit().expect("the probe is let through");
        assert!(b.admit().is_err(), "only one probe at a time");
        probe.failure();
        assert!(b.is_open(), "a failed probe reopens the breaker");
        assert_eq!(b.trips(), 2);
        std::thread::sleep(Duration::from_millis(30));
        b.admit().expect("a second probe").success();
        assert!(!b.is_open());
        b.admit().expect("closed again").success();
    }

    #[test]
    fn a_dropped_probe_counts_as_a_failure() {
        let b = Breaker::new(1, Duration::from_millis(10));
        fail(&b);
        std::thread::sleep(Duration::from_millis(20));
        drop(b.admit().expect("probe"));
        assert!(b.is_open());
    }
}
