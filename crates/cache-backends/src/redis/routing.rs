//! Which connection serves a key: the one server, or the primary that owns
//! the key's hash slot.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use cache_core::Result;
use fred::util::redis_keyslot;

use super::cluster::Cluster;
use super::node::Node;

/// The keys of one batch sent to one node: positions in the caller's key
/// list, split into groups a single multi-key command may carry.
#[derive(Debug)]
pub(super) struct NodeBatch {
    /// The node serving every key of the batch.
    pub(super) node: Arc<Node>,
    /// Positions of keys, grouped so that each group is in one hash slot
    /// on a cluster (multi-key commands may not cross slots there); a
    /// single server takes them all in one group.
    pub(super) groups: Vec<Vec<usize>>,
}

/// Key positions by hash slot.
type SlotGroups = BTreeMap<u16, Vec<usize>>;

/// How a backend reaches its data.
#[derive(Debug)]
pub(super) enum Routing {
    /// One server, or the primary a sentinel points at.
    Single(Arc<Node>),
    /// A Redis Cluster.
    Cluster(Arc<Cluster>),
}

impl Routing {
    /// The node serving `key` (a full, prefixed key).
    pub(super) fn node_for(&self, key: &[u8]) -> Result<Arc<Node>> {
        match self {
            Routing::Single(node) => Ok(node.clone()),
            Routing::Cluster(cluster) => Ok(cluster.map()?.owner(redis_keyslot(key))?.clone()),
        }
    }

    /// The nodes that together hold every key: the one server, or every
    /// primary of the cluster.
    pub(super) fn primaries(&self) -> Result<Vec<Arc<Node>>> {
        match self {
            Routing::Single(node) => Ok(vec![node.clone()]),
            Routing::Cluster(cluster) => Ok(cluster.map()?.primaries().to_vec()),
        }
    }

    /// Every connection, for statistics.
    pub(super) fn nodes(&self) -> Vec<Arc<Node>> {
        match self {
            Routing::Single(node) => vec![node.clone()],
            Routing::Cluster(cluster) => cluster.nodes(),
        }
    }

    /// Whether every node that holds data is connected.
    pub(super) fn is_ready(&self) -> bool {
        self.primaries()
            .is_ok_and(|nodes| nodes.iter().all(|n| n.is_connected()))
    }

    /// Splits `keys` (full, prefixed keys) by the node that serves them
    /// and, on a cluster, by hash slot; positions keep the order of `keys`
    /// within each group.
    pub(super) fn batches(&self, keys: &[Bytes]) -> Result<Vec<NodeBatch>> {
        match self {
            Routing::Single(node) => Ok(vec![NodeBatch {
                node: node.clone(),
                groups: vec![(0..keys.len()).collect()],
            }]),
            Routing::Cluster(cluster) => {
                let map = cluster.map()?;
                // Ordered maps, so the same keys make the same commands and
                // tests can rely on it.
                let mut by_node: BTreeMap<String, (Arc<Node>, SlotGroups)> = BTreeMap::new();
                for (i, key) in keys.iter().enumerate() {
                    let slot = redis_keyslot(key);
                    let node = map.owner(slot)?;
                    by_node
                        .entry(node.label().to_owned())
                        .or_insert_with(|| (node.clone(), BTreeMap::new()))
                        .1
                        .entry(slot)
                        .or_default()
                        .push(i);
                }
                Ok(by_node
                    .into_values()
                    .map(|(node, slots)| NodeBatch {
                        node,
                        groups: slots.into_values().collect(),
                    })
                    .collect())
            }
        }
    }

    /// Splits keys found on one node into groups a single multi-key command
    /// may carry: one group on a single server, one per hash slot on a
    /// cluster.
    pub(super) fn by_slot(&self, keys: Vec<Bytes>) -> Vec<Vec<Bytes>> {
        match self {
            Routing::Single(_) => vec![keys],
            Routing::Cluster(_) => {
                let mut slots: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
                for key in keys {
                    slots.entry(redis_keyslot(&key)).or_default().push(key);
                }
                slots.into_values().collect()
            }
        }
    }
}
