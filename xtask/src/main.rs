//! `cargo xtask <command>`: the project's automation, in Rust so it runs
//! wherever cargo does.
//!
//! - `test`: every test in the workspace, with every feature (the README's
//!   test command);
//! - `ci`: what CI checks: formatting, clippy with warnings denied, the
//!   tests, and the docs with warnings denied.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test    run every test of the workspace with all features
  ci      fmt check, clippy -D warnings, tests, docs -D warnings";

fn main() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = workspace_root();
    env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("ci") => ci(),
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
