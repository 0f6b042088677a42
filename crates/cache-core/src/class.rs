//! Data classes: named kinds of entries, each with its own time-to-live and
//! the tiers it may live in.

use std::collections::HashMap;
use std::time::Duration;

use crate::error::Result;
use crate::meta::{DataClass, validate_ttl};

/// Which tiers an entry may live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Placement {
    /// The hot tier and every tier below it (the default).
    #[default]
    Everywhere,
    /// The hot, in-memory tier only: never written to, demoted to or
    /// promoted from a lower tier. For data that must not outlive the
    /// process or leave it, such as sessions.
    MemoryOnly,
    /// The tiers below the hot one only (disk, Redis, ...): a hit there is
    /// never promoted into memory. For large values read rarely enough
    /// that they should not take room in memory.
    BelowMemory,
}

impl Placement {
    /// Whether the hot tier may hold the entry.
    pub fn in_memory(self) -> bool {
        self != Placement::BelowMemory
    }

    /// Whether the tiers below the hot one may hold the entry.
    pub fn below_memory(self) -> bool {
        self != Placement::MemoryOnly
    }
}

/// What a data class sets for its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClassPolicy {
    /// How long its entries live; `None` falls back to the cache's
    /// time-to-live.
    pub time_to_live: Option<Duration>,
    /// The tiers its entries may live in.
    pub placement: Placement,
}

impl ClassPolicy {
    /// A class whose entries live `ttl` in every tier.
    pub fn with_ttl(ttl: Duration) -> Self {
        ClassPolicy {
            time_to_live: Some(ttl),
            placement: Placement::Everywhere,
        }
    }

    /// This policy with another placement.
    #[must_use]
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

/// The classes a cache knows, by name, and the default class's policy.
///
/// An entry read from a lower tier may carry a class this process never
/// registered (another process wrote it); it gets the default policy.
#[derive(Clone, Debug, Default)]
pub struct Classes {
    default: ClassPolicy,
    named: HashMap<DataClass, ClassPolicy>,
}

impl Classes {
    /// Sets the policy of `class` (the default class included), after
    /// checking its time-to-live.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidTtl`](crate::ErrorKind::InvalidTtl) for a
    /// time-to-live under a millisecond or beyond the clock's range.
    pub fn set(&mut self, class: DataClass, policy: ClassPolicy) -> Result<()> {
        if let Some(ttl) = policy.time_to_live {
            validate_ttl(ttl)?;
        }
        match class {
            DataClass::Default => self.default = policy,
            named => {
                self.named.insert(named, policy);
            }
        }
        Ok(())
    }

    /// The policy of `class`: its own if registered, else the default's.
    pub fn policy(&self, class: &DataClass) -> ClassPolicy {
        match class {
            DataClass::Default => self.default,
            named => self.named.get(named).copied().unwrap_or(self.default),
        }
    }

    /// Whether `class` was registered by name.
    pub fn is_registered(&self, class: &DataClass) -> bool {
        matches!(class, DataClass::Default) || self.named.contains_key(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn unknown_classes_take_the_default_policy() {
        let mut classes = Classes::default();
        let session =
            ClassPolicy::with_ttl(Duration::from_secs(300)).placement(Placement::MemoryOnly);
        classes.set(DataClass::named("session"), session).unwrap();
        classes
            .set(
                DataClass::Default,
                ClassPolicy::with_ttl(Duration::from_secs(60)),
            )
            .unwrap();
        assert_eq!(classes.policy(&DataClass::named("session")), session);
        assert_eq!(
            classes.policy(&DataClass::named("other")).time_to_live,
            Some(Duration::from_secs(60))
        );
        assert!(classes.is_registered(&DataClass::named("session")));
        assert!(!classes.is_registered(&DataClass::named("other")));
        let err = classes
            .set(
                DataClass::named("bad"),
                ClassPolicy::with_ttl(Duration::ZERO),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidTtl);
        assert!(!classes.is_registered(&DataClass::named("bad")));
    }

    #[test]
    fn placements_say_where_entries_may_live() {
        assert!(Placement::Everywhere.in_memory() && Placement::Everywhere.below_memory());
        assert!(Placement::MemoryOnly.in_memory() && !Placement::MemoryOnly.below_memory());
        assert!(!Placement::BelowMemory.in_memory() && Placement::BelowMemory.below_memory());
    }
}
