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
//! # Keys and values
//!
//! Every key is stored under the cache's prefix (`"tiercache:"` unless
//! [`prefix`](RedisBackendBuilder::prefix) says otherwise), so several
//! caches can share a server: [`clear`](cache_core::Backend::clear) unlinks and
//! [`len`](cache_core::Backend::len) counts only keys with this prefix, scanning every
//! primary. Both walk the keyspace with `SCAN`, so they cost time in
//! proportion to the server's size and are meant for maintenance, not hot
//! paths.
//!
//! Values are the crate's checksummed records, carrying the entry's
//! metadata. Every read checks the record and its expiry against the
//! tier's [`Clock`](cache_core::Clock); a value that is not a valid record
//! is a miss, is deleted, and is counted in [`RedisStats::corrupted`].
//! Entries with an expiry are written with a relative `PX` time-to-live
//! from that clock, so Redis drops them on time on its own; an entry that
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
//! error is not an outage and does not count.
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
mod node;
mod routing;
mod stats;
mod tracking;
mod url;

pub use backend::RedisBackend;
pub use builder::RedisBackendBuilder;
pub use stats::RedisStats;
pub use tracking::RemovalTracking;
