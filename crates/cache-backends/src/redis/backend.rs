//! [`RedisBackend`]: the shared tier, on Redis or Redis Cluster.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{Backend, Clock, Entry, Error, ErrorKind, Limits, Lookup, Removals, Result};
use fred::clients::Pipeline;
use fred::interfaces::{KeysInterface, LuaInterface};
use fred::types::{Expiration, Value};

use super::builder::RedisBackendBuilder;
use super::errors;
use super::join::join_all;
use super::node::Node;
use super::routing::{NodeBatch, Routing};
use super::stats::RedisStats;
use super::tracking::{RemovalTracking, Tracking};
use crate::envelope;

/// Keys asked for per `SCAN` page.
const SCAN_COUNT: u32 = 1_000;
/// The longest time-to-live handed to Redis, about a century. Redis
/// refuses an expiry past its clock's range; an entry that outlives this
/// is dropped early, which a cache may do.
const MAX_PX_MS: u64 = 100 * 365 * 24 * 3_600 * 1_000;

/// A byte tier on Redis, Redis Cluster or a Sentinel-managed primary.
///
/// Values are stored as the crate's checksummed records, under this
/// cache's key prefix. Cloning is cheap and shares the connections. See
/// the [module documentation](super) for URLs, timeouts and the circuit
/// breaker.
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    routing: Routing,
    prefix: Bytes,
    prefix_text: String,
    /// The `SCAN MATCH` pattern of this cache's keys.
    pattern: String,
    clock: Clock,
    limits: Limits,
    corrupted: AtomicU64,
    /// The subscribers counting what Redis evicts and expires, when asked
    /// for; dropped (and so ended) with the backend.
    tracking: Option<Tracking>,
}

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]`: a corrupted record
/// goes, a valid one written since the read stays.
const DELETE_IF_UNCHANGED: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
    return redis.call('UNLINK', KEYS[1]) end return 0";
/// Deletes `KEYS[1]` only if it still holds something other than a string
/// (no record of ours is anything else).
const DELETE_IF_NOT_STRING: &str = "if redis.call('TYPE', KEYS[1]).ok ~= 'string' then \
    return redis.call('UNLINK', KEYS[1]) end return 0";

/// What one stored value turned out to be.
enum Stored {
    Absent,
    Live(Entry),
    Expired,
    /// Not a valid record; the bytes read, when the value was a string.
    Corrupted(Option<Bytes>),
}

/// What an insert sends for one entry.
enum Write {
    /// `SET` the record, with a time-to-live if the entry has an expiry.
    Set(Bytes, Option<Expiration>),
    /// The entry has already expired: remove any earlier value instead.
    Delete,
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped, then `*`.
fn match_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

impl RedisBackend {
    /// Starts configuring a backend for the server(s) at `url`:
    /// `redis://`, `rediss://` (feature `redis-tls`), `redis-cluster://`
    /// or `redis-sentinel://`.
    pub fn builder(url: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder::new(url.into())
    }

    pub(super) fn new(
        routing: Routing,
        prefix: &str,
        clock: Clock,
        limits: Limits,
        tracking: Option<Tracking>,
    ) -> Self {
        RedisBackend {
            inner: Arc::new(Inner {
                routing,
                prefix: Bytes::copy_from_slice(prefix.as_bytes()),
                prefix_text: prefix.to_owned(),
                pattern: match_pattern(prefix),
                clock,
                limits,
                corrupted: AtomicU64::new(0),
                tracking,
            }),
        }
    }

    /// The prefix of every key this cache stores.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix_text
    }

    /// Counters since the backend was built, and the state of its
    /// connections and breakers now.
    pub fn stats(&self) -> RedisStats {
        let nodes = self.inner.routing.nodes();
        RedisStats {
            corrupted: self.inner.corrupted.load(Ordering::Relaxed),
            failures: nodes.iter().map(|n| n.failures()).sum(),
            breaker_trips: nodes.iter().map(|n| n.breaker_trips()).sum(),
            open_breakers: nodes.iter().filter(|n| n.breaker_open()).count(),
            connected: nodes.iter().filter(|n| n.is_connected()).count(),
            connections: nodes.len(),
            missed_notifications: self.inner.tracking.as_ref().map_or(0, Tracking::missed),
        }
    }

    /// Whether the tier is counting what Redis evicts and expires, and if
    /// not, why; see [`track_removals`](RedisBackendBuilder::track_removals).
    pub fn removal_tracking(&self) -> RemovalTracking {
        self.inner
            .tracking
            .as_ref()
            .map_or(RemovalTracking::Off, Tracking::state)
    }

    /// Waits until every server holding data is connected (on a cluster:
    /// the slot map is known and every primary connected).
    ///
    /// Calls never wait for a connection; this is for a program that
    /// would rather start with a warm tier, and for tests.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] if that has not happened `within`.
    pub async fn wait_for_connection(&self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.inner.routing.is_ready() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("Redis did not become reachable within {within:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn full_key(&self, key: &[u8]) -> Bytes {
        let mut full = Vec::with_capacity(self.inner.prefix.len() + key.len());
        full.extend_from_slice(&self.inner.prefix);
        full.extend_from_slice(key);
        full.into()
    }

    /// Reads a value as Redis returned it, checking the record and its
    /// expiry against the tier's clock: a clock ahead of the server's
    /// (a test's manual clock, or skew) must still never see an expired
    /// entry.
    fn read(&self, value: Value, now_ms: u64) -> Stored {
        if value.is_null() {
            return Stored::Absent;
        }
        let Some(record) = value.into_bytes() else {
            return Stored::Corrupted(None);
        };
        // An expired record is a miss whatever the rest holds, so its
        // checksum (over a value of up to the size limit) is not worth
        // computing.
        if envelope::expiry_of(&record).is_some_and(|at| at <= now_ms) {
            return Stored::Expired;
        }
        match envelope::decode(&record) {
            Ok(entry) if entry.meta.is_expired(now_ms) => Stored::Expired,
            Ok(entry) => Stored::Live(entry),
            Err(_) => Stored::Corrupted(Some(record)),
        }
    }

    /// Counts a value that is not a valid record and deletes it, so it is
    /// answered as a miss once rather than on every lookup.
    ///
    /// The delete happens only if the key still holds what was read (`seen`,
    /// or, for a value that was not a string, still not a string), checked
    /// and done in one script on the server: a valid record written between
    /// the read and the delete stays. The delete is best effort: a failure
    /// leaves the value to be found and counted again.
    async fn discard(&self, node: &Node, key: Bytes, seen: Option<Bytes>) {
        self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
        let _ = node
            .call(|c| async move {
                match seen {
                    Some(seen) => {
                        c.eval::<(), _, _, _>(DELETE_IF_UNCHANGED, vec![key], vec![seen])
                            .await
                    }
                    None => {
                        c.eval::<(), _, _, _>(DELETE_IF_NOT_STRING, vec![key], Vec::<Bytes>::new())
                            .await
                    }
                }
            })
            .await;
    }

    fn write_for(&self, entry: &Entry, now_ms: u64) -> Result<Write> {
        match entry.meta.expires_at_ms {
            Some(at) if at <= now_ms => Ok(Write::Delete),
            expires_at => {
                let record = Bytes::from(envelope::encode(entry)?);
                // A relative time-to-live from the tier's clock, not PXAT:
                // a clock that differs from the server's (a manual clock in
                // tests, or skew) would otherwise make Redis drop entries at
                // once or keep them far too long.
                let ttl = expires_at.map(|at| {
                    let ms = (at - now_ms).min(MAX_PX_MS);
                    Expiration::PX(i64::try_from(ms).unwrap_or(i64::MAX))
                });
                Ok(Write::Set(record, ttl))
            }
        }
    }

    /// Checks and encodes a batch, so that nothing is sent unless every
    /// entry can be.
    fn prepare(&self, entries: Vec<(Bytes, Entry)>) -> Result<Vec<(Bytes, Write)>> {
        let now = self.inner.clock.now_ms();
        entries
            .into_iter()
            .map(|(key, entry)| {
                self.inner.limits.check_key(&key)?;
                self.inner.limits.check_value(entry.value.len())?;
                Ok((self.full_key(&key), self.write_for(&entry, now)?))
            })
            .collect()
    }

    /// One pipeline of `MGET`s to one node; the answers are paired with
    /// the positions they answer.
    async fn mget_batch(
        &self,
        batch: NodeBatch,
        keys: &[Bytes],
    ) -> Result<(Arc<Node>, Vec<(usize, Value)>)> {
        let commands: Vec<Vec<Bytes>> = batch
            .groups
            .iter()
            .map(|group| group.iter().map(|&i| keys[i].clone()).collect())
            .collect();
        let replies = batch
            .node
            .call(|c| async move {
                let pipeline = Pipeline::from(c);
                for keys in commands {
                    pipeline.mget::<(), _>(keys).await?;
                }
                pipeline.all::<Value>().await
            })
            .await?;
        let replies = replies.into_array();
        if replies.len() != batch.groups.len() {
            return Err(Error::new(
                ErrorKind::Backend,
                format!(
                    "Redis at {} answered {} of {} MGET commands",
                    batch.node.label(),
                    replies.len(),
                    batch.groups.len()
                ),
            ));
        }
        let mut found = Vec::new();
        for (group, reply) in batch.groups.iter().zip(replies) {
            let values = reply.into_array();
            if values.len() != group.len() {
                return Err(Error::new(
                    ErrorKind::Backend,
                    format!(
                        "Redis at {} answered an MGET of {} keys with {} values",
                        batch.node.label(),
                        group.len(),
                        values.len()
                    ),
                ));
            }
            found.extend(group.iter().copied().zip(values));
        }
        Ok((batch.node, found))
    }

    /// One pipeline of writes to one node.
    async fn write_batch(node: Arc<Node>, writes: Vec<(Bytes, Write)>) -> Result<()> {
        node.call(|c| async move {
            let pipeline = Pipeline::from(c);
            for (key, write) in writes {
                match write {
                    Write::Set(record, ttl) => {
                        pipeline
                            .set::<(), _, _>(key, record, ttl, None, false)
                            .await?;
                    }
                    Write::Delete => pipeline.del::<(), _>(key).await?,
                }
            }
            pipeline.all::<Value>().await
        })
        .await
        .map(drop)
    }

    /// One page of this cache's keys on `node`: the next cursor (`"0"`
    /// when done) and the keys.
    async fn scan_page(&self, node: &Node, cursor: String) -> Result<(String, Vec<Bytes>)> {
        let pattern = self.inner.pattern.clone();
        let page = node
            .call(|c| async move {
                c.scan_page::<Value, _, _>(cursor, pattern, Some(SCAN_COUNT), None)
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

    /// Unlinks every key with this cache's prefix on one node, a page at a
    /// time.
    async fn clear_node(&self, node: Arc<Node>) -> Result<()> {
        let mut cursor = "0".to_owned();
        loop {
            let (next, keys) = self.scan_page(&node, cursor).await?;
            if !keys.is_empty() {
                let groups = self.inner.routing.by_slot(keys);
                node.call(|c| async move {
                    let pipeline = Pipeline::from(c);
                    for keys in groups {
                        pipeline.unlink::<(), _>(keys).await?;
                    }
                    pipeline.all::<Value>().await
                })
                .await?;
            }
            if next == "0" {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Counts the keys with this cache's prefix on one node. `SCAN` may
    /// return a key twice while Redis resizes its table, so the keys are
    /// collected rather than counted page by page.
    async fn count_node(&self, node: Arc<Node>) -> Result<u64> {
        let mut seen: HashSet<Bytes> = HashSet::new();
        let mut cursor = "0".to_owned();
        loop {
            let (next, keys) = self.scan_page(&node, cursor).await?;
            seen.extend(keys);
            if next == "0" {
                return Ok(seen.len() as u64);
            }
            cursor = next;
        }
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &str {
        "redis"
    }

    async fn get(&self, key: &[u8]) -> Result<Lookup> {
        self.inner.limits.check_key(key)?;
        let full = self.full_key(key);
        let node = self.inner.routing.node_for(&full)?;
        let asked = full.clone();
        let value = match node
            .call(|c| async move { c.get::<Value, _>(asked).await })
            .await
        {
            Ok(value) => value,
            Err(e) if errors::is_wrong_type(&e) => {
                self.discard(&node, full, None).await;
                return Ok(Lookup::Miss);
            }
            Err(e) => return Err(e),
        };
        match self.read(value, self.inner.clock.now_ms()) {
            Stored::Live(entry) => Ok(Lookup::Hit(entry)),
            Stored::Corrupted(seen) => {
                self.discard(&node, full, seen).await;
                Ok(Lookup::Miss)
            }
            // An expired record is left to the time-to-live Redis holds for
            // it: it was written relative to the same clock, so only a
            // clock that has jumped ahead sees it early, and deleting it
            // could race with a newer write of the key.
            Stored::Absent | Stored::Expired => Ok(Lookup::Miss),
        }
    }

    async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
        self.inner.limits.check_key(&key)?;
        self.inner.limits.check_value(entry.value.len())?;
        let write = self.write_for(&entry, self.inner.clock.now_ms())?;
        let full = self.full_key(&key);
        let node = self.inner.routing.node_for(&full)?;
        node.call(|c| async move {
            match write {
                Write::Set(record, ttl) => c.set::<(), _, _>(full, record, ttl, None, false).await,
                Write::Delete => c.del::<(), _>(full).await,
            }
        })
        .await
    }

    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.inner.limits.check_key(key)?;
        let full = self.full_key(key);
        let node = self.inner.routing.node_for(&full)?;
        let asked = full.clone();
        // GETDEL rather than DEL: the answer must say whether a live entry
        // went, and only the record knows its expiry by the tier's clock.
        let value = match node
            .call(|c| async move { c.getdel::<Value, _>(asked).await })
            .await
        {
            Ok(value) => value,
            Err(e) if errors::is_wrong_type(&e) => {
                self.discard(&node, full, None).await;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        Ok(match self.read(value, self.inner.clock.now_ms()) {
            Stored::Live(_) => true,
            Stored::Corrupted(_) => {
                // GETDEL has removed it already; it still counts.
                self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
                false
            }
            Stored::Absent | Stored::Expired => false,
        })
    }

    async fn clear(&self) -> Result<()> {
        let nodes = self.inner.routing.primaries()?;
        let cleared = join_all(nodes.into_iter().map(|n| self.clear_node(n)).collect()).await;
        cleared.into_iter().collect()
    }

    async fn len(&self) -> Result<u64> {
        let nodes = self.inner.routing.primaries()?;
        let counts = join_all(nodes.into_iter().map(|n| self.count_node(n)).collect()).await;
        counts.into_iter().sum()
    }

    async fn get_many(&self, keys: &[Bytes]) -> Result<Vec<Lookup>> {
        for key in keys {
            self.inner.limits.check_key(key)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let full: Vec<Bytes> = keys.iter().map(|k| self.full_key(k)).collect();
        let batches = self.inner.routing.batches(&full)?;
        let answers = join_all(
            batches
                .into_iter()
                .map(|batch| self.mget_batch(batch, &full))
                .collect(),
        )
        .await;
        let now = self.inner.clock.now_ms();
        let mut out = vec![Lookup::Miss; keys.len()];
        let mut corrupted = Vec::new();
        for answer in answers {
            let (node, found) = answer?;
            for (i, value) in found {
                match self.read(value, now) {
                    Stored::Live(entry) => out[i] = Lookup::Hit(entry),
                    Stored::Corrupted(seen) => {
                        corrupted.push((node.clone(), full[i].clone(), seen));
                    }
                    Stored::Absent | Stored::Expired => {}
                }
            }
        }
        for (node, key, seen) in corrupted {
            self.discard(&node, key, seen).await;
        }
        Ok(out)
    }

    async fn insert_many(&self, entries: Vec<(Bytes, Entry)>) -> Result<()> {
        let writes = self.prepare(entries)?;
        if writes.is_empty() {
            return Ok(());
        }
        let keys: Vec<Bytes> = writes.iter().map(|(k, _)| k.clone()).collect();
        let batches = self.inner.routing.batches(&keys)?;
        let mut writes: Vec<Option<(Bytes, Write)>> = writes.into_iter().map(Some).collect();
        let sends = batches
            .into_iter()
            .map(|batch| {
                let mine: Vec<(Bytes, Write)> = batch
                    .groups
                    .iter()
                    .flatten()
                    .filter_map(|&i| writes[i].take())
                    .collect();
                Self::write_batch(batch.node, mine)
            })
            .collect();
        join_all(sends).await.into_iter().collect()
    }

    /// The keys under this cache's prefix that Redis evicted (for
    /// `maxmemory`) or expired since the backend was built, counted from
    /// keyspace notifications; see
    /// [`track_removals`](RedisBackendBuilder::track_removals).
    ///
    /// `None` when tracking is off, until it has been set up on every
    /// primary, and while a primary cannot send the notifications
    /// ([`removal_tracking`](RedisBackend::removal_tracking) says why).
    /// `by_class` is always empty: a Redis key does not carry its entry's
    /// class, and the record is gone by the time the notification comes.
    /// The counts are a lower bound: Redis does not keep a notification
    /// for a subscriber that is reconnecting.
    fn removals(&self) -> Option<Removals> {
        self.inner.tracking.as_ref().and_then(Tracking::removals)
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routing = match &self.inner.routing {
            Routing::Single(node) => node.label().to_owned(),
            Routing::Cluster(_) => "cluster".to_owned(),
        };
        f.debug_struct("RedisBackend")
            .field("prefix", &self.inner.prefix_text)
            .field("server", &routing)
            .field("stats", &self.stats())
            .field("removal_tracking", &self.removal_tracking())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_matched_literally() {
        assert_eq!(match_pattern("app:"), "app:*");
        assert_eq!(match_pattern("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
    }
}
