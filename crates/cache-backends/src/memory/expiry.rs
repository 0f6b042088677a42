//! Per-entry expiry records, kept beside the nodes so that entries that
//! never expire pay nothing for them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::timer::{Links, TimerLink, TimerWheel};

/// The "no record" index.
pub(crate) const NO_EXPIRY: u32 = u32::MAX;
/// The expiry of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// How a shard decides an entry has expired.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ExpiryRule {
    /// Time-to-idle in ms, if set.
    pub(crate) tti_ms: Option<u64>,
}

impl ExpiryRule {
    /// Whether an entry with this absolute expiry needs a record: it
    /// expires, or it may go idle.
    pub(crate) fn wants_record(&self, expires_at: u64) -> bool {
        expires_at != NEVER || self.tti_ms.is_some()
    }

    /// When the entry expires if it is not read again.
    fn deadline(&self, t: &Timed) -> u64 {
        let idle = self
            .tti_ms
            .map_or(NEVER, |tti| t.last_access().saturating_add(tti));
        t.expires_at.min(idle)
    }

    #[inline]
    pub(crate) fn expired(&self, t: &Timed, now: u64) -> bool {
        self.deadline(t) <= now
    }
}

/// The expiry of one entry.
pub(crate) struct Timed {
    /// The node this record belongs to, or `NO_EXPIRY` while the slot is
    /// free.
    node: u32,
    /// Absolute expiry in unix ms, [`NEVER`] for none.
    expires_at: u64,
    /// Last read or write in unix ms (time-to-idle). Readers store it under
    /// the shared lock.
    last_access: AtomicU64,
    link: TimerLink,
}

impl Timed {
    #[inline]
    fn last_access(&self) -> u64 {
        self.last_access.load(Ordering::Relaxed)
    }

    /// Records a read at `now`.
    #[inline]
    pub(crate) fn touch(&self, now: u64) {
        self.last_access.store(now, Ordering::Relaxed);
    }
}

impl Links for Vec<Timed> {
    fn link(&mut self, idx: u32) -> &mut TimerLink {
        &mut self[idx as usize].link
    }
}

/// The expiry records of a shard and the timer wheel that holds them in
/// deadline order.
pub(crate) struct Expiries {
    slots: Vec<Timed>,
    free: Vec<u32>,
    wheel: TimerWheel,
}

impl Expiries {
    pub(crate) fn new() -> Self {
        Expiries {
            slots: Vec::new(),
            free: Vec::new(),
            wheel: TimerWheel::new(0),
        }
    }

    /// Whether any entry has a record.
    #[inline]
    pub(crate) fn has_live(&self) -> bool {
        self.slots.len() > self.free.len()
    }

    #[inline]
    pub(crate) fn get(&self, idx: u32) -> &Timed {
        &self.slots[idx as usize]
    }

    /// A new record for `node`, scheduled at its deadline.
    pub(crate) fn add(&mut self, node: u32, expires_at: u64, now: u64, rule: ExpiryRule) -> u32 {
        let timed = Timed {
            node,
            expires_at,
            last_access: AtomicU64::new(now),
            link: TimerLink::NONE,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = timed;
                i
            }
            None => {
                self.slots.push(timed);
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 records")
            }
        };
        self.schedule(idx, rule);
        idx
    }

    /// Sets a record's expiry after a write at `now`.
    pub(crate) fn update(&mut self, idx: u32, expires_at: u64, now: u64, rule: ExpiryRule) {
        self.wheel.unschedule(&mut self.slots, idx);
        let t = &mut self.slots[idx as usize];
        t.expires_at = expires_at;
        *t.last_access.get_mut() = now;
        self.schedule(idx, rule);
    }

    /// Frees a record.
    pub(crate) fn remove(&mut self, idx: u32) {
        self.wheel.unschedule(&mut self.slots, idx);
        self.slots[idx as usize].node = NO_EXPIRY;
        self.free.push(idx);
    }

    fn schedule(&mut self, idx: u32, rule: ExpiryRule) {
        let deadline = rule.deadline(&self.slots[idx as usize]);
        if deadline != NEVER {
            self.wheel.schedule(&mut self.slots, idx, deadline);
        }
    }

    /// Advances the wheel to `now`; returns the nodes whose records fired
    /// and have expired. Records that fired early (their idle deadline
    /// moved with reads) are scheduled again.
    pub(crate) fn advance(&mut self, now: u64, rule: ExpiryRule) -> Vec<u32> {
        let mut expired = Vec::new();
        for idx in self.wheel.advance(&mut self.slots, now) {
            if rule.expired(&self.slots[idx as usize], now) {
                expired.push(self.slots[idx as usize].node);
            } else {
                self.schedule(idx, rule);
            }
        }
        expired
    }

    /// Drops every record.
    pub(crate) fn clear(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.wheel.clear();
    }

    /// Checks the records against their owners (`owner(node)` gives the
    /// record index a node points at) and the wheel; returns the number of
    /// live records.
    pub(crate) fn validate(&self, rule: ExpiryRule, owner: impl Fn(u32) -> u32) -> usize {
        let mut live = 0;
        let mut scheduled = 0;
        for (i, t) in self.slots.iter().enumerate() {
            if t.node == NO_EXPIRY {
                assert!(!t.link.is_scheduled(), "a free record is scheduled");
                continue;
            }
            live += 1;
            assert_eq!(owner(t.node), i as u32, "record {i} and its node disagree");
            let due = rule.deadline(t) != NEVER;
            assert_eq!(
                t.link.is_scheduled(),
                due,
                "a record with a deadline must be in the timer wheel, and only such"
            );
            scheduled += usize::from(due);
        }
        assert_eq!(
            live + self.free.len(),
            self.slots.len(),
            "record free list is wrong"
        );
        assert_eq!(
            self.wheel.validate(|i| self.slots[i as usize].link),
            scheduled,
            "timer wheel and scheduled records disagree"
        );
        live
    }
}
