//! What a tier removed on its own: evictions for room and expirations.

use std::collections::BTreeMap;

/// Entries a tier removed on its own since it was opened, in all and per
/// data class: evicted to stay within its bounds, and deleted because they
/// expired. Removals the caller asked for (`remove`, `clear`) are not
/// counted. From [`Backend::removals`](crate::Backend::removals).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removals {
    /// Entries evicted for room.
    pub evicted: u64,
    /// Expired entries deleted.
    pub expired: u64,
    /// The same, per class name, for the removals whose class the tier
    /// read. Their sums may fall short of the totals: a record too damaged
    /// to read its class from is counted only in the totals.
    pub by_class: BTreeMap<String, ClassRemovals>,
}

/// One data class's share of [`Removals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassRemovals {
    /// Entries of the class evicted for room.
    pub evicted: u64,
    /// Expired entries of the class deleted.
    pub expired: u64,
}

impl Removals {
    /// Counts removals of `class`: `evicted` and `expired` of them, in the
    /// totals and in the class's share.
    pub fn add(&mut self, class: &str, evicted: u64, expired: u64) {
        self.evicted += evicted;
        self.expired += expired;
        // The class is looked up before it is copied: most calls count a
        // class already seen, and need no allocation.
        let share = match self.by_class.get_mut(class) {
            Some(share) => share,
            None => self.by_class.entry(class.to_string()).or_default(),
        };
        share.evicted += evicted;
        share.expired += expired;
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: &Removals) {
        self.evicted += other.evicted;
        self.expired += other.expired;
        for (class, share) in &other.by_class {
            let held = self.by_class.entry(class.clone()).or_default();
            held.evicted += share.evicted;
            held.expired += share.expired;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_in_totals_and_per_class() {
        let mut r = Removals::default();
        r.add("sessions", 2, 0);
        r.add("default", 0, 3);
        r.add("sessions", 1, 1);
        let mut other = Removals {
            evicted: 5,
            ..Removals::default()
        };
        other.add("sessions", 0, 4);
        r.merge(&other);
        assert_eq!((r.evicted, r.expired), (8, 8));
        assert_eq!(
            r.by_class["sessions"],
            ClassRemovals {
                evicted: 3,
                expired: 5
            }
        );
        assert_eq!(
            r.by_class["default"],
            ClassRemovals {
                evicted: 0,
                expired: 3
            }
        );
    }
}
