//! The Redis tier: [`RedisBackend`], a byte-level [`Backend`] on Redis,
//! Redis Cluster or a Sentinel-managed primary, through fred.
//!
//! # Connecting
//!
//! [`RedisBackend::builder`] takes a URL:
//!
//! | URL | connects to |
//! |---|---|
//! | `redis://[user:password@]host[:port][/db]` | one server |
//! | `rediss://...` | one server over TLS (feature `redis-tls`; without it the URL is an [`ErrorKind::InvalidConfig`] error, never a plain-text connection) |
//! | `redis-cluster://host:port[?node=host:port&node=...]` | a Redis Cluster; the named nodes are asked for the slot map |
//! | `redis-sentinel://host:port[/db]?sentinelServiceName=name[&node=host:port...]` | the primary the sentinels name, following failovers |
//!
//! [`build`](RedisBackendBuilder::build) never waits for a server: it
//! starts connecting in the background and returns. Until a connection is
//! up, calls fail at once with [`ErrorKind::Unavailable`], which the
//! tiered cache answers by skipping the tier.
//!
//! On a cluster the tier keeps one connection per primary and routes each
//! key by its hash slot, refreshing the slot map when a node redirects a
//! command or goes away, and every ten seconds. A primary that goes down
//! fails only the keys it serves; the others keep working.
//!
//! # Supported servers
//!
//! Redis 4.0 or later (the newest command the tier sends is `UNLINK`,
//! from 4.0; it also uses `EVAL`, `SCAN`, `RANDOMKEY`, `DBSIZE` and, on a
//! cluster, `CLUSTER SLOTS`), over RESP2. The tests run against the
//! `redis-server` of the CI machine (7.0); older servers are not tested.
//!
//! # Keys and values
//!
//! Every key is stored under the cache's prefix (`"tiercache:"` unless
//! [`prefix`](RedisBackendBuilder::prefix) says otherwise), so several
//! caches can share a server. The prefix is delimited: the Redis key is
//! the prefix, the byte 0x1F (which no prefix may contain), the key
//! format's version `v1`, 0x1F again, then the entry's key
//! ([`RedisBackend::redis_key`]). So prefix `"a:"` with key `"b:x"` and
//! prefix `"a:b:"` with key `"x"` are different Redis keys, and the keys
//! of prefix `"app:v2:"` are not keys of prefix `"app:"`. Nothing in the
//! delimiter is a hash tag, so on a cluster keys spread over the slots as
//! the caller's keys do. Keys written by a version of the tier without the
//! delimiter (before the key format had a version) are not read, counted
//! or cleared: they are left to their time-to-live.
//!
//! [`clear`](cache_core::Backend::clear) unlinks only this cache's keys,
//! walking every primary's keyspace with `SCAN`: it costs time in
//! proportion to the server's size and is meant for maintenance.
//! [`len`](cache_core::Backend::len), which metrics and `Cache::stats`
//! call, costs a few round trips per primary whatever the server's size:
//! it is exact on a server that holds at most 1,000 keys in all, and
//! otherwise an estimate from a random sample of keys;
//! [`RedisBackend::exact_len`] counts exactly, by a full walk.
//!
//! Values are the crate's checksummed records (format version 2),
//! carrying the entry's metadata and bound to the Redis key they are
//! stored under: the key is part of the checksum, so a record copied or
//! renamed to another key does not decode there. Every read checks the
//! record and its expiry against the tier's [`Clock`](cache_core::Clock);
//! a value that is not a valid record (an older format version included)
//! is a miss, is deleted, and is counted in [`RedisStats::corrupted`].
//! [`remove`](cache_core::Backend::remove) deletes the key with a script
//! that returns only the record's header, so it learns whether a live
//! entry went without fetching the value.
//!
//! Entries with an expiry are written with a relative `PX` time-to-live
//! from the tier's clock, so Redis drops them on time on its own; an entry that
//! has already expired is not written, and removes any earlier value.
//! Batches use `MGET` (one per hash slot on a cluster) and pipelined
//! writes, one pipeline per node, all nodes at once. Keys and values over
//! the [`Limits`](cache_core::Limits) are rejected before anything is sent.
//!
//! # Evictions and expirations
//!
//! Redis evicts keys for `maxmemory` and expires them on its own, out of
//! the tier's sight. With
//! [`track_removals`](RedisBackendBuilder::track_removals) the tier keeps
//! one more connection per server (per primary on a cluster), subscribed
//! to the server's keyevent notifications of expired and evicted keys, and
//! counts those under its prefix;
//! [`Backend::removals`](cache_core::Backend::removals) reports them. The
//! server must send them: `notify-keyspace-events` must hold `E`, `x` and
//! `e` (or `E` and `A`), which
//! [`configure_notifications`](RedisBackendBuilder::configure_notifications)
//! lets the tier add itself. [`RedisBackend::removal_tracking`] says
//! whether tracking works and if not, why.
//!
//! # Timeouts and the circuit breaker
//!
//! A cache must never hold its caller up for long. Each command gets
//! [`command_timeout`](RedisBackendBuilder::command_timeout) (250 ms by
//! default) and then fails with [`ErrorKind::Timeout`]; a command sent
//! while its connection is down fails at once with
//! [`ErrorKind::Unavailable`] instead of waiting for the reconnection,
//! which fred runs in the background with an exponential backoff
//! ([`reconnect_delay`](RedisBackendBuilder::reconnect_delay)).
//!
//! Each connection has a circuit breaker. After
//! [`breaker_threshold`](RedisBackendBuilder::breaker_threshold) calls in a
//! row fail for want of a server (unreachable or timed out; 5 by default),
//! it refuses calls with [`ErrorKind::Unavailable`] without touching the
//! network for [`breaker_open_for`](RedisBackendBuilder::breaker_open_for)
//! (1 s by default), then lets one probe through: its success closes the
//! breaker, its failure opens it again. A server that answers with an
//! error is not an outage and does not count; nor does a call its caller
//! gave up on (its future dropped, say by a timeout of the caller's
//! shorter than the command timeout), and a call admitted before the
//! breaker last opened or closed does not count when it finishes.
//!
//! ```no_run
//! # async fn example() -> cache_core::Result<()> {
//! use cache_backends::redis::RedisBackend;
//! use cache_core::{Backend, Entry, Meta};
//! use std::time::Duration;
//!
//! let tier = RedisBackend::builder("redis://127.0.0.1:6379")
//!     .prefix("app:")
//!     .command_timeout(Duration::from_millis(100))
//!     .breaker_threshold(3)
//!     .breaker_open_for(Duration::from_secs(2))
//!     .build()
//!     .await?;
//! let meta = Meta::with_ttl(cache_core::Clock::system().now_ms(), Duration::from_secs(60))?;
//! tier.insert("user:42".into(), Entry::new(&b"..."[..], meta)).await?;
//! let found = tier.get(b"user:42").await?;
//! println!("{found:?}, {:?}", tier.stats());
//! # Ok(())
//! # }
//! ```
//!
//! [`Backend`]: cache_core::Backend
//! [`ErrorKind::InvalidConfig`]: cache_core::ErrorKind::InvalidConfig
//! [`ErrorKind::Unavailable`]: cache_core::ErrorKind::Unavailable
//! [`ErrorKind::Timeout`]: cache_core::ErrorKind::Timeout

mod backend;
mod breaker;
mod builder;
mod cluster;
mod count;
mod errors;
mod join;
mod keys;
mod listing;
mod node;
mod routing;
mod stats;
mod tracking;
mod url;

pub use backend::RedisBackend;
pub use builder::RedisBackendBuilder;
pub use stats::RedisStats;
pub use tracking::RemovalTracking;
