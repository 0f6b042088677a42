//! The index-linked queues of a shard, and the second chance that a node
//! with pending hits gets when it reaches the old end of one.

use super::{COUNT_BITS, DIRTY, NIL, PROBATION, PROTECTED, QueueId, Shard, ShardHash};
use crate::memory::sketch::aged;

impl<K: Eq, V: Clone, S: ShardHash<K>> Shard<K, V, S> {
    /// Appends a node at the most recent end of queue `q`.
    #[inline]
    pub(super) fn link_newest(&mut self, idx: u32, q: QueueId) {
        let queue = self.queues[q as usize];
        let weight = self.weight_of(idx);
        {
            let n = self.node_mut(idx);
            n.queue = q;
            n.older = queue.newest;
            n.newer = NIL;
        }
        if queue.newest == NIL {
            self.queues[q as usize].oldest = idx;
        } else {
            self.node_mut(queue.newest).newer = idx;
        }
        let queue = &mut self.queues[q as usize];
        queue.newest = idx;
        queue.weight += weight;
        queue.len += 1;
    }

    #[inline]
    pub(super) fn unlink(&mut self, idx: u32) {
        let (q, older, newer) = {
            let n = self.node(idx);
            (n.queue as usize, n.older, n.newer)
        };
        let weight = self.weight_of(idx);
        if older == NIL {
            self.queues[q].oldest = newer;
        } else {
            self.node_mut(older).newer = newer;
        }
        if newer == NIL {
            self.queues[q].newest = older;
        } else {
            self.node_mut(newer).older = older;
        }
        self.queues[q].weight -= weight;
        self.queues[q].len -= 1;
    }

    #[inline]
    pub(super) fn move_to(&mut self, idx: u32, q: QueueId) {
        if self.node(idx).queue == q && self.queues[q as usize].newest == idx {
            return;
        }
        self.unlink(idx);
        self.link_newest(idx, q);
    }

    /// Adds a node's pending hits to its own count (the sketch sees them
    /// when the node leaves); whether it had any.
    #[inline]
    pub(super) fn fold_pending(&mut self, idx: u32) -> bool {
        let pending = self.node_mut(idx).take_pending();
        if pending == 0 {
            return false;
        }
        let now = self.sketch.epoch();
        let node = self.node_mut(idx);
        let before = aged(node.freq & COUNT_BITS, node.epoch, now);
        let after = (before + pending).min(COUNT_BITS);
        node.freq = after | DIRTY;
        node.epoch = now;
        // Counted as the sketch counts: only what raised the count.
        self.sketch.note_additions(after - before);
        true
    }

    /// Reorders a node the way a hit would have: within the window and
    /// protected it moves to the new end; from probation it is promoted.
    pub(super) fn reorder_as_hit(&mut self, idx: u32) {
        let (queue, weight) = (self.node(idx).queue, self.weight_of(idx));
        match queue {
            PROBATION if weight <= self.protected_max => {
                self.move_to(idx, PROTECTED);
                self.demote_protected();
            }
            q => self.move_to(idx, q),
        }
    }

    /// Moves the protected queue's oldest entries to probation until it
    /// fits its share; an entry hit since its last visit is kept instead.
    pub(super) fn demote_protected(&mut self) {
        let mut visits = self.queues[PROTECTED as usize].len;
        while self.queues[PROTECTED as usize].weight > self.protected_max {
            let oldest = self.queues[PROTECTED as usize].oldest;
            if visits > 0 && self.fold_pending(oldest) {
                visits -= 1;
                self.move_to(oldest, PROTECTED);
            } else {
                self.move_to(oldest, PROBATION);
            }
        }
    }

    /// The oldest node of queue `q` that has no pending hits, giving every
    /// node passed over its second chance; `NIL` when the queue is empty.
    pub(super) fn oldest_unused(&mut self, q: QueueId) -> u32 {
        loop {
            let oldest = self.queues[q as usize].oldest;
            if oldest == NIL || !self.fold_pending(oldest) {
                return oldest;
            }
            self.reorder_as_hit(oldest);
        }
    }
}
