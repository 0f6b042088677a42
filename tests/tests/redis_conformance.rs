//! The Redis tier passes the shared conformance suite: against a single
//! server, a three-master cluster, and a primary found through a sentinel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_backends::redis::RedisBackend;
use cache_core::conformance;
use tiercache_tests::{RedisCluster, RedisSentinel, RedisServer, connected};

/// Runs the suite, each check on a backend with a prefix of its own: the
/// checks share one server, and each expects to start empty.
async fn conforms(url: String) {
    let next = Arc::new(AtomicUsize::new(0));
    conformance::run(|h| {
        let url = url.clone();
        let n = next.fetch_add(1, Ordering::Relaxed);
        async move {
            connected(
                RedisBackend::builder(url)
                    .prefix(format!("conformance-{n}:"))
                    .clock(h.clock.clock())
                    .limits(h.limits)
                    // The suite moves multi-megabyte values; a debug build on a
                    // busy machine needs more than the default to do that.
                    .command_timeout(Duration::from_secs(5)),
            )
            .await
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_on_a_single_server() {
    let Some(server) = RedisServer::start("conforms_on_a_single_server") else {
        return;
    };
    conforms(server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_on_a_cluster() {
    let Some(cluster) = RedisCluster::start("conforms_on_a_cluster", 3) else {
        return;
    };
    conforms(cluster.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conforms_through_a_sentinel() {
    let Some(sentinel) = RedisSentinel::start("conforms_through_a_sentinel") else {
        return;
    };
    conforms(sentinel.url()).await;
    assert_ne!(
        sentinel.primary().cli(&["DBSIZE"]),
        "0",
        "the data is on the primary the sentinel names"
    );
}
