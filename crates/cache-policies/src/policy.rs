//! What a write policy is, and the settings of write-back.

use std::time::Duration;

use cache_core::{Error, ErrorKind, Result};

/// When a write of the cache reaches its [`Store`](crate::Store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WritePolicy {
    /// `insert` saves to the store first, then writes the tiers; a store
    /// failure returns the store's error and changes no tier. `remove`
    /// deletes from the store, then from every tier. The default with a
    /// store.
    #[default]
    Through,
    /// `insert` returns once the write is durable in the write-back log
    /// and the cache holds the value; a background flusher saves it to
    /// the store later, in batches, retrying failures and keeping what
    /// keeps failing in a dead-letter list. Nothing acknowledged is lost,
    /// even to `kill -9`: the log is replayed when the cache opens again.
    Back,
    /// `insert` saves to the store and removes the key from every tier, so
    /// the next read loads it from the store. For values written often
    /// and read rarely.
    Around,
}

/// What an `insert` under [`WritePolicy::Back`] does when the log holds
/// its most dirty keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WhenFull {
    /// Waits until the flusher makes room (the default): writers slow down
    /// to what the store takes.
    #[default]
    Wait,
    /// Fails at once with an [`ErrorKind::Unavailable`] error that says the
    /// queue is full; nothing is changed.
    Fail,
}

/// How write-back flushes to the store. The defaults suit a store that
/// answers in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteBackSettings {
    /// How long a write may wait in the log before the flusher saves it
    /// when fewer than [`max_batch`](Self::max_batch) keys are dirty
    /// (100 ms by default). A full batch is flushed at once.
    pub flush_interval: Duration,
    /// The most keys saved (or deleted) in one call of
    /// [`Store::save_many`](crate::Store::save_many) (256 by default).
    pub max_batch: usize,
    /// How many times a failed save is tried before its write goes to the
    /// dead-letter list (10 by default).
    pub max_retries: u32,
    /// The wait after a key's first failure; it doubles with each further
    /// one, with random jitter of up to half of it (100 ms by default).
    pub first_retry: Duration,
    /// The longest wait between two tries of a key (30 s by default).
    pub last_retry: Duration,
    /// The most dirty keys the log holds (100,000 by default); repeated
    /// writes of a dirty key take no more room.
    pub max_dirty: usize,
    /// What an insert does when the log is full.
    pub when_full: WhenFull,
}

impl Default for WriteBackSettings {
    fn default() -> Self {
        WriteBackSettings {
            flush_interval: Duration::from_millis(100),
            max_batch: 256,
            max_retries: 10,
            first_retry: Duration::from_millis(100),
            last_retry: Duration::from_secs(30),
            max_dirty: 100_000,
            when_full: WhenFull::Wait,
        }
    }
}

impl WriteBackSettings {
    /// Checks that the settings can work, naming the first one that
    /// cannot.
    pub fn validate(&self) -> Result<()> {
        let invalid = |what: &str| {
            Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("write-back: {what}"),
            ))
        };
        if self.flush_interval.is_zero() {
            return invalid("the flush interval must be longer than zero");
        }
        if self.max_batch == 0 {
            return invalid("the batch size must be at least 1");
        }
        if self.max_retries == 0 {
            return invalid("a write must be tried at least once (max_retries >= 1)");
        }
        if self.max_dirty == 0 {
            return invalid("the log must hold at least one dirty key");
        }
        if self.max_dirty > u32::MAX as usize {
            return invalid("the log holds at most 4,294,967,295 dirty keys");
        }
        if self.first_retry > self.last_retry {
            return invalid("the first retry wait is longer than the last");
        }
        Ok(())
    }

    /// The wait before try number `tries + 1` of a key that failed
    /// `tries` times, before jitter.
    pub(crate) fn backoff(&self, tries: u32) -> Duration {
        let doublings = tries.saturating_sub(1).min(30);
        self.first_retry
            .saturating_mul(1 << doublings)
            .min(self.last_retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_each_bad_setting_is_named() {
        let ok = WriteBackSettings::default();
        ok.validate().unwrap();
        let bad = [
            WriteBackSettings {
                flush_interval: Duration::ZERO,
                ..ok.clone()
            },
            WriteBackSettings {
                max_batch: 0,
                ..ok.clone()
            },
            WriteBackSettings {
                max_retries: 0,
                ..ok.clone()
            },
            WriteBackSettings {
                max_dirty: 0,
                ..ok.clone()
            },
            WriteBackSettings {
                first_retry: Duration::from_secs(60),
                ..ok.clone()
            },
        ];
        for settings in bad {
            let e = settings.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{settings:?}");
        }
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap() {
        let s = WriteBackSettings::default();
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(2), Duration::from_millis(200));
        assert_eq!(s.backoff(4), Duration::from_millis(800));
        assert_eq!(s.backoff(40), Duration::from_secs(30));
    }
}
