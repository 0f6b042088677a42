//! [`LatencyHistogram`]: sharded hdrhistogram recording, merged on read
//! into a [`LatencySummary`].

use std::time::Duration;

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::shard::{shard_count, thread_index};

/// The largest latency recorded, in nanoseconds (one hour). Longer ones are
/// recorded as one hour, which bounds each histogram's memory.
pub const MAX_LATENCY_NANOS: u64 = 3_600 * 1_000_000_000;

/// The significant decimal figures kept: any recorded value, and so any
/// percentile, is within 0.1% of the true one.
pub const SIGNIFICANT_FIGURES: u8 = 3;

/// A latency distribution that many threads record into without waiting
/// on each other, in bounded memory.
///
/// Recording is sharded: each thread writes to one of a few
/// (`available_parallelism` rounded up to a power of two, at most eight)
/// mutex-guarded hdrhistograms, picked by the thread's number, and moves to
/// the next free shard when its own is busy. Sharded mutexes rather than
/// thread-local buffers because a histogram belongs to one tier and one
/// operation, of which a process may have many: thread-local buffers would
/// need a registry per thread and a flush protocol, while a shard's lock is
/// almost never contended and its contents are always current for
/// [`snapshot`](Self::snapshot), which merges the shards.
///
/// Values are nanoseconds, kept to [`SIGNIFICANT_FIGURES`] significant
/// figures from 1 ns to [`MAX_LATENCY_NANOS`]. A shard is allocated on its
/// first value and grows only to cover the largest value it has seen: about
/// 64 KiB for values up to 100 µs, at most about 270 KiB for values up to
/// an hour.
///
/// ```
/// use cache_analytics::LatencyHistogram;
///
/// let h = LatencyHistogram::new();
/// for ns in 1..=1000 {
///     h.record(ns);
/// }
/// let s = h.snapshot();
/// assert_eq!(s.count, 1000);
/// assert_eq!(s.p50, 500);
/// assert_eq!(s.max, 1000);
/// ```
#[derive(Debug)]
pub struct LatencyHistogram {
    shards: Box<[Mutex<Option<Histogram<u64>>>]>,
}

impl LatencyHistogram {
    /// An empty histogram with as many shards as suit this machine.
    pub fn new() -> Self {
        LatencyHistogram::with_shards(shard_count())
    }

    /// An empty histogram with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> Self {
        LatencyHistogram {
            shards: (0..shards.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Records a latency in nanoseconds; values above
    /// [`MAX_LATENCY_NANOS`] are recorded as that maximum.
    pub fn record(&self, nanos: u64) {
        let value = nanos.min(MAX_LATENCY_NANOS);
        let home = thread_index() % self.shards.len();
        // A busy home shard means another thread shares it; the next free
        // one takes the value instead of waiting, and only when every shard
        // is busy does the thread wait for its own.
        for i in 0..self.shards.len() {
            let shard = &self.shards[(home + i) % self.shards.len()];
            if let Some(mut h) = shard.try_lock() {
                record_into(&mut h, value);
                return;
            }
        }
        record_into(&mut self.shards[home].lock(), value);
    }

    /// Records a latency; see [`record`](Self::record).
    pub fn record_duration(&self, latency: Duration) {
        self.record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The distribution so far, merged from every shard. Values recorded
    /// while the snapshot is taken may or may not be in it.
    pub fn snapshot(&self) -> LatencySummary {
        let mut merged = new_histogram();
        for shard in &self.shards {
            if let Some(h) = &*shard.lock() {
                // An auto-resizing histogram grows to take any value another
                // histogram of the same precision holds, so adding cannot
                // fail.
                merged
                    .add(h)
                    .expect("an auto-resizing histogram takes every value");
            }
        }
        LatencySummary::of(&merged)
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

/// An empty histogram that grows to the largest value recorded.
fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGNIFICANT_FIGURES).expect("3 significant figures is a valid precision")
}

fn record_into(shard: &mut Option<Histogram<u64>>, value: u64) {
    let h = shard.get_or_insert_with(new_histogram);
    // `record` grows the histogram to take the value (`saturating_record`
    // would clamp it to the current range instead). The value is at most
    // an hour, far below the most an auto-resizing histogram takes, so the
    // fallback only guards against a failed allocation of the larger range.
    if h.record(value).is_err() {
        h.saturating_record(value);
    }
}

/// Percentiles of a [`LatencyHistogram`], in nanoseconds.
///
/// Nanoseconds as integers rather than `Duration`s, so the serialized form
/// is plain numbers. Each percentile is the highest value equivalent to the
/// recorded one at [`SIGNIFICANT_FIGURES`] significant figures: it is at
/// most 0.1% above the true percentile and never below it. All fields are
/// zero when nothing was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// How many latencies were recorded.
    pub count: u64,
    /// The median.
    pub p50: u64,
    /// The 95th percentile.
    pub p95: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The largest latency recorded.
    pub max: u64,
    /// The mean, rounded to the nearest nanosecond.
    pub mean: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
            // The mean of values at most an hour in nanoseconds fits a u64.
            mean: h.mean().round() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(
            LatencyHistogram::new().snapshot(),
            LatencySummary::default()
        );
    }

    #[test]
    fn values_above_the_maximum_are_clamped() {
        let h = LatencyHistogram::with_shards(1);
        h.record(u64::MAX);
        h.record_duration(Duration::from_secs(7_200));
        let s = h.snapshot();
        assert_eq!(s.count, 2);
        let error = s.max.abs_diff(MAX_LATENCY_NANOS) as f64 / MAX_LATENCY_NANOS as f64;
        assert!(error <= 0.001, "max {} for a clamped value", s.max);
    }

    #[test]
    fn shards_recorded_from_many_threads_are_all_merged() {
        let h = Arc::new(LatencyHistogram::with_shards(4));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let h = Arc::clone(&h);
                thread::spawn(move || {
                    for i in 0..1_000 {
                        h.record(1_000 * (t + 1) + i);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = h.snapshot();
        assert_eq!(s.count, 8_000);
        assert!(s.max >= 8_999 && s.max <= 9_008, "max {}", s.max);
    }

    #[test]
    fn small_values_are_exact() {
        let h = LatencyHistogram::with_shards(2);
        for v in [3, 3, 3, 7] {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!((s.p50, s.p99, s.max, s.mean), (3, 7, 7, 4));
    }
}
