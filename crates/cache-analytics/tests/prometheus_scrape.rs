//! `serve_prometheus` serves the emitted metrics over real HTTP, with their
//! tier labels. The `metrics` recorder is global and can be installed once
//! per process, so this is the only test in this binary.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_analytics::{AnalyticsLayer, serve_prometheus, set_compression_ratio};
use cache_backends::memory::MemoryBackend;
use cache_core::{Backend, DataClass, Entry, Layer, Meta};

/// A loopback port nothing listens on now. Another process could take it
/// before the exporter binds it; on a test machine that is rare enough.
fn free_port() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// GETs `/metrics`, retrying while the listener starts.
fn scrape(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match try_scrape(addr) {
            Ok(body) => return body,
            Err(e) if Instant::now() < deadline => {
                eprintln!("scrape failed ({e}), retrying");
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no answer from {addr}: {e}"),
        }
    }
}

fn try_scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "unexpected response: {response}"
    );
    Ok(response)
}

#[test]
fn metrics_are_served_over_http_with_tier_labels() {
    let addr = free_port();
    // Outside any runtime, so the exporter gets a thread of its own and
    // answers while this thread blocks on the scrape.
    serve_prometheus(addr).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let tier = AnalyticsLayer::new()
        .tier("hot")
        .latency_sample(1)
        .layer(MemoryBackend::builder().build());
    rt.block_on(async {
        let meta = Meta::new(0).class(DataClass::named("user"));
        for i in 0..4u8 {
            let entry = Entry::new(vec![i; 10], meta.clone());
            tier.insert(Bytes::from(vec![i]), entry).await.unwrap();
        }
        for i in 0..6u8 {
            tier.get(&[i]).await.unwrap();
        }
        tier.emit().await;
    });
    set_compression_ratio("user", 0.5);

    let body = scrape(addr);
    for line in [
        r#"tiercache_requests_total{tier="hot",op="get",result="hit"} 4"#,
        r#"tiercache_requests_total{tier="hot",op="get",result="miss"} 2"#,
        r#"tiercache_requests_total{tier="hot",op="insert",result="ok"} 4"#,
        r#"tiercache_entries{tier="hot"} 4"#,
        r#"tiercache_bytes{tier="hot"} 40"#,
        r#"tiercache_class_requests_total{tier="hot",class="user",result="hit"} 4"#,
        r#"tiercache_class_requests_total{tier="hot",class="unknown",result="miss"} 2"#,
        r#"tiercache_class_inserts_total{tier="hot",class="user"} 4"#,
        r#"tiercache_class_bytes_total{tier="hot",class="user",direction="in"} 40"#,
        r#"tiercache_compression_ratio{class="user"} 0.5"#,
        r#"tiercache_latency_samples_total{tier="hot",op="get"} 6"#,
    ] {
        assert!(body.contains(line), "`{line}` missing from:\n{body}");
    }
    for quantile in ["0.5", "0.95", "0.99", "1"] {
        let prefix =
            format!(r#"tiercache_latency_seconds{{tier="hot",op="get",quantile="{quantile}"}} "#);
        let value = body
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{prefix} missing from:\n{body}"));
        let seconds: f64 = value.parse().unwrap();
        assert!(seconds > 0.0 && seconds < 1.0, "{prefix}{value}");
    }
    assert!(body.contains("# HELP tiercache_requests_total"));
}
