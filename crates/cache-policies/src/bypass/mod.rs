//! Bypass rules: keys (and, for writes, values) that should not be cached.
//!
//! A *bypass* sends an operation past the cache as if the key were not
//! cacheable: a bypassed lookup goes straight to the loader or the store,
//! and a bypassed write stores nothing. Use one for keys whose values must
//! always be fresh (`lock:*`, `session:*`), for values too large to be
//! worth their memory ([`SizeBypass`]), or for anything a closure can
//! decide from the key and, for writes, the value's size and data class.
//!
//! Each rule is held with a [`BypassScope`] saying where it applies:
//!
//! - [`BypassScope::Everywhere`] (the default) bypasses the whole cache.
//! - [`BypassScope::Memory`] skips only the typed hot tier, so a value too
//!   large for memory still lands in the tiers below it, and a lookup goes
//!   straight to them.
//! - [`BypassScope::Tier`] skips one tier below memory, by its backend
//!   name (`"redb"`, `"redis"`), for example to keep bulky values out of a
//!   shared remote tier while still caching them on local disk.
//!
//! A cache holds its rules in a [`BypassRules`] set and asks it, for each
//! operation, what to [`Skip`]; a set without rules answers
//! [`Skip::NONE`] at the cost of one branch. Applications add rules
//! through the facade (`CacheBuilder::bypass`, `CacheBuilder::bypass_in`).
//!
//! ```
//! use std::sync::Arc;
//! use cache_policies::{BypassRules, BypassScope, PatternBypass, SizeBypass, WriteInfo};
//!
//! let mut rules: BypassRules<String> = BypassRules::new();
//! rules.push(BypassScope::Everywhere, Arc::new(PatternBypass::new(["lock:*"])));
//! rules.push(BypassScope::Memory, Arc::new(SizeBypass::over(64 * 1024)));
//! rules.check()?;
//!
//! assert!(rules.on_get(&"lock:42".to_string()).everything());
//! let big = WriteInfo { size: 1 << 20, class: "default" };
//! let skip = rules.on_set(&"user:1".to_string(), big);
//! assert!(skip.memory() && !skip.everything());
//! # Ok::<(), cache_core::Error>(())
//! ```

mod pattern;
mod rules;
mod size;

pub use pattern::{DisplayPatternBypass, PatternBypass};
pub use rules::{BYPASSED_TOTAL, BypassRules, BypassStats, Skip, describe_bypass_metrics};
pub use size::SizeBypass;

/// What a rule is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BypassOp<'a> {
    /// A lookup (get, or a get_with/get_or_load before it loads).
    Get,
    /// A write: the value's encoded size in bytes and its data class name
    /// (`"default"` for none).
    Set(WriteInfo<'a>),
}

/// What a rule learns about a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteInfo<'a> {
    /// The value's encoded size in bytes.
    pub size: usize,
    /// The entry's data class name, `"default"` for an entry without one.
    pub class: &'a str,
}

/// A rule deciding that a key (and for writes its value) bypasses the
/// cache.
///
/// Rules run on the cache's hot path, for every operation while the cache
/// holds any: keep them cheap and free of blocking work.
pub trait BypassRule<K: ?Sized>: Send + Sync {
    /// Whether `key` bypasses, for `op`.
    fn bypass(&self, key: &K, op: BypassOp<'_>) -> bool;

    /// Checked once when the cache is built: an invalid rule (a malformed
    /// pattern) is an error of kind [`cache_core::ErrorKind::InvalidConfig`]
    /// with a message naming what is wrong. Default: `Ok`.
    fn check(&self) -> cache_core::Result<()> {
        Ok(())
    }

    /// A short name for reports (default `"rule"`).
    fn name(&self) -> &str {
        "rule"
    }
}

/// Closures are rules: `|key: &K, op: BypassOp<'_>| -> bool`.
impl<K, F> BypassRule<K> for F
where
    K: ?Sized,
    F: Fn(&K, BypassOp<'_>) -> bool + Send + Sync + 'static,
{
    fn bypass(&self, key: &K, op: BypassOp<'_>) -> bool {
        self(key, op)
    }
}

/// Where a rule applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum BypassScope {
    /// The whole cache: a bypassed get skips every tier and goes straight
    /// to the loader or store; a bypassed set stores nothing in any tier.
    #[default]
    Everywhere,
    /// The typed hot tier only: a bypassed set skips the hot tier but
    /// still goes to the tiers below; a bypassed get skips looking in the
    /// hot tier.
    Memory,
    /// One tier below memory, by its name as `Backend::name()` gives it
    /// (`"redb"`, `"redis"`).
    Tier(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_rule<K: ?Sized, R: BypassRule<K>>(_: &R) {}

    #[test]
    fn closures_are_rules_with_default_check_and_name() {
        let rule = |key: &u64, op: BypassOp<'_>| *key == 7 && op == BypassOp::Get;
        is_rule::<u64, _>(&rule);
        assert!(rule.bypass(&7, BypassOp::Get));
        assert!(!rule.bypass(&8, BypassOp::Get));
        let write = BypassOp::Set(WriteInfo {
            size: 1,
            class: "default",
        });
        assert!(!rule.bypass(&7, write));
        assert!(BypassRule::<u64>::check(&rule).is_ok());
        assert_eq!(BypassRule::<u64>::name(&rule), "rule");
    }

    #[test]
    fn closures_see_the_write_size_and_class() {
        let rule = |_: &str, op: BypassOp<'_>| matches!(op, BypassOp::Set(info) if info.class == "blob" && info.size > 10);
        let blob = |size| {
            BypassOp::Set(WriteInfo {
                size,
                class: "blob",
            })
        };
        assert!(rule.bypass("k", blob(11)));
        assert!(!rule.bypass("k", blob(10)));
        let other = BypassOp::Set(WriteInfo {
            size: 11,
            class: "default",
        });
        assert!(!rule.bypass("k", other));
    }

    #[test]
    fn the_default_scope_is_everywhere() {
        assert_eq!(BypassScope::default(), BypassScope::Everywhere);
    }
}
