//! Read counters that concurrent readers can bump cheaply.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hits and misses seen by readers, in per-thread stripes. Readers bump
/// them without read-modify-write, each thread mostly in its own cache
/// line, so hits on one partition from several threads do not fight over
/// one counter. A count lost to a race only blurs a ratio that the hill
/// climber samples anyway.
pub(crate) struct ReadCounters {
    stripes: [Stripe; STRIPES],
}

const STRIPES: usize = 4;

#[repr(align(64))]
#[derive(Default)]
struct Stripe {
    hits: AtomicU64,
    misses: AtomicU64,
}

std::thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % STRIPES
    };
}

#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl ReadCounters {
    pub(crate) fn new() -> Self {
        ReadCounters {
            stripes: Default::default(),
        }
    }

    #[inline]
    fn stripe(&self) -> &Stripe {
        &self.stripes[STRIPE.with(|s| *s)]
    }

    #[inline]
    pub(crate) fn hit(&self) {
        bump(&self.stripe().hits);
    }

    #[inline]
    pub(crate) fn miss(&self) {
        bump(&self.stripe().misses);
    }

    /// Takes the counts so far, leaving zero.
    pub(crate) fn take(&mut self) -> (u64, u64) {
        self.stripes.iter_mut().fold((0, 0), |(h, m), s| {
            (
                h + std::mem::take(s.hits.get_mut()),
                m + std::mem::take(s.misses.get_mut()),
            )
        })
    }
}
