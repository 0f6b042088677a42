//! [`SizeBypass`]: writes whose values are too large to cache.

use super::{BypassOp, BypassRule};

/// Bypasses writes whose encoded value is larger than a limit, optionally
/// only in one data class. Lookups are never bypassed by size (the size of
/// a value is not known before it is found).
///
/// Held with [`BypassScope::Memory`](super::BypassScope::Memory), it keeps
/// large values out of the hot tier while the tiers below still store
/// them.
///
/// ```
/// use cache_policies::{BypassOp, BypassRule, SizeBypass, WriteInfo};
///
/// let rule = SizeBypass::over(1024).class("blob");
/// let write = |size, class| BypassOp::Set(WriteInfo { size, class });
/// assert!(rule.bypass("k", write(1025, "blob")));
/// assert!(!rule.bypass("k", write(1024, "blob")));
/// assert!(!rule.bypass("k", write(4096, "default")));
/// assert!(!rule.bypass("k", BypassOp::Get));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeBypass {
    over: usize,
    class: Option<String>,
}

impl SizeBypass {
    /// A rule bypassing writes whose encoded size is strictly greater than
    /// `bytes`, in every data class. `over(0)` bypasses every non-empty
    /// value.
    pub fn over(bytes: usize) -> Self {
        SizeBypass {
            over: bytes,
            class: None,
        }
    }

    /// Restricts the rule to the data class `name` (`"default"` for
    /// entries without one).
    pub fn class(mut self, name: impl Into<String>) -> Self {
        self.class = Some(name.into());
        self
    }
}

impl<K: ?Sized> BypassRule<K> for SizeBypass {
    fn bypass(&self, _key: &K, op: BypassOp<'_>) -> bool {
        match op {
            BypassOp::Get => false,
            BypassOp::Set(info) => {
                info.size > self.over && self.class.as_deref().is_none_or(|c| c == info.class)
            }
        }
    }

    fn name(&self) -> &str {
        "size"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bypass::WriteInfo;

    fn write(size: usize, class: &str) -> BypassOp<'_> {
        BypassOp::Set(WriteInfo { size, class })
    }

    #[test]
    fn only_writes_strictly_over_the_limit_bypass() {
        let rule = SizeBypass::over(100);
        assert!(!rule.bypass("k", write(99, "default")));
        assert!(!rule.bypass("k", write(100, "default")));
        assert!(rule.bypass("k", write(101, "default")));
        assert!(rule.bypass("k", write(101, "session")));
        assert!(!rule.bypass("k", BypassOp::Get));
    }

    #[test]
    fn over_zero_is_valid_and_bypasses_every_non_empty_value() {
        let rule = SizeBypass::over(0);
        assert!(BypassRule::<str>::check(&rule).is_ok());
        assert!(!rule.bypass("k", write(0, "default")));
        assert!(rule.bypass("k", write(1, "default")));
    }

    #[test]
    fn a_class_restricts_the_rule() {
        let rule = SizeBypass::over(10).class("blob");
        assert!(rule.bypass("k", write(11, "blob")));
        assert!(!rule.bypass("k", write(10, "blob")));
        assert!(!rule.bypass("k", write(11, "default")));
        assert!(!rule.bypass("k", write(11, "blobs")));

        let default = SizeBypass::over(10).class("default");
        assert!(default.bypass("k", write(11, "default")));
        assert!(!default.bypass("k", write(11, "blob")));
        assert_eq!(BypassRule::<str>::name(&default), "size");
    }
}
