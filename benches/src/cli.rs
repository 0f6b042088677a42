//! What the benchmark binaries share on their command line: a `main` that
//! prints its usage or its error, counts, and where the report goes.

use std::path::Path;
use std::process::ExitCode;

use crate::provenance::write_file;

/// Runs a benchmark binary: `parse` reads the arguments (`Ok(None)` asks
/// for `usage`, which is printed), then `run` does the work. An error
/// from either is printed after the binary's `name`, and fails the
/// process.
pub fn bench_main<S>(
    name: &str,
    usage: &str,
    parse: impl FnOnce(Vec<String>) -> Result<Option<S>, String>,
    run: impl FnOnce(S) -> Result<(), String>,
) -> ExitCode {
    let outcome = parse(std::env::args().skip(1).collect()).and_then(|settings| match settings {
        Some(settings) => run(settings),
        None => {
            println!("{usage}");
            Ok(())
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{name}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A count from the command line, with `_` allowed between digits.
pub fn parse_count(text: &str) -> Result<usize, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

/// Writes a report: its `markdown` to `out` (to stdout without one) and its
/// `json` text to `json_out` if given, telling stderr, after the binary's
/// `name`, where each went.
pub fn write_report(
    name: &str,
    out: Option<&Path>,
    markdown: &str,
    json_out: Option<&Path>,
    json: &str,
) -> Result<(), String> {
    match out {
        Some(path) => {
            write_file(path, markdown)?;
            eprintln!("{name}: wrote {}", path.display());
        }
        None => print!("{markdown}"),
    }
    if let Some(path) = json_out {
        write_file(path, json)?;
        eprintln!("{name}: wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_may_group_digits() {
        assert_eq!(parse_count("20_000"), Ok(20_000));
        assert!(parse_count("-1").unwrap_err().contains("not a number"));
    }
}
