//! Stored entries and lookup results.

use bytes::Bytes;

use crate::meta::Meta;

/// A value as stored by a byte-level tier: the encoded bytes and their
/// metadata.
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
}

/// The outcome of a lookup. A miss is an answer, not an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<T = Entry> {
    /// The key has a live value.
    Hit(T),
    /// The key has no live value in this tier.
    Miss,
    /// The tier holds a negative entry: the key is known to have no value in
    /// the system of record until the metadata's expiry.
    Negative(Meta),
    /// A rule routed the key around the cache; the tier was not consulted.
    Bypassed,
}

impl<T> Lookup<T> {
    /// Whether this is a [`Lookup::Hit`].
    pub fn is_hit(&self) -> bool {
        matches!(self, Lookup::Hit(_))
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
