//! `policies`: what the write policies cost in front of a slow store.
//! Insert throughput and latency of a memory-only `tiercache::Cache`
//! under write-back, write-through and write-around, against a store that
//! answers each call after 1 ms; write-back's time until the store holds
//! everything, its group commit, and its log's bytes per queued write.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin policies -- \
//!     --out docs/benchmarks/policies.md --json docs/benchmarks/policies.json
//! ```
//!
//! Every measurement is a fresh store and cache (and log) into which 64
//! tokio tasks insert distinct keys, each awaiting its insert before the
//! next, then `flush`; the setups take turns, each run starting with the
//! next one, and the report gives the medians over the runs. A raw redb
//! baseline (write transactions shaped like the log's group commits, on
//! the same disk) says what a commit costs. `cargo xtask bench policies`
//! runs it; run with `--help` for the options.

mod measure;
mod procfs;
mod report;
mod store;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use tiercache_benches::{Machine, bench_main, locked_versions, parse_count, workspace_root};

use crate::measure::{Setup, Shape, log_size, measure, raw_commits};
use crate::report::{Raw, Results};

const USAGE: &str = "\
usage: policies [options]

Measures inserts of a memory-only tiercache::Cache under WritePolicy::Back,
Through and Around in front of a store with 1 ms latency per call, from 64
tokio tasks, and write-back's log; writes a Markdown report (on stdout
without --out).

options:
  --inserts N    inserts of each measurement, distinct keys (default 200000)
  --runs N       measurements of each setup; medians are reported (default 3)
  --held N       keys queued while the store is held down, for the log's
                 bytes per write (default 64000; below write-back's 100,000)
  --commits N    transactions of each raw redb baseline (default 300)
  --dir DIR      where the logs go (default: target/bench-policies); on the
                 disk, since tmpfs makes fsync free
  --tmpfs DIR    where the diagnostic tmpfs log goes (default: /dev/shm if
                 present); `none` leaves that row out
  --out PATH     write the Markdown report here
  --json PATH    also write the figures as JSON
  -h, --help     this text

A short run: --inserts 20000 --runs 1 --held 6400 --commits 50";

/// The raw redb baselines: records per transaction, and how they are
/// written.
const RAW: [(usize, Shape); 3] = [(1, Shape::Lean), (64, Shape::Lean), (64, Shape::AsTheLog)];

pub(crate) struct Settings {
    pub(crate) inserts: u64,
    pub(crate) runs: usize,
    pub(crate) held: u64,
    pub(crate) commits: usize,
    dir: PathBuf,
    tmpfs: Option<PathBuf>,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn parse(args: Vec<String>) -> Result<Option<Settings>, String> {
    let shm = Path::new("/dev/shm");
    let mut s = Settings {
        inserts: 200_000,
        runs: 3,
        held: 64_000,
        commits: 300,
        dir: workspace_root().join("target/bench-policies"),
        tmpfs: shm.is_dir().then(|| shm.to_path_buf()),
        out: None,
        json: None,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--inserts" => s.inserts = parse_count(&value("--inserts")?)? as u64,
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--held" => s.held = parse_count(&value("--held")?)? as u64,
            "--commits" => s.commits = parse_count(&value("--commits")?)?,
            "--dir" => s.dir = value("--dir")?.into(),
            "--tmpfs" => {
                let dir = value("--tmpfs")?;
                s.tmpfs = (dir != "none").then(|| dir.into());
            }
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    let tasks = measure::TASKS as u64;
    if s.runs == 0 || s.commits == 0 {
        return Err("--runs and --commits must be above zero".into());
    }
    if s.inserts < tasks {
        return Err(format!("--inserts must be at least {tasks}, one per task"));
    }
    if s.held < 2 * tasks || s.held >= 100_000 {
        return Err(format!(
            "--held must be at least {} and below write-back's 100,000 dirty keys",
            2 * tasks
        ));
    }
    Ok(Some(s))
}

fn main() -> ExitCode {
    bench_main("policies", USAGE, parse, |s| run(&s))
}

/// A fresh directory for this run's files inside `parent`.
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
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let disk = scratch(&s.dir)?;
    let tmpfs = s.tmpfs.as_deref().map(scratch).transpose()?;
    let mut setups = vec![Setup::Back, Setup::Through, Setup::Around];
    if tmpfs.is_some() {
        setups.push(Setup::BackTmpfs);
    }
    let mut results = Results {
        measured: setups.iter().map(|&setup| (setup, Vec::new())).collect(),
        logs: Vec::new(),
        raw: RAW
            .iter()
            .map(|&(group, shape)| (group, shape, false))
            // The log's shape on tmpfs too: redb's own CPU work per commit.
            .chain(tmpfs.is_some().then_some((64, Shape::AsTheLog, true)))
            .map(|(group, shape, on_tmpfs)| Raw {
                group,
                shape,
                on_tmpfs,
                median_s: Vec::new(),
                p99_s: Vec::new(),
            })
            .collect(),
        workers,
        dir: s.dir.clone(),
        tmpfs: s.tmpfs.clone(),
    };
    for run in 0..s.runs {
        // Each run starts with the next setup, so that none always meets
        // the same moment of the machine (or of the disk's cache).
        for i in 0..setups.len() {
            let index = (run + i) % setups.len();
            let setup = setups[index];
            let dir = match (setup, &tmpfs) {
                (Setup::BackTmpfs, Some(t)) => t.path(),
                _ => disk.path(),
            };
            let m = runtime.block_on(measure(setup, dir, run, s.inserts))?;
            eprintln!(
                "policies: run {}: {}: {:.0} inserts/s, p50 {:.0} µs, p99 {:.0} µs, \
                 store holds all after {:.2} s",
                run + 1,
                setup.label(),
                m.rate(),
                m.p50_us,
                m.p99_us,
                m.end_to_end_s
            );
            results.measured[index].1.push(m);
        }
        let size = runtime.block_on(log_size(disk.path(), run, s.held))?;
        eprintln!(
            "policies: run {}: log {:.0} bytes per queued write ({} queued)",
            run + 1,
            size.per_write(),
            size.queued
        );
        results.logs.push(size);
        for raw in &mut results.raw {
            let dir = match (raw.on_tmpfs, &tmpfs) {
                (true, Some(t)) => t.path(),
                _ => disk.path(),
            };
            let path = dir.join(format!(
                "raw-{}-{:?}-{}-{run}.redb",
                raw.group, raw.shape, raw.on_tmpfs
            ));
            let times = raw_commits(&path, raw.group, raw.shape, s.commits)?;
            raw.median_s
                .push(tiercache_benches::median(times.iter().copied()));
            raw.p99_s
                .push(times[(times.len() * 99).div_ceil(100).max(1) - 1]);
            eprintln!(
                "policies: run {}: raw redb, {} record(s) per commit ({:?}{}): {:.3} ms",
                run + 1,
                raw.group,
                raw.shape,
                if raw.on_tmpfs { ", tmpfs" } else { "" },
                raw.median_s.last().copied().unwrap_or(f64::NAN) * 1e3
            );
        }
    }
    drop(runtime);
    let elapsed = started.elapsed().as_secs_f64();
    let machine = Machine::collect(locked_versions(&["tokio", "redb"]));
    let (markdown, figures) = report::report(s, &machine, &results, elapsed);
    tiercache_benches::write_report(
        "policies",
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
        assert!(parse(args(&["--runs", "0"])).is_err());
        assert!(parse(args(&["--held", "100000"])).is_err());
        assert!(parse(args(&["--inserts", "10"])).is_err());
        let s = parse(args(&["--inserts", "20_000", "--tmpfs", "none"]))
            .unwrap()
            .unwrap();
        assert_eq!((s.inserts, s.runs, s.held), (20_000, 3, 64_000));
        assert!(s.tmpfs.is_none());
        assert!(parse(args(&["--help"])).unwrap().is_none());
    }
}
