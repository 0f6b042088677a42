//! `warm`: what tiercache's warming buys. Part 1, restarts: a previous
//! life of Zipf(1.0) requests (and of the first part of a trace from
//! `../shared/traces`) fills the cache, a clean shutdown saves the
//! snapshot, and the cache starts again from the same files cold, from
//! the snapshot, or warmed from its redb tier; the hit ratio of the first
//! 10,000 requests after the restart is measured, over a redb tier and in
//! memory alone. Part 2: how fast a 1M-entry snapshot saves and loads
//! (the target: at least 1M entries a second), and a smaller one loaded
//! into a cache over a redb tier. Part 3, the prefetcher: user sessions
//! that walk pages in typical orders, and independent Zipf requests, with
//! and without it; hit ratio, loads, precision and coverage (the target:
//! under 1 % extra loads on independent Zipf).
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin warm -- \
//!     --out docs/benchmarks/warm.md --json docs/benchmarks/warm.json
//! ```
//!
//! Each measurement is repeated (3 runs; 5 for the snapshot load) and the
//! report gives medians. `TIERCACHE_BENCH_QUICK=1` makes the defaults a
//! short check. `cargo xtask bench warm` runs it, with its files under
//! `target/bench-warm`; run with `--help` for the options.

mod load;
mod machine;
mod prefetch;
mod report;
mod restart;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use tiercache_benches::{
    Machine, bench_main, locked_versions, parse_count, read_trace, workspace_root,
};

use crate::prefetch::Requests;
use crate::report::{LoadResults, PrefetchCase, RestartCase, Results, TraceInfo};
use crate::restart::{Stack, Workload};
use crate::workload::{SessionShape, Sessions, zipf_requests};

const USAGE: &str = "\
usage: warm [options]

Measures tiercache's warming: the hit ratio after a restart cold, from a
snapshot and from a warmer over the redb tier; how fast a snapshot saves and
loads; and the prefetcher on user sessions and on independent Zipf requests.
Writes a Markdown report (on stdout without --out).

options:
  --keys N            Zipf key space of parts 1 and 3 (default 1000000)
  --capacity N        hot-tier entries over it (default 100000)
  --life N            requests of the previous life (default 1000000)
  --after N           requests measured after a restart (default 10000)
  --trace PATH|none   the trace of part 1 (default
                      ../shared/traces/scarab-recs.txt.gz)
  --trace-capacity N  hot-tier entries for the trace (default 25000)
  --trace-life N      trace requests of the previous life (default 1000000)
  --entries N         entries of part 2's snapshot (default 1000000)
  --disk-entries N    entries of part 2's snapshot over redb (default 100000)
  --load-runs N       runs of part 2 (default 5)
  --sessions N        user sessions measured in part 3, after as many
                      again of warm-up (default 12000)
  --zipf-requests N   Zipf requests measured in part 3, after as many
                      again of warm-up (default 200000)
  --runs N            runs of parts 1 and 3; medians are reported (default 3)
  --only LIST         some of restart,load,prefetch (default: all)
  --dir DIR           where the files go (default: target/bench-warm)
  --out PATH          write the Markdown report here
  --json PATH         also write the figures as JSON
  -h, --help          this text

TIERCACHE_BENCH_QUICK=1 makes the defaults a short check: --runs 1
--load-runs 1 --keys 100000 --capacity 10000 --life 100000 --trace-life
200000 --entries 100000 --disk-entries 20000 --sessions 2000
--zipf-requests 20000.";

/// The environment variable that asks for a short check.
const QUICK: &str = "TIERCACHE_BENCH_QUICK";

/// The parts of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Restart,
    Load,
    Prefetch,
}

impl Part {
    fn parse(text: &str) -> Result<Part, String> {
        match text.trim() {
            "restart" => Ok(Part::Restart),
            "load" => Ok(Part::Load),
            "prefetch" => Ok(Part::Prefetch),
            other => Err(format!(
                "unknown part `{other}` (restart, load or prefetch)"
            )),
        }
    }
}

pub(crate) struct Settings {
    pub(crate) keys: u64,
    pub(crate) capacity: u64,
    pub(crate) life: usize,
    pub(crate) after: usize,
    pub(crate) trace: Option<PathBuf>,
    pub(crate) trace_capacity: u64,
    pub(crate) trace_life: usize,
    pub(crate) entries: usize,
    pub(crate) disk_entries: usize,
    pub(crate) load_runs: usize,
    pub(crate) shape: SessionShape,
    pub(crate) sessions: usize,
    pub(crate) page_capacity: u64,
    pub(crate) zipf_requests: usize,
    pub(crate) runs: usize,
    pub(crate) only: Vec<Part>,
    pub(crate) dir: PathBuf,
    pub(crate) quick: bool,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Settings {
    pub(crate) fn runs_part(&self, part: Part) -> bool {
        self.only.contains(&part)
    }
}

/// The Zipf exponent of the Zipf workloads.
pub(crate) const ZIPF_S: f64 = 1.0;

fn parse_with(args: Vec<String>, quick: bool) -> Result<Option<Settings>, String> {
    let mut s = Settings {
        keys: if quick { 100_000 } else { 1_000_000 },
        capacity: if quick { 10_000 } else { 100_000 },
        life: if quick { 100_000 } else { 1_000_000 },
        after: 10_000,
        trace: Some(workspace_root().join("../shared/traces/scarab-recs.txt.gz")),
        trace_capacity: 25_000,
        trace_life: if quick { 200_000 } else { 1_000_000 },
        entries: if quick { 100_000 } else { 1_000_000 },
        disk_entries: if quick { 20_000 } else { 100_000 },
        load_runs: if quick { 1 } else { 5 },
        shape: SessionShape {
            pages: 10_000,
            paths: 500,
            path_len: (5, 10),
            path_s: 1.0,
            detour: 0.1,
        },
        sessions: if quick { 2_000 } else { 12_000 },
        page_capacity: 1_000,
        zipf_requests: if quick { 20_000 } else { 200_000 },
        runs: if quick { 1 } else { 3 },
        only: vec![Part::Restart, Part::Load, Part::Prefetch],
        dir: workspace_root().join("target/bench-warm"),
        quick,
        out: None,
        json: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--keys" => s.keys = parse_count(&value("--keys")?)? as u64,
            "--capacity" => s.capacity = parse_count(&value("--capacity")?)? as u64,
            "--life" => s.life = parse_count(&value("--life")?)?,
            "--after" => s.after = parse_count(&value("--after")?)?,
            "--trace" => {
                let path = value("--trace")?;
                s.trace = (path != "none").then(|| path.into());
            }
            "--trace-capacity" => {
                s.trace_capacity = parse_count(&value("--trace-capacity")?)? as u64;
            }
            "--trace-life" => s.trace_life = parse_count(&value("--trace-life")?)?,
            "--entries" => s.entries = parse_count(&value("--entries")?)?,
            "--disk-entries" => s.disk_entries = parse_count(&value("--disk-entries")?)?,
            "--load-runs" => s.load_runs = parse_count(&value("--load-runs")?)?,
            "--sessions" => s.sessions = parse_count(&value("--sessions")?)?,
            "--zipf-requests" => s.zipf_requests = parse_count(&value("--zipf-requests")?)?,
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--only" => {
                s.only = value("--only")?
                    .split(',')
                    .map(Part::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--dir" => s.dir = value("--dir")?.into(),
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.load_runs == 0 {
        return Err("--runs and --load-runs must be above zero".into());
    }
    if s.keys < 100 || s.capacity < 100 || s.capacity >= s.keys {
        return Err(
            "--keys and --capacity must be at least 100, the capacity below the keys".into(),
        );
    }
    if s.after == 0 || s.life < s.after {
        return Err("--after must be above zero and --life at least --after".into());
    }
    if s.trace_capacity < 100 || s.trace_life < s.after {
        return Err(
            "--trace-capacity must be at least 100 and --trace-life at least --after".into(),
        );
    }
    if s.entries < 100 || s.disk_entries < 100 {
        return Err("--entries and --disk-entries must be at least 100".into());
    }
    if s.sessions < 100 || s.zipf_requests < 1_000 {
        return Err("--sessions must be at least 100 and --zipf-requests at least 1000".into());
    }
    if s.only.is_empty() {
        return Err("--only names no part".into());
    }
    Ok(Some(s))
}

fn parse(args: Vec<String>) -> Result<Option<Settings>, String> {
    let quick = std::env::var(QUICK).is_ok_and(|v| !v.is_empty() && v != "0");
    parse_with(args, quick)
}

fn main() -> ExitCode {
    bench_main("warm", USAGE, parse, |s| run(&s))
}

/// A fresh directory for this invocation's files inside `parent`.
fn scratch(parent: &Path) -> Result<tempfile::TempDir, String> {
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    tempfile::tempdir_in(parent)
        .map_err(|e| format!("cannot create a directory in {}: {e}", parent.display()))
}

fn run(s: &Settings) -> Result<(), String> {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    let scratch = scratch(&s.dir)?;
    let dir = scratch.path();
    let mut results = Results {
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ..Results::default()
    };
    let mut before = machine::Sample::now();
    let mut shared = |part: &'static str, results: &mut Results| {
        let now = machine::Sample::now();
        if let (Some(a), Some(b)) = (&before, &now) {
            results.shared.push((part, a.until(b)));
        }
        before = now;
    };
    if s.runs_part(Part::Restart) {
        runtime.block_on(restarts(s, dir, &mut results))?;
        shared("part 1, restarts", &mut results);
    }
    if s.runs_part(Part::Load) {
        results.load = Some(runtime.block_on(loads(s, dir))?);
        shared("part 2, snapshot load", &mut results);
    }
    if s.runs_part(Part::Prefetch) {
        runtime.block_on(prefetches(s, &mut results))?;
        shared("part 3, prefetcher", &mut results);
    }
    drop(runtime);
    drop(scratch);
    let elapsed = started.elapsed().as_secs_f64();
    let machine = Machine::collect(locked_versions(&["tokio", "redb", "rand_distr"]));
    let (markdown, figures) = report::report(s, &machine, &results, elapsed);
    tiercache_benches::write_report(
        "warm",
        s.out.as_deref(),
        &markdown,
        s.json.as_deref(),
        &machine.report_json(elapsed, figures),
    )
}

/// Part 1: for each workload and stack, each run a previous life and a
/// restart of each kind from its files, run `r` starting with the `r`-th
/// kind.
async fn restarts(s: &Settings, dir: &Path, results: &mut Results) -> Result<(), String> {
    let trace = match &s.trace {
        Some(path) => {
            let keys = read_trace(path).map_err(|e| e.to_string())?;
            if keys.len() < s.trace_life + s.after {
                return Err(format!(
                    "{} holds {} requests, fewer than --trace-life + --after",
                    path.display(),
                    keys.len()
                ));
            }
            let mut distinct = keys.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("trace")
                .to_string();
            results.trace = Some(TraceInfo {
                name,
                requests: keys.len(),
                distinct: distinct.len(),
            });
            Some(Arc::new(keys))
        }
        None => None,
    };
    let mut cases: Vec<RestartCase> = Vec::new();
    for run in 0..s.runs {
        let zipf = Workload {
            key: "zipf",
            requests: Arc::new(zipf_requests(
                s.keys,
                ZIPF_S,
                s.life + s.after,
                run as u64 + 1,
            )),
            life: s.life,
            after: s.after,
            capacity: s.capacity,
        };
        let mut workloads = vec![zipf];
        if let Some(keys) = &trace {
            workloads.push(Workload {
                key: "trace",
                requests: keys.clone(),
                life: s.trace_life,
                after: s.after,
                capacity: s.trace_capacity,
            });
        }
        for w in &workloads {
            for stack in [Stack::Disk, Stack::Memory] {
                let index = match cases
                    .iter()
                    .position(|c| c.workload == w.key && c.stack == stack)
                {
                    Some(i) => i,
                    None => {
                        cases.push(RestartCase::new(w.key, stack, w.capacity, w.life));
                        cases.len() - 1
                    }
                };
                let life_dir = dir.join(format!("{}-{}-life", w.key, stack.key()));
                let life = restart::previous_life(stack, w, &life_dir).await?;
                eprintln!(
                    "warm: run {}: {} / {}: previous life of {} requests in {:.1} s, {} loader \
                     calls, {} entries at shutdown, snapshot {} records ({} bytes), redb {} bytes, \
                     steady hot-tier hit ratio {:.1} %",
                    run + 1,
                    w.key,
                    stack.label(),
                    w.life,
                    life.seconds,
                    life.loader_calls,
                    life.entries,
                    life.snapshot_records,
                    life.snapshot_bytes,
                    life.tier_bytes,
                    100.0 * life.steady_hot_hits as f64 / life.steady_requests.max(1) as f64,
                );
                let starts = stack.starts();
                let case = &mut cases[index];
                case.lives.push(life);
                for i in 0..starts.len() {
                    let start = starts[(run + i) % starts.len()];
                    let r =
                        restart::restart(stack, start, w, &life_dir, &dir.join("restart")).await?;
                    eprintln!(
                        "warm: run {}: {} / {}: {}: built in {:.2} s{}, {} entries; hot-tier hit \
                         ratio {:.1} %, answered without the loader {:.1} %",
                        run + 1,
                        w.key,
                        stack.label(),
                        start.label(),
                        r.build_s,
                        r.warm.as_ref().map_or(String::new(), |w| format!(
                            ", warmed {} keys in {:.2} s",
                            w.warmed, w.seconds
                        )),
                        r.entries,
                        100.0 * r.hot_ratio(),
                        100.0 * r.no_load_ratio(),
                    );
                    case.push(r);
                }
                std::fs::remove_dir_all(&life_dir)
                    .map_err(|e| format!("cannot remove {}: {e}", life_dir.display()))?;
            }
        }
    }
    results.restart = cases;
    Ok(())
}

/// Part 2: the large memory-only snapshot, then the comparison with a
/// redb tier.
async fn loads(s: &Settings, dir: &Path) -> Result<LoadResults, String> {
    let fill = Instant::now();
    let source = load::filled(s.entries).await?;
    let filled_entries = source.entry_count();
    eprintln!(
        "warm: filled a memory-only cache with {} entries in {:.1} s",
        filled_entries,
        fill.elapsed().as_secs_f64()
    );
    let path = dir.join("large.snapshot");
    let mut memory = Vec::new();
    for run in 0..s.load_runs {
        let t = load::memory_run(&source, s.entries as u64, &path).await?;
        eprintln!(
            "warm: load run {}: saved {} records ({} bytes) in {:.3} s; loaded {} in {:.3} s: \
             {:.0} records/s",
            run + 1,
            t.records,
            t.bytes,
            t.save_s,
            t.loaded,
            t.load_s,
            t.records_per_s()
        );
        memory.push(t);
    }
    drop(source);
    std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    let disk_dir = dir.join("load-disk");
    let saved = load::disk_files(s.disk_entries, &disk_dir).await?;
    let mut disk = Vec::new();
    for run in 0..s.load_runs {
        let (m, d) = load::disk_run(&disk_dir, s.disk_entries as u64, &saved).await?;
        eprintln!(
            "warm: load run {}: {} records into memory only in {:.3} s ({:.0}/s), over redb in \
             {:.3} s ({:.0}/s, {} installed)",
            run + 1,
            m.records,
            m.load_s,
            m.records_per_s(),
            d.load_s,
            d.records_per_s(),
            d.loaded
        );
        disk.push((m, d));
    }
    std::fs::remove_dir_all(&disk_dir)
        .map_err(|e| format!("cannot remove {}: {e}", disk_dir.display()))?;
    Ok(LoadResults {
        filled_entries,
        memory,
        disk,
    })
}

/// Part 3: each workload, with and without the prefetcher, run `r`
/// starting with `r % 2`.
async fn prefetches(s: &Settings, results: &mut Results) -> Result<(), String> {
    let mut cases: Vec<PrefetchCase> = prefetch::Workload::ALL
        .iter()
        .map(|&w| PrefetchCase::new(w))
        .collect();
    for run in 0..s.runs {
        let seed = run as u64 + 1;
        let sessions = Arc::new(Sessions::generate(s.shape, 2 * s.sessions, seed));
        results
            .sessions
            .push((sessions.requests(), sessions.on_path, sessions.path_pages));
        let keys = Arc::new(zipf_requests(
            s.keys,
            ZIPF_S,
            2 * s.zipf_requests,
            100 + seed,
        ));
        for case in &mut cases {
            let (requests, capacity) = match case.workload {
                prefetch::Workload::Sessions => (
                    Requests::Sessions {
                        sessions: sessions.clone(),
                        warmup: s.sessions,
                    },
                    s.page_capacity,
                ),
                w => (
                    Requests::Keys {
                        keys: keys.clone(),
                        warmup: s.zipf_requests,
                        sessions: w == prefetch::Workload::ZipfSessions,
                    },
                    s.capacity,
                ),
            };
            for i in 0..2 {
                let on = (run + i) % 2 == 1;
                let m = prefetch::measure(&requests, capacity, on).await?;
                eprintln!(
                    "warm: run {}: {}, prefetcher {}: {} requests in {:.1} s, hot-tier hit ratio \
                     {:.1} %, loads {} ({} by the prefetcher, {:.3} % of the requests){}",
                    run + 1,
                    case.workload.label(),
                    if on { "on" } else { "off" },
                    m.requests,
                    m.seconds,
                    100.0 * m.hot_ratio(),
                    m.loads(),
                    m.background_loads,
                    100.0 * m.prefetch_load_share(),
                    m.stats.as_ref().map_or(String::new(), |p| format!(
                        ", precision {:.1} %, coverage {:.1} %",
                        100.0 * p.precision(),
                        100.0 * p.coverage()
                    )),
                );
                if on {
                    case.on.push(m);
                } else {
                    case.off.push(m);
                }
            }
        }
    }
    results.prefetch = cases;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect();
        assert!(parse_with(args(&["--runs", "0"]), false).is_err());
        assert!(parse_with(args(&["--capacity", "2000000"]), false).is_err());
        assert!(parse_with(args(&["--only", "nothing"]), false).is_err());
        assert!(parse_with(args(&["--after", "0"]), false).is_err());
        let s = parse_with(args(&[]), false).unwrap().unwrap();
        assert_eq!(
            (s.keys, s.capacity, s.life, s.after),
            (1_000_000, 100_000, 1_000_000, 10_000)
        );
        assert_eq!((s.runs, s.load_runs, s.entries), (3, 5, 1_000_000));
        assert_eq!(s.only.len(), 3);
        let s = parse_with(args(&["--only", "load,prefetch", "--trace", "none"]), true)
            .unwrap()
            .unwrap();
        assert!(!s.runs_part(Part::Restart) && s.runs_part(Part::Load));
        assert!(s.trace.is_none() && s.quick);
        assert_eq!((s.runs, s.keys, s.sessions), (1, 100_000, 2_000));
        assert!(parse_with(args(&["--help"]), false).unwrap().is_none());
    }
}
