//! The `tiers` report: the figures as Markdown, with the method and the
//! machine they come from, and as JSON.

use std::fmt::Write as _;
use std::process::Command;

use serde_json::{Value, json};
use tiercache_benches::{Machine, locked_versions, thousands};

use crate::measure::{Figures, median_figures};
use crate::{REDB_CACHE_BYTES, SEED, Settings, Size};

/// The least the issue asks of each targeted comparison, tier ÷ baseline.
const TARGET: f64 = 0.8;

/// One operation at one value size: every run of the tier and of its
/// baseline.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// `redb` or `redis`.
    pub(crate) part: &'static str,
    pub(crate) size: Size,
    /// `get`, `insert` or `set`.
    pub(crate) op: &'static str,
    pub(crate) tier: Vec<Figures>,
    pub(crate) baseline: Vec<Figures>,
}

impl Row {
    /// A row with no runs yet.
    pub(crate) fn new(part: &'static str, size: Size, op: &'static str) -> Row {
        Row {
            part,
            size,
            op,
            tier: Vec::new(),
            baseline: Vec::new(),
        }
    }

    /// Tier ÷ baseline, from the median throughputs.
    fn ratio(&self) -> f64 {
        median_figures(&self.tier).ops_per_sec / median_figures(&self.baseline).ops_per_sec
    }

    /// Whether the issue sets a target for this comparison: reads of the
    /// redb tier, and both commands of the Redis tier.
    fn targeted(&self) -> bool {
        self.part == "redis" || self.op == "get"
    }
}

/// Everything the report says.
#[derive(Debug)]
pub(crate) struct Report {
    settings: Settings,
    machine: Machine,
    pub(crate) redb: Vec<Row>,
    /// The redb tier's gets from tasks against raw redb gets through
    /// `spawn_blocking`.
    pub(crate) redb_blocking: Vec<Row>,
    /// The same gets from tasks against raw redb on OS threads.
    pub(crate) redb_tasks: Vec<Row>,
    pub(crate) redis: Vec<Row>,
    /// Why the Redis part did not run, if it did not.
    pub(crate) redis_skipped: Option<String>,
    /// The whole run, seeding included, in seconds.
    pub(crate) elapsed_s: f64,
}

/// Where and with what the figures were taken: this machine, and the
/// versions of redb, fred, tokio and the Redis tools.
fn machine() -> Machine {
    let mut versions = locked_versions(&["redb", "fred", "tokio"]);
    if let Some(v) = tool_version("redis-server", "v=") {
        versions.push(("redis-server", v));
    }
    if let Some(v) = tool_version("redis-benchmark", "redis-benchmark ") {
        versions.push(("redis-benchmark", v));
    }
    Machine::collect(versions)
}

/// The version a tool prints for `--version`: the word after `marker`.
fn tool_version(tool: &str, marker: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, rest) = text.split_once(marker)?;
    rest.split_whitespace().next().map(str::to_string)
}

fn ops(f: &Figures) -> String {
    thousands(f.ops_per_sec.round() as u64)
}

fn micros(us: f64) -> String {
    if us.is_nan() {
        "–".to_string()
    } else {
        format!("{us:.1}")
    }
}

/// `512 B`, `16 KiB`.
fn bytes(n: usize) -> String {
    if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} B")
    }
}

impl Report {
    /// An empty report for a run with `settings`, on this machine now.
    pub(crate) fn new(settings: Settings) -> Report {
        Report {
            settings,
            machine: machine(),
            redb: Vec::new(),
            redb_blocking: Vec::new(),
            redb_tasks: Vec::new(),
            redis: Vec::new(),
            redis_skipped: None,
            elapsed_s: 0.0,
        }
    }

    /// The report as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out = self.machine.report_header(
            "Byte tiers: redb and Redis against their baselines",
            "tiers",
            self.elapsed_s,
        );
        self.method(&mut out);
        let targets = format!(
            "The issue's targets are a tier ÷ baseline of at least {TARGET}× for reads of the \
             redb tier and for both commands of the Redis tier; the last column says whether a \
             targeted row meets it. Nothing here is a pass/fail test."
        );
        if !self.redb.is_empty() {
            out.push_str("## redb tier against raw redb\n\n");
            let _ = writeln!(
                out,
                "{w} workers on each side: gets from {w} OS threads on both sides, inserts from \
                 {w} tasks on the tier and {w} OS threads on raw redb. Throughput in operations \
                 per second, latencies in microseconds; medians of {} runs.\n\n{targets}\n",
                self.settings.runs,
                w = self.settings.redb_workers,
            );
            table(&mut out, &self.redb, "raw redb", true);
        }
        if !self.redb_blocking.is_empty() {
            out.push_str("### redb reads from async code\n\n");
            let _ = writeln!(
                out,
                "The tier's gets from {} tasks on the runtime, each crossing to a reader thread \
                 and back, against raw redb gets that as many tasks run through \
                 `spawn_blocking`, as an async program calling redb itself must. No target \
                 applies.\n",
                self.settings.redb_workers
            );
            table(
                &mut out,
                &self.redb_blocking,
                "raw redb in spawn_blocking",
                false,
            );
        }
        if !self.redb_tasks.is_empty() {
            let _ = writeln!(
                out,
                "The same runs of the tier's gets from tasks against raw redb on OS threads (the \
                 runs of the first table): the price of the hand-off between threads that keeps \
                 redb off the runtime's workers, on {} cores. No target applies.\n",
                self.machine.cores
            );
            table(&mut out, &self.redb_tasks, "raw redb", false);
        }
        if !self.redis.is_empty() {
            out.push_str("## Redis tier against redis-benchmark\n\n");
            let _ = writeln!(
                out,
                "{} concurrent tasks on the tier, {} connections for redis-benchmark. \
                 Throughput in operations per second, latencies in microseconds; medians of {} \
                 runs.\n\n{targets}\n",
                self.settings.redis_clients, self.settings.redis_clients, self.settings.runs
            );
            table(&mut out, &self.redis, "redis-benchmark", true);
        } else if let Some(why) = &self.redis_skipped {
            let _ = writeln!(out, "## Redis tier\n\nNot measured: {why}.\n");
        }
        self.every_run(&mut out);
        out
    }

    fn method(&self, out: &mut String) {
        let s = &self.settings;
        let m = &self.machine;
        let sizes: Vec<String> = s
            .sizes
            .iter()
            .map(|size| {
                format!(
                    "{} values on {} keys",
                    bytes(size.value_bytes),
                    thousands(size.keys as u64)
                )
            })
            .collect();
        let dir = s.dir.clone().unwrap_or_else(std::env::temp_dir);
        let _ = write!(
            out,
            "## Method

The `tiers` binary of `benches/` (`benches/src/bin/tiers/`) measures each tier and its
baseline on the same data, one after the other, on the same machine.

- **Data**: {sizes}. Keys are `key:000000000000` to `key:…` (16 bytes); each key's value is
  different random bytes (fixed seed {SEED:#x}). Every store is seeded with all of them before
  it is measured, so every get is a hit, and every insert replaces a key's value with the same
  bytes.
- **Workers**: each worker picks keys uniformly at random from its own seeded sequence and
  repeats one operation, waiting for each before the next. Tasks run on a tokio multi-thread
  runtime with one worker thread per core ({cores} here); OS threads run outside it, and
  wait for a tier's future with `futures::executor::block_on`.
- **Timing**: each measurement is a {warmup:.1} s warm-up, then a {measure:.1} s timed phase.
  Every operation is timed with `Instant::now()` around the call; p50 and p99 are nearest-rank
  percentiles of all of them, sorted. Throughput is the number of operations that ran wholly
  inside the timed phase divided by its length.
- **Repeats**: {runs} runs; within a run the tier and its baseline take turns, so slow spells of
  the machine fall on both. The tables give the median of each figure over the runs (taken
  separately), and the ratio is the tier's median throughput divided by the baseline's. The
  machine is shared with other work: compare ratios within a run, not absolute figures
  across runs.

### redb (redb {redb})

- **Tier**: `RedbBackend::builder(path).max_bytes(1 << 40).durability(Durability::Immediate)
  .cache_size({cache} MiB).build()`, other settings at their defaults (among them one reader
  thread per core, at most four); nothing is evicted. A get (`Backend::get`) reads the record
  (a 28-byte header and the value) in a read transaction of its own, checks its CRC-32 and
  expiry, copies the value out and notes the access for LRU eviction; the writer thread writes
  those access times in batches. Where it runs depends on the caller: from a plain thread
  (outside any tokio runtime) the get runs on that thread; from a task it is queued to the
  tier's reader threads, which serve every lookup waiting in one read transaction and wake the
  task. An insert (`Backend::insert`) returns once its commit is durable; the writer thread
  groups every insert waiting in its queue into one transaction, so concurrent inserts share a
  commit and its `fsync`.
- **Raw redb**: a separate file with one table, key bytes → value bytes, holding the same
  keys and values with the same {cache} MiB page cache. A get is `begin_read`, `open_table`
  and `get`, the value copied into a `Vec`; an insert is one write transaction per insert,
  committed with `Durability::Immediate`. redb runs one write transaction at a time, so each
  raw insert pays its own commit and `fsync` while the tier's share them: the insert ratio
  shows what that grouping is worth, not the cost of the same work.
- **Workers**: {redb_workers} on each side. The targeted comparison, gets, runs both sides
  the same way, on {redb_workers} OS threads, so the ratio is the cost of the tier's own work
  (the record's checks, the copy into an `Entry`, the access bookkeeping and its writes) over
  a bare redb read. Inserts run from {redb_workers} tasks on the tier and {redb_workers} OS
  threads on raw redb. The tier's gets are also measured from {redb_workers} tasks, the way
  async code calls it, against raw redb gets run through `spawn_blocking` from as many tasks
  (how an async program that calls redb itself keeps it off the worker threads) and against
  raw redb on OS threads: every get from a task crosses to a reader thread and back, and on a
  small machine those wake-ups, not redb, bound its throughput.
- The files are in a new temporary directory under `{dir}`.

### Redis (redis-server {server}, fred {fred})

- **Server**: a private `redis-server` on a free loopback port without persistence (the
  `RedisServer` harness of `tests/`), a new one for each value size, shared by both sides.
- **Tier**: `RedisBackend::builder(url).build()` with its defaults (prefix `tiercache:`, a
  250 ms command timeout), {clients} concurrent tasks: a get is a `GET`, a set a `SET` of the
  record (the value plus a 28-byte header), each checked and decoded as in the redb tier.
- **redis-benchmark** {bench}: `redis-benchmark -h 127.0.0.1 -p PORT -t set,get --csv -n N -c
  {clients} -d SIZE -r KEYS`: {clients} connections with one request in flight on each, values
  of the same size, keys `key:…` drawn at random from as many keys as the tier uses. Its `SET`
  test runs first and writes the keys its `GET` test reads. A warm-up run of {warm_up}
  requests per test sets N so that each timed test lasts about {measure:.1} s. Its p50 and p99
  are its own, from its CSV output (millisecond figures with three decimals).
- The client side, the server and redis-benchmark all share the machine's {cores} cores.

",
            cores = m.cores,
            warmup = s.warmup.as_secs_f64(),
            measure = s.measure.as_secs_f64(),
            runs = s.runs,
            redb = m.version("redb"),
            cache = REDB_CACHE_BYTES >> 20,
            redb_workers = s.redb_workers,
            dir = dir.display(),
            server = m.version("redis-server"),
            fred = m.version("fred"),
            bench = m.version("redis-benchmark"),
            clients = s.redis_clients,
            warm_up = thousands(crate::REDIS_WARM_UP_REQUESTS),
            sizes = sizes.join(" and "),
        );
    }

    /// Every run's throughput, to show the spread behind the medians.
    fn every_run(&self, out: &mut String) {
        out.push_str("## Every run\n\nThroughput of each run, operations per second.\n\n");
        let _ = write!(out, "| tier | value | operation | side |");
        for run in 1..=self.settings.runs {
            let _ = write!(out, " run {run} |");
        }
        out.push_str("\n|---|---:|---|---|");
        for _ in 0..self.settings.runs {
            out.push_str("---:|");
        }
        out.push('\n');
        // The comparisons of gets from tasks share their runs with the
        // other tables, so each run gets one line.
        let lines = self
            .redb
            .iter()
            .flat_map(|r| {
                let tier = if r.op == "get" {
                    "tier, OS threads"
                } else {
                    "tier, tasks"
                };
                [(r, tier, &r.tier), (r, "raw redb", &r.baseline)]
            })
            .chain(self.redb_blocking.iter().flat_map(|r| {
                [
                    (r, "tier, tasks", &r.tier),
                    (r, "raw redb in spawn_blocking", &r.baseline),
                ]
            }))
            .chain(
                self.redis
                    .iter()
                    .flat_map(|r| [(r, "tier", &r.tier), (r, "redis-benchmark", &r.baseline)]),
            );
        for (row, side, runs) in lines {
            let _ = write!(
                out,
                "| {} | {} | {} | {side} |",
                row.part,
                bytes(row.size.value_bytes),
                row.op
            );
            for f in runs {
                let _ = write!(out, " {} |", ops(f));
            }
            out.push('\n');
        }
        out.push('\n');
        let failed: u64 = self
            .redb
            .iter()
            .chain(&self.redb_blocking)
            .chain(&self.redis)
            .flat_map(|r| r.tier.iter().chain(&r.baseline))
            .map(|f| f.failed)
            .sum();
        if failed > 0 {
            let _ = writeln!(
                out,
                "{failed} operations failed or missed a seeded key during the timed phases; \
                 they are left out of the figures.\n"
            );
        }
    }

    /// The report as JSON: the settings, the machine, and every run.
    pub(crate) fn json(&self) -> String {
        let s = &self.settings;
        let figures = |f: &Figures| {
            json!({
                "ops_per_sec": f.ops_per_sec,
                "p50_us": f.p50_us,
                "p99_us": f.p99_us,
                "ops": f.ops,
                "failed": f.failed,
            })
        };
        let side = |runs: &[Figures]| {
            let mut median = figures(&median_figures(runs));
            median["runs"] = runs.iter().map(figures).collect::<Vec<_>>().into();
            median
        };
        let rows = |rows: &[Row], baseline: &str, targets: bool| -> Vec<Value> {
            rows.iter()
                .map(|r| {
                    json!({
                        "value_bytes": r.size.value_bytes,
                        "keys": r.size.keys,
                        "operation": r.op,
                        "tier": side(&r.tier),
                        baseline: side(&r.baseline),
                        "ratio": r.ratio(),
                        "target": (targets && r.targeted()).then_some(TARGET),
                    })
                })
                .collect()
        };
        let figures = json!({
            "settings": {
                "warmup_s": s.warmup.as_secs_f64(),
                "measure_s": s.measure.as_secs_f64(),
                "runs": s.runs,
                "redb_workers": s.redb_workers,
                "redis_clients": s.redis_clients,
                "redb_cache_bytes": REDB_CACHE_BYTES,
                "seed": SEED,
            },
            "redb": rows(&self.redb, "raw_redb", true),
            "redb_reads_from_async": rows(&self.redb_blocking, "raw_redb_spawn_blocking", false),
            "redb_reads_from_async_against_threads": rows(&self.redb_tasks, "raw_redb", false),
            "redis": rows(&self.redis, "redis_benchmark", true),
            "redis_skipped": self.redis_skipped,
        });
        self.machine.report_json(self.elapsed_s, figures)
    }
}

/// The comparison table of one tier; `targets` says whether the issue's
/// targets apply to these rows.
fn table(out: &mut String, rows: &[Row], baseline: &str, targets: bool) {
    let _ = writeln!(
        out,
        "| value | operation | tier ops/s | tier p50 | tier p99 | {baseline} ops/s | {baseline} p50 | \
         {baseline} p99 | tier ÷ {baseline} | target ≥ {TARGET}× |"
    );
    out.push_str("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for row in rows {
        let tier = median_figures(&row.tier);
        let base = median_figures(&row.baseline);
        let ratio = row.ratio();
        let target = if !(targets && row.targeted()) {
            "–"
        } else if ratio >= TARGET {
            "met"
        } else {
            "**not met**"
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {ratio:.2}× | {target} |",
            bytes(row.size.value_bytes),
            row.op,
            ops(&tier),
            micros(tier.p50_us),
            micros(tier.p99_us),
            ops(&base),
            micros(base.p50_us),
            micros(base.p99_us),
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(ops_per_sec: f64) -> Figures {
        Figures {
            ops_per_sec,
            p50_us: 10.0,
            p99_us: 100.0,
            ops: 1_000,
            failed: 0,
        }
    }

    #[test]
    fn tables_give_medians_ratios_and_targets() {
        let size = Size {
            value_bytes: 512,
            keys: 100,
        };
        let mut report = Report::new(Settings::default());
        let mut get = Row::new("redb", size, "get");
        get.tier = vec![figures(90.0), figures(70.0), figures(80.0)];
        get.baseline = vec![figures(100.0); 3];
        let mut insert = Row::new("redb", size, "insert");
        insert.tier = vec![figures(300.0); 3];
        insert.baseline = vec![figures(100.0); 3];
        report.redb = vec![get, insert];
        report.redis_skipped = Some("no Redis".into());
        let doc = report.markdown();
        assert!(
            doc.contains("| 512 B | get | 80 | 10.0 | 100.0 | 100 | 10.0 | 100.0 | 0.80× | met |"),
            "{doc}"
        );
        assert!(doc.contains("| 512 B | insert | 300 |"), "{doc}");
        assert!(doc.contains("| 3.00× | – |"), "{doc}");
        assert!(doc.contains("Not measured: no Redis."), "{doc}");
        assert!(
            doc.contains("| redb | 512 B | get | tier, OS threads | 90 | 70 | 80 |"),
            "{doc}"
        );
        let json: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["redb"][0]["raw_redb"]["ops_per_sec"], 100.0);
        assert_eq!(json["redb"][0]["tier"]["runs"][1]["ops_per_sec"], 70.0);
        assert_eq!(json["redb"][1]["target"], Value::Null);
    }

    #[test]
    fn sizes_read_as_bytes_or_kibibytes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(16_384), "16 KiB");
        assert_eq!(bytes(1_500), "1500 B");
    }
}
