//! `analytics`: what the facade's analytics cost on the hot path: the
//! throughput of a memory-only `Cache` with analytics off, on at the
//! default sampling (one call in 1024 timed and fed to the hot-key sketch),
//! and on with every call sampled.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin analytics -- \
//!     --out docs/benchmarks/analytics.md --json docs/benchmarks/analytics.json
//! ```
//!
//! Each measurement runs one OS thread per core for a fixed time; the
//! three settings take turns in every run, and the report gives the
//! medians over the runs. `cargo xtask bench analytics` runs it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::json;
use tiercache::Cache;
use tiercache_benches::{
    Machine, bench_main, locked_versions, median, parse_count, thousands, write_report, zipf_keys,
};

const USAGE: &str = "\
usage: analytics [options]

Measures a memory-only Cache's throughput with analytics off, on at the
default sampling, and on with every call sampled, and writes a Markdown
report (on stdout without --out).

options:
  --millis MS    timed phase of each measurement (default 400)
  --runs N       repetitions; medians are reported (default 9)
  --out PATH     write the Markdown report here
  --json PATH    also write the figures as JSON
  -h, --help     this text";

/// The hot tier's capacity.
const CAPACITY: u64 = 1 << 16;
/// Keys of the all-hits scenario: every one fits.
const HIT_KEYS: u64 = 50_000;
/// Keys of the mixed scenario: Zipf over more keys than fit, so some
/// lookups miss and load.
const MIXED_KEYS: u64 = 500_000;
/// Keys drawn per thread, cycled.
const SEQUENCE: usize = 1 << 20;
/// One turn of one setting within a run.
const SLICE: Duration = Duration::from_millis(20);
/// The issue's bound on what analytics may cost at the default sampling.
const MAX_COST: f64 = 0.05;

struct Settings {
    measure: Duration,
    runs: usize,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse(args: Vec<String>) -> Result<Option<Settings>, String> {
    let mut s = Settings {
        measure: Duration::from_millis(400),
        runs: 9,
        out: None,
        json: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--millis" => {
                s.measure = Duration::from_millis(parse_count(&value("--millis")?)? as u64)
            }
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.measure.is_zero() {
        return Err("--runs and --millis must be above zero".into());
    }
    Ok(Some(s))
}

/// Analytics off, on at the default sampling, on with every call sampled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Default,
    Every,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Off, Mode::Default, Mode::Every];

    fn label(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Default => "on, default sampling (1 in 1024)",
            Mode::Every => "on, every call sampled",
        }
    }
}

/// The workloads: lookups that all hit, and a Zipf mix of hits and loads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Hits,
    Mixed,
}

impl Scenario {
    const ALL: [Scenario; 2] = [Scenario::Hits, Scenario::Mixed];

    fn label(self) -> &'static str {
        match self {
            Scenario::Hits => "get, every lookup a hot hit (50,000 keys)",
            Scenario::Mixed => "get_with, Zipf(1.0) over 500,000 keys (misses load and insert)",
        }
    }
}

fn main() -> ExitCode {
    bench_main("analytics", USAGE, parse, |s| run(&s))
}

/// Builds a cache for `mode`, on a runtime only for the build.
fn cache(mode: Mode) -> Result<Cache<u64, u64>, String> {
    let builder = Cache::builder().max_capacity(CAPACITY);
    let builder = match mode {
        Mode::Off => builder.analytics(false),
        Mode::Default => builder,
        Mode::Every => builder.analytics_sampling(1),
    };
    futures::executor::block_on(builder.build()).map_err(|e| e.to_string())
}

/// Awaits a future that usually completes at once (a hot hit, or a load
/// whose loader is ready), without a runtime.
fn now<T>(future: impl Future<Output = T>) -> T {
    // Pinned on the stack: an allocation per call would add the same cost
    // to both sides and make analytics look cheaper than it is.
    let mut future = std::pin::pin!(future);
    match future.as_mut().now_or_never() {
        Some(out) => out,
        None => futures::executor::block_on(future),
    }
}

/// Operations per second of `scenario` on `cache` from one thread per core,
/// each thread going on through its key sequence from its place in
/// `cursors`.
fn measure(
    cache: &Cache<u64, u64>,
    scenario: Scenario,
    keys: &[Arc<Vec<u64>>],
    cursors: &mut [usize],
    time: Duration,
) -> f64 {
    let started = Instant::now();
    let end = started + time;
    let done: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .iter()
            .zip(cursors.iter_mut())
            .map(|(keys, cursor)| {
                scope.spawn(move || {
                    let mut n = 0u64;
                    let mut i = *cursor;
                    while Instant::now() < end {
                        // A batch between clock reads keeps the timing out
                        // of the measured path.
                        for _ in 0..256 {
                            let key = keys[i & (SEQUENCE - 1)];
                            i += 1;
                            match scenario {
                                Scenario::Hits => {
                                    let got = now(cache.get(&key));
                                    assert!(matches!(got, Ok(Some(_))));
                                }
                                Scenario::Mixed => {
                                    let got = now(cache.get_with(key, async move { key }));
                                    assert!(got.is_ok());
                                }
                            }
                        }
                        n += 256;
                    }
                    *cursor = i;
                    n
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker panicked"))
            .sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

fn run(s: &Settings) -> Result<(), String> {
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        let keys: Vec<Arc<Vec<u64>>> = (0..threads)
            .map(|t| {
                Arc::new(match scenario {
                    Scenario::Hits => zipf_keys(HIT_KEYS, 0.0001, SEQUENCE, t as u64),
                    Scenario::Mixed => zipf_keys(MIXED_KEYS, 1.0, SEQUENCE, t as u64),
                })
            })
            .collect();
        let caches = Mode::ALL
            .iter()
            .map(|&m| cache(m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cursors = vec![vec![0usize; threads]; caches.len()];
        for (c, cursors) in caches.iter().zip(&mut cursors) {
            // Warm each cache: every hit key present, the mix settled.
            for k in 0..=HIT_KEYS {
                now(c.insert(k, k)).map_err(|e| e.to_string())?;
            }
            measure(c, scenario, &keys, cursors, s.measure / 2);
        }
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); Mode::ALL.len()];
        let rounds = (s.measure.as_millis() / SLICE.as_millis()).max(1) as usize;
        for run in 1..=s.runs {
            // The settings take turns in short slices, each round starting
            // with the next one, so that a change in the machine's speed
            // (it varies by 2x over seconds here) falls on every setting
            // alike instead of on whichever ran at that moment.
            let mut ops = vec![0.0; caches.len()];
            for round in 0..rounds {
                for turn in 0..caches.len() {
                    let i = (turn + round + run) % caches.len();
                    ops[i] += measure(&caches[i], scenario, &keys, &mut cursors[i], SLICE);
                }
            }
            for (i, total) in ops.into_iter().enumerate() {
                let rate = total / rounds as f64;
                eprintln!(
                    "analytics: {} run {run}: {} {:.0} ops/s",
                    scenario.label(),
                    Mode::ALL[i].label(),
                    rate
                );
                runs[i].push(rate);
            }
        }
        rows.push((scenario, runs));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let machine = Machine::collect(locked_versions(&["hdrhistogram", "metrics"]));
    let (markdown, figures) = report(s, &machine, threads, &rows, elapsed);
    write_report(
        "analytics",
        s.out.as_deref(),
        &markdown,
        s.json.as_deref(),
        &machine.report_json(elapsed, figures),
    )
}

/// The Markdown report and the JSON figures.
fn report(
    s: &Settings,
    machine: &Machine,
    threads: usize,
    rows: &[(Scenario, Vec<Vec<f64>>)],
    elapsed: f64,
) -> (String, serde_json::Value) {
    let mut md = machine.report_header(
        "Analytics: what it costs on the hot path",
        "analytics",
        elapsed,
    );
    md.push_str(&format!(
        "## Method\n\nA memory-only `Cache<u64, u64>` of {} entries, built three ways: analytics \
         off (`.analytics(false)`), on at the default sampling (one hot-tier call in 1024 timed into \
         the latency histogram and its key fed to the hot-key sketch, one key in 1024 followed \
         by the entry tracker; every call counted exactly), \
         and on with every call sampled (`.analytics_sampling(1)`). {threads} OS threads (one per \
         core) call it without a runtime, each cycling through its own sequence of {} keys drawn \
         in advance; a call that completes at once is polled once, as a hot hit does. Each \
         measurement is {} ms after a warm-up of half that, made of {}-ms slices: the three settings take turns slice by slice, each round starting with the next setting, so that the machine's changes of speed fall on all three alike. There are \
         {} runs, and the tables give the median throughput and the median over the runs of each run's ratio to analytics off. The target: analytics at the \
         default sampling costs less than {:.0}% of the throughput with it off.\n\n",
        thousands(CAPACITY),
        thousands(SEQUENCE as u64),
        s.measure.as_millis(),
        SLICE.as_millis(),
        s.runs,
        MAX_COST * 100.0
    ));
    md.push_str("## Results\n\n| workload | analytics | ops/s (median) | ÷ off (median of per-run ratios) | target |\n|---|---|---:|---:|---|\n");
    let mut json_rows = Vec::new();
    for (scenario, runs) in rows {
        let medians: Vec<f64> = runs.iter().map(|r| median(r.iter().copied())).collect();
        for (i, mode) in Mode::ALL.iter().enumerate() {
            // The median of each run's own ratio: the machine's speed can
            // change by half between runs, and a run's three settings are
            // measured within a second of each other.
            let ratio = median(runs[i].iter().zip(&runs[0]).map(|(on, off)| on / off));
            let target = match mode {
                Mode::Default if ratio >= 1.0 - MAX_COST => "met",
                Mode::Default => "**not met**",
                _ => "–",
            };
            md.push_str(&format!(
                "| {} | {} | {} | {ratio:.3}× | {target} |\n",
                scenario.label(),
                mode.label(),
                thousands(medians[i].round() as u64)
            ));
            json_rows.push(json!({
                "workload": scenario.label(),
                "analytics": mode.label(),
                "median_ops_per_sec": medians[i],
                "ratio_to_off": ratio,
                "runs": runs[i],
            }));
        }
    }
    md.push_str("\n## Every run\n\n| workload | analytics | ops/s per run |\n|---|---|---|\n");
    for (scenario, runs) in rows {
        for (i, mode) in Mode::ALL.iter().enumerate() {
            let list: Vec<String> = runs[i]
                .iter()
                .map(|v| thousands(v.round() as u64))
                .collect();
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                scenario.label(),
                mode.label(),
                list.join(", ")
            ));
        }
    }
    let figures = json!({
        "settings": {"measure_ms": s.measure.as_millis() as u64, "runs": s.runs, "threads": threads, "capacity": CAPACITY},
        "rows": json_rows,
    });
    (md, figures)
}
