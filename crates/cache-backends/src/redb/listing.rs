//! Listing the tier's keys in key order, a page at a time, for
//! [`Backend::keys`](cache_core::Backend::keys).
//!
//! A page is a range scan of the keys table (key → place in the indexes,
//! expiry included), which holds no values, so a page reads a few small
//! rows per key and never a record. The cursor is the last key the page
//! visited: it means the same thing in any read transaction, after the
//! file is reopened, and in another process on the same file.

use std::ops::Bound;

use ::redb::ReadableDatabase;
use bytes::Bytes;
use cache_core::{Error, ErrorKind, KeyCursor, KeyPage, Result};
use tokio::sync::oneshot;

use super::error::{closed, storage};
use super::shared::Shared;
use super::tables::KEYS;

/// The first byte of this tier's cursors, before the last key visited. A
/// tag keeps the cursor after the empty key distinct from the start.
const CURSOR_TAG: u8 = b'r';

/// The most rows one page visits, live or expired: a page that crosses a
/// long stretch of expired entries the sweeper has not reached yet ends
/// early, so that one call never holds a read transaction for long.
const MAX_VISITED: usize = 4_096;

/// The key a listing resumes after (`None` at the start).
pub(super) fn resume_after(cursor: &KeyCursor) -> Result<Option<Bytes>> {
    match cursor.as_bytes() {
        [] => Ok(None),
        [CURSOR_TAG, last @ ..] => Ok(Some(Bytes::copy_from_slice(last))),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            "not a key cursor of a redb tier",
        )),
    }
}

/// The cursor that resumes after `key`.
fn cursor_after(key: &[u8]) -> KeyCursor {
    let mut bytes = Vec::with_capacity(key.len() + 1);
    bytes.push(CURSOR_TAG);
    bytes.extend_from_slice(key);
    KeyCursor::from_bytes(bytes)
}

/// Up to `limit` (at least one) keys of live entries after `after`, in
/// one read transaction; entries expired at the tier's clock are skipped.
pub(super) fn page(shared: &Shared, after: Option<&[u8]>, limit: usize) -> Result<KeyPage> {
    let limit = limit.max(1);
    shared.with_db(|db| {
        let txn = db
            .begin_read()
            .map_err(|e| storage("cannot begin a redb read transaction", e))?;
        let table = txn
            .open_table(KEYS)
            .map_err(|e| storage("cannot open the redb keys table", e))?;
        let now = shared.clock.now_ms();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let rows = table
            .range::<&[u8]>((lower, Bound::Unbounded))
            .map_err(|e| storage("cannot read the redb keys table", e))?;
        let mut keys = Vec::new();
        // The last key visited, live or not, kept in one reused buffer.
        let mut last = Vec::new();
        for (visited, row) in rows.enumerate() {
            let (key, place) = row.map_err(|e| storage("cannot read the redb keys table", e))?;
            if keys.len() >= limit || visited >= MAX_VISITED {
                // Another row follows: the listing is not over.
                return Ok(KeyPage {
                    keys,
                    next: Some(cursor_after(&last)),
                });
            }
            let key = key.value();
            let (_, expires_at, _) = place.value();
            // An entry that never expires is stored with the largest
            // expiry, so one comparison covers both.
            if expires_at > now {
                keys.push(Bytes::copy_from_slice(key));
            }
            last.clear();
            last.extend_from_slice(key);
        }
        Ok(KeyPage { keys, next: None })
    })
}

/// Runs a page's read away from the async runtime's worker threads: on
/// tokio's blocking pool inside a runtime, on the caller's thread outside
/// one when `inline` allows (nothing else waits on it), and otherwise on a
/// thread of its own. Listing is rare, so the hand-off costs nothing that
/// matters.
pub(super) async fn off_runtime<T: Send + 'static>(
    inline: bool,
    read: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return tokio::task::spawn_blocking(read)
            .await
            .map_err(|_| closed())?;
    }
    if inline {
        return read();
    }
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("tiercache-keys".into())
        .spawn(move || {
            // A caller that stopped waiting is not an error.
            let _ = tx.send(read());
        })
        .map_err(|e| {
            Error::new(ErrorKind::Backend, "cannot start a thread to list keys").with_source(e)
        })?;
    rx.await.map_err(|_| closed())?
}
