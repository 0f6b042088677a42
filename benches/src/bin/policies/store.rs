//! The system of record behind the measured caches: a map behind a lock
//! that answers every call after a fixed latency, and can be held down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiercache::{Result, Store};
use tokio::sync::{OwnedRwLockWriteGuard, RwLock};

/// The length of every value.
pub(crate) const VALUE_BYTES: usize = 512;

/// The value written for `key`: its 8 bytes, little-endian, then a
/// pattern, [`VALUE_BYTES`] in all. The store keeps only the first eight
/// bytes ([`tag`]), so that it can tell that it holds each key's value
/// without holding the megabytes.
pub(crate) fn value(key: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_BYTES);
    v.extend_from_slice(&key.to_le_bytes());
    v.extend((8..VALUE_BYTES).map(|i| (i as u8) ^ (key as u8)));
    v
}

/// What the store keeps of a value: its first eight bytes as a number.
fn tag(value: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&value[..8]);
    u64::from_le_bytes(head)
}

/// Calls the store answered, and the time they took.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Calls {
    /// Calls of any kind.
    pub(crate) calls: u64,
    /// `save_many` and `delete_many` calls among them.
    pub(crate) batches: u64,
    /// Entries those batch calls carried.
    pub(crate) batched: u64,
    /// The time from a call's start until its latency had passed, summed
    /// over the calls.
    pub(crate) nanos: u64,
}

impl Calls {
    /// The mean measured latency of one call, in milliseconds.
    pub(crate) fn mean_ms(&self) -> f64 {
        if self.calls == 0 {
            return f64::NAN;
        }
        self.nanos as f64 / self.calls as f64 / 1e6
    }
}

/// A store whose every call takes `latency` (one `tokio::time::sleep`),
/// a batch call once for the whole batch.
pub(crate) struct SlowStore {
    /// Key → the tag of its latest value.
    rows: Mutex<HashMap<u64, u64>>,
    latency: Duration,
    /// Batch calls wait for a read guard: a writer holds them back.
    gate: Arc<RwLock<()>>,
    calls: AtomicU64,
    batches: AtomicU64,
    batched: AtomicU64,
    nanos: AtomicU64,
}

impl SlowStore {
    pub(crate) fn new(latency: Duration) -> Arc<SlowStore> {
        Arc::new(SlowStore {
            rows: Mutex::new(HashMap::new()),
            latency,
            gate: Arc::new(RwLock::new(())),
            calls: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
        })
    }

    /// Holds every batch call (`save_many`, `delete_many`) back until the
    /// guard is dropped: a store that is down, as write-back's flusher
    /// sees it. Single calls still answer.
    pub(crate) async fn hold_down(&self) -> OwnedRwLockWriteGuard<()> {
        self.gate.clone().write_owned().await
    }

    /// The call's latency, counted.
    async fn call(&self) {
        let started = Instant::now();
        tokio::time::sleep(self.latency).await;
        let nanos = started.elapsed().as_nanos() as u64;
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    async fn batch(&self, entries: usize) {
        let _open = self.gate.read().await;
        self.call().await;
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched.fetch_add(entries as u64, Ordering::Relaxed);
    }

    pub(crate) fn calls(&self) -> Calls {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Calls {
            calls: get(&self.calls),
            batches: get(&self.batches),
            batched: get(&self.batched),
            nanos: get(&self.nanos),
        }
    }

    /// Whether the store holds exactly the keys `0..n`, each with its own
    /// value; the error says what is wrong.
    pub(crate) fn check_holds(&self, n: u64) -> std::result::Result<(), String> {
        let rows = self.rows.lock().expect("no panics under the lock");
        if rows.len() as u64 != n {
            return Err(format!("the store holds {} keys, not {n}", rows.len()));
        }
        match rows.iter().find(|&(k, t)| k != t || *k >= n) {
            Some((k, t)) => Err(format!("the store holds key {k} with the value of key {t}")),
            None => Ok(()),
        }
    }
}

impl Store<u64, Vec<u8>> for SlowStore {
    async fn load(&self, key: &u64) -> Result<Option<Vec<u8>>> {
        self.call().await;
        let rows = self.rows.lock().expect("no panics under the lock");
        Ok(rows.get(key).map(|&t| value(t)))
    }

    async fn save(&self, key: &u64, value: &Vec<u8>) -> Result<()> {
        self.call().await;
        let mut rows = self.rows.lock().expect("no panics under the lock");
        rows.insert(*key, tag(value));
        Ok(())
    }

    async fn delete(&self, key: &u64) -> Result<()> {
        self.call().await;
        self.rows
            .lock()
            .expect("no panics under the lock")
            .remove(key);
        Ok(())
    }

    async fn save_many(&self, entries: &[(u64, Vec<u8>)]) -> Result<()> {
        self.batch(entries.len()).await;
        let mut rows = self.rows.lock().expect("no panics under the lock");
        for (key, value) in entries {
            rows.insert(*key, tag(value));
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[u64]) -> Result<()> {
        self.batch(keys.len()).await;
        let mut rows = self.rows.lock().expect("no panics under the lock");
        for key in keys {
            rows.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_key() {
        let v = value(77);
        assert_eq!(v.len(), VALUE_BYTES);
        assert_eq!(tag(&v), 77);
        assert_ne!(value(78)[8..], v[8..]);
    }

    #[test]
    fn a_held_store_answers_batches_after_the_release() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = SlowStore::new(Duration::from_millis(1));
            let held = store.hold_down().await;
            let saving = {
                let store = store.clone();
                tokio::spawn(async move { store.save_many(&[(0, value(0)), (1, value(1))]).await })
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(store.calls().batches, 0, "held down");
            store.save(&2, &value(2)).await.unwrap();
            drop(held);
            saving.await.unwrap().unwrap();
            store.check_holds(3).unwrap();
            let calls = store.calls();
            assert_eq!((calls.calls, calls.batches, calls.batched), (2, 1, 2));
            assert!(calls.mean_ms() >= 1.0);
            assert!(store.check_holds(4).is_err());
        });
    }
}
