//! `facade`: the throughput of the facade's `get_with` on a memory-only
//! `tiercache::Cache` beside `moka::future::Cache::get_with`, from many
//! tokio tasks at one and two worker threads.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin facade -- \
//!     --out docs/benchmarks/facade.md --json docs/benchmarks/facade.json
//! ```
//!
//! Each measurement spawns 64 tasks that each make a fixed number of
//! `get_with` calls over one Zipf key stream; the two caches take turns,
//! each run starting with the other one, and the report gives the medians
//! over the runs. `cargo xtask bench facade` runs it; run with `--help`
//! for the options.

use std::future::Future;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tiercache::Cache;
use tiercache_benches::{
    Machine, bench_main, locked_versions, median, parse_count, thousands, write_report, zipf_keys,
};
use tokio::runtime::Runtime;

const USAGE: &str = "\
usage: facade [options]

Measures the throughput of get_with on a memory-only tiercache::Cache and on
moka::future::Cache from 64 tokio tasks at 1 and 2 worker threads, and
writes a Markdown report (on stdout without --out).

options:
  --ops N        get_with calls of each task in each measurement (default 20000)
  --runs N       measurements of each cache; medians are reported (default 7)
  --out PATH     write the Markdown report here
  --json PATH    also write the figures as JSON
  -h, --help     this text

A short run: --ops 2000 --runs 3";

/// Both caches' capacity, in entries.
const CAPACITY: u64 = 100_000;
/// The key space the Zipf stream draws from.
const KEYS: u64 = 1_000_000;
/// The Zipf exponent.
const ZIPF_S: f64 = 1.0;
/// The length of the key stream every task reads a part of (a power of
/// two, so that a cursor wraps with a mask).
const SEQUENCE: usize = 1 << 22;
/// The stream's seed, the same for both caches.
const SEED: u64 = 42;
/// Tasks spawned for each measurement.
const TASKS: usize = 64;
/// The runtime's worker threads, one runtime for each.
const WORKERS: [usize; 2] = [1, 2];
/// The issue's bound: tiercache at least this many times moka's
/// throughput.
const TARGET_RATIO: f64 = 5.0;

struct Settings {
    ops: usize,
    runs: usize,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse(args: Vec<String>) -> Result<Option<Settings>, String> {
    let mut s = Settings {
        ops: 20_000,
        runs: 7,
        out: None,
        json: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--ops" => s.ops = parse_count(&value("--ops")?)?,
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.ops == 0 {
        return Err("--runs and --ops must be above zero".into());
    }
    Ok(Some(s))
}

fn main() -> ExitCode {
    bench_main("facade", USAGE, parse, |s| run(&s))
}

/// The two caches measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Tiercache,
    Moka,
}

impl Side {
    const ALL: [Side; 2] = [Side::Tiercache, Side::Moka];

    fn label(self) -> &'static str {
        match self {
            Side::Tiercache => "tiercache",
            Side::Moka => "moka",
        }
    }
}

/// A cache the measurement drives: `get_with(key, async move { key })`,
/// the loader counting in `loads` each time it runs.
trait GetWith: Clone + Send + Sync + 'static {
    fn load<'a>(&'a self, key: u64, loads: &'a mut u64) -> impl Future<Output = u64> + Send + 'a;
}

impl GetWith for Cache<u64, u64> {
    async fn load(&self, key: u64, loads: &mut u64) -> u64 {
        let loader = async move {
            *loads += 1;
            key
        };
        Cache::get_with(self, key, loader)
            .await
            .expect("a memory-only cache cannot fail")
    }
}

impl GetWith for moka::future::Cache<u64, u64> {
    async fn load(&self, key: u64, loads: &mut u64) -> u64 {
        let loader = async move {
            *loads += 1;
            key
        };
        moka::future::Cache::get_with(self, key, loader).await
    }
}

/// One measurement: its wall time and how many loaders ran.
struct Measured {
    seconds: f64,
    loads: u64,
}

/// Spawns a task for each of `cursors` on `runtime`, each making `ops`
/// calls on `cache` from its place in the key stream (whose length is a
/// power of two), and waits for all of them.
fn measure<C: GetWith>(
    runtime: &Runtime,
    cache: &C,
    keys: &Arc<Vec<u64>>,
    cursors: &mut [usize],
    ops: usize,
) -> Measured {
    debug_assert!(keys.len().is_power_of_two());
    let mask = keys.len() - 1;
    runtime.block_on(async {
        let started = Instant::now();
        let tasks: Vec<_> = cursors
            .iter_mut()
            .map(|cursor| {
                let start = *cursor;
                *cursor += ops;
                let (cache, keys) = (cache.clone(), Arc::clone(keys));
                tokio::spawn(async move {
                    let mut loads = 0;
                    for i in start..start + ops {
                        let key = keys[i & mask];
                        black_box(cache.load(key, &mut loads).await);
                    }
                    loads
                })
            })
            .collect();
        let mut loads = 0;
        for task in tasks {
            loads += task.await.expect("a task panicked");
        }
        Measured {
            seconds: started.elapsed().as_secs_f64(),
            loads,
        }
    })
}

/// What one worker count measured: each cache's ops/s and loader runs,
/// run by run, in [`Side::ALL`] order.
struct Row {
    workers: usize,
    rates: [Vec<f64>; 2],
    loads: [u64; 2],
}

impl Row {
    fn median_rate(&self, side: usize) -> f64 {
        median(self.rates[side].iter().copied())
    }

    /// The median over the runs of each run's tiercache ÷ moka: the
    /// machine's speed drifts between runs, and a run's two measurements
    /// are close in time.
    fn ratio(&self) -> f64 {
        median(self.ratios())
    }

    /// Each run's tiercache ÷ moka.
    fn ratios(&self) -> Vec<f64> {
        self.rates[0]
            .iter()
            .zip(&self.rates[1])
            .map(|(t, m)| t / m)
            .collect()
    }

    /// The share of calls whose loader did not run.
    fn hit_ratio(&self, side: usize, calls: u64) -> f64 {
        1.0 - self.loads[side] as f64 / calls as f64
    }
}

fn run(s: &Settings) -> Result<(), String> {
    let started = Instant::now();
    let keys = Arc::new(zipf_keys(KEYS, ZIPF_S, SEQUENCE, SEED));
    let mut rows = Vec::new();
    for workers in WORKERS {
        rows.push(measure_workers(s, workers, &keys)?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let machine = Machine::collect(locked_versions(&["moka", "tokio"]));
    let (markdown, figures) = report(s, &machine, &rows, elapsed);
    write_report(
        "facade",
        s.out.as_deref(),
        &markdown,
        s.json.as_deref(),
        &machine.report_json(elapsed, figures),
    )
}

/// Both caches, fresh, on a runtime of `workers` threads.
fn measure_workers(s: &Settings, workers: usize, keys: &Arc<Vec<u64>>) -> Result<Row, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    // Analytics stays at the builder's default (on, sampling one call in
    // 1024), as the analytics bench's "default" setting has it.
    let tiercache: Cache<u64, u64> = runtime
        .block_on(Cache::builder().max_capacity(CAPACITY).build())
        .map_err(|e| e.to_string())?;
    let moka = moka::future::Cache::<u64, u64>::new(CAPACITY);
    // Each task starts 1/TASKS of the way further along the stream; both
    // caches' cursors move alike, so run by run they see the same keys.
    let start: Vec<usize> = (0..TASKS).map(|t| t * (SEQUENCE / TASKS)).collect();
    let mut cursors = [start.clone(), start];
    // Warm-up: one untimed measurement each, which fills both caches from
    // the same keys, then moka's pending maintenance, so that both start
    // from a full, settled cache.
    measure(&runtime, &tiercache, keys, &mut cursors[0], s.ops);
    measure(&runtime, &moka, keys, &mut cursors[1], s.ops);
    runtime.block_on(moka.run_pending_tasks());
    let mut row = Row {
        workers,
        rates: [Vec::new(), Vec::new()],
        loads: [0; 2],
    };
    let calls = (TASKS * s.ops) as f64;
    for run in 0..s.runs {
        // Odd runs measure moka first, so neither cache always follows the
        // other or always meets the same moment of the machine's speed.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let m = match Side::ALL[side] {
                Side::Tiercache => measure(&runtime, &tiercache, keys, &mut cursors[0], s.ops),
                Side::Moka => measure(&runtime, &moka, keys, &mut cursors[1], s.ops),
            };
            let rate = calls / m.seconds;
            eprintln!(
                "facade: {workers} worker(s) run {}: {} {rate:.0} ops/s, hit ratio {:.4}",
                run + 1,
                Side::ALL[side].label(),
                1.0 - m.loads as f64 / calls
            );
            row.rates[side].push(rate);
            row.loads[side] += m.loads;
        }
    }
    Ok(row)
}

/// The Markdown report and the JSON figures.
fn report(
    s: &Settings,
    machine: &Machine,
    rows: &[Row],
    elapsed: f64,
) -> (String, serde_json::Value) {
    let calls = (TASKS * s.ops * s.runs) as u64;
    let mut md = machine.report_header(
        "Facade: get_with against moka::future::Cache",
        "facade",
        elapsed,
    );
    md.push_str(&format!(
        "## Method\n\n\
         - **Caches**, each of {cap} entries: a memory-only `tiercache::Cache<u64, u64>` \
         (`Cache::builder().max_capacity({code_cap}).build()`, no lower tiers; the benches build it \
         with the `analytics` feature, and analytics is at the builder's default: on, sampling one \
         hot-tier call in 1024, as the analytics bench's \"default sampling\" row) and moka {moka} \
         (`moka::future::Cache::<u64, u64>::new({code_cap})`).\n\
         - **Call**: `get_with(key, async move {{ key }})` on both; the loader also adds one to a \
         counter local to its task, from which the hit ratio (calls whose loader did not run) \
         comes.\n\
         - **Keys**: one stream of {seq} keys drawn in advance from Zipf({s:.1}) over \
         1..={keys} (`rand_distr`, seed {seed}), the same for both caches.\n\
         - **Tasks**: each measurement spawns {tasks} tokio {tokio} tasks on a multi-thread runtime \
         of 1, then of 2, worker threads (a fresh runtime and fresh caches for each); each task makes \
         {ops} calls, awaiting each before the next, reading the stream from its own place (task \
         *t* starts *t*/{tasks} of the way along, and every measurement moves on). The time is from \
         the first spawn until the last task has finished; throughput = {per} calls / that time.\n\
         - **Warm-up**: one untimed measurement on each cache, from the same keys, then moka's \
         `run_pending_tasks`, so that both start full and settled.\n\
         - **Runs**: {runs} measurements of each cache, taking turns, odd runs starting with \
         tiercache and even ones with moka. The table gives each cache's median, and the median \
         over the runs of each run's tiercache ÷ moka (the machine's speed drifts between runs; \
         a run's two measurements are close in time). The target, from the issue: tiercache at \
         least {target:.0}× moka.\n\n",
        cap = thousands(CAPACITY),
        code_cap = thousands(CAPACITY).replace(',', "_"),
        moka = machine.version("moka"),
        tokio = machine.version("tokio"),
        seq = thousands(SEQUENCE as u64),
        s = ZIPF_S,
        keys = thousands(KEYS),
        seed = SEED,
        tasks = TASKS,
        ops = thousands(s.ops as u64),
        per = thousands((TASKS * s.ops) as u64),
        runs = s.runs,
        target = TARGET_RATIO,
    ));
    md.push_str(
        "## Results\n\n| worker threads | tiercache ops/s (median) | moka ops/s (median) | \
         tiercache ÷ moka (median of per-run ratios) | target | tiercache hit ratio | moka hit ratio |\n\
         |---:|---:|---:|---:|---|---:|---:|\n",
    );
    let mut json_rows = Vec::new();
    for row in rows {
        let ratio = row.ratio();
        let target = if ratio >= TARGET_RATIO {
            "met"
        } else {
            "**not met**"
        };
        md.push_str(&format!(
            "| {} | {} | {} | {ratio:.2}× | {target} | {:.4} | {:.4} |\n",
            row.workers,
            thousands(row.median_rate(0).round() as u64),
            thousands(row.median_rate(1).round() as u64),
            row.hit_ratio(0, calls),
            row.hit_ratio(1, calls),
        ));
        let caches: serde_json::Map<_, _> = Side::ALL
            .iter()
            .enumerate()
            .map(|(i, side)| {
                let value = json!({
                    "median_ops_per_sec": row.median_rate(i),
                    "hit_ratio": row.hit_ratio(i, calls),
                    "loads": row.loads[i],
                    "runs": row.rates[i],
                });
                (side.label().to_string(), value)
            })
            .collect();
        json_rows.push(json!({
            "worker_threads": row.workers,
            "ratio_tiercache_to_moka": ratio,
            "target_met": ratio >= TARGET_RATIO,
            "ratios": row.ratios(),
            "caches": caches,
        }));
    }
    md.push_str(&format!(
        "\nThe hit ratios are over the {} timed calls of each cache at each worker count.\n\
         \n## Every run\n\n| worker threads | cache | ops/s per run |\n|---:|---|---|\n",
        thousands(calls)
    ));
    for row in rows {
        for (i, side) in Side::ALL.iter().enumerate() {
            let list: Vec<String> = row.rates[i]
                .iter()
                .map(|v| thousands(v.round() as u64))
                .collect();
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                row.workers,
                side.label(),
                list.join(", ")
            ));
        }
        let ratios: Vec<String> = row.ratios().iter().map(|r| format!("{r:.2}×")).collect();
        md.push_str(&format!(
            "| {} | tiercache ÷ moka | {} |\n",
            row.workers,
            ratios.join(", ")
        ));
    }
    let figures = json!({
        "settings": {
            "capacity": CAPACITY,
            "keys": KEYS,
            "zipf_s": ZIPF_S,
            "sequence": SEQUENCE,
            "seed": SEED,
            "tasks": TASKS,
            "ops_per_task": s.ops,
            "runs": s.runs,
            "analytics": "default (on, one call in 1024 sampled)",
            "target_ratio": TARGET_RATIO,
        },
        "rows": json_rows,
    });
    (md, figures)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn both_caches_load_each_new_key_once() {
        let keys = Arc::new(zipf_keys(1_000, 1.0, 1 << 12, 1));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let tiercache: Cache<u64, u64> = runtime
            .block_on(Cache::builder().max_capacity(CAPACITY).build())
            .unwrap();
        let moka = moka::future::Cache::<u64, u64>::new(CAPACITY);
        let start: Vec<usize> = (0..8).map(|t| t * 512).collect();
        let distinct: HashSet<u64> = start
            .iter()
            .flat_map(|&s| keys[s..s + 100].iter().copied())
            .collect();
        let mut cursors = [start.clone(), start];
        let t = measure(&runtime, &tiercache, &keys, &mut cursors[0], 100);
        let m = measure(&runtime, &moka, &keys, &mut cursors[1], 100);
        // Nothing is evicted, so each cache loads every key once.
        assert_eq!(t.loads, distinct.len() as u64);
        assert_eq!(m.loads, distinct.len() as u64);
        assert_eq!(cursors[0][1], 612);
    }

    #[test]
    fn counts_must_be_above_zero() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        assert!(parse(args(&["--runs", "0"])).is_err());
        let s = parse(args(&["--ops", "2_000"])).unwrap().unwrap();
        assert_eq!((s.ops, s.runs), (2_000, 7));
        assert!(parse(args(&["--help"])).unwrap().is_none());
    }
}
