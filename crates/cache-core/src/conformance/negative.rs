//! The case for negative entries.

use super::*;

/// Negative entries: stored as an empty value flagged
/// [`Flags::NEGATIVE`] ([`Entry::negative`]), answered by `get` and
/// `get_many` as [`Lookup::Negative`] with the stored metadata, absent for
/// `contains`, counted by `len`, removed by `remove` (which reports it),
/// replaced by a value and replacing one, and expiring at their own expiry,
/// which here differs from the value's beside them.
pub(super) async fn negative_entries<B: Backend>(b: &B, h: &Harness) {
    let check = "negative_entries";
    let now = h.clock.now_ms();
    let stored = Entry::negative(Meta {
        expires_at_ms: Some(now + 30_000),
        created_at_ms: now - 5,
        class: DataClass::named("absent-rows"),
        flags: Flags::BELOW_MEMORY,
    });
    let value_meta = Meta::new(now)
        .expires_at(Some(now + 3_600_000))
        .class(DataClass::named("rows"));
    let value = Entry::new(Bytes::from_static(b"row"), value_meta.clone());
    b.insert(key("neg"), stored.clone()).await.unwrap();
    b.insert(key("pos"), value.clone()).await.unwrap();

    assert_eq!(
        negative(b, b"neg", check).await,
        stored.meta,
        "{check}: the expiry, creation time, class and flags come back unchanged"
    );
    assert!(
        !b.contains(b"neg").await.unwrap(),
        "{check}: `contains` of a negative entry, which holds no value"
    );
    assert!(
        b.contains(b"pos").await.unwrap(),
        "{check}: the value beside it"
    );
    assert_eq!(
        b.len().await.unwrap(),
        2,
        "{check}: a negative entry is an entry"
    );

    let keys = [key("pos"), key("neg"), key("absent")];
    match b.get_many(&keys).await.unwrap().as_slice() {
        [Lookup::Hit(e), Lookup::Negative(m), Lookup::Miss] if *e == value && *m == stored.meta => {
        }
        other => {
            panic!("{check}: get_many of a value, a negative entry and nothing gave {other:?}")
        }
    }

    // The negative entry ends at its own expiry, the value at its own.
    h.clock.advance(Duration::from_millis(29_999));
    negative(b, b"neg", "negative_entries: 1 ms before its expiry").await;
    h.clock.advance(Duration::from_millis(1));
    miss(b, b"neg", "negative_entries: at its expiry").await;
    assert!(!b.contains(b"neg").await.unwrap());
    assert!(
        !b.remove(b"neg").await.unwrap(),
        "{check}: an expired negative entry is gone"
    );
    assert_eq!(
        hit(b, b"pos", check).await,
        value,
        "{check}: the value lives on"
    );

    // A value replaces a negative entry, and a negative entry a value,
    // written one at a time or in a batch.
    let now = h.clock.now_ms();
    let short = Meta::new(now).expires_at(Some(now + 30_000));
    b.insert(key("flip"), Entry::negative(short.clone()))
        .await
        .unwrap();
    negative(b, b"flip", check).await;
    let found = Entry::new(Bytes::from_static(b"found"), meta(h));
    b.insert(key("flip"), found.clone()).await.unwrap();
    assert_eq!(
        hit(
            b,
            b"flip",
            "negative_entries: a value over a negative entry"
        )
        .await,
        found
    );
    b.insert(key("flip"), Entry::negative(short.clone()))
        .await
        .unwrap();
    assert_eq!(
        negative(
            b,
            b"flip",
            "negative_entries: a negative entry over a value"
        )
        .await,
        Entry::negative(short.clone()).meta
    );
    assert!(!b.contains(b"flip").await.unwrap());
    b.insert_many(vec![
        (key("flip"), found.clone()),
        (key("pos"), Entry::negative(short.clone())),
    ])
    .await
    .unwrap();
    match b
        .get_many(&[key("flip"), key("pos")])
        .await
        .unwrap()
        .as_slice()
    {
        [Lookup::Hit(e), Lookup::Negative(m)] if *e == found && m.is_negative() => {}
        other => {
            panic!("{check}: a batch that swapped a value and a negative entry gave {other:?}")
        }
    }

    // Removing a live negative entry removes an entry, and says so.
    assert!(
        b.remove(b"pos").await.unwrap(),
        "{check}: remove of a live negative entry reports a removal"
    );
    miss(b, b"pos", "negative_entries: removed").await;
    assert!(!b.remove(b"pos").await.unwrap(), "{check}: second remove");
    assert_eq!(b.len().await.unwrap(), 1, "{check}: only the value is left");
}
