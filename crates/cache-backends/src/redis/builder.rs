//! [`RedisBackendBuilder`]: the settings of a Redis tier.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Clock, Error, ErrorKind, Limits, Result};

use super::backend::RedisBackend;
use super::cluster::Cluster;
use super::keys::KeyFormat;
use super::node::{Node, Settings};
use super::routing::Routing;
use super::tracking::{Source, Tracking};
use super::url::{self, Target};

/// Builds a [`RedisBackend`]; start with [`RedisBackend::builder`].
#[derive(Clone)]
pub struct RedisBackendBuilder {
    url: String,
    prefix: String,
    settings: Settings,
    clock: Clock,
    limits: Limits,
    track_removals: bool,
    configure_notifications: bool,
}

impl fmt::Debug for RedisBackendBuilder {
    // Written out so a password in the URL stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackendBuilder")
            .field("url", &url::redact(&self.url))
            .field("prefix", &self.prefix)
            .field("settings", &self.settings)
            .field("clock", &self.clock)
            .field("limits", &self.limits)
            .field("track_removals", &self.track_removals)
            .field("configure_notifications", &self.configure_notifications)
            .finish()
    }
}

impl RedisBackendBuilder {
    pub(super) fn new(url: String) -> Self {
        RedisBackendBuilder {
            url,
            prefix: "tiercache:".to_owned(),
            settings: Settings {
                command_timeout: Duration::from_millis(250),
                connect_timeout: Duration::from_secs(2),
                reconnect_min: Duration::from_millis(50),
                reconnect_max: Duration::from_secs(1),
                breaker_threshold: 5,
                breaker_open_for: Duration::from_secs(1),
            },
            clock: Clock::system(),
            limits: Limits::DEFAULT,
            track_removals: false,
            configure_notifications: false,
        }
    }

    /// The prefix of every key this cache stores, so several caches can
    /// share a server: `clear` and `len` touch only this cache's keys,
    /// never those of a cache whose prefix begins with this one. Each key
    /// is stored as the prefix, the byte 0x1F, the key format's version
    /// and 0x1F again before the entry's key
    /// ([`RedisBackend::redis_key`]). `"tiercache:"` by default; it must
    /// not be empty nor contain 0x1F ([`ErrorKind::InvalidConfig`] from
    /// [`build`](Self::build)).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The longest a command may take before the call fails with
    /// [`ErrorKind::Timeout`]. 250 ms by default; `Duration::MAX` means
    /// no limit.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.settings.command_timeout = timeout;
        self
    }

    /// The longest one connection attempt (TCP, TLS and handshake) may
    /// take. Attempts run in the background; calls never wait for one.
    /// 2 s by default; `Duration::MAX` means no limit.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// The bounds of the exponential backoff between reconnection
    /// attempts: the first delay, doubled after each failure up to the
    /// longest. 50 ms and 1 s by default. The first delay also passes
    /// before the very first connection attempt: fred runs its
    /// reconnection policy from the start. Delays are counted in whole milliseconds up to
    /// `u32::MAX` (about 49 days), and longer ones (`Duration::MAX`) wait
    /// that long.
    pub fn reconnect_delay(mut self, first: Duration, longest: Duration) -> Self {
        self.settings.reconnect_min = first;
        self.settings.reconnect_max = longest;
        self
    }

    /// How many calls to a server must fail in a row (unreachable or timed
    /// out) before its circuit breaker opens. 5 by default; at least 1.
    pub fn breaker_threshold(mut self, failures: u32) -> Self {
        self.settings.breaker_threshold = failures;
        self
    }

    /// How long an open circuit breaker refuses calls before it lets one
    /// probe through; the probe's success closes it. 1 s by default; an
    /// open time too long to add to the clock (`Duration::MAX`) keeps an
    /// open breaker open for good.
    pub fn breaker_open_for(mut self, duration: Duration) -> Self {
        self.settings.breaker_open_for = duration;
        self
    }

    /// The clock expiry is read from. Every get checks the stored expiry
    /// against it, so a clock ahead of the server's still never sees an
    /// expired entry.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The key and value size limits, checked before anything is sent.
    /// The key limit applies to the caller's key, as in every other tier,
    /// so a stack accepts or rejects a key the same way in each tier; the
    /// prefix is added on top.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Whether to count the keys under this cache's prefix that Redis
    /// evicts (for `maxmemory`) and expires, for
    /// [`Backend::removals`](cache_core::Backend::removals). Off by
    /// default, because it needs the server's help and costs a connection:
    ///
    /// - the server must publish keyevent notifications of expired and
    ///   evicted keys: `notify-keyspace-events` must hold the flags `E`,
    ///   `x` and `e` (`A` covers `x` and `e`). Redis leaves them off by
    ///   default, since every notification costs the server some work;
    ///   [`configure_notifications`](Self::configure_notifications) lets
    ///   the tier add them;
    /// - the tier keeps one more connection per server, per primary on a
    ///   cluster (notifications are published only on the node that
    ///   removed the key), subscribed to `__keyevent@<db>__:expired` and
    ///   `__keyevent@<db>__:evicted`, and every cache on the server
    ///   receives every such notification, its own or not.
    ///
    /// Tracking is set up in the background, like the connections. Before
    /// subscribing, each connection reads the server's flags with
    /// `CONFIG GET`; if they are missing (and may not be added), or the
    /// server refuses the subscription, the build still succeeds, the
    /// cache works as before, [`removals`](cache_core::Backend::removals)
    /// answers `None` and
    /// [`removal_tracking`](RedisBackend::removal_tracking) says why. A
    /// server that refuses `CONFIG GET` (some managed services do) is
    /// trusted to have been configured by its operator.
    ///
    /// Keys are matched as [`len`](cache_core::Backend::len) and
    /// [`clear`](cache_core::Backend::clear) match them, by the delimited
    /// prefix: a cache whose prefix begins with this one's (`"app:"` and
    /// `"app:v2:"`) keeps its own counts.
    pub fn track_removals(mut self, on: bool) -> Self {
        self.track_removals = on;
        self
    }

    /// Whether [`track_removals`](Self::track_removals) may turn the
    /// server's notifications on itself: when `notify-keyspace-events`
    /// lacks `E`, `x` or `e`, the tier adds the missing flags with
    /// `CONFIG SET`, keeping those already set. Off by default, since it
    /// changes a setting every client of the server shares. When the
    /// server refuses `CONFIG` (a managed service), tracking is
    /// unavailable and [`removals`](cache_core::Backend::removals) answers
    /// `None`; the build still succeeds. No effect without
    /// `track_removals`.
    pub fn configure_notifications(mut self, on: bool) -> Self {
        self.configure_notifications = on;
        self
    }

    fn check(&self) -> Result<()> {
        KeyFormat::check_prefix(&self.prefix)?;
        let s = &self.settings;
        let problem = if s.command_timeout.is_zero() {
            Some("the command timeout must be above zero")
        } else if s.connect_timeout.is_zero() {
            Some("the connect timeout must be above zero")
        } else if s.reconnect_min.is_zero() || s.reconnect_min > s.reconnect_max {
            Some("the reconnect delays must be above zero, the first no longer than the longest")
        } else if s.breaker_threshold == 0 {
            Some("the breaker threshold must be at least one failure")
        } else if s.breaker_open_for.is_zero() {
            Some("the breaker's open time must be above zero")
        } else {
            None
        };
        match problem {
            Some(message) => Err(Error::new(ErrorKind::InvalidConfig, message)),
            None => Ok(()),
        }
    }

    /// Builds the backend. It returns at once: connections are made in
    /// the background, and until a server is reachable its calls fail
    /// fast with [`ErrorKind::Unavailable`].
    ///
    /// Must be called within a Tokio runtime, which runs the connections.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a URL that cannot be used (a
    /// `rediss://` URL needs the `redis-tls` feature) or settings that
    /// cannot work.
    pub async fn build(self) -> Result<RedisBackend> {
        self.check()?;
        let (routing, source) = match url::parse(&self.url)? {
            Target::Single(config) => (
                Routing::Single(Node::connect(config.clone(), &self.settings, None)),
                Source::Single(config),
            ),
            Target::Cluster { template, seeds } => {
                let cluster = Cluster::start(template.clone(), seeds, self.settings.clone());
                let source = Source::Cluster {
                    template,
                    cluster: Arc::downgrade(&cluster),
                };
                (Routing::Cluster(cluster), source)
            }
        };
        let tracking = self.track_removals.then(|| {
            Tracking::start(
                source,
                KeyFormat::new(&self.prefix).head().clone(),
                self.configure_notifications,
                self.settings.clone(),
            )
        });
        Ok(RedisBackend::new(
            routing,
            &self.prefix,
            self.clock,
            self.limits,
            tracking,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::Backend;

    #[tokio::test]
    async fn unusable_settings_are_invalid_config() {
        let url = "redis://127.0.0.1:1";
        let cases = [
            RedisBackend::builder(url).prefix(""),
            RedisBackend::builder(url).prefix("app\u{1f}v2:"),
            RedisBackend::builder(url).command_timeout(Duration::ZERO),
            RedisBackend::builder(url).breaker_threshold(0),
            RedisBackend::builder(url).breaker_open_for(Duration::ZERO),
            RedisBackend::builder(url)
                .reconnect_delay(Duration::from_secs(2), Duration::from_secs(1)),
            RedisBackend::builder("memcached://127.0.0.1:1"),
        ];
        for builder in cases {
            let err = builder.build().await.expect_err("rejected");
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
        }
    }

    #[tokio::test]
    async fn durations_too_long_for_the_clock_do_not_panic() {
        // Nothing listens on port 1, so every call fails for want of a
        // connection and the first failure opens the breaker, which adds
        // its open time to the clock.
        let tier = RedisBackend::builder("redis://127.0.0.1:1")
            .command_timeout(Duration::MAX)
            .connect_timeout(Duration::MAX)
            .reconnect_delay(Duration::MAX, Duration::MAX)
            .breaker_threshold(1)
            .breaker_open_for(Duration::MAX)
            .build()
            .await
            .expect("Duration::MAX is accepted for every duration");
        for _ in 0..3 {
            let err = tier.get(b"k").await.expect_err("no server");
            assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        }
        let stats = tier.stats();
        assert_eq!((stats.breaker_trips, stats.open_breakers), (1, 1));
        let err = tier
            .wait_for_connection(Duration::ZERO)
            .await
            .expect_err("no server");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
    }
}
