//! [`AnalyticsLayer`]: the settings of an analysed tier, and the [`Layer`]
//! that builds one.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cache_core::{Backend, Clock, DataClass, Layer};

use crate::analytics::Analytics;

/// Names the class a missed key would have had; see
/// [`AnalyticsLayer::classify_misses`].
pub(crate) type MissClassifier = Arc<dyn Fn(&[u8]) -> DataClass + Send + Sync>;

/// Builds [`Analytics`] tiers: the tier's label, how often calls are timed
/// and keys sampled, and the sizes of the hot- and cold-key trackers.
///
/// Counts are always exact. Timing a call costs two clock reads and a
/// histogram update, and feeding the hot-key sketch a hash lookup under a
/// lock, so both are sampled: by default one call in 16 is timed and one
/// lookup in 16 feeds the sketch, so most calls cost the layer a few
/// relaxed atomic adds, a per-thread coin toss and, while cold tracking is
/// on, a hash of the key (plus a lock for the keys it follows). A rate of
/// 1 times or feeds every call.
///
/// ```
/// use cache_analytics::AnalyticsLayer;
/// use cache_backends::memory::MemoryBackend;
/// use cache_core::Layer;
/// use std::time::Duration;
///
/// let layer = AnalyticsLayer::new()
///     .tier("hot")
///     .latency_sample(1)
///     .top_k(20)
///     .cold_window(Duration::from_secs(300));
/// let tier = layer.layer(MemoryBackend::builder().build());
/// assert_eq!(tier.stats().tier, "hot");
/// ```
#[derive(Clone)]
pub struct AnalyticsLayer {
    pub(crate) tier: Option<String>,
    pub(crate) latency_sample: u32,
    pub(crate) key_sample: u32,
    pub(crate) top_k: usize,
    pub(crate) cold_window: Duration,
    pub(crate) cold_capacity: usize,
    pub(crate) clock: Clock,
    pub(crate) miss_class: Option<MissClassifier>,
}

impl AnalyticsLayer {
    /// The default settings: the tier labelled by its
    /// [`name`](Backend::name), one call in 16 timed, one lookup in 16
    /// feeding the hot keys, the top 100 keys tracked, keys cold after ten
    /// minutes, 4,096 keys followed for coldness, the system clock.
    pub fn new() -> Self {
        AnalyticsLayer {
            tier: None,
            latency_sample: 16,
            key_sample: 16,
            top_k: 100,
            cold_window: Duration::from_secs(600),
            cold_capacity: 4096,
            clock: Clock::system(),
            miss_class: None,
        }
    }

    /// The `tier` label of the tier's statistics and metrics; by default,
    /// the wrapped tier's [`name`](Backend::name).
    #[must_use]
    pub fn tier(mut self, label: impl Into<String>) -> Self {
        self.tier = Some(label.into());
        self
    }

    /// Times one call in `one_in` (1 times every call). 16 by default.
    ///
    /// # Panics
    ///
    /// If `one_in` is zero.
    #[must_use]
    pub fn latency_sample(mut self, one_in: u32) -> Self {
        assert!(one_in > 0, "a sampling rate is one call in at least 1");
        self.latency_sample = one_in;
        self
    }

    /// Feeds one lookup in `one_in` to the hot-key sketch (1 feeds every
    /// lookup). 16 by default.
    ///
    /// # Panics
    ///
    /// If `one_in` is zero.
    #[must_use]
    pub fn key_sample(mut self, one_in: u32) -> Self {
        assert!(one_in > 0, "a sampling rate is one call in at least 1");
        self.key_sample = one_in;
        self
    }

    /// How many hot keys are tracked (the sketch keeps a few more slots).
    /// 100 by default.
    #[must_use]
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// How long a key must go untouched to be cold. Ten minutes by
    /// default.
    #[must_use]
    pub fn cold_window(mut self, window: Duration) -> Self {
        self.cold_window = window;
        self
    }

    /// The most keys followed to find cold ones; see
    /// [`ColdKeys`](crate::ColdKeys). 4,096 by default; 0 switches cold
    /// tracking off, and with it the clock read and hash of each hit and
    /// insert.
    #[must_use]
    pub fn cold_capacity(mut self, keys: usize) -> Self {
        self.cold_capacity = keys;
        self
    }

    /// The clock that dates key touches; the tier's own clock, so that
    /// tests can drive both. Latencies are measured with the monotonic
    /// [`Instant`](std::time::Instant) whatever the clock.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Counts each miss under the class `classify` names for the missed
    /// key. A miss carries no entry, so without this misses are counted
    /// under [`UNKNOWN_CLASS`](crate::UNKNOWN_CLASS); a cache whose keys
    /// encode their class (a prefix, say) can name it here.
    #[must_use]
    pub fn classify_misses(
        mut self,
        classify: impl Fn(&[u8]) -> DataClass + Send + Sync + 'static,
    ) -> Self {
        self.miss_class = Some(Arc::new(classify));
        self
    }
}

impl Default for AnalyticsLayer {
    fn default() -> Self {
        AnalyticsLayer::new()
    }
}

impl fmt::Debug for AnalyticsLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnalyticsLayer")
            .field("tier", &self.tier)
            .field("latency_sample", &self.latency_sample)
            .field("key_sample", &self.key_sample)
            .field("top_k", &self.top_k)
            .field("cold_window", &self.cold_window)
            .field("cold_capacity", &self.cold_capacity)
            .field("clock", &self.clock)
            .field("classify_misses", &self.miss_class.is_some())
            .finish()
    }
}

impl<B: Backend> Layer<B> for AnalyticsLayer {
    type Backend = Analytics<B>;

    fn layer(&self, inner: B) -> Analytics<B> {
        Analytics::new(inner, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setters_set_what_they_name() {
        let layer = AnalyticsLayer::new()
            .tier("disk")
            .latency_sample(2)
            .key_sample(3)
            .top_k(7)
            .cold_window(Duration::from_secs(5))
            .cold_capacity(11)
            .classify_misses(|_| DataClass::named("x"));
        assert_eq!(layer.tier.as_deref(), Some("disk"));
        assert_eq!((layer.latency_sample, layer.key_sample), (2, 3));
        assert_eq!((layer.top_k, layer.cold_capacity), (7, 11));
        assert_eq!(layer.cold_window, Duration::from_secs(5));
        assert_eq!(layer.miss_class.unwrap()(b"k"), DataClass::named("x"));
        assert!(format!("{:?}", AnalyticsLayer::default()).contains("latency_sample: 16"));
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn a_zero_rate_is_refused() {
        let _ = AnalyticsLayer::new().latency_sample(0);
    }
}
