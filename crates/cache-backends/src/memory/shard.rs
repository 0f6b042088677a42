//! One partition of the memory engine: a hash table over a slab of nodes
//! threaded on an exact LRU list.
//!
//! The shard is plain data; the caller holds its lock. Removed entries are
//! pushed onto a notification list so the eviction listener runs after the
//! lock is released.

use hashbrown::HashTable;

use super::RemovalCause;

/// The "no node" index in the list links.
const NIL: u32 = u32::MAX;
/// The expiry of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// Entries removed while the lock was held, for the eviction listener.
pub(crate) type Removed<K, V> = Vec<(K, V, RemovalCause)>;

struct Node<K, V> {
    key: K,
    value: V,
    hash: u64,
    weight: u32,
    /// Absolute expiry in unix ms, [`NEVER`] for none.
    expires_at: u64,
    /// Last read or write in unix ms; only maintained with time-to-idle.
    last_access: u64,
    /// Towards the most recently used end.
    prev: u32,
    /// Towards the least recently used end.
    next: u32,
}

/// How a shard decides an entry has expired.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ExpiryRule {
    /// Time-to-idle in ms, if set.
    pub(crate) tti_ms: Option<u64>,
}

impl ExpiryRule {
    /// Whether reads of this entry must consult the clock at all.
    #[inline]
    fn needs_clock<K, V>(&self, node: &Node<K, V>) -> bool {
        node.expires_at != NEVER || self.tti_ms.is_some()
    }

    #[inline]
    fn expired<K, V>(&self, node: &Node<K, V>, now: u64) -> bool {
        node.expires_at <= now
            || self
                .tti_ms
                .is_some_and(|tti| node.last_access.saturating_add(tti) <= now)
    }
}

pub(crate) struct Shard<K, V> {
    table: HashTable<u32>,
    nodes: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    /// Most recently used.
    head: u32,
    /// Least recently used: the next victim.
    tail: u32,
    weight: u64,
    capacity: u64,
}

impl<K: Eq, V: Clone> Shard<K, V> {
    pub(crate) fn new(capacity: u64) -> Self {
        Shard {
            table: HashTable::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            weight: 0,
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn weight(&self) -> u64 {
        self.weight
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    fn node(&self, idx: u32) -> &Node<K, V> {
        self.nodes[idx as usize]
            .as_ref()
            .expect("linked index points at a live node")
    }

    fn node_mut(&mut self, idx: u32) -> &mut Node<K, V> {
        self.nodes[idx as usize]
            .as_mut()
            .expect("linked index points at a live node")
    }

    fn find(&self, hash: u64, key: &K) -> Option<u32> {
        let nodes = &self.nodes;
        self.table
            .find(hash, |&i| {
                nodes[i as usize]
                    .as_ref()
                    .is_some_and(|n| n.hash == hash && n.key == *key)
            })
            .copied()
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = self.node(idx);
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node_mut(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node_mut(next).prev = prev;
        }
    }

    fn push_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let n = self.node_mut(idx);
            n.prev = NIL;
            n.next = old_head;
        }
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.node_mut(old_head).prev = idx;
        }
        self.head = idx;
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Unlinks a node and frees its slot, returning its key and value.
    fn take(&mut self, idx: u32) -> (K, V) {
        self.unlink(idx);
        let node = self.nodes[idx as usize]
            .take()
            .expect("taken index points at a live node");
        let hash = node.hash;
        self.table
            .find_entry(hash, |&i| i == idx)
            .expect("every live node is in the table")
            .remove();
        self.free.push(idx);
        self.weight -= u64::from(node.weight);
        (node.key, node.value)
    }

    /// Looks a key up, moving a live entry to the most recent end and
    /// removing an expired one.
    pub(crate) fn get(
        &mut self,
        hash: u64,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        removed: &mut Removed<K, V>,
    ) -> Option<V> {
        let idx = self.find(hash, key)?;
        if rule.needs_clock(self.node(idx)) {
            let now = now();
            if rule.expired(self.node(idx), now) {
                let (k, v) = self.take(idx);
                removed.push((k, v, RemovalCause::Expired));
                return None;
            }
            if rule.tti_ms.is_some() {
                self.node_mut(idx).last_access = now;
            }
        }
        self.touch(idx);
        Some(self.node(idx).value.clone())
    }

    /// Whether a live entry exists, without changing recency.
    pub(crate) fn contains(
        &self,
        hash: u64,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
    ) -> bool {
        self.find(hash, key).is_some_and(|idx| {
            let n = self.node(idx);
            !(rule.needs_clock(n) && rule.expired(n, now()))
        })
    }

    /// Stores an entry, replacing any earlier value, then evicts least
    /// recently used entries until the shard is within capacity. An entry
    /// heavier than the whole shard, or already expired, is not stored (and
    /// the earlier value is still removed, so a stale value never outlives
    /// a rejected update).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        weight: u32,
        expires_at: u64,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        if let Some(idx) = self.find(hash, &key) {
            let (k, v) = self.take(idx);
            removed.push((k, v, RemovalCause::Replaced));
        }
        if expires_at <= now {
            removed.push((key, value, RemovalCause::Expired));
            return;
        }
        if u64::from(weight) > self.capacity {
            removed.push((key, value, RemovalCause::Size));
            return;
        }
        let node = Node {
            key,
            value,
            hash,
            weight,
            expires_at,
            last_access: now,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = Some(node);
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("a shard holds fewer than 2^32 - 1 entries");
                self.nodes.push(Some(node));
                i
            }
        };
        let nodes = &self.nodes;
        self.table.insert_unique(hash, idx, |&i| {
            nodes[i as usize].as_ref().map_or(0, |n| n.hash)
        });
        self.push_front(idx);
        self.weight += u64::from(weight);
        self.evict_to_capacity(rule, now, removed);
    }

    fn evict_to_capacity(&mut self, rule: ExpiryRule, now: u64, removed: &mut Removed<K, V>) {
        while self.weight > self.capacity && self.tail != NIL {
            let victim = self.tail;
            // The rule, not just the absolute expiry, so that an entry idle
            // past its time-to-idle is reported as expired, not as evicted.
            let expired = rule.expired(self.node(victim), now);
            let (k, v) = self.take(victim);
            let cause = if expired {
                RemovalCause::Expired
            } else {
                RemovalCause::Size
            };
            removed.push((k, v, cause));
        }
    }

    pub(crate) fn remove(
        &mut self,
        hash: u64,
        key: &K,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        removed: &mut Removed<K, V>,
    ) -> Option<V> {
        let idx = self.find(hash, key)?;
        let expired = {
            let n = self.node(idx);
            rule.needs_clock(n) && rule.expired(n, now())
        };
        let (k, v) = self.take(idx);
        if expired {
            removed.push((k, v, RemovalCause::Expired));
            None
        } else {
            removed.push((k, v.clone(), RemovalCause::Explicit));
            Some(v)
        }
    }

    /// Removes every expired entry.
    pub(crate) fn purge_expired(
        &mut self,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        let mut idx = self.tail;
        while idx != NIL {
            let (prev, expired) = {
                let n = self.node(idx);
                (n.prev, rule.expired(n, now))
            };
            if expired {
                let (k, v) = self.take(idx);
                removed.push((k, v, RemovalCause::Expired));
            }
            idx = prev;
        }
    }

    pub(crate) fn clear(&mut self, removed: &mut Removed<K, V>) {
        while self.tail != NIL {
            let (k, v) = self.take(self.tail);
            removed.push((k, v, RemovalCause::Explicit));
        }
        self.nodes.clear();
        self.free.clear();
    }

    /// Checks every internal invariant, panicking with what broke.
    pub(crate) fn validate(&self) {
        let mut count = 0usize;
        let mut weight = 0u64;
        let mut prev = NIL;
        let mut idx = self.head;
        while idx != NIL {
            let n = self.node(idx);
            assert_eq!(n.prev, prev, "list back-link broken at {idx}");
            assert_eq!(
                self.find(n.hash, &n.key),
                Some(idx),
                "listed node {idx} not findable in the table"
            );
            count += 1;
            weight += u64::from(n.weight);
            assert!(count <= self.nodes.len(), "list has a cycle");
            prev = idx;
            idx = n.next;
        }
        assert_eq!(self.tail, prev, "tail is not the last listed node");
        assert_eq!(count, self.table.len(), "list and table disagree on count");
        assert_eq!(weight, self.weight, "weight total is wrong");
        assert!(self.weight <= self.capacity, "shard over capacity");
        let live = self.nodes.iter().filter(|n| n.is_some()).count();
        assert_eq!(live, count, "orphaned nodes in the slab");
        assert_eq!(
            live + self.free.len(),
            self.nodes.len(),
            "free list is wrong"
        );
    }
}
