//! Real Redis servers for the Redis tier's tests: a single node or a
//! three-master cluster, each process on a free loopback port with its own
//! temporary directory and no persistence, removed when the handle drops
//! (also when the test panics).
//!
//! When `redis-server` or `redis-cli` cannot be run, [`RedisServer::start`]
//! and [`RedisCluster::start`] print why the test is skipped and return
//! `None`; with `TIERCACHE_REQUIRE_REDIS=1` in the environment they panic
//! instead, so CI cannot pass by skipping.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The environment variable that turns a missing Redis into a failure.
pub const REQUIRE_REDIS_ENV: &str = "TIERCACHE_REQUIRE_REDIS";

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster may take to agree on its slots.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether Redis tests can run here. If not, prints that `test` is skipped
/// and why, or panics when [`REQUIRE_REDIS_ENV`] is `1`.
pub fn redis_available(test: &str) -> bool {
    let missing: Vec<&str> = ["redis-server", "redis-cli"]
        .into_iter()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} could not be run (not installed or not on PATH)",
        missing.join(" and ")
    );
    if std::env::var(REQUIRE_REDIS_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {why}, and {REQUIRE_REDIS_ENV}=1 requires the Redis tests to run");
    }
    // Straight to stderr rather than eprintln!, which the test harness
    // captures and shows only for failing tests: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: {why}; set {REQUIRE_REDIS_ENV}=1 to make this a failure"
    );
    false
}

/// A loopback port nothing listens on now, for tests of a server that is
/// not there.
pub fn unused_port() -> u16 {
    free_port(false)
}

/// A loopback port nothing listens on now; for a cluster node, its bus
/// port (the port plus 10,000) is free as well.
fn free_port(with_bus: bool) -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        if !with_bus {
            return port;
        }
        if port <= u16::MAX - 10_000
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 10_000)).is_ok()
        {
            return port;
        }
    }
}

/// Whether a server answers `PING` on `port`.
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

/// What a process is started as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A server on its own.
    Standalone,
    /// A server with cluster mode on, not yet in a cluster.
    ClusterNode,
    /// A sentinel watching the primary on this port, as service `main`.
    Sentinel { primary: u16 },
}

/// One `redis-server` process and its directory.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    role: Role,
    child: Option<Child>,
    // Declared last so it is removed after the process is gone.
    dir: TempDir,
}

impl RedisServer {
    /// Starts a standalone server, or returns `None` (having said why)
    /// when Redis is not installed.
    pub fn start(test: &str) -> Option<RedisServer> {
        redis_available(test).then(|| RedisServer::launch(Role::Standalone))
    }

    /// Starts a server, retrying on another port if the chosen one was
    /// taken between the check and the start.
    fn launch(role: Role) -> RedisServer {
        for _ in 0..5 {
            let mut server = RedisServer {
                port: free_port(role == Role::ClusterNode),
                role,
                child: None,
                dir: tempfile::Builder::new()
                    .prefix("tiercache-redis-")
                    .tempdir()
                    .expect("a temporary directory"),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start after five tries");
    }

    /// Spawns the process on this server's port and waits until it
    /// answers; `false` if it exited or never answered.
    fn spawn(&mut self) -> bool {
        let dir = self.dir.path();
        let mut command = Command::new("redis-server");
        if let Role::Sentinel { primary } = self.role {
            // A sentinel rewrites its configuration file, so it must be
            // given one, and a writable one.
            let config = dir.join("sentinel.conf");
            std::fs::write(
                &config,
                format!(
                    "sentinel monitor main 127.0.0.1 {primary} 1\n\
                     sentinel down-after-milliseconds main 1000\n"
                ),
            )
            .expect("write sentinel.conf");
            command.arg(config).arg("--sentinel");
        }
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--protected-mode", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        if !matches!(self.role, Role::Sentinel { .. }) {
            command.args(["--save", "", "--appendonly", "no"]);
        }
        if self.role == Role::ClusterNode {
            // Without full coverage, a node that is down fails only its own
            // slots: the other primaries keep serving theirs.
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
                "--cluster-require-full-coverage",
                "no",
            ]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if answers_ping(self.port) {
                return true;
            }
            if !self.is_running() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the process (SIGKILL, as a crash would) and waits for it.
    /// The directory stays, so [`restart`](Self::restart) finds a cluster
    /// node's configuration.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its connections open but
    /// answers nothing, like a server stuck in a long command or a network
    /// path that drops packets.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server is running").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// Starts the server again on the same port and waits until it
    /// answers.
    ///
    /// # Panics
    ///
    /// If it does not come back (the port was taken meanwhile).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.spawn(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Runs `redis-cli` against this server and returns its output,
    /// trimmed.
    ///
    /// # Panics
    ///
    /// If `redis-cli` cannot run or fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        assert!(
            output.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Runs `redis-cli -x` against this server: `input` is sent as the
    /// command's last argument, byte for byte, so binary values (which a
    /// command line cannot carry) can be written. Returns the output,
    /// trimmed.
    ///
    /// # Panics
    ///
    /// If `redis-cli` cannot run or fails.
    pub fn cli_with_input(&self, args: &[&str], input: &[u8]) -> String {
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-x"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        child
            .stdin
            .take()
            .expect("a piped stdin")
            .write_all(input)
            .expect("write redis-cli's input");
        let output = child.wait_with_output().expect("redis-cli finishes");
        assert!(
            output.status.success(),
            "redis-cli -x {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// How many times the server has run each command since it started or
    /// since `CONFIG RESETSTAT`, from `INFO commandstats`, by lower-case
    /// name (`"scan"`, `"get"`, ...).
    pub fn command_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.cli(&["INFO", "commandstats"])
            .lines()
            .filter_map(|line| {
                let (name, stats) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = stats
                    .split(',')
                    .find_map(|field| field.strip_prefix("calls="))?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .collect()
    }

    /// One numeric field of `INFO` (such as `total_net_output_bytes` of
    /// section `stats`).
    ///
    /// # Panics
    ///
    /// If the server does not report it.
    pub fn info_number(&self, section: &str, field: &str) -> u64 {
        self.cli(&["INFO", section])
            .lines()
            .find_map(|line| line.trim().strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO {section} has no number {field}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // SIGKILL ends a paused process as well.
        self.stop();
    }
}

/// A Redis Cluster of masters without replicas, one [`RedisServer`] each.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least three), joins them into a cluster
    /// and waits until every node reports `cluster_state:ok`; `None`
    /// (having said why) when Redis is not installed.
    pub fn start(test: &str, masters: usize) -> Option<RedisCluster> {
        if !redis_available(test) {
            return None;
        }
        assert!(masters >= 3, "Redis Cluster needs at least three masters");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| RedisServer::launch(Role::ClusterNode))
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        Some(cluster)
    }

    /// `redis-cluster://` naming every node.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port()));
        }
        url
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// One node, to stop or restart.
    pub fn node_mut(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// The hash slot of `key`, as the cluster computes it.
    pub fn slot_of(&self, key: &str) -> u16 {
        self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// The index of the node that serves `slot`, read from a running node's
    /// `CLUSTER NODES`.
    pub fn owner_of_slot(&self, slot: u16) -> usize {
        let asked = self
            .nodes
            .iter()
            .find(|n| answers_ping(n.port()))
            .expect("a running node");
        for line in asked.cli(&["CLUSTER", "NODES"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let port: u16 = fields[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse().ok())
                .expect("a node address");
            let serves = fields[8..].iter().any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                match (start.parse::<u16>(), end.parse::<u16>()) {
                    (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                return self
                    .nodes
                    .iter()
                    .position(|n| n.port() == port)
                    .expect("the owner is one of ours");
            }
        }
        panic!("no node serves slot {slot}");
    }

    /// The index of the node that serves `key`.
    pub fn owner_of(&self, key: &str) -> usize {
        self.owner_of_slot(self.slot_of(key))
    }

    /// Waits until every running node reports `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// If that takes longer than 30 s.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let ok = self
                .nodes
                .iter()
                .filter(|n| answers_ping(n.port()))
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A primary watched by one sentinel, as service `main`.
#[derive(Debug)]
pub struct RedisSentinel {
    // The sentinel goes first, so it never sees its primary vanish.
    sentinel: RedisServer,
    primary: RedisServer,
}

impl RedisSentinel {
    /// Starts a primary and a sentinel monitoring it, and waits until the
    /// sentinel names the primary; `None` (having said why) when Redis is
    /// not installed.
    pub fn start(test: &str) -> Option<RedisSentinel> {
        if !redis_available(test) {
            return None;
        }
        let primary = RedisServer::launch(Role::Standalone);
        let sentinel = RedisServer::launch(Role::Sentinel {
            primary: primary.port(),
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let expected = primary.port().to_string();
        while !sentinel
            .cli(&["SENTINEL", "get-master-addr-by-name", "main"])
            .contains(&expected)
        {
            assert!(
                Instant::now() < deadline,
                "the sentinel does not name the primary"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RedisSentinel { sentinel, primary })
    }

    /// `redis-sentinel://` for service `main` through the sentinel.
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?sentinelServiceName=main",
            self.sentinel.port()
        )
    }

    /// The primary the sentinel names.
    pub fn primary(&self) -> &RedisServer {
        &self.primary
    }
}

/// Builds a Redis tier from `builder` and waits (up to ten seconds) until
/// it has connected, so a test starts from a warm tier: the build itself
/// never waits for the server.
///
/// # Panics
///
/// If the configuration is invalid or the server does not answer in time.
pub async fn connected(
    builder: tiercache::redis::RedisBackendBuilder,
) -> tiercache::redis::RedisBackend {
    let tier = builder
        .build()
        .await
        .expect("a valid Redis tier configuration");
    tier.wait_for_connection(Duration::from_secs(10))
        .await
        .expect("the test Redis is reachable");
    tier
}
