//! How a cache's prefix and an entry's key make one Redis key.
//!
//! Concatenating the two is ambiguous: `"a:" + "b:x"` and `"a:b:" + "x"`
//! are one Redis key, and every key of a cache with prefix `"app:v2:"`
//! also starts with `"app:"`, so a cache with that prefix would count and
//! clear them. So the prefix is followed by a separator that no prefix may
//! contain, the key format's version and the separator again:
//!
//! ```text
//! <prefix> US "v1" US <key>        (US = 0x1F, the ASCII unit separator)
//! ```
//!
//! The prefix ends at the first separator, so a Redis key names exactly
//! one (prefix, key) pair, and the keys of one prefix never start with
//! another prefix's head. The separator and the version contain no `{` or
//! `}`, so they add no hash tag: on a cluster the keys spread over the hash
//! slots as before, unless the prefix or the key holds a tag of its own.
//! A later format changes the version, so keys written under this one are
//! ignored by it (and left to their time-to-live), never misread.

use bytes::Bytes;
use cache_core::{Error, ErrorKind, Result};

/// Ends the prefix; no prefix may contain it.
const SEPARATOR: char = '\u{1f}';
/// The key format's version, between two separators.
const VERSION: &str = "v1";

/// The Redis keys of one cache: its prefix, the separator and the format
/// version (the head), then the entry's key.
#[derive(Debug)]
pub(super) struct KeyFormat {
    head: Bytes,
    /// The `SCAN MATCH` pattern of every key with this head.
    pattern: String,
}

impl KeyFormat {
    /// Rejects a prefix that cannot be delimited: an empty one (whose
    /// `clear` would reach every cache's keys) or one holding the
    /// separator.
    pub(super) fn check_prefix(prefix: &str) -> Result<()> {
        let problem = if prefix.is_empty() {
            "the key prefix must not be empty"
        } else if prefix.contains(SEPARATOR) {
            "the key prefix must not contain the byte 0x1F, which ends it in every Redis key"
        } else {
            return Ok(());
        };
        Err(Error::new(ErrorKind::InvalidConfig, problem))
    }

    /// The format for `prefix`, which [`check_prefix`](Self::check_prefix)
    /// has accepted.
    pub(super) fn new(prefix: &str) -> KeyFormat {
        let head = format!("{prefix}{SEPARATOR}{VERSION}{SEPARATOR}");
        KeyFormat {
            pattern: match_pattern(&head),
            head: Bytes::from(head),
        }
    }

    /// The Redis key of `key`.
    pub(super) fn full_key(&self, key: &[u8]) -> Bytes {
        let mut full = Vec::with_capacity(self.head.len() + key.len());
        full.extend_from_slice(&self.head);
        full.extend_from_slice(key);
        full.into()
    }

    /// Whether a Redis key is one of this cache's.
    pub(super) fn owns(&self, full: &[u8]) -> bool {
        full.starts_with(&self.head)
    }

    /// What every key of this cache starts with.
    pub(super) fn head(&self) -> &Bytes {
        &self.head
    }

    /// The `SCAN MATCH` pattern of this cache's keys.
    pub(super) fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// `head` with the glob characters of `SCAN MATCH` escaped, then `*`.
fn match_pattern(head: &str) -> String {
    let mut pattern = String::with_capacity(head.len() + 1);
    for c in head.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_matched_literally() {
        assert_eq!(KeyFormat::new("app:").pattern(), "app:\u{1f}v1\u{1f}*");
        assert_eq!(
            KeyFormat::new("a*b?[c]\\").pattern(),
            "a\\*b\\?\\[c\\]\\\\\u{1f}v1\u{1f}*"
        );
    }

    #[test]
    fn prefix_and_key_never_alias() {
        let a = KeyFormat::new("a:");
        let ab = KeyFormat::new("a:b:");
        assert_ne!(a.full_key(b"b:x"), ab.full_key(b"x"));
        let app = KeyFormat::new("app:");
        let v2 = KeyFormat::new("app:v2:");
        assert!(!app.owns(&v2.full_key(b"k")));
        assert!(!v2.owns(&app.full_key(b"v2:k")));
        assert!(app.owns(&app.full_key(b"v2:k")));
        // A key written before the format had a version is not ours.
        assert!(!app.owns(b"app:k"));
    }

    #[test]
    fn the_separator_adds_no_hash_tag() {
        let tier = KeyFormat::new("tiercache:");
        let slots: std::collections::HashSet<u16> = (0..64)
            .map(|i| fred::util::redis_keyslot(&tier.full_key(format!("k{i}").as_bytes())))
            .collect();
        assert!(slots.len() > 32, "keys land in {} slots", slots.len());
    }

    #[test]
    fn undelimitable_prefixes_are_rejected() {
        assert!(KeyFormat::check_prefix("app:").is_ok());
        for bad in ["", "a\u{1f}b"] {
            let err = KeyFormat::check_prefix(bad).expect_err("rejected");
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        }
    }
}
