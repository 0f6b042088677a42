//! [`RedisBackend`]: the shared tier, on Redis or Redis Cluster.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{
    Backend, Clock, Entry, Error, ErrorKind, KeyCursor, KeyPage, Limits, Lookup, Removals, Result,
};
use fred::clients::Pipeline;
use fred::interfaces::{KeysInterface, LuaInterface};
use fred::types::{Expiration, Value};

use super::builder::RedisBackendBuilder;
use super::count;
use super::errors;
use super::join::join_all;
use super::keys::KeyFormat;
use super::listing;
use super::node::Node;
use super::routing::{NodeBatch, Routing};
use super::stats::RedisStats;
use super::tracking::{RemovalTracking, Tracking};
use crate::envelope;

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
    prefix_text: String,
    keys: KeyFormat,
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
/// Deletes `KEYS[1]` and answers what it was, without its value: nil if
/// there was nothing, 0 if it was not a string, else the string's bytes
/// up to offset `ARGV[1]` (a record's header, which holds its expiry).
/// The liveness of a removed entry depends on the tier's clock, so the
/// client decides it from the header; the value, up to the size limit,
/// never crosses the network.
const DELETE_RETURNING_HEADER: &str = "local kind = redis.call('TYPE', KEYS[1]).ok \
    if kind == 'none' then return false end \
    if kind ~= 'string' then redis.call('UNLINK', KEYS[1]) return 0 end \
    local header = redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[1])) \
    redis.call('UNLINK', KEYS[1]) \
    return header";

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
                prefix_text: prefix.to_owned(),
                keys: KeyFormat::new(prefix),
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

    /// The Redis key an entry's `key` is stored under: the prefix, the
    /// byte 0x1F, the key format's version `v1`, 0x1F again, then `key`
    /// (see the [module documentation](super#keys-and-values)). For
    /// inspecting a server with other tools.
    pub fn redis_key(&self, key: &[u8]) -> Bytes {
        self.inner.keys.full_key(key)
    }

    /// The exact number of this cache's keys, by walking every primary's
    /// whole keyspace with `SCAN`, other programs' keys included.
    ///
    /// It costs time in proportion to the size of the servers, not of this
    /// cache: a maintenance call. [`len`](Backend::len), which metrics
    /// call, is exact only on small servers and an estimate otherwise.
    ///
    /// # Errors
    ///
    /// Any failure of a primary to answer.
    pub async fn exact_len(&self) -> Result<u64> {
        let nodes = self.inner.routing.primaries()?;
        let keys = &self.inner.keys;
        let counts = join_all(nodes.iter().map(|n| count::exact(n, keys)).collect()).await;
        counts.into_iter().sum()
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
        // A wait too long to add to the clock (`Duration::MAX`) has no
        // deadline.
        let deadline = tokio::time::Instant::now().checked_add(within);
        loop {
            if self.inner.routing.is_ready() {
                return Ok(());
            }
            if deadline.is_some_and(|at| tokio::time::Instant::now() >= at) {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("Redis did not become reachable within {within:?}"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn full_key(&self, key: &[u8]) -> Bytes {
        self.inner.keys.full_key(key)
    }

    /// Reads a value as Redis returned it for the Redis key `full`,
    /// checking the record (bound to that key) and its expiry against the
    /// tier's clock: a clock ahead of the server's (a test's manual clock,
    /// or skew) must still never see an expired entry.
    fn read(&self, full: &[u8], value: Value, now_ms: u64) -> Stored {
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
        match envelope::decode_keyed(full, &record) {
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
        let _ = Self::delete_unchanged(node, key, seen).await;
    }

    /// Deletes `key` if it still holds `seen` (or, for `None`, still holds
    /// something other than a string), checked and done in one script on
    /// the server; `true` if it deleted the key.
    async fn delete_unchanged(node: &Node, key: Bytes, seen: Option<Bytes>) -> Result<bool> {
        let deleted = node
            .call(|c| async move {
                match seen {
                    Some(seen) => {
                        c.eval::<i64, _, _, _>(DELETE_IF_UNCHANGED, vec![key], vec![seen])
                            .await
                    }
                    None => {
                        c.eval::<i64, _, _, _>(DELETE_IF_NOT_STRING, vec![key], Vec::<Bytes>::new())
                            .await
                    }
                }
            })
            .await?;
        Ok(deleted > 0)
    }

    fn write_for(&self, full: &[u8], entry: &Entry, now_ms: u64) -> Result<Write> {
        match entry.meta.expires_at_ms {
            Some(at) if at <= now_ms => Ok(Write::Delete),
            expires_at => {
                let record = Bytes::from(envelope::encode_keyed(full, entry)?);
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
                let full = self.full_key(&key);
                let write = self.write_for(&full, &entry, now)?;
                Ok((full, write))
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

    /// Unlinks every key with this cache's prefix on one node, a page at a
    /// time.
    async fn clear_node(&self, node: Arc<Node>) -> Result<()> {
        let mut cursor = "0".to_owned();
        loop {
            let (next, keys) = count::scan_page(&node, self.inner.keys.pattern(), cursor).await?;
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

    /// Deletes `full` and says what went: the script answers with the
    /// record's header only.
    async fn remove_full(&self, node: &Node, full: Bytes) -> Result<bool> {
        let last = (envelope::HEADER_LEN - 1).to_string();
        let answer = node
            .call(|c| async move {
                c.eval::<Value, _, _, _>(DELETE_RETURNING_HEADER, vec![full], vec![last])
                    .await
            })
            .await?;
        Ok(match answer {
            Value::Null => false,
            Value::String(_) | Value::Bytes(_) => {
                let header = answer.into_bytes().unwrap_or_default();
                match envelope::keyed_header_expiry(&header) {
                    Some(expiry) => expiry.is_none_or(|at| at > self.inner.clock.now_ms()),
                    // Not one of our records: it has gone, and counts.
                    None => {
                        self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                }
            }
            // A key of another type, which the script has removed.
            _ => {
                self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
                false
            }
        })
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
        match self.read(&full, value, self.inner.clock.now_ms()) {
            Stored::Live(entry) => Ok(Lookup::from_entry(entry)),
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
        let full = self.full_key(&key);
        let write = self.write_for(&full, &entry, self.inner.clock.now_ms())?;
        let node = self.inner.routing.node_for(&full)?;
        node.call(|c| async move {
            match write {
                Write::Set(record, ttl) => c.set::<(), _, _>(full, record, ttl, None, false).await,
                Write::Delete => c.del::<(), _>(full).await,
            }
        })
        .await
    }

    /// Removes the key, answering whether a live entry went.
    ///
    /// One script deletes the key and returns only the record's header,
    /// whose expiry is checked against the tier's clock: the value is
    /// never fetched. The record's checksum, which needs the value, is not
    /// checked, so a record damaged past its header counts as live; it is
    /// gone either way.
    async fn remove(&self, key: &[u8]) -> Result<bool> {
        self.inner.limits.check_key(key)?;
        let full = self.full_key(key);
        let node = self.inner.routing.node_for(&full)?;
        self.remove_full(&node, full).await
    }

    /// Removes the key if its record still holds the value `seen`, or is
    /// not a valid record at all (garbage, damaged, or a key of another
    /// type): `true` if it removed it.
    ///
    /// The record is read and decoded here, then deleted by a script that
    /// checks the key still holds the very bytes read, so a record written
    /// between the read and the delete stays.
    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
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
                self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
                return Self::delete_unchanged(&node, full, None).await;
            }
            Err(e) => return Err(e),
        };
        if value.is_null() {
            return Ok(false);
        }
        let Some(record) = value.into_bytes() else {
            self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
            return Self::delete_unchanged(&node, full, None).await;
        };
        match envelope::decode_keyed(&full, &record) {
            Ok(entry) if entry.value.as_ref() != seen => Ok(false),
            Ok(_) => Self::delete_unchanged(&node, full, Some(record)).await,
            Err(_) => {
                self.inner.corrupted.fetch_add(1, Ordering::Relaxed);
                Self::delete_unchanged(&node, full, Some(record)).await
            }
        }
    }

    async fn clear(&self) -> Result<()> {
        let nodes = self.inner.routing.primaries()?;
        let cleared = join_all(nodes.into_iter().map(|n| self.clear_node(n)).collect()).await;
        cleared.into_iter().collect()
    }

    /// This cache's keys, exact on a server (or cluster primary) that
    /// holds at most 1,000 keys in all, and otherwise an estimate: the
    /// server's `DBSIZE` times the share of this cache's keys among 256
    /// random ones (`RANDOMKEY`, in one pipeline). The cost is a few round
    /// trips per primary whatever the size of the servers, so metrics may
    /// call it on every scrape. The estimate's relative error is about
    /// √((1 − p) / 256p) for a share p of the keys (6 % at p = ½); a cache
    /// that holds a tiny share of a large server may read as 0.
    /// [`exact_len`](RedisBackend::exact_len) counts exactly, by a full
    /// walk.
    async fn len(&self) -> Result<u64> {
        let nodes = self.inner.routing.primaries()?;
        let keys = &self.inner.keys;
        let counts = join_all(nodes.iter().map(|n| count::estimate(n, keys)).collect()).await;
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
                match self.read(&full[i], value, now) {
                    Stored::Live(entry) => out[i] = Lookup::from_entry(entry),
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

    /// Lists this cache's keys with `SCAN ... MATCH` on every primary (the
    /// one server, or each primary of a cluster in turn), keys of other
    /// prefixes and of older key formats left out and the prefix stripped.
    ///
    /// `SCAN` returns every key present for the whole walk, and may return
    /// a key twice if the server shrinks its table meanwhile, so on Redis a
    /// key can appear twice in one listing. Its `COUNT` is only a hint, so
    /// keys a `SCAN` returned beyond the page's limit travel in the cursor
    /// to the next page. A page makes at most a few dozen `SCAN` calls, so
    /// on a server that mostly holds other programs' keys a page may be
    /// short, or empty, before the listing ends. On a cluster, a listing
    /// whose primary is no longer one (after a failover) fails with
    /// [`ErrorKind::Unavailable`] and must start again; keys whose slots
    /// migrate during a listing may be missed. Expiry is Redis's own:
    /// `SCAN` skips keys Redis has expired, and the tier's clock is not
    /// consulted.
    async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
        listing::page(&self.inner.routing, &self.inner.keys, from, limit)
            .await
            .map(Some)
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
