//! The `compression` report: the figures as Markdown, with the method and
//! the machine they come from, and as JSON.

use std::fmt::Write as _;

use cache_compress::{DEFAULT_MAX_DECOMPRESSED_LEN, FRAME_HEADER_LEN};
use serde_json::{Value, json};
use tiercache_benches::{Machine, locked_versions, median};

use crate::data::Kind;
use crate::measure::{Algorithm, LayerVariant, Side, Subject};
use crate::{LAYER_VALUE_BYTES, SEED, Settings};

/// The least the issue asks of ours ÷ direct, in both directions.
const TARGET: f64 = 0.9;

/// Where and with what the figures were taken.
pub(crate) fn machine() -> Machine {
    Machine::collect(locked_versions(&[
        "lz4_flex", "flate2", "zlib-rs", "zstd", "zstd-sys",
    ]))
}

/// Every run's throughput of both sides of one comparison, MB/s.
#[derive(Debug, Clone, Default)]
pub(crate) struct Runs {
    pub(crate) ours: Vec<f64>,
    pub(crate) direct: Vec<f64>,
}

impl Runs {
    /// Records one run of one side.
    pub(crate) fn push(&mut self, side: Side, mb_per_s: f64) {
        match side {
            Side::Ours => self.ours.push(mb_per_s),
            Side::Direct => self.direct.push(mb_per_s),
        }
    }

    fn ours(&self) -> f64 {
        median(self.ours.iter().copied())
    }

    fn direct(&self) -> f64 {
        median(self.direct.iter().copied())
    }

    /// Ours ÷ direct, from the medians.
    pub(crate) fn ratio(&self) -> f64 {
        self.ours() / self.direct()
    }

    fn json(&self) -> Value {
        json!({
            "ours_mb_per_s": self.ours(),
            "direct_mb_per_s": self.direct(),
            "ratio": self.ratio(),
            "ours_runs": self.ours,
            "direct_runs": self.direct,
        })
    }
}

/// One algorithm on one input.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) algorithm: Algorithm,
    pub(crate) kind: Kind,
    pub(crate) size: usize,
    /// Our frame's length, header included.
    pub(crate) frame_len: usize,
    /// The library's compressed length.
    pub(crate) direct_len: usize,
    pub(crate) compress: Runs,
    pub(crate) decompress: Runs,
}

impl Row {
    /// A row for `subject`, with no runs yet.
    pub(crate) fn new(subject: &Subject<'_>, kind: Kind, size: usize) -> Row {
        Row {
            algorithm: subject.algorithm,
            kind,
            size,
            frame_len: subject.frame.len(),
            direct_len: subject.block.len(),
            compress: Runs::default(),
            decompress: Runs::default(),
        }
    }

    /// Stored bytes ÷ original bytes of our frame.
    fn stored(&self) -> f64 {
        self.frame_len as f64 / self.size as f64
    }
}

/// Inserts of one kind of 1 MiB value through one layer variant.
#[derive(Debug, Clone)]
pub(crate) struct LayerRow {
    pub(crate) kind: Kind,
    pub(crate) variant: LayerVariant,
    /// Each run's mean microseconds per insert.
    pub(crate) micros: Vec<f64>,
}

impl LayerRow {
    /// Every kind with every variant, with no runs yet.
    pub(crate) fn all() -> Vec<LayerRow> {
        Kind::ALL
            .iter()
            .flat_map(|&kind| {
                LayerVariant::ALL.iter().map(move |&variant| LayerRow {
                    kind,
                    variant,
                    micros: Vec::new(),
                })
            })
            .collect()
    }

    fn median(&self) -> f64 {
        median(self.micros.iter().copied())
    }
}

/// Everything the report says.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) settings: Settings,
    pub(crate) machine: Machine,
    pub(crate) rows: Vec<Row>,
    pub(crate) layer: Vec<LayerRow>,
    /// The whole run, in seconds.
    pub(crate) elapsed_s: f64,
}

/// `4 KiB`, `1 MiB`, `1500 B`.
fn size(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn verdict(ratio: f64) -> &'static str {
    if ratio >= TARGET {
        "met"
    } else {
        "**not met**"
    }
}

/// `1,234`: throughputs to the MB/s.
fn mb(v: f64) -> String {
    tiercache_benches::thousands(v.round() as u64)
}

impl Report {
    /// The report as Markdown.
    pub(crate) fn markdown(&self) -> String {
        let mut out = self.machine.report_header(
            "Compression: cache-compress against its libraries",
            "compression",
            self.elapsed_s,
        );
        self.summary(&mut out);
        self.method(&mut out);
        for algorithm in Algorithm::ALL {
            self.table(&mut out, algorithm);
        }
        self.layer_table(&mut out);
        self.every_run(&mut out);
        out
    }

    fn rows_of(&self, algorithm: Algorithm) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |r| r.algorithm.name() == algorithm.name())
    }

    fn summary(&self, out: &mut String) {
        out.push_str("## Summary\n\n");
        let _ = writeln!(
            out,
            "Ours ÷ direct is the throughput through the `Compressor` trait divided by the \
             library's own calls on the same data with the same settings; the issue's target is \
             at least {TARGET}× in both directions. The worst row of each algorithm is given; \
             the tables below have every row. Stored ÷ original is the size of our frame (its \
             {FRAME_HEADER_LEN}-byte header included) over the input's, for the JSON-like \
             input.\n"
        );
        let _ = write!(
            out,
            "| algorithm | setting | worst compress ratio | worst decompress ratio | rows meeting \
             the target |"
        );
        for &s in &self.settings.sizes {
            let _ = write!(out, " JSON stored ÷ original, {} |", size(s));
        }
        out.push_str("\n|---|---|---:|---:|---:|");
        for _ in &self.settings.sizes {
            out.push_str("---:|");
        }
        out.push('\n');
        for algorithm in Algorithm::ALL {
            let rows: Vec<&Row> = self.rows_of(algorithm).collect();
            let worst =
                |f: fn(&Row) -> f64| rows.iter().map(|r| f(r)).fold(f64::INFINITY, f64::min);
            let met = rows
                .iter()
                .map(|r| {
                    usize::from(r.compress.ratio() >= TARGET)
                        + usize::from(r.decompress.ratio() >= TARGET)
                })
                .sum::<usize>();
            let _ = write!(
                out,
                "| {} | {} | {:.2}× | {:.2}× | {met} of {} |",
                algorithm.name(),
                algorithm.setting(),
                worst(|r| r.compress.ratio()),
                worst(|r| r.decompress.ratio()),
                rows.len() * 2,
            );
            for r in rows.iter().filter(|r| r.kind == Kind::Json) {
                let _ = write!(out, " {:.3} |", r.stored());
            }
            out.push('\n');
        }
        out.push('\n');
    }

    fn method(&self, out: &mut String) {
        let s = &self.settings;
        let m = &self.machine;
        let sizes = s
            .sizes
            .iter()
            .map(|&n| size(n))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            out,
            "## Method

The `compression` binary of `benches/` (`benches/src/bin/compression/`) times each algorithm of
`cache-compress` two ways on the same inputs, one after the other, on the same machine, in
one thread.

- **Inputs** ({sizes}, fixed seed {SEED:#x}): *json*, a JSON array of user records (the same
  keys in each; ids, e-mail addresses, timestamps, a status, numbers and a few words of free
  text that vary), the kind of value an API cache holds; *random*, uniformly random bytes, which
  no algorithm compresses.
- **Ours**: `Compressor::compress` (the frame: a {FRAME_HEADER_LEN}-byte header, then the block)
  and `Compressor::decompress(frame, {max})`, which checks the header, the claimed length
  against the limit and the algorithm's expansion bound, decodes, and checks the decoded
  length.
- **Direct**, with the same settings:
  - lz4 (lz4_flex {lz4}, default features off, `std`, `safe-encode` and `safe-decode` on):
    `lz4_flex::block::compress(data)` and `lz4_flex::block::decompress(block, len)`;
  - gzip (flate2 {flate2} on zlib-rs {zlib}, level {gzip}): `write::GzEncoder` over a `Vec`,
    `write_all`, `finish`; `bufread::GzDecoder` over the block, `read_to_end` into a `Vec` with
    the original length as its capacity;
  - zstd (zstd {zstd}, zstd-sys {zstd_sys}, level {zstd_level}): `zstd::bulk::compress(data,
    level)` and `zstd::bulk::decompress(block, len)`.

  The decompressing side is given the original length on both sides, as a cache that stored
  it would be.
- **Timing**: each measurement makes one warm-up call, which also sizes batches of calls to
  about 2 ms, then runs batches until {millis} ms have passed; throughput is the original bytes
  of every timed call over the time they took, in MB/s (10⁶ bytes per second). The outputs go
  through `std::hint::black_box`.
- **Repeats**: {runs} runs; within a run every input and algorithm is measured ours then direct
  in odd runs and direct then ours in even runs. The tables give the median of each side over
  the runs, and the ratio is ours' median over direct's. The machine is shared with other
  work: compare ratios within a run, not absolute figures across runs.
- **The layer**: the mean time of one `Backend::insert` of a {layer} value (the same key each
  time) into a `MemoryBackend` with no layer, with `CompressionLayer::new(Lz4)` and its
  defaults (threshold 1 KiB, 10% minimum saving, values above 64 KiB judged from four 2 KiB
  chunks first), and with the same layer with sampling off, each called through
  `futures::executor::block_on`.

",
            max = tiercache_benches::thousands(DEFAULT_MAX_DECOMPRESSED_LEN as u64),
            lz4 = m.version("lz4_flex"),
            flate2 = m.version("flate2"),
            zlib = m.version("zlib-rs"),
            zstd = m.version("zstd"),
            zstd_sys = m.version("zstd-sys"),
            gzip = cache_compress::Gzip::DEFAULT_LEVEL,
            zstd_level = cache_compress::Zstd::DEFAULT_LEVEL,
            millis = s.measure.as_millis(),
            runs = s.runs,
            layer = size(LAYER_VALUE_BYTES),
        );
    }

    fn table(&self, out: &mut String, algorithm: Algorithm) {
        let _ = writeln!(
            out,
            "## {} ({})\n\nThroughput in MB/s of original bytes, medians of {} runs.\n",
            algorithm.name(),
            algorithm.setting(),
            self.settings.runs
        );
        out.push_str(
            "| input | size | compress ours | compress direct | ours ÷ direct | target ≥ 0.9× | \
             decompress ours | decompress direct | ours ÷ direct | target ≥ 0.9× | stored ÷ \
             original (ours, direct) |\n",
        );
        out.push_str("|---|---:|---:|---:|---:|---|---:|---:|---:|---|---:|\n");
        for r in self.rows_of(algorithm) {
            let (c, d) = (&r.compress, &r.decompress);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2}× | {} | {} | {} | {:.2}× | {} | {:.3}, {:.3} |",
                r.kind.name(),
                size(r.size),
                mb(c.ours()),
                mb(c.direct()),
                c.ratio(),
                verdict(c.ratio()),
                mb(d.ours()),
                mb(d.direct()),
                d.ratio(),
                verdict(d.ratio()),
                r.stored(),
                r.direct_len as f64 / r.size as f64,
            );
        }
        out.push('\n');
    }

    fn layer_table(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## The layer on {} values\n\nMean microseconds per insert, medians of {} runs. \
             A random value's sample does not compress, so the sampled layer stores it \
             without compressing it in full.\n",
            size(LAYER_VALUE_BYTES),
            self.settings.runs
        );
        out.push_str("| input | tier | µs per insert |\n|---|---|---:|\n");
        for r in &self.layer {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} |",
                r.kind.name(),
                r.variant.describe(),
                r.median()
            );
        }
        out.push('\n');
    }

    /// Every run's throughput, to show the spread behind the medians.
    fn every_run(&self, out: &mut String) {
        out.push_str("## Every run\n\nThroughput of each run, MB/s, in run order.\n\n");
        out.push_str("| algorithm | input | size | operation | side | runs |\n");
        out.push_str("|---|---|---:|---|---|---|\n");
        let join = |v: &[f64]| v.iter().map(|&x| mb(x)).collect::<Vec<_>>().join(", ");
        for r in &self.rows {
            for (op, runs) in [("compress", &r.compress), ("decompress", &r.decompress)] {
                for (side, figures) in [("ours", &runs.ours), ("direct", &runs.direct)] {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {op} | {side} | {} |",
                        r.algorithm.name(),
                        r.kind.name(),
                        size(r.size),
                        join(figures)
                    );
                }
            }
        }
        out.push('\n');
    }

    /// The report as JSON: the settings, the machine, and every run.
    pub(crate) fn json(&self) -> String {
        let s = &self.settings;
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "algorithm": r.algorithm.name(),
                    "setting": r.algorithm.setting(),
                    "input": r.kind.name(),
                    "bytes": r.size,
                    "frame_bytes": r.frame_len,
                    "direct_bytes": r.direct_len,
                    "compress": r.compress.json(),
                    "decompress": r.decompress.json(),
                })
            })
            .collect();
        let layer: Vec<Value> = self
            .layer
            .iter()
            .map(|r| {
                json!({
                    "input": r.kind.name(),
                    "tier": r.variant.describe(),
                    "micros_per_insert": r.median(),
                    "runs": r.micros,
                })
            })
            .collect();
        let figures = json!({
            "settings": {
                "measure_ms": s.measure.as_millis() as u64,
                "runs": s.runs,
                "sizes": s.sizes,
                "seed": SEED,
                "max_decompressed_len": DEFAULT_MAX_DECOMPRESSED_LEN,
                "layer_value_bytes": LAYER_VALUE_BYTES,
            },
            "target": TARGET,
            "rows": rows,
            "layer": layer,
        });
        self.machine.report_json(self.elapsed_s, figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(algorithm: Algorithm, kind: Kind, ours: f64) -> Row {
        Row {
            algorithm,
            kind,
            size: 4096,
            frame_len: 1024,
            direct_len: 1015,
            compress: Runs {
                ours: vec![ours, ours * 2.0, ours / 2.0],
                direct: vec![100.0; 3],
            },
            decompress: Runs {
                ours: vec![100.0; 3],
                direct: vec![100.0; 3],
            },
        }
    }

    #[test]
    fn tables_give_medians_ratios_and_targets() {
        let settings = Settings {
            sizes: vec![4096],
            runs: 3,
            ..Settings::default()
        };
        let mut rows = Vec::new();
        for algorithm in Algorithm::ALL {
            rows.push(row(algorithm, Kind::Json, 95.0));
            rows.push(row(algorithm, Kind::Random, 80.0));
        }
        let report = Report {
            settings,
            machine: machine(),
            rows,
            layer: LayerRow::all(),
            elapsed_s: 1.0,
        };
        let doc = report.markdown();
        assert!(
            doc.contains(
                "| json | 4 KiB | 95 | 100 | 0.95× | met | 100 | 100 | 1.00× | met | 0.250, 0.248 |"
            ),
            "{doc}"
        );
        assert!(
            doc.contains("| random | 4 KiB | 80 | 100 | 0.80× | **not met** |"),
            "{doc}"
        );
        assert!(
            doc.contains(
                "| lz4 | block format, safe encoder and decoder | 0.80× | 1.00× | 3 of 4 | 0.250 |"
            ),
            "{doc}"
        );
        let json: Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["rows"][0]["compress"]["ours_mb_per_s"], 95.0);
        assert_eq!(json["rows"][1]["compress"]["ours_runs"][1], 160.0);
        assert_eq!(json["rows"][0]["frame_bytes"], 1024);
    }

    #[test]
    fn sizes_read_as_bytes_kibibytes_or_mebibytes() {
        assert_eq!(size(1500), "1500 B");
        assert_eq!(size(4096), "4 KiB");
        assert_eq!(size(1 << 20), "1 MiB");
    }
}
