//! `cargo xtask <command>`: the project's automation, in Rust so it runs
//! wherever cargo does.
//!
//! - `test`: every test in the workspace, with every feature (the README's
//!   test command); a group of tests whose outside programs are missing
//!   (Redis) is skipped and said so, or fails the run with `--redis` (see
//!   `needs.rs`);
//! - `ci`: what CI checks: formatting, clippy with warnings denied, the
//!   tests, and the docs with warnings denied;
//! - `bench hit-ratio`: replays the public traces through tiercache and
//!   its peers (the `simulate` binary of `benches/`) and writes
//!   `docs/benchmarks/hit-ratio.md`, its JSON and one SVG plot per trace;
//! - `bench throughput`: the `throughput` criterion bench and the
//!   `memory_per_entry` binary of `benches/`, then `bench_report` writes
//!   `docs/benchmarks/throughput.md` and its JSON;
//! - `bench tiers`: the `tiers` binary of `benches/` measures the redb tier
//!   against raw redb and the Redis tier against `redis-benchmark`, and
//!   writes `docs/benchmarks/tiers.md` and its JSON;
//! - `bench compression`: the `compression` binary of `benches/` measures
//!   each algorithm of `cache-compress` against its library's direct
//!   calls, and writes `docs/benchmarks/compression.md` and its JSON;
//! - `bench analytics`: the `analytics` binary of `benches/` measures the
//!   facade's throughput with analytics off and on, and writes
//!   `docs/benchmarks/analytics.md` and its JSON;
//! - `bench facade`: the `facade` binary of `benches/` measures the
//!   facade's `get_with` against `moka::future::Cache::get_with` from 64
//!   tokio tasks, and writes `docs/benchmarks/facade.md` and its JSON;
//! - `bench policies`: the `policies` binary of `benches/` measures inserts
//!   under write-back, write-through and write-around in front of a store
//!   with 1 ms latency, write-back's group commit and its log's size, and
//!   writes `docs/benchmarks/policies.md` and its JSON;
//! - `bench load-protection`: the `load-protection` binary of `benches/`
//!   measures negative caching and refresh-ahead in front of a 2 ms
//!   service beside moka, and writes `docs/benchmarks/load-protection.md`
//!   and its JSON;
//! - `bench warm`: the `warm` binary of `benches/` measures the hit ratio
//!   after a restart cold, from a snapshot and from a warmer over the redb
//!   tier, how fast a snapshot loads, and the prefetcher on user sessions
//!   and on independent Zipf requests, and writes `docs/benchmarks/warm.md`
//!   and its JSON.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod needs;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test               run every test of the workspace with all features; tests
                     whose outside programs are missing (redis-server) are
                     skipped and said so; --redis makes that a failure
  ci                 fmt check, clippy -D warnings, tests, docs -D warnings
  bench              every bench below, in turn
  bench hit-ratio    hit ratio on the traces in ../shared/traces: writes
                     docs/benchmarks/hit-ratio.{md,json} and the plots
                     (arguments after it go to the simulator, e.g. --plot-points 5)
  bench throughput   throughput of tiercache and its peers at 1 and 2 threads,
                     and memory per entry: writes docs/benchmarks/throughput.{md,json}
                     (arguments after it go to criterion, e.g. a filter: get/1t)
  bench tiers        the redb tier against raw redb, the Redis tier against
                     redis-benchmark: writes docs/benchmarks/tiers.{md,json}
                     (arguments after it go to the binary, e.g. --only redb)
  bench compression  lz4, gzip and zstd through cache-compress against their
                     libraries' direct calls: writes docs/benchmarks/compression.{md,json}
                     (arguments after it go to the binary, e.g. --runs 3)
  bench analytics    a memory-only Cache with analytics off and on: writes
                     docs/benchmarks/analytics.{md,json}
                     (arguments after it go to the binary, e.g. --runs 5)
  bench facade       get_with of a memory-only Cache against moka::future::Cache
                     from 64 tokio tasks at 1 and 2 worker threads: writes
                     docs/benchmarks/facade.{md,json}
                     (arguments after it go to the binary; a short run:
                     --ops 2000 --runs 3)
  bench policies     inserts under WritePolicy::Back, Through and Around in front
                     of a 1 ms store from 64 tokio tasks, write-back's group
                     commit and log size: writes docs/benchmarks/policies.{md,json}
                     (arguments after it go to the binary; a short run:
                     --inserts 20000 --runs 1)
  bench load-protection
                     negative caching and refresh-ahead of a Cache in front of a
                     2 ms service, from 64 tokio tasks, beside moka::future::Cache:
                     writes docs/benchmarks/load-protection.{md,json}
                     (arguments after it go to the binary; a short run:
                     TIERCACHE_BENCH_QUICK=1 in the environment)
  bench warm         the hit ratio after a restart cold, from a snapshot and from a
                     warmer over redb; snapshot load speed; the prefetcher on user
                     sessions and independent Zipf: writes docs/benchmarks/warm.{md,json}
                     (arguments after it go to the binary; a short run:
                     TIERCACHE_BENCH_QUICK=1 in the environment)";

/// Where the benches write their reports, relative to the workspace root.
const BENCH_DIR: &str = "docs/benchmarks";

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    // xtask lives one level below the root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs the unit, integration and doc tests of every crate with every
/// feature. cargo-nextest runs them when installed (it isolates each test
/// in its own process); doc tests always go through `cargo test --doc`,
/// which nextest does not run. A test group whose outside programs are
/// missing (see [`needs::NEEDS`]) is left out and reported as skipped,
/// unless its flag (`--redis`) or its environment variable requires it.
fn test(args: &[String]) -> Result<()> {
    let (flags, extra) = needs::split_flags(args);
    let skipped = needs::plan(needs::NEEDS, &flags, |v| env::var(v).ok(), needs::runs)?;
    let nextest = has_nextest();
    let mut lines = Vec::new();
    for group in &skipped {
        let count = if nextest {
            count_tests(group.need.tests)
        } else {
            None
        };
        lines.push(group.line(count));
    }
    for line in &lines {
        eprintln!("{line}");
    }
    if nextest {
        let mut cmd = cargo();
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
        ]);
        if let Some(filter) = needs::skip_filter(&skipped) {
            cmd.args(["-E", &filter]);
        }
        cmd.args(&extra);
        require_given(&mut cmd, &flags);
        run(cmd)?;
    } else {
        eprintln!(
            "xtask: cargo-nextest not found; using cargo test, which reports skipped tests as passed"
        );
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--workspace",
            "--all-features",
            "--lib",
            "--bins",
            "--tests",
        ]);
        cmd.args(&extra);
        require_given(&mut cmd, &flags);
        run(cmd)?;
    }
    let mut doc = cargo();
    doc.args(["test", "--workspace", "--all-features", "--doc"]);
    run(doc)?;
    for line in &lines {
        eprintln!("{line}");
    }
    Ok(())
}

/// Passes a group's flag on to the tests as its environment variable, so
/// that a test which cannot reach the program fails instead of returning.
fn require_given(cmd: &mut Command, flags: &[String]) {
    for need in needs::NEEDS {
        if flags.iter().any(|f| f == need.flag) {
            cmd.env(need.env, "1");
        }
    }
}

/// How many tests the nextest filter expression `filter` selects (this
/// builds the tests, which the run then reuses); `None` if nextest cannot
/// say.
fn count_tests(filter: &str) -> Option<usize> {
    let out = cargo()
        .args([
            "nextest",
            "list",
            "--workspace",
            "--all-features",
            "--message-format",
            "oneline",
            "-E",
            filter,
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    })
}

fn ci() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    test(&[])?;
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--all-features", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(doc)
}

fn bench(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("hit-ratio") => hit_ratio(&args[1..]),
        Some("throughput") => throughput(&args[1..]),
        Some("tiers") => tiers(&args[1..]),
        Some("compression") => compression(&args[1..]),
        Some("analytics") => analytics(&args[1..]),
        Some("facade") => facade(&args[1..]),
        Some("policies") => policies(&args[1..]),
        Some("load-protection") => load_protection(&args[1..]),
        Some("warm") => warm(&args[1..]),
        Some(other) => bail!("unknown bench `{other}`\n\n{USAGE}"),
        // Every bench, in the order the documents were written.
        None => {
            hit_ratio(&[])?;
            throughput(&[])?;
            tiers(&[])?;
            compression(&[])?;
            analytics(&[])?;
            facade(&[])?;
            policies(&[])?;
            load_protection(&[])?;
            warm(&[])
        }
    }
}

/// Runs the trace simulator over every row of the traces README's
/// reference table, in release mode (a debug build replays the 4M-request
/// traces many times slower).
fn hit_ratio(extra: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "--package",
        "tiercache-benches",
        "--bin",
        "simulate",
        "--",
        "--all",
    ]);
    cmd.arg("--markdown-out")
        .arg(format!("{BENCH_DIR}/hit-ratio.md"))
        .arg("--json")
        .arg(format!("{BENCH_DIR}/hit-ratio.json"))
        .arg("--plot-dir")
        .arg(BENCH_DIR)
        // Seeded policies move by up to a few points between runs on the
        // rows that sit on a knife edge: the medians of five are stable.
        .args(["--runs", "5"]);
    cmd.args(extra);
    run(cmd)
}

/// Criterion's settings for `bench throughput`: 24 benchmarks (3 workloads,
/// 2 thread counts, 4 caches) at about 5 s each, a couple of minutes in
/// all. Criterion's minimum of 10 samples is plenty for medians.
const THROUGHPUT_CRITERION_ARGS: [&str; 6] = [
    "--warm-up-time",
    "1",
    "--measurement-time",
    "3",
    "--sample-size",
    "10",
];

/// Runs the `throughput` criterion bench and `memory_per_entry`, then
/// `bench_report`, which reads their results and writes the report. Both
/// are built first so that the time the report gives is the measuring
/// alone.
fn throughput(extra: &[String]) -> Result<()> {
    let mut build = cargo();
    build.args([
        "bench",
        "--package",
        "tiercache-benches",
        "--bench",
        "throughput",
        "--no-run",
    ]);
    run(build)?;
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "tiercache-benches",
        "--bins",
    ]);
    run(build)?;

    let started = Instant::now();
    let mut bench = cargo();
    bench.args([
        "bench",
        "--package",
        "tiercache-benches",
        "--bench",
        "throughput",
        "--",
    ]);
    bench.args(THROUGHPUT_CRITERION_ARGS).args(extra);
    run(bench)?;

    let memory_json = target_dir().join("bench-throughput/memory-per-entry.json");
    let mut memory = release_bin("memory_per_entry");
    memory.arg("--json").arg(&memory_json);
    run(memory)?;
    let elapsed = started.elapsed().as_secs_f64();

    let mut report = release_bin("bench_report");
    report
        .arg("--criterion")
        .arg(target_dir().join("criterion"))
        .arg("--memory")
        .arg(&memory_json)
        .arg("--out")
        .arg(format!("{BENCH_DIR}/throughput.md"))
        .arg("--json")
        .arg(format!("{BENCH_DIR}/throughput.json"))
        .arg("--elapsed")
        .arg(format!("{elapsed:.0}"));
    run(report)?;
    eprintln!("xtask: measured in {elapsed:.0} s");
    Ok(())
}

/// Builds the `tiers` binary in release mode, then runs it: it measures
/// the byte tiers against their baselines and writes the report itself.
fn tiers(extra: &[String]) -> Result<()> {
    // The redb files go under the target directory, on the workspace's
    // disk: a `/tmp` on tmpfs would make the inserts' `fsync`s free.
    let dir = target_dir().join("bench-tiers");
    let args = ["--dir".into(), dir.display().to_string()];
    self_reporting_bench("tiers", &args, extra)
}

/// Builds the `analytics` binary in release mode, then runs it: it
/// measures what the facade's analytics cost on the hot path and writes the
/// report itself.
fn analytics(extra: &[String]) -> Result<()> {
    self_reporting_bench("analytics", &[], extra)
}

/// Builds the `facade` binary in release mode, then runs it: it measures
/// the facade's `get_with` against moka's and writes the report itself.
fn facade(extra: &[String]) -> Result<()> {
    self_reporting_bench("facade", &[], extra)
}

/// Builds the `policies` binary in release mode, then runs it: it measures
/// the write policies in front of a slow store and writes the report
/// itself.
fn policies(extra: &[String]) -> Result<()> {
    // Write-back's logs go under the target directory, on the workspace's
    // disk: a `/tmp` on tmpfs would make their commits' `fsync`s free.
    let dir = target_dir().join("bench-policies");
    let args = ["--dir".into(), dir.display().to_string()];
    self_reporting_bench("policies", &args, extra)
}

/// Builds the `load-protection` binary in release mode, then runs it: it
/// measures negative caching and refresh-ahead in front of a slow service
/// and writes the report itself.
fn load_protection(extra: &[String]) -> Result<()> {
    self_reporting_bench("load-protection", &[], extra)
}

/// Builds the `warm` binary in release mode, then runs it: it measures
/// restarts, snapshot loads and the prefetcher, and writes the report
/// itself.
fn warm(extra: &[String]) -> Result<()> {
    // The redb files and snapshots go under the target directory, on the
    // workspace's disk, as a deployed service's would be.
    let dir = target_dir().join("bench-warm");
    let args = ["--dir".into(), dir.display().to_string()];
    self_reporting_bench("warm", &args, extra)
}

/// Builds the `compression` binary in release mode, then runs it: it
/// measures the algorithms against their libraries and writes the report
/// itself.
fn compression(extra: &[String]) -> Result<()> {
    self_reporting_bench("compression", &[], extra)
}

/// Builds the benches binary `name` in release mode and runs it with
/// `--out docs/benchmarks/NAME.md --json docs/benchmarks/NAME.json`, then
/// `args` and `extra`; the binary writes its report itself.
fn self_reporting_bench(name: &str, args: &[String], extra: &[String]) -> Result<()> {
    let mut build = cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "tiercache-benches",
        "--bin",
        name,
    ]);
    run(build)?;
    let started = Instant::now();
    let mut bench = release_bin(name);
    bench
        .arg("--out")
        .arg(format!("{BENCH_DIR}/{name}.md"))
        .arg("--json")
        .arg(format!("{BENCH_DIR}/{name}.json"))
        .args(args)
        .args(extra);
    run(bench)?;
    eprintln!(
        "xtask: measured in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo run --release` of one binary of `benches/`, quietly: it was
/// built already.
fn release_bin(name: &str) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "tiercache-benches",
        "--bin",
        name,
        "--",
    ]);
    cmd
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target`
/// under the workspace root (the current directory).
fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}
