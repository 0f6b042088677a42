//! Eviction and admission: windows overflow into probation, candidates
//! meet victims before the frequency sketch, the hill climber resizes the
//! window, and a partition changes its capacity.

use super::{
    DIRTY, NIL, PROBATION, PROTECTED, RANDOM_ADMIT_MASK, Removed, Shard, ShardHash, WARM_CANDIDATE,
    WINDOW, climber_sample,
};
use crate::memory::RemovalCause;
use crate::memory::expiry::ExpiryRule;

/// How a candidate's contest with its victim ends.
pub(super) enum Contest {
    /// The candidate stays; this node makes room for it.
    Evict(u32),
    /// The candidate lost to its victim on counts.
    Rejected,
    /// Probation held nothing to compare the candidate with: it goes.
    NoVictim,
}

impl<K: Eq, V: Clone, S: ShardHash<K>> Shard<K, V, S> {
    pub(super) fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Evicts a node for size, or as expired if it already is.
    pub(super) fn evict(
        &mut self,
        idx: u32,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        // The rule, not just the absolute expiry, so that an entry idle
        // past its time-to-idle is reported as expired, not as evicted.
        let cause = if self.is_expired(idx, rule, now) {
            RemovalCause::Expired
        } else {
            RemovalCause::Size
        };
        let freq = self.node(idx).freq;
        if freq & DIRTY != 0 {
            // Hits counted on the node go back to the sketch, so the key's
            // popularity is remembered if it returns.
            let hash = self.hash_of(idx);
            let count = self.freq_of(idx);
            self.sketch.raise_to(u64::from(hash), count);
        }
        let (k, v) = self.take(idx);
        removed.push((k, v, cause));
    }

    pub(super) fn evict_to_capacity(
        &mut self,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        let mut candidates = 0usize;
        // Each window node is visited at most once here, so a window full
        // of hit entries cannot keep this loop going.
        let mut visits = self.queues[WINDOW as usize].len;
        while self.queues[WINDOW as usize].weight > self.window_max {
            let oldest = self.queues[WINDOW as usize].oldest;
            if visits > 0 && self.fold_pending(oldest) {
                visits -= 1;
                self.move_to(oldest, WINDOW);
                continue;
            }
            // The usual case: one entry over the window and one over the
            // capacity. The candidate meets its victim before it moves, so
            // a loser leaves from the window without joining probation.
            if candidates == 0
                && !self.weighted
                && self.queues[WINDOW as usize].weight == self.window_max + 1
                && self.weight() == self.capacity + 1
                && !self.is_expired(oldest, rule, now)
            {
                let freq = self.freq_of(oldest);
                match self.contest(freq, rule, now) {
                    Contest::Evict(victim) => {
                        self.move_to(oldest, PROBATION);
                        self.evict(victim, rule, now, removed);
                    }
                    Contest::Rejected => {
                        self.remember_rejected(oldest);
                        self.evict(oldest, rule, now, removed);
                    }
                    Contest::NoVictim => self.evict(oldest, rule, now, removed),
                }
                return;
            }
            self.move_to(oldest, PROBATION);
            candidates += 1;
        }
        if self.weight() > self.capacity {
            self.evict_from_main(candidates, rule, now, removed);
        }
    }

    /// Evicts until within capacity. The newest `candidates` entries of
    /// probation just arrived from the window; each is weighed against the
    /// oldest of probation (the victim) and the less popular one goes.
    /// Without candidates left, victims go in queue order: probation, then
    /// protected, then the window.
    pub(super) fn evict_from_main(
        &mut self,
        mut candidates: usize,
        rule: ExpiryRule,
        now: u64,
        removed: &mut Removed<K, V>,
    ) {
        let mut victim_queue = PROBATION;
        let mut rounds = 0;
        let mut candidate = self.queues[PROBATION as usize].newest;
        // Candidates were visited on their way out of the window; the
        // victim search must not give them a second chance again.
        let mut victim = if candidates > 0 {
            self.queues[PROBATION as usize].oldest
        } else {
            self.oldest_unused(PROBATION)
        };
        while self.weight() > self.capacity {
            if candidates == 0 {
                candidate = NIL;
            }
            if candidate == NIL && victim == NIL {
                // Entries spared for their pending hits may have moved
                // behind the walk; a second round over the queues finds
                // them without pending hits, so it always evicts.
                victim_queue = match victim_queue {
                    PROBATION => PROTECTED,
                    PROTECTED => WINDOW,
                    _ if rounds < 2 => {
                        rounds += 1;
                        PROBATION
                    }
                    _ => break,
                };
                victim = self.queues[victim_queue as usize].oldest;
                continue;
            }
            // An expired entry goes first, whatever its popularity.
            if candidate != NIL && self.is_expired(candidate, rule, now) {
                if candidate == victim {
                    victim = self.node(victim).newer;
                }
                let older = self.node(candidate).older;
                self.evict(candidate, rule, now, removed);
                candidate = older;
                candidates -= 1;
                continue;
            }
            if victim != NIL && self.is_expired(victim, rule, now) {
                let newer = self.node(victim).newer;
                self.evict(victim, rule, now, removed);
                victim = newer;
                continue;
            }
            // A victim hit since the policy last saw it is spared (and
            // reordered as its hits would have); the next one is tried.
            if victim != NIL && victim != candidate && self.fold_pending(victim) {
                let newer = self.node(victim).newer;
                self.reorder_as_hit(victim);
                victim = newer;
                continue;
            }
            if victim == NIL || candidate == victim {
                if candidate == victim {
                    victim = self.node(victim).newer;
                }
                let older = self.node(candidate).older;
                self.evict(candidate, rule, now, removed);
                candidate = older;
                candidates -= 1;
                continue;
            }
            if candidate == NIL {
                let newer = self.node(victim).newer;
                self.evict(victim, rule, now, removed);
                victim = newer;
                continue;
            }
            candidates -= 1;
            if self.admit(candidate, victim) {
                let newer = self.node(victim).newer;
                self.evict(victim, rule, now, removed);
                victim = newer;
                // Read after the eviction: the victim may have been the
                // candidate's older neighbour.
                candidate = self.node(candidate).older;
            } else {
                let older = self.node(candidate).older;
                self.remember_rejected(candidate);
                self.evict(candidate, rule, now, removed);
                candidate = older;
            }
        }
    }

    /// Notes in the rejects memory, if it is on, that node `idx` lost at
    /// admission.
    fn remember_rejected(&mut self, idx: u32) {
        if self.rejects.is_some() {
            let hash = self.hash_of(idx);
            if let Some(rejects) = self.rejects.as_mut() {
                rejects.add(hash);
            }
        }
    }

    /// Whether candidate node `candidate` should replace victim node
    /// `victim`. Both counts are on the nodes: no sketch lookup.
    ///
    /// Without the rejects memory the candidate must win by more than one
    /// count. Its count is a recent sketch estimate, which collisions
    /// inflate, while the victim's was estimated once on arrival and
    /// counted exactly since, so a one-count lead is mostly noise; on
    /// loops and frequency-heavy traces admitting on it churned the cache
    /// (loop at 500 entries: 46.6% against 49.3%). With the rejects memory
    /// a turned-away key gets its second chance on return instead, and the
    /// plain comparison does better on scans (P3 at 131,072: 48.4% against
    /// 45.7% with the margin). The window chooser picks between the two.
    pub(super) fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let candidate_freq = self.freq_of(candidate);
        self.admit_count(candidate_freq, victim)
    }

    /// [`admit`](Self::admit) for a candidate whose count is
    /// `candidate_freq`.
    fn admit_count(&mut self, candidate_freq: u8, victim: u32) -> bool {
        let victim_freq = self.freq_of(victim);
        let margin = u8::from(self.rejects.is_none());
        if candidate_freq > victim_freq + margin {
            true
        } else if candidate_freq >= WARM_CANDIDATE {
            self.next_random() & RANDOM_ADMIT_MASK == 0
        } else {
            false
        }
    }

    /// The contest of one candidate with count `freq`, not yet in
    /// probation, against its victim, decided as
    /// [`evict_from_main`](Self::evict_from_main) would decide it. Victims
    /// with pending hits are spared and reordered on the way, as the
    /// eviction would; an expired victim goes first, whatever the counts.
    pub(super) fn contest(&mut self, freq: u8, rule: ExpiryRule, now: u64) -> Contest {
        let mut victim = self.queues[PROBATION as usize].oldest;
        loop {
            if victim == NIL {
                // Probation held only spared entries: the walk would reach
                // the candidate itself and evict it.
                return Contest::NoVictim;
            }
            if self.is_expired(victim, rule, now) {
                return Contest::Evict(victim);
            }
            if self.fold_pending(victim) {
                let newer = self.node(victim).newer;
                self.reorder_as_hit(victim);
                victim = newer;
                continue;
            }
            return if self.admit_count(freq, victim) {
                Contest::Evict(victim)
            } else {
                Contest::Rejected
            };
        }
    }

    /// Changes the capacity to `capacity` (the share of one of
    /// `partitions`), then evicts down to it at once through the usual
    /// path: entries whose timer fired first, then the window's overflow
    /// meets probation's victims, each reported as any eviction is.
    ///
    /// The window keeps its share of the capacity, or takes `window_share`
    /// when the window chooser sizes it, and protected gets 80% of the rest,
    /// the geometry a partition is built with and the chooser's ghosts
    /// simulate (a window the climber grew into protected's share hands
    /// that share back; the climber moves it again if that pays). The
    /// climber's step follows the capacity (see [`Climber::resized`]), its
    /// sample is sized for the new capacity, and the rejects memory, if on,
    /// starts afresh for half the new capacity. The frequency sketch is
    /// kept: the keys' popularity does not change with the capacity, the
    /// sketch grows by itself as entries arrive, and after a shrink it is
    /// merely roomier than needed.
    ///
    /// [`Climber::resized`]: crate::memory::climber::Climber::resized
    pub(crate) fn set_capacity(
        &mut self,
        capacity: u64,
        partitions: usize,
        window_share: Option<f64>,
        rule: ExpiryRule,
        now: impl Fn() -> u64,
        removed: &mut Removed<K, V>,
    ) {
        let old = self.capacity;
        self.capacity = capacity;
        self.window_max = match window_share {
            Some(share) => ((capacity as f64 * share) as u64).min(capacity),
            // Scaled in integers: the window never outgrows the capacity.
            None if old > 0 => {
                (u128::from(self.window_max) * u128::from(capacity) / u128::from(old)) as u64
            }
            None => capacity / 100,
        };
        self.protected_max = (capacity - self.window_max) / 5 * 4;
        self.sample = climber_sample(capacity, partitions);
        self.climber.resized(old, capacity);
        if self.rejects.is_some() {
            self.rejects = None;
            self.set_rejects(true);
        }
        self.demote_protected();
        let timed = rule.tti_ms.is_some() || self.expiries.has_live();
        let now = if timed { now() } else { 0 };
        if timed {
            self.expire(rule, now, removed);
        }
        self.evict_to_capacity(rule, now, removed);
    }

    /// Lets the hill climber resize the window once per sample period.
    pub(super) fn climb(&mut self) {
        let (hits, misses) = self.reads.take();
        self.climber.record(hits, misses);
        let Some(amount) = self.climber.adjustment(self.sample, self.capacity) else {
            return;
        };
        if amount > 0 {
            self.grow_window(amount.unsigned_abs());
        } else if amount < 0 {
            self.shrink_window(amount.unsigned_abs());
        }
    }

    /// Moves up to `amount` of capacity from protected to the window, and
    /// the oldest main entries with it.
    pub(super) fn grow_window(&mut self, amount: u64) {
        // The window may take protected's share and then probation's, so a
        // workload where only recency pays can turn the cache into an LRU.
        let mut quota = amount.min(self.capacity - self.window_max);
        let from_protected = quota.min(self.protected_max);
        self.protected_max -= from_protected;
        self.window_max += quota;
        self.demote_protected();
        loop {
            let mut from = self.queues[PROBATION as usize].oldest;
            if from == NIL || quota < self.weight_of(from) {
                from = self.queues[PROTECTED as usize].oldest;
            }
            if from == NIL {
                break;
            }
            let w = self.weight_of(from);
            if quota < w {
                break;
            }
            quota -= w;
            self.move_to(from, WINDOW);
        }
        // Capacity that no entry moved with goes back.
        self.window_max -= quota;
        self.protected_max += quota.min(from_protected);
    }

    /// Moves up to `amount` of capacity from the window to main, and the
    /// window's oldest entries to probation. Protected gets the capacity
    /// up to its usual 80% of main; the rest is probation's.
    pub(super) fn shrink_window(&mut self, amount: u64) {
        let mut quota = amount.min(self.window_max);
        self.window_max -= quota;
        loop {
            let from = self.queues[WINDOW as usize].oldest;
            if from == NIL {
                break;
            }
            let w = self.weight_of(from);
            if quota < w {
                break;
            }
            quota -= w;
            self.move_to(from, PROBATION);
        }
        self.window_max += quota;
        self.protected_max = self
            .protected_max
            .max((self.capacity - self.window_max) / 5 * 4);
    }
}
