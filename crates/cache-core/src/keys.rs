//! Listing a tier's keys a page at a time: [`KeyCursor`] and [`KeyPage`],
//! what [`Backend::keys`](crate::Backend::keys) takes and answers.

use bytes::Bytes;

/// Where a listing of a tier's keys resumes: opaque to callers, meaningful
/// only to the tier that made it.
///
/// A listing starts at [`KeyCursor::start`] and goes on from each page's
/// [`next`](KeyPage::next). The bytes may be stored and handed back later,
/// even to another handle on the same storage (a reopened file, another
/// process on the same Redis), which is why they are plain bytes rather
/// than a tier-specific type; a tier answers bytes it did not make with an
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyCursor(Bytes);

impl KeyCursor {
    /// The beginning of a listing (no bytes).
    pub fn start() -> Self {
        KeyCursor(Bytes::new())
    }

    /// Whether this is the beginning of a listing.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }

    /// A cursor from bytes a tier made earlier (or, for a tier's own use,
    /// the bytes it encodes its position in). Empty bytes are the start.
    pub fn from_bytes(b: impl Into<Bytes>) -> Self {
        KeyCursor(b.into())
    }

    /// The cursor's bytes, to store it or to hand it back later.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One page of a listing of a tier's keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys of this page, as they were given to `insert` (without any
    /// prefix of the tier's own). A page may hold fewer keys than were
    /// asked for, even none, while the listing goes on.
    pub keys: Vec<Bytes>,
    /// Where the next page starts; `None` when the listing is complete.
    pub next: Option<KeyCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_the_empty_cursor() {
        assert!(KeyCursor::start().is_start());
        assert!(KeyCursor::default().is_start());
        assert_eq!(KeyCursor::from_bytes(Bytes::new()), KeyCursor::start());
        let c = KeyCursor::from_bytes(&b"\x01k"[..]);
        assert!(!c.is_start());
        assert_eq!(c.as_bytes(), b"\x01k");
        assert_eq!(KeyPage::default().next, None);
    }
}
