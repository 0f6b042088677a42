//! The public names outside benchmarks and users call, at their fixed paths
//! and with their fixed signatures.

use std::time::Duration;

use tiercache::Cache;
use tiercache::memory::MemoryCache;

#[test]
fn memory_cache_serves_with_the_fixed_names() {
    let cache: MemoryCache<u64, u64> = MemoryCache::builder().max_capacity(1_000).build();
    cache.insert(1, 10);
    let got: Option<u64> = cache.get(&1);
    assert_eq!(got, Some(10));
    assert!(cache.contains_key(&1));
    assert_eq!(cache.entry_count(), 1);
    assert_eq!(cache.remove(&1), Some(10));
    assert!(!cache.contains_key(&1));
    for k in 0..2_000 {
        cache.insert(k, k);
    }
    assert!(cache.entry_count() <= 1_000);
    cache.clear();
    assert_eq!(cache.entry_count(), 0);
}

#[tokio::test]
async fn cache_serves_with_the_fixed_names() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_capacity(1_000)
        .time_to_live(Duration::from_secs(60))
        .build()
        .await
        .expect("a valid configuration");
    let r: tiercache::Result<()> = cache.insert(1, 10).await;
    r.unwrap();
    let got: Option<u64> = cache.get(&1).await.unwrap();
    assert_eq!(got, Some(10));
    cache.remove(&1).await.unwrap();
    assert_eq!(cache.get(&1).await.unwrap(), None);
    let v: u64 = cache.get_with(2, async { 20 }).await.unwrap();
    assert_eq!(v, 20);
    let v = cache
        .try_get_with(3, async { Ok::<_, std::io::Error>(30) })
        .await
        .unwrap();
    assert_eq!(v, 30);
    assert_eq!(cache.get(&3).await.unwrap(), Some(30));
}

#[test]
fn the_error_type_is_a_standard_error() {
    fn check<E: std::error::Error + Send + Sync + 'static>() {}
    check::<tiercache::Error>();
}

/// A store for the write-policy names: a map behind a lock.
#[derive(Default)]
struct Rows(std::sync::Mutex<std::collections::HashMap<u64, String>>);

impl tiercache::Store<u64, String> for Rows {
    async fn load(&self, key: &u64) -> tiercache::Result<Option<String>> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    async fn save(&self, key: &u64, value: &String) -> tiercache::Result<()> {
        self.0.lock().unwrap().insert(*key, value.clone());
        Ok(())
    }
    async fn delete(&self, key: &u64) -> tiercache::Result<()> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

#[tokio::test]
async fn write_policies_serve_with_the_fixed_names() {
    use std::sync::Arc;
    use tiercache::{FlushReport, Store, WritePolicy};

    let dir = tempfile::tempdir().unwrap();
    for policy in [WritePolicy::Through, WritePolicy::Back, WritePolicy::Around] {
        let rows = Arc::new(Rows::default());
        let cache: Cache<u64, String> = Cache::builder()
            .store(rows.clone())
            .write_policy(policy)
            .write_back_log(dir.path().join(format!("{policy:?}.redb")))
            .build()
            .await
            .expect("a valid configuration");
        cache.insert(1, "one".to_string()).await.unwrap();
        let report: tiercache::Result<FlushReport> = cache.flush().await;
        report.unwrap();
        let dirty: usize = cache.dirty_len();
        assert_eq!(dirty, 0);
        assert!(cache.dead_letters().list().await.unwrap().is_empty());
        assert_eq!(rows.load(&1).await.unwrap().as_deref(), Some("one"));
    }
    // With a store and no policy, write-through is the default.
    let rows = Arc::new(Rows::default());
    let cache: Cache<u64, String> = Cache::builder().store(rows.clone()).build().await.unwrap();
    cache.insert(2, "two".to_string()).await.unwrap();
    assert_eq!(rows.load(&2).await.unwrap().as_deref(), Some("two"));
}

#[tokio::test]
async fn load_protection_serves_with_the_fixed_names() {
    use tiercache::{BypassOp, BypassRule, Lookup, PatternBypass, SizeBypass};

    struct NoTokens;
    impl BypassRule<String> for NoTokens {
        fn bypass(&self, key: &String, _op: BypassOp<'_>) -> bool {
            key.starts_with("token:")
        }
    }
    let cache: Cache<String, String> = Cache::builder()
        .time_to_live(Duration::from_secs(60))
        .negative_ttl(Duration::from_secs(300))
        .cache_errors(|_e: &(dyn std::error::Error + 'static)| None)
        .loader(|_k: String| async { Ok::<Option<String>, tiercache::Error>(None) })
        .refresh_after_write(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(5))
        .load_timeout(Duration::from_secs(1))
        .bypass(PatternBypass::new(["tmp:*"]))
        .bypass(SizeBypass::over(1 << 20))
        .bypass(NoTokens)
        .bypass(|k: &String, _op: BypassOp<'_>| k.is_empty())
        .build()
        .await
        .unwrap();
    let found: Option<String> = cache
        .optionally_get_with("k".to_string(), async { None })
        .await
        .unwrap();
    assert_eq!(found, None);
    assert!(matches!(
        cache.lookup(&"k".to_string()).await.unwrap(),
        Lookup::Negative(_)
    ));
    assert_eq!(cache.get(&"k".to_string()).await.unwrap(), None);
    assert_eq!(cache.load_stats().negative_hits, 2);
}

#[tokio::test]
async fn snapshots_serve_with_the_fixed_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hot.snapshot");
    let cache: Cache<u64, String> = Cache::builder()
        .snapshot(&path, Duration::from_secs(3_600))
        .build()
        .await
        .unwrap();
    cache.insert(1, "one".to_string()).await.unwrap();
    let saved: tiercache::Result<tiercache::warm::SnapshotReport> =
        cache.save_snapshot(&path).await;
    assert_eq!(saved.unwrap().records, 1);
    let fresh: Cache<u64, String> = Cache::builder().build().await.unwrap();
    let loaded: tiercache::Result<tiercache::warm::SnapshotReport> =
        fresh.load_snapshot(&path).await;
    assert_eq!(loaded.unwrap().loaded, 1);
    assert_eq!(fresh.get(&1).await.unwrap().as_deref(), Some("one"));
}
