//! Write-back's metrics, under the names listed in `docs/metrics.md`,
//! written through the `metrics` facade when asked (as the analytics
//! crate's are: nothing is written as writes happen).

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use crate::report::WriteBackStats;

/// `tiercache_write_back_queue`: gauge of the dirty keys waiting for the
/// store.
pub const WRITE_BACK_QUEUE: &str = "tiercache_write_back_queue";
/// `tiercache_write_back_saves_total{op}`: counter of writes applied to
/// the store, `op` being `save` or `delete`.
pub const WRITE_BACK_SAVES_TOTAL: &str = "tiercache_write_back_saves_total";
/// `tiercache_write_back_retries_total`: counter of failed saves scheduled
/// again.
pub const WRITE_BACK_RETRIES_TOTAL: &str = "tiercache_write_back_retries_total";
/// `tiercache_write_back_dead_letters`: gauge of the writes in the
/// dead-letter list.
pub const WRITE_BACK_DEAD_LETTERS: &str = "tiercache_write_back_dead_letters";
/// `tiercache_write_back_dead_lettered_total`: counter of writes moved to
/// the dead-letter list.
pub const WRITE_BACK_DEAD_LETTERED_TOTAL: &str = "tiercache_write_back_dead_lettered_total";
/// `tiercache_write_back_log_total{event}`: counter of the log's work,
/// `event` being `appended` (writes made durable), `commit` (durable
/// commits, each covering one or more writes) or `corrupted` (records set
/// aside on replay).
pub const WRITE_BACK_LOG_TOTAL: &str = "tiercache_write_back_log_total";

/// Registers the description and unit of each write-back metric with the
/// installed recorder. Calling it again is harmless.
pub fn describe_write_back_metrics() {
    describe_gauge!(
        WRITE_BACK_QUEUE,
        Unit::Count,
        "Dirty keys waiting for the store."
    );
    describe_counter!(
        WRITE_BACK_SAVES_TOTAL,
        Unit::Count,
        "Writes applied to the store, by op (save or delete)."
    );
    describe_counter!(
        WRITE_BACK_RETRIES_TOTAL,
        Unit::Count,
        "Failed saves scheduled again."
    );
    describe_gauge!(
        WRITE_BACK_DEAD_LETTERS,
        Unit::Count,
        "Writes in the dead-letter list."
    );
    describe_counter!(
        WRITE_BACK_DEAD_LETTERED_TOTAL,
        Unit::Count,
        "Writes moved to the dead-letter list."
    );
    describe_counter!(
        WRITE_BACK_LOG_TOTAL,
        Unit::Count,
        "The write-back log's work, by event (appended, commit, corrupted)."
    );
}

impl WriteBackStats {
    /// Writes these figures to the installed `metrics` recorder: gauges
    /// set, counters set to the totals (so emitting twice changes
    /// nothing).
    pub fn emit(&self) {
        gauge!(WRITE_BACK_QUEUE).set(self.dirty as f64);
        gauge!(WRITE_BACK_DEAD_LETTERS).set(self.dead_letters as f64);
        counter!(WRITE_BACK_SAVES_TOTAL, "op" => "save").absolute(self.saved);
        counter!(WRITE_BACK_SAVES_TOTAL, "op" => "delete").absolute(self.deleted);
        counter!(WRITE_BACK_RETRIES_TOTAL).absolute(self.retries);
        counter!(WRITE_BACK_DEAD_LETTERED_TOTAL).absolute(self.dead_lettered);
        counter!(WRITE_BACK_LOG_TOTAL, "event" => "appended").absolute(self.appended);
        counter!(WRITE_BACK_LOG_TOTAL, "event" => "commit").absolute(self.log_commits);
        counter!(WRITE_BACK_LOG_TOTAL, "event" => "corrupted").absolute(self.corrupted);
    }
}
