//! The Redis tier counts what Redis evicts and expires under its own
//! prefix, from keyspace notifications: on a single server, under
//! `maxmemory`, on every primary of a cluster and through a sentinel;
//! reports `None` when tracking is off or the server cannot send the
//! notifications; and leaves no connection behind when dropped.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use cache_backends::redis::{RedisBackend, RedisBackendBuilder, RemovalTracking};
use cache_core::{Backend, Clock, Entry, Lookup, Meta};
use tiercache_tests::{RedisCluster, RedisSentinel, RedisServer, connected};
use tokio::time::Instant;

/// How long Redis and the subscribers get to catch up.
const DEADLINE: Duration = Duration::from_secs(10);

fn builder(url: &str, prefix: &str) -> RedisBackendBuilder {
    RedisBackend::builder(url)
        .prefix(prefix)
        .command_timeout(Duration::from_secs(2))
}

/// A connected tier that tracks removals, letting it configure the
/// server's notifications when `configure` is set.
async fn tracking(url: &str, prefix: &str, configure: bool) -> RedisBackend {
    connected(
        builder(url, prefix)
            .track_removals(true)
            .configure_notifications(configure),
    )
    .await
}

/// Polls `done` until it holds, failing with `what` after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `tier`'s tracking settles, active or not, and returns how.
async fn settled(tier: &RedisBackend) -> RemovalTracking {
    let mut state = tier.removal_tracking();
    eventually("removal tracking to settle", || {
        state = tier.removal_tracking();
        let starting = state == RemovalTracking::Starting;
        async move { !starting }
    })
    .await;
    state
}

fn entry(value: Bytes, ttl: Option<Duration>) -> Entry {
    let now = Clock::system().now_ms();
    let meta = match ttl {
        Some(ttl) => Meta::with_ttl(now, ttl).expect("a valid time-to-live"),
        None => Meta::new(0),
    };
    Entry::new(value, meta)
}

/// Writes `n` small entries under `tier` that expire after `ttl`.
async fn write_expiring(tier: &RedisBackend, n: usize, ttl: Duration) {
    let entries = (0..n)
        .map(|i| {
            (
                Bytes::from(format!("k{i}")),
                entry(Bytes::from_static(b"v"), Some(ttl)),
            )
        })
        .collect();
    tier.insert_many(entries).await.expect("insert_many");
}

/// `(evicted, expired)` as the tier reports them.
fn counts(tier: &RedisBackend) -> (u64, u64) {
    let removals = tier.removals().expect("tracking is active");
    assert!(
        removals.by_class.is_empty(),
        "Redis cannot tell classes apart"
    );
    (removals.evicted, removals.expired)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expirations_are_counted_per_prefix() {
    let Some(server) = RedisServer::start("expirations_are_counted_per_prefix") else {
        return;
    };
    let url = server.url();
    // Flags another program set must survive the tier adding its own.
    server.cli(&["CONFIG", "SET", "notify-keyspace-events", "Kg"]);
    let a = tracking(&url, "rm-a:", true).await;
    assert_eq!(settled(&a).await, RemovalTracking::Active);
    let flags = server.cli(&["CONFIG", "GET", "notify-keyspace-events"]);
    for flag in ['K', 'g', 'E', 'x', 'e'] {
        assert!(flags.contains(flag), "{flag} missing from {flags:?}");
    }
    // The flags are on now, so a tier that may not set them finds them.
    // Its prefix begins with a's, and neither counts the other's keys.
    let b = tracking(&url, "rm-a:v2:", false).await;
    assert_eq!(settled(&b).await, RemovalTracking::Active);
    assert_eq!(a.removals().map(|r| (r.evicted, r.expired)), Some((0, 0)));

    write_expiring(&a, 40, Duration::from_secs(1)).await;
    write_expiring(&b, 25, Duration::from_secs(1)).await;
    // Keys that only look alike: another program's, and one whose first
    // characters are a's prefix without its delimiter.
    for key in ["other:1", "other:2", "rm-a-x:1", "rm-a"] {
        server.cli(&["SET", key, "v", "PX", "500"]);
    }
    // A key that stays must not be counted.
    a.insert("stays".into(), entry(Bytes::from_static(b"v"), None))
        .await
        .unwrap();

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Reading expired keys makes Redis delete them at once, rather than
    // when its background expiry samples them.
    for i in 0..40 {
        assert!(matches!(
            a.get(format!("k{i}").as_bytes()).await.unwrap(),
            Lookup::Miss
        ));
    }
    eventually("every expiration to be counted", || {
        let done = counts(&a).1 >= 40 && counts(&b).1 >= 25 && server.cli(&["DBSIZE"]) == "1";
        async move { done }
    })
    .await;
    // Late notifications would show up here as too many.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&a), (0, 40));
    assert_eq!(counts(&b), (0, 25));
    assert_eq!(a.stats().missed_notifications, 0);
    assert_eq!(a.len().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_are_counted() {
    let Some(server) = RedisServer::start("evictions_are_counted") else {
        return;
    };
    let url = server.url();
    let tier = tracking(&url, "rm-evict:", true).await;
    assert_eq!(settled(&tier).await, RemovalTracking::Active);

    // Room for about a hundred of the values below above what the empty
    // server uses, so most of the writes make Redis evict.
    let info = server.cli(&["INFO", "memory"]);
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO memory reports used_memory");
    let limit = used + (2 << 20);
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    server.cli(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);

    const WRITTEN: u64 = 600;
    let value = Bytes::from(vec![7u8; 16 << 10]);
    for i in 0..WRITTEN {
        tier.insert(Bytes::from(format!("k{i}")), entry(value.clone(), None))
            .await
            .expect("insert under maxmemory");
    }

    let deadline = Instant::now() + DEADLINE;
    let (evicted, expired, present) = loop {
        let present = tier.len().await.unwrap();
        let (evicted, expired) = counts(&tier);
        if evicted + present == WRITTEN {
            break (evicted, expired, present);
        }
        assert!(
            Instant::now() < deadline,
            "evicted ({evicted}) + present ({present}) never reached {WRITTEN}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(evicted > 0, "nothing was evicted: {present} keys present");
    assert!(present > 0, "everything was evicted");
    assert_eq!(expired, 0);
    assert_eq!(tier.stats().missed_notifications, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expirations_on_every_cluster_primary_are_counted() {
    let Some(cluster) = RedisCluster::start("expirations_on_every_cluster_primary_are_counted", 3)
    else {
        return;
    };
    let tier = tracking(&cluster.url(), "rm-cluster:", true).await;
    assert_eq!(settled(&tier).await, RemovalTracking::Active);
    for node in cluster.nodes() {
        let flags = node.cli(&["CONFIG", "GET", "notify-keyspace-events"]);
        assert!(flags.contains('E'), "{flags:?} on port {}", node.port());
    }

    const N: usize = 90;
    write_expiring(&tier, N, Duration::from_secs(1)).await;
    let owners: std::collections::BTreeSet<usize> = (0..N)
        .map(|i| {
            let key = tier.redis_key(format!("k{i}").as_bytes());
            cluster.owner_of(std::str::from_utf8(&key).unwrap())
        })
        .collect();
    assert_eq!(owners.len(), 3, "keys on every primary");

    eventually("every expiration to be counted", || {
        let done = counts(&tier).1 >= N as u64;
        async move { done }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(counts(&tier), (0, N as u64));
    for node in cluster.nodes() {
        assert_eq!(node.cli(&["DBSIZE"]), "0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expirations_behind_a_sentinel_are_counted() {
    let Some(sentinel) = RedisSentinel::start("expirations_behind_a_sentinel_are_counted") else {
        return;
    };
    let tier = tracking(&sentinel.url(), "rm-sentinel:", true).await;
    assert_eq!(settled(&tier).await, RemovalTracking::Active);
    write_expiring(&tier, 10, Duration::from_millis(500)).await;
    eventually("every expiration to be counted", || {
        let done = counts(&tier).1 >= 10;
        async move { done }
    })
    .await;
    assert_eq!(counts(&tier), (0, 10));
    assert_eq!(sentinel.primary().cli(&["DBSIZE"]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tracking_there_are_no_removals() {
    let Some(server) = RedisServer::start("without_tracking_there_are_no_removals") else {
        return;
    };
    let tier = connected(builder(&server.url(), "rm-off:")).await;
    assert_eq!(tier.removal_tracking(), RemovalTracking::Off);
    assert_eq!(tier.removals(), None);
    write_expiring(&tier, 3, Duration::from_millis(100)).await;
    eventually("the keys to expire", || {
        let done = server.cli(&["DBSIZE"]) == "0";
        async move { done }
    })
    .await;
    assert_eq!(tier.removals(), None);
    assert_eq!(
        server.cli(&["CONFIG", "GET", "notify-keyspace-events"]),
        "notify-keyspace-events",
        "the server's flags were left as they were (empty)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_notifications_leaves_tracking_unavailable() {
    let Some(server) =
        RedisServer::start("a_server_without_notifications_leaves_tracking_unavailable")
    else {
        return;
    };
    let url = server.url();

    // The flags are off, and the tier may not turn them on.
    let unconfigured = tracking(&url, "rm-u:", false).await;
    match settled(&unconfigured).await {
        RemovalTracking::Unavailable(why) => {
            assert!(why.contains("notify-keyspace-events"), "{why}")
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(unconfigured.removals(), None);

    // A user that may not use CONFIG, as on a managed service: asked to
    // configure, the tier cannot, and says so; the cache still works.
    server.cli(&[
        "ACL", "SETUSER", "limited", "on", ">secret", "~*", "&*", "+@all", "-config",
    ]);
    let limited_url = format!("redis://limited:secret@127.0.0.1:{}", server.port());
    let refused = tracking(&limited_url, "rm-r:", true).await;
    match settled(&refused).await {
        RemovalTracking::Unavailable(why) => assert!(why.contains("CONFIG"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert_eq!(refused.removals(), None);
    refused
        .insert("k".into(), entry(Bytes::from_static(b"v"), None))
        .await
        .unwrap();
    assert!(matches!(refused.get(b"k").await.unwrap(), Lookup::Hit(_)));

    // Not asked to configure, a tier that cannot read the flags trusts the
    // operator to have set them; here they have.
    server.cli(&["CONFIG", "SET", "notify-keyspace-events", "Exe"]);
    let trusting = tracking(&limited_url, "rm-t:", false).await;
    assert_eq!(settled(&trusting).await, RemovalTracking::Active);
    write_expiring(&trusting, 5, Duration::from_millis(200)).await;
    eventually("every expiration to be counted", || {
        let done = counts(&trusting).1 >= 5;
        async move { done }
    })
    .await;
    assert_eq!(counts(&trusting), (0, 5));
}

/// The clients connected to `server`, `redis-cli` asking included.
fn connected_clients(server: &RedisServer) -> usize {
    server.cli(&["CLIENT", "LIST"]).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_backend_closes_its_subscriber() {
    let Some(server) = RedisServer::start("dropping_the_backend_closes_its_subscriber") else {
        return;
    };
    let before = connected_clients(&server);
    let tier = tracking(&server.url(), "rm-drop:", true).await;
    assert_eq!(settled(&tier).await, RemovalTracking::Active);
    let clone = tier.clone();
    assert_eq!(
        connected_clients(&server),
        before + 2,
        "one data and one subscriber connection"
    );
    drop(tier);
    assert_eq!(
        connected_clients(&server),
        before + 2,
        "a clone keeps them open"
    );
    drop(clone);
    eventually("the connections to close", || {
        let done = connected_clients(&server) == before;
        async move { done }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_set_up_again() {
    let Some(mut server) = RedisServer::start("a_restarted_server_is_set_up_again") else {
        return;
    };
    let tier = tracking(&server.url(), "rm-restart:", true).await;
    assert_eq!(settled(&tier).await, RemovalTracking::Active);
    write_expiring(&tier, 3, Duration::from_millis(200)).await;
    eventually("the first expirations to be counted", || {
        let done = counts(&tier).1 >= 3;
        async move { done }
    })
    .await;

    // A restarted server has lost the flags set at runtime and the
    // subscription; the subscriber's reconnection sets both up again.
    server.restart();
    tier.wait_for_connection(DEADLINE).await.unwrap();
    eventually("the flags to be set again", || {
        let flags = server.cli(&["CONFIG", "GET", "notify-keyspace-events"]);
        let subscribed = server.cli(&["PUBSUB", "NUMSUB", "__keyevent@0__:expired"]);
        let done = flags.contains('E') && subscribed.ends_with('1');
        async move { done }
    })
    .await;
    write_expiring(&tier, 4, Duration::from_millis(200)).await;
    eventually("the later expirations to be counted", || {
        let done = counts(&tier).1 >= 7;
        async move { done }
    })
    .await;
    assert_eq!(counts(&tier), (0, 7));
}
