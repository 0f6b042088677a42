//! Per-entry metadata shared by every tier.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The data class an entry belongs to. Classes carry their own TTL and
/// placement rules; an entry without a named class is in the default class.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum DataClass {
    /// The default class.
    #[default]
    Default,
    /// A class named by the application, such as `"session"`.
    Named(Arc<str>),
}

impl DataClass {
    /// A named class; the name `"default"` maps to [`DataClass::Default`].
    pub fn named(name: &str) -> Self {
        if name == "default" {
            DataClass::Default
        } else {
            DataClass::Named(Arc::from(name))
        }
    }

    /// The class name, `"default"` for the default class.
    pub fn as_str(&self) -> &str {
        match self {
            DataClass::Default => "default",
            DataClass::Named(n) => n,
        }
    }
}

impl fmt::Debug for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataClass({})", self.as_str())
    }
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bit flags stored with an entry.
///
/// The low byte holds boolean flags; bits 8..12 hold the identifier of the
/// compression algorithm applied to the stored bytes (0 = none), which the
/// compression layer assigns.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// No flags set.
    pub const EMPTY: Flags = Flags(0);
    /// The entry records that the key has no value (negative caching).
    ///
    /// A negative entry is stored as an ordinary [`Entry`](crate::Entry)
    /// with this flag and an empty value ([`Entry::negative`](crate::Entry::negative)),
    /// and expires with its own TTL. Every tier answers it with
    /// [`Lookup::Negative`](crate::Lookup::Negative) and the stored metadata,
    /// never as a hit ([`Lookup::from_entry`](crate::Lookup::from_entry)).
    /// It is never compressed.
    pub const NEGATIVE: Flags = Flags(1);
    /// The entry is placed below the hot tier only
    /// ([`Placement::BelowMemory`](crate::Placement::BelowMemory)): a hit in a
    /// lower tier is never promoted into memory.
    pub const BELOW_MEMORY: Flags = Flags(2);
    /// Set with [`NEGATIVE`](Self::NEGATIVE): the entry records that a
    /// recent load of the key failed (an error the cache was told to
    /// remember), not that the key has no value. A fallible load answers it
    /// with an error until it expires; a lookup answers it as any negative
    /// entry.
    pub const FAILED: Flags = Flags(4);
    const COMPRESSION_SHIFT: u16 = 8;
    const COMPRESSION_MASK: u16 = 0x0F << Self::COMPRESSION_SHIFT;

    /// Flags from their stored bits.
    pub const fn from_bits(bits: u16) -> Self {
        Flags(bits)
    }

    /// The stored bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags with `other`'s bits set.
    #[must_use]
    pub const fn with(self, other: Flags) -> Self {
        Flags(self.0 | other.0)
    }

    /// These flags with `other`'s bits cleared.
    #[must_use]
    pub const fn without(self, other: Flags) -> Self {
        Flags(self.0 & !other.0)
    }

    /// The compression algorithm identifier (0 = stored uncompressed).
    pub const fn compression(self) -> u8 {
        ((self.0 & Self::COMPRESSION_MASK) >> Self::COMPRESSION_SHIFT) as u8
    }

    /// These flags with the compression identifier replaced (only the low
    /// four bits of `algorithm` are kept).
    #[must_use]
    pub const fn with_compression(self, algorithm: u8) -> Self {
        let id = ((algorithm as u16) & 0x0F) << Self::COMPRESSION_SHIFT;
        Flags((self.0 & !Self::COMPRESSION_MASK) | id)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Flags {{ negative: {}, below_memory: {}, compression: {} }}",
            self.contains(Flags::NEGATIVE),
            self.contains(Flags::BELOW_MEMORY),
            self.compression()
        )
    }
}

/// Metadata carried by an entry through every tier.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Meta {
    /// Absolute expiry in unix milliseconds; `None` never expires. An entry
    /// is expired once the clock reads this value or later.
    pub expires_at_ms: Option<u64>,
    /// When the value was first written, in unix milliseconds.
    pub created_at_ms: u64,
    /// The entry's data class.
    pub class: DataClass,
    /// Flags such as negative and the compression algorithm.
    pub flags: Flags,
}

impl Meta {
    /// Metadata for a value created at `now_ms` that never expires.
    pub fn new(now_ms: u64) -> Self {
        Meta {
            expires_at_ms: None,
            created_at_ms: now_ms,
            class: DataClass::Default,
            flags: Flags::EMPTY,
        }
    }

    /// Metadata for a value created at `now_ms` that lives for `ttl`.
    pub fn with_ttl(now_ms: u64, ttl: Duration) -> Result<Self> {
        Ok(Meta {
            expires_at_ms: Some(expiry_after(now_ms, ttl)?),
            ..Meta::new(now_ms)
        })
    }

    /// Sets the absolute expiry.
    #[must_use]
    pub fn expires_at(mut self, expires_at_ms: Option<u64>) -> Self {
        self.expires_at_ms = expires_at_ms;
        self
    }

    /// Sets the data class.
    #[must_use]
    pub fn class(mut self, class: DataClass) -> Self {
        self.class = class;
        self
    }

    /// Sets the flags.
    #[must_use]
    pub fn flags(mut self, flags: Flags) -> Self {
        self.flags = flags;
        self
    }

    /// Whether the entry has expired at `now_ms`.
    #[inline]
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The time left before expiry, `None` when it never expires. An expired
    /// entry has zero remaining.
    pub fn remaining_ttl(&self, now_ms: u64) -> Option<Duration> {
        self.expires_at_ms
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms)))
    }

    /// Whether this entry records the absence of a value.
    pub fn is_negative(&self) -> bool {
        self.flags.contains(Flags::NEGATIVE)
    }
}

/// The absolute expiry `ttl` after `now_ms`.
///
/// A zero TTL, a TTL below one millisecond, or one that overflows the clock
/// is an [`ErrorKind::InvalidTtl`] error: each would store an entry that is
/// already expired or never expires, which is never what the caller meant.
pub fn expiry_after(now_ms: u64, ttl: Duration) -> Result<u64> {
    validate_ttl(ttl)?;
    let ms = u64::try_from(ttl.as_millis()).ok();
    ms.and_then(|ms| now_ms.checked_add(ms)).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidTtl,
            format!("time-to-live {ttl:?} overflows the clock"),
        )
    })
}

/// Checks that a TTL is usable: at least one millisecond, and no more than
/// about 292 million years (the range of `u64` milliseconds).
pub fn validate_ttl(ttl: Duration) -> Result<()> {
    if ttl < Duration::from_millis(1) {
        return Err(Error::new(
            ErrorKind::InvalidTtl,
            format!("time-to-live must be at least 1 ms, got {ttl:?}"),
        ));
    }
    if u64::try_from(ttl.as_millis()).is_err() {
        return Err(Error::new(
            ErrorKind::InvalidTtl,
            format!("time-to-live {ttl:?} is too large"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_of_the_deadline() {
        let m = Meta::with_ttl(1_000, Duration::from_millis(500)).unwrap();
        assert_eq!(m.expires_at_ms, Some(1_500));
        assert!(!m.is_expired(1_499));
        assert!(m.is_expired(1_500));
        assert_eq!(m.remaining_ttl(1_200), Some(Duration::from_millis(300)));
        assert_eq!(m.remaining_ttl(2_000), Some(Duration::ZERO));
        assert!(!Meta::new(0).is_expired(u64::MAX));
    }

    #[test]
    fn invalid_ttls_are_rejected() {
        assert_eq!(
            expiry_after(0, Duration::ZERO).unwrap_err().kind(),
            ErrorKind::InvalidTtl
        );
        assert_eq!(
            expiry_after(0, Duration::from_micros(999))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidTtl
        );
        assert_eq!(
            expiry_after(u64::MAX - 1, Duration::from_secs(1))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidTtl
        );
        assert_eq!(
            expiry_after(0, Duration::MAX).unwrap_err().kind(),
            ErrorKind::InvalidTtl
        );
    }

    #[test]
    fn flags_keep_compression_and_booleans_apart() {
        let f = Flags::EMPTY.with(Flags::NEGATIVE).with_compression(3);
        assert!(f.contains(Flags::NEGATIVE));
        assert_eq!(f.compression(), 3);
        let f = f.with_compression(1).without(Flags::NEGATIVE);
        assert!(!f.contains(Flags::NEGATIVE));
        assert_eq!(f.compression(), 1);
        assert_eq!(Flags::from_bits(f.bits()), f);
    }

    #[test]
    fn default_class_name_round_trips() {
        assert_eq!(DataClass::named("default"), DataClass::Default);
        assert_eq!(DataClass::named("session").as_str(), "session");
    }
}
