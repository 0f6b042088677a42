//! What a [`Compressed`](crate::Compressed) tier did: lock-free counters
//! and their snapshot, [`CompressionStats`].

use std::array;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::DataClass;

use crate::compressor::{Compressor, builtin};

/// The number of algorithm ids the flags can hold (0 to 15).
const IDS: usize = 16;

/// Counters of one algorithm.
#[derive(Debug, Default)]
struct PerAlgorithm {
    values: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    decompressions: AtomicU64,
}

/// What happened to a value on its way into the tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It passed through uncounted: empty, negative, or compressed already.
    Untouched,
    /// Stored as a frame of `stored` bytes in place of `original`.
    Compressed {
        id: u8,
        original: usize,
        stored: usize,
    },
    /// Stored as it came, for this reason.
    Skipped(Skip),
}

/// Why a value was stored as it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Not larger than the threshold.
    TooSmall,
    /// Larger than the most a frame may claim.
    TooLarge,
    /// Its sample did not compress enough.
    Sample,
    /// Compressed in full, it did not save enough.
    NotPaying,
}

/// The live counters of one tier. Every update is a relaxed atomic add:
/// the counters are statistics, read as a whole only by a snapshot that
/// need not be a consistent cut.
#[derive(Debug)]
pub(crate) struct Counters {
    per_algorithm: [PerAlgorithm; IDS],
    names: [&'static str; IDS],
    /// The id the tier compresses with, always listed in snapshots.
    writer: u8,
    too_small: AtomicU64,
    too_large: AtomicU64,
    sample: AtomicU64,
    not_paying: AtomicU64,
    corrupted: AtomicU64,
    /// Given and stored bytes by data class, of every value the layer
    /// judged (compressed or not).
    classes: Mutex<HashMap<DataClass, ClassCompressionStats>>,
}

/// The most data classes counted one by one; later ones share the class
/// named [`OTHER_CLASSES`].
const MAX_CLASSES: usize = 64;

/// The class under which values of classes past the first 64 are counted.
pub const OTHER_CLASSES: &str = "other";

impl Counters {
    /// Counters for a tier that compresses with `writer`.
    pub(crate) fn new(writer: &dyn Compressor) -> Self {
        let mut names: [&'static str; IDS] =
            array::from_fn(|id| builtin(id as u8).map_or("unknown", |c| c.name()));
        names[usize::from(writer.id())] = writer.name();
        Counters {
            per_algorithm: array::from_fn(|_| PerAlgorithm::default()),
            names,
            writer: writer.id(),
            too_small: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            sample: AtomicU64::new(0),
            not_paying: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
            classes: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a value of `class`, `given` bytes long, stored in `stored`.
    pub(crate) fn class(&self, class: &DataClass, given: usize, stored: usize) {
        let mut classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
        let key = if classes.contains_key(class) || classes.len() < MAX_CLASSES {
            class.clone()
        } else {
            DataClass::named(OTHER_CLASSES)
        };
        let entry = classes
            .entry(key)
            .or_insert_with_key(|c| ClassCompressionStats {
                class: c.as_str().to_string(),
                ..ClassCompressionStats::default()
            });
        entry.values += 1;
        entry.bytes_in += given as u64;
        entry.bytes_out += stored as u64;
    }

    fn slot(&self, id: u8) -> &PerAlgorithm {
        &self.per_algorithm[usize::from(id) % IDS]
    }

    /// What happened to one stored value.
    pub(crate) fn record(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Untouched => return,
            Outcome::Compressed {
                id,
                original,
                stored,
            } => {
                let slot = self.slot(id);
                slot.bytes_in.fetch_add(original as u64, Ordering::Relaxed);
                slot.bytes_out.fetch_add(stored as u64, Ordering::Relaxed);
                &slot.values
            }
            Outcome::Skipped(Skip::TooSmall) => &self.too_small,
            Outcome::Skipped(Skip::TooLarge) => &self.too_large,
            Outcome::Skipped(Skip::Sample) => &self.sample,
            Outcome::Skipped(Skip::NotPaying) => &self.not_paying,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame of algorithm `id` decompressed on a read.
    pub(crate) fn decompressed(&self, id: u8) {
        self.slot(id).decompressions.fetch_add(1, Ordering::Relaxed);
    }

    /// A stored frame that could not be decompressed.
    pub(crate) fn corrupted(&self) {
        self.corrupted.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> CompressionStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let algorithms = (1..IDS as u8)
            .map(|id| {
                let slot = self.slot(id);
                AlgorithmStats {
                    id,
                    name: self.names[usize::from(id)],
                    values: load(&slot.values),
                    bytes_in: load(&slot.bytes_in),
                    bytes_out: load(&slot.bytes_out),
                    decompressions: load(&slot.decompressions),
                }
            })
            .filter(|a| a.id == self.writer || a.values > 0 || a.decompressions > 0)
            .collect();
        CompressionStats {
            algorithms,
            skipped_too_small: load(&self.too_small),
            skipped_too_large: load(&self.too_large),
            skipped_by_sample: load(&self.sample),
            skipped_not_paying: load(&self.not_paying),
            corrupted_frames: load(&self.corrupted),
            classes: {
                let classes = self.classes.lock().unwrap_or_else(|e| e.into_inner());
                let mut list: Vec<_> = classes.values().cloned().collect();
                list.sort_by(|a, b| a.class.cmp(&b.class));
                list
            },
        }
    }
}

/// What one algorithm did in a tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgorithmStats {
    /// The algorithm's identifier.
    pub id: u8,
    /// The algorithm's name (`"unknown"` for an id this build does not
    /// know).
    pub name: &'static str,
    /// Values stored compressed.
    pub values: u64,
    /// Their original bytes.
    pub bytes_in: u64,
    /// Their stored bytes, frame headers included.
    pub bytes_out: u64,
    /// Frames decompressed on reads.
    pub decompressions: u64,
}

impl AlgorithmStats {
    /// Stored bytes ÷ original bytes of the values stored compressed:
    /// 0.25 means they take a quarter of their size. 1.0 when nothing was
    /// compressed.
    pub fn ratio(&self) -> f64 {
        if self.bytes_in == 0 {
            1.0
        } else {
            self.bytes_out as f64 / self.bytes_in as f64
        }
    }

    /// Original bytes minus stored bytes.
    pub fn bytes_saved(&self) -> u64 {
        self.bytes_in.saturating_sub(self.bytes_out)
    }
}

/// A snapshot of what a [`Compressed`](crate::Compressed) tier did since it
/// was built.
///
/// Values that were empty, negative entries, and entries that arrived
/// already compressed pass through uncounted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompressionStats {
    /// The algorithm the tier compresses with, and every other algorithm
    /// whose frames it has read, in id order.
    pub algorithms: Vec<AlgorithmStats>,
    /// Values stored uncompressed because they were not larger than the
    /// threshold.
    pub skipped_too_small: u64,
    /// Values stored uncompressed because they were larger than the most
    /// a frame may claim.
    pub skipped_too_large: u64,
    /// Large values stored uncompressed because a sample of them did not
    /// compress enough; the value itself was never compressed.
    pub skipped_by_sample: u64,
    /// Values compressed in full and then stored uncompressed because the
    /// frame did not save enough.
    pub skipped_not_paying: u64,
    /// Stored frames that failed to decompress (truncated, damaged, of an
    /// unknown algorithm, or claiming too much); each was answered as a
    /// miss and deleted.
    pub corrupted_frames: u64,
    /// Given and stored bytes per data class, of every value the layer
    /// judged, compressed or not, by class name.
    pub classes: Vec<ClassCompressionStats>,
}

/// The values of one data class that a [`Compressed`](crate::Compressed)
/// tier judged: compressed, or stored as they were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassCompressionStats {
    /// The class name.
    pub class: String,
    /// Values judged.
    pub values: u64,
    /// Their original bytes.
    pub bytes_in: u64,
    /// Their stored bytes.
    pub bytes_out: u64,
}

impl ClassCompressionStats {
    /// Stored ÷ original bytes, 1.0 when nothing was stored.
    pub fn ratio(&self) -> f64 {
        if self.bytes_in == 0 {
            1.0
        } else {
            self.bytes_out as f64 / self.bytes_in as f64
        }
    }
}

impl CompressionStats {
    /// The figures of the algorithm with identifier `id`, if listed.
    pub fn algorithm(&self, id: u8) -> Option<&AlgorithmStats> {
        self.algorithms.iter().find(|a| a.id == id)
    }

    /// Values stored uncompressed because they did not compress enough,
    /// judged by a sample or in full.
    pub fn skipped_incompressible(&self) -> u64 {
        self.skipped_by_sample + self.skipped_not_paying
    }

    /// Original bytes minus stored bytes, over every algorithm.
    pub fn bytes_saved(&self) -> u64 {
        self.algorithms
            .iter()
            .map(AlgorithmStats::bytes_saved)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gzip, Lz4};

    #[test]
    fn snapshots_list_the_writer_and_what_was_read() {
        let c = Counters::new(&Gzip::default());
        let s = c.snapshot();
        assert_eq!(s.algorithms.len(), 1);
        assert_eq!(s.algorithms[0].name, "gzip");
        assert_eq!(s.algorithms[0].ratio(), 1.0);

        for stored in [250, 150] {
            c.record(Outcome::Compressed {
                id: Gzip::ID,
                original: 1000,
                stored,
            });
        }
        c.decompressed(Lz4::ID);
        c.record(Outcome::Untouched);
        for why in [Skip::Sample, Skip::NotPaying, Skip::TooSmall] {
            c.record(Outcome::Skipped(why));
        }
        c.corrupted();
        let s = c.snapshot();
        let ids: Vec<u8> = s.algorithms.iter().map(|a| a.id).collect();
        assert_eq!(ids, [Lz4::ID, Gzip::ID]);
        let gzip = s.algorithm(Gzip::ID).unwrap();
        assert_eq!((gzip.values, gzip.bytes_in, gzip.bytes_out), (2, 2000, 400));
        assert_eq!(gzip.ratio(), 0.2);
        assert_eq!(s.bytes_saved(), 1600);
        assert_eq!(s.algorithm(Lz4::ID).unwrap().decompressions, 1);
        assert_eq!(s.skipped_incompressible(), 2);
        assert_eq!((s.skipped_too_small, s.skipped_too_large), (1, 0));
        assert_eq!(s.corrupted_frames, 1);
    }

    /// An algorithm of the application's own, under an id of its own.
    #[derive(Debug)]
    struct Custom;
    impl Compressor for Custom {
        fn id(&self) -> u8 {
            9
        }
        fn name(&self) -> &'static str {
            "custom"
        }
        fn compress_block(&self, input: &[u8], out: &mut Vec<u8>) -> cache_core::Result<()> {
            out.extend_from_slice(input);
            Ok(())
        }
        fn decompress_block(&self, block: &[u8], _len: usize) -> cache_core::Result<Vec<u8>> {
            Ok(block.to_vec())
        }
    }

    #[test]
    fn a_custom_writer_is_listed_under_its_own_name() {
        let s = Counters::new(&Custom).snapshot();
        assert_eq!(s.algorithms.len(), 1);
        assert_eq!((s.algorithms[0].id, s.algorithms[0].name), (9, "custom"));
    }
}
