//! Load protection's settings are checked at `build`: an invalid bypass
//! pattern (empty, a dangling `\`, an empty list), a zero or
//! unrepresentable negative time-to-live, a zero class negative
//! time-to-live, a zero load timeout or stale-if-error window,
//! refresh-after-write without a loader or store or not shorter than a
//! time-to-live, and a cache with both a store and a loader are each a
//! clear error of the named kind whose message names the setting; the
//! valid neighbours of each build.

use std::time::Duration;

use tiercache::{Cache, CacheBuilder, Error, ErrorKind, PatternBypass};
use tiercache_tests::TestStore;
use tiercache_tests::counting_loader::CountingLoader;

type Builder = CacheBuilder<String, String>;

fn builder() -> Builder {
    Cache::builder()
}

/// The error `build` gives, or a panic naming `what` if it builds.
async fn build_error(what: &str, b: Builder) -> Error {
    match b.build().await {
        Ok(_) => panic!("{what}: built, expected an error"),
        Err(e) => e,
    }
}

/// Checks that `b` fails to build with `kind` and a message containing
/// each of `names`.
async fn assert_refused(what: &str, b: Builder, kind: ErrorKind, names: &[&str]) {
    let err = build_error(what, b).await;
    assert_eq!(err.kind(), kind, "{what}: {err}");
    for name in names {
        assert!(
            err.message().contains(name),
            "{what}: the message does not name {name:?}: {err}"
        );
    }
}

#[tokio::test]
async fn invalid_bypass_patterns_are_invalid_config_naming_the_pattern() {
    assert_refused(
        "an empty pattern",
        builder().bypass(PatternBypass::new(["user:*", ""])),
        ErrorKind::InvalidConfig,
        &["bypass rule 0", "pattern 1", "empty"],
    )
    .await;
    assert_refused(
        "a dangling backslash",
        builder().bypass(PatternBypass::new([r"tmp\"])),
        ErrorKind::InvalidConfig,
        &["bypass rule 0", r#""tmp\\""#, "lone `\\`"],
    )
    .await;
    assert_refused(
        "no patterns",
        builder().bypass(PatternBypass::new(Vec::<String>::new())),
        ErrorKind::InvalidConfig,
        &["bypass rule 0", "no bypass patterns"],
    )
    .await;
    // The index is the rule's among all the cache's rules, whatever the
    // scope.
    assert_refused(
        "a bad second rule",
        builder()
            .bypass(PatternBypass::new(["ok:*"]))
            .bypass_in(tiercache::BypassScope::Memory, PatternBypass::new([""])),
        ErrorKind::InvalidConfig,
        &["bypass rule 1", "empty"],
    )
    .await;
    // An escaped backslash, and every wildcard, is fine.
    builder()
        .bypass(PatternBypass::new([r"tmp\\", "a?b*", r"\*"]))
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_zero_or_unrepresentable_negative_ttl_is_invalid_ttl_naming_negative_ttl() {
    for (what, ttl) in [("zero", Duration::ZERO), ("Duration::MAX", Duration::MAX)] {
        assert_refused(
            what,
            builder().negative_ttl(ttl),
            ErrorKind::InvalidTtl,
            &["negative_ttl"],
        )
        .await;
    }
    assert_refused(
        "under a millisecond",
        builder().negative_ttl(Duration::from_micros(999)),
        ErrorKind::InvalidTtl,
        &["negative_ttl"],
    )
    .await;
    builder()
        .negative_ttl(Duration::from_millis(1))
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_zero_class_negative_ttl_is_invalid_ttl_naming_the_class() {
    assert_refused(
        "a zero class negative ttl",
        builder()
            .class("session", Duration::from_secs(60))
            .class_negative_ttl("session", Duration::ZERO),
        ErrorKind::InvalidTtl,
        &["class_negative_ttl", "session"],
    )
    .await;
    assert_refused(
        "an unrepresentable class negative ttl",
        builder().class_negative_ttl("session", Duration::MAX),
        ErrorKind::InvalidTtl,
        &["class_negative_ttl", "session"],
    )
    .await;
    builder()
        .class("session", Duration::from_secs(60))
        .class_negative_ttl("session", Duration::from_secs(5))
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn refresh_after_write_without_a_loader_or_store_is_invalid_config() {
    assert_refused(
        "nothing to reload with",
        builder()
            .time_to_live(Duration::from_secs(60))
            .refresh_after_write(Duration::from_secs(30)),
        ErrorKind::InvalidConfig,
        &["refresh_after_write", "loader", "store"],
    )
    .await;
    // With either, it builds.
    builder()
        .time_to_live(Duration::from_secs(60))
        .refresh_after_write(Duration::from_secs(30))
        .loader(CountingLoader::values())
        .build()
        .await
        .unwrap();
    builder()
        .time_to_live(Duration::from_secs(60))
        .refresh_after_write(Duration::from_secs(30))
        .store(TestStore::<String, String>::new())
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn refresh_after_write_not_shorter_than_a_ttl_is_invalid_config() {
    for every in [Duration::from_secs(60), Duration::from_secs(61)] {
        assert_refused(
            &format!("refresh every {every:?}, the cache's ttl 60 s"),
            builder()
                .time_to_live(Duration::from_secs(60))
                .refresh_after_write(every)
                .loader(CountingLoader::values()),
            ErrorKind::InvalidConfig,
            &["refresh_after_write", "time-to-live", "the cache"],
        )
        .await;
    }
    // A class's time-to-live counts too, and is named.
    assert_refused(
        "refresh every 40 s, class ttl 30 s",
        builder()
            .time_to_live(Duration::from_secs(3_600))
            .class("short", Duration::from_secs(30))
            .refresh_after_write(Duration::from_secs(40))
            .loader(CountingLoader::values()),
        ErrorKind::InvalidConfig,
        &["refresh_after_write", "short"],
    )
    .await;
    // A zero interval is a bad duration.
    let err = build_error(
        "refresh every 0 s",
        builder()
            .refresh_after_write(Duration::ZERO)
            .loader(CountingLoader::values()),
    )
    .await;
    assert!(
        matches!(err.kind(), ErrorKind::InvalidTtl | ErrorKind::InvalidConfig),
        "{err}"
    );
    assert!(err.message().contains("refresh_after_write"), "{err}");
    // Without a time-to-live anywhere, any interval is shorter.
    builder()
        .refresh_after_write(Duration::from_secs(3_600))
        .loader(CountingLoader::values())
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_zero_load_timeout_or_stale_if_error_window_is_an_error_naming_it() {
    for (setting, b) in [
        ("load_timeout", builder().load_timeout(Duration::ZERO)),
        ("stale_if_error", builder().stale_if_error(Duration::ZERO)),
    ] {
        let err = build_error(setting, b).await;
        assert!(
            matches!(err.kind(), ErrorKind::InvalidTtl | ErrorKind::InvalidConfig),
            "{setting}: {err}"
        );
        assert!(err.message().contains(setting), "{setting}: {err}");
    }
    builder()
        .load_timeout(Duration::from_millis(1))
        .stale_if_error(Duration::from_millis(1))
        .build()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_cache_with_both_a_store_and_a_loader_is_invalid_config() {
    assert_refused(
        "a store and a loader",
        builder()
            .store(TestStore::<String, String>::new())
            .loader(CountingLoader::values()),
        ErrorKind::InvalidConfig,
        &["store", "loader"],
    )
    .await;
    // In either order.
    assert_refused(
        "a loader and a store",
        builder()
            .loader(CountingLoader::values())
            .store(TestStore::<String, String>::new()),
        ErrorKind::InvalidConfig,
        &["store", "loader"],
    )
    .await;
}

#[tokio::test]
async fn a_refused_setting_opens_no_disk_tier() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.redb");
    assert_refused(
        "a zero negative ttl with a disk tier",
        builder().disk(&path).negative_ttl(Duration::ZERO),
        ErrorKind::InvalidTtl,
        &["negative_ttl"],
    )
    .await;
    assert_refused(
        "a bad pattern with a disk tier",
        builder().disk(&path).bypass(PatternBypass::new([""])),
        ErrorKind::InvalidConfig,
        &["bypass rule 0"],
    )
    .await;
    assert!(!path.exists(), "the refused builds created {path:?}");
}
