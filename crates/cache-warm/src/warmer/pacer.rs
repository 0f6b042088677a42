//! The rate limit on starting keys: even pacing with a small tolerance.

use std::time::Duration;

use tokio::time::Instant;

/// How far behind schedule the pacer lets starts fall before it forgets the
/// lost time. It absorbs timer lateness (tokio's timers tick in whole
/// milliseconds, coarser than the gap between starts at high rates), and it
/// bounds a burst after a pause to this much time's worth of keys, far less
/// than a whole second's worth.
const TOLERANCE: Duration = Duration::from_millis(10);

/// Spaces key starts evenly at a given rate.
///
/// It keeps the earliest time the next start may happen. After a start the
/// next one is due one interval later, unless the start itself was more
/// than [`TOLERANCE`] late: then the schedule moves forward, so a pause
/// (every slot busy, a slow source) is not made up with a long burst.
#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    /// A pacer allowing `per_second` starts a second (at least 1), the
    /// first one at `now`.
    pub(super) fn new(per_second: u32, now: Instant) -> Self {
        Pacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: now,
        }
    }

    /// The earliest time the next start may happen.
    pub(super) fn next_start(&self) -> Instant {
        self.next
    }

    /// Records a start at `now` (no earlier than [`next_start`](Self::next_start)).
    pub(super) fn started(&mut self, now: Instant) {
        let on_schedule = self.next + self.interval;
        let resumed = (now + self.interval).checked_sub(TOLERANCE).unwrap_or(now);
        self.next = on_schedule.max(resumed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts keys as soon as the pacer allows, on a clock that moves only
    /// in whole milliseconds (rounding up, as tokio's timers do), and
    /// returns each start's offset from `t0`.
    fn simulate(per_second: u32, starts: usize) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(per_second, t0);
        let mut now = t0;
        let mut offsets = Vec::with_capacity(starts);
        for _ in 0..starts {
            if pacer.next_start() > now {
                let wait = pacer.next_start() - now;
                let whole_ms = wait.as_nanos().div_ceil(1_000_000) as u64;
                now += Duration::from_millis(whole_ms);
            }
            pacer.started(now);
            offsets.push(now - t0);
        }
        offsets
    }

    #[test]
    fn starts_are_evenly_spaced_at_low_rates() {
        let offsets = simulate(20, 5);
        let ms: Vec<u128> = offsets.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 50, 100, 150, 200]);
    }

    #[test]
    fn high_rates_keep_their_average_despite_coarse_timers() {
        // 10 000 a second is one start every 100 µs, finer than the timer.
        let offsets = simulate(10_000, 10_001);
        let last = *offsets.last().unwrap();
        assert!(
            last >= Duration::from_millis(999) && last <= Duration::from_millis(1_001),
            "10 000 starts took {last:?}"
        );
        // No more than a millisecond's worth (plus one) start at once.
        let mut same_instant = 1;
        let mut worst = 1;
        for pair in offsets.windows(2) {
            same_instant = if pair[0] == pair[1] {
                same_instant + 1
            } else {
                1
            };
            worst = worst.max(same_instant);
        }
        assert!(worst <= 11, "{worst} starts at one instant");
    }

    #[test]
    fn a_pause_is_not_made_up_with_a_long_burst() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(1_000, t0);
        pacer.started(t0);
        // Nothing starts for a second, as when every slot is busy.
        let later = t0 + Duration::from_secs(1);
        let mut burst = 0;
        while pacer.next_start() <= later {
            pacer.started(later);
            burst += 1;
        }
        // 10 ms of tolerance at 1 ms a key.
        assert!(burst <= 11, "{burst} keys started at once after a pause");
        assert!(burst >= 1);
    }
}
