//! [`TierStats`] and its parts: the serializable snapshot of one tier's
//! analytics.

use cache_core::Removals;
use serde::{Deserialize, Serialize};

use crate::latency::LatencySummary;
use crate::op::{Op, Outcome};

/// What one tier has done since its [`Analytics`](crate::Analytics) layer
/// was built.
///
/// Counts are exact; latencies are from the sampled calls. The snapshot is
/// not a consistent cut: calls finishing while it is taken may be counted
/// in one part and not yet in another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TierStats {
    /// The tier's label, the `tier` label of its metrics.
    pub tier: String,
    /// Counts and latency of each operation, in the order of [`Op::ALL`].
    pub ops: Vec<OpStats>,
    /// Counts per data class, sorted by class name.
    pub classes: Vec<ClassStats>,
    /// The number of entries the tier holds, when the snapshot asked it
    /// ([`Analytics::stats_with_entries`](crate::Analytics::stats_with_entries)).
    pub entries: Option<u64>,
    /// An estimate of the bytes the tier holds: the entries times the mean
    /// size of the values inserted through the layer. `None` when the
    /// entries were not asked or nothing was inserted yet to size them.
    pub bytes: Option<u64>,
    /// What the tier evicted and expired on its own
    /// ([`Backend::removals`](cache_core::Backend::removals)); `None` when
    /// it cannot tell.
    #[serde(default)]
    pub removals: Option<RemovalStats>,
}

/// Entries a tier removed on its own, in all and per data class.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalStats {
    /// Entries evicted for room.
    pub evicted: u64,
    /// Expired entries deleted.
    pub expired: u64,
    /// The same per class, sorted by class name, for the removals whose
    /// class the tier knew. The sums may fall short of the totals.
    pub classes: Vec<ClassRemovalStats>,
}

/// One class's share of [`RemovalStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassRemovalStats {
    /// The class name (`default` for the default class).
    pub class: String,
    /// Entries of the class evicted for room.
    pub evicted: u64,
    /// Expired entries of the class deleted.
    pub expired: u64,
}

impl From<&Removals> for RemovalStats {
    fn from(r: &Removals) -> Self {
        RemovalStats {
            evicted: r.evicted,
            expired: r.expired,
            classes: r
                .by_class
                .iter()
                .map(|(class, share)| ClassRemovalStats {
                    class: class.clone(),
                    evicted: share.evicted,
                    expired: share.expired,
                })
                .collect(),
        }
    }
}

impl TierStats {
    /// The counts and latency of `op`.
    pub fn op(&self, op: Op) -> &OpStats {
        self.ops
            .iter()
            .find(|s| s.op == op)
            .expect("a snapshot lists every operation")
    }

    /// How many times `op` ended in `outcome` (keys, for the batch
    /// operations).
    pub fn count(&self, op: Op, outcome: Outcome) -> u64 {
        self.op(op).results.get(outcome)
    }

    /// The counts of one data class, by name.
    pub fn class(&self, name: &str) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.class == name)
    }

    /// The share of lookups (`get` and `get_many` keys) that were hits,
    /// negative hits included; `None` before the first lookup. Bypassed
    /// lookups and errors are left out, as the tier answered neither.
    pub fn hit_ratio(&self) -> Option<f64> {
        let (mut hits, mut looked_up) = (0, 0);
        for op in [Op::Get, Op::GetMany] {
            let r = &self.op(op).results;
            hits += r.hit + r.negative;
            looked_up += r.hit + r.negative + r.miss;
        }
        (looked_up > 0).then(|| hits as f64 / looked_up as f64)
    }
}

/// The counts and latency of one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpStats {
    /// The operation.
    pub op: Op,
    /// How its calls (keys, for the batch operations) ended.
    pub results: ResultCounts,
    /// The latency of its sampled calls (whole calls, for the batch
    /// operations).
    pub latency: LatencySummary,
}

/// A count per [`Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultCounts {
    /// [`Outcome::Hit`].
    pub hit: u64,
    /// [`Outcome::Miss`].
    pub miss: u64,
    /// [`Outcome::Negative`].
    pub negative: u64,
    /// [`Outcome::Bypassed`].
    pub bypassed: u64,
    /// [`Outcome::Ok`].
    pub ok: u64,
    /// [`Outcome::Error`].
    pub error: u64,
}

impl ResultCounts {
    /// The count of `outcome`.
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Hit => self.hit,
            Outcome::Miss => self.miss,
            Outcome::Negative => self.negative,
            Outcome::Bypassed => self.bypassed,
            Outcome::Ok => self.ok,
            Outcome::Error => self.error,
        }
    }

    /// The counts of every outcome added up.
    pub fn total(&self) -> u64 {
        Outcome::ALL.iter().map(|&o| self.get(o)).sum()
    }

    pub(crate) fn from_fn(mut count: impl FnMut(Outcome) -> u64) -> Self {
        ResultCounts {
            hit: count(Outcome::Hit),
            miss: count(Outcome::Miss),
            negative: count(Outcome::Negative),
            bypassed: count(Outcome::Bypassed),
            ok: count(Outcome::Ok),
            error: count(Outcome::Error),
        }
    }
}

/// The counts of one data class in one tier.
///
/// Hits, negative hits and inserts carry their entry's class. A miss has no
/// entry, so it is counted under the class the layer's
/// [`classify_misses`](crate::AnalyticsLayer::classify_misses) function
/// names, or under [`UNKNOWN_CLASS`](crate::UNKNOWN_CLASS) without one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class name ([`DataClass::as_str`](cache_core::DataClass::as_str)).
    pub class: String,
    /// Lookups that found a live entry of the class.
    pub hits: u64,
    /// Lookups counted as misses of the class.
    pub misses: u64,
    /// Lookups that found a negative entry of the class.
    pub negatives: u64,
    /// Entries of the class stored.
    pub inserts: u64,
    /// The value bytes of the entries stored, as they came into the layer.
    pub bytes_in: u64,
    /// The value bytes of the hits returned.
    pub bytes_out: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(get: ResultCounts, get_many: ResultCounts) -> TierStats {
        TierStats {
            tier: "t".into(),
            ops: Op::ALL
                .iter()
                .map(|&op| OpStats {
                    op,
                    results: match op {
                        Op::Get => get,
                        Op::GetMany => get_many,
                        _ => ResultCounts::default(),
                    },
                    latency: LatencySummary::default(),
                })
                .collect(),
            classes: Vec::new(),
            entries: None,
            bytes: None,
            removals: None,
        }
    }

    #[test]
    fn hit_ratio_covers_both_lookups_and_skips_errors() {
        let get = ResultCounts {
            hit: 3,
            miss: 1,
            error: 10,
            bypassed: 10,
            ..ResultCounts::default()
        };
        let get_many = ResultCounts {
            negative: 1,
            miss: 3,
            ..ResultCounts::default()
        };
        let s = stats(get, get_many);
        assert_eq!(s.hit_ratio(), Some(0.5));
        assert_eq!(s.count(Op::Get, Outcome::Error), 10);
        assert_eq!(s.op(Op::Get).results.total(), 24);
    }

    #[test]
    fn no_lookups_means_no_ratio() {
        let none = ResultCounts::default();
        assert_eq!(stats(none, none).hit_ratio(), None);
    }

    #[test]
    fn snapshots_round_trip_through_json() {
        let s = stats(
            ResultCounts {
                hit: 1,
                ..ResultCounts::default()
            },
            ResultCounts::default(),
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"op\":\"get_many\""));
        assert_eq!(serde_json::from_str::<TierStats>(&json).unwrap(), s);
    }
}
