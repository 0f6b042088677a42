//! [`Layer`]: how a feature wraps a tier.

use crate::Backend;

/// Builds a wrapper around a tier: compression, bypass rules, analytics
/// and the like are each a type `X<B>` implementing [`Backend`] by
/// delegating to `B`, and an `XLayer` holding its settings that wraps any
/// tier in it.
///
/// `Option<L>` is a layer too: `None` leaves the tier as it is, so a
/// feature can be switched off without changing the stack's type.
pub trait Layer<B: Backend> {
    /// The wrapped tier.
    type Backend: Backend;

    /// Wraps `inner`.
    fn layer(&self, inner: B) -> Self::Backend;
}

/// Either a wrapped tier or the tier itself: what an `Option` of a layer
/// builds.
#[derive(Debug, Clone)]
pub enum Either<A, B> {
    /// The layer was present and wrapped the tier.
    Wrapped(A),
    /// The layer was absent; the tier is unchanged.
    Plain(B),
}

impl<A: Backend, B: Backend> Backend for Either<A, B> {
    fn name(&self) -> &str {
        match self {
            Either::Wrapped(a) => a.name(),
            Either::Plain(b) => b.name(),
        }
    }

    async fn get(&self, key: &[u8]) -> crate::Result<crate::Lookup> {
        match self {
            Either::Wrapped(a) => a.get(key).await,
            Either::Plain(b) => b.get(key).await,
        }
    }

    async fn insert(&self, key: bytes::Bytes, entry: crate::Entry) -> crate::Result<()> {
        match self {
            Either::Wrapped(a) => a.insert(key, entry).await,
            Either::Plain(b) => b.insert(key, entry).await,
        }
    }

    async fn remove(&self, key: &[u8]) -> crate::Result<bool> {
        match self {
            Either::Wrapped(a) => a.remove(key).await,
            Either::Plain(b) => b.remove(key).await,
        }
    }

    async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> crate::Result<bool> {
        match self {
            Either::Wrapped(a) => a.remove_if_unchanged(key, seen).await,
            Either::Plain(b) => b.remove_if_unchanged(key, seen).await,
        }
    }

    async fn contains(&self, key: &[u8]) -> crate::Result<bool> {
        match self {
            Either::Wrapped(a) => a.contains(key).await,
            Either::Plain(b) => b.contains(key).await,
        }
    }

    async fn clear(&self) -> crate::Result<()> {
        match self {
            Either::Wrapped(a) => a.clear().await,
            Either::Plain(b) => b.clear().await,
        }
    }

    async fn len(&self) -> crate::Result<u64> {
        match self {
            Either::Wrapped(a) => a.len().await,
            Either::Plain(b) => b.len().await,
        }
    }

    async fn get_many(&self, keys: &[bytes::Bytes]) -> crate::Result<Vec<crate::Lookup>> {
        match self {
            Either::Wrapped(a) => a.get_many(keys).await,
            Either::Plain(b) => b.get_many(keys).await,
        }
    }

    async fn insert_many(&self, entries: Vec<(bytes::Bytes, crate::Entry)>) -> crate::Result<()> {
        match self {
            Either::Wrapped(a) => a.insert_many(entries).await,
            Either::Plain(b) => b.insert_many(entries).await,
        }
    }

    fn removals(&self) -> Option<crate::Removals> {
        match self {
            Either::Wrapped(a) => a.removals(),
            Either::Plain(b) => b.removals(),
        }
    }

    async fn keys(
        &self,
        from: &crate::KeyCursor,
        limit: usize,
    ) -> crate::Result<Option<crate::KeyPage>> {
        match self {
            Either::Wrapped(a) => a.keys(from, limit).await,
            Either::Plain(b) => b.keys(from, limit).await,
        }
    }
}

impl<B: Backend, L: Layer<B>> Layer<B> for Option<L> {
    type Backend = Either<L::Backend, B>;

    fn layer(&self, inner: B) -> Self::Backend {
        match self {
            Some(layer) => Either::Wrapped(layer.layer(inner)),
            None => Either::Plain(inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{Entry, Meta};

    /// A layer that names the tier it wraps, to tell the two arms apart.
    struct Renamed<B>(B);

    impl<B: Backend> Backend for Renamed<B> {
        fn name(&self) -> &str {
            "renamed"
        }
        async fn get(&self, key: &[u8]) -> crate::Result<crate::Lookup> {
            self.0.get(key).await
        }
        async fn insert(&self, key: Bytes, entry: Entry) -> crate::Result<()> {
            self.0.insert(key, entry).await
        }
        async fn remove(&self, key: &[u8]) -> crate::Result<bool> {
            self.0.remove(key).await
        }
        async fn remove_if_unchanged(&self, key: &[u8], seen: &[u8]) -> crate::Result<bool> {
            self.0.remove_if_unchanged(key, seen).await
        }
        async fn clear(&self) -> crate::Result<()> {
            self.0.clear().await
        }
        async fn len(&self) -> crate::Result<u64> {
            self.0.len().await
        }
    }

    struct RenameLayer;

    impl<B: Backend> Layer<B> for RenameLayer {
        type Backend = Renamed<B>;
        fn layer(&self, inner: B) -> Renamed<B> {
            Renamed(inner)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_arms_of_an_optional_layer_conform() {
        for on in [true, false] {
            crate::conformance::run(|h| async move {
                let tier = crate::conformance::ReferenceBackend::new(h.clock.clock(), h.limits);
                on.then_some(RenameLayer).layer(tier)
            })
            .await;
        }
    }

    #[test]
    fn an_absent_layer_leaves_the_tier_as_it_is() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let tier = || {
                crate::conformance::ReferenceBackend::new(
                    crate::Clock::system(),
                    crate::Limits::DEFAULT,
                )
            };
            let on = Some(RenameLayer).layer(tier());
            let off = None::<RenameLayer>.layer(tier());
            assert_eq!(on.name(), "renamed");
            assert_eq!(off.name(), tier().name());
            for stack in [&on, &off] {
                let entry = Entry::new(&b"v"[..], Meta::new(0));
                stack.insert(Bytes::from_static(b"k"), entry).await.unwrap();
                assert!(stack.get(b"k").await.unwrap().is_hit());
                assert_eq!(stack.len().await.unwrap(), 1);
                // Both arms pass a compare-and-delete through to the tier.
                assert!(!stack.remove_if_unchanged(b"k", b"other").await.unwrap());
                assert!(stack.remove_if_unchanged(b"k", b"v").await.unwrap());
                assert_eq!(stack.len().await.unwrap(), 0);
            }
        });
    }
}
