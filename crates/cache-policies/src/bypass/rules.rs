//! [`BypassRules`], the set of rules a cache holds, and [`Skip`], its
//! answer to each operation; with the bypass counters and their metric.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cache_core::{Error, ErrorKind, Result};
use metrics::{Unit, counter, describe_counter};

use super::{BypassOp, BypassRule, BypassScope, WriteInfo};

/// `tiercache_bypassed_total{op}`: counter of operations that bypassed the
/// whole cache, `op` being `get` or `set`.
pub const BYPASSED_TOTAL: &str = "tiercache_bypassed_total";

/// Registers the description and unit of the bypass metric with the
/// installed recorder. Calling it again is harmless.
pub fn describe_bypass_metrics() {
    describe_counter!(
        BYPASSED_TOTAL,
        Unit::Count,
        "Operations that bypassed the whole cache, by op (get or set)."
    );
}

/// The most distinct tier names the rules of one cache can mention (the
/// bits of [`Skip`]'s mask).
const MAX_TIERS: usize = u64::BITS as usize;

/// [`Skip`]'s flag: skip every tier.
const EVERYTHING: u8 = 1;
/// [`Skip`]'s flag: skip the typed hot tier.
const MEMORY: u8 = 2;

/// What one operation skips, as [`BypassRules::on_get`] and
/// [`BypassRules::on_set`] answer it.
///
/// Skipping everything implies skipping each tier: when
/// [`everything`](Self::everything) is true, so are
/// [`memory`](Self::memory), [`tier`](Self::tier) and
/// [`tier_bit`](Self::tier_bit).
#[derive(Clone, Copy)]
pub struct Skip<'a> {
    flags: u8,
    /// Bit `i` skips the tier named `names[i]`.
    tiers: u64,
    names: &'a [String],
}

impl<'a> Skip<'a> {
    /// Nothing is skipped: the operation uses the cache as usual.
    pub const NONE: Skip<'a> = Skip {
        flags: 0,
        tiers: 0,
        names: &[],
    };

    /// Whether the operation bypasses the whole cache: a get goes straight
    /// to the loader or store, a set stores nothing in any tier.
    pub fn everything(&self) -> bool {
        self.flags & EVERYTHING != 0
    }

    /// Whether the operation skips the typed hot tier.
    pub fn memory(&self) -> bool {
        self.flags & (EVERYTHING | MEMORY) != 0
    }

    /// Whether the operation skips the tier below memory named `name` (as
    /// `Backend::name()` gives it). The cache's hot path should resolve the
    /// name once with [`BypassRules::tier_index`] and ask
    /// [`tier_bit`](Self::tier_bit).
    pub fn tier(&self, name: &str) -> bool {
        self.everything()
            || self
                .names
                .iter()
                .position(|n| n == name)
                .is_some_and(|i| self.tier_bit(i))
    }

    /// Whether the operation skips the tier whose index
    /// [`BypassRules::tier_index`] gave.
    pub fn tier_bit(&self, index: usize) -> bool {
        self.everything() || (index < MAX_TIERS && self.tiers & (1 << index) != 0)
    }

    /// Whether the operation skips anything at all.
    pub fn any(&self) -> bool {
        self.flags != 0 || self.tiers != 0
    }

    /// The names of the tiers below memory skipped one by one (not those
    /// skipped by [`everything`](Self::everything)).
    fn named_tiers(&self) -> impl Iterator<Item = &'a str> + '_ {
        let tiers = self.tiers;
        self.names
            .iter()
            .enumerate()
            .filter(move |(i, _)| tiers & (1 << i) != 0)
            .map(|(_, n)| n.as_str())
    }
}

impl Default for Skip<'_> {
    fn default() -> Self {
        Skip::NONE
    }
}

/// Two answers are equal when they skip the same things, whichever rule
/// sets they came from.
impl PartialEq for Skip<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.everything() == other.everything()
            && self.memory() == other.memory()
            && (self.everything() || self.named_tiers().eq(other.named_tiers()))
    }
}

impl Eq for Skip<'_> {}

impl fmt::Debug for Skip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Skip")
            .field("everything", &self.everything())
            .field("memory", &self.memory())
            .field("tiers", &self.named_tiers().collect::<Vec<_>>())
            .finish()
    }
}

/// The bypass counters of a cache since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BypassStats {
    /// Lookups that bypassed the whole cache (a rule scoped
    /// [`BypassScope::Everywhere`] matched).
    pub gets: u64,
    /// Writes that bypassed the whole cache.
    pub sets: u64,
    /// Lookups and writes that skipped some tiers (the hot tier or named
    /// ones) but not the whole cache; one per operation, however many
    /// tiers it skipped.
    pub tier_skips: u64,
}

/// Where a held rule applies, resolved when it is pushed.
#[derive(Clone, Copy, Debug)]
enum Target {
    Everywhere,
    Memory,
    /// The bit of one named tier.
    Tier(u64),
    /// A scope that could not be resolved: the rule is never asked, and
    /// [`BypassRules::check`] reports why.
    Invalid(&'static str),
}

impl Target {
    /// The flags and tier bits a match of a rule with this target sets.
    fn skips(self) -> (u8, u64) {
        match self {
            Target::Everywhere => (EVERYTHING, 0),
            Target::Memory => (MEMORY, 0),
            Target::Tier(bit) => (0, bit),
            Target::Invalid(_) => (0, 0),
        }
    }
}

/// One rule of the set, with where it applies.
struct Held<K: ?Sized> {
    target: Target,
    rule: Arc<dyn BypassRule<K>>,
}

/// The bypass rules a cache holds, each with its [`BypassScope`], and the
/// counters of what they bypassed.
///
/// The cache asks [`on_get`](Self::on_get) and [`on_set`](Self::on_set)
/// on its hot path. Without rules each costs one branch; with rules, the
/// rules are asked in the order they were pushed until the answer is
/// settled (a rule whose scope is already skipped is not asked, and a
/// whole-cache bypass ends the questions). Any matching rule applies.
pub struct BypassRules<K: ?Sized> {
    rules: Vec<Held<K>>,
    /// The distinct tier names the rules mention; a name's index is its bit
    /// in [`Skip`].
    tiers: Vec<String>,
    gets: AtomicU64,
    sets: AtomicU64,
    tier_skips: AtomicU64,
}

impl<K: ?Sized> BypassRules<K> {
    /// A set without rules.
    pub fn new() -> Self {
        BypassRules {
            rules: Vec::new(),
            tiers: Vec::new(),
            gets: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            tier_skips: AtomicU64::new(0),
        }
    }

    /// Adds `rule`, applying where `scope` says. A scope the set cannot
    /// hold (an empty tier name, or more than 64 distinct tier names across
    /// the rules) is reported by [`check`](Self::check).
    pub fn push(&mut self, scope: BypassScope, rule: Arc<dyn BypassRule<K>>) {
        let target = match scope {
            BypassScope::Everywhere => Target::Everywhere,
            BypassScope::Memory => Target::Memory,
            BypassScope::Tier(name) => self.tier_target(name),
        };
        self.rules.push(Held { target, rule });
    }

    /// The target of a rule scoped to the tier `name`, giving the name an
    /// index if it is new.
    fn tier_target(&mut self, name: String) -> Target {
        if name.is_empty() {
            return Target::Invalid("its scope names a tier with an empty name");
        }
        let index = match self.tier_index(&name) {
            Some(index) => index,
            None if self.tiers.len() == MAX_TIERS => {
                return Target::Invalid("its scope names a 65th distinct tier; rules can name 64");
            }
            None => {
                self.tiers.push(name);
                self.tiers.len() - 1
            }
        };
        Target::Tier(1 << index)
    }

    /// Whether the set holds no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The index of the tier `name` among those the rules mention, for
    /// [`Skip::tier_bit`]; `None` if no rule mentions it (no operation then
    /// skips it alone). Resolve each tier once, when the cache is built.
    pub fn tier_index(&self, name: &str) -> Option<usize> {
        self.tiers.iter().position(|n| n == name)
    }

    /// Checks every rule, as the cache does when it is built: the first
    /// error, its message prefixed with the rule's index and name
    /// (`bypass rule 1 (pattern): ...`).
    pub fn check(&self) -> Result<()> {
        for (index, held) in self.rules.iter().enumerate() {
            let prefix = || format!("bypass rule {index} ({})", held.rule.name());
            if let Target::Invalid(problem) = held.target {
                let message = format!("{}: {problem}", prefix());
                return Err(Error::new(ErrorKind::InvalidConfig, message));
            }
            if let Err(err) = held.rule.check() {
                let message = format!("{}: {}", prefix(), err.message());
                let mut prefixed = Error::new(err.kind(), message);
                // The cause cannot be taken out of the error; keeping the
                // whole error as the cause keeps it reachable.
                if std::error::Error::source(&err).is_some() {
                    prefixed = prefixed.with_source(err);
                }
                return Err(prefixed);
            }
        }
        Ok(())
    }

    /// What a lookup of `key` skips; counted when it skips anything.
    #[inline]
    pub fn on_get(&self, key: &K) -> Skip<'_> {
        if self.rules.is_empty() {
            return Skip::NONE;
        }
        self.ask(key, BypassOp::Get, Some(&self.gets))
    }

    /// What a write of `key` (its value described by `info`) skips;
    /// counted when it skips anything.
    #[inline]
    pub fn on_set(&self, key: &K, info: WriteInfo<'_>) -> Skip<'_> {
        if self.rules.is_empty() {
            return Skip::NONE;
        }
        self.ask(key, BypassOp::Set(info), Some(&self.sets))
    }

    /// [`on_set`](Self::on_set) without counting: for a copy the cache
    /// makes of a value already written (a promotion), which must stay out
    /// of the tiers the value's write was kept out of, but is no write of
    /// the application's.
    #[inline]
    pub fn peek_set(&self, key: &K, info: WriteInfo<'_>) -> Skip<'_> {
        if self.rules.is_empty() {
            return Skip::NONE;
        }
        self.ask(key, BypassOp::Set(info), None)
    }

    /// Asks the rules about `op`, counting (unless `bypassed` is `None`) a
    /// whole-cache bypass in `bypassed` and a partial one in the tier skips.
    fn ask(&self, key: &K, op: BypassOp<'_>, bypassed: Option<&AtomicU64>) -> Skip<'_> {
        let mut flags = 0;
        let mut tiers = 0;
        for held in &self.rules {
            let (f, t) = held.target.skips();
            let settled = flags & f == f && tiers & t == t;
            if settled || !held.rule.bypass(key, op) {
                continue;
            }
            flags |= f;
            tiers |= t;
            if flags & EVERYTHING != 0 {
                break;
            }
        }
        let skip = Skip {
            flags,
            tiers,
            names: &self.tiers,
        };
        let Some(bypassed) = bypassed else {
            return skip;
        };
        if skip.everything() {
            bypassed.fetch_add(1, Ordering::Relaxed);
        } else if skip.any() {
            self.tier_skips.fetch_add(1, Ordering::Relaxed);
        }
        skip
    }

    /// The counters since the set was built.
    pub fn stats(&self) -> BypassStats {
        BypassStats {
            gets: self.gets.load(Ordering::Relaxed),
            sets: self.sets.load(Ordering::Relaxed),
            tier_skips: self.tier_skips.load(Ordering::Relaxed),
        }
    }

    /// Writes the whole-cache bypass counters to the installed `metrics`
    /// recorder as [`BYPASSED_TOTAL`], set to their totals (so emitting
    /// twice changes nothing). Tier skips are in [`stats`](Self::stats)
    /// only.
    pub fn emit_metrics(&self) {
        let stats = self.stats();
        counter!(BYPASSED_TOTAL, "op" => "get").absolute(stats.gets);
        counter!(BYPASSED_TOTAL, "op" => "set").absolute(stats.sets);
    }
}

impl<K: ?Sized> Default for BypassRules<K> {
    fn default() -> Self {
        BypassRules::new()
    }
}

impl<K: ?Sized> fmt::Debug for BypassRules<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<_> = self
            .rules
            .iter()
            .map(|held| {
                let scope = match held.target {
                    Target::Everywhere => "everywhere".to_string(),
                    Target::Memory => "memory".to_string(),
                    Target::Tier(bit) => {
                        format!("tier {}", self.tiers[bit.trailing_zeros() as usize])
                    }
                    Target::Invalid(problem) => format!("invalid: {problem}"),
                };
                (held.rule.name().to_string(), scope)
            })
            .collect();
        f.debug_struct("BypassRules")
            .field("rules", &rules)
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    use metrics::{
        Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    };

    use super::*;
    use crate::bypass::{PatternBypass, SizeBypass};

    fn write(size: usize) -> WriteInfo<'static> {
        WriteInfo {
            size,
            class: "default",
        }
    }

    fn key(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn no_rules_skip_nothing_and_count_nothing() {
        let rules: BypassRules<String> = BypassRules::new();
        assert!(rules.is_empty());
        assert!(rules.check().is_ok());
        assert_eq!(rules.on_get(&key("k")), Skip::NONE);
        assert_eq!(rules.on_set(&key("k"), write(1 << 30)), Skip::NONE);
        assert!(!rules.on_get(&key("k")).any());
        assert_eq!(rules.stats(), BypassStats::default());
        assert_eq!(rules.tier_index("redis"), None);
    }

    #[test]
    fn skip_none_skips_nothing() {
        let none = Skip::NONE;
        assert!(!none.any() && !none.everything() && !none.memory());
        assert!(!none.tier("redb") && !none.tier_bit(0) && !none.tier_bit(1000));
        assert_eq!(Skip::default(), Skip::NONE);
    }

    #[test]
    fn an_everywhere_rule_skips_every_tier() {
        let mut rules = BypassRules::new();
        rules.push(
            BypassScope::Tier("redis".into()),
            Arc::new(PatternBypass::new(["x"])),
        );
        rules.push(
            BypassScope::Everywhere,
            Arc::new(PatternBypass::new(["lock:*"])),
        );
        let skip = rules.on_get(&key("lock:1"));
        assert!(skip.everything() && skip.any() && skip.memory());
        assert!(skip.tier("redis") && skip.tier("redb") && skip.tier_bit(5));
        assert_eq!(rules.on_get(&key("user:1")), Skip::NONE);
    }

    #[test]
    fn a_memory_scoped_size_rule_skips_only_the_hot_tier() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(BypassScope::Memory, Arc::new(SizeBypass::over(100)));
        let skip = rules.on_set(&key("k"), write(101));
        assert!(skip.memory() && skip.any());
        assert!(!skip.everything());
        assert!(!skip.tier("redb"));
        assert_eq!(rules.on_set(&key("k"), write(100)), Skip::NONE);
        assert_eq!(rules.on_get(&key("k")), Skip::NONE);
    }

    #[test]
    fn tier_scopes_set_one_bit_per_distinct_name() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(
            BypassScope::Tier("redis".into()),
            Arc::new(SizeBypass::over(10)),
        );
        rules.push(
            BypassScope::Tier("redb".into()),
            Arc::new(PatternBypass::new(["d:*"])),
        );
        rules.push(
            BypassScope::Tier("redis".into()),
            Arc::new(PatternBypass::new(["r:*"])),
        );
        assert!(rules.check().is_ok());
        let redis = rules.tier_index("redis").unwrap();
        let redb = rules.tier_index("redb").unwrap();
        assert_ne!(redis, redb);
        assert_eq!(rules.tier_index("memory"), None);

        let skip = rules.on_get(&key("r:1"));
        assert!(skip.tier("redis") && skip.tier_bit(redis));
        assert!(!skip.tier("redb") && !skip.tier_bit(redb));
        assert!(!skip.memory() && !skip.everything() && skip.any());

        // Any matching rule applies: a large write of a `d:` key skips both.
        let skip = rules.on_set(&key("d:1"), write(11));
        assert!(skip.tier("redis") && skip.tier("redb"));
        assert!(!skip.tier("other") && !skip.memory());
    }

    #[test]
    fn several_rules_any_match_applies() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(
            BypassScope::Everywhere,
            Arc::new(PatternBypass::new(["a:*"])),
        );
        rules.push(
            BypassScope::Everywhere,
            Arc::new(|k: &String, _: BypassOp<'_>| k.ends_with(":tmp")),
        );
        rules.push(BypassScope::Everywhere, Arc::new(SizeBypass::over(1000)));
        assert!(rules.on_get(&key("a:1")).everything());
        assert!(rules.on_get(&key("b:tmp")).everything());
        assert!(rules.on_set(&key("b:1"), write(1001)).everything());
        assert!(!rules.on_get(&key("b:1")).any());
        assert!(!rules.on_set(&key("b:1"), write(1000)).any());
    }

    #[test]
    fn closures_see_the_op_and_settled_answers_ask_no_further() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&asked);
        let mut rules: BypassRules<u64> = BypassRules::new();
        rules.push(
            BypassScope::Everywhere,
            Arc::new(|k: &u64, op: BypassOp<'_>| *k == 1 && matches!(op, BypassOp::Get)),
        );
        rules.push(
            BypassScope::Memory,
            Arc::new(move |_: &u64, _: BypassOp<'_>| {
                counted.fetch_add(1, Ordering::Relaxed);
                true
            }),
        );
        // Key 1's lookup bypasses everything at the first rule.
        assert!(rules.on_get(&1).everything());
        assert_eq!(asked.load(Ordering::Relaxed), 0);
        // Its write is not bypassed by the first, so the second is asked.
        let skip = rules.on_set(&1, write(1));
        assert!(skip.memory() && !skip.everything());
        assert_eq!(asked.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn counters_count_only_matches() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(
            BypassScope::Everywhere,
            Arc::new(PatternBypass::new(["lock:*"])),
        );
        rules.push(BypassScope::Memory, Arc::new(SizeBypass::over(100)));
        rules.push(
            BypassScope::Tier("redis".into()),
            Arc::new(PatternBypass::new(["big:*"])),
        );

        rules.on_get(&key("user:1")); // nothing
        rules.on_set(&key("user:1"), write(10)); // nothing
        rules.on_get(&key("lock:1")); // whole-cache get
        rules.on_get(&key("lock:2")); // whole-cache get
        rules.on_set(&key("lock:1"), write(1)); // whole-cache set
        rules.on_set(&key("user:1"), write(500)); // memory skip
        rules.on_get(&key("big:1")); // redis skip
        rules.on_set(&key("big:1"), write(500)); // memory and redis: one skip
        assert_eq!(
            rules.stats(),
            BypassStats {
                gets: 2,
                sets: 1,
                tier_skips: 3,
            }
        );
    }

    #[test]
    fn check_prefixes_the_first_error_with_the_rule_index_and_name() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(
            BypassScope::Everywhere,
            Arc::new(PatternBypass::new(["ok"])),
        );
        rules.push(BypassScope::Memory, Arc::new(PatternBypass::new([r"bad\"])));
        rules.push(BypassScope::Everywhere, Arc::new(PatternBypass::new([""])));
        let err = rules.check().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(
            err.message()
                .starts_with(r#"bypass rule 1 (pattern): bypass pattern 0 ("bad\\")"#),
            "{err}"
        );
    }

    #[test]
    fn a_rule_error_keeps_its_kind_and_cause() {
        #[derive(Debug)]
        struct Cause;
        impl fmt::Display for Cause {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the cause")
            }
        }
        impl std::error::Error for Cause {}

        struct Custom;
        impl BypassRule<String> for Custom {
            fn bypass(&self, _: &String, _: BypassOp<'_>) -> bool {
                false
            }
            fn check(&self) -> Result<()> {
                Err(Error::new(ErrorKind::InvalidInput, "no good").with_source(Cause))
            }
            fn name(&self) -> &str {
                "custom"
            }
        }
        let mut rules = BypassRules::new();
        rules.push(BypassScope::Everywhere, Arc::new(Custom));
        let err = rules.check().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.message(), "bypass rule 0 (custom): no good");
        assert!(err.to_string().contains("the cause"), "{err}");
    }

    #[test]
    fn unusable_tier_scopes_are_reported_by_check() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(
            BypassScope::Tier(String::new()),
            Arc::new(SizeBypass::over(1)),
        );
        let err = rules.check().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("rule 0 (size)") && err.message().contains("empty name"));
        // The rule is never asked.
        assert_eq!(rules.on_set(&key("k"), write(10)), Skip::NONE);

        let mut rules: BypassRules<String> = BypassRules::new();
        for i in 0..MAX_TIERS {
            rules.push(
                BypassScope::Tier(format!("t{i}")),
                Arc::new(SizeBypass::over(1)),
            );
        }
        // A name already given an index is still fine.
        rules.push(
            BypassScope::Tier("t0".into()),
            Arc::new(SizeBypass::over(1)),
        );
        assert!(rules.check().is_ok());
        let skip = rules.on_set(&key("k"), write(10));
        assert!(skip.tier("t63") && skip.tier_bit(63) && !skip.tier_bit(64));
        rules.push(
            BypassScope::Tier("t64".into()),
            Arc::new(SizeBypass::over(1)),
        );
        let err = rules.check().unwrap_err();
        assert!(err.message().contains("rule 65 (size)") && err.message().contains("65th"));
    }

    #[test]
    fn skips_compare_by_what_they_skip() {
        let mut a: BypassRules<String> = BypassRules::new();
        a.push(
            BypassScope::Tier("redis".into()),
            Arc::new(SizeBypass::over(1)),
        );
        let mut b: BypassRules<String> = BypassRules::new();
        b.push(
            BypassScope::Tier("redb".into()),
            Arc::new(SizeBypass::over(100)),
        );
        b.push(
            BypassScope::Tier("redis".into()),
            Arc::new(SizeBypass::over(1)),
        );
        let small = write(10);
        assert_eq!(a.on_set(&key("k"), small), b.on_set(&key("k"), small));
        assert_ne!(a.on_set(&key("k"), small), Skip::NONE);
        // Rules whose names do not match skip nothing, and equal NONE.
        assert_eq!(b.on_get(&key("k")), Skip::NONE);
        let debug = format!("{:?}", b.on_set(&key("k"), write(1000)));
        assert!(debug.contains(r#"tiers: ["redb", "redis"]"#), "{debug}");
    }

    #[test]
    fn on_display_rules_work_over_u64_keys() {
        let mut rules: BypassRules<u64> = BypassRules::new();
        rules.push(
            BypassScope::Everywhere,
            Arc::new(PatternBypass::new(["9*"]).on_display()),
        );
        assert!(rules.on_get(&90).everything());
        assert!(!rules.on_get(&19).any());
        assert_eq!(rules.stats().gets, 1);
    }

    /// A recorder keeping the last value of each counter, by
    /// `name{k=v,...}`.
    #[derive(Default)]
    struct Capture(Arc<Mutex<BTreeMap<String, u64>>>);

    struct Series(String, Arc<Mutex<BTreeMap<String, u64>>>);

    impl CounterFn for Series {
        fn increment(&self, by: u64) {
            *self.1.lock().unwrap().entry(self.0.clone()).or_default() += by;
        }
        fn absolute(&self, value: u64) {
            self.1.lock().unwrap().insert(self.0.clone(), value);
        }
    }

    impl Recorder for Capture {
        fn describe_counter(&self, name: KeyName, _: Option<Unit>, _: SharedString) {
            self.0
                .lock()
                .unwrap()
                .entry(format!("described {}", name.as_str()))
                .or_default();
        }
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let labels: Vec<_> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            Counter::from_arc(Arc::new(Series(name, Arc::clone(&self.0))))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn metrics_are_the_whole_cache_totals_by_op() {
        let mut rules: BypassRules<String> = BypassRules::new();
        rules.push(BypassScope::Everywhere, Arc::new(PatternBypass::new(["x"])));
        rules.on_get(&key("x"));
        rules.on_get(&key("x"));
        rules.on_set(&key("x"), write(1));
        let capture = Capture::default();
        metrics::with_local_recorder(&capture, || {
            describe_bypass_metrics();
            rules.emit_metrics();
            rules.emit_metrics();
        });
        let values = capture.0.lock().unwrap().clone();
        let expected = BTreeMap::from([
            ("described tiercache_bypassed_total".to_string(), 0),
            ("tiercache_bypassed_total{op=get}".to_string(), 2),
            ("tiercache_bypassed_total{op=set}".to_string(), 1),
        ]);
        assert_eq!(values, expected);
    }
}
