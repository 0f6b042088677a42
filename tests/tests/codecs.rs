//! Values survive a round trip through the byte tiers with each codec.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tiercache::memory::MemoryBackend;
use tiercache::tier::DynBackend;
use tiercache::{Cache, Codec};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: u64,
    name: String,
    tags: Vec<String>,
    score: Option<f64>,
}

async fn round_trip_through_lower_tier<C: Codec>(codec: C) {
    let tier: Arc<dyn DynBackend> = Arc::new(MemoryBackend::builder().build());
    let cache: Cache<u64, Row, C> = Cache::builder()
        .max_capacity(10)
        .tier(tier)
        .codec(codec)
        .build()
        .await
        .unwrap();
    let row = Row {
        id: 9,
        name: "ninth".into(),
        tags: vec!["a".into(), "b".into()],
        score: Some(0.5),
    };
    cache.insert(9, row.clone()).await.unwrap();
    cache.hot().clear();
    assert_eq!(cache.get(&9).await.unwrap(), Some(row));
}

#[tokio::test]
async fn postcard_values_round_trip() {
    round_trip_through_lower_tier(tiercache::Postcard).await;
}

#[cfg(feature = "bincode")]
#[tokio::test]
async fn bincode_values_round_trip() {
    round_trip_through_lower_tier(tiercache::Bincode).await;
}
