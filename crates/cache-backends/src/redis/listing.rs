//! Listing the cache's keys with `SCAN`, a page at a time, for
//! [`Backend::keys`](cache_core::Backend::keys).
//!
//! Each primary's keyspace is walked with `SCAN ... MATCH <head>*` (the
//! head's glob characters escaped), one primary after another in the
//! order of their addresses. `SCAN`'s `COUNT` is only a hint: a call may
//! return more keys than a page may hold. Those keys travel in the cursor,
//! and the next page starts with them, so a page never exceeds its limit
//! and no key is lost between pages. The cursor therefore holds:
//!
//! ```text
//! 'R'                         tag
//! u16 len, bytes              the address of the primary being walked
//! u64                         its SCAN cursor
//! u8                          1 once its SCAN has come back to 0
//! u32 count, (u32 len, bytes) the keys SCAN returned that no page has yet
//! ```
//!
//! all integers big-endian. A cursor names its primary by address, not
//! by position, so a refreshed slot map that lists the same primaries in
//! another order changes nothing.

use std::collections::VecDeque;

use bytes::{Buf, Bytes};
use cache_core::{Error, ErrorKind, KeyCursor, KeyPage, Result};

use super::count;
use super::keys::KeyFormat;
use super::routing::Routing;

/// The first byte of this tier's cursors.
const CURSOR_TAG: u8 = b'R';
/// The most `SCAN` calls one page makes. A primary whose keyspace is
/// mostly other programs' keys may answer many calls with none of ours; a
/// page stops there (possibly empty, the listing not over) rather than
/// hold its caller for a walk of the whole keyspace.
const MAX_SCANS: usize = 32;
/// The least and most `COUNT` asked of one `SCAN`: enough for a call to
/// find something when few keys match, few enough that the keys a page
/// cannot take (carried in the cursor) stay few.
const MIN_COUNT: usize = 10;
const MAX_COUNT: usize = 1_000;

/// Where a listing stands.
#[derive(Debug, PartialEq, Eq)]
struct Position {
    /// The address (`Node::label`) of the primary being walked.
    node: String,
    /// Its `SCAN` cursor.
    scan: u64,
    /// Whether its `SCAN` has come back to 0: only `pending` is left of it.
    finished: bool,
    /// Keys (without the head) `SCAN` returned that no page has held yet.
    pending: VecDeque<Bytes>,
}

impl Position {
    /// The start of the walk of the primary at `node`.
    fn start(node: &str) -> Self {
        Position {
            node: node.to_owned(),
            scan: 0,
            finished: false,
            pending: VecDeque::new(),
        }
    }

    fn encode(&self) -> KeyCursor {
        let pending: usize = self.pending.iter().map(|k| 4 + k.len()).sum();
        let mut out = Vec::with_capacity(1 + 2 + self.node.len() + 8 + 1 + 4 + pending);
        out.push(CURSOR_TAG);
        // An address is a host and a port; a sentinel's label adds a
        // service name. None comes near 64 KiB.
        let node = &self.node.as_bytes()[..self.node.len().min(usize::from(u16::MAX))];
        out.extend_from_slice(&(node.len() as u16).to_be_bytes());
        out.extend_from_slice(node);
        out.extend_from_slice(&self.scan.to_be_bytes());
        out.push(u8::from(self.finished));
        // Keys are bounded by the tier's key limit and a page's worth of
        // them by one SCAN reply, far below 4 GiB.
        out.extend_from_slice(&(self.pending.len() as u32).to_be_bytes());
        for key in &self.pending {
            out.extend_from_slice(&(key.len() as u32).to_be_bytes());
            out.extend_from_slice(key);
        }
        KeyCursor::from_bytes(out)
    }

    /// The position a cursor names; `None` for the start.
    fn decode(cursor: &KeyCursor) -> Result<Option<Position>> {
        if cursor.is_start() {
            return Ok(None);
        }
        Self::parse(Bytes::copy_from_slice(cursor.as_bytes()))
            .map(Some)
            .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "not a key cursor of a Redis tier"))
    }

    fn parse(mut b: Bytes) -> Option<Position> {
        if b.try_get_u8().ok()? != CURSOR_TAG {
            return None;
        }
        let len = usize::from(b.try_get_u16().ok()?);
        let node = String::from_utf8(take(&mut b, len)?.to_vec()).ok()?;
        let scan = b.try_get_u64().ok()?;
        let finished = match b.try_get_u8().ok()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let count = b.try_get_u32().ok()? as usize;
        // Each key takes at least its four length bytes, so a count the
        // bytes cannot hold is refused before anything is allocated for it.
        if count > b.remaining() / 4 {
            return None;
        }
        let mut pending = VecDeque::with_capacity(count);
        for _ in 0..count {
            let len = b.try_get_u32().ok()? as usize;
            pending.push_back(take(&mut b, len)?);
        }
        b.is_empty().then_some(Position {
            node,
            scan,
            finished,
            pending,
        })
    }
}

/// The next `len` bytes of `b`, if it holds that many.
fn take(b: &mut Bytes, len: usize) -> Option<Bytes> {
    (len <= b.len()).then(|| b.split_to(len))
}

/// Up to `limit` (at least one) of this cache's keys from `from` on, the
/// head stripped.
pub(super) async fn page(
    routing: &Routing,
    format: &KeyFormat,
    from: &KeyCursor,
    limit: usize,
) -> Result<KeyPage> {
    let limit = limit.max(1);
    let resumed = Position::decode(from)?;
    let mut primaries = routing.primaries()?;
    primaries.sort_by(|a, b| a.label().cmp(b.label()));
    let mut at = match resumed {
        Some(at) => at,
        None => match primaries.first() {
            Some(first) => Position::start(first.label()),
            None => return Ok(KeyPage::default()),
        },
    };
    // A primary that has gone (a failover, or a node removed) took the
    // state of its SCAN with it, and its keys now live where this walk
    // cannot tell which were listed: starting again is the only way to
    // list every key. A single server that is not the one named was never
    // walked by this listing: the cursor is another tier's.
    let mut index = primaries
        .iter()
        .position(|n| n.label() == at.node)
        .ok_or_else(|| match routing {
            Routing::Single(node) => Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "this key cursor was made for the Redis server {}, not {}",
                    at.node,
                    node.label()
                ),
            ),
            Routing::Cluster(_) => Error::new(
                ErrorKind::Unavailable,
                format!(
                    "this key listing was walking the Redis primary {}, which is no longer \
                     a primary; start the listing again",
                    at.node
                ),
            ),
        })?;
    let mut keys = Vec::new();
    let mut scans = 0;
    loop {
        while keys.len() < limit {
            match at.pending.pop_front() {
                Some(key) => keys.push(key),
                None => break,
            }
        }
        if !at.pending.is_empty() {
            return Ok(KeyPage {
                keys,
                next: Some(at.encode()),
            });
        }
        if at.finished {
            index += 1;
            match primaries.get(index) {
                Some(node) => at = Position::start(node.label()),
                None => return Ok(KeyPage { keys, next: None }),
            }
        }
        if keys.len() >= limit || scans >= MAX_SCANS {
            return Ok(KeyPage {
                keys,
                next: Some(at.encode()),
            });
        }
        let node = &primaries[index];
        let count = (limit - keys.len()).clamp(MIN_COUNT, MAX_COUNT) as u32;
        let (next, found) =
            count::scan_page_counted(node, format.pattern(), at.scan.to_string(), count).await?;
        scans += 1;
        at.scan = next.parse().map_err(|_| {
            Error::new(
                ErrorKind::Backend,
                format!(
                    "Redis at {} answered SCAN with the cursor {next:?}, not a number",
                    node.label()
                ),
            )
        })?;
        at.finished = at.scan == 0;
        let head = format.head().len();
        at.pending.extend(
            found
                .into_iter()
                .filter(|full| format.owns(full))
                .map(|full| full.slice(head..)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_survives_its_cursor() {
        let at = Position {
            node: "127.0.0.1:7001".into(),
            scan: u64::MAX - 3,
            finished: true,
            pending: [&b""[..], b"k", &[0x1f, 0, 255]]
                .into_iter()
                .map(Bytes::copy_from_slice)
                .collect(),
        };
        assert_eq!(Position::decode(&at.encode()).unwrap(), Some(at));
        let fresh = Position::start("localhost:6379");
        assert_eq!(Position::decode(&fresh.encode()).unwrap(), Some(fresh));
        assert_eq!(Position::decode(&KeyCursor::start()).unwrap(), None);
    }

    #[test]
    fn a_cursor_the_tier_did_not_make_is_refused() {
        let good = Position {
            node: "n:1".into(),
            scan: 7,
            finished: false,
            pending: [Bytes::from_static(b"abc")].into(),
        }
        .encode();
        let bytes = good.as_bytes();
        let mut bad: Vec<Vec<u8>> = vec![
            b"\xffnot a cursor".to_vec(),
            b"R".to_vec(),
            [bytes, b"x"].concat(),
        ];
        // Every truncation of a valid cursor, and a bad flag.
        bad.extend((1..bytes.len()).map(|n| bytes[..n].to_vec()));
        let mut flag = bytes.to_vec();
        flag[1 + 2 + 3 + 8] = 2;
        bad.push(flag);
        // A count of keys no cursor this short can hold.
        let mut count = bytes.to_vec();
        count[1 + 2 + 3 + 8 + 1] = 0xff;
        bad.push(count);
        for b in bad {
            let e = Position::decode(&KeyCursor::from_bytes(b.clone())).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{b:?}");
        }
    }
}
