//! The reference figures of `../shared/traces/README.md`: the rows `--all`
//! runs, and the numbers a run is compared against.

use tiercache_benches::PolicyKind;

/// One row of the reference table (hit ratios in %).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    /// The trace file in the traces directory.
    pub(crate) file: &'static str,
    pub(crate) capacity: u64,
    pub(crate) lru: f64,
    pub(crate) opt: f64,
    pub(crate) moka: f64,
    pub(crate) quick_cache: f64,
    pub(crate) foyer_lfu: f64,
    pub(crate) foyer_s3fifo: f64,
    /// "Best of LRU and peers", the README's last column.
    pub(crate) best_peer: f64,
}

impl Reference {
    /// The reference figure for `kind`; tiercache (either variant), ARC,
    /// LIRS and moka (synced) have none.
    pub(crate) fn value(&self, kind: PolicyKind) -> Option<f64> {
        match kind {
            PolicyKind::Tiercache
            | PolicyKind::TiercacheExact
            | PolicyKind::Arc
            | PolicyKind::Lirs
            | PolicyKind::MokaSynced => None,
            PolicyKind::Lru => Some(self.lru),
            PolicyKind::Opt => Some(self.opt),
            PolicyKind::Moka => Some(self.moka),
            PolicyKind::QuickCache => Some(self.quick_cache),
            PolicyKind::FoyerLfu => Some(self.foyer_lfu),
            PolicyKind::FoyerS3Fifo => Some(self.foyer_s3fifo),
        }
    }
}

const fn row(
    file: &'static str,
    capacity: u64,
    [
        lru,
        opt,
        moka,
        quick_cache,
        foyer_lfu,
        foyer_s3fifo,
        best_peer,
    ]: [f64; 7],
) -> Reference {
    Reference {
        file,
        capacity,
        lru,
        opt,
        moka,
        quick_cache,
        foyer_lfu,
        foyer_s3fifo,
        best_peer,
    }
}

/// The table in `../shared/traces/README.md`, in its order. Columns: LRU,
/// OPT, moka 0.12, quick_cache 0.7, foyer-memory 0.22 W-TinyLFU, foyer
/// S3-FIFO, best of LRU and peers.
pub(crate) const REFERENCE: [Reference; 13] = [
    row(
        "OLTP.lis.gz",
        250,
        [16.47, 38.43, 22.82, 19.39, 24.04, 20.38, 24.04],
    ),
    row(
        "OLTP.lis.gz",
        1_000,
        [32.83, 53.61, 35.83, 35.24, 40.29, 39.10, 40.29],
    ),
    row(
        "OLTP.lis.gz",
        2_000,
        [42.47, 60.40, 41.24, 43.75, 46.04, 46.05, 46.05],
    ),
    row(
        "P3.lis.gz",
        16_384,
        [2.07, 18.92, 8.77, 7.05, 5.10, 8.72, 8.77],
    ),
    row(
        "P3.lis.gz",
        131_072,
        [44.79, 67.51, 45.90, 48.72, 43.68, 50.10, 50.10],
    ),
    row(
        "lirs_loop.trace.gz",
        500,
        [0.00, 49.36, 49.25, 48.17, 0.00, 14.13, 49.25],
    ),
    row(
        "lirs_loop.trace.gz",
        1_000,
        [0.00, 98.71, 98.69, 94.61, 45.01, 50.89, 98.69],
    ),
    row(
        "lirs_sprite.trace.gz",
        100,
        [21.58, 50.80, 34.80, 29.93, 27.40, 27.13, 34.80],
    ),
    row(
        "lirs_sprite.trace.gz",
        500,
        [78.30, 87.88, 75.09, 76.54, 70.19, 77.87, 78.30],
    ),
    row(
        "lirs_multi1.trace.gz",
        500,
        [46.51, 58.78, 55.27, 55.75, 50.73, 49.43, 55.75],
    ),
    row(
        "lirs_multi1.trace.gz",
        1_000,
        [48.23, 71.40, 68.50, 67.30, 60.56, 57.38, 68.50],
    ),
    row(
        "scarab-recs.txt.gz",
        25_000,
        [60.13, 74.79, 57.87, 61.58, 60.97, 61.39, 61.58],
    ),
    row(
        "scarab-recs.txt.gz",
        100_000,
        [75.91, 79.25, 70.41, 74.58, 75.42, 75.71, 75.91],
    ),
];

/// The reference row for the trace file named `file` at `capacity`.
pub(crate) fn reference(file: &str, capacity: u64) -> Option<&'static Reference> {
    REFERENCE
        .iter()
        .find(|r| r.file == file && r.capacity == capacity)
}

/// The trace files of the reference table, each once, in table order.
pub(crate) fn reference_traces() -> Vec<&'static str> {
    let mut files: Vec<&'static str> = Vec::new();
    for r in &REFERENCE {
        if !files.contains(&r.file) {
            files.push(r.file);
        }
    }
    files
}

/// The reference table's capacities for `file`.
pub(crate) fn reference_capacities(file: &str) -> Vec<u64> {
    REFERENCE
        .iter()
        .filter(|r| r.file == file)
        .map(|r| r.capacity)
        .collect()
}
