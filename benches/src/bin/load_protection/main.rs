//! `load-protection`: what tiercache's load protection saves a slow
//! backing service. A service that answers each call after 2 ms stands
//! behind the cache; 64 tokio tasks request Zipf(1.0) keys from it.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin load-protection -- \
//!     --out docs/benchmarks/load-protection.md --json docs/benchmarks/load-protection.json
//! ```
//!
//! Part 1, negative caching: 20 % of the keys do not exist; the loader
//! calls per second (for existing and for missing keys) and the request
//! latency of `optionally_get_with` with negative caching on, with it off,
//! and of moka's `optionally_get_with`, which caches no `None`. Part 2,
//! refresh-ahead: every key exists and lives 1 s; the share of requests
//! that wait for a load with `refresh_after_write(800 ms)`, without it,
//! and with moka's `get_with` under `time_to_live(1 s)`.
//!
//! Every measurement is a fresh service and cache, a warm-up that is not
//! counted, then a fixed time of requests; the setups of each part take
//! turns, each run starting with the next one, and the report gives the
//! medians over the runs. `TIERCACHE_BENCH_QUICK=1` makes the defaults a
//! short check (1 run, 1 s per setup). `cargo xtask bench load-protection`
//! runs it; run with `--help` for the options.

mod measure;
mod report;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tiercache_benches::{Machine, bench_main, locked_versions, parse_count};

use crate::measure::{Part, Setup, measure};
use crate::report::{Results, Scenario};

const USAGE: &str = "\
usage: load-protection [options]

Measures what tiercache's negative caching and refresh-ahead save a backing
service with 2 ms latency, from 64 tokio tasks requesting Zipf(1.0) keys,
beside moka::future::Cache; writes a Markdown report (on stdout without
--out).

options:
  --keys N,M     the key spaces, each measured in both parts
                 (default 100000,10000)
  --seconds S    measured time of each setup, in seconds (default 4)
  --warmup S     unmeasured time before it, in seconds (default 1)
  --runs N       measurements of each setup; medians are reported (default 3)
  --out PATH     write the Markdown report here
  --json PATH    also write the figures as JSON
  -h, --help     this text

TIERCACHE_BENCH_QUICK=1 makes the defaults a short check: --runs 1
--seconds 1 --warmup 0.5.";

/// The environment variable that asks for a short check.
const QUICK: &str = "TIERCACHE_BENCH_QUICK";

pub(crate) struct Settings {
    pub(crate) keys: Vec<u64>,
    pub(crate) seconds: f64,
    pub(crate) warmup: f64,
    pub(crate) runs: usize,
    pub(crate) quick: bool,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("`{text}` is not a number of seconds")),
    }
}

fn parse_with(args: Vec<String>, quick: bool) -> Result<Option<Settings>, String> {
    let mut s = Settings {
        keys: vec![100_000, 10_000],
        seconds: if quick { 1.0 } else { 4.0 },
        warmup: if quick { 0.5 } else { 1.0 },
        runs: if quick { 1 } else { 3 },
        quick,
        out: None,
        json: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--keys" => {
                s.keys = value("--keys")?
                    .split(',')
                    .map(|k| parse_count(k.trim()).map(|k| k as u64))
                    .collect::<Result<_, _>>()?;
            }
            "--seconds" => s.seconds = seconds(&value("--seconds")?)?,
            "--warmup" => s.warmup = seconds(&value("--warmup")?)?,
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.seconds <= 0.0 {
        return Err("--runs and --seconds must be above zero".into());
    }
    if s.keys.is_empty() || s.keys.iter().any(|&k| k < 100) {
        return Err("every key space of --keys must be at least 100".into());
    }
    Ok(Some(s))
}

fn parse(args: Vec<String>) -> Result<Option<Settings>, String> {
    let quick = std::env::var(QUICK).is_ok_and(|v| !v.is_empty() && v != "0");
    parse_with(args, quick)
}

fn main() -> ExitCode {
    bench_main("load-protection", USAGE, parse, |s| run(&s))
}

fn run(s: &Settings) -> Result<(), String> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Results {
        scenarios: [Part::Negative, Part::Refresh]
            .into_iter()
            .flat_map(|part| s.keys.iter().map(move |&keys| (part, keys)))
            .map(|(part, keys)| Scenario {
                part,
                keys,
                measured: Setup::ALL
                    .iter()
                    .map(|&setup| (setup, Vec::new()))
                    .collect(),
            })
            .collect(),
        workers,
    };
    let warmup = Duration::from_secs_f64(s.warmup);
    let window = Duration::from_secs_f64(s.seconds);
    for run in 0..s.runs {
        for scenario in &mut results.scenarios {
            let setups: Vec<Setup> = scenario.measured.iter().map(|(s, _)| *s).collect();
            // Each run starts with the next setup, so that none always
            // meets the same moment of the machine.
            for i in 0..setups.len() {
                let index = (run + i) % setups.len();
                let setup = setups[index];
                let m = runtime.block_on(measure(
                    scenario.part,
                    setup,
                    scenario.keys,
                    warmup,
                    window,
                    run as u64 + 1,
                ))?;
                eprintln!(
                    "load-protection: run {}: {} over {} keys: {}: {:.0} requests/s, \
                     {:.0} loader calls/s ({:.0} for missing keys, {:.0} in the background), \
                     {:.3} % waited, p50 {:.0} µs, p99 {:.0} µs",
                    run + 1,
                    scenario.part.key(),
                    scenario.keys,
                    setup.label(scenario.part),
                    m.rate(),
                    m.per_s(m.calls.total()),
                    m.per_s(m.calls.missing),
                    m.per_s(m.calls.background),
                    m.waited_share() * 100.0,
                    m.p50_us,
                    m.p99_us,
                );
                scenario.measured[index].1.push(m);
            }
        }
    }
    drop(runtime);
    let elapsed = started.elapsed().as_secs_f64();
    let machine = Machine::collect(locked_versions(&["tokio", "moka", "rand_distr"]));
    let (markdown, figures) = report::report(s, &machine, &results, elapsed);
    tiercache_benches::write_report(
        "load-protection",
        s.out.as_deref(),
        &markdown,
        s.json.as_deref(),
        &machine.report_json(elapsed, figures),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        assert!(parse_with(args(&["--runs", "0"]), false).is_err());
        assert!(parse_with(args(&["--seconds", "0"]), false).is_err());
        assert!(parse_with(args(&["--seconds", "x"]), false).is_err());
        assert!(parse_with(args(&["--keys", "10"]), false).is_err());
        assert!(parse_with(args(&["--keys", "1000,x"]), false).is_err());
        let s = parse_with(args(&[]), false).unwrap().unwrap();
        assert_eq!(s.keys, [100_000, 10_000]);
        let s = parse_with(args(&["--keys", "10_000, 2000"]), false)
            .unwrap()
            .unwrap();
        assert_eq!(s.keys, [10_000, 2_000]);
        assert_eq!((s.runs, s.seconds, s.warmup), (3, 4.0, 1.0));
        let q = parse_with(args(&["--runs", "2"]), true).unwrap().unwrap();
        assert_eq!((q.runs, q.seconds, q.warmup, q.quick), (2, 1.0, 0.5, true));
        assert!(parse_with(args(&["--help"]), false).unwrap().is_none());
    }
}
