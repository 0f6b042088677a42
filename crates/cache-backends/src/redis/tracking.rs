//! Counting the keys Redis evicts and expires under a cache's prefix, from
//! keyspace notifications.
//!
//! Redis removes keys on its own, for `maxmemory` and when their
//! time-to-live runs out, and none of the tier's commands sees it happen.
//! A server whose `notify-keyspace-events` holds `E` (keyevent channels),
//! `x` (expired) and `e` (evicted) publishes the name of every such key on
//! `__keyevent@<db>__:expired` and `__keyevent@<db>__:evicted`. Those
//! messages go only to clients of the server that removed the key, so a
//! cluster needs a subscriber connection on every primary, and this module
//! keeps one per primary, following the slot map.
//!
//! Redis sends notifications once and forgets them: one published while a
//! subscriber is reconnecting is lost, so the counts are a lower bound.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use cache_core::{ErrorKind, Removals};
use fred::clients::Client;
use fred::error::Error as FredError;
use fred::interfaces::{ClientLike, ConfigInterface, EventInterface, PubsubInterface};
use fred::types::config::{Config, Server, ServerConfig};
use fred::types::{ConnectHandle, KeyspaceEvent};
use parking_lot::Mutex;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cluster::Cluster;
use super::errors;
use super::node::{self, Settings};

/// The server setting that turns notifications on.
const NOTIFY_SETTING: &str = "notify-keyspace-events";
/// How many notifications fred holds for the counting task before it
/// drops the oldest. Counting one is a prefix check and an atomic add, so
/// only a burst of this many arriving at once (a large eviction) outruns
/// it; what is dropped is reported in
/// [`RedisStats::missed_notifications`](super::RedisStats::missed_notifications).
/// fred sizes all of a client's event channels alike, so this costs memory
/// per subscriber connection and is kept moderate.
const EVENT_CAPACITY: usize = 1_024;
/// How long after a failed setup (a timeout, a dropped connection) a
/// subscriber tries again, when no reconnection prompts it sooner.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the subscribers are matched to the cluster's primaries.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How often that is tried while the slot map is not known yet.
const FOLLOW_SOON: Duration = Duration::from_millis(50);

/// Whether a [`RedisBackend`](super::RedisBackend) is counting what Redis
/// evicts and expires; from
/// [`removal_tracking`](super::RedisBackend::removal_tracking).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RemovalTracking {
    /// Not asked for: [`track_removals`](super::RedisBackendBuilder::track_removals)
    /// is off (the default).
    Off,
    /// Asked for, and not yet set up on every primary (still connecting).
    Starting,
    /// Subscribed on every primary, each configured to send the
    /// notifications (or, where the server refuses `CONFIG GET`, trusted
    /// to).
    Active,
    /// A primary cannot send the notifications: why. Its
    /// `notify-keyspace-events` lacks the flags and the tier may not or
    /// could not add them, or the server refused the subscription. The
    /// tier tries again whenever that connection is re-established.
    Unavailable(String),
}

/// One subscriber's state.
#[derive(Clone, Debug)]
enum NodeState {
    Starting,
    Active,
    Unavailable(String),
}

/// What every subscriber of one backend shares.
#[derive(Debug)]
struct Plan {
    /// What every key of the backend starts with (its prefix, delimited,
    /// and the key format's version): only keys starting with it count.
    head: Bytes,
    /// Whether a missing flag may be added with `CONFIG SET`.
    configure: bool,
    settings: Settings,
}

/// The counts, kept apart from the subscribers so that a subscriber
/// dropped with its former primary leaves its counts behind.
#[derive(Debug, Default)]
struct Counts {
    evicted: AtomicU64,
    expired: AtomicU64,
    missed: AtomicU64,
}

/// One subscriber connection and the task counting its notifications;
/// dropping it ends both.
struct Subscriber {
    state: Arc<Mutex<NodeState>>,
    task: JoinHandle<()>,
    connection: ConnectHandle,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Ending the connection task closes the socket; the counting task
        // would otherwise wait for notifications forever, since the client
        // it holds keeps its event channels open.
        self.task.abort();
        self.connection.abort();
    }
}

/// The subscribers of one backend, by `host:port` of their primary.
struct Shared {
    plan: Arc<Plan>,
    counts: Arc<Counts>,
    subscribers: Mutex<HashMap<String, Subscriber>>,
    /// Whether every primary has been subscribed at once; from then on a
    /// new primary still starting (after a failover) does not hide the
    /// counts.
    ever_active: AtomicBool,
}

/// Where the subscribers connect.
pub(super) enum Source {
    /// The one server, or the primary sentinels name (fred follows their
    /// failovers, and a reconnection sets the subscription up again).
    Single(Config),
    /// Every primary of a cluster, from its slot map.
    Cluster {
        /// The shared connection settings; the server is set per primary.
        template: Config,
        /// The cluster whose slot map names the primaries. Weak, so the
        /// task following it ends with the backend.
        cluster: Weak<Cluster>,
    },
}

/// Removal tracking for one backend: its subscribers and, on a cluster,
/// the task that keeps one on every primary. Dropping it ends them all.
pub(super) struct Tracking {
    shared: Arc<Shared>,
    follower: Option<JoinHandle<()>>,
}

impl Tracking {
    /// Starts subscribing in the background and returns at once.
    pub(super) fn start(
        source: Source,
        head: Bytes,
        configure: bool,
        settings: Settings,
    ) -> Tracking {
        let shared = Arc::new(Shared {
            plan: Arc::new(Plan {
                head,
                configure,
                settings,
            }),
            counts: Arc::new(Counts::default()),
            subscribers: Mutex::new(HashMap::new()),
            ever_active: AtomicBool::new(false),
        });
        let follower = match source {
            Source::Single(config) => {
                let (_, label) = node::describe(&config);
                let subscriber = shared.subscribe(config, label.clone());
                shared.subscribers.lock().insert(label, subscriber);
                None
            }
            Source::Cluster { template, cluster } => Some(tokio::spawn(follow(
                Arc::downgrade(&shared),
                cluster,
                template,
            ))),
        };
        Tracking { shared, follower }
    }

    /// The state of the subscribers, taken together.
    pub(super) fn state(&self) -> RemovalTracking {
        self.shared.state()
    }

    /// The counts, when they can be trusted: every primary has been
    /// subscribed (a primary that appeared since may still be starting)
    /// and none is known to be unable to send notifications.
    pub(super) fn removals(&self) -> Option<Removals> {
        match self.shared.state() {
            RemovalTracking::Active => {}
            RemovalTracking::Starting if self.shared.ever_active.load(Ordering::Relaxed) => {}
            _ => return None,
        }
        let counts = &self.shared.counts;
        let mut removals = Removals::default();
        removals.evicted = counts.evicted.load(Ordering::Relaxed);
        removals.expired = counts.expired.load(Ordering::Relaxed);
        Some(removals)
    }

    /// Notifications dropped because they arrived faster than they were
    /// counted.
    pub(super) fn missed(&self) -> u64 {
        self.shared.counts.missed.load(Ordering::Relaxed)
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        if let Some(follower) = self.follower.take() {
            follower.abort();
        }
        // Ended here rather than whenever the last reference to the
        // shared state goes, which the follower may briefly hold.
        self.shared.subscribers.lock().clear();
    }
}

impl Shared {
    fn state(&self) -> RemovalTracking {
        let subscribers = self.subscribers.lock();
        let mut starting = subscribers.is_empty();
        for subscriber in subscribers.values() {
            match &*subscriber.state.lock() {
                NodeState::Unavailable(why) => return RemovalTracking::Unavailable(why.clone()),
                NodeState::Starting => starting = true,
                NodeState::Active => {}
            }
        }
        if starting {
            RemovalTracking::Starting
        } else {
            self.ever_active.store(true, Ordering::Relaxed);
            RemovalTracking::Active
        }
    }

    /// Starts a subscriber connection to the server `config` names.
    fn subscribe(&self, config: Config, label: String) -> Subscriber {
        let db = config.database.unwrap_or(0);
        let client = node::new_client(config, &self.plan.settings, Some(EVENT_CAPACITY));
        // Taken before connecting, so the first connection's event is not
        // missed: fred reports it as a reconnection too.
        let reconnects = client.reconnect_rx();
        let events = client.keyspace_event_rx();
        let connection = client.connect();
        let state = Arc::new(Mutex::new(NodeState::Starting));
        let task = tokio::spawn(
            Listener {
                client,
                label,
                db,
                plan: self.plan.clone(),
                counts: self.counts.clone(),
                state: state.clone(),
            }
            .run(reconnects, events),
        );
        Subscriber {
            state,
            task,
            connection,
        }
    }

    /// Keeps one subscriber on each of `primaries` and none elsewhere.
    fn follow(&self, primaries: &[Server], template: &Config) {
        let wanted: HashMap<String, &Server> = primaries
            .iter()
            .map(|s| (format!("{}:{}", s.host, s.port), s))
            .collect();
        let mut subscribers = self.subscribers.lock();
        subscribers.retain(|label, _| wanted.contains_key(label));
        for (label, server) in wanted {
            if let Entry::Vacant(slot) = subscribers.entry(label) {
                let config = Config {
                    server: ServerConfig::Centralized {
                        server: server.clone(),
                    },
                    ..template.clone()
                };
                let label = slot.key().clone();
                slot.insert(self.subscribe(config, label));
            }
        }
    }
}

/// Keeps a subscriber on every primary of a cluster as its slot map
/// changes. It ends with the backend.
async fn follow(shared: Weak<Shared>, cluster: Weak<Cluster>, template: Config) {
    loop {
        let delay = {
            let (Some(shared), Some(cluster)) = (shared.upgrade(), cluster.upgrade()) else {
                return;
            };
            match cluster.map() {
                Ok(map) => {
                    let primaries: Vec<Server> =
                        map.primaries().iter().map(|n| n.server().clone()).collect();
                    shared.follow(&primaries, &template);
                    // Noted here as well as when asked, so a failover's new
                    // primary does not hide the counts while it starts.
                    shared.state();
                    FOLLOW_EVERY
                }
                Err(_) => FOLLOW_SOON,
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// Why a subscription could not be set up.
enum Failure {
    /// For now (timed out, disconnected): try again.
    Retry,
    /// The server will not do it: why.
    Refused(String),
}

/// The flags `notify-keyspace-events` lacks for keyevent notifications of
/// expired and evicted keys. `A` stands for every class of event, `x` and
/// `e` among them.
fn missing_flags(flags: &str) -> String {
    let all = flags.contains('A');
    let mut missing = String::new();
    if !flags.contains('E') {
        missing.push('E');
    }
    if !all && !flags.contains('x') {
        missing.push('x');
    }
    if !all && !flags.contains('e') {
        missing.push('e');
    }
    missing
}

/// Counts the notifications of one server.
struct Listener {
    client: Client,
    label: String,
    db: u8,
    plan: Arc<Plan>,
    counts: Arc<Counts>,
    state: Arc<Mutex<NodeState>>,
}

impl Listener {
    async fn run(self, mut reconnects: Receiver<Server>, mut events: Receiver<KeyspaceEvent>) {
        // When to set the subscription up: after each (re)connection, and
        // again after a failure that may pass.
        let mut set_up_at: Option<Instant> = None;
        loop {
            tokio::select! {
                reconnected = reconnects.recv() => match reconnected {
                    Ok(_) | Err(RecvError::Lagged(_)) => set_up_at = Some(Instant::now()),
                    Err(RecvError::Closed) => return,
                },
                event = events.recv() => match event {
                    Ok(event) => self.count(&event),
                    Err(RecvError::Lagged(n)) => {
                        self.counts.missed.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(set_up_at), if set_up_at.is_some() => {
                    set_up_at = match self.set_up().await {
                        Ok(()) => {
                            *self.state.lock() = NodeState::Active;
                            None
                        }
                        Err(Failure::Refused(why)) => {
                            *self.state.lock() = NodeState::Unavailable(why);
                            None
                        }
                        // The state stays as it was: a subscriber that was
                        // active keeps its counts while it reconnects.
                        Err(Failure::Retry) => Some(Instant::now() + RETRY_AFTER),
                    };
                }
            }
        }
    }

    fn count(&self, event: &KeyspaceEvent) {
        // The head ends with a separator no prefix contains, so a cache
        // whose prefix extends this one's (`app:` and `app:v2:`) does not
        // match, as in `len` and `clear`.
        if event.db != self.db || !event.key.as_bytes().starts_with(&self.plan.head) {
            return;
        }
        match event.operation.as_str() {
            "expired" => self.counts.expired.fetch_add(1, Ordering::Relaxed),
            "evicted" => self.counts.evicted.fetch_add(1, Ordering::Relaxed),
            _ => return,
        };
    }

    /// Checks (and, when allowed, completes) the server's notification
    /// flags, then subscribes. The check comes first: on the RESP2
    /// protocol a subscribed connection may send nothing else.
    async fn set_up(&self) -> Result<(), Failure> {
        let current = self
            .command(|c| async move {
                c.config_get::<HashMap<String, String>, _>(NOTIFY_SETTING)
                    .await
            })
            .await;
        match current {
            Ok(settings) => {
                let flags = settings.get(NOTIFY_SETTING).cloned().unwrap_or_default();
                let missing = missing_flags(&flags);
                if !missing.is_empty() {
                    if !self.plan.configure {
                        return Err(Failure::Refused(format!(
                            "{NOTIFY_SETTING} is {flags:?} on Redis at {}, without {missing:?}: \
                             set it to include E, x and e, or let the tier add them \
                             (configure_notifications)",
                            self.label
                        )));
                    }
                    let wanted = format!("{flags}{missing}");
                    self.command(|c| async move { c.config_set(NOTIFY_SETTING, wanted).await })
                        .await
                        .map_err(|f| self.refused(f, "refused CONFIG SET"))?;
                }
            }
            // A server that will not show its configuration (a managed
            // service) is trusted to have been configured by its operator,
            // unless the tier was asked to configure it, which it cannot.
            Err(Failure::Refused(_)) if !self.plan.configure => {}
            Err(f) => return Err(self.refused(f, "refused CONFIG GET")),
        }
        let channels = vec![
            format!("__keyevent@{}__:expired", self.db),
            format!("__keyevent@{}__:evicted", self.db),
        ];
        self.command(|c| async move { c.subscribe(channels).await })
            .await
            .map_err(|f| self.refused(f, "refused SUBSCRIBE"))
    }

    /// A refusal, with what was refused, or the failure as it was.
    fn refused(&self, failure: Failure, what: &str) -> Failure {
        match failure {
            Failure::Refused(why) => {
                Failure::Refused(format!("Redis at {} {what}: {why}", self.label))
            }
            Failure::Retry => Failure::Retry,
        }
    }

    /// Runs one setup command within the connect timeout: the server's
    /// error answer is a refusal, anything else passes.
    async fn command<T, F, Fut>(&self, command: F) -> Result<T, Failure>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T, FredError>>,
    {
        let within = self.plan.settings.connect_timeout;
        match tokio::time::timeout(within, command(self.client.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let why = e.details().to_owned();
                let err = errors::from_fred(e, &self.label, self.client.is_connected());
                if err.kind() == ErrorKind::Backend {
                    Err(Failure::Refused(why))
                } else {
                    Err(Failure::Retry)
                }
            }
            Err(_) => Err(Failure::Retry),
        }
    }
}

/// Waits until `at`; never, for `None` (the branch is disabled then).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_missing_flags_are_added() {
        assert_eq!(missing_flags(""), "Exe");
        assert_eq!(missing_flags("KEA"), "");
        assert_eq!(missing_flags("AK"), "E");
        assert_eq!(missing_flags("xE"), "e");
        assert_eq!(missing_flags("Kg$"), "Exe");
        assert_eq!(missing_flags("gxeE"), "");
    }
}
