//! Each race the consistency guarantee rules out, put in a known order with
//! a gated tier: a read's promotion against an insert or a remove, and
//! write-on-evict's demotions against removes, cancellation, idling out
//! and `clear`. Each failed before the stripe locks and the keyed demotion
//! queue.

use std::sync::Arc;
use std::time::Duration;

use tiercache::memory::MemoryBackend;
use tiercache::tier::DynBackend;
use tiercache::{Cache, ManualClock};
use tiercache_tests::{Gated, held_in};

type Tier = Arc<Gated<MemoryBackend>>;

fn tier(clock: &ManualClock) -> Tier {
    Arc::new(Gated::new(
        MemoryBackend::builder().clock(clock.clock()).build(),
    ))
}

async fn cache(
    clock: &ManualClock,
    warm: &Tier,
    capacity: u64,
    write_on_evict: bool,
) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(capacity)
        .clock(clock.clock())
        .tier(warm.clone() as Arc<dyn DynBackend>)
        .write_on_evict(write_on_evict)
        .build()
        .await
        .expect("a valid cache")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_never_lands_over_an_insert_that_returned() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = cache(&clock, &warm, 100, false).await;
    cache.insert("k".into(), "v1".into()).await.unwrap();
    cache.hot().remove(&"k".into());

    // A read finds v1 below and is held before it promotes it.
    warm.after_get.arm();
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&"k".into()).await.unwrap() }
    });
    warm.after_get.held().await;
    cache.insert("k".into(), "v2".into()).await.unwrap();
    warm.after_get.release();
    // The held read began before the insert returned: either is fine.
    let raced = reader.await.unwrap();
    assert!(matches!(raced.as_deref(), Some("v1" | "v2")));

    // Every read after the insert returned sees v2, in both tiers.
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v2"));
    assert_eq!(cache.hot().get(&"k".into()).as_deref(), Some("v2"));
    assert_eq!(held_in(warm.inner(), "k").await.as_deref(), Some("v2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_never_brings_back_a_removed_key() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = cache(&clock, &warm, 100, false).await;
    cache.insert("k".into(), "v1".into()).await.unwrap();
    cache.hot().remove(&"k".into());

    warm.after_get.arm();
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&"k".into()).await.unwrap() }
    });
    warm.after_get.held().await;
    cache.remove(&"k".into()).await.unwrap();
    warm.after_get.release();
    reader.await.unwrap();

    assert_eq!(cache.get(&"k".into()).await.unwrap(), None);
    assert!(!cache.hot().contains_key(&"k".into()));
}

/// A write-on-evict cache of one hot entry holding `a`, with the warm
/// tier's next insert held: inserting `b` then evicts one of the two, and
/// its demotion waits there.
async fn demotion_held(clock: &ManualClock, warm: &Tier) -> Cache<String, String> {
    let cache = cache(clock, warm, 1, true).await;
    cache.insert("a".into(), "A".into()).await.unwrap();
    warm.before_insert.arm();
    cache
}

/// The key of `a` and `b` the hot tier let go of, and its value. The
/// policy decides which: it may refuse the newcomer.
fn evicted(cache: &Cache<String, String>) -> (String, String) {
    if cache.hot().contains_key(&"a".into()) {
        ("b".into(), "B".into())
    } else {
        ("a".into(), "A".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remove_during_a_demotion_is_not_undone_by_it() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = demotion_held(&clock, &warm).await;
    let inserter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.insert("b".into(), "B".into()).await.unwrap() }
    });
    warm.before_insert.held().await;
    // It is on its way down; a remove of it must win, whenever it lands.
    let (gone, _) = evicted(&cache);
    let remover = tokio::spawn({
        let cache = cache.clone();
        let gone = gone.clone();
        async move { cache.remove(&gone).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    warm.before_insert.release();
    inserter.await.unwrap();
    remover.await.unwrap();
    cache.flush().await.unwrap();

    assert_eq!(cache.get(&gone).await.unwrap(), None);
    assert_eq!(held_in(warm.inner(), &gone).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demotion_cancelled_half_way_loses_nothing() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = demotion_held(&clock, &warm).await;
    // The insert that evicted `a` is dropped while `a` is being written.
    let insert = cache.insert("b".into(), "B".into());
    let gave_up = tokio::time::timeout(Duration::from_millis(50), insert).await;
    assert!(gave_up.is_err(), "the insert was held at the demotion");
    warm.before_insert.release();

    // The evicted entry is still the key's value, on its way down, and
    // flush lands it.
    let (gone, value) = evicted(&cache);
    assert_eq!(cache.get(&gone).await.unwrap(), Some(value.clone()));
    cache.flush().await.unwrap();
    assert_eq!(held_in(warm.inner(), &gone).await, Some(value));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clear_during_a_demotion_leaves_nothing_behind() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = demotion_held(&clock, &warm).await;
    let inserter = tokio::spawn({
        let cache = cache.clone();
        async move { cache.insert("b".into(), "B".into()).await.unwrap() }
    });
    warm.before_insert.held().await;
    let (gone, _) = evicted(&cache);
    let clearer = tokio::spawn({
        let cache = cache.clone();
        async move { cache.clear().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    warm.before_insert.release();
    inserter.await.unwrap();
    clearer.await.unwrap();
    cache.flush().await.unwrap();

    assert_eq!(cache.get(&gone).await.unwrap(), None);
    assert_eq!(held_in(warm.inner(), &gone).await, None);
}

#[tokio::test]
async fn an_entry_that_idles_out_of_memory_is_demoted_with_its_time_to_live() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .time_to_live(Duration::from_secs(3600))
        .time_to_idle(Duration::from_secs(60))
        .tier(warm.clone() as Arc<dyn DynBackend>)
        .write_on_evict(true)
        .build()
        .await
        .unwrap();
    cache.insert("k".into(), "v".into()).await.unwrap();
    assert_eq!(held_in(warm.inner(), "k").await, None, "not written yet");
    clock.advance(Duration::from_secs(61));
    // Idle in memory, still live by its time-to-live.
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v"));
    cache.flush().await.unwrap();
    assert_eq!(held_in(warm.inner(), "k").await.as_deref(), Some("v"));
    cache.hot().remove(&"k".into());
    assert_eq!(cache.get(&"k".into()).await.unwrap().as_deref(), Some("v"));
}

#[tokio::test]
async fn flush_writes_what_waits_for_the_warm_tier() {
    let clock = ManualClock::default();
    let warm = tier(&clock);
    let cache = cache(&clock, &warm, 1, true).await;
    cache.insert("a".into(), "A".into()).await.unwrap();
    cache.insert("b".into(), "B".into()).await.unwrap();
    cache.flush().await.unwrap();
    let (gone, value) = evicted(&cache);
    assert_eq!(held_in(warm.inner(), &gone).await, Some(value));
    assert_eq!(cache.hierarchy_stats().demotions, 1);
}
