//! Stored entries and lookup results.

use bytes::Bytes;

use crate::meta::{Flags, Meta};

/// A value as stored by a byte-level tier: the encoded bytes and their
/// metadata.
///
/// A negative entry (the key is known to have no value, see
/// [`Flags::NEGATIVE`]) is stored as an ordinary entry whose flags hold
/// [`Flags::NEGATIVE`] and whose value is empty; [`Entry::negative`] builds
/// one. Tiers store and expire it like any other entry, and answer a lookup
/// of it with [`Lookup::Negative`] (through [`Lookup::from_entry`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The encoded (and possibly compressed) value.
    pub value: Bytes,
    /// Expiry, class and flags.
    pub meta: Meta,
}

impl Entry {
    /// An entry from its value and metadata.
    pub fn new(value: impl Into<Bytes>, meta: Meta) -> Self {
        Entry {
            value: value.into(),
            meta,
        }
    }

    /// A negative entry: an empty value with `meta`, its flags marked
    /// [`Flags::NEGATIVE`]. `meta` keeps its expiry, creation time, class and
    /// other flags, so the entry expires with its own time-to-live; only a
    /// compression id is cleared, since there is no value to have compressed.
    pub fn negative(meta: Meta) -> Self {
        let flags = meta.flags.with(Flags::NEGATIVE).with_compression(0);
        Entry {
            value: Bytes::new(),
            meta: meta.flags(flags),
        }
    }

    /// Whether this entry records that the key has no value.
    pub fn is_negative(&self) -> bool {
        self.meta.is_negative()
    }
}

/// The outcome of a lookup. A miss is an answer, not an error.
///
/// A tier answers a stored negative entry with [`Lookup::Negative`] and its
/// stored metadata, never with a [`Lookup::Hit`] whose flags hold
/// [`Flags::NEGATIVE`]: a tier builds its answer from what it stored with
/// [`Lookup::from_entry`], which applies this rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T = Entry> {
    /// The key has a live value.
    Hit(T),
    /// The key has no live value in this tier.
    Miss,
    /// The tier holds a live negative entry: the key is known to have no
    /// value in the system of record until the metadata's expiry. The
    /// metadata is the entry's as stored (expiry, creation time, class and
    /// flags, [`Flags::NEGATIVE`] among them).
    Negative(Meta),
    /// A rule routed the key around the cache; the tier was not consulted.
    Bypassed,
}

impl Lookup {
    /// The answer for a live entry a tier holds: [`Lookup::Negative`] with
    /// its metadata if the entry is negative, otherwise [`Lookup::Hit`].
    ///
    /// Every tier's read path goes through this, so that a negative entry
    /// has one encoding in answers as it has one in storage.
    pub fn from_entry(entry: Entry) -> Self {
        if entry.meta.is_negative() {
            Lookup::Negative(entry.meta)
        } else {
            Lookup::Hit(entry)
        }
    }
}

impl<T> Lookup<T> {
    /// Whether this is a [`Lookup::Hit`]. A negative entry is not a hit.
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
    }

    /// Whether this is a [`Lookup::Negative`].
    pub fn is_negative(&self) -> bool {
        matches!(self, Lookup::Negative(_))
    }

    /// The hit value, if any.
    pub fn into_hit(self) -> Option<T> {
        match self {
            Lookup::Hit(v) => Some(v),
            _ => None,
        }
    }

    /// Applies `f` to a hit value, keeping the other outcomes.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lookup<U> {
        match self {
            Lookup::Hit(v) => Lookup::Hit(f(v)),
            Lookup::Miss => Lookup::Miss,
            Lookup::Negative(m) => Lookup::Negative(m),
            Lookup::Bypassed => Lookup::Bypassed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::DataClass;

    #[test]
    fn a_negative_entry_is_empty_flagged_and_answered_as_negative() {
        let meta = Meta::new(7)
            .expires_at(Some(1_000))
            .class(DataClass::named("user"))
            .flags(Flags::BELOW_MEMORY.with_compression(1));
        let entry = Entry::negative(meta.clone());
        assert!(entry.value.is_empty());
        assert!(entry.is_negative());
        assert_eq!(
            entry.meta,
            meta.clone()
                .flags(Flags::BELOW_MEMORY.with(Flags::NEGATIVE)),
            "the class, expiry and other flags are kept, the compression id cleared"
        );
        let lookup = Lookup::from_entry(entry.clone());
        assert!(lookup.is_negative() && !lookup.is_hit());
        assert_eq!(lookup, Lookup::Negative(entry.meta));

        let value = Entry::new(&b"v"[..], meta);
        assert!(!value.is_negative());
        assert_eq!(Lookup::from_entry(value.clone()), Lookup::Hit(value));
        assert!(!Lookup::<Entry>::Miss.is_negative());
    }
}
