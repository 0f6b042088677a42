//! Wall-clock time in unix milliseconds, real or manual.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The source of "now" for expiry decisions.
///
/// Expiry is stored as absolute unix milliseconds so it means the same thing
/// in every tier and after a restart; the clock therefore reads wall time.
/// Tests use a [`ManualClock`] so expiry can be driven step by step.
///
/// ```
/// use cache_core::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let manual = ManualClock::new(1_000);
/// let clock: Clock = manual.clone().into();
/// manual.advance(Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 3_000);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<ManualClock>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Clock { manual: None }
    }

    /// Milliseconds since the unix epoch.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            None => system_now_ms(),
            Some(m) => m.now_ms(),
        }
    }

    /// Whether this clock is driven by hand.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }
}

fn system_now_ms() -> u64 {
    // A clock set before 1970 is a broken machine; treating it as the epoch
    // keeps expiry arithmetic total instead of panicking.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock reading `start_ms` unix milliseconds.
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: Arc::new(AtomicU64::new(start_ms)),
        }
    }

    /// The current reading.
    pub fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.now.fetch_add(ms, Ordering::AcqRel);
    }

    /// Sets the clock to an absolute reading.
    pub fn set_ms(&self, now_ms: u64) {
        self.now.store(now_ms, Ordering::Release);
    }

    /// A [`Clock`] reading this manual clock.
    pub fn clock(&self) -> Clock {
        Clock {
            manual: Some(self.clone()),
        }
    }
}

impl Default for ManualClock {
    /// A manual clock starting at a fixed, recent-looking time (2025-01-01),
    /// so expiry arithmetic in tests resembles production.
    fn default() -> Self {
        ManualClock::new(1_735_689_600_000)
    }
}

impl From<ManualClock> for Clock {
    fn from(m: ManualClock) -> Clock {
        m.clock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::system().now_ms() > 1_577_836_800_000);
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let m = ManualClock::new(10);
        let c = m.clock();
        m.advance(Duration::from_millis(5));
        assert_eq!(c.now_ms(), 15);
        m.set_ms(100);
        assert_eq!(c.now_ms(), 100);
        assert!(c.is_manual());
    }
}
