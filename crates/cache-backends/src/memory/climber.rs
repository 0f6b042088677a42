//! The hill climber that sizes the admission window to the workload.

/// Sizes the window (the recency part of the cache) by trial: after each
/// sample period it compares the hit ratio with the previous period's and
/// keeps moving the window in the direction that helped, reversing when the
/// ratio falls. Steps shrink geometrically while the ratio is stable and
/// restart at full size when it changes sharply, so the window settles on a
/// steady workload and moves again when the workload shifts.
///
/// A loop or a frequency-skewed workload drives the window small (the
/// frequency-filtered main region wins); a recency-skewed one drives it
/// large (the cache behaves like LRU).
#[derive(Debug)]
pub(crate) struct Climber {
    hits: u64,
    misses: u64,
    previous_ratio: f64,
    /// Signed: positive grows the window.
    step: f64,
}

/// The first step, and the step after a restart, as a share of capacity.
const STEP_SHARE: f64 = 0.0625;
/// Each stable period shrinks the step by this factor.
const STEP_DECAY: f64 = 0.98;
/// A change of the hit ratio this large restarts the step at full size.
const RESTART_THRESHOLD: f64 = 0.05;

impl Climber {
    pub(crate) fn new(capacity: u64) -> Self {
        Climber {
            hits: 0,
            misses: 0,
            previous_ratio: 0.0,
            // The window starts small; the first move tries it smaller.
            step: -STEP_SHARE * capacity as f64,
        }
    }

    /// Follows a change of the capacity from `old` to `new`: the step keeps
    /// its share of the capacity and direction, and the period under way
    /// starts over, since its reads straddle two capacities. The ratio it
    /// is compared with stays, so the first period after a resize may take
    /// one step the wrong way, which the next period reverses, as after any
    /// shift of the workload.
    pub(crate) fn resized(&mut self, old: u64, new: u64) {
        if old > 0 {
            self.step *= new as f64 / old as f64;
        }
        self.hits = 0;
        self.misses = 0;
    }

    /// Adds reads seen since the last call.
    pub(crate) fn record(&mut self, hits: u64, misses: u64) {
        self.hits += hits;
        self.misses += misses;
    }

    /// Once `sample` requests have been recorded, the signed change of the
    /// window's size to make now; `None` before that.
    pub(crate) fn adjustment(&mut self, sample: u64, capacity: u64) -> Option<i64> {
        let requests = self.hits + self.misses;
        if requests < sample {
            return None;
        }
        let ratio = self.hits as f64 / requests as f64;
        let change = ratio - self.previous_ratio;

        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_SHARE * capacity as f64 * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_ratio = ratio;
        self.hits = 0;
        self.misses = 0;
        Some(amount as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(c: &mut Climber, hits: u64, misses: u64) -> Option<i64> {
        c.record(hits, misses);
        c.adjustment(hits + misses, 1_000)
    }

    #[test]
    fn no_adjustment_before_a_full_sample() {
        let mut c = Climber::new(1_000);
        c.record(1, 0);
        assert_eq!(c.adjustment(10, 1_000), None);
    }

    #[test]
    fn keeps_direction_while_improving_and_reverses_on_a_drop() {
        let mut c = Climber::new(1_000);
        // First period: any ratio is an improvement over zero; the initial
        // step shrinks the window.
        assert_eq!(period(&mut c, 50, 50), Some(-62));
        // Better again (a big jump restarts the step, same direction).
        assert_eq!(period(&mut c, 60, 40), Some(-62));
        // Worse: reverse.
        assert!(period(&mut c, 40, 60).unwrap() > 0);
    }

    #[test]
    fn a_resize_scales_the_step_and_restarts_the_period() {
        let mut c = Climber::new(1_000);
        c.record(400, 0);
        c.resized(1_000, 100);
        // The reads before the resize no longer count toward a period.
        assert_eq!(c.adjustment(100, 100), None);
        c.record(50, 50);
        assert_eq!(c.adjustment(100, 100), Some(-6));
    }

    #[test]
    fn steps_decay_while_stable() {
        let mut c = Climber::new(1_000);
        period(&mut c, 50, 50);
        let mut last = i64::MAX;
        for _ in 0..20 {
            let a = period(&mut c, 50, 50).unwrap().abs();
            assert!(a <= last);
            last = a;
        }
        assert!(last < 62);
    }
}
