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
    /// The most class names counted separately in
    /// [`by_class`](Self::by_class); the removals of further classes are
    /// counted together under [`OTHER_CLASSES`](Self::OTHER_CLASSES). Class
    /// names come from callers and from records other programs wrote, and
    /// each one becomes a map key and a metric label, so without a cap a
    /// stream of made-up names would grow both without bound. The cap and
    /// the name are those of the per-class request counters in
    /// `cache-analytics`.
    pub const MAX_NAMED_CLASSES: usize = 64;

    /// The class that removals of classes beyond the first
    /// [`MAX_NAMED_CLASSES`](Self::MAX_NAMED_CLASSES) are counted under.
    pub const OTHER_CLASSES: &'static str = "other";

    /// Counts removals of `class`: `evicted` and `expired` of them, in the
    /// totals and in the class's share (or in the share of
    /// [`OTHER_CLASSES`](Self::OTHER_CLASSES) once
    /// [`MAX_NAMED_CLASSES`](Self::MAX_NAMED_CLASSES) others are counted).
    pub fn add(&mut self, class: &str, evicted: u64, expired: u64) {
        self.evicted += evicted;
        self.expired += expired;
        self.add_to_class(class, evicted, expired);
    }

    /// Adds everything `other` counted, keeping the cap on named classes.
    pub fn merge(&mut self, other: &Removals) {
        self.evicted += other.evicted;
        self.expired += other.expired;
        for (class, share) in &other.by_class {
            self.add_to_class(class, share.evicted, share.expired);
        }
    }

    /// Counts removals in the share of `class` alone, not in the totals.
    fn add_to_class(&mut self, class: &str, evicted: u64, expired: u64) {
        // The class is looked up before it is copied: most calls count a
        // class already seen, and need no allocation.
        let share = if let Some(share) = self.by_class.get_mut(class) {
            share
        } else {
            // The shared class does not take a named class's place, so the
            // first sixty-four classes are always the ones named.
            let named =
                self.by_class.len() - usize::from(self.by_class.contains_key(Self::OTHER_CLASSES));
            let class = if named < Self::MAX_NAMED_CLASSES {
                class
            } else {
                Self::OTHER_CLASSES
            };
            self.by_class.entry(class.to_string()).or_default()
        };
        share.evicted += evicted;
        share.expired += expired;
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

    #[test]
    fn classes_past_the_cap_are_counted_as_other() {
        let mut r = Removals::default();
        for i in 0..1000 {
            r.add(&format!("class-{i}"), 1, 2);
        }
        assert_eq!(r.by_class.len(), Removals::MAX_NAMED_CLASSES + 1);
        let other = r.by_class[Removals::OTHER_CLASSES];
        let past = (1000 - Removals::MAX_NAMED_CLASSES) as u64;
        assert_eq!((other.evicted, other.expired), (past, 2 * past));
        assert_eq!((r.evicted, r.expired), (1000, 2000));
        // A class named before the cap was reached keeps its own count.
        r.add("class-3", 1, 0);
        assert_eq!(r.by_class["class-3"].evicted, 2);
        // The totals per class still add up to the totals.
        let sum: u64 = r.by_class.values().map(|c| c.evicted).sum();
        assert_eq!(sum, r.evicted);
    }

    #[test]
    fn merging_keeps_the_cap() {
        let mut a = Removals::default();
        let mut b = Removals::default();
        for i in 0..Removals::MAX_NAMED_CLASSES {
            a.add(&format!("a-{i}"), 1, 0);
            b.add(&format!("b-{i}"), 0, 1);
        }
        a.merge(&b);
        assert_eq!(a.by_class.len(), Removals::MAX_NAMED_CLASSES + 1);
        let other = a.by_class[Removals::OTHER_CLASSES];
        assert_eq!(
            (other.evicted, other.expired),
            (0, Removals::MAX_NAMED_CLASSES as u64)
        );
        // Merging into itself repeatedly never grows the map.
        let c = a.clone();
        a.merge(&c);
        assert_eq!(a.by_class.len(), Removals::MAX_NAMED_CLASSES + 1);
    }

    #[test]
    fn a_class_named_other_shares_the_overflow_count() {
        let mut r = Removals::default();
        r.add(Removals::OTHER_CLASSES, 1, 0);
        for i in 0..Removals::MAX_NAMED_CLASSES {
            r.add(&format!("c-{i}"), 1, 0);
        }
        // The explicit "other" did not use up a named place.
        assert_eq!(r.by_class.len(), Removals::MAX_NAMED_CLASSES + 1);
        r.add("one-too-many", 1, 0);
        assert_eq!(r.by_class[Removals::OTHER_CLASSES].evicted, 2);
    }
}
