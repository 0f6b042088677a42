//! The write path of a shard: storing an entry, as an update in place or
//! as a newcomer that must win its place, and the bookkeeping every write
//! does.

use std::sync::atomic::AtomicU8;

use super::eviction::Contest;
use super::{
    MAX_PENDING, NIL, NO_EXPIRY, Node, PROBATION, PROTECTED, Removed, Shard, ShardHash, WINDOW,
    table_hash,
};
use crate::memory::RemovalCause;
use crate::memory::expiry::{ExpiryRule, NEVER};

impl<K: Eq, V: Clone, S: ShardHash<K>> Shard<K, V, S> {
    /// Counts a write, and lets the hill climber look every 64: it acts
    /// once per thousands of requests, so that is often enough and keeps
    /// its cost off most writes.
    #[inline]
    fn count_write(&mut self) {
        self.writes = self.writes.wrapping_add(1);
        if self.climbs && self.writes.is_multiple_of(64) {
            self.climb();
        }
    }

    /// Stores an entry, replacing any earlier value, then evicts until the
    /// shard is within capacity. An entry heavier than the whole shard, or
    /// already expired, is not stored (and the earlier value is still
    /// removed, so a stale value never outlives a rejected update).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        hash: u32,
        key: K,
        value: V,
        weight: u32,
        expires_at: u64,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        removed: &mut Removed<K, V>,
    ) {
        debug_assert_eq!(
            self.hasher.hash32(&key),
            hash,
            "the caller's hash and the shard's hasher disagree"
        );
        // Time matters only if something here can expire; otherwise the
        // clock is not read (it costs more than the rest of an update).
        let timed = expires_at != NEVER || rule.tti_ms.is_some() || self.expiries.has_live();
        let now = if timed { now() } else { 0 };
        if timed {
            self.expire(rule, now, removed);
        }
        let mut existing = self.find(hash, &key);
        // The common update changes neither expiry nor weight: nothing in
        // the shard can expire, none is asked for, and every entry weighs
        // 1. It replaces the value and counts as a use, and nothing else
        // moves.
        if let Some(idx) = existing
            && !timed
            && !self.weighted
        {
            let node = self.node_mut(idx);
            debug_assert_eq!(node.expiry, NO_EXPIRY, "an expiry record outside the wheel");
            let pending = node.pending.get_mut();
            *pending = (*pending + 1).min(MAX_PENDING);
            let old = std::mem::replace(&mut node.value, value);
            removed.push((key, old, RemovalCause::Replaced));
            self.count_write();
            return;
        }
        // An entry that had already expired is reported as expired, not as
        // replaced, whether or not the timer wheel got to it first; and the
        // new value starts afresh instead of inheriting its history.
        if let Some(idx) = existing
            && self.is_expired(idx, rule, now)
        {
            let (k, v) = self.take(idx);
            removed.push((k, v, RemovalCause::Expired));
            existing = None;
        }
        if expires_at <= now || u64::from(weight) > self.capacity {
            if let Some(idx) = existing {
                let (k, v) = self.take(idx);
                removed.push((k, v, RemovalCause::Replaced));
            }
            let cause = if expires_at <= now {
                RemovalCause::Expired
            } else {
                RemovalCause::Size
            };
            removed.push((key, value, cause));
            return;
        }
        if let Some(idx) = existing {
            // An update keeps the entry's place and history and counts as
            // a use; only its weight may change.
            let q = self.node(idx).queue as usize;
            let old_weight = self.weight_of(idx);
            self.set_weight(idx, weight);
            let (old, expiry) = {
                let n = self.node_mut(idx);
                let pending = n.pending.get_mut();
                *pending = (*pending + 1).min(MAX_PENDING);
                let old = std::mem::replace(&mut n.value, value);
                (old, n.expiry)
            };
            self.queues[q].weight = self.queues[q].weight - old_weight + u64::from(weight);
            removed.push((key, old, RemovalCause::Replaced));
            match (expiry != NO_EXPIRY, rule.wants_record(expires_at)) {
                (true, true) => self.expiries.update(expiry, expires_at, now, rule),
                (true, false) => {
                    self.expiries.remove(expiry);
                    self.node_mut(idx).expiry = NO_EXPIRY;
                }
                (false, true) => {
                    self.node_mut(idx).expiry = self.expiries.add(idx, expires_at, now, rule);
                }
                (false, false) => {}
            }
            if q == PROTECTED as usize {
                // The update may have made the entry heavier.
                self.demote_protected();
            }
        } else {
            // The sketch holds the key's history; from here on its hits
            // are counted on the node, which the policy reads anyway.
            self.sketch.ensure_capacity(self.table.len() as u64 + 1);
            let freq = self.sketch.increment_and_estimate(u64::from(hash));
            // A key turned away recently and asked for again goes straight
            // to main.
            let returning = self.rejects.as_mut().is_some_and(|r| r.take(hash));
            // Without a window a new key is at once the candidate for main,
            // so in a full shard it meets its victim before it is stored. A
            // loser is turned away without being stored: the same outcome
            // as storing and evicting it, for none of the work.
            let contest = (!returning
                && self.window_max == 0
                && !self.weighted
                && self.weight() == self.capacity)
                .then(|| self.contest(freq, rule, now));
            if matches!(contest, Some(Contest::Rejected | Contest::NoVictim)) {
                if matches!(contest, Some(Contest::Rejected))
                    && let Some(rejects) = self.rejects.as_mut()
                {
                    rejects.add(hash);
                }
                removed.push((key, value, RemovalCause::Size));
                self.count_write();
                return;
            }
            let node = Node {
                key,
                value,
                older: NIL,
                newer: NIL,
                expiry: NO_EXPIRY,
                queue: WINDOW,
                pending: AtomicU8::new(0),
                freq,
                epoch: self.sketch.epoch(),
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
            self.set_weight(idx, weight);
            let (nodes, hasher) = (&self.nodes, &self.hasher);
            self.table.insert_unique(table_hash(hash), idx, |&i| {
                nodes[i as usize]
                    .as_ref()
                    .map_or(0, |n| table_hash(hasher.hash32(&n.key)))
            });
            if rule.wants_record(expires_at) {
                self.node_mut(idx).expiry = self.expiries.add(idx, expires_at, now, rule);
            }
            if let Some(Contest::Evict(victim)) = contest {
                // It won its contest: it joins probation, as the empty
                // window would have passed it on, and its victim goes.
                self.link_newest(idx, PROBATION);
                self.evict(victim, rule, now, removed);
                self.count_write();
                return;
            }
            self.link_newest(idx, if returning { PROBATION } else { WINDOW });
        }
        self.evict_to_capacity(rule, now, removed);
        self.count_write();
    }

    /// Records the weight of node `idx` (a weightless shard only checks it).
    #[inline]
    fn set_weight(&mut self, idx: u32, weight: u32) {
        if self.weighted {
            let i = idx as usize;
            if self.weights.len() <= i {
                self.weights.resize(i + 1, 0);
            }
            self.weights[i] = weight;
        } else {
            debug_assert_eq!(weight, 1, "an unweighted shard holds weight 1 only");
        }
    }
}
