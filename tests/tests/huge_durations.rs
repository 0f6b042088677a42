//! `Duration::MAX` wherever the facade accepts a duration: the build or
//! the call gives a clear error, or the setting means "never"; nothing
//! panics, neither at build nor in later calls.

use std::time::Duration;

use tiercache::{Cache, ErrorKind, InsertOptions, Promotion};

const MAX: Duration = Duration::MAX;

async fn exercise(cache: &Cache<u64, String>) {
    for k in 0..50 {
        cache.insert(k, "v".into()).await.unwrap();
        let _ = cache.get(&k).await.unwrap();
    }
    cache.remove(&3).await.unwrap();
    cache.clear().await.unwrap();
}

#[tokio::test]
async fn every_duration_setting_takes_duration_max_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Cache::<u64, String>::builder()
        .time_to_live(MAX)
        .build()
        .await;
    assert_eq!(ttl.unwrap_err().kind(), ErrorKind::InvalidTtl);

    let class = Cache::<u64, String>::builder()
        .class("c", MAX)
        .build()
        .await;
    assert_eq!(class.unwrap_err().kind(), ErrorKind::InvalidTtl);

    // Idle and promotion windows of "forever" are meaningful: they build.
    for builder in [
        Cache::<u64, String>::builder().time_to_idle(MAX),
        Cache::<u64, String>::builder()
            .disk(dir.path().join("promotion.redb"))
            .promotion(Promotion::AfterHits {
                hits: 2,
                window: MAX,
            }),
        Cache::<u64, String>::builder()
            .max_capacity(4)
            .disk(dir.path().join("idle.redb"))
            .time_to_idle(MAX)
            .write_on_evict(true),
    ] {
        match builder.build().await {
            Ok(cache) => exercise(&cache).await,
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidTtl, "{e}"),
        }
    }
}

#[tokio::test]
async fn a_call_with_duration_max_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache: Cache<u64, String> = Cache::builder()
        .disk(dir.path().join("calls.redb"))
        .build()
        .await
        .unwrap();
    cache.insert(1, "old".into()).await.unwrap();
    let err = cache
        .insert_with_ttl(1, "new".into(), MAX)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    let err = cache
        .insert_with(1, "new".into(), InsertOptions::new().time_to_live(MAX))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidTtl);
    assert_eq!(cache.get(&1).await.unwrap().as_deref(), Some("old"));
}
