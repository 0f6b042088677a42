//! A hierarchical timer wheel: O(1) scheduling of entry deadlines, so
//! expired entries are reclaimed without scanning the cache.

/// The "no node" index.
const NIL: u32 = u32::MAX;
/// A node that is in no bucket.
const UNSCHEDULED: u16 = u16::MAX;

/// Buckets per level (a power of two).
const BUCKETS: u64 = 64;
/// Bucket widths per level, as powers of two of milliseconds: about one
/// second, one minute, seventy minutes and three days. A level covers 64
/// of its buckets, so together they reach about six months; deadlines
/// further out wait in the last level and are rescheduled when it turns.
const SHIFTS: [u32; 4] = [10, 16, 22, 28];

/// A node's place in the wheel, embedded in the node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerLink {
    prev: u32,
    next: u32,
    /// `level * BUCKETS + bucket`, or [`UNSCHEDULED`].
    bucket: u16,
}

impl TimerLink {
    pub(crate) const NONE: TimerLink = TimerLink {
        prev: NIL,
        next: NIL,
        bucket: UNSCHEDULED,
    };

    /// Whether the node is in a bucket.
    pub(crate) fn is_scheduled(&self) -> bool {
        self.bucket != UNSCHEDULED
    }
}

/// Access to the links of the nodes the wheel threads through.
pub(crate) trait Links {
    fn link(&mut self, idx: u32) -> &mut TimerLink;
}

/// Deadlines grouped into coarse buckets. A bucket fires when the clock
/// passes its time span; the entries in it are then either expired (and
/// reclaimed by the caller) or rescheduled into a finer bucket. Firing is
/// at most one level-0 bucket (about a second) late, which is fine because
/// reads check expiry exactly; the wheel only reclaims memory.
#[derive(Debug)]
pub(crate) struct TimerWheel {
    heads: Vec<u32>,
    /// The time the wheel was last advanced to, in unix ms.
    now: u64,
    len: usize,
}

impl TimerWheel {
    pub(crate) fn new(now: u64) -> Self {
        TimerWheel {
            heads: vec![NIL; SHIFTS.len() * BUCKETS as usize],
            now,
            len: 0,
        }
    }

    /// Entries scheduled.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bucket for a deadline: the finest level whose ring still holds
    /// it. The bucket is never the current tick of its level (that tick
    /// has already fired), so a deadline in the current second waits for
    /// the next one.
    fn bucket_for(&self, deadline: u64) -> u16 {
        for (level, &shift) in SHIFTS.iter().enumerate() {
            let current = self.now >> shift;
            let tick = (deadline >> shift).max(current + 1);
            if tick - current < BUCKETS {
                return (level as u64 * BUCKETS + (tick & (BUCKETS - 1))) as u16;
            }
        }
        let level = SHIFTS.len() as u64 - 1;
        let last = (self.now >> SHIFTS[level as usize]) + BUCKETS - 1;
        (level * BUCKETS + (last & (BUCKETS - 1))) as u16
    }

    /// Puts a node in the bucket for its deadline; it must not be in one.
    pub(crate) fn schedule(&mut self, nodes: &mut impl Links, idx: u32, deadline: u64) {
        debug_assert!(!nodes.link(idx).is_scheduled());
        let bucket = self.bucket_for(deadline);
        let head = self.heads[bucket as usize];
        *nodes.link(idx) = TimerLink {
            prev: NIL,
            next: head,
            bucket,
        };
        if head != NIL {
            nodes.link(head).prev = idx;
        }
        self.heads[bucket as usize] = idx;
        self.len += 1;
    }

    /// Takes a node out of its bucket, if it is in one.
    pub(crate) fn unschedule(&mut self, nodes: &mut impl Links, idx: u32) {
        let link = *nodes.link(idx);
        if !link.is_scheduled() {
            return;
        }
        if link.prev == NIL {
            self.heads[link.bucket as usize] = link.next;
        } else {
            nodes.link(link.prev).next = link.next;
        }
        if link.next != NIL {
            nodes.link(link.next).prev = link.prev;
        }
        *nodes.link(idx) = TimerLink::NONE;
        self.len -= 1;
    }

    /// Moves the wheel to `now` and returns every node whose bucket fired,
    /// unscheduled. The caller reclaims the expired ones and schedules the
    /// others again.
    pub(crate) fn advance(&mut self, nodes: &mut impl Links, now: u64) -> Vec<u32> {
        let mut fired = Vec::new();
        if now >> SHIFTS[0] <= self.now >> SHIFTS[0] {
            return fired;
        }
        let before = self.now;
        self.now = now;
        for (level, &shift) in SHIFTS.iter().enumerate() {
            let (from, to) = (before >> shift, now >> shift);
            if to == from {
                // Coarser levels turn no faster than this one.
                break;
            }
            let ticks = (to - from).min(BUCKETS);
            for tick in (to - ticks + 1)..=to {
                let bucket = level * BUCKETS as usize + (tick & (BUCKETS - 1)) as usize;
                let mut idx = std::mem::replace(&mut self.heads[bucket], NIL);
                while idx != NIL {
                    let next = nodes.link(idx).next;
                    *nodes.link(idx) = TimerLink::NONE;
                    self.len -= 1;
                    fired.push(idx);
                    idx = next;
                }
            }
        }
        fired
    }

    /// Empties the wheel (the caller drops the nodes).
    pub(crate) fn clear(&mut self) {
        self.heads.fill(NIL);
        self.len = 0;
    }

    /// Checks that every bucket's list is well linked and that the count
    /// of scheduled nodes is right; returns that count.
    pub(crate) fn validate(&self, link: impl Fn(u32) -> TimerLink) -> usize {
        let mut count = 0;
        for (bucket, &head) in self.heads.iter().enumerate() {
            let mut prev = NIL;
            let mut idx = head;
            while idx != NIL {
                let link = link(idx);
                assert_eq!(
                    link.bucket as usize, bucket,
                    "node {idx} in the wrong bucket"
                );
                assert_eq!(link.prev, prev, "timer back-link broken at {idx}");
                count += 1;
                assert!(count <= self.len, "timer bucket {bucket} has a cycle");
                prev = idx;
                idx = link.next;
            }
        }
        assert_eq!(count, self.len, "timer wheel count is wrong");
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slab(Vec<TimerLink>);
    impl Links for Slab {
        fn link(&mut self, idx: u32) -> &mut TimerLink {
            &mut self.0[idx as usize]
        }
    }

    /// Schedules deadlines, advances in uneven steps, and checks that each
    /// node fires no earlier than its bucket allows and no later than one
    /// level-0 bucket after its deadline, once rescheduled as needed.
    #[test]
    fn every_deadline_fires_within_a_second_of_its_time() {
        let start = 1_000_000_000u64;
        let deadlines: Vec<u64> = (0..2_000u64)
            .map(|i| start + (i * i * 7_919) % (40 * 24 * 3_600_000))
            .collect();
        let mut slab = Slab(vec![TimerLink::NONE; deadlines.len()]);
        let mut wheel = TimerWheel::new(start);
        for (i, &d) in deadlines.iter().enumerate() {
            wheel.schedule(&mut slab, i as u32, d);
        }
        assert_eq!(wheel.validate(|i| slab.0[i as usize]), deadlines.len());
        let mut fired_at = vec![None; deadlines.len()];
        let mut now = start;
        let mut step = 1u64;
        while fired_at.iter().any(Option::is_none) {
            now += step;
            step = (step * 3 + 17) % 5_000_000 + 1;
            for idx in wheel.advance(&mut slab, now) {
                let d = deadlines[idx as usize];
                if d <= now {
                    fired_at[idx as usize] = Some(now);
                } else {
                    wheel.schedule(&mut slab, idx, d);
                }
            }
            wheel.validate(|i| slab.0[i as usize]);
        }
        assert_eq!(wheel.len(), 0);
        // Reclaimed within a second of the deadline, plus the step that
        // carried the clock past it.
        let mut now = start;
        let mut step = 1u64;
        let mut times = Vec::new();
        while times.len() < 10_000 {
            now += step;
            step = (step * 3 + 17) % 5_000_000 + 1;
            times.push(now);
        }
        for (i, &d) in deadlines.iter().enumerate() {
            let at = fired_at[i].unwrap();
            assert!(at >= d, "node {i} fired before its deadline");
            let first_after = times.iter().copied().find(|&t| t >= d + 1_024).unwrap();
            assert!(at <= first_after, "node {i} fired late: {d} -> {at}");
        }
    }

    #[test]
    fn unscheduled_nodes_never_fire() {
        let mut slab = Slab(vec![TimerLink::NONE; 3]);
        let mut wheel = TimerWheel::new(0);
        for i in 0..3 {
            wheel.schedule(&mut slab, i, 5_000);
        }
        wheel.unschedule(&mut slab, 1);
        wheel.unschedule(&mut slab, 1);
        assert_eq!(wheel.len(), 2);
        let mut fired = wheel.advance(&mut slab, 10_000);
        fired.sort_unstable();
        assert_eq!(fired, vec![0, 2]);
        assert_eq!(wheel.validate(|i| slab.0[i as usize]), 0);
    }

    #[test]
    fn far_deadlines_wait_in_the_last_level() {
        let mut slab = Slab(vec![TimerLink::NONE; 1]);
        let mut wheel = TimerWheel::new(0);
        let far = 10 * 365 * 24 * 3_600_000u64;
        wheel.schedule(&mut slab, 0, far);
        // A year later the node fires from the last level and is not yet due.
        let fired = wheel.advance(&mut slab, far / 10);
        assert_eq!(fired, vec![0]);
    }
}
