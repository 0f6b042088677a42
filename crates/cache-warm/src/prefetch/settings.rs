//! The prefetcher's settings and their validation.

use cache_core::{Error, ErrorKind, Result};

use super::table;

/// How a [`Prefetcher`](crate::Prefetcher) learns, predicts and fetches.
///
/// The fields can be set directly or with the setters of the same names:
///
/// ```
/// use cache_warm::PrefetchSettings;
///
/// let settings = PrefetchSettings::default().threshold(0.5).concurrency(8);
/// assert!(settings.validate().is_ok());
/// assert_eq!(settings.min_count, 3);
/// ```
#[derive(Clone, Debug)]
pub struct PrefetchSettings {
    /// The memory the successor table may use, in bytes (default 4 MiB).
    /// It holds at most `memory_bytes /`
    /// [`bytes_per_key`](PrefetchSettings::bytes_per_key) keys.
    pub memory_bytes: usize,
    /// How many successors are kept for each key, 1 to
    /// [`MAX_CANDIDATES`](PrefetchSettings::MAX_CANDIDATES) (default 4).
    pub candidates: usize,
    /// The estimated probability a successor needs to be predicted, above 0
    /// and at most 1 (default 0.4).
    pub threshold: f64,
    /// How many times a successor must have followed its key, in the
    /// table's aged counts, to be predicted (default 3). It keeps keys seen
    /// once or twice from predicting on chance.
    pub min_count: u32,
    /// How many predicted keys may wait to be fetched (default 1024); a
    /// prediction made while the queue is full is dropped.
    pub queue: usize,
    /// How many fetches may run at once (default 4).
    pub concurrency: usize,
    /// How many prefetched, not yet read keys are followed to measure
    /// precision (default 10 000); a key is forgotten, as unused, once
    /// about this many later keys were prefetched.
    pub tracked: usize,
}

impl Default for PrefetchSettings {
    fn default() -> Self {
        PrefetchSettings {
            memory_bytes: 4 << 20,
            candidates: 4,
            threshold: 0.4,
            min_count: 3,
            queue: 1024,
            concurrency: 4,
            tracked: 10_000,
        }
    }
}

/// An [`ErrorKind::InvalidConfig`] error naming the setting.
fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

impl PrefetchSettings {
    /// The most successors that can be kept for each key.
    pub const MAX_CANDIDATES: usize = 16;

    /// Sets [`memory_bytes`](PrefetchSettings::memory_bytes).
    pub fn memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets [`candidates`](PrefetchSettings::candidates).
    pub fn candidates(mut self, candidates: usize) -> Self {
        self.candidates = candidates;
        self
    }

    /// Sets [`threshold`](PrefetchSettings::threshold).
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets [`min_count`](PrefetchSettings::min_count).
    pub fn min_count(mut self, min_count: u32) -> Self {
        self.min_count = min_count;
        self
    }

    /// Sets [`queue`](PrefetchSettings::queue).
    pub fn queue(mut self, queue: usize) -> Self {
        self.queue = queue;
        self
    }

    /// Sets [`concurrency`](PrefetchSettings::concurrency).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Sets [`tracked`](PrefetchSettings::tracked).
    pub fn tracked(mut self, tracked: usize) -> Self {
        self.tracked = tracked;
        self
    }

    /// The estimated bytes one learned key costs in the successor table for
    /// keys of type `K`: its node, its `candidates` successor slots (each
    /// holding a `K`) and its index entry. Memory a key owns on the heap,
    /// such as a `String`'s characters, is not counted.
    pub fn bytes_per_key<K>(&self) -> usize {
        table::bytes_per_key::<K>(self.candidates.clamp(1, Self::MAX_CANDIDATES))
    }

    /// The most keys the successor table holds for keys of type `K`:
    /// `memory_bytes / bytes_per_key::<K>()`.
    pub fn key_capacity<K>(&self) -> usize {
        self.memory_bytes / self.bytes_per_key::<K>()
    }

    /// Checks that the settings can work, with an
    /// [`ErrorKind::InvalidConfig`] error naming the first that cannot.
    pub fn validate(&self) -> Result<()> {
        if self.memory_bytes == 0 {
            return Err(invalid(
                "prefetch memory_bytes must be above 0: it bounds the successor table".into(),
            ));
        }
        if !(1..=Self::MAX_CANDIDATES).contains(&self.candidates) {
            return Err(invalid(format!(
                "prefetch candidates must be between 1 and {}, not {}",
                Self::MAX_CANDIDATES,
                self.candidates
            )));
        }
        // Written so that NaN fails too.
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(invalid(format!(
                "prefetch threshold must be above 0 and at most 1, not {}",
                self.threshold
            )));
        }
        if self.min_count == 0 {
            return Err(invalid(
                "prefetch min_count must be at least 1: a successor never seen cannot be predicted"
                    .into(),
            ));
        }
        if self.queue == 0 {
            return Err(invalid("prefetch queue must hold at least 1 key".into()));
        }
        if self.concurrency == 0 {
            return Err(invalid(
                "prefetch concurrency must be at least 1, or nothing is ever fetched".into(),
            ));
        }
        if self.tracked == 0 {
            return Err(invalid(
                "prefetch tracked must be at least 1, or every prefetch would count as unused"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks the settings for keys of type `K`: [`validate`](Self::validate),
    /// and that the memory holds at least one key.
    pub(super) fn validate_for<K>(&self) -> Result<()> {
        self.validate()?;
        if self.key_capacity::<K>() == 0 {
            return Err(invalid(format!(
                "prefetch memory_bytes ({}) is less than one learned key's estimated size ({} bytes)",
                self.memory_bytes,
                self.bytes_per_key::<K>()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(PrefetchSettings::default().validate().is_ok());
        assert!(PrefetchSettings::default().validate_for::<String>().is_ok());
    }

    #[test]
    fn a_memory_too_small_for_one_key_is_refused() {
        let s = PrefetchSettings::default().memory_bytes(8);
        assert!(s.validate().is_ok());
        let e = s.validate_for::<u64>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(e.message().contains("memory_bytes"), "{e}");
    }

    #[test]
    fn capacity_divides_the_memory_by_the_size_of_a_key() {
        let s = PrefetchSettings::default().memory_bytes(64 << 10);
        assert_eq!(
            s.key_capacity::<u64>(),
            (64 << 10) / s.bytes_per_key::<u64>()
        );
        assert!(s.key_capacity::<[u8; 256]>() < s.key_capacity::<u64>());
    }
}
