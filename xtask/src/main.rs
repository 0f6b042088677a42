//! `cargo xtask <command>`: the project's automation, in Rust so it runs
//! wherever cargo does.
//!
//! - `test`: every test in the workspace, with every feature (the README's
//!   test command);
//! - `ci`: what CI checks: formatting, clippy with warnings denied, the
//!   tests, and the docs with warnings denied;
//! - `bench hit-ratio`: replays the public traces through tiercache and
//!   its peers (the `simulate` binary of `benches/`) and writes
//!   `docs/benchmarks/hit-ratio.md`, its JSON and one SVG plot per trace.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test               run every test of the workspace with all features
  ci                 fmt check, clippy -D warnings, tests, docs -D warnings
  bench hit-ratio    hit ratio on the traces in ../shared/traces: writes
                     docs/benchmarks/hit-ratio.{md,json} and the plots
                     (arguments after it go to the simulator, e.g. --plot-points 5)";

/// Where `bench hit-ratio` writes, relative to the workspace root.
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
/// which nextest does not run.
fn test(extra: &[String]) -> Result<()> {
    if has_nextest() {
        let mut cmd = cargo();
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
        ]);
        cmd.args(extra);
        run(cmd)?;
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--workspace",
            "--all-features",
            "--lib",
            "--bins",
            "--tests",
        ]);
        cmd.args(extra);
        run(cmd)?;
    }
    let mut doc = cargo();
    doc.args(["test", "--workspace", "--all-features", "--doc"]);
    run(doc)
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
        Some(other) => bail!("unknown bench `{other}`\n\n{USAGE}"),
        None => bail!("which bench?\n\n{USAGE}"),
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
        .arg(BENCH_DIR);
    cmd.args(extra);
    run(cmd)
}
