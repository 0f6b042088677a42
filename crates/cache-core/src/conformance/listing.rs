//! The case for key listings (`Backend::keys`).

use super::*;

/// The most pages the suite follows before it calls a listing of its few
/// keys endless.
const MAX_PAGES: usize = 1_000;

/// Follows a listing from `cursor` to its end in pages of `limit`,
/// checking that no page holds more than `max(limit, 1)` keys.
async fn list_from<B: Backend>(
    b: &B,
    mut cursor: KeyCursor,
    limit: usize,
    check: &str,
) -> Vec<Bytes> {
    let mut listed = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = match b.keys(&cursor, limit).await {
            Ok(Some(page)) => page,
            other => panic!(
                "{check}: {} answered {other:?} in the middle of a listing",
                b.name()
            ),
        };
        assert!(
            page.keys.len() <= limit.max(1),
            "{check}: {} answered {} keys for a limit of {limit}",
            b.name(),
            page.keys.len()
        );
        listed.extend(page.keys);
        match page.next {
            Some(next) => cursor = next,
            None => return listed,
        }
    }
    panic!(
        "{check}: {} listed {MAX_PAGES} pages without ending",
        b.name()
    );
}

/// `listed` as a set, checking that it names no key twice.
fn once_each<B: Backend>(b: &B, listed: Vec<Bytes>, check: &str) -> BTreeSet<Bytes> {
    let count = listed.len();
    let set: BTreeSet<Bytes> = listed.into_iter().collect();
    assert_eq!(set.len(), count, "{check}: {} listed a key twice", b.name());
    set
}

/// Listing keys, for a tier that can: every live key once (negative
/// entries, the empty key and binary keys among them), removed keys never,
/// pages within their limit whatever the limit, keys live for the whole
/// of a listing listed even while other keys are written and removed, and
/// a cursor the tier did not make refused with an error. A tier whose
/// `keys` answers `None` passes.
pub(super) async fn keys_listing<B: Backend>(b: &B, h: &Harness) {
    let check = "keys_listing";
    match b.keys(&KeyCursor::start(), 3).await {
        Ok(None) => return,
        Ok(Some(_)) => {}
        Err(e) => panic!("{check}: {} failed to list an empty tier: {e}", b.name()),
    }
    assert!(
        list_from(b, KeyCursor::start(), 3, check).await.is_empty(),
        "{check}: an empty tier lists no keys"
    );

    let mut live = BTreeSet::new();
    let mut all: Vec<Bytes> = (0..48).map(|i| key(&format!("key-{i:02}"))).collect();
    // The empty key sorts first and would read as the start if a tier made
    // its cursor from the last key alone; the binary one holds the key
    // format's separator and glob characters.
    all.push(Bytes::new());
    all.push(Bytes::from_static(&[0, 0x1f, b'*', b'[', b'?', 255]));
    for (i, k) in all.iter().enumerate() {
        let entry = if i % 10 == 0 {
            Entry::negative(meta(h))
        } else {
            Entry::new(Bytes::from(vec![i as u8; 4]), meta(h))
        };
        b.insert(k.clone(), entry).await.unwrap();
        live.insert(k.clone());
    }
    let removed: BTreeSet<Bytes> = [5, 17, 23, 31, 44]
        .into_iter()
        .map(|i| key(&format!("key-{i:02}")))
        .collect();
    for k in &removed {
        assert!(b.remove(k).await.unwrap(), "{check}: remove {k:?}");
        live.remove(k);
    }

    for limit in [3, 1, 0, 1_000] {
        let listed = list_from(b, KeyCursor::start(), limit, check).await;
        let listed = once_each(b, listed, check);
        assert_eq!(
            listed,
            live,
            "{check}: {} in pages of {limit} must list exactly the live keys",
            b.name()
        );
    }

    // Keys written and removed during a listing may or may not appear; the
    // others must, once each.
    let first = match b.keys(&KeyCursor::start(), 3).await {
        Ok(Some(page)) => page,
        other => panic!("{check}: {} answered {other:?}", b.name()),
    };
    let churned: Vec<Bytes> = (40..43).map(|i| key(&format!("key-{i:02}"))).collect();
    for k in &churned {
        b.remove(k).await.unwrap();
    }
    for i in 0..5 {
        b.insert(key(&format!("new-{i}")), Entry::new(Bytes::new(), meta(h)))
            .await
            .unwrap();
    }
    let mut listed = first.keys;
    if let Some(next) = first.next {
        listed.extend(list_from(b, next, 3, check).await);
    }
    let listed = once_each(b, listed, check);
    for k in live.iter().filter(|k| !churned.contains(k)) {
        assert!(
            listed.contains(k),
            "{check}: {} lost {k:?}, live for the whole listing",
            b.name()
        );
    }
    for k in &listed {
        assert!(
            live.contains(k) || k.starts_with(b"new-"),
            "{check}: {} listed {k:?}, which was never live during the listing",
            b.name()
        );
    }

    for garbage in [&b"\xffnot a cursor"[..], &[0xff; 64][..]] {
        match b.keys(&KeyCursor::from_bytes(garbage), 3).await {
            Err(e) if e.kind() == ErrorKind::InvalidInput => {}
            other => panic!(
                "{check}: {} answered a cursor it did not make with {other:?}",
                b.name()
            ),
        }
    }
}
