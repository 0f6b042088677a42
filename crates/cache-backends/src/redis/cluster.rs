//! A Redis Cluster as one connection per primary and a slot map kept
//! current in the background.
//!
//! fred has a cluster client, but it treats its connections as one: when
//! any node drops, the whole client reconnects, and while one node stays
//! down every command fails, including those for slots other primaries
//! serve. A cache must keep serving what it can reach, so this tier holds
//! a plain fred client per primary, each reconnecting on its own, and
//! routes every key by its hash slot itself.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use cache_core::{Error, ErrorKind, Result};
use fred::interfaces::ClusterInterface;
use fred::types::Value;
use fred::types::cluster::ClusterRouting;
use fred::types::config::{Config, Server, ServerConfig};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::node::{Node, Settings};

/// The number of hash slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// The owner index of a slot no primary serves.
const UNASSIGNED: u16 = u16::MAX;
/// How often the slot map is refreshed when nothing asks for it.
const REFRESH_EVERY: Duration = Duration::from_secs(10);
/// The least time between two refreshes, so a burst of failing calls asks
/// the cluster once rather than once per call.
const REFRESH_GAP: Duration = Duration::from_millis(200);
/// The first delay between attempts to learn a slot map while none can be
/// had; it doubles after each failed attempt.
const RETRY_MIN: Duration = Duration::from_millis(50);
/// The longest delay between those attempts.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Which primary serves each slot.
#[derive(Debug)]
pub(super) struct SlotMap {
    owners: Box<[u16]>,
    primaries: Vec<Arc<Node>>,
}

impl SlotMap {
    /// The primary serving `slot`.
    pub(super) fn owner(&self, slot: u16) -> Result<&Arc<Node>> {
        match self.owners.get(usize::from(slot)) {
            Some(&i) if i != UNASSIGNED => Ok(&self.primaries[usize::from(i)]),
            _ => Err(Error::new(
                ErrorKind::Unavailable,
                format!("no Redis Cluster primary serves hash slot {slot}"),
            )),
        }
    }

    /// Every primary, each once.
    pub(super) fn primaries(&self) -> &[Arc<Node>] {
        &self.primaries
    }
}

/// The connections to a cluster and its current slot map.
pub(super) struct Cluster {
    /// The configuration every node connection starts from (credentials,
    /// TLS); only the server differs.
    template: Config,
    settings: Settings,
    /// The connections held, by `host:port`: the seeds from the URL and
    /// the primaries of the current slot map. The seeds stay for asking
    /// for slot maps; a former primary is dropped, so a cluster whose nodes
    /// are replaced over months does not leave connections retrying dead
    /// addresses.
    known: Mutex<HashMap<String, Arc<Node>>>,
    /// The labels of the seeds.
    seeds: Vec<String>,
    map: RwLock<Option<Arc<SlotMap>>>,
    refresh: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

fn label(server: &Server) -> String {
    format!("{}:{}", server.host, server.port)
}

impl Cluster {
    /// Starts connecting to the seed nodes and learning the slot map, in
    /// the background, and returns at once.
    pub(super) fn start(template: Config, seeds: Vec<Server>, settings: Settings) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            template,
            settings,
            known: Mutex::new(HashMap::new()),
            seeds: seeds.iter().map(label).collect(),
            map: RwLock::new(None),
            refresh: Arc::new(Notify::new()),
            task: Mutex::new(None),
        });
        for seed in seeds {
            cluster.node(&mut cluster.known.lock(), &seed);
        }
        let task = tokio::spawn(maintain(Arc::downgrade(&cluster), cluster.refresh.clone()));
        *cluster.task.lock() = Some(task);
        cluster
    }

    /// The current slot map.
    pub(super) fn map(&self) -> Result<Arc<SlotMap>> {
        self.map.read().clone().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "the Redis Cluster's slot map is not known yet; still connecting",
            )
        })
    }

    /// Every node connection held: the seeds and the primaries.
    pub(super) fn nodes(&self) -> Vec<Arc<Node>> {
        self.known.lock().values().cloned().collect()
    }

    /// The connection to `server`, started if there is none yet.
    fn node(&self, known: &mut HashMap<String, Arc<Node>>, server: &Server) -> Arc<Node> {
        known
            .entry(label(server))
            .or_insert_with(|| {
                let config = Config {
                    server: ServerConfig::Centralized {
                        server: server.clone(),
                    },
                    ..self.template.clone()
                };
                Node::connect(config, &self.settings, Some(self.refresh.clone()))
            })
            .clone()
    }

    /// Asks a connected node for the slot map and installs it; `false` if
    /// no node could answer with one.
    async fn refresh_once(&self) -> bool {
        let mut candidates = self.nodes();
        // Connected nodes first: one that is down would only fail fast, but
        // there is no point asking it.
        candidates.sort_by_key(|n| !n.is_connected());
        for node in candidates {
            let answer = node
                .call_unguarded(|c| async move { c.cluster_slots::<Value>().await })
                .await;
            let Ok(answer) = answer else { continue };
            let Ok(routing) =
                ClusterRouting::from_cluster_slots(answer, node.server().host.clone())
            else {
                continue;
            };
            // A node whose cluster is not formed yet answers with no slots.
            if !routing.slots().is_empty() {
                self.install(&routing);
                return true;
            }
        }
        false
    }

    fn install(&self, routing: &ClusterRouting) {
        let mut owners = vec![UNASSIGNED; SLOTS].into_boxed_slice();
        let mut primaries: Vec<Arc<Node>> = Vec::new();
        let mut index: HashMap<String, u16> = HashMap::new();
        let mut known = self.known.lock();
        for range in routing.slots() {
            let i = *index.entry(label(&range.primary)).or_insert_with(|| {
                primaries.push(self.node(&mut known, &range.primary));
                u16::try_from(primaries.len() - 1).unwrap_or(UNASSIGNED)
            });
            let (start, end) = (usize::from(range.start), usize::from(range.end));
            if start <= end && end < SLOTS {
                owners[start..=end].fill(i);
            }
        }
        known.retain(|label, _| index.contains_key(label) || self.seeds.contains(label));
        drop(known);
        *self.map.write() = Some(Arc::new(SlotMap { owners, primaries }));
    }
}

impl fmt::Debug for Cluster {
    // Written out so the template, which holds the password, stays out of
    // logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("nodes", &self.known.lock().keys().collect::<Vec<_>>())
            .field("mapped", &self.map.read().is_some())
            .finish()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

/// Keeps the slot map current: at once until one is known, then whenever a
/// call finds a node down or redirected, and periodically to notice
/// failovers nobody has tripped over yet. It ends with the cluster.
async fn maintain(cluster: Weak<Cluster>, refresh: Arc<Notify>) {
    let mut retry = RETRY_MIN;
    loop {
        let Some(strong) = cluster.upgrade() else {
            return;
        };
        let learned = strong.refresh_once().await;
        drop(strong);
        if learned {
            retry = RETRY_MIN;
            tokio::select! {
                () = refresh.notified() => {}
                () = tokio::time::sleep(REFRESH_EVERY) => {}
            }
            tokio::time::sleep(REFRESH_GAP).await;
        } else {
            tokio::time::sleep(retry).await;
            retry = (retry * 2).min(RETRY_MAX);
        }
    }
}
