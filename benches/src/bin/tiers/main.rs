//! `tiers`: throughput and latency of the two byte tiers against what they
//! are built on: the redb tier against raw redb calls on the same data, and
//! the Redis tier against `redis-benchmark` on the same server.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin tiers -- \
//!     --out docs/benchmarks/tiers.md --json docs/benchmarks/tiers.json
//! ```
//!
//! Every measurement is a warm-up, then a timed phase during which each
//! worker repeats one operation on keys it picks at random and times each
//! operation; throughput counts the operations that ran wholly inside the
//! timed phase. Each measurement is repeated `--runs` times, the tier and
//! its baseline taking turns, and the report gives the medians. The
//! report's method section states every setting; run with `--help` for the
//! options. `cargo xtask bench tiers` runs it and writes
//! `docs/benchmarks/tiers.md`.

mod measure;
mod raw_redb;
mod redis_benchmark;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tiercache::redb::{Durability, RedbBackend};
use tiercache::redis::RedisBackend;
use tiercache::tier::{Backend, Entry, Meta};
use tiercache::{Clock, Lookup};
use tiercache_benches::{bench_main, parse_count, write_report};
use tiercache_tests::RedisServer;
use tokio::runtime::Runtime;

use crate::measure::{Data, Figures, Op, TierOp, Window, drive_tasks, drive_threads};
use crate::raw_redb::{BlockingGet, RawRedb};
use crate::redis_benchmark::Load;
use crate::report::{Report, Row};

const USAGE: &str = "\
usage: tiers [options]

Measures the redb tier against raw redb and the Redis tier against
redis-benchmark, and writes a Markdown report (on stdout without --out).

options:
  --seconds S         timed phase of each measurement (default 3)
  --warmup S          warm-up before each timed phase (default 1)
  --runs N            repetitions of each measurement; medians are reported (default 3)
  --sizes LIST        value sizes and key counts, SIZE:KEYS,... (default 512:20000,16384:4000)
  --redb-workers N    concurrent tasks on the tier, threads on raw redb (default 16)
  --redis-clients N   concurrent tasks on the tier, redis-benchmark -c (default 50)
  --only PART         only `redb` or only `redis`
  --dir DIR           where the redb files go (default: the system's temporary directory)
  --out PATH          write the Markdown report here
  --json PATH         also write the figures as JSON
  -h, --help          this text";

/// The seed of the data and of every worker's key sequence.
pub(crate) const SEED: u64 = 0x7469_6572_7321;
/// The page cache of both redb files, the tier's default.
pub(crate) const REDB_CACHE_BYTES: usize = 64 << 20;
/// Keys per `insert_many` while seeding a tier.
const SEED_BATCH: usize = 1_000;
/// Requests of `redis-benchmark`'s warm-up run, whose rate sets the size
/// of the timed runs.
const REDIS_WARM_UP_REQUESTS: u64 = 10_000;

/// One value size and how many keys carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) value_bytes: usize,
    pub(crate) keys: usize,
}

/// The command line.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    pub(crate) runs: usize,
    pub(crate) sizes: Vec<Size>,
    pub(crate) redb_workers: usize,
    pub(crate) redis_clients: usize,
    pub(crate) redb: bool,
    pub(crate) redis: bool,
    dir: Option<PathBuf>,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            runs: 3,
            sizes: vec![
                Size {
                    value_bytes: 512,
                    keys: 20_000,
                },
                Size {
                    value_bytes: 16 << 10,
                    keys: 4_000,
                },
            ],
            redb_workers: 16,
            redis_clients: 50,
            redb: true,
            redis: true,
            dir: None,
            out: None,
            json: None,
        }
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    bench_main("tiers", USAGE, parse, |settings| run(&settings, started))
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Settings>, String> {
    let mut s = Settings::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--seconds" => s.measure = seconds(&value("--seconds")?)?,
            "--warmup" => s.warmup = seconds(&value("--warmup")?)?,
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--sizes" => s.sizes = sizes(&value("--sizes")?)?,
            "--redb-workers" => s.redb_workers = parse_count(&value("--redb-workers")?)?,
            "--redis-clients" => s.redis_clients = parse_count(&value("--redis-clients")?)?,
            "--only" => match value("--only")?.as_str() {
                "redb" => s.redis = false,
                "redis" => s.redb = false,
                other => return Err(format!("--only takes `redb` or `redis`, not `{other}`")),
            },
            "--dir" => s.dir = Some(value("--dir")?.into()),
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.redb_workers == 0 || s.redis_clients == 0 || s.measure.is_zero() {
        return Err("--runs, --seconds and the worker counts must be above zero".into());
    }
    Ok(Some(s))
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("`{text}` is not a number of seconds"))
}

/// `512:20000,16384:4000`.
fn sizes(text: &str) -> Result<Vec<Size>, String> {
    text.split(',')
        .map(|pair| {
            let (value, keys) = pair
                .split_once(':')
                .ok_or_else(|| format!("`{pair}` is not SIZE:KEYS"))?;
            let size = Size {
                value_bytes: parse_count(value)?,
                keys: parse_count(keys)?,
            };
            if size.value_bytes == 0 || size.keys == 0 {
                return Err(format!("`{pair}`: sizes and key counts must be above zero"));
            }
            Ok(size)
        })
        .collect()
}

fn run(settings: &Settings, started: Instant) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    // Handles are dropped outside `block_on` too; entering the runtime
    // gives their drops (and the Redis client's background tasks) the
    // context they expect.
    let _entered = runtime.enter();
    let mut report = Report::new(settings.clone());
    for &size in &settings.sizes {
        let data = Arc::new(Data::new(size.keys, size.value_bytes, SEED));
        if settings.redb {
            let rows = redb_part(settings, &runtime, &data)?;
            report.redb.extend([rows.get, rows.insert]);
            report.redb_blocking.push(rows.blocking_get);
            report.redb_tasks.push(rows.tasks_get);
        }
        if settings.redis {
            match redis_part(settings, &runtime, &data)? {
                Some(rows) => report.redis.extend(rows),
                None => {
                    report.redis_skipped =
                        Some("redis-server or redis-cli could not be run".to_string());
                }
            }
        }
    }
    report.elapsed_s = started.elapsed().as_secs_f64();

    write_report(
        "tiers",
        settings.out.as_deref(),
        &report.markdown(),
        settings.json.as_deref(),
        &report.json(),
    )?;
    eprintln!("tiers: done in {:.0} s", report.elapsed_s);
    Ok(())
}

/// Seeds a tier with every key of `data`, in batches.
async fn seed_tier<B: Backend>(tier: &B, data: &Data) -> Result<(), String> {
    let now = Clock::system().now_ms();
    for start in (0..data.len()).step_by(SEED_BATCH) {
        let end = (start + SEED_BATCH).min(data.len());
        let batch: Vec<(Bytes, Entry)> = (start..end)
            .map(|i| {
                let entry = Entry::new(data.values[i].clone(), Meta::new(now));
                (data.keys[i].clone(), entry)
            })
            .collect();
        tier.insert_many(batch)
            .await
            .map_err(|e| format!("cannot seed the {} tier: {e}", tier.name()))?;
    }
    Ok(())
}

/// Prints one measurement's figures as they come.
fn progress(part: &str, data: &Data, op: &str, side: &str, run: usize, f: &Figures) {
    eprintln!(
        "tiers: {part} {} B {op} run {run}: {side} {:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs{}",
        data.value_size,
        f.ops_per_sec,
        f.p50_us,
        f.p99_us,
        if f.failed > 0 {
            format!(", {} failed", f.failed)
        } else {
            String::new()
        }
    );
}

/// The comparisons of the redb tier at one value size: gets from OS
/// threads and inserts from tasks against raw redb on OS threads, and the
/// tier's gets from tasks against raw redb through `spawn_blocking` and
/// against raw redb on OS threads.
pub(crate) struct RedbRows {
    pub(crate) get: Row,
    pub(crate) insert: Row,
    pub(crate) blocking_get: Row,
    pub(crate) tasks_get: Row,
}

/// The redb tier and raw redb, each in its own file, on the same data:
/// gets, then inserts, the tier and raw redb taking turns in every run.
fn redb_part(settings: &Settings, runtime: &Runtime, data: &Arc<Data>) -> Result<RedbRows, String> {
    let dir = match &settings.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            tempfile::tempdir_in(dir)
        }
        None => tempfile::tempdir(),
    }
    .map_err(|e| format!("cannot create a directory for the redb files: {e}"))?;
    let tier = Arc::new(runtime.block_on(open_redb_tier(dir.path(), data))?);
    let raw = Arc::new(RawRedb::create(
        &dir.path().join("raw.redb"),
        REDB_CACHE_BYTES,
        data,
    )?);

    let size = Size {
        value_bytes: data.value_size,
        keys: data.len(),
    };
    let mut rows = RedbRows {
        get: Row::new("redb", size, "get"),
        insert: Row::new("redb", size, "insert"),
        blocking_get: Row::new("redb", size, "get"),
        tasks_get: Row::new("redb", size, "get"),
    };
    let (workers, keys) = (settings.redb_workers, data.len());
    let window = || Window::after(settings.warmup, settings.measure);
    let tier_op = |op| {
        Arc::new(TierOp {
            tier: tier.clone(),
            data: data.clone(),
            op,
            clock: Clock::system(),
        })
    };
    for run in 1..=settings.runs {
        // Plain threads are outside any runtime, so each get reads on its
        // caller's thread, as raw redb does.
        let f = drive_threads(workers, keys, SEED, window(), |i| {
            let found = futures::executor::block_on(tier.get(&data.keys[i]));
            matches!(found, Ok(Lookup::Hit(_)))
        });
        progress("redb", data, "get", "tier on threads", run, &f);
        rows.get.tier.push(f);

        let f = drive_threads(workers, keys, SEED, window(), |i| {
            matches!(raw.get(&data.keys[i]), Ok(Some(_)))
        });
        progress("redb", data, "get", "raw", run, &f);
        rows.get.baseline.push(f);
        rows.tasks_get.baseline.push(f);

        let f = runtime.block_on(drive_tasks(tier_op(Op::Get), workers, keys, SEED, window()));
        progress("redb", data, "get", "tier on tasks", run, &f);
        rows.blocking_get.tier.push(f);
        rows.tasks_get.tier.push(f);

        let blocking = Arc::new(BlockingGet {
            raw: raw.clone(),
            data: data.clone(),
        });
        let f = runtime.block_on(drive_tasks(blocking, workers, keys, SEED, window()));
        progress("redb", data, "get", "raw in spawn_blocking", run, &f);
        rows.blocking_get.baseline.push(f);

        let f = runtime.block_on(drive_tasks(
            tier_op(Op::Insert),
            workers,
            keys,
            SEED,
            window(),
        ));
        progress("redb", data, "insert", "tier", run, &f);
        rows.insert.tier.push(f);

        let f = drive_threads(workers, keys, SEED, window(), |i| {
            raw.insert(&data.keys[i], &data.values[i]).is_ok()
        });
        progress("redb", data, "insert", "raw", run, &f);
        rows.insert.baseline.push(f);
    }
    // The tier's last handle joins its writer thread, which makes its
    // commits durable and closes the file before the directory goes.
    drop(tier);
    Ok(rows)
}

/// A redb tier at `dir/tier.redb` holding every key of `data`, large
/// enough that nothing is evicted, with immediate durability.
async fn open_redb_tier(dir: &Path, data: &Data) -> Result<RedbBackend, String> {
    let tier = RedbBackend::builder(dir.join("tier.redb"))
        .max_bytes(1 << 40)
        .durability(Durability::Immediate)
        .cache_size(REDB_CACHE_BYTES)
        .build()
        .await
        .map_err(|e| format!("cannot open the redb tier: {e}"))?;
    seed_tier(&tier, data).await?;
    tier.sync()
        .await
        .map_err(|e| format!("cannot sync the redb tier: {e}"))?;
    Ok(tier)
}

/// The Redis tier and `redis-benchmark` on one private server: in every
/// run, the tier's gets and sets, then `redis-benchmark -t set,get`.
/// `None` when Redis is not installed.
fn redis_part(
    settings: &Settings,
    runtime: &Runtime,
    data: &Arc<Data>,
) -> Result<Option<[Row; 2]>, String> {
    let Some(server) = RedisServer::start("tiers") else {
        return Ok(None);
    };
    let tier = runtime.block_on(async {
        let tier = RedisBackend::builder(server.url())
            .build()
            .await
            .map_err(|e| format!("cannot build the Redis tier: {e}"))?;
        tier.wait_for_connection(Duration::from_secs(10))
            .await
            .map_err(|e| format!("the Redis tier did not connect: {e}"))?;
        seed_tier(&tier, data).await?;
        Ok::<_, String>(Arc::new(tier))
    })?;

    let mut load = Load {
        port: server.port(),
        clients: settings.redis_clients,
        requests: REDIS_WARM_UP_REQUESTS,
        value_size: data.value_size,
        keyspace: data.len(),
    };
    let warm_up = redis_benchmark::run(load)?;
    load.requests = redis_benchmark::requests_for(&warm_up, settings.measure);

    let size = Size {
        value_bytes: data.value_size,
        keys: data.len(),
    };
    let mut rows = [
        Row::new("redis", size, "get"),
        Row::new("redis", size, "set"),
    ];
    for run in 1..=settings.runs {
        for (row, op) in rows.iter_mut().zip([Op::Get, Op::Insert]) {
            let window = Window::after(settings.warmup, settings.measure);
            let op = Arc::new(TierOp {
                tier: tier.clone(),
                data: data.clone(),
                op,
                clock: Clock::system(),
            });
            let clients = settings.redis_clients;
            let f = runtime.block_on(drive_tasks(op, clients, data.len(), SEED, window));
            progress("redis", data, row.op, "tier", run, &f);
            row.tier.push(f);
        }
        let outcome = redis_benchmark::run(load)?;
        for (row, f) in rows.iter_mut().zip([outcome.get, outcome.set]) {
            progress("redis", data, row.op, "redis-benchmark", run, &f);
            row.baseline.push(f);
        }
    }
    runtime.block_on(async move { drop(tier) });
    drop(server);
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_read() {
        let args = |list: &[&str]| parse(list.iter().map(|s| s.to_string()));
        let s = args(&[
            "--seconds",
            "0.5",
            "--sizes",
            "64:100,1_024:10",
            "--only",
            "redb",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.measure, Duration::from_millis(500));
        assert_eq!(
            s.sizes,
            vec![
                Size {
                    value_bytes: 64,
                    keys: 100
                },
                Size {
                    value_bytes: 1_024,
                    keys: 10
                }
            ]
        );
        assert!(s.redb && !s.redis);
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--runs", "0"]).is_err());
        assert!(args(&["--sizes", "64"]).is_err());
        assert!(args(&["--only", "memcached"]).is_err());
    }
}
