//! Writing snapshots to the `metrics` facade, under the names listed in
//! `docs/metrics.md`.

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use crate::op::{Op, Outcome};
use crate::stats::{RemovalStats, TierStats};

/// `tiercache_requests_total{tier,op,result}`: counter of calls (keys, for
/// batches) by operation and outcome.
pub const REQUESTS_TOTAL: &str = "tiercache_requests_total";
/// `tiercache_latency_seconds{tier,op,quantile}`: gauge of a latency
/// percentile, `quantile` being `0.5`, `0.95`, `0.99` or `1` (the maximum).
pub const LATENCY_SECONDS: &str = "tiercache_latency_seconds";
/// `tiercache_latency_samples_total{tier,op}`: counter of the calls timed.
pub const LATENCY_SAMPLES_TOTAL: &str = "tiercache_latency_samples_total";
/// `tiercache_entries{tier}`: gauge of the entries a tier holds.
pub const ENTRIES: &str = "tiercache_entries";
/// `tiercache_bytes{tier}`: gauge of the estimated bytes a tier holds.
pub const BYTES: &str = "tiercache_bytes";
/// `tiercache_class_requests_total{tier,class,result}`: counter of lookups
/// by data class and outcome (`hit`, `miss` or `negative`).
pub const CLASS_REQUESTS_TOTAL: &str = "tiercache_class_requests_total";
/// `tiercache_class_inserts_total{tier,class}`: counter of entries stored
/// by data class.
pub const CLASS_INSERTS_TOTAL: &str = "tiercache_class_inserts_total";
/// `tiercache_class_bytes_total{tier,class,direction}`: counter of value
/// bytes stored (`direction="in"`) and returned by hits (`"out"`).
pub const CLASS_BYTES_TOTAL: &str = "tiercache_class_bytes_total";
/// `tiercache_removals_total{tier,class,cause}`: counter of the entries a
/// tier removed on its own, `cause` being `evicted` or `expired`.
pub const REMOVALS_TOTAL: &str = "tiercache_removals_total";
/// The `class` label of removals whose class the tier could not read.
const UNKNOWN_REMOVAL_CLASS: &str = "unknown";
/// `tiercache_compression_ratio{class}`: gauge of the stored size over the
/// original size of a class's values.
pub const COMPRESSION_RATIO: &str = "tiercache_compression_ratio";

/// The percentiles written as `tiercache_latency_seconds`, by their
/// `quantile` label.
const QUANTILES: [&str; 4] = ["0.5", "0.95", "0.99", "1"];

/// Registers the description and unit of every metric with the installed
/// recorder, so exporters can print them (Prometheus's `# HELP`). Calling
/// it again is harmless.
pub fn describe_metrics() {
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Calls to a tier (keys, for batches) by operation and result."
    );
    describe_gauge!(
        LATENCY_SECONDS,
        Unit::Seconds,
        "Latency percentile of a tier's operation, from its sampled calls."
    );
    describe_counter!(
        LATENCY_SAMPLES_TOTAL,
        Unit::Count,
        "Calls timed for tiercache_latency_seconds."
    );
    describe_gauge!(ENTRIES, Unit::Count, "Entries a tier holds.");
    describe_gauge!(
        BYTES,
        Unit::Bytes,
        "Estimated bytes a tier holds: entries times the mean value size inserted."
    );
    describe_counter!(
        CLASS_REQUESTS_TOTAL,
        Unit::Count,
        "Lookups of a tier by data class and result."
    );
    describe_counter!(
        CLASS_INSERTS_TOTAL,
        Unit::Count,
        "Entries stored in a tier by data class."
    );
    describe_counter!(
        CLASS_BYTES_TOTAL,
        Unit::Bytes,
        "Value bytes stored (in) and returned (out) by data class."
    );
    describe_counter!(
        REMOVALS_TOTAL,
        Unit::Count,
        "Entries a tier evicted or expired on its own, by data class."
    );
    describe_gauge!(
        COMPRESSION_RATIO,
        "Stored size over original size of a data class's values."
    );
}

/// Writes a tier's snapshot to the installed `metrics` recorder (a no-op
/// without one).
///
/// Counters are set to the snapshot's totals ([`Counter::absolute`]), so
/// emitting the same snapshot twice changes nothing and emitting as often
/// as is convenient (before each scrape, or on a timer) is correct.
/// Counts still at zero are left out, and so are the percentiles of
/// operations never timed.
///
/// Latencies are gauges labelled with a `quantile` rather than a
/// Prometheus histogram: the `metrics` histogram takes raw samples, and the
/// percentiles here come from merged hdrhistograms, so they are written as
/// the values they are.
///
/// [`Counter::absolute`]: metrics::Counter::absolute
pub fn emit_metrics(stats: &TierStats) {
    let tier = stats.tier.clone();
    for op_stats in &stats.ops {
        let op = op_stats.op.as_str();
        for outcome in Outcome::ALL {
            let n = op_stats.results.get(outcome);
            if n > 0 {
                counter!(REQUESTS_TOTAL, "tier" => tier.clone(), "op" => op, "result" => outcome.as_str())
                    .absolute(n);
            }
        }
        emit_latency(&tier, op_stats.op, &op_stats.latency);
    }
    if let Some(entries) = stats.entries {
        gauge!(ENTRIES, "tier" => tier.clone()).set(entries as f64);
    }
    if let Some(bytes) = stats.bytes {
        gauge!(BYTES, "tier" => tier.clone()).set(bytes as f64);
    }
    if let Some(removals) = &stats.removals {
        emit_removals(&tier, removals);
    }
    for class in &stats.classes {
        let name = class.class.clone();
        for (result, n) in [
            (Outcome::Hit, class.hits),
            (Outcome::Miss, class.misses),
            (Outcome::Negative, class.negatives),
        ] {
            if n > 0 {
                counter!(CLASS_REQUESTS_TOTAL, "tier" => tier.clone(), "class" => name.clone(), "result" => result.as_str())
                    .absolute(n);
            }
        }
        if class.inserts > 0 {
            counter!(CLASS_INSERTS_TOTAL, "tier" => tier.clone(), "class" => name.clone())
                .absolute(class.inserts);
        }
        for (direction, n) in [("in", class.bytes_in), ("out", class.bytes_out)] {
            if n > 0 {
                counter!(CLASS_BYTES_TOTAL, "tier" => tier.clone(), "class" => name.clone(), "direction" => direction)
                    .absolute(n);
            }
        }
    }
}

/// Writes `tiercache_removals_total` for each class and cause; what the
/// tier removed without knowing the class goes under `class="unknown"`, so
/// the series of a tier add up to its totals.
fn emit_removals(tier: &str, removals: &RemovalStats) {
    let (mut evicted, mut expired) = (0u64, 0u64);
    let known = removals.classes.iter().map(|c| {
        evicted += c.evicted;
        expired += c.expired;
        (c.class.clone(), c.evicted, c.expired)
    });
    let mut rows: Vec<(String, u64, u64)> = known.collect();
    rows.push((
        UNKNOWN_REMOVAL_CLASS.to_owned(),
        removals.evicted.saturating_sub(evicted),
        removals.expired.saturating_sub(expired),
    ));
    for (class, evicted, expired) in rows {
        for (cause, n) in [("evicted", evicted), ("expired", expired)] {
            if n > 0 {
                counter!(REMOVALS_TOTAL, "tier" => tier.to_owned(), "class" => class.clone(), "cause" => cause)
                    .absolute(n);
            }
        }
    }
}

fn emit_latency(tier: &str, op: Op, latency: &crate::LatencySummary) {
    if latency.count == 0 {
        return;
    }
    let values = [latency.p50, latency.p95, latency.p99, latency.max];
    for (quantile, nanos) in QUANTILES.into_iter().zip(values) {
        gauge!(LATENCY_SECONDS, "tier" => tier.to_owned(), "op" => op.as_str(), "quantile" => quantile)
            .set(nanos as f64 / 1e9);
    }
    counter!(LATENCY_SAMPLES_TOTAL, "tier" => tier.to_owned(), "op" => op.as_str())
        .absolute(latency.count);
}

/// Sets `tiercache_compression_ratio{class}`: the stored size over the
/// original size of `class`'s values (0.25 means they are stored in a
/// quarter of their size).
pub fn set_compression_ratio(class: &str, ratio: f64) {
    gauge!(COMPRESSION_RATIO, "class" => class.to_owned()).set(ratio);
}
