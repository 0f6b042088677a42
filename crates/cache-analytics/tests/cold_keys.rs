//! Keys untouched for the window are reported cold; touched, removed and
//! cleared keys are not.

use std::time::Duration;

use bytes::Bytes;
use cache_analytics::AnalyticsLayer;
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, Entry, Layer, ManualClock, Meta};

const MINUTE: Duration = Duration::from_secs(60);

fn cold_names<B>(tier: &cache_analytics::Analytics<B>) -> Vec<Bytes> {
    tier.cold_keys(usize::MAX)
        .into_iter()
        .map(|c| c.key)
        .collect()
}

#[tokio::test]
async fn keys_untouched_for_the_window_are_cold() {
    let clock = ManualClock::default();
    let tier = AnalyticsLayer::new()
        .clock(clock.clock())
        .cold_window(10 * MINUTE)
        .layer(MemoryBackend::builder().clock(clock.clock()).build());
    let start = clock.now_ms();
    for key in ["a", "b", "c", "d"] {
        let entry = Entry::new(&b"v"[..], Meta::new(start));
        tier.insert(Bytes::from(key), entry).await.unwrap();
    }
    clock.advance(5 * MINUTE);
    // A hit touches a key; a miss does not make one up.
    assert!(tier.get(b"a").await.unwrap().is_hit());
    assert!(!tier.get(b"never-stored").await.unwrap().is_hit());
    clock.advance(MINUTE);
    // Re-inserting touches too.
    tier.insert(Bytes::from("b"), Entry::new(&b"w"[..], Meta::new(0)))
        .await
        .unwrap();
    assert!(
        cold_names(&tier).is_empty(),
        "nothing is ten minutes idle yet"
    );

    clock.advance(5 * MINUTE);
    // c and d are eleven minutes idle, a six and b five.
    assert_eq!(cold_names(&tier), [Bytes::from("c"), Bytes::from("d")]);
    let cold = tier.cold_keys(1);
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0].last_touch_ms, start);

    // A removed key is gone, not cold.
    assert!(tier.remove(b"c").await.unwrap());
    assert_eq!(cold_names(&tier), [Bytes::from("d")]);

    clock.advance(10 * MINUTE);
    assert_eq!(cold_names(&tier).len(), 3);
    tier.clear().await.unwrap();
    assert!(cold_names(&tier).is_empty());
}

#[tokio::test]
async fn cold_tracking_can_be_switched_off() {
    let clock = ManualClock::default();
    let tier = AnalyticsLayer::new()
        .clock(clock.clock())
        .cold_capacity(0)
        .cold_window(MINUTE)
        .layer(MemoryBackend::builder().clock(clock.clock()).build());
    let entry = Entry::new(&b"v"[..], Meta::new(0));
    tier.insert(Bytes::from("a"), entry).await.unwrap();
    clock.advance(2 * MINUTE);
    assert!(tier.cold_keys(10).is_empty());
}
