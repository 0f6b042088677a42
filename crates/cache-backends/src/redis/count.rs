//! Counting a cache's keys on one node: exactly, by walking the keyspace
//! with `SCAN`, or by an estimate that costs the same however large the
//! server is.
//!
//! `len` is called on every metrics scrape and by `Cache::stats`, so it
//! must not cost time in proportion to the server's keyspace, which other
//! caches and programs share. A node that holds few keys is still counted
//! exactly, since a walk of a small keyspace is cheap and small caches
//! (and tests) expect an exact answer; a larger one is sampled.

use std::collections::HashSet;

use bytes::Bytes;
use cache_core::{Error, ErrorKind, Result};
use fred::clients::Pipeline;
use fred::interfaces::{KeysInterface, ServerInterface};
use fred::types::Value;

use super::keys::KeyFormat;
use super::node::Node;

/// Keys asked for per `SCAN` page.
const SCAN_COUNT: u32 = 1_000;
/// The most keys a node may hold (all programs' keys, by `DBSIZE`) for
/// [`estimate`] to count this cache's keys exactly.
const EXACT_UP_TO: u64 = 1_000;
/// The most `SCAN` pages that exact count may take. A keyspace that grew
/// past [`EXACT_UP_TO`] since `DBSIZE` answered needs more, and is
/// sampled instead.
const EXACT_PAGES: usize = 8;
/// Keys sampled with `RANDOMKEY` for an estimate, all in one pipeline.
/// With a share *p* of the node's keys this cache's, the estimate's
/// relative standard error is √((1 − p) / (p · 256)): about 6 % at
/// p = 0.5, 12 % at p = 0.2.
const SAMPLE: usize = 256;

/// One page of the keys matching `pattern` on `node`: the next cursor
/// (`"0"` when done) and the keys.
pub(super) async fn scan_page(
    node: &Node,
    pattern: &str,
    cursor: String,
) -> Result<(String, Vec<Bytes>)> {
    scan_page_counted(node, pattern, cursor, SCAN_COUNT).await
}

/// [`scan_page`] with its `COUNT` hint: about how many slots of the
/// keyspace the server looks at, not how many keys it returns (it may
/// return more, or none).
pub(super) async fn scan_page_counted(
    node: &Node,
    pattern: &str,
    cursor: String,
    count: u32,
) -> Result<(String, Vec<Bytes>)> {
    let pattern = pattern.to_owned();
    let page = node
        .call(|c| async move {
            c.scan_page::<Value, _, _>(cursor, pattern, Some(count), None)
                .await
        })
        .await?;
    let mut parts = page.into_array().into_iter();
    let next = parts.next().and_then(Value::into_string);
    let keys = parts.next().map(Value::into_array);
    match (next, keys) {
        (Some(next), Some(keys)) => Ok((
            next,
            keys.into_iter().filter_map(Value::into_bytes).collect(),
        )),
        _ => Err(Error::new(
            ErrorKind::Backend,
            format!("Redis at {} answered SCAN with no cursor", node.label()),
        )),
    }
}

/// Counts this cache's keys on `node` by walking its keyspace, giving up
/// (`None`) after `max_pages` pages when there is a bound. `SCAN` may
/// return a key twice while Redis resizes its table, so the keys are
/// collected rather than counted page by page.
async fn walk(node: &Node, keys: &KeyFormat, max_pages: Option<usize>) -> Result<Option<u64>> {
    let mut seen: HashSet<Bytes> = HashSet::new();
    let mut cursor = "0".to_owned();
    let mut pages = 0;
    loop {
        let (next, found) = scan_page(node, keys.pattern(), cursor).await?;
        seen.extend(found);
        pages += 1;
        if next == "0" {
            return Ok(Some(seen.len() as u64));
        }
        if max_pages.is_some_and(|most| pages >= most) {
            return Ok(None);
        }
        cursor = next;
    }
}

/// This cache's keys on `node`, exactly: a walk of the node's whole
/// keyspace.
pub(super) async fn exact(node: &Node, keys: &KeyFormat) -> Result<u64> {
    Ok(walk(node, keys, None).await?.unwrap_or(0))
}

/// This cache's keys on `node`: exact when the node holds at most
/// [`EXACT_UP_TO`] keys, otherwise `DBSIZE` times the share of this
/// cache's keys among [`SAMPLE`] random ones. Two round trips at most, and
/// never more than [`EXACT_PAGES`] pages of keys read.
pub(super) async fn estimate(node: &Node, keys: &KeyFormat) -> Result<u64> {
    let size = node
        .call(|c| async move { c.dbsize::<u64>().await })
        .await?;
    if size == 0 {
        return Ok(0);
    }
    if size <= EXACT_UP_TO
        && let Some(count) = walk(node, keys, Some(EXACT_PAGES)).await?
    {
        return Ok(count);
    }
    let replies = node
        .call(|c| async move {
            let pipeline = Pipeline::from(c);
            pipeline.dbsize::<()>().await?;
            for _ in 0..SAMPLE {
                pipeline.randomkey::<()>().await?;
            }
            pipeline.all::<Value>().await
        })
        .await?;
    let mut replies = replies.into_array().into_iter();
    let size = replies.next().and_then(|v| v.as_u64()).ok_or_else(|| {
        Error::new(
            ErrorKind::Backend,
            format!("Redis at {} answered DBSIZE with no number", node.label()),
        )
    })?;
    let (mut sampled, mut ours) = (0u64, 0u64);
    for key in replies.filter_map(Value::into_bytes) {
        sampled += 1;
        if keys.owns(&key) {
            ours += 1;
        }
    }
    Ok(scale(size, ours, sampled))
}

/// `size × ours / sampled`, rounded to the nearest whole key; 0 for an
/// empty sample (the keyspace emptied meanwhile).
fn scale(size: u64, ours: u64, sampled: u64) -> u64 {
    if sampled == 0 {
        return 0;
    }
    let (size, ours, sampled) = (u128::from(size), u128::from(ours), u128::from(sampled));
    u64::try_from((size * ours + sampled / 2) / sampled).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_scale_the_sampled_share() {
        assert_eq!(scale(100_000, 64, 256), 25_000);
        assert_eq!(scale(100_000, 0, 256), 0);
        assert_eq!(scale(100_000, 256, 256), 100_000);
        assert_eq!(scale(10, 1, 3), 3);
        assert_eq!(scale(10, 0, 0), 0);
        assert_eq!(scale(u64::MAX, 256, 256), u64::MAX);
    }
}
