//! [`Op`] and [`Outcome`]: what the analytics layer counts.

use serde::{Deserialize, Serialize};

/// A [`Backend`](cache_core::Backend) operation, as counted and timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `get`.
    Get,
    /// `insert`.
    Insert,
    /// `remove`.
    Remove,
    /// `contains`.
    Contains,
    /// `clear`.
    Clear,
    /// `len`.
    Len,
    /// `get_many`.
    GetMany,
    /// `insert_many`.
    InsertMany,
}

impl Op {
    /// Every operation, in the order snapshots list them.
    pub const ALL: [Op; 8] = [
        Op::Get,
        Op::Insert,
        Op::Remove,
        Op::Contains,
        Op::Clear,
        Op::Len,
        Op::GetMany,
        Op::InsertMany,
    ];

    /// The number of operations.
    pub(crate) const COUNT: usize = Op::ALL.len();

    /// The name used as the `op` metric label, such as `"get_many"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Insert => "insert",
            Op::Remove => "remove",
            Op::Contains => "contains",
            Op::Clear => "clear",
            Op::Len => "len",
            Op::GetMany => "get_many",
            Op::InsertMany => "insert_many",
        }
    }

    /// The operation's position in [`Op::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What an operation answered, as counted.
///
/// Lookups (`get`, `get_many`) end in [`Hit`](Outcome::Hit),
/// [`Miss`](Outcome::Miss), [`Negative`](Outcome::Negative) or
/// [`Bypassed`](Outcome::Bypassed), the four answers of a
/// [`Lookup`](cache_core::Lookup): a negative entry is counted as
/// [`Negative`](Outcome::Negative), as every tier answers it with
/// `Lookup::Negative`, never as a hit. `contains` and `remove` answer a yes
/// or a no, counted as a hit or a miss: `contains` is a miss for a negative
/// entry (it holds no value), `remove` a hit (it removed an entry). The other
/// operations succeed with [`Ok`](Outcome::Ok). Any operation may fail with
/// [`Error`](Outcome::Error).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A live entry was found.
    Hit,
    /// No live entry was found.
    Miss,
    /// A negative entry was found.
    Negative,
    /// A rule routed the key around the tier.
    Bypassed,
    /// The operation succeeded (for operations without a hit or a miss).
    Ok,
    /// The operation failed.
    Error,
}

impl Outcome {
    /// Every outcome, in the order snapshots list them.
    pub const ALL: [Outcome; 6] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Negative,
        Outcome::Bypassed,
        Outcome::Ok,
        Outcome::Error,
    ];

    /// The number of outcomes.
    pub(crate) const COUNT: usize = Outcome::ALL.len();

    /// The name used as the `result` metric label, such as `"hit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Negative => "negative",
            Outcome::Bypassed => "bypassed",
            Outcome::Ok => "ok",
            Outcome::Error => "error",
        }
    }

    /// The outcome's position in [`Outcome::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_the_listed_order() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
        }
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(outcome.index(), i);
        }
    }

    #[test]
    fn serialized_names_are_the_metric_labels() {
        for op in Op::ALL {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
        }
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(&outcome).unwrap();
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
    }
}
