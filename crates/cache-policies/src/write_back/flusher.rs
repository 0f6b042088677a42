//! The flusher: one task per cache that saves dirty keys to the store in
//! batches, the keys dirty longest first, coalesced (a key's latest write
//! only), retrying failures with exponential backoff and jitter, and
//! moving what keeps failing to the dead-letter list.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cache_core::{Codec, Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::Core;
use super::dirty::Taken;
use super::log::Command;
use super::record::Dead;
use super::shared::Shared;

/// How long the flusher pauses after the log failed to record a batch's
/// outcome, before it tries the batch again.
const LOG_FAILURE_PAUSE: Duration = Duration::from_millis(100);

pub(crate) async fn run<K, V, C>(core: Arc<Core<K, V, C>>)
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    let shared = &core.shared;
    // However the task ends (its handle dropped, or its runtime shut down
    // under a cache that lives on), flushes and writers waiting for it
    // must learn that it is gone rather than wait forever.
    let _stopped = Stopped(shared);
    let interval = core.settings.flush_interval;
    let mut last_flush = Instant::now();
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let (len, ready, next_retry) = {
            let dirty = shared.dirty.lock();
            (dirty.len(), dirty.any_ready(now), dirty.next_retry())
        };
        let due = len >= shared.full_batch.load(Ordering::Relaxed)
            || shared.hurry.load(Ordering::Acquire) > 0
            || now.duration_since(last_flush) >= interval;
        if ready && due {
            if !flush_batch(&core).await {
                tokio::time::sleep(LOG_FAILURE_PAUSE).await;
            }
            last_flush = Instant::now();
            continue;
        }
        let wait = if ready {
            interval.saturating_sub(now.duration_since(last_flush))
        } else {
            next_retry.map_or(interval, |at| at.saturating_duration_since(now))
        };
        // Idle, it wakes once an interval, so a lone write waits at most
        // about that long; a full batch or a flush wakes it at once.
        let _ =
            tokio::time::timeout(wait.max(Duration::from_millis(1)), shared.work.notified()).await;
    }
}

/// Marks write-back stopped when the flusher ends, and wakes whoever
/// waits for it.
struct Stopped<'a>(&'a Shared);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.progress.notify_waiters();
        self.0.space.notify_waiters();
    }
}

/// Flushes one batch; `false` if the log could not record its outcome.
async fn flush_batch<K, V, C>(core: &Core<K, V, C>) -> bool
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    let taken = core
        .shared
        .dirty
        .lock()
        .take_ready(core.settings.max_batch, Instant::now());
    if taken.is_empty() {
        return true;
    }
    let mut outcome = Outcome::default();
    let (mut saves, mut saving) = (Vec::new(), Vec::new());
    let (mut deletes, mut deleting) = (Vec::new(), Vec::new());
    for t in taken {
        match decode(core, &t) {
            Ok((key, Some(value))) => {
                saves.push((key, value));
                saving.push(t);
            }
            Ok((key, None)) => {
                deletes.push(key);
                deleting.push(t);
            }
            // A write that does not decode can never be saved: it is dead
            // at once, and kept for the operator to see.
            Err(e) => outcome.dead.push(dead(&t, t.tries + 1, &e)),
        }
    }
    let save_call = async {
        if saves.is_empty() {
            return Ok(());
        }
        core.store.dyn_save_many(&saves).await
    };
    let delete_call = async {
        if deletes.is_empty() {
            return Ok(());
        }
        core.store.dyn_delete_many(&deletes).await
    };
    let (saved, deleted) = futures::future::join(save_call, delete_call).await;
    let counters = &core.shared.counters;
    for (group, result, counter) in [
        (&saving, saved, &counters.saved),
        (&deleting, deleted, &counters.deleted),
    ] {
        match result {
            Ok(()) => {
                counter.fetch_add(group.len() as u64, Ordering::Relaxed);
                outcome
                    .saved
                    .extend(group.iter().map(|t| (t.key.clone(), t.write.seq)));
            }
            Err(e) => {
                for t in group {
                    outcome.failed(t, &e, core);
                }
            }
        }
    }
    record(core, outcome).await
}

/// What a batch came to.
#[derive(Default)]
struct Outcome {
    saved: Vec<(Bytes, u64)>,
    dead: Vec<(Bytes, Dead)>,
    /// Tried again later: key, write number, not before.
    retry: Vec<(Bytes, u64, Instant)>,
}

impl Outcome {
    fn failed<K, V, C>(&mut self, t: &Taken, e: &Error, core: &Core<K, V, C>) {
        let tries = t.tries + 1;
        let settings = &core.settings;
        if tries >= settings.max_retries {
            self.dead.push(dead(t, tries, e));
        } else {
            core.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
            let wait = jittered(settings.backoff(tries), t);
            self.retry
                .push((t.key.clone(), t.write.seq, Instant::now() + wait));
        }
    }
}

/// Records a batch's outcome: the log first (durable), then what waits
/// for a retry, in memory. `false` if the log failed: every write of the
/// batch stays dirty and is tried again (a store saves it twice, which
/// its contract allows).
async fn record<K, V, C>(core: &Core<K, V, C>, outcome: Outcome) -> bool {
    let Outcome { saved, dead, retry } = outcome;
    let mut settled: Vec<Bytes> = saved.iter().map(|(k, _)| k.clone()).collect();
    settled.extend(dead.iter().map(|(k, _)| k.clone()));
    let logged = if saved.is_empty() && dead.is_empty() {
        true
    } else {
        let (ack, done) = oneshot::channel();
        let sent = core
            .log
            .lock()
            .send(Command::Settle { saved, dead, ack })
            .is_ok();
        sent && matches!(done.await, Ok(Ok(())))
    };
    let mut dirty = core.shared.dirty.lock();
    if !logged {
        for key in &settled {
            dirty.released(key);
        }
    }
    for (key, seq, at) in retry {
        dirty.failed(&key, seq, at);
    }
    drop(dirty);
    core.shared.progress.notify_waiters();
    logged
}

/// The typed key and value (`None`: a removal) of a write.
fn decode<K, V: DeserializeOwned, C: Codec>(
    core: &Core<K, V, C>,
    t: &Taken,
) -> Result<(K, Option<V>)> {
    let key = (core.decode_key)(&t.key)?;
    let value = t
        .write
        .value
        .as_ref()
        .map(|v| core.codec.decode(v))
        .transpose()?;
    Ok((key, value))
}

fn dead(t: &Taken, tries: u32, e: &Error) -> (Bytes, Dead) {
    let failed_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    (
        t.key.clone(),
        Dead {
            seq: t.write.seq,
            value: t.write.value.clone(),
            tries,
            failed_at_ms,
            error: e.to_string(),
        },
    )
}

/// `wait` stretched by a random share of up to half of it, so that keys
/// that failed together are not all tried again at the same moment.
fn jittered(wait: Duration, t: &Taken) -> Duration {
    let mut h = foldhash::fast::RandomState::default().build_hasher();
    h.write(&t.key);
    h.write_u64(t.write.seq);
    h.write_u32(t.tries);
    let share = (h.finish() % 1024) as u32;
    wait + wait / 2 * share / 1024
}
