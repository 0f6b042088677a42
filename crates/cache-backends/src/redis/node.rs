//! One server connection: a fred client that reconnects by itself, behind a
//! deadline and a circuit breaker.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cache_core::Result;
use fred::clients::{Client, WithOptions};
use fred::error::Error as FredError;
use fred::interfaces::ClientLike;
use fred::types::ConnectHandle;
use fred::types::config::{
    Config, ConnectionConfig, Options, PerformanceConfig, ReconnectPolicy, Server, ServerConfig,
    TcpConfig, UnresponsiveConfig,
};
use tokio::sync::Notify;

use super::breaker::Breaker;
use super::errors;

/// How every connection of one backend behaves, from its builder.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    /// The deadline of one command (or one pipeline).
    pub(super) command_timeout: Duration,
    /// The deadline of one connection attempt, handshake included.
    pub(super) connect_timeout: Duration,
    /// The first delay between reconnection attempts.
    pub(super) reconnect_min: Duration,
    /// The longest delay between reconnection attempts.
    pub(super) reconnect_max: Duration,
    /// Failures in a row that open a breaker.
    pub(super) breaker_threshold: u32,
    /// How long an open breaker refuses calls before a probe.
    pub(super) breaker_open_for: Duration,
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The address a configuration connects to first, and a label for
/// messages: `host:port`, or the service and sentinel for a
/// sentinel-managed primary.
pub(super) fn describe(config: &Config) -> (Server, String) {
    let server = config
        .server
        .hosts()
        .into_iter()
        .next()
        .unwrap_or_else(|| Server::new("localhost", 6379));
    let label = match &config.server {
        ServerConfig::Sentinel { service_name, .. } => {
            format!(
                "{service_name} (via sentinel {}:{})",
                server.host, server.port
            )
        }
        _ => format!("{}:{}", server.host, server.port),
    };
    (server, label)
}

/// A fred client for `config` that reconnects by itself with the backend's
/// timeouts and backoff; not connected yet. `event_capacity` sets how many
/// pushed events (such as keyspace notifications) fred buffers for a slow
/// listener, when the default is not enough.
pub(super) fn new_client(
    mut config: Config,
    settings: &Settings,
    event_capacity: Option<usize>,
) -> Client {
    // A first connection that fails must not fail the client: it runs
    // the same reconnection policy as a connection that drops later, so
    // a backend can be built while its server is down.
    config.fail_fast = false;
    let defaults = PerformanceConfig::default();
    let performance = PerformanceConfig {
        default_command_timeout: settings.command_timeout,
        broadcast_channel_capacity: event_capacity.unwrap_or(defaults.broadcast_channel_capacity),
        ..defaults
    };
    // A connection whose peer vanished without closing it (a network
    // partition) would otherwise time out every command until TCP gives
    // up, minutes later; fred closes and reopens a connection that has
    // left a command unanswered this long. Saturating: a command timeout
    // of `Duration::MAX` means no limit, not an overflow.
    let unresponsive = settings
        .command_timeout
        .saturating_mul(4)
        .max(Duration::from_secs(1));
    let connection = ConnectionConfig {
        connection_timeout: settings.connect_timeout,
        internal_command_timeout: settings.connect_timeout,
        max_command_attempts: 1,
        tcp: TcpConfig {
            nodelay: Some(true),
            ..TcpConfig::default()
        },
        unresponsive: UnresponsiveConfig {
            max_timeout: Some(unresponsive),
            interval: unresponsive / 4,
        },
        ..ConnectionConfig::default()
    };
    let policy = ReconnectPolicy::new_exponential(
        0,
        millis(settings.reconnect_min).max(1),
        millis(settings.reconnect_max).max(1),
        2,
    );
    Client::new(config, Some(performance), Some(connection), Some(policy))
}

/// A connection to one server (or one sentinel-managed primary).
#[derive(Debug)]
pub(super) struct Node {
    server: Server,
    label: String,
    client: Client,
    options: Options,
    timeout: Duration,
    breaker: Breaker,
    failures: AtomicU64,
    task: ConnectHandle,
    on_outage: Option<Arc<Notify>>,
}

impl Node {
    /// Starts connecting to the server `config` names, in the background,
    /// and returns at once.
    ///
    /// `on_outage` is woken whenever a call finds the server unreachable or
    /// redirected, so a cluster can look for a new slot map.
    pub(super) fn connect(
        config: Config,
        settings: &Settings,
        on_outage: Option<Arc<Notify>>,
    ) -> Arc<Node> {
        let (server, label) = describe(&config);
        let client = new_client(config, settings, None);
        let task = client.connect();
        Arc::new(Node {
            server,
            label,
            client,
            // fail_fast: a command sent while the connection is down fails
            // at once instead of waiting in fred's queue for a reconnection.
            // One attempt: a write retried after a reconnection could land
            // after a newer one.
            options: Options {
                timeout: Some(settings.command_timeout),
                fail_fast: true,
                max_attempts: Some(1),
                ..Options::default()
            },
            timeout: settings.command_timeout,
            breaker: Breaker::new(settings.breaker_threshold, settings.breaker_open_for),
            failures: AtomicU64::new(0),
            task,
            on_outage,
        })
    }

    /// The server's address.
    pub(super) fn server(&self) -> &Server {
        &self.server
    }

    /// `host:port`, for messages.
    pub(super) fn label(&self) -> &str {
        &self.label
    }

    /// Whether the connection is up now.
    pub(super) fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Whether this node's breaker is refusing calls.
    pub(super) fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// How many times this node's breaker has opened.
    pub(super) fn breaker_trips(&self) -> u64 {
        self.breaker.trips()
    }

    /// Calls that failed because the server was unreachable, slow, or
    /// skipped by the breaker.
    pub(super) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Runs one command (or pipeline) through the breaker, within the
    /// command timeout.
    pub(super) async fn call<T, F, Fut>(&self, command: F) -> Result<T>
    where
        F: FnOnce(WithOptions<Client>) -> Fut,
        Fut: Future<Output = Result<T, FredError>>,
    {
        let permit = match self.breaker.admit() {
            Ok(permit) => permit,
            Err(refused) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(refused);
            }
        };
        let result = self.call_unguarded(command).await;
        match &result {
            Err(err) if errors::is_outage(err) => {
                permit.failure();
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => permit.success(),
        }
        result
    }

    /// Runs one command within the command timeout, without the breaker:
    /// for looking up a cluster's slot map, which must go on while the
    /// breakers of data calls are open.
    pub(super) async fn call_unguarded<T, F, Fut>(&self, command: F) -> Result<T>
    where
        F: FnOnce(WithOptions<Client>) -> Fut,
        Fut: Future<Output = Result<T, FredError>>,
    {
        let result = if self.client.is_connected() {
            let running = command(self.client.with_options(&self.options));
            // fred applies the same timeout to the reply; this one also
            // bounds the time spent before the command reaches fred's
            // router, which fred's own timeout does not cover.
            match tokio::time::timeout(self.timeout, running).await {
                Err(_) => Err(errors::timed_out(&self.label, self.timeout)),
                Ok(Err(e)) => Err(errors::from_fred(e, &self.label, self.is_connected())),
                Ok(Ok(value)) => Ok(value),
            }
        } else {
            Err(errors::disconnected(&self.label))
        };
        if let (Err(err), Some(notify)) = (&result, &self.on_outage)
            && (errors::is_outage(err) || errors::is_redirect(err))
        {
            notify.notify_one();
        }
        result
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // The connection task would otherwise keep reconnecting to a server
        // nobody uses any more; ending it closes the socket.
        self.task.abort();
    }
}
