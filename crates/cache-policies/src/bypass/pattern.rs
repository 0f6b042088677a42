//! Key patterns with `*` and `?` wildcards: [`PatternBypass`] for string
//! keys, [`DisplayPatternBypass`] for keys that are only `Display`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use cache_core::{Error, ErrorKind, Result};

use super::{BypassOp, BypassRule};

/// The longest pattern accepted, in bytes.
const MAX_PATTERN_BYTES: usize = 1024;

/// How much of an invalid pattern an error message quotes, in characters.
const QUOTED_CHARS: usize = 40;

/// The largest formatted-key buffer kept between calls, in bytes; a key
/// whose text is longer leaves a fresh, empty buffer behind, so one huge key
/// does not pin its memory for the thread's lifetime.
const KEPT_BUFFER_BYTES: usize = 4096;

/// One element of a compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    One,
    /// A character matched as itself.
    Lit(char),
}

/// A pattern compiled to the cheapest form that matches it.
#[derive(Clone, Debug)]
enum Matcher {
    /// No wildcard: the key must equal the text.
    Exact(String),
    /// Literal text then one trailing `*`: the key must start with it.
    Prefix(String),
    /// Anything else, matched token by token.
    General(Box<[Token]>),
}

impl Matcher {
    /// Compiles `pattern`, or says what is wrong with it.
    fn compile(pattern: &str) -> Result<Self, &'static str> {
        if pattern.is_empty() {
            return Err("is empty");
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err("is over 1024 bytes");
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            let token = match c {
                // Consecutive stars match what one does; keeping one keeps
                // backtracking to a single restart point.
                '*' if tokens.last() == Some(&Token::Star) => continue,
                '*' => Token::Star,
                '?' => Token::One,
                '\\' => match chars.next() {
                    Some(escaped) => Token::Lit(escaped),
                    None => return Err("ends in a lone `\\` (write `\\\\` for a backslash)"),
                },
                c => Token::Lit(c),
            };
            tokens.push(token);
        }
        let literal = |tokens: &[Token]| -> Option<String> {
            tokens
                .iter()
                .map(|t| match t {
                    Token::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect()
        };
        Ok(match tokens.split_last() {
            Some((Token::Star, head)) => match literal(head) {
                Some(prefix) => Matcher::Prefix(prefix),
                None => Matcher::General(tokens.into()),
            },
            _ => match literal(&tokens) {
                Some(text) => Matcher::Exact(text),
                None => Matcher::General(tokens.into()),
            },
        })
    }

    /// Whether `text` matches, anchored at both ends.
    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Exact(exact) => text == exact,
            Matcher::Prefix(prefix) => text.starts_with(prefix.as_str()),
            Matcher::General(tokens) => glob(tokens, text),
        }
    }
}

/// The greedy two-pointer wildcard match: on a mismatch, the last `*` seen
/// absorbs one more character and matching resumes after it. Earlier stars
/// never need revisiting (whatever they could absorb, the last one can), so
/// the work is at most the text's length times the pattern's, with no
/// recursion, whatever the pattern.
fn glob(tokens: &[Token], text: &str) -> bool {
    let mut t = 0;
    let mut s = 0;
    // The token after the last star, and where the text resumes when that
    // star absorbs one more character.
    let mut restart: Option<(usize, usize)> = None;
    loop {
        let next = text[s..].chars().next();
        match (tokens.get(t), next) {
            (Some(Token::Star), _) => {
                if t + 1 == tokens.len() {
                    return true;
                }
                t += 1;
                restart = Some((t, s));
                continue;
            }
            (Some(Token::One), Some(c)) => {
                t += 1;
                s += c.len_utf8();
                continue;
            }
            (Some(Token::Lit(want)), Some(c)) if *want == c => {
                t += 1;
                s += c.len_utf8();
                continue;
            }
            (None, None) => return true,
            _ => {}
        }
        let Some((after_star, from)) = restart else {
            return false;
        };
        let Some(c) = text[from..].chars().next() else {
            return false;
        };
        let resume = from + c.len_utf8();
        restart = Some((after_star, resume));
        t = after_star;
        s = resume;
    }
}

/// Which operations a pattern rule answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ops {
    Both,
    Gets,
    Sets,
}

/// Bypasses keys matching any of a list of wildcard patterns.
///
/// Patterns match the whole key: `*` matches any run of characters
/// (including none), `?` exactly one character (a Unicode scalar value,
/// not a byte), and `\` makes the next character literal (`\*` is a star,
/// `\\` a backslash). `user:*` matches `user:1` and `user:`, but not
/// `xuser:1`.
///
/// [`PatternBypass::new`] never fails: invalid patterns (empty, ending in a
/// lone `\`, over 1,024 bytes) and an empty list are reported by
/// [`BypassRule::check`] when the cache is built, and match nothing.
/// Patterns are compiled once; matching takes time linear in the key for
/// each pattern. The rule applies to lookups and writes alike unless
/// narrowed with [`gets_only`](Self::gets_only) or
/// [`sets_only`](Self::sets_only).
///
/// It is a rule for keys that are `AsRef<str>` (`String`, `str`,
/// `Arc<str>`); [`on_display`](Self::on_display) makes one for keys that
/// are only `Display`.
///
/// ```
/// use cache_policies::{BypassOp, BypassRule, PatternBypass};
///
/// let rule = PatternBypass::new(["session:*", "lock:??"]);
/// assert!(BypassRule::<str>::check(&rule).is_ok());
/// assert!(rule.matches("session:abc"));
/// assert!(rule.matches("lock:42"));
/// assert!(!rule.matches("lock:420"));
/// assert!(rule.bypass("session:abc", BypassOp::Get));
/// ```
#[derive(Clone, Debug)]
pub struct PatternBypass {
    matchers: Vec<Matcher>,
    /// What is wrong with each invalid pattern (or the list), in order.
    errors: Vec<String>,
    ops: Ops,
}

impl PatternBypass {
    /// A rule bypassing keys that match any of `patterns`, for lookups and
    /// writes. Never fails; see [`BypassRule::check`] for invalid patterns.
    pub fn new(patterns: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut matchers = Vec::new();
        let mut errors = Vec::new();
        let mut count = 0;
        for (index, pattern) in patterns.into_iter().enumerate() {
            let pattern = pattern.into();
            count += 1;
            match Matcher::compile(&pattern) {
                Ok(matcher) => matchers.push(matcher),
                Err(problem) => errors.push(format!(
                    "bypass pattern {index} ({}) {problem}",
                    quote(&pattern)
                )),
            }
        }
        if count == 0 {
            errors.push("no bypass patterns were given: a pattern rule needs at least one".into());
        }
        PatternBypass {
            matchers,
            errors,
            ops: Ops::Both,
        }
    }

    /// Applies the rule to lookups only; writes of matching keys are cached
    /// as usual. Replaces an earlier [`sets_only`](Self::sets_only).
    pub fn gets_only(mut self) -> Self {
        self.ops = Ops::Gets;
        self
    }

    /// Applies the rule to writes only; lookups of matching keys still look
    /// in the cache. Replaces an earlier [`gets_only`](Self::gets_only).
    pub fn sets_only(mut self) -> Self {
        self.ops = Ops::Sets;
        self
    }

    /// The same rule for keys that are only `Display` (integers, key
    /// structs): each key is formatted, into a buffer reused by the thread,
    /// and the text matched.
    pub fn on_display(self) -> DisplayPatternBypass {
        DisplayPatternBypass { inner: self }
    }

    /// Whether `key` matches any valid pattern, whatever the operation.
    pub fn matches(&self, key: &str) -> bool {
        self.matchers.iter().any(|m| m.matches(key))
    }

    /// Whether the rule answers for `op`.
    fn applies_to(&self, op: BypassOp<'_>) -> bool {
        matches!(
            (self.ops, op),
            (Ops::Both, _) | (Ops::Gets, BypassOp::Get) | (Ops::Sets, BypassOp::Set(_))
        )
    }

    /// [`BypassRule::check`] for both key kinds.
    fn validate(&self) -> Result<()> {
        let Some(first) = self.errors.first() else {
            return Ok(());
        };
        let message = match self.errors.len() - 1 {
            0 => first.clone(),
            more => format!("{first} (and {more} more invalid)"),
        };
        Err(Error::new(ErrorKind::InvalidConfig, message))
    }
}

impl<K: AsRef<str> + ?Sized> BypassRule<K> for PatternBypass {
    fn bypass(&self, key: &K, op: BypassOp<'_>) -> bool {
        self.applies_to(op) && self.matches(key.as_ref())
    }

    fn check(&self) -> Result<()> {
        self.validate()
    }

    fn name(&self) -> &str {
        "pattern"
    }
}

/// A [`PatternBypass`] for keys that are only `Display`, made by
/// [`PatternBypass::on_display`]: the key's text is matched.
///
/// ```
/// use cache_policies::{BypassOp, BypassRule, PatternBypass};
///
/// let rule = PatternBypass::new(["9??"]).on_display();
/// assert!(rule.bypass(&950u64, BypassOp::Get));
/// assert!(!rule.bypass(&95u64, BypassOp::Get));
/// ```
#[derive(Clone, Debug)]
pub struct DisplayPatternBypass {
    inner: PatternBypass,
}

impl<K: fmt::Display + ?Sized> BypassRule<K> for DisplayPatternBypass {
    fn bypass(&self, key: &K, op: BypassOp<'_>) -> bool {
        self.inner.applies_to(op) && with_text(key, |text| self.inner.matches(text))
    }

    fn check(&self) -> Result<()> {
        self.inner.validate()
    }

    fn name(&self) -> &str {
        "pattern"
    }
}

thread_local! {
    /// The buffer keys are formatted into, so matching allocates nothing
    /// once it has grown to the thread's usual key length.
    static KEY_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Calls `f` with `key`'s text; `false` if its `Display` fails.
fn with_text<K: fmt::Display + ?Sized>(key: &K, f: impl Fn(&str) -> bool) -> bool {
    let format = |buf: &mut String| {
        buf.clear();
        write!(buf, "{key}").is_ok() && f(buf)
    };
    let reused = KEY_TEXT.try_with(|cell| {
        // Busy only when a key's own `Display` evaluates a rule.
        let mut buf = cell.try_borrow_mut().ok()?;
        let answer = format(&mut buf);
        if buf.capacity() > KEPT_BUFFER_BYTES {
            *buf = String::new();
        }
        Some(answer)
    });
    match reused {
        Ok(Some(answer)) => answer,
        // The buffer is in use or gone (thread teardown): a fresh one.
        _ => format(&mut String::new()),
    }
}

/// `pattern` quoted for an error message, shortened if long.
fn quote(pattern: &str) -> String {
    match pattern.char_indices().nth(QUOTED_CHARS) {
        None => format!("{pattern:?}"),
        Some((cut, _)) => format!("{:?}…, {} bytes", &pattern[..cut], pattern.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bypass::WriteInfo;

    fn set() -> BypassOp<'static> {
        BypassOp::Set(WriteInfo {
            size: 1,
            class: "default",
        })
    }

    fn matches(pattern: &str, key: &str) -> bool {
        let rule = PatternBypass::new([pattern]);
        BypassRule::<str>::check(&rule).unwrap();
        rule.matches(key)
    }

    #[test]
    fn wildcards_escapes_and_anchoring() {
        let table: &[(&str, &str, bool)] = &[
            // Exact text.
            ("user:1", "user:1", true),
            ("user:1", "user:12", false),
            ("user:1", "user:", false),
            // `*`, including an empty run, anywhere in the pattern.
            ("user:*", "user:1", true),
            ("user:*", "user:", true),
            ("user:*", "xuser:1", false),
            ("*:tmp", "a:b:tmp", true),
            ("*:tmp", "a:b:tmpx", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("a*b*c", "xabc", false),
            ("*", "", true),
            ("*", "anything", true),
            ("**x", "x", true),
            ("a*ab", "aaab", true),
            ("a*ab", "aaba", false),
            // `?`: exactly one character.
            ("lock:??", "lock:42", true),
            ("lock:??", "lock:4", false),
            ("lock:??", "lock:420", false),
            ("?", "", false),
            ("*?", "", false),
            ("*?", "a", true),
            // Escapes.
            (r"a\*b", "a*b", true),
            (r"a\*b", "axb", false),
            (r"a\?", "a?", true),
            (r"a\?", "ab", false),
            (r"a\\b", r"a\b", true),
            (r"\a", "a", true),
            (r"odd\*", "odd*", true),
            (r"odd\*", "odd*x", false),
            // Unicode: `?` is one scalar value, not one byte.
            ("caf?", "café", true),
            ("??", "日本", true),
            ("?", "日本", false),
            ("日*語", "日本語", true),
            ("*é", "résumé", true),
            ("r?sum?", "résumé", true),
        ];
        for &(pattern, key, expected) in table {
            assert_eq!(matches(pattern, key), expected, "{pattern:?} on {key:?}");
        }
    }

    #[test]
    fn any_pattern_of_the_list_matches() {
        let rule = PatternBypass::new(["a:*", "b:?"]);
        assert!(rule.matches("a:long"));
        assert!(rule.matches("b:1"));
        assert!(!rule.matches("b:12"));
        assert!(!rule.matches("c:1"));
    }

    #[test]
    fn invalid_patterns_are_reported_by_check_naming_the_pattern() {
        let long = "x".repeat(MAX_PATTERN_BYTES + 1);
        let quoted_long = format!(
            "({:?}…, 1025 bytes) is over 1024 bytes",
            "x".repeat(QUOTED_CHARS)
        );
        let cases: [(Vec<String>, String); 4] = [
            (vec![], "no bypass patterns".into()),
            (
                vec!["ok:*".into(), String::new()],
                r#"pattern 1 ("") is empty"#.into(),
            ),
            (
                vec![r"trail\".into()],
                r#"("trail\\") ends in a lone"#.into(),
            ),
            (vec![long], quoted_long),
        ];
        for (patterns, expected) in cases {
            let rule = PatternBypass::new(patterns);
            let err = BypassRule::<String>::check(&rule).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
            assert!(err.message().contains(&expected), "{expected}: {err}");
            // The display form reports the same.
            let shown = BypassRule::<u64>::check(&rule.on_display()).unwrap_err();
            assert_eq!(shown.kind(), ErrorKind::InvalidConfig);
            assert_eq!(shown.message(), err.message());
        }
    }

    #[test]
    fn the_longest_pattern_is_valid_and_several_errors_are_counted() {
        let longest = "y".repeat(MAX_PATTERN_BYTES);
        assert!(BypassRule::<str>::check(&PatternBypass::new([longest])).is_ok());

        let rule = PatternBypass::new(["", "ok", r"\"]);
        let err = BypassRule::<str>::check(&rule).unwrap_err();
        assert!(err.message().contains("(and 1 more invalid)"), "{err}");
        // The valid pattern still matches; the invalid ones match nothing.
        assert!(rule.matches("ok"));
        assert!(!rule.matches(""));
        assert!(!rule.matches(r"\"));
    }

    #[test]
    fn pathological_patterns_stay_linear() {
        // Exponential for a naive recursive matcher; the greedy matcher
        // does a few passes over the text.
        let text = "a".repeat(10_000);
        assert!(!matches("a*a*a*a*a*b", &text));
        assert!(matches("a*a*a*a*a*a", &text));
        assert!(!matches("*a*a*a*a*a*a*a*a*a*a*?b", &text));
        let almost = format!("{}b", "a".repeat(9_999));
        assert!(matches("a*a*a*a*a*b", &almost));
    }

    #[test]
    fn gets_only_and_sets_only_narrow_the_ops() {
        let both = PatternBypass::new(["k"]);
        assert!(both.bypass("k", BypassOp::Get) && both.bypass("k", set()));
        assert!(!both.bypass("other", BypassOp::Get));

        let gets = PatternBypass::new(["k"]).gets_only();
        assert!(gets.bypass("k", BypassOp::Get) && !gets.bypass("k", set()));

        let sets = PatternBypass::new(["k"]).sets_only();
        assert!(!sets.bypass("k", BypassOp::Get) && sets.bypass("k", set()));

        let last_wins = PatternBypass::new(["k"]).sets_only().gets_only();
        assert!(last_wins.bypass("k", BypassOp::Get) && !last_wins.bypass("k", set()));
    }

    #[test]
    fn string_like_keys_are_rules() {
        let rule = PatternBypass::new(["user:*"]);
        assert!(rule.bypass(&String::from("user:1"), BypassOp::Get));
        assert!(rule.bypass(&std::sync::Arc::<str>::from("user:2"), BypassOp::Get));
        assert!(!rule.bypass("xuser:1", BypassOp::Get));
        assert_eq!(BypassRule::<str>::name(&rule), "pattern");
    }

    #[test]
    fn on_display_matches_the_text_of_u64_keys() {
        let rule = PatternBypass::new(["42", "9*"]).on_display();
        assert!(rule.bypass(&42u64, BypassOp::Get));
        assert!(rule.bypass(&9u64, set()));
        assert!(rule.bypass(&987_654u64, BypassOp::Get));
        assert!(!rule.bypass(&420u64, BypassOp::Get));
        assert!(!rule.bypass(&19u64, BypassOp::Get));
        assert_eq!(BypassRule::<u64>::name(&rule), "pattern");
        let gets = PatternBypass::new(["1"]).gets_only().on_display();
        assert!(!gets.bypass(&1u64, set()));
    }

    #[test]
    fn on_display_handles_long_and_reentrant_keys() {
        /// A key whose `Display` asks a rule about another key, as a key
        /// type that logs through the cache might.
        struct Nested(DisplayPatternBypass);
        impl fmt::Display for Nested {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let inner = self.0.bypass(&7u64, BypassOp::Get);
                write!(f, "nested:{inner}")
            }
        }
        let inner = PatternBypass::new(["7"]).on_display();
        let outer = PatternBypass::new(["nested:true"]).on_display();
        assert!(outer.bypass(&Nested(inner), BypassOp::Get));

        let long = "z".repeat(KEPT_BUFFER_BYTES * 2);
        let rule = PatternBypass::new(["z*"]).on_display();
        assert!(rule.bypass(&long, BypassOp::Get));
        // The buffer is left small, and later keys still match.
        KEY_TEXT.with(|cell| assert!(cell.borrow().capacity() <= KEPT_BUFFER_BYTES));
        assert!(rule.bypass(&"zz", BypassOp::Get));
    }

    #[test]
    fn a_failing_display_matches_nothing() {
        struct Broken;
        impl fmt::Display for Broken {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                Err(fmt::Error)
            }
        }
        let rule = PatternBypass::new(["*"]).on_display();
        assert!(!rule.bypass(&Broken, BypassOp::Get));
    }
}
