//! The conformance suite every [`Backend`] and every layer must pass.
//!
//! A backend crate calls [`run`](crate::conformance::run) from a test with a factory that builds a
//! fresh, empty instance on the harness's manual clock and limits:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use cache_core::conformance::{self, ReferenceBackend};
//! conformance::run(|h| async move { ReferenceBackend::new(h.clock.clock(), h.limits) }).await;
//! # });
//! ```
//!
//! Each check panics with its name and what differed.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::backend::Backend;
use crate::clock::{Clock, ManualClock};
use crate::entry::{Entry, Lookup};
use crate::error::{Error, ErrorKind, Result};
use crate::keys::{KeyCursor, KeyPage};
use crate::limits::Limits;
use crate::meta::{DataClass, Flags, Meta};

mod listing;
mod negative;
mod reference;

use listing::keys_listing;
use negative::negative_entries;
pub use reference::ReferenceBackend;

/// What a backend under test must be built with.
#[derive(Clone, Debug)]
pub struct Harness {
    /// The clock the backend must read for expiry. It starts at the real
    /// time, so tiers whose servers keep their own clock agree with it until
    /// a check advances it.
    pub clock: ManualClock,
    /// The limits the backend must enforce.
    pub limits: Limits,
}

impl Harness {
    /// The limits used by the suite: 512-byte keys, 8 MiB values.
    pub const LIMITS: Limits = Limits {
        max_key_len: 512,
        max_value_len: 8 * 1024 * 1024,
    };

    fn new() -> Self {
        Harness {
            clock: ManualClock::new(Clock::system().now_ms()),
            limits: Self::LIMITS,
        }
    }
}

/// Runs every check, each against a fresh backend from `make`.
pub async fn run<B, F, Fut>(make: F)
where
    B: Backend,
    F: Fn(Harness) -> Fut,
    Fut: Future<Output = B>,
{
    macro_rules! check {
        ($name:ident) => {{
            let h = Harness::new();
            let b = make(h.clone()).await;
            $name(&b, &h).await;
        }};
    }
    check!(round_trip);
    check!(overwrite);
    check!(remove);
    check!(remove_if_unchanged);
    check!(expiry);
    check!(clear_and_len);
    check!(limits);
    check!(large_values);
    check!(batches);
    check!(negative_entries);
    check!(keys_listing);
    let h = Harness::new();
    let b = Arc::new(make(h.clone()).await);
    concurrent_use(b, &h).await;
}

fn key(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn meta(h: &Harness) -> Meta {
    Meta::new(h.clock.now_ms())
}

async fn hit<B: Backend>(b: &B, k: &[u8], check: &str) -> Entry {
    match b.get(k).await {
        Ok(Lookup::Hit(e)) => e,
        other => panic!(
            "{check}: {} expected a hit for {:?}, got {other:?}",
            b.name(),
            String::from_utf8_lossy(k)
        ),
    }
}

/// The metadata of the negative entry `b` answers for `k`.
async fn negative<B: Backend>(b: &B, k: &[u8], check: &str) -> Meta {
    match b.get(k).await {
        Ok(Lookup::Negative(meta)) => meta,
        other => panic!(
            "{check}: {} expected a negative entry for {:?}, got {other:?}",
            b.name(),
            String::from_utf8_lossy(k)
        ),
    }
}

async fn miss<B: Backend>(b: &B, k: &[u8], check: &str) {
    match b.get(k).await {
        Ok(Lookup::Miss) => {}
        other => panic!(
            "{check}: {} expected a miss for {:?}, got {other:?}",
            b.name(),
            String::from_utf8_lossy(k)
        ),
    }
}

async fn round_trip<B: Backend>(b: &B, h: &Harness) {
    miss(b, b"absent", "round_trip").await;
    let now = h.clock.now_ms();
    let m = Meta {
        expires_at_ms: Some(now + 3_600_000),
        created_at_ms: now - 5,
        class: DataClass::named("conformance"),
        // Not negative (a negative entry is answered as `Lookup::Negative`,
        // see `negative_entries`), and no compression id: a compression
        // layer under test would take the value for a frame.
        flags: Flags::BELOW_MEMORY,
    };
    let e = Entry::new(Bytes::from_static(b"value-1"), m);
    b.insert(key("k1"), e.clone()).await.unwrap();
    assert_eq!(
        hit(b, b"k1", "round_trip").await,
        e,
        "round_trip: value and metadata must come back unchanged"
    );
    let empty = Entry::new(Bytes::new(), meta(h));
    b.insert(key("empty"), empty.clone()).await.unwrap();
    assert_eq!(hit(b, b"empty", "round_trip").await, empty);
    let binary_key = Bytes::from_static(&[0, 255, 10, 13, b' ', 0]);
    b.insert(binary_key.clone(), e.clone()).await.unwrap();
    assert_eq!(hit(b, &binary_key, "round_trip").await, e);
    assert!(b.contains(b"k1").await.unwrap());
    assert!(!b.contains(b"absent").await.unwrap());
}

async fn overwrite<B: Backend>(b: &B, h: &Harness) {
    b.insert(key("k"), Entry::new(Bytes::from_static(b"one"), meta(h)))
        .await
        .unwrap();
    let later = Meta::with_ttl(h.clock.now_ms(), Duration::from_secs(60)).unwrap();
    b.insert(
        key("k"),
        Entry::new(Bytes::from_static(b"two"), later.clone()),
    )
    .await
    .unwrap();
    let got = hit(b, b"k", "overwrite").await;
    assert_eq!(
        got.value,
        Bytes::from_static(b"two"),
        "overwrite: new value"
    );
    assert_eq!(got.meta, later, "overwrite: new metadata");
    assert_eq!(b.len().await.unwrap(), 1, "overwrite: one entry");
}

async fn remove<B: Backend>(b: &B, h: &Harness) {
    b.insert(key("k"), Entry::new(Bytes::from_static(b"v"), meta(h)))
        .await
        .unwrap();
    b.insert(key("other"), Entry::new(Bytes::from_static(b"o"), meta(h)))
        .await
        .unwrap();
    assert!(b.remove(b"k").await.unwrap(), "remove: reports removal");
    miss(b, b"k", "remove").await;
    assert!(!b.remove(b"k").await.unwrap(), "remove: second remove");
    assert!(!b.contains(b"k").await.unwrap());
    hit(b, b"other", "remove: other keys untouched").await;
    assert_eq!(b.len().await.unwrap(), 1);
}

/// Compare-and-delete: a tier either removes a record whose value is the
/// one seen (and says so) or, like the trait's default, removes nothing and
/// answers `false`; either way it never removes a value that differs from
/// the one seen, and it never reports removing an absent key.
async fn remove_if_unchanged<B: Backend>(b: &B, h: &Harness) {
    let check = "remove_if_unchanged";
    let value = Bytes::from_static(b"seen value");
    b.insert(key("same"), Entry::new(value.clone(), meta(h)))
        .await
        .unwrap();
    b.insert(
        key("changed"),
        Entry::new(Bytes::from_static(b"new"), meta(h)),
    )
    .await
    .unwrap();

    let removed = b.remove_if_unchanged(b"same", &value).await.unwrap();
    if removed {
        miss(b, b"same", "remove_if_unchanged: a reported removal").await;
    } else {
        let kept = hit(b, b"same", "remove_if_unchanged: answered false").await;
        assert_eq!(kept.value, value, "{check}: a kept value is unchanged");
    }

    // The invariant every tier keeps: a value other than the one seen stays,
    // whether it differs in content, in length, or only by a prefix.
    for seen in [&b"old"[..], b"ne", b"new!", b""] {
        assert!(
            !b.remove_if_unchanged(b"changed", seen).await.unwrap(),
            "{check}: reported removing a changed value"
        );
        let kept = hit(b, b"changed", "remove_if_unchanged: a changed value").await;
        assert_eq!(kept.value, Bytes::from_static(b"new"), "{check}");
    }

    assert!(
        !b.remove_if_unchanged(b"absent", b"x").await.unwrap(),
        "{check}: an absent key"
    );
    // A removal the tier reported is a removal: the key can be written again.
    b.insert(
        key("same"),
        Entry::new(Bytes::from_static(b"again"), meta(h)),
    )
    .await
    .unwrap();
    assert_eq!(
        hit(b, b"same", check).await.value,
        Bytes::from_static(b"again")
    );
}

async fn expiry<B: Backend>(b: &B, h: &Harness) {
    let now = h.clock.now_ms();
    let short = Meta::new(now).expires_at(Some(now + 1_000));
    b.insert(key("short"), Entry::new(Bytes::from_static(b"s"), short))
        .await
        .unwrap();
    b.insert(
        key("forever"),
        Entry::new(Bytes::from_static(b"f"), meta(h)),
    )
    .await
    .unwrap();
    let long = Meta::new(now).expires_at(Some(now + 10_000_000));
    b.insert(key("long"), Entry::new(Bytes::from_static(b"l"), long))
        .await
        .unwrap();
    let past = Meta::new(now).expires_at(Some(now - 1));
    b.insert(key("past"), Entry::new(Bytes::from_static(b"p"), past))
        .await
        .unwrap();
    miss(b, b"past", "expiry: already expired on insert").await;

    h.clock.advance(Duration::from_millis(999));
    hit(b, b"short", "expiry: 1 ms before the deadline").await;
    h.clock.advance(Duration::from_millis(1));
    miss(b, b"short", "expiry: at the deadline").await;
    assert!(!b.contains(b"short").await.unwrap());
    assert!(
        !b.remove(b"short").await.unwrap(),
        "expiry: expired is gone"
    );
    hit(b, b"long", "expiry: longer ttl survives").await;
    h.clock.advance(Duration::from_secs(365 * 24 * 3600));
    hit(b, b"forever", "expiry: no expiry survives a year").await;
    miss(b, b"long", "expiry: long ttl ends").await;
}

async fn clear_and_len<B: Backend>(b: &B, h: &Harness) {
    assert_eq!(b.len().await.unwrap(), 0, "clear_and_len: starts empty");
    for i in 0..10 {
        b.insert(
            key(&format!("k{i}")),
            Entry::new(Bytes::from(vec![i; 10]), meta(h)),
        )
        .await
        .unwrap();
    }
    assert_eq!(b.len().await.unwrap(), 10, "clear_and_len: ten entries");
    b.clear().await.unwrap();
    assert_eq!(
        b.len().await.unwrap(),
        0,
        "clear_and_len: empty after clear"
    );
    for i in 0..10 {
        miss(b, format!("k{i}").as_bytes(), "clear_and_len").await;
    }
    b.insert(key("again"), Entry::new(Bytes::from_static(b"a"), meta(h)))
        .await
        .unwrap();
    hit(b, b"again", "clear_and_len: usable after clear").await;
}

async fn limits<B: Backend>(b: &B, h: &Harness) {
    let max_key = Bytes::from(vec![b'k'; h.limits.max_key_len]);
    b.insert(
        max_key.clone(),
        Entry::new(Bytes::from_static(b"ok"), meta(h)),
    )
    .await
    .expect("limits: a key at the limit is accepted");
    hit(b, &max_key, "limits: key at the limit").await;

    let long_key = Bytes::from(vec![b'k'; h.limits.max_key_len + 1]);
    let err = b
        .insert(
            long_key.clone(),
            Entry::new(Bytes::from_static(b"x"), meta(h)),
        )
        .await
        .expect_err("limits: an oversized key is rejected");
    assert_eq!(err.kind(), ErrorKind::KeyTooLarge, "limits: {err}");
    match b.get(&long_key).await {
        Ok(Lookup::Miss) => {}
        Err(e) if e.kind() == ErrorKind::KeyTooLarge => {}
        other => panic!("limits: get of an oversized key gave {other:?}"),
    }

    b.insert(
        key("v"),
        Entry::new(Bytes::from_static(b"keep me"), meta(h)),
    )
    .await
    .unwrap();
    let huge = Bytes::from(vec![0u8; h.limits.max_value_len + 1]);
    let err = b
        .insert(key("v"), Entry::new(huge, meta(h)))
        .await
        .expect_err("limits: an oversized value is rejected");
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "limits: {err}");
    let kept = hit(b, b"v", "limits: rejected write loses nothing").await;
    assert_eq!(kept.value, Bytes::from_static(b"keep me"));
    assert_eq!(b.len().await.unwrap(), 2, "limits: nothing else stored");
}

fn patterned(len: usize, seed: u8) -> Bytes {
    // A non-repeating pattern, so a tier that truncates or reorders chunks
    // is caught.
    let mut x = u32::from(seed) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

async fn large_values<B: Backend>(b: &B, h: &Harness) {
    let big = patterned(4 * 1024 * 1024, 7);
    b.insert(key("big"), Entry::new(big.clone(), meta(h)))
        .await
        .unwrap();
    for i in 0..4u8 {
        b.insert(
            key(&format!("mb{i}")),
            Entry::new(patterned(1024 * 1024, i), meta(h)),
        )
        .await
        .unwrap();
    }
    assert_eq!(hit(b, b"big", "large_values").await.value, big);
    for i in 0..4u8 {
        let got = hit(b, format!("mb{i}").as_bytes(), "large_values").await;
        assert_eq!(got.value, patterned(1024 * 1024, i), "large_values: mb{i}");
    }
}

async fn batches<B: Backend>(b: &B, h: &Harness) {
    let entries: Vec<(Bytes, Entry)> = (0..20u8)
        .map(|i| {
            (
                key(&format!("b{i}")),
                Entry::new(Bytes::from(vec![i; 3]), meta(h)),
            )
        })
        .collect();
    b.insert_many(entries).await.unwrap();
    let keys: Vec<Bytes> = (0..25u8).rev().map(|i| key(&format!("b{i}"))).collect();
    let got = b.get_many(&keys).await.unwrap();
    assert_eq!(got.len(), keys.len(), "batches: one answer per key");
    for (k, lookup) in keys.iter().zip(got) {
        let i: u8 = std::str::from_utf8(&k[1..]).unwrap().parse().unwrap();
        match lookup {
            Lookup::Hit(e) if i < 20 => assert_eq!(e.value, Bytes::from(vec![i; 3])),
            Lookup::Miss if i >= 20 => {}
            other => panic!("batches: key b{i} answered {other:?}"),
        }
    }
    assert_eq!(b.len().await.unwrap(), 20);
}

async fn concurrent_use<B: Backend>(b: Arc<B>, h: &Harness) {
    const TASKS: usize = 8;
    const KEYS: usize = 50;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (b, h) = (b.clone(), h.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..3u8 {
                for k in 0..KEYS {
                    let v = Bytes::from(vec![t as u8, k as u8, round]);
                    b.insert(key(&format!("t{t}-{k}")), Entry::new(v, meta(&h)))
                        .await
                        .unwrap();
                    b.insert(
                        key("shared"),
                        Entry::new(Bytes::from(vec![t as u8]), meta(&h)),
                    )
                    .await
                    .unwrap();
                    let _ = b.get(b"shared").await.unwrap();
                }
            }
            for k in (0..KEYS).step_by(2) {
                assert!(b.remove(format!("t{t}-{k}").as_bytes()).await.unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.expect("concurrent_use: a task panicked");
    }
    for t in 0..TASKS {
        for k in 0..KEYS {
            let name = format!("t{t}-{k}");
            if k % 2 == 0 {
                miss(&*b, name.as_bytes(), "concurrent_use").await;
            } else {
                let e = hit(&*b, name.as_bytes(), "concurrent_use").await;
                assert_eq!(e.value, Bytes::from(vec![t as u8, k as u8, 2]));
            }
        }
    }
    let shared = hit(&*b, b"shared", "concurrent_use").await;
    assert!(shared.value.len() == 1 && (shared.value[0] as usize) < TASKS);
    assert_eq!(
        b.len().await.unwrap(),
        (TASKS * KEYS / 2 + 1) as u64,
        "concurrent_use: exact count"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failing::FailingBackend;
    use crate::{DynBackend, Error};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reference_backend_conforms() {
        run(|h| async move { ReferenceBackend::new(h.clock.clock(), h.limits) }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dyn_backend_conforms() {
        run(|h| async move {
            let b: Arc<dyn DynBackend> = Arc::new(ReferenceBackend::new(h.clock.clock(), h.limits));
            b
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shared_backend_conforms() {
        run(|h| async move { Arc::new(ReferenceBackend::new(h.clock.clock(), h.limits)) }).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_healthy_failing_backend_conforms() {
        run(|h| async move { FailingBackend::new(ReferenceBackend::new(h.clock.clock(), h.limits)) })
            .await;
    }

    /// The methods a broken test backend takes unchanged from the
    /// reference backend it wraps (`self.0`).
    macro_rules! delegated {
        () => {
            async fn insert(&self, key: Bytes, entry: Entry) -> Result<()> {
                self.0.insert(key, entry).await
            }
            async fn remove(&self, key: &[u8]) -> Result<bool> {
                self.0.remove(key).await
            }
            async fn clear(&self) -> Result<()> {
                self.0.clear().await
            }
            async fn len(&self) -> Result<u64> {
                self.0.len().await
            }
        };
    }

    /// Runs the suite on the backends `make` builds, which must fail it,
    /// and returns the failure's message.
    async fn suite_failure<B, F, Fut>(make: F) -> String
    where
        B: Backend,
        F: Fn(Harness) -> Fut + Send + 'static,
        Fut: Future<Output = B> + Send + 'static,
    {
        let panic = tokio::spawn(run(make))
            .await
            .expect_err("the suite must fail");
        panic
            .into_panic()
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default()
    }

    /// A backend that ignores expiry: the suite must catch it.
    struct NeverExpires(ReferenceBackend);
    impl Backend for NeverExpires {
        fn name(&self) -> &str {
            "never-expires"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            Ok(self
                .0
                .map
                .lock()
                .get(key)
                .cloned()
                .map_or(Lookup::Miss, Lookup::from_entry))
        }
        delegated!();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_catches_a_backend_that_ignores_expiry() {
        let text = suite_failure(|h| async move {
            NeverExpires(ReferenceBackend::new(h.clock.clock(), h.limits))
        })
        .await;
        assert!(text.contains("expiry"), "unexpected failure: {text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failing_backend_fails_then_recovers() {
        let h = Harness::new();
        let b = FailingBackend::new(ReferenceBackend::new(h.clock.clock(), h.limits));
        b.fail_next(2);
        let e: Error = b.get(b"k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(
            b.insert(key("k"), Entry::new(Bytes::new(), meta(&h)))
                .await
                .is_err()
        );
        b.insert(key("k"), Entry::new(Bytes::new(), meta(&h)))
            .await
            .unwrap();
        assert!(b.get(b"k").await.unwrap().is_hit());
        assert_eq!((b.calls(), b.failures()), (4, 2));
        // A compare-and-delete fails like the other calls, touching nothing.
        b.set_failing(true);
        let e = b.remove_if_unchanged(b"k", b"").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        b.set_failing(false);
        assert!(b.get(b"k").await.unwrap().is_hit());
        assert!(b.remove_if_unchanged(b"k", b"").await.unwrap());
    }

    /// A backend that answers a negative entry as a hit carrying the flag,
    /// the encoding the contract rules out: the suite must catch it.
    struct NegativeAsHit(ReferenceBackend);
    impl Backend for NegativeAsHit {
        fn name(&self) -> &str {
            "negative-as-hit"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            Ok(match self.0.get(key).await? {
                Lookup::Negative(_) => self
                    .0
                    .map
                    .lock()
                    .get(key)
                    .cloned()
                    .map_or(Lookup::Miss, Lookup::Hit),
                other => other,
            })
        }
        delegated!();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_catches_a_negative_entry_answered_as_a_hit() {
        let text = suite_failure(|h| async move {
            NegativeAsHit(ReferenceBackend::new(h.clock.clock(), h.limits))
        })
        .await;
        assert!(
            text.contains("negative_entries"),
            "unexpected failure: {text}"
        );
    }

    /// A tier that keeps the trait's default compare-and-delete, which
    /// removes nothing, still passes the suite's check of it.
    struct NoCompareAndDelete(ReferenceBackend);
    impl Backend for NoCompareAndDelete {
        fn name(&self) -> &str {
            "no-compare-and-delete"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            self.0.get(key).await
        }
        delegated!();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backend_without_compare_and_delete_conforms() {
        run(
            |h| async move { NoCompareAndDelete(ReferenceBackend::new(h.clock.clock(), h.limits)) },
        )
        .await;
    }

    /// A compare-and-delete that ignores what was seen: the suite must
    /// catch it, since it would delete concurrent writes.
    struct DeletesAnything(ReferenceBackend);
    impl Backend for DeletesAnything {
        fn name(&self) -> &str {
            "deletes-anything"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            self.0.get(key).await
        }
        delegated!();
        async fn remove_if_unchanged(&self, key: &[u8], _seen: &[u8]) -> Result<bool> {
            self.0.remove(key).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_catches_a_compare_and_delete_that_ignores_the_value() {
        let text = suite_failure(|h| async move {
            DeletesAnything(ReferenceBackend::new(h.clock.clock(), h.limits))
        })
        .await;
        assert!(
            text.contains("remove_if_unchanged"),
            "unexpected failure: {text}"
        );
    }

    #[tokio::test]
    async fn the_reference_backend_lists_its_keys_and_a_failing_one_does_not() {
        let h = Harness::new();
        let b = FailingBackend::new(ReferenceBackend::new(h.clock.clock(), h.limits));
        b.insert(key("k"), Entry::new(Bytes::new(), meta(&h)))
            .await
            .unwrap();
        let page = b.keys(&KeyCursor::start(), 10).await.unwrap();
        assert_eq!(
            page,
            Some(KeyPage {
                keys: vec![key("k")],
                next: None
            })
        );
        b.set_failing(true);
        let e = b.keys(&KeyCursor::start(), 10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        // Through the object-safe twin too.
        b.set_failing(false);
        let dynamic: Arc<dyn DynBackend> = Arc::new(b);
        let page = dynamic.keys(&KeyCursor::start(), 0).await.unwrap();
        assert_eq!(page.map(|p| p.keys), Some(vec![key("k")]));
    }

    /// How [`FlawedListing`] gets listing wrong.
    #[derive(Clone, Copy, Debug)]
    enum Flaw {
        /// Pages one key over the limit.
        Overfull,
        /// Drops the last key of every page.
        Drops,
        /// Answers a cursor it did not make with an empty, final page.
        AcceptsAnyCursor,
    }

    /// The reference backend with a listing that breaks the contract.
    struct FlawedListing(ReferenceBackend, Flaw);
    impl Backend for FlawedListing {
        fn name(&self) -> &str {
            "flawed-listing"
        }
        async fn get(&self, key: &[u8]) -> Result<Lookup> {
            self.0.get(key).await
        }
        delegated!();
        async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> Result<bool> {
            self.0.remove_if_unchanged(key, seen).await
        }
        async fn keys(&self, from: &KeyCursor, limit: usize) -> Result<Option<KeyPage>> {
            match self.1 {
                Flaw::Overfull => self.0.keys(from, limit.max(1) + 1).await,
                Flaw::Drops => {
                    let mut page = self.0.keys(from, limit).await?;
                    if let Some(page) = &mut page {
                        page.keys.pop();
                    }
                    Ok(page)
                }
                Flaw::AcceptsAnyCursor if from.as_bytes().first() == Some(&0xff) => {
                    Ok(Some(KeyPage::default()))
                }
                Flaw::AcceptsAnyCursor => self.0.keys(from, limit).await,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_suite_catches_a_listing_that_breaks_the_contract() {
        for flaw in [Flaw::Overfull, Flaw::Drops, Flaw::AcceptsAnyCursor] {
            let text = suite_failure(move |h| async move {
                FlawedListing(ReferenceBackend::new(h.clock.clock(), h.limits), flaw)
            })
            .await;
            assert!(
                text.contains("keys_listing"),
                "{flaw:?}: unexpected failure: {text}"
            );
        }
    }
}
