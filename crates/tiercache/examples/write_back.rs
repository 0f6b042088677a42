//! Write-back in front of a system of record: inserts return once they are
//! durable in a local redb log, and a background flusher saves them to the
//! store in batches. Needs no server: the store is a map in memory that
//! answers after a millisecond, and the log lives in a temporary
//! directory, removed at the end.
//!
//! Run it with `cargo run -p tiercache --example write_back`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiercache::{Cache, Store, WritePolicy};

/// The system of record: a table of user names, with the latency of a
/// database round trip on every call (one per batch for the batch calls,
/// which write-back's flusher uses).
#[derive(Default)]
struct Users {
    rows: Mutex<BTreeMap<u64, String>>,
    batches: Mutex<Vec<usize>>,
}

impl Users {
    async fn round_trip(&self) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    fn rows(&self) -> BTreeMap<u64, String> {
        self.rows.lock().unwrap().clone()
    }
}

impl Store<u64, String> for Users {
    async fn load(&self, id: &u64) -> tiercache::Result<Option<String>> {
        self.round_trip().await;
        Ok(self.rows.lock().unwrap().get(id).cloned())
    }

    async fn save(&self, id: &u64, name: &String) -> tiercache::Result<()> {
        self.round_trip().await;
        self.rows.lock().unwrap().insert(*id, name.clone());
        Ok(())
    }

    async fn delete(&self, id: &u64) -> tiercache::Result<()> {
        self.round_trip().await;
        self.rows.lock().unwrap().remove(id);
        Ok(())
    }

    async fn save_many(&self, entries: &[(u64, String)]) -> tiercache::Result<()> {
        self.round_trip().await;
        self.batches.lock().unwrap().push(entries.len());
        let mut rows = self.rows.lock().unwrap();
        for (id, name) in entries {
            rows.insert(*id, name.clone());
        }
        Ok(())
    }

    async fn delete_many(&self, ids: &[u64]) -> tiercache::Result<()> {
        self.round_trip().await;
        self.batches.lock().unwrap().push(ids.len());
        let mut rows = self.rows.lock().unwrap();
        for id in ids {
            rows.remove(id);
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), tiercache::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join("users.write-back.redb");
    // The cache's handle and ours share the store, so that we can look at it.
    let users = Arc::new(Users::default());
    let cache: Cache<u64, String> = Cache::builder()
        .max_capacity(1_000)
        .store(users.clone())
        .write_policy(WritePolicy::Back)
        .write_back_log(&log)
        // Give the flusher a leisurely pace, so that the writes are still
        // waiting when we look.
        .flush_interval(Duration::from_secs(5))
        .build()
        .await?;

    let started = Instant::now();
    for (id, name) in [(1, "ada"), (2, "grace"), (3, "edsger"), (4, "barbara")] {
        cache.insert(id, name.to_string()).await?;
    }
    // A second write of a dirty key replaces its queued write: the store
    // gets the latest value only.
    cache.insert(2, "grace hopper".to_string()).await?;
    println!(
        "5 inserts durable in the log in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "dirty keys: {} (key 2 dirty: {}); the store holds {} rows",
        cache.dirty_len(),
        cache.is_dirty(&2),
        users.rows().len()
    );
    // Reads of a dirty key answer from the cache, never the store's copy.
    println!("cache says key 2 is {:?}", cache.get(&2).await?);

    let report = cache.flush().await?;
    println!(
        "flush: {} saved to the store in {:.1} ms, {} still dirty",
        report.saved,
        report.elapsed.as_secs_f64() * 1e3,
        report.dirty
    );
    println!("the store holds: {:?}", users.rows());
    println!(
        "batch calls the store answered: {:?}",
        users.batches.lock().unwrap()
    );
    if let Some(stats) = cache.write_back_stats() {
        println!(
            "log: {} writes appended in {} commits, {} saved, {} dead letters",
            stats.appended, stats.log_commits, stats.saved, stats.dead_letters
        );
    }
    Ok(())
}
