//! Bypass rules (feature `policies`): key patterns on lookups and on
//! writes (`gets_only`, `sets_only`), value sizes on writes, closures,
//! several rules at once (any match bypasses), rules scoped to the hot
//! tier (big values kept on disk and read from there, not promoted) or to
//! one named tier; a bypassed insert stores nothing and removes the key's
//! older value everywhere while a store behind the cache still takes it; a
//! bypassed lookup goes to the store or loader every time and caches
//! nothing; `load_stats` counts bypassed gets, sets and tier skips.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tiercache::redb::RedbBackend;
use tiercache::tier::DynBackend;
use tiercache::{
    BypassOp, BypassRule, BypassScope, Cache, Lookup, ManualClock, PatternBypass, SizeBypass,
};
use tiercache_tests::counting_loader::CountingLoader;
use tiercache_tests::protect_support::{get, key, lookup, optionally};
use tiercache_tests::{Stack, TestStore, TestTier, held, held_in, stack, stack_with};

/// The names of a cache's tiers, nearest first.
fn tier_names(cache: &Cache<String, String>) -> Vec<String> {
    cache.tier_stats().into_iter().map(|t| t.name).collect()
}

/// The (bypassed gets, bypassed sets, tier skips) a cache counted.
fn bypass_counts(cache: &Cache<String, String>) -> (u64, u64, u64) {
    let stats = cache.load_stats();
    (stats.bypassed_gets, stats.bypassed_sets, stats.tier_skips)
}

/// A memory tier on `clock`, shared with the test, to put below others.
fn memory_tier(clock: &ManualClock) -> TestTier {
    Arc::new(tiercache::tier::FailingBackend::new(
        tiercache::memory::MemoryBackend::builder()
            .max_bytes(16 << 20)
            .clock(clock.clock())
            .build(),
    ))
}

/// What `cache` answers a `get_with` of `k` with, `loader` loading.
async fn get_with(cache: &Cache<String, String>, k: &str, loader: &CountingLoader) -> String {
    cache.get_with(key(k), loader.value(k)).await.unwrap()
}

/// A stack of `tiers` byte tiers whose cache has the one bypass rule
/// `rule`.
async fn bypassing(tiers: usize, rule: impl BypassRule<String> + 'static) -> Stack {
    stack_with(100, tiers, None, |b| b.bypass(rule)).await
}

/// What byte tier `tier` holds for `k`: the value alone.
async fn held_value(tier: &TestTier, k: &str) -> Option<String> {
    held_in(tier.inner(), k).await
}

/// Checks that none of `s`'s byte tiers holds `k`.
async fn held_nowhere(s: &Stack, k: &str) {
    for tier in &s.tiers {
        assert_eq!(held(tier, k).await, None, "{k}, {} tiers", s.tiers.len());
    }
}

/// A cache over a redb tier in `dir`'s `file`, whose hot tier a rule keeps
/// values encoded over `over` bytes out of.
async fn disk_keeping_big_values_out_of_memory(
    dir: &Path,
    file: &str,
    over: usize,
) -> Cache<String, String> {
    Cache::builder()
        .max_capacity(100)
        .disk(dir.join(file))
        .bypass_in(BypassScope::Memory, SizeBypass::over(over))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gets_only_pattern_bypasses_lookups_of_matching_keys() {
    for tiers in [0, 1] {
        let s = bypassing(tiers, PatternBypass::new(["user:*", "tmp?"]).gets_only()).await;
        let bypassed = ["user:1", "user:", "tmp1"];
        let cached = ["tmp12", "tmp", "xuser:1", "use"];
        for k in bypassed.iter().chain(&cached) {
            s.cache.insert(key(k), format!("v {k}")).await.unwrap();
            // The rule does not apply to writes: every key is stored.
            assert_eq!(s.cache.hot().get(&key(k)), Some(format!("v {k}")), "{k}");
        }
        for k in bypassed {
            assert_eq!(get(&s.cache, k).await, None, "{k}");
            assert_eq!(lookup(&s.cache, k).await, Lookup::Bypassed, "{k}");
        }
        for k in cached {
            assert_eq!(get(&s.cache, k).await, Some(format!("v {k}")), "{k}");
        }
        assert_eq!(bypass_counts(&s.cache), (6, 0, 0), "{tiers} tiers");
    }
}

#[tokio::test]
async fn a_sets_only_pattern_bypasses_writes_of_matching_keys() {
    for tiers in [0, 1] {
        let s = bypassing(tiers, PatternBypass::new(["user:*"]).sets_only()).await;
        s.cache.insert(key("user:1"), key("v")).await.unwrap();
        s.cache.insert(key("other"), key("w")).await.unwrap();
        assert_eq!(s.cache.hot().get(&key("user:1")), None);
        for tier in &s.tiers {
            assert_eq!(held(tier, "user:1").await, None);
            assert_eq!(held_value(tier, "other").await, Some(key("w")));
        }
        // Lookups of the key still look in the cache, which holds nothing.
        assert_eq!(lookup(&s.cache, "user:1").await, Lookup::Miss);
        assert_eq!(get(&s.cache, "other").await, Some(key("w")));
        assert_eq!(bypass_counts(&s.cache), (0, 1, 0), "{tiers} tiers");
    }
}

#[tokio::test]
async fn a_pattern_for_both_operations_bypasses_lookups_and_writes() {
    for tiers in [0, 2] {
        let s = bypassing(tiers, PatternBypass::new(["session:*"])).await;
        s.cache.insert(key("session:a"), key("v")).await.unwrap();
        assert_eq!(s.cache.hot().get(&key("session:a")), None);
        held_nowhere(&s, "session:a").await;
        assert_eq!(get(&s.cache, "session:a").await, None);
        assert_eq!(lookup(&s.cache, "session:a").await, Lookup::Bypassed);
        s.cache.insert(key("sessions"), key("w")).await.unwrap();
        assert_eq!(get(&s.cache, "sessions").await, Some(key("w")));
        assert_eq!(bypass_counts(&s.cache), (2, 1, 0), "{tiers} tiers");
    }
}

#[tokio::test]
async fn a_size_rule_bypasses_writes_of_values_encoded_over_its_size() {
    for tiers in [0, 1] {
        let s = bypassing(tiers, SizeBypass::over(16)).await;
        // Postcard encodes a short string as its length byte and its bytes.
        let at_limit = "a".repeat(15);
        let over_limit = "b".repeat(16);
        s.cache.insert(key("at"), at_limit.clone()).await.unwrap();
        s.cache.insert(key("over"), over_limit).await.unwrap();
        assert_eq!(get(&s.cache, "at").await, Some(at_limit.clone()));
        for tier in &s.tiers {
            assert_eq!(held_value(tier, "at").await, Some(at_limit.clone()));
            assert_eq!(held(tier, "over").await, None);
        }
        // Sizes say nothing of lookups: the key is simply not cached.
        assert_eq!(lookup(&s.cache, "over").await, Lookup::Miss);
        assert_eq!(bypass_counts(&s.cache), (0, 1, 0), "{tiers} tiers");
    }
}

#[tokio::test]
async fn a_size_rule_of_one_class_bypasses_only_that_classs_writes() {
    let s = stack_with(100, 1, None, |b| {
        b.class("blob", Duration::from_secs(3_600))
            .class("doc", Duration::from_secs(3_600))
            .bypass(SizeBypass::over(16).class("blob"))
    })
    .await;
    let big = "c".repeat(64);
    s.cache
        .insert_with_class(key("b"), big.clone(), "blob")
        .await
        .unwrap();
    s.cache
        .insert_with_class(key("d"), big.clone(), "doc")
        .await
        .unwrap();
    s.cache.insert(key("plain"), big.clone()).await.unwrap();
    s.cache
        .insert_with_class(key("small"), key("s"), "blob")
        .await
        .unwrap();
    assert_eq!(get(&s.cache, "b").await, None);
    assert_eq!(held(&s.tiers[0], "b").await, None);
    for k in ["d", "plain"] {
        assert_eq!(get(&s.cache, k).await, Some(big.clone()), "{k}");
    }
    assert_eq!(get(&s.cache, "small").await, Some(key("s")));
    assert_eq!(bypass_counts(&s.cache), (0, 1, 0));
}

#[tokio::test]
async fn a_closure_rule_sees_the_key_the_operation_and_the_write() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let rule = {
        let seen = seen.clone();
        move |k: &String, op: BypassOp<'_>| {
            seen.lock().push(match op {
                BypassOp::Get => format!("get {k}"),
                BypassOp::Set(info) => format!("set {k} {} {}", info.size, info.class),
            });
            match op {
                BypassOp::Get => k.starts_with("fresh:"),
                BypassOp::Set(info) => k.ends_with(":nocache") || info.class == "volatile",
            }
        }
    };
    let s = stack_with(100, 1, None, |b| {
        b.class("volatile", Duration::from_secs(60)).bypass(rule)
    })
    .await;
    s.cache.insert(key("plain"), key("abc")).await.unwrap();
    s.cache.insert(key("fresh:1"), key("f")).await.unwrap();
    s.cache.insert(key("x:nocache"), key("n")).await.unwrap();
    s.cache
        .insert_with_class(key("vol"), key("v"), "volatile")
        .await
        .unwrap();
    assert_eq!(
        *seen.lock(),
        [
            "set plain 4 default",
            "set fresh:1 2 default",
            "set x:nocache 2 default",
            "set vol 2 volatile",
        ]
    );
    // Written: the lookup rule does not stop the write of fresh:1.
    assert_eq!(held_value(&s.tiers[0], "fresh:1").await, Some(key("f")));
    assert_eq!(held(&s.tiers[0], "x:nocache").await, None);
    assert_eq!(held(&s.tiers[0], "vol").await, None);
    assert_eq!(get(&s.cache, "plain").await, Some(key("abc")));
    assert_eq!(get(&s.cache, "fresh:1").await, None);
    assert_eq!(lookup(&s.cache, "fresh:1").await, Lookup::Bypassed);
    assert_eq!(get(&s.cache, "vol").await, None);
    assert_eq!(bypass_counts(&s.cache), (2, 2, 0));
}

#[tokio::test]
async fn several_rules_bypass_when_any_matches() {
    let s = stack_with(100, 1, None, |b| {
        b.bypass(PatternBypass::new(["a:*"]))
            .bypass(|k: &String, _: BypassOp<'_>| k.ends_with(":tmp"))
            .bypass(SizeBypass::over(100))
    })
    .await;
    let big = "z".repeat(200);
    s.cache.insert(key("a:1"), key("v")).await.unwrap();
    s.cache.insert(key("b:tmp"), key("v")).await.unwrap();
    s.cache.insert(key("b:big"), big).await.unwrap();
    s.cache.insert(key("b:1"), key("v")).await.unwrap();
    for k in ["a:1", "b:tmp", "b:big"] {
        assert_eq!(held(&s.tiers[0], k).await, None, "{k}");
        assert_eq!(get(&s.cache, k).await, None, "{k}");
    }
    assert_eq!(get(&s.cache, "b:1").await, Some(key("v")));
    assert_eq!(lookup(&s.cache, "b:tmp").await, Lookup::Bypassed);
    assert_eq!(lookup(&s.cache, "b:big").await, Lookup::Miss);
    // Sets: a:1, b:tmp and b:big; gets: a:1 and b:tmp, twice for b:tmp.
    assert_eq!(bypass_counts(&s.cache), (3, 3, 0));
}

#[tokio::test]
async fn a_memory_scoped_size_rule_keeps_big_values_on_disk_and_reads_them_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let cache = disk_keeping_big_values_out_of_memory(dir.path(), "bypass.redb", 1 << 20).await;
    assert_eq!(tier_names(&cache), ["hot", "redb"]);
    let big = "x".repeat(1 << 20);
    cache.insert(key("big"), big.clone()).await.unwrap();
    cache.insert(key("small"), key("s")).await.unwrap();
    assert!(!cache.hot().contains_key(&key("big")));
    assert!(cache.hot().contains_key(&key("small")));
    for reads in 1..=2 {
        assert_eq!(get(&cache, "big").await, Some(big.clone()));
        assert!(
            !cache.hot().contains_key(&key("big")),
            "not promoted into memory"
        );
        assert_eq!(cache.tier_stats()[1].hits, reads, "read from redb");
    }
    assert_eq!(get(&cache, "small").await, Some(key("s")));
    assert_eq!(cache.tier_stats()[1].hits, 2, "small is answered by memory");
    // A big value replacing a small one leaves no older value in memory.
    cache.insert(key("k"), key("old")).await.unwrap();
    assert_eq!(cache.hot().get(&key("k")), Some(key("old")));
    cache.insert(key("k"), big.clone()).await.unwrap();
    assert_eq!(cache.hot().get(&key("k")), None);
    assert_eq!(get(&cache, "k").await, Some(big));
    // Two writes skipped memory; nothing bypassed the whole cache.
    assert_eq!(bypass_counts(&cache), (0, 0, 2));
}

/// A cache over a redb tier and a memory tier below it, shared with the
/// test, whose rules keep `bulk:*` keys and values over 64 bytes out of
/// redb.
async fn redb_then_memory(dir: &Path) -> (Cache<String, String>, Arc<RedbBackend>, TestTier) {
    let clock = ManualClock::default();
    let redb = Arc::new(
        RedbBackend::builder(dir.join("scoped.redb"))
            .clock(clock.clock())
            .build()
            .await
            .unwrap(),
    );
    let memory = memory_tier(&clock);
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(100)
        .clock(clock.clock())
        .tier(redb.clone() as Arc<dyn DynBackend>)
        .tier(memory.clone() as Arc<dyn DynBackend>)
        .bypass_in(
            BypassScope::Tier("redb".into()),
            PatternBypass::new(["bulk:*"]),
        )
        .bypass_in(BypassScope::Tier("redb".into()), SizeBypass::over(64))
        .build()
        .await
        .unwrap();
    assert_eq!(tier_names(&cache), ["hot", "redb", "memory"]);
    (cache, redb, memory)
}

#[tokio::test]
async fn a_tier_scoped_rule_keeps_keys_out_of_that_tier_only() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, redb, memory) = redb_then_memory(dir.path()).await;
    cache.insert(key("bulk:1"), key("b")).await.unwrap();
    cache.insert(key("plain"), key("p")).await.unwrap();
    assert_eq!(held_in(&*redb, "bulk:1").await, None);
    assert_eq!(held_in(&*redb, "plain").await, Some(key("p")));
    assert_eq!(held_value(&memory, "bulk:1").await, Some(key("b")));
    assert_eq!(cache.hot().get(&key("bulk:1")), Some(key("b")));
    assert_eq!(bypass_counts(&cache), (0, 0, 1));

    // Read from the tier below redb; redb is not asked, nor given a copy.
    cache.hot().clear();
    assert_eq!(get(&cache, "bulk:1").await, Some(key("b")));
    let stats = cache.tier_stats();
    assert_eq!((stats[1].hits, stats[1].misses), (0, 0), "redb not asked");
    assert_eq!(stats[2].hits, 1);
    assert_eq!(
        held_in(&*redb, "bulk:1").await,
        None,
        "not promoted into redb"
    );
    assert_eq!(cache.hot().get(&key("bulk:1")), Some(key("b")));
    assert_eq!(bypass_counts(&cache), (0, 0, 2));

    // A big value replacing a small one: redb loses the older one.
    cache.insert(key("doc"), key("short")).await.unwrap();
    assert_eq!(held_in(&*redb, "doc").await, Some(key("short")));
    let long = "l".repeat(100);
    cache.insert(key("doc"), long.clone()).await.unwrap();
    assert_eq!(held_in(&*redb, "doc").await, None);
    assert_eq!(held_value(&memory, "doc").await, Some(long.clone()));
    assert_eq!(cache.hot().get(&key("doc")), Some(long));
    assert_eq!(bypass_counts(&cache), (0, 0, 3));
}

#[tokio::test]
async fn a_promotion_does_not_copy_a_value_into_a_tier_a_size_rule_keeps_it_out_of() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, redb, memory) = redb_then_memory(dir.path()).await;
    let long = "l".repeat(100);
    cache.insert(key("doc"), long.clone()).await.unwrap();
    assert_eq!(held_in(&*redb, "doc").await, None);
    assert_eq!(held_value(&memory, "doc").await, Some(long.clone()));
    // Found below redb (which misses) and promoted: into memory, not
    // into redb, which the size rule keeps it out of.
    cache.hot().clear();
    assert_eq!(get(&cache, "doc").await, Some(long.clone()));
    assert_eq!(cache.tier_stats()[1].misses, 1);
    assert_eq!(cache.hot().get(&key("doc")), Some(long));
    assert_eq!(
        held_in(&*redb, "doc").await,
        None,
        "the promotion put a value the rule keeps out of redb into it"
    );
}

#[tokio::test]
async fn a_bypassed_insert_removes_the_keys_older_value_from_every_tier() {
    for tiers in [0, 2] {
        let s = bypassing(tiers, SizeBypass::over(16)).await;
        s.cache.insert(key("k"), key("old")).await.unwrap();
        for tier in &s.tiers {
            assert_eq!(held_value(tier, "k").await, Some(key("old")));
        }
        s.cache.insert(key("k"), "n".repeat(32)).await.unwrap();
        assert_eq!(s.cache.hot().get(&key("k")), None, "{tiers} tiers");
        held_nowhere(&s, "k").await;
        assert_eq!(lookup(&s.cache, "k").await, Lookup::Miss);
        assert_eq!(bypass_counts(&s.cache), (0, 1, 0));
    }
}

#[tokio::test]
async fn a_bypassed_insert_still_reaches_the_store_and_gets_read_it_from_there() {
    let store = TestStore::<String, String>::new();
    let s = stack_with(100, 1, None, |b| {
        b.store(store.clone())
            .bypass(PatternBypass::new(["live:*"]))
    })
    .await;
    s.cache.insert(key("live:1"), key("v1")).await.unwrap();
    assert_eq!(store.value(&key("live:1")), Some(key("v1")));
    assert_eq!(store.calls().saves, 1);
    assert_eq!(s.cache.hot().get(&key("live:1")), None);
    assert_eq!(held(&s.tiers[0], "live:1").await, None);
    for loads in 1..=3 {
        assert_eq!(get(&s.cache, "live:1").await, Some(key("v1")));
        assert_eq!(store.calls().loads, loads);
    }
    assert_eq!(s.cache.hot().get(&key("live:1")), None);
    assert_eq!(held(&s.tiers[0], "live:1").await, None);
    s.cache.insert(key("live:1"), key("v2")).await.unwrap();
    assert_eq!(get(&s.cache, "live:1").await, Some(key("v2")));
    assert_eq!(store.calls().saves, 2);
    // A key the store has no value for: nothing negative is stored.
    assert_eq!(get(&s.cache, "live:gone").await, None);
    assert_eq!(get(&s.cache, "live:gone").await, None);
    assert_eq!(store.calls().loads, 6);
    assert_eq!(s.cache.load_stats().negatives_stored, 0);
    assert_eq!(bypass_counts(&s.cache), (6, 2, 0));
}

#[tokio::test]
async fn a_bypassed_get_reaches_the_cache_loader_every_time_and_caches_nothing() {
    let loader =
        CountingLoader::new(|k| Ok((!k.ends_with(":gone")).then(|| format!("loaded {k}"))));
    let s = stack_with(100, 1, None, |b| {
        b.loader(loader.clone())
            .bypass(PatternBypass::new(["live:*"]).gets_only())
    })
    .await;
    for calls in 1..=3 {
        assert_eq!(get(&s.cache, "live:1").await, Some(key("loaded live:1")));
        assert_eq!(loader.calls(), calls);
    }
    assert_eq!(s.cache.hot().get(&key("live:1")), None);
    assert_eq!(held(&s.tiers[0], "live:1").await, None);
    // None for a bypassed key stores no negative entry.
    for _ in 0..2 {
        assert_eq!(get(&s.cache, "live:gone").await, None);
    }
    assert_eq!(loader.calls(), 5);
    assert_eq!(lookup(&s.cache, "live:gone").await, Lookup::Miss);
    assert_eq!(loader.calls(), 6);
    assert_eq!(s.cache.load_stats().negatives_stored, 0);
    // Another key is loaded once and cached.
    for _ in 0..2 {
        assert_eq!(get(&s.cache, "k").await, Some(key("loaded k")));
    }
    assert_eq!(loader.calls(), 7);
    assert_eq!(bypass_counts(&s.cache), (6, 0, 0));
}

#[tokio::test]
async fn loads_of_a_bypassed_key_run_their_loader_every_time_and_cache_nothing() {
    let s = bypassing(1, PatternBypass::new(["live:*"])).await;
    let values = CountingLoader::values();
    for calls in 1..=3 {
        assert_eq!(get_with(&s.cache, "live:1", &values).await, "loaded live:1");
        assert_eq!(values.calls(), calls);
    }
    let none = CountingLoader::none();
    for calls in 1..=2 {
        assert_eq!(optionally(&s.cache, "live:2", &none).await, None);
        assert_eq!(none.calls(), calls);
    }
    for calls in 4..=5 {
        assert_eq!(
            s.cache.get_or_load(&key("live:3"), &values).await.unwrap(),
            Some(key("loaded live:3"))
        );
        assert_eq!(values.calls(), calls);
    }
    assert_eq!(s.cache.entry_count(), 0);
    for k in ["live:1", "live:2", "live:3"] {
        assert_eq!(held(&s.tiers[0], k).await, None, "{k}");
    }
    assert_eq!(s.cache.load_stats().negatives_stored, 0);
    // With no store or loader, a bypassed get answers nothing.
    assert_eq!(get(&s.cache, "live:1").await, None);
    assert_eq!(lookup(&s.cache, "live:1").await, Lookup::Bypassed);
    assert_eq!(bypass_counts(&s.cache), (9, 0, 0));
}

#[tokio::test]
async fn a_display_pattern_bypasses_integer_keys_by_their_text() {
    let cache: Cache<u64, String> = Cache::builder()
        .bypass(PatternBypass::new(["9*"]).on_display())
        .build()
        .await
        .unwrap();
    for k in [9, 90, 19] {
        cache.insert(k, format!("v{k}")).await.unwrap();
    }
    assert_eq!(cache.get(&9).await.unwrap(), None);
    assert_eq!(cache.lookup(&90).await.unwrap(), Lookup::Bypassed);
    assert_eq!(cache.get(&19).await.unwrap(), Some(key("v19")));
    let stats = cache.load_stats();
    assert_eq!((stats.bypassed_gets, stats.bypassed_sets), (2, 2));
}

#[tokio::test]
async fn without_rules_nothing_is_bypassed() {
    let s = stack(100, 1, None).await;
    s.cache
        .insert(key("user:1"), "x".repeat(1 << 16))
        .await
        .unwrap();
    assert!(get(&s.cache, "user:1").await.is_some());
    assert_eq!(bypass_counts(&s.cache), (0, 0, 0));
}

#[tokio::test]
async fn a_none_whose_negative_a_sets_rule_keeps_out_is_not_counted_as_stored() {
    for tiers in [0, 1] {
        let s = bypassing(tiers, PatternBypass::new(["user:*"]).sets_only()).await;
        let none = CountingLoader::none();
        for calls in 1..=2 {
            assert_eq!(optionally(&s.cache, "user:1", &none).await, None);
            // Nothing was stored, so the next caller loads again.
            assert_eq!(none.calls(), calls, "{tiers} tiers");
        }
        assert_eq!(lookup(&s.cache, "user:1").await, Lookup::Miss);
        held_nowhere(&s, "user:1").await;
        let stats = s.cache.load_stats();
        assert_eq!(stats.negatives_stored, 0, "{tiers} tiers: {stats:?}");
        assert_eq!(stats.bypassed_sets, 2, "{tiers} tiers: {stats:?}");
    }
}

#[tokio::test]
async fn a_big_loaded_value_kept_out_of_memory_is_cached_on_disk_and_loaded_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = disk_keeping_big_values_out_of_memory(dir.path(), "loaded.redb", 1 << 10).await;
    let big = "y".repeat(4 << 10);
    let loader = {
        let big = big.clone();
        CountingLoader::new(move |_| Ok(Some(big.clone())))
    };
    for _ in 0..3 {
        assert_eq!(get_with(&cache, "big", &loader).await, big);
    }
    assert_eq!(loader.calls(), 1);
    assert!(!cache.hot().contains_key(&key("big")));
    assert_eq!(cache.tier_stats()[1].hits, 2, "the later calls read redb");
    assert_eq!(bypass_counts(&cache), (0, 0, 1));
}
