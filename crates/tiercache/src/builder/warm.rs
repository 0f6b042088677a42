//! The builder's warming settings (feature `warm`): the snapshot file and
//! its schedule, what a snapshot holds, and the prefetcher; checked at
//! `build`, and started once the cache exists (the snapshot loaded, the
//! background save scheduled, the prefetcher given the cache to fetch
//! into).

use std::hash::Hash;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Codec, Error, ErrorKind, Loader, Result};
use cache_warm::{PrefetchSettings, Prefetcher, SnapshotContents};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::CacheBuilder;
use crate::cache::{Cache, KeyDecoder};
use crate::protect::DynLoader;
use crate::warming::{ShutdownSave, WarmSettings, Warming};

/// The typed parts of the warming settings.
pub(super) struct WarmSetting<K, V> {
    /// Decodes the snapshot's keys at `build` (made by `snapshot`, which
    /// alone asks `K` to be decodable).
    decode_key: Option<KeyDecoder<K>>,
    /// What the prefetcher loads with, instead of the cache's own source.
    prefetch_loader: Option<Arc<dyn DynLoader<K, V>>>,
}

impl<K, V> Default for WarmSetting<K, V> {
    fn default() -> Self {
        WarmSetting {
            decode_key: None,
            prefetch_loader: None,
        }
    }
}

impl<K, V, C> CacheBuilder<K, V, C>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    C: Codec,
{
    /// Keeps the hot tier in a snapshot file at `path` (feature `warm`):
    /// loaded when the cache is built, if the file exists; saved every
    /// `interval` in the background and when the cache's last handle is
    /// dropped (a clean shutdown). A damaged, truncated or foreign file
    /// does not fail `build`: it is logged, counted in
    /// [`Cache::snapshot_stats`](crate::Cache::snapshot_stats) and the
    /// metrics, and the cache starts empty; the next save replaces it.
    /// A zero interval is an error at `build`.
    ///
    /// See [`Cache::load_snapshot`](crate::Cache::load_snapshot) for what a
    /// load installs. Call [`codec`](Self::codec) before this.
    pub fn snapshot(mut self, path: impl Into<PathBuf>, interval: Duration) -> Self {
        self.settings.warm.snapshot = Some((path.into(), interval));
        let codec = self.codec.clone();
        self.warm.decode_key = Some(Arc::new(move |bytes| codec.decode(bytes)));
        self
    }

    /// What a snapshot holds: the hot tier's keys and values (`Values`, the
    /// default), or only its keys (`Keys`), whose values a load copies up
    /// from the tiers below or loads from the cache's source; a keys-only
    /// snapshot needs one of those.
    pub fn snapshot_contents(mut self, contents: SnapshotContents) -> Self {
        self.settings.warm.contents = contents;
        self
    }

    /// Prefetches what tends to be asked for next (feature `warm`): a
    /// [`Prefetcher`] learns from every lookup of the hot tier which key
    /// follows which (per [`in_session`](crate::warm::in_session) session,
    /// else per thread) and, after a lookup, fetches the likely next keys
    /// in the background: copied up from the tiers below, or loaded from
    /// the cache's source or the
    /// [`prefetch_loader`](Self::prefetch_loader). Invalid settings are an
    /// error at `build`.
    pub fn prefetch(mut self, settings: PrefetchSettings) -> Self {
        self.settings.warm.prefetch = Some(settings);
        self
    }

    /// What the prefetcher loads a predicted key with when no tier holds it
    /// and the cache's own source (a store or loader, asked first, as a
    /// lookup would) has nothing: for a cache without a source of its own,
    /// this is what it prefetches from.
    pub fn prefetch_loader(mut self, loader: impl Loader<K, V> + 'static) -> Self {
        self.warm.prefetch_loader = Some(Arc::new(loader));
        self
    }
}

/// What `build` starts once the cache exists.
pub(super) struct WarmPlan<K, V> {
    settings: WarmSettings,
    typed: WarmSetting<K, V>,
}

impl<K, V> WarmSetting<K, V> {
    /// Checks the settings, before anything opens.
    pub(super) fn plan(self, settings: &WarmSettings, can_load: bool) -> Result<WarmPlan<K, V>> {
        let invalid = |message: &'static str| Err(Error::new(ErrorKind::InvalidConfig, message));
        if let Some((_, interval)) = &settings.snapshot {
            if interval.is_zero() {
                return invalid("the snapshot interval must be longer than zero");
            }
            if settings.codec_after_snapshot {
                return invalid(
                    "the snapshot decodes its keys with the codec set before CacheBuilder::snapshot: call codec first",
                );
            }
            if tokio::runtime::Handle::try_current().is_err() {
                return invalid("a snapshot saved in the background needs a tokio runtime");
            }
        }
        if settings.contents == SnapshotContents::Keys && !can_load {
            return invalid(
                "a keys-only snapshot needs a tier below memory or a store or loader to load its values from",
            );
        }
        if let Some(prefetch) = &settings.prefetch {
            prefetch.validate()?;
            if !can_load && self.prefetch_loader.is_none() {
                return invalid(
                    "the prefetcher needs a tier below memory, a store, a loader or a prefetch_loader to fetch from",
                );
            }
        }
        Ok(WarmPlan {
            settings: settings.clone(),
            typed: self,
        })
    }
}

impl<K, V> WarmPlan<K, V> {
    /// The cache's warming state.
    pub(super) fn warming(&self) -> Warming<K> {
        Warming::new(self.settings.contents)
    }

    /// Starts what needs the cache: the prefetcher, then the snapshot (a
    /// load, the background save, the save at shutdown).
    pub(super) async fn start<C>(self, cache: &Cache<K, V, C>) -> Result<()>
    where
        K: Hash + Eq + Clone + Serialize + Send + Sync + 'static,
        V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
        C: Codec,
    {
        let warm = &cache.inner().warm;
        if let Some(settings) = self.settings.prefetch {
            let engine = cache.inner().hot.engine.clone();
            let present = Arc::new(move |key: &K| engine.contains_key(key));
            let fetch = cache.warm_fn(self.typed.prefetch_loader);
            let prefetcher = Prefetcher::new(settings, present, fetch)?;
            let _ = warm.prefetch.set(prefetcher);
        }
        let Some((path, interval)) = self.settings.snapshot else {
            return Ok(());
        };
        if let Some(decode) = &self.typed.decode_key
            && path.exists()
            && let Err(e) = cache.load_snapshot_decoding(&path, decode).await
        {
            // Counted by the load; the service starts without it.
            log::warn!("tiercache: starting without the snapshot: {e}");
        }
        let source = cache.snapshot_source();
        let counts = warm.counts.clone();
        let contents = self.settings.contents;
        // One save at a time: the save at shutdown waits for a scheduled
        // one under way, so the file it leaves is the last word, never
        // replaced by an older save finishing after it.
        let one_at_a_time = parking_lot::Mutex::new(());
        let save: Arc<dyn Fn() -> Result<crate::warm::SnapshotReport> + Send + Sync> =
            Arc::new(move || {
                let _turn = one_at_a_time.lock();
                let saved = source.save(&path, contents);
                counts.saved(&saved);
                saved
            });
        let stop = Arc::new(tokio::sync::Notify::new());
        spawn_saver(save.clone(), stop.clone(), interval);
        let _ = warm.shutdown.set(ShutdownSave { save, stop });
        Ok(())
    }
}

/// Saves every `interval` on a blocking thread until `stop` is notified
/// (when the cache is dropped). It holds what a save reads, not the
/// cache, so it does not keep the cache alive.
fn spawn_saver(
    save: Arc<dyn Fn() -> Result<crate::warm::SnapshotReport> + Send + Sync>,
    stop: Arc<tokio::sync::Notify>,
    interval: Duration,
) {
    tokio::spawn(async move {
        loop {
            if tokio::time::timeout(interval, stop.notified())
                .await
                .is_ok()
            {
                return;
            }
            let save = save.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || save()).await {
                log::warn!("tiercache: the scheduled snapshot save failed: {e}");
            }
        }
    });
}
