//! `compression`: throughput of each algorithm of `cache-compress`
//! through its `Compressor` against the direct calls of its library
//! (lz4_flex, flate2, zstd) on the same data with the same settings, the
//! bytes each saves, and what the compression layer's sampling saves on
//! incompressible values.
//!
//! ```text
//! cargo run --release -p tiercache-benches --bin compression -- \
//!     --out docs/benchmarks/compression.md --json docs/benchmarks/compression.json
//! ```
//!
//! Every measurement repeats one call for a fixed time after a warm-up
//! call; each is repeated `--runs` times, ours and the direct call taking
//! turns, and the report gives the medians. Its method section states every
//! setting; run with `--help` for the options. `cargo xtask bench
//! compression` runs it and writes `docs/benchmarks/compression.md`.

mod data;
mod measure;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tiercache_benches::{bench_main, parse_count, write_report};

use crate::data::Kind;
use crate::measure::{Algorithm, Side, Subject, insert_micros};
use crate::report::{LayerRow, Report, Row};

const USAGE: &str = "\
usage: compression [options]

Measures compression and decompression throughput of each algorithm through
cache-compress's Compressor and through its library's direct calls, and
writes a Markdown report (on stdout without --out).

options:
  --millis MS    timed phase of each measurement (default 120)
  --runs N       repetitions of each measurement; medians are reported (default 7)
  --sizes LIST   input sizes in bytes, comma-separated (default 4096,65536,1048576)
  --out PATH     write the Markdown report here
  --json PATH    also write the figures as JSON
  -h, --help     this text";

/// The seed of every input.
pub(crate) const SEED: u64 = 0x636f_6d70_7265_7373;
/// The size of the values the layer section inserts.
pub(crate) const LAYER_VALUE_BYTES: usize = 1 << 20;

/// The command line.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) measure: Duration,
    pub(crate) runs: usize,
    pub(crate) sizes: Vec<usize>,
    out: Option<PathBuf>,
    json: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            measure: Duration::from_millis(120),
            runs: 7,
            sizes: vec![4 << 10, 64 << 10, 1 << 20],
            out: None,
            json: None,
        }
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    bench_main("compression", USAGE, parse, |settings| {
        run(&settings, started)
    })
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Settings>, String> {
    let mut s = Settings::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--millis" => {
                s.measure = Duration::from_millis(parse_count(&value("--millis")?)? as u64)
            }
            "--runs" => s.runs = parse_count(&value("--runs")?)?,
            "--sizes" => {
                s.sizes = value("--sizes")?
                    .split(',')
                    .map(parse_count)
                    .collect::<Result<_, _>>()?;
            }
            "--out" => s.out = Some(value("--out")?.into()),
            "--json" => s.json = Some(value("--json")?.into()),
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if s.runs == 0 || s.measure.is_zero() || s.sizes.is_empty() || s.sizes.contains(&0) {
        return Err("--runs, --millis and every size must be above zero".into());
    }
    Ok(Some(s))
}

fn run(settings: &Settings, started: Instant) -> Result<(), String> {
    let inputs: Vec<(Kind, usize, Vec<u8>)> = Kind::ALL
        .iter()
        .flat_map(|&kind| {
            settings
                .sizes
                .iter()
                .map(move |&size| (kind, size, kind.generate(size, SEED)))
        })
        .collect();
    let mut subjects = Vec::new();
    let mut rows = Vec::new();
    for algorithm in Algorithm::ALL {
        for (kind, size, data) in &inputs {
            let subject = Subject::new(algorithm, data)?;
            rows.push(Row::new(&subject, *kind, *size));
            subjects.push(subject);
        }
    }
    let mut layer_rows = LayerRow::all();

    for run in 1..=settings.runs {
        // Odd runs time ours first, even runs the direct call first, so
        // neither side always follows the other's cache footprint.
        let order = if run % 2 == 1 {
            [Side::Ours, Side::Direct]
        } else {
            [Side::Direct, Side::Ours]
        };
        for (subject, row) in subjects.iter().zip(&mut rows) {
            for side in order {
                let f = subject.compress(side, settings.measure);
                row.compress.push(side, f);
                let f = subject.decompress(side, settings.measure);
                row.decompress.push(side, f);
            }
        }
        for row in &mut layer_rows {
            let value = row.kind.generate(LAYER_VALUE_BYTES, SEED).into();
            row.micros
                .push(insert_micros(row.variant, &value, settings.measure));
        }
        eprintln!(
            "compression: run {run} of {} done after {:.0} s",
            settings.runs,
            started.elapsed().as_secs_f64()
        );
    }

    let report = Report {
        settings: settings.clone(),
        machine: report::machine(),
        rows,
        layer: layer_rows,
        elapsed_s: started.elapsed().as_secs_f64(),
    };
    write_report(
        "compression",
        settings.out.as_deref(),
        &report.markdown(),
        settings.json.as_deref(),
        &report.json(),
    )?;
    Ok(())
}
