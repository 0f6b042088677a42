//! Warming's and prefetching's metric names, written through the `metrics`
//! facade. Warming is off the hot path, so the warmer writes its counters
//! as it works; the prefetcher's are written when asked
//! ([`Prefetcher::emit_metrics`](crate::Prefetcher::emit_metrics)).

use metrics::{Unit, describe_counter, describe_gauge};

/// `tiercache_warm_entries_total{source, outcome}`: counter of keys a
/// warming run handled, `outcome` being `warmed`, `present`, `missing` or
/// `failed`.
pub const WARM_ENTRIES_TOTAL: &str = "tiercache_warm_entries_total";
/// `tiercache_warm_progress{state}`: gauge of the current (or last)
/// warming run, `state` being `done` or `total` (keys).
pub const WARM_PROGRESS: &str = "tiercache_warm_progress";
/// `tiercache_warm_runs_total{result}`: counter of warming runs, `result`
/// being `completed` or `cancelled`.
pub const WARM_RUNS_TOTAL: &str = "tiercache_warm_runs_total";
/// `tiercache_snapshot_total{op, result}`: counter of snapshot saves and
/// loads (`op` `save` or `load`), `result` being `ok` or `error`.
pub const SNAPSHOT_TOTAL: &str = "tiercache_snapshot_total";
/// `tiercache_snapshot_entries{op}`: gauge of the entries the last save
/// wrote or the last load installed.
pub const SNAPSHOT_ENTRIES: &str = "tiercache_snapshot_entries";
/// `tiercache_prefetch_total{event}`: counter of the prefetcher's work,
/// `event` being `issued` (predictions queued), `warmed`, `present`,
/// `missing`, `failed`, `dropped` (the queue was full), `used` (a read
/// hit a prefetched entry) or `unused` (a prefetched entry forgotten
/// unread).
pub const PREFETCH_TOTAL: &str = "tiercache_prefetch_total";

/// Registers the description and unit of each warming, snapshot and
/// prefetch metric with the installed recorder. Calling it again is
/// harmless.
pub fn describe_warm_metrics() {
    describe_counter!(
        WARM_ENTRIES_TOTAL,
        Unit::Count,
        "Keys handled by warming runs, by source and outcome."
    );
    describe_gauge!(
        WARM_PROGRESS,
        Unit::Count,
        "Keys done and in total in the current or last warming run."
    );
    describe_counter!(
        WARM_RUNS_TOTAL,
        Unit::Count,
        "Warming runs, completed or cancelled."
    );
    describe_counter!(
        SNAPSHOT_TOTAL,
        Unit::Count,
        "Snapshot saves and loads, by result."
    );
    describe_gauge!(
        SNAPSHOT_ENTRIES,
        Unit::Count,
        "Entries written by the last snapshot save or installed by the last load."
    );
    describe_counter!(
        PREFETCH_TOTAL,
        Unit::Count,
        "The prefetcher's predictions and their outcomes."
    );
}
