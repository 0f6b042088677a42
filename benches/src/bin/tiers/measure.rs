//! The measuring shared by every part of the `tiers` benchmark: the seeded
//! data, the timed window, per-operation latencies, and the two ways of
//! driving a store concurrently (tasks on the async runtime for the tiers,
//! OS threads for raw redb).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use tiercache::tier::{Backend, Entry, Meta};
use tiercache::{Clock, Lookup};
use tiercache_benches::median;

/// The keys and values every store in one measurement is seeded with.
#[derive(Debug)]
pub(crate) struct Data {
    /// `key:000000000042`: 16 bytes, the same names `redis-benchmark -r`
    /// uses, so both sides of the Redis comparison move keys of one size.
    pub(crate) keys: Vec<Bytes>,
    /// One value per key, `value_size` bytes each.
    pub(crate) values: Vec<Bytes>,
    pub(crate) value_size: usize,
}

impl Data {
    /// `count` keys with random values of `value_size` bytes, from `seed`.
    ///
    /// Every value is a window into one random buffer, starting one byte
    /// after the previous key's: values differ from key to key (and do not
    /// compress) while the whole set costs `value_size + count` bytes of
    /// memory rather than `value_size * count`.
    pub(crate) fn new(count: usize, value_size: usize, seed: u64) -> Data {
        let mut buffer = vec![0u8; value_size + count];
        StdRng::seed_from_u64(seed).fill_bytes(&mut buffer);
        let buffer = Bytes::from(buffer);
        Data {
            keys: (0..count)
                .map(|i| Bytes::from(format!("key:{i:012}")))
                .collect(),
            values: (0..count)
                .map(|i| buffer.slice(i..i + value_size))
                .collect(),
            value_size,
        }
    }

    /// How many keys there are.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// What one measurement found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Figures {
    /// Operations completed in the timed phase, per second, all workers
    /// together.
    pub(crate) ops_per_sec: f64,
    /// The median latency of one operation, microseconds.
    pub(crate) p50_us: f64,
    /// The 99th percentile latency, microseconds.
    pub(crate) p99_us: f64,
    /// Operations timed.
    pub(crate) ops: u64,
    /// Operations that failed or (for reads) missed a seeded key. They
    /// are not counted in the throughput or the latencies.
    pub(crate) failed: u64,
}

/// Which operation a measurement repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// A lookup of a seeded key.
    Get,
    /// An insert that replaces a seeded key's value with the same bytes.
    Insert,
}

/// When the timed phase of a measurement runs: it opens after the
/// warm-up and closes `measure` later.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    /// A window that opens `warmup` from now and lasts `measure`.
    pub(crate) fn after(warmup: Duration, measure: Duration) -> Window {
        let start = Instant::now() + warmup;
        Window {
            start,
            end: start + measure,
        }
    }
}

/// One worker's record of its timed operations.
#[derive(Debug)]
struct Recorder {
    window: Window,
    latencies: Vec<u64>,
    failed: u64,
}

impl Recorder {
    fn new(window: Window) -> Recorder {
        Recorder {
            window,
            latencies: Vec::new(),
            failed: 0,
        }
    }

    /// Notes one operation that ran from `began` to `ended`, and whether
    /// it succeeded. Returns `false` once the window has closed, when the
    /// worker should stop.
    ///
    /// Only operations wholly inside the window count: the ones in flight
    /// as it opens or closes are left out, which loses at most one
    /// operation per worker at each end.
    fn record(&mut self, began: Instant, ended: Instant, ok: bool) -> bool {
        if began >= self.window.start && ended <= self.window.end {
            if ok {
                let nanos = u64::try_from((ended - began).as_nanos()).unwrap_or(u64::MAX);
                self.latencies.push(nanos);
            } else {
                self.failed += 1;
            }
        }
        ended < self.window.end
    }
}

/// Combines the workers' records into one measurement's figures.
fn figures(window: Window, recorders: Vec<Recorder>) -> Figures {
    let failed = recorders.iter().map(|r| r.failed).sum();
    let mut latencies: Vec<u64> = recorders.into_iter().flat_map(|r| r.latencies).collect();
    latencies.sort_unstable();
    let seconds = (window.end - window.start).as_secs_f64();
    Figures {
        ops_per_sec: latencies.len() as f64 / seconds,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        ops: latencies.len() as u64,
        failed,
    }
}

/// The `q` quantile of sorted nanoseconds, in microseconds (nearest rank);
/// NaN when there is nothing.
fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1_000.0
}

/// A small, fast generator of key indexes (xorshift64*). Each worker has
/// its own, seeded from its number, so the sequence of keys is the same in
/// every run and the workers do not contend on a shared generator.
#[derive(Debug)]
pub(crate) struct KeyPicker(u64);

impl KeyPicker {
    /// The generator of worker `worker`.
    pub(crate) fn new(seed: u64, worker: usize) -> KeyPicker {
        // SplitMix64 of the seed and worker: distinct, never zero states.
        let mut z = seed ^ (worker as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        KeyPicker((z ^ (z >> 31)) | 1)
    }

    /// The next index below `n`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // The high bits of the product, scaled into 0..n without a
        // division.
        ((u128::from(x >> 32) * n as u128) >> 32) as usize
    }
}

/// One operation that async workers repeat, given the index of the key to
/// use; it resolves to `true` on success.
pub(crate) trait AsyncOp: Send + Sync + 'static {
    fn call(&self, i: usize) -> impl Future<Output = bool> + Send;
}

/// A tier's get or insert of a seeded key.
pub(crate) struct TierOp<B> {
    pub(crate) tier: Arc<B>,
    pub(crate) data: Arc<Data>,
    pub(crate) op: Op,
    pub(crate) clock: Clock,
}

impl<B: Backend> AsyncOp for TierOp<B> {
    async fn call(&self, i: usize) -> bool {
        let key = &self.data.keys[i];
        match self.op {
            Op::Get => matches!(self.tier.get(key).await, Ok(Lookup::Hit(_))),
            Op::Insert => {
                let meta = Meta::new(self.clock.now_ms());
                let entry = Entry::new(self.data.values[i].clone(), meta);
                self.tier.insert(key.clone(), entry).await.is_ok()
            }
        }
    }
}

/// Runs `op` from `tasks` concurrent tasks on the current runtime until
/// `window` closes, each task picking keys at random among `keys`.
pub(crate) async fn drive_tasks<O: AsyncOp>(
    op: Arc<O>,
    tasks: usize,
    keys: usize,
    seed: u64,
    window: Window,
) -> Figures {
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut picker = KeyPicker::new(seed, task);
                let mut recorder = Recorder::new(window);
                loop {
                    let i = picker.below(keys);
                    let began = Instant::now();
                    let ok = op.call(i).await;
                    if !recorder.record(began, Instant::now(), ok) {
                        return recorder;
                    }
                }
            })
        })
        .collect();
    let mut recorders = Vec::with_capacity(tasks);
    for handle in handles {
        recorders.push(handle.await.expect("a benchmark task panicked"));
    }
    figures(window, recorders)
}

/// Runs `op` (given a key index; `true` on success) from `threads` OS
/// threads until `window` closes, each thread picking keys at random.
pub(crate) fn drive_threads(
    threads: usize,
    keys: usize,
    seed: u64,
    window: Window,
    op: impl Fn(usize) -> bool + Sync,
) -> Figures {
    let recorders = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let op = &op;
                scope.spawn(move || {
                    let mut picker = KeyPicker::new(seed, thread);
                    let mut recorder = Recorder::new(window);
                    loop {
                        let i = picker.below(keys);
                        let began = Instant::now();
                        let ok = op(i);
                        if !recorder.record(began, Instant::now(), ok) {
                            return recorder;
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .collect()
    });
    figures(window, recorders)
}

/// The median of each figure over several runs, taken separately.
pub(crate) fn median_figures(runs: &[Figures]) -> Figures {
    let pick = |f: fn(&Figures) -> f64| median(runs.iter().map(f));
    Figures {
        ops_per_sec: pick(|f| f.ops_per_sec),
        p50_us: pick(|f| f.p50_us),
        p99_us: pick(|f| f.p99_us),
        ops: median(runs.iter().map(|f| f.ops as f64)) as u64,
        failed: runs.iter().map(|f| f.failed).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_seeded_and_sized() {
        let data = Data::new(100, 512, 7);
        assert_eq!(data.len(), 100);
        assert_eq!(data.keys[42], Bytes::from_static(b"key:000000000042"));
        assert!(data.values.iter().all(|v| v.len() == 512));
        assert_ne!(data.values[0], data.values[1]);
        assert_eq!(data.values[3], Data::new(100, 512, 7).values[3]);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        assert_eq!(percentile(&sorted, 0.50), 50.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&[5_000], 0.99), 5.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn key_pickers_stay_in_range_and_differ_by_worker() {
        let mut a = KeyPicker::new(1, 0);
        let mut b = KeyPicker::new(1, 1);
        let xs: Vec<usize> = (0..1_000).map(|_| a.below(10)).collect();
        let ys: Vec<usize> = (0..1_000).map(|_| b.below(10)).collect();
        assert!(xs.iter().chain(&ys).all(|&i| i < 10));
        assert_ne!(xs, ys);
        // Every index turns up: the spread is not stuck on a few keys.
        assert!((0..10).all(|i| xs.contains(&i)));
    }

    #[test]
    fn only_operations_inside_the_window_count() {
        let now = Instant::now();
        let window = Window {
            start: now + Duration::from_millis(10),
            end: now + Duration::from_millis(20),
        };
        let mut r = Recorder::new(window);
        let at = |ms| now + Duration::from_millis(ms);
        assert!(r.record(at(5), at(11), true), "straddles the opening");
        assert!(r.record(at(11), at(12), true));
        assert!(r.record(at(12), at(13), false));
        assert!(!r.record(at(13), at(21), true), "straddles the close");
        assert_eq!(r.latencies, vec![1_000_000]);
        assert_eq!(r.failed, 1);
        let f = figures(window, vec![r]);
        assert_eq!(f.ops, 1);
        assert!((f.ops_per_sec - 100.0).abs() < 1e-9);
    }

    #[test]
    fn medians_are_taken_per_figure() {
        let f = |ops_per_sec, p50_us, p99_us| Figures {
            ops_per_sec,
            p50_us,
            p99_us,
            ops: 1,
            failed: 0,
        };
        let m = median_figures(&[f(3.0, 10.0, 1.0), f(1.0, 30.0, 2.0), f(2.0, 20.0, 3.0)]);
        assert_eq!((m.ops_per_sec, m.p50_us, m.p99_us), (2.0, 20.0, 2.0));
    }
}
