//! The shipped Grafana dashboard is valid JSON, has the panels the docs
//! promise, and queries only metric names the cache emits and
//! `docs/metrics.md` lists.

fn read(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every `tiercache_…` name in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("tiercache_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

#[test]
fn the_dashboard_queries_only_documented_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("docs/grafana/tiercache.json")).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Hit ratio per tier",
        "Lookup latency per tier",
        "Entries per tier",
        "Bytes per tier",
        "Write-back queue",
        "Write-back saves",
        "Load protection events",
    ] {
        assert!(
            titles.iter().any(|t| t.starts_with(wanted)),
            "no panel {wanted}: {titles:?}"
        );
    }
    let documented = read("docs/metrics.md");
    use tiercache::analytics as a;
    use tiercache::policies as p;
    let emitted = [
        a::REQUESTS_TOTAL,
        a::LATENCY_SECONDS,
        a::LATENCY_SAMPLES_TOTAL,
        a::ENTRIES,
        a::BYTES,
        a::CLASS_REQUESTS_TOTAL,
        a::CLASS_INSERTS_TOTAL,
        a::CLASS_BYTES_TOTAL,
        a::COMPRESSION_RATIO,
        a::REMOVALS_TOTAL,
        p::WRITE_BACK_QUEUE,
        p::WRITE_BACK_SAVES_TOTAL,
        p::WRITE_BACK_RETRIES_TOTAL,
        p::WRITE_BACK_DEAD_LETTERS,
        p::WRITE_BACK_DEAD_LETTERED_TOTAL,
        p::WRITE_BACK_LOG_TOTAL,
        p::BYPASSED_TOTAL,
        tiercache::LOAD_EVENTS_TOTAL,
    ];
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            for name in metric_names(expr) {
                assert!(
                    documented.contains(&format!("`{name}`")),
                    "{name} is not in docs/metrics.md"
                );
                assert!(emitted.contains(&name.as_str()), "{name} is not emitted");
            }
        }
    }
}
