//! The background worker: takes predicted keys off the queue and fetches
//! them, at most `concurrency` at once.
//!
//! Each fetch runs as a task of its own, so that a slow fetch does not hold
//! up the next and fetches can use every thread of the runtime. The worker
//! acquires a concurrency permit before it takes a key, so keys wait in the
//! queue (where they are de-duplicated and bounded) rather than in tasks.

use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use cache_core::{Error, ErrorKind};
use futures::FutureExt;
use tokio::sync::OwnedSemaphorePermit;

use super::Core;
use crate::WarmOutcome;

/// Runs until the prefetcher is shut down.
pub(super) async fn run<K: Hash + Eq + Clone + Send + Sync + 'static>(core: Arc<Core<K>>) {
    loop {
        let Some(permit) = core.queue.permit().await else {
            return;
        };
        let Some((hash, key)) = core.queue.take().await else {
            return;
        };
        let job = Job {
            core: Arc::clone(&core),
            hash,
            _permit: permit,
        };
        tokio::spawn(job.run(key));
    }
}

/// One fetch in flight. Dropping it (when the fetch ends, or when the
/// runtime drops the task unfinished) reports the key finished to the
/// queue, so that neither its de-duplication entry nor its place in the
/// in-flight count can leak, and then releases its permit.
struct Job<K> {
    core: Arc<Core<K>>,
    hash: u64,
    _permit: OwnedSemaphorePermit,
}

impl<K: Hash + Eq + Clone + Send + Sync + 'static> Job<K> {
    async fn run(self, key: K) {
        // A panicking fetch is the caller's bug, but it must not take the
        // accounting with it: it is counted as failed like any other error.
        let fetch = &self.core.fetch;
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| fetch(key))) {
            Ok(future) => AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| panicked()),
            Err(_) => panicked(),
        };
        self.core.record(self.hash, &outcome);
    }
}

impl<K> Drop for Job<K> {
    fn drop(&mut self) {
        self.core.queue.finish(self.hash);
    }
}

/// The outcome of a fetch that panicked.
fn panicked() -> WarmOutcome {
    WarmOutcome::Failed(Error::new(
        ErrorKind::LoaderAborted,
        "the prefetcher's fetch panicked",
    ))
}
