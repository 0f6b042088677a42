//! `emit_metrics` writes a snapshot under the documented names and labels,
//! with the snapshot's values, and writing it twice changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cache_analytics::{AnalyticsLayer, describe_metrics, emit_metrics, set_compression_ratio};
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, DataClass, Entry, Layer, Meta};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

type Values = Arc<Mutex<BTreeMap<String, f64>>>;

/// A recorder that keeps the last value of every series, by its rendered
/// name and labels (`name{k=v,...}`).
#[derive(Default)]
struct Capture {
    values: Values,
}

/// One series of a [`Capture`].
struct Series {
    name: String,
    values: Values,
}

impl Series {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut values = self.values.lock().unwrap();
        let value = values.entry(self.name.clone()).or_default();
        *value = f(*value);
    }
}

impl CounterFn for Series {
    fn increment(&self, by: u64) {
        self.update(|v| v + by as f64);
    }
    fn absolute(&self, value: u64) {
        self.update(|_| value as f64);
    }
}

impl GaugeFn for Series {
    fn increment(&self, by: f64) {
        self.update(|v| v + by);
    }
    fn decrement(&self, by: f64) {
        self.update(|v| v - by);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

impl Capture {
    fn series(&self, key: &Key) -> Arc<Series> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Series {
            name: format!("{}{{{}}}", key.name(), labels.join(",")),
            values: Arc::clone(&self.values),
        })
    }

    fn snapshot(&self) -> BTreeMap<String, f64> {
        self.values.lock().unwrap().clone()
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.series(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.series(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[tokio::test]
async fn a_snapshot_is_written_under_the_documented_names() {
    let tier = AnalyticsLayer::new()
        .tier("warm")
        .latency_sample(1)
        .layer(MemoryBackend::builder().build());
    let meta = Meta::new(0).class(DataClass::named("page"));
    tier.insert(Bytes::from_static(b"a"), Entry::new(vec![0; 30], meta))
        .await
        .unwrap();
    tier.get(b"a").await.unwrap();
    tier.get(b"a").await.unwrap();
    tier.get(b"b").await.unwrap();
    let stats = tier.stats_with_entries().await;

    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        describe_metrics();
        emit_metrics(&stats);
        set_compression_ratio("page", 0.25);
    });
    let first = capture.snapshot();
    let value = |name: &str| {
        *first
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from {first:#?}"))
    };
    assert_eq!(
        value("tiercache_requests_total{tier=warm,op=get,result=hit}"),
        2.0
    );
    assert_eq!(
        value("tiercache_requests_total{tier=warm,op=get,result=miss}"),
        1.0
    );
    assert_eq!(
        value("tiercache_requests_total{tier=warm,op=insert,result=ok}"),
        1.0
    );
    assert_eq!(value("tiercache_entries{tier=warm}"), 1.0);
    assert_eq!(value("tiercache_bytes{tier=warm}"), 30.0);
    assert_eq!(
        value("tiercache_class_requests_total{tier=warm,class=page,result=hit}"),
        2.0
    );
    assert_eq!(
        value("tiercache_class_requests_total{tier=warm,class=unknown,result=miss}"),
        1.0
    );
    assert_eq!(
        value("tiercache_class_inserts_total{tier=warm,class=page}"),
        1.0
    );
    assert_eq!(
        value("tiercache_class_bytes_total{tier=warm,class=page,direction=in}"),
        30.0
    );
    assert_eq!(
        value("tiercache_class_bytes_total{tier=warm,class=page,direction=out}"),
        60.0
    );
    assert_eq!(value("tiercache_compression_ratio{class=page}"), 0.25);
    assert_eq!(
        value("tiercache_latency_samples_total{tier=warm,op=get}"),
        3.0
    );
    let latency = stats.op(cache_analytics::Op::Get).latency;
    for (quantile, nanos) in [
        ("0.5", latency.p50),
        ("0.99", latency.p99),
        ("1", latency.max),
    ] {
        let name = format!("tiercache_latency_seconds{{tier=warm,op=get,quantile={quantile}}}");
        assert_eq!(value(&name), nanos as f64 / 1e9, "{name}");
    }
    // Nothing was removed, so no series for it, and none at zero.
    assert!(first.keys().all(|k| !k.contains("op=remove")));
    assert!(first.values().all(|&v| v > 0.0));

    // Counters are set, not added to: emitting again changes nothing.
    metrics::with_local_recorder(&capture, || emit_metrics(&stats));
    assert_eq!(capture.snapshot(), first);
}
