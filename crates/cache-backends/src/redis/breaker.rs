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
    /// Calls are refused until `until`; for good when the open time is too
    /// long to add to the clock (`Duration::MAX`).
    Open { until: Option<Instant> },
    /// One probe call is in flight; every other call is refused until it
    /// reports.
    Probing,
}

/// The state, and its generation: a number that changes whenever the
/// breaker opens, starts a probe or closes after one.
#[derive(Debug)]
struct Current {
    state: State,
    generation: u64,
}

/// A consecutive-failure circuit breaker for one server connection.
///
/// It reads [`Instant`], not the tier's [`Clock`](cache_core::Clock): the
/// breaker measures how long a server has been failing in real time, and a
/// manual clock that tests move by hours must not hold it open (or let it
/// close) early.
///
/// Only the outcomes of calls admitted in the current generation count. A
/// call admitted while the breaker was closed may finish after it opened
/// (its command was slow); its success says nothing about the server now
/// and must not close the breaker, and its failure must not count against
/// the server once it has recovered.
#[derive(Debug)]
pub(super) struct Breaker {
    threshold: u32,
    open_for: Duration,
    current: Mutex<Current>,
    trips: AtomicU64,
}

/// Permission for one call, handed out by [`Breaker::admit`].
///
/// The call reports its outcome with [`success`](Permit::success) or
/// [`failure`](Permit::failure). A permit dropped without a report (its
/// caller gave up and dropped the call's future, such as a timeout of the
/// caller's shorter than the command timeout) counts as neither: the server
/// may be healthy and the caller merely impatient. A dropped probe hands
/// the probe on to the next call, so the breaker is never left waiting for
/// a report that will not come.
#[derive(Debug)]
pub(super) struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    probe: bool,
    reported: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row and
    /// stays open for `open_for`.
    pub(super) fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            open_for,
            current: Mutex::new(Current {
                state: State::Closed { failures: 0 },
                generation: 0,
            }),
            trips: AtomicU64::new(0),
        }
    }

    /// Lets a call through, or refuses it with [`ErrorKind::Unavailable`]
    /// while the breaker is open or a probe is in flight.
    pub(super) fn admit(&self) -> Result<Permit<'_>> {
        let mut current = self.current.lock();
        let probe = match current.state {
            State::Closed { .. } => false,
            State::Open { until: Some(until) } if Instant::now() >= until => {
                current.state = State::Probing;
                current.generation += 1;
                true
            }
            State::Open { .. } | State::Probing => {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "the Redis circuit breaker is open after repeated failures",
                ));
            }
        };
        Ok(Permit {
            breaker: self,
            generation: current.generation,
            probe,
            reported: false,
        })
    }

    /// Whether calls are being refused now.
    pub(super) fn is_open(&self) -> bool {
        match self.current.lock().state {
            State::Closed { .. } => false,
            State::Open { until } => until.is_none_or(|until| Instant::now() < until),
            State::Probing => true,
        }
    }

    /// How many times the breaker has opened.
    pub(super) fn trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    fn record(&self, generation: u64, ok: bool) {
        let mut current = self.current.lock();
        if current.generation != generation {
            // Admitted under an earlier state: see the type's documentation.
            return;
        }
        let (next, new_generation) = match (current.state, ok) {
            (State::Closed { .. }, true) => (State::Closed { failures: 0 }, false),
            (State::Probing, true) => (State::Closed { failures: 0 }, true),
            (State::Closed { failures }, false) if failures + 1 < self.threshold => (
                State::Closed {
                    failures: failures + 1,
                },
                false,
            ),
            (State::Closed { .. } | State::Probing, false) => {
                self.trips.fetch_add(1, Ordering::Relaxed);
                (
                    State::Open {
                        until: Instant::now().checked_add(self.open_for),
                    },
                    true,
                )
            }
            // Opening starts a new generation, so no permit of an open
            // breaker's generation exists to report.
            (open @ State::Open { .. }, _) => (open, false),
        };
        current.state = next;
        if new_generation {
            current.generation += 1;
        }
    }

    /// A probe gave up without a result: the next call may probe at once.
    fn abandon_probe(&self, generation: u64) {
        let mut current = self.current.lock();
        if current.generation == generation && current.state == State::Probing {
            current.state = State::Open {
                until: Some(Instant::now()),
            };
            current.generation += 1;
        }
    }
}

impl Permit<'_> {
    /// The call reached the server and it answered.
    pub(super) fn success(mut self) {
        self.reported = true;
        self.breaker.record(self.generation, true);
    }

    /// The call failed for want of a healthy server (unreachable or slow).
    pub(super) fn failure(mut self) {
        self.reported = true;
        self.breaker.record(self.generation, false);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.abandon_probe(self.generation);
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
    fn a_dropped_probe_hands_the_probe_on() {
        // An open time of zero lets a probe through at once.
        let b = Breaker::new(1, Duration::ZERO);
        fail(&b);
        let probe = b.admit().expect("probe");
        assert!(b.admit().is_err(), "only one probe at a time");
        drop(probe);
        let next = b.admit().expect("the next call probes");
        assert!(b.admit().is_err(), "and is the only probe");
        next.success();
        assert!(!b.is_open());
        assert_eq!(b.trips(), 1, "a dropped probe is not a failure");
    }

    #[test]
    fn dropped_calls_are_neither_success_nor_failure() {
        let b = Breaker::new(2, Duration::from_secs(60));
        for _ in 0..10 {
            drop(b.admit().expect("closed"));
        }
        assert!(!b.is_open(), "caller cancellations opened the breaker");
        assert_eq!(b.trips(), 0);
        // Nor do they reset a run of failures.
        fail(&b);
        drop(b.admit().expect("closed"));
        fail(&b);
        assert!(b.is_open());
    }

    #[test]
    fn a_late_success_from_before_the_trip_does_not_close_it() {
        let b = Breaker::new(1, Duration::from_secs(60));
        let slow = b.admit().expect("closed");
        fail(&b);
        assert!(b.is_open());
        slow.success();
        assert!(b.is_open(), "a stale success closed the breaker");
        assert!(b.admit().is_err());
    }

    #[test]
    fn a_late_failure_from_before_the_trip_does_not_count_after_recovery() {
        let b = Breaker::new(2, Duration::ZERO);
        let slow = b.admit().expect("closed");
        fail(&b);
        fail(&b);
        assert_eq!(b.trips(), 1);
        b.admit().expect("probe").success();
        slow.failure();
        fail(&b);
        assert_eq!(b.trips(), 1, "a stale failure counted toward a new trip");
        fail(&b);
        assert_eq!(b.trips(), 2);
    }

    #[test]
    fn an_open_time_too_long_for_the_clock_keeps_it_open() {
        let b = Breaker::new(1, Duration::MAX);
        fail(&b);
        assert!(b.is_open());
        assert!(b.admit().is_err());
        assert_eq!(b.trips(), 1);
    }
}
