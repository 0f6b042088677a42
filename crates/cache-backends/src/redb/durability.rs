//! When the disk tier's commits reach the disk.

use std::time::Duration;

/// How durable the disk tier's commits are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Every commit is durable when it returns, so an acknowledged write
    /// survives a crash or power loss. The default.
    #[default]
    Immediate,
    /// Commits skip `fsync`, and the writer makes them durable with one
    /// durable commit per period. A crash loses at most the writes of the
    /// last period; the file itself stays consistent.
    Periodic(Duration),
}

impl Durability {
    /// The period between durable commits, `None` when every commit is
    /// durable.
    pub(super) fn period(self) -> Option<Duration> {
        match self {
            Durability::Immediate => None,
            Durability::Periodic(period) => Some(period),
        }
    }
}
